"""Distance from grid pixels to survey picks, lazily and chunk by chunk.

Used to blend the network by distance to the nearest pick
(:mod:`xdeepbedmap.distance_blend`); the picks' digest records which survey a
blended result was made with, so a resumed write cannot mix two surveys.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "FarPicksWarning",
    "distance_to_points",
    "nearest_distance",
    "pick_tree",
    "survey_digest",
    "warn_if_far",
]

_QUERY_ROWS = 256  # grid rows queried at a time: bounds temporary memory


class FarPicksWarning(UserWarning):
    """No survey pick lies near the region: a distance blend leaves the network's bed as it is."""


def warn_if_far(points: pd.DataFrame, like: xr.DataArray, reach_km: float) -> int:
    """Warn when no pick lies within ``reach_km`` of ``like``'s extent; return how many do.

    Beyond the blend's last knot the network is trusted fully, so picks that
    are all farther change nothing: right for a region in a survey gap, but
    also what picks in the wrong CRS or of another region look like.
    """
    import warnings

    reach = reach_km * 1e3
    x, y = like["x"].to_numpy(), like["y"].to_numpy()
    px, py = points["x"].to_numpy(), points["y"].to_numpy()
    near = (px >= x.min() - reach) & (px <= x.max() + reach)
    near &= (py >= y.min() - reach) & (py <= y.max() + reach)
    count = int(near.sum())
    if count == 0:
        warnings.warn(
            f"none of the {len(points)} survey picks lies within {reach_km:.1f} km of the "
            f"region (x {x.min():.0f} to {x.max():.0f}, y {y.min():.0f} to {y.max():.0f}; "
            f"picks x {px.min():.0f} to {px.max():.0f}, y {py.min():.0f} to {py.max():.0f}): "
            "the distance blend leaves the network's bed unchanged. Wrong CRS or region?",
            FarPicksWarning,
            stacklevel=3,
        )
    return count


def pick_tree(points: pd.DataFrame) -> Any:
    """A KD-tree of the picks' ``x``/``y`` (scipy ``cKDTree``)."""
    from scipy.spatial import cKDTree

    return cKDTree(np.column_stack([points["x"].to_numpy(), points["y"].to_numpy()]))


def nearest_distance(tree: Any, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distance (float64, the points' units) from every ``(y, x)`` grid centre to its nearest point.

    ``x`` and ``y`` are the grid's 1-D centre coordinates; the result is
    ``(y.size, x.size)``, queried a few hundred rows at a time.
    """
    out = np.empty((y.size, x.size), dtype=np.float64)
    for start in range(0, y.size, _QUERY_ROWS):
        rows = y[start : start + _QUERY_ROWS]
        xx, yy = np.meshgrid(x, rows)
        dist, _ = tree.query(np.column_stack([xx.ravel(), yy.ravel()]))
        out[start : start + rows.size] = dist.reshape(xx.shape)
    return out


def survey_digest(points: pd.DataFrame) -> str:
    """SHA-256 of the picks' ``x``/``y`` (float64): which survey a blended result used."""
    import hashlib

    xy = np.column_stack([points["x"].to_numpy(np.float64), points["y"].to_numpy(np.float64)])
    return hashlib.sha256(np.ascontiguousarray(xy).tobytes()).hexdigest()


def distance_to_points(points: pd.DataFrame, like: xr.DataArray) -> xr.DataArray:
    """Distance (km) from every pixel centre of ``like`` to the nearest point.

    Parameters
    ----------
    points : pandas.DataFrame
        ``x`` and ``y`` columns in ``like``'s CRS (metres), e.g. the picks
        of :func:`xdeepbedmap.survey.read_points`.
    like : xarray.DataArray
        A grid on (``y``, ``x``); when it is dask-backed the distances are
        computed lazily chunk by chunk, so memory follows the chunk size
        and the number of points, not the grid.

    Returns
    -------
    xarray.DataArray
        float32 distances (km) on ``like``'s ``y``/``x``, named ``distance_km``.
    """
    if not {"x", "y"} <= set(points.columns) or len(points) == 0:
        raise ValueError(
            f"distance_to_points: need a non-empty table with x and y columns, got "
            f"{len(points)} rows with columns {list(points.columns)}"
        )
    tree = pick_tree(points)
    y = like["y"].to_numpy().astype(np.float64)
    x = like["x"].to_numpy().astype(np.float64)

    def block(rows: slice, cols: slice) -> np.ndarray:
        return (nearest_distance(tree, x[cols], y[rows]) / 1e3).astype(np.float32)

    if like.chunks is None:
        data = block(slice(None), slice(None))
    else:
        import dask.array as dsa

        def chunk(block_info: dict | None = None) -> np.ndarray:
            (r0, r1), (c0, c1) = block_info[None]["array-location"]
            return block(slice(r0, r1), slice(c0, c1))

        data = dsa.map_blocks(chunk, chunks=like.chunks, dtype=np.float32)
    return xr.DataArray(
        data,
        coords={"y": like["y"], "x": like["x"]},
        dims=("y", "x"),
        name="distance_km",
        attrs={"units": "km", "survey_sha256": survey_digest(points)},
    )
