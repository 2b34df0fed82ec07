"""Checks of the inputs' values: physical ranges and the share of filled inputs.

Values outside physical ranges are used as they are but never silently: a
warning names the variable and the count. Non-finite values are no data
(filled by :mod:`xdeepbedmap.gapfill`), not range errors.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = [
    "FILLED_WARNING_FRACTION",
    "MAX_SPEED",
    "PHYSICAL_RANGES",
    "GapFillWarning",
    "InputRangeWarning",
    "extremes",
    "out_of_range",
    "warn_inputs",
]

#: Plausible value ranges (inclusive); values outside raise an InputRangeWarning.
PHYSICAL_RANGES: dict[str, tuple[float, float]] = {
    "bed": (-9000.0, 5000.0),
    "surface": (-100.0, 5000.0),
    "accumulation": (0.0, np.inf),
}
#: Largest plausible ice speed, m/yr (``sqrt(vx^2 + vy^2)``).
MAX_SPEED = 20000.0
#: Share of the land inputs (surface, velocity, accumulation) above which a fill warns.
FILLED_WARNING_FRACTION = 0.05


class InputRangeWarning(UserWarning):
    """Input values outside their physical range (they are used as they are)."""


class GapFillWarning(UserWarning):
    """A large share of the region's inputs is no data and was filled."""


def extremes(block: np.ndarray) -> tuple[float, float]:
    """The block's minimum and maximum, NaN when it holds a NaN (``inf`` when it holds one).

    Both finite means the block has no data gap: one pass each gives the
    range check's extremes and the block's completeness.
    """
    return float(np.minimum.reduce(block, axis=None)), float(np.maximum.reduce(block, axis=None))


def out_of_range(
    *blocks: np.ndarray, check: str, known: list[tuple[float, float]] | None = None
) -> np.ndarray:
    """Count of finite values outside the physical range in one block (1 x 1 array).

    The block's extremes are looked at first (cheap; ``known``: the
    :func:`extremes` of each block, used when all are finite); values are
    compared one by one only when an extreme lies outside the range.
    """
    if known is None or not np.isfinite(known).all():
        known = [(np.fmin.reduce(b, axis=None), np.fmax.reduce(b, axis=None)) for b in blocks]
    if check == "velocity":
        vx, vy = blocks
        if not max(abs(e) for pair in known for e in pair) > MAX_SPEED / np.sqrt(2):  # NaN skips
            return np.zeros((1, 1), np.int64)
        with np.errstate(invalid="ignore", over="ignore"):
            speed = np.hypot(vx.astype(np.float64), vy.astype(np.float64))
        return np.array([[np.count_nonzero(np.isfinite(speed) & (speed > MAX_SPEED))]])
    (block,), ((low, high),) = blocks, known
    lo, hi = PHYSICAL_RANGES[check]
    if not (low < lo or high > hi):
        return np.zeros((1, 1), np.int64)
    bad = np.isfinite(block) & ((block < lo) | (block > hi))
    return np.array([[np.count_nonzero(bad)]], dtype=np.int64)


def warn_inputs(ranges: dict[str, int], land_filled: float, nodata_names: list[str]) -> None:
    """The warnings of :func:`plan_fill`: one per out-of-range variable, one for the gaps."""
    for check, count in ranges.items():
        if count:
            limits = (
                f"speed > {MAX_SPEED:g} m/yr" if check == "velocity"
                else "outside [{:g}, {:g}]".format(*PHYSICAL_RANGES[check])
            )  # fmt: skip
            warnings.warn(
                f"{check}: {count} value(s) {limits}; they are used as they are "
                "(check the units and the nodata value)",
                InputRangeWarning,
                stacklevel=2,
            )
    if land_filled > FILLED_WARNING_FRACTION or nodata_names:
        empty = f"; no data at all in {nodata_names} (filled with 0)" if nodata_names else ""
        warnings.warn(
            f"{land_filled:.1%} of the surface, velocity and accumulation inputs over the "
            f"bed's valid cells are no data and were filled{empty}; see the "
            "filled_fraction quality layer (superresolve(..., quality=True))",
            GapFillWarning,
            stacklevel=2,
        )
