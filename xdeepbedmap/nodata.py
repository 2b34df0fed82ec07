"""Nearest-value filling of whole arrays (synthetic regions, filters, interpolation).

Inference does not use it: a per-block nearest fill depends on the chunking,
so the network's inputs are filled globally by :mod:`xdeepbedmap.gapfill`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["fill_nearest"]


def fill_nearest(values: np.ndarray) -> np.ndarray:
    """Replace no data (NaN, and +-inf) by the nearest valid value.

    Nearest-value filling keeps ocean out of land values: no extreme fill value
    (such as -5000 m) enters a convolution, and valid values are not dragged
    towards one. An array without a valid value becomes zeros.

    Parameters
    ----------
    values : numpy.ndarray
        Any shape and floating dtype.

    Returns
    -------
    numpy.ndarray
        ``values`` itself when it is all valid, else a filled array of the same
        dtype and shape.
    """
    invalid = ~np.isfinite(values)
    if not invalid.any():
        return values
    if invalid.all():
        return np.zeros_like(values)
    idx = ndimage.distance_transform_edt(invalid, return_distances=False, return_indices=True)
    return values[tuple(idx)]
