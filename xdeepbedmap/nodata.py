"""Filling of whole arrays: nearest value (synthetic regions), pull-push (the gap fill's source).

Inference does not use the nearest fill: a per-block nearest fill depends on
the chunking, so the network's inputs are filled globally by
:mod:`xdeepbedmap.gapfill`, from a source smoothed by :func:`pull_push`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["fill_nearest", "pull_push"]


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


def pull_push(mean: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fill cells with zero ``weight`` from coarser levels (pull), upsampled bilinearly (push).

    Cells with data keep their ``mean``; an array without any data becomes zeros.
    """
    has = weight > 0
    if has.all():
        return mean
    if not has.any():
        return np.zeros_like(mean)
    ny, nx = mean.shape
    pad = ((0, ny % 2), (0, nx % 2))
    sums = np.pad(np.where(has, mean * weight, 0.0), pad).reshape(-1, 2, (nx + 1) // 2, 2)
    weights = np.pad(weight, pad).reshape(sums.shape)
    coarse_w = weights.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        coarse = sums.sum(axis=(1, 3)) / coarse_w
    coarse = pull_push(np.where(coarse_w > 0, coarse, 0.0), coarse_w)
    up = _upsample2(coarse)[:ny, :nx]
    return np.where(has, mean, up)


def _upsample2(values: np.ndarray) -> np.ndarray:
    """Bilinear 2x upsampling (cell-centre aligned, edges clamped)."""
    for axis in (0, 1):
        v = np.moveaxis(values, axis, 0)
        before = np.concatenate([v[:1], v[:-1]])
        after = np.concatenate([v[1:], v[-1:]])
        out = np.empty((2 * v.shape[0], *v.shape[1:]), dtype=v.dtype)
        out[0::2] = 0.75 * v + 0.25 * before
        out[1::2] = 0.75 * v + 0.25 * after
        values = np.moveaxis(out, 0, axis)
    return values
