"""The network's output is checked before it is written: never a silent NaN or overflow.

A generator that meets numbers its precision cannot hold (a bfloat16 or
float16 path overflowing, weights that diverged, inputs that changed between
the planning pass and the read that feeds the network) returns NaN, inf or
absurd elevations. Those would otherwise be written as a bed; each window's
output is checked instead (the extremes of each batch the network returns,
context included: two contiguous passes) and the run stops with an error
that says where and what.
"""

from __future__ import annotations

import numpy as np

from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.input_checks import extremes

__all__ = ["OUTPUT_LIMIT", "NetworkOutputError", "check_batch_output", "check_window_output"]

#: Metres: a bed elevation beyond this is a numerical failure, not a bed
#: (Earth's relief is under 20 km).
OUTPUT_LIMIT = 1.0e5


class NetworkOutputError(XDeepBedMapError, RuntimeError):
    """The network returned NaN, inf or an elevation beyond :data:`OUTPUT_LIMIT`."""


def _beyond_limit(values: np.ndarray) -> float | None:
    """The largest ``|value|`` when it is beyond :data:`OUTPUT_LIMIT` (NaN for a NaN), else None."""
    if not values.size:
        return None
    low, high = extremes(values)  # NaN-propagating: a NaN fails both comparisons
    if -OUTPUT_LIMIT <= low and high <= OUTPUT_LIMIT:
        return None
    return max(abs(low), abs(high))  # both NaN when either is


def check_window_output(tile: np.ndarray, origin: tuple[int, int], model: str, dtype) -> None:
    """Raise :class:`NetworkOutputError` unless every value of ``tile`` is within the limit.

    Parameters
    ----------
    tile : numpy.ndarray
        One window's 250 m output, context included.
    origin : tuple of int
        The window core's first base pixel in its block (for the message).
    model : str
        The member's weights file (for the message).
    dtype : torch.dtype or str
        The precision the network ran in (for the message): a dtype, or a
        precision name such as ``"mixed-bfloat16"``.
    """
    largest = _beyond_limit(tile)
    if largest is None:
        return
    found = "NaN" if np.isnan(largest) else f"|value| up to {largest:.3g} m"
    precision = str(dtype).replace("torch.", "")
    advice = "check the weights" if precision == "float32" else "rerun with dtype='float32'"
    raise NetworkOutputError(
        f"the network {model} returned {found} for the window at base px {origin} of a block "
        f"(context included; expected finite elevations within +-{OUTPUT_LIMIT:.0e} m; "
        f"precision {precision}). Nothing was written for this block: {advice}, "
        "or check that the input files did not change during the run."
    )


def check_batch_output(batch: np.ndarray, origins, model: str, dtype) -> None:
    """:func:`check_window_output` of a batch ``(n, H, W)`` whose windows start at ``origins``.

    The whole batch first (contiguous, fast); the window is looked for only
    when it fails.
    """
    if _beyond_limit(batch) is None:
        return
    for tile, origin in zip(batch, origins, strict=True):
        check_window_output(tile, origin, model, dtype)
