"""Cut the generator's four inputs for one base-grid window from the nested arrays."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from xdeepbedmap.grids import VARIABLES

__all__ = ["GENERATOR_INPUTS", "cut_nested"]

#: The generator's inputs in argument order, and the canonical variables each
#: stacks as channels.
GENERATOR_INPUTS: dict[str, tuple[str, ...]] = {
    "x": ("bed",),
    "w1": ("surface",),
    "w2": ("vx", "vy"),
    "w3": ("accumulation",),
}


def cut_nested(arrays: Mapping[str, np.ndarray], rows: slice, cols: slice) -> dict[str, np.ndarray]:
    """The generator inputs of the base-grid window ``rows x cols``, channels first.

    Parameters
    ----------
    arrays : mapping of str to numpy.ndarray
        The canonical variables (``bed``, ``surface``, ``vx``, ``vy``,
        ``accumulation``) of one nested region: each variable's array has
        ``factor`` pixels per base pixel (see :data:`xdeepbedmap.grids.VARIABLES`).
    rows, cols : slice
        The window in base pixels of that region (step 1).

    Returns
    -------
    dict of numpy.ndarray
        ``x`` (1, n, m), ``w1`` (1, 10n, 10m), ``w2`` (2, 2n, 2m), ``w3``
        (1, n, m) for an ``n x m`` window; single-channel inputs are views.
    """
    out = {}
    for name, variables in GENERATOR_INPUTS.items():
        channels = [
            arrays[v][_scaled(rows, VARIABLES[v][2]), _scaled(cols, VARIABLES[v][2])]
            for v in variables
        ]
        out[name] = channels[0][None] if len(channels) == 1 else np.stack(channels)
    return out


def _scaled(window: slice, factor: int) -> slice:
    return slice(factor * window.start, factor * window.stop)
