"""Grid survey picks onto the 250 m output grid: block median, interpolation, distance mask.

The steps, as the paper's GMT ``blockmedian`` + ``surface`` but with verde:

1. Keep the picks inside the bounding box widened by a context margin
   (streamed: only those are held in memory; memory scales with the picks in
   the box, not with the file).
2. Block median per 250 m cell of the output grid (pandas ``groupby``): one
   value per cell, at the median position of its picks, so dense along-track
   sampling does not dominate the fit and nothing scales with the raw count.
3. Interpolate the block medians between the lines with a verde gridder:
   ``linear`` (on a Delaunay triangulation; the default, chosen by the
   measurement in ``docs/survey.md``: within 6% of ``cubic`` RMSE at 2-5 km
   line spacing, better at 10-20 km, and without its overshoot), ``cubic``
   (Clough-Tocher), ``kneighbors`` (mean of the 4 nearest block medians, fills
   everything, least accurate) or ``spline`` (O(n^2) memory per window).
   The grid is interpolated in 16 km windows, each fitted to the block
   medians within the margin around it (bounded time and memory).
   Cells outside the block medians' convex hull (cubic, linear) stay NaN,
   except cells holding picks, which take their block median.
4. Distance to the nearest pick (scipy KD-tree on the picks, the test
   ``verde.distance_mask`` makes, kept as a layer); cells farther than
   ``mask_radius`` stay NaN.

The output grid is nested in the 1 km base grid: the box is widened to whole
kilometres (pixel edges on multiples of 1000 m) and zoomed 4x.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from scipy.spatial import QhullError
from threadpoolctl import threadpool_limits

from xdeepbedmap.grids import BASE_RESOLUTION, DEFAULT_CRS, OUTPUT_FACTOR
from xdeepbedmap.pick_distance import nearest_distance, pick_tree
from xdeepbedmap.survey.errors import SurveyError

__all__ = [
    "DEFAULT_MASK_RADIUS",
    "DEFAULT_METHOD",
    "MAX_SPLINE_POINTS",
    "block_median",
    "grid_points",
    "output_geobox",
]

Method = Literal["cubic", "linear", "kneighbors", "spline"]
#: Default interpolator (see docs/survey.md for the measurement behind it).
DEFAULT_METHOD: Method = "linear"
#: Default distance (m) beyond which cells stay NaN: half of a 3 km line spacing.
DEFAULT_MASK_RADIUS = 1500.0
#: Largest number of block medians the O(n^2) spline accepts (about 130 MB).
MAX_SPLINE_POINTS = 4000
_WINDOW = 64  # output cells per side of an interpolation window (16 km)


def output_geobox(bbox: tuple[float, float, float, float], crs: str = DEFAULT_CRS):  # -> GeoBox
    """The 250 m output GeoBox covering ``bbox``, nested in the 1 km base grid.

    ``bbox`` is ``(xmin, ymin, xmax, ymax)``; it is widened to pixel edges on
    multiples of :data:`~xdeepbedmap.grids.BASE_RESOLUTION`, then zoomed
    :data:`~xdeepbedmap.grids.OUTPUT_FACTOR` times.
    """
    from odc.geo.geobox import GeoBox

    xmin, ymin, xmax, ymax = map(float, bbox)
    if not (xmin < xmax and ymin < ymax):
        raise SurveyError(f"bbox must be (xmin, ymin, xmax, ymax) with min < max, got {bbox}")
    base = GeoBox.from_bbox((xmin, ymin, xmax, ymax), crs, resolution=BASE_RESOLUTION, tight=False)
    return base.zoom_out(1 / OUTPUT_FACTOR)


def _inside(points: pd.DataFrame, bounds: tuple[float, float, float, float]) -> pd.DataFrame:
    left, bottom, right, top = bounds
    x, y = points["x"].to_numpy(), points["y"].to_numpy()
    keep = (x >= left) & (x <= right) & (y >= bottom) & (y <= top) & np.isfinite(points["bed"])
    return pd.DataFrame({"x": x[keep], "y": y[keep], "bed": points["bed"].to_numpy()[keep]})


def _collect(
    points: pd.DataFrame | Iterable[pd.DataFrame], bounds: tuple[float, float, float, float]
) -> tuple[pd.DataFrame, dict]:
    """Concatenate the picks inside ``bounds`` from a DataFrame or a stream of them."""
    chunks = [points] if isinstance(points, pd.DataFrame) else points
    kept, attrs = [], {}
    for chunk in chunks:
        attrs = attrs or dict(chunk.attrs)
        kept.append(_inside(chunk, bounds))
    picks = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=["x", "y", "bed"])
    return picks, attrs


def block_median(
    picks: pd.DataFrame, left: float, top: float, spacing: float
) -> tuple[pd.DataFrame, np.ndarray]:
    """Median ``x``, ``y``, ``bed`` and pick ``count`` per ``spacing`` cell.

    Cells are counted from the pixel edges ``left``/``top`` (rows go south).
    Returns the per-cell table and each pick's ``(row, col)`` index pair.
    """
    col = np.floor((picks["x"].to_numpy() - left) / spacing).astype(np.int64)
    row = np.floor((top - picks["y"].to_numpy()) / spacing).astype(np.int64)
    frame = picks[["x", "y", "bed"]].assign(row=row, col=col)
    grouped = frame.groupby(["row", "col"], sort=False)
    cells = grouped[["x", "y", "bed"]].median()
    cells["count"] = grouped.size()
    return cells.reset_index(), np.stack([row, col])


def _gridder(method: str, n: int):
    import verde as vd

    if method == "cubic":
        return vd.Cubic()
    if method == "linear":
        return vd.Linear()
    if method == "kneighbors":
        return vd.KNeighbors(k=min(4, n))
    if method == "spline":
        if n > MAX_SPLINE_POINTS:
            raise SurveyError(
                f"method='spline' fits {n} block medians, more than MAX_SPLINE_POINTS="
                f"{MAX_SPLINE_POINTS} (memory grows as n^2); use method='linear' or a smaller bbox"
            )
        return vd.Spline(damping=1e-6)
    raise SurveyError(f"method must be cubic, linear, kneighbors or spline; got {method!r}")


def _interpolate(
    cells: pd.DataFrame, x: np.ndarray, y: np.ndarray, method: str, context: float
) -> np.ndarray:
    """Fit and predict window by window: block medians within ``context`` m of each window.

    Why windows: scipy's Delaunay point location falls back to a brute-force
    search when straight flight lines make near-degenerate triangles, which
    costs (cells x triangles); small windows bound that, the spline's n^2
    memory, and the temporary arrays. Coordinates are taken relative to the
    window centre, which keeps the triangulation well conditioned.
    """
    minimum = 1 if method == "kneighbors" else 3
    if len(cells) < minimum:
        raise SurveyError(
            f"method={method!r} needs at least {minimum} cells with picks, got {len(cells)}"
        )
    cx, cy, cz = (cells[name].to_numpy(np.float64) for name in ("x", "y", "bed"))
    out = np.full((y.size, x.size), np.nan, dtype=np.float32)
    for r0 in range(0, y.size, _WINDOW):
        for c0 in range(0, x.size, _WINDOW):
            wx, wy = x[c0 : c0 + _WINDOW], y[r0 : r0 + _WINDOW]
            near = (np.abs(cx - wx.mean()) <= np.ptp(wx) / 2 + context) & (
                np.abs(cy - wy.mean()) <= np.ptp(wy) / 2 + context
            )
            if near.sum() < minimum:
                continue  # no pick close enough: these cells are masked anyway
            gridder = _gridder(method, int(near.sum()))
            ox, oy = wx.mean(), wy.mean()
            try:
                gridder.fit((cx[near] - ox, cy[near] - oy), cz[near])
            except QhullError:
                continue  # all on one straight line: nothing to triangulate here

            xx, yy = np.meshgrid(wx - ox, wy - oy)
            out[r0 : r0 + wy.size, c0 : c0 + wx.size] = gridder.predict((xx, yy))
    return out


def _distance(picks: pd.DataFrame, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return nearest_distance(pick_tree(picks), x, y).astype(np.float32)


def grid_points(
    points: pd.DataFrame | Iterable[pd.DataFrame],
    bbox: tuple[float, float, float, float],
    *,
    mask_radius: float = DEFAULT_MASK_RADIUS,
    method: Method = DEFAULT_METHOD,
    margin: float | None = None,
) -> xr.Dataset:
    """Grid survey picks to a 250 m truth grid with ``count`` and ``distance`` layers.

    Parameters
    ----------
    points : DataFrame or iterable of DataFrames
        Picks with ``x``, ``y`` (EPSG:3031 m) and ``bed``, e.g. from
        :func:`~xdeepbedmap.survey.read_points` or, streamed,
        :func:`~xdeepbedmap.survey.iter_points`.
    bbox : tuple of float
        ``(xmin, ymin, xmax, ymax)``; widened to whole base (1 km) pixels.
    mask_radius : float
        Cells whose centre is farther than this (m) from every pick are NaN.
    method : {"cubic", "linear", "kneighbors", "spline"}
        verde interpolator of the block medians (see the module docstring).
    margin : float, optional
        Picks this far (m) outside the box still inform the interpolation, and
        each 16 km interpolation window sees the block medians this far around
        it (default ``2 * mask_radius + 1000``: a triangle between two lines
        up to ``2 * mask_radius`` apart lies within it). ``distance`` is exact
        up to the margin; beyond it, only picks inside box + margin count.

    Returns
    -------
    xarray.Dataset
        ``bed`` (float32, NaN where masked), ``count`` (int32, picks per cell)
        and ``distance`` (float32, m to the nearest pick) on (``y``, ``x``)
        pixel centres, y decreasing, with the CRS written.
    """
    if not mask_radius > 0:
        raise SurveyError(f"mask_radius must be a positive distance in metres, got {mask_radius}")
    gbox = output_geobox(bbox)
    left, bottom, right, top = gbox.boundingbox
    if margin is None:
        margin = 2 * mask_radius + BASE_RESOLUTION
    if not np.isfinite(margin):
        raise SurveyError(f"margin must be a finite distance (m), got {margin}")
    picks, attrs = _collect(points, (left - margin, bottom - margin, right + margin, top + margin))
    if picks.empty:
        raise SurveyError(
            f"no survey pick inside bbox {tuple(map(float, bbox))} widened by {margin:g} m"
        )
    spacing = float(gbox.resolution.x)
    cells, _ = block_median(picks, left, top, spacing)
    coords = gbox.coords
    x, y = coords["x"].values.astype(np.float64), coords["y"].values.astype(np.float64)
    count = np.zeros((y.size, x.size), dtype=np.int32)
    median = np.full((y.size, x.size), np.nan, dtype=np.float32)
    inside = cells[
        (cells.row >= 0) & (cells.row < y.size) & (cells.col >= 0) & (cells.col < x.size)
    ]
    rows, cols = inside.row.to_numpy(), inside.col.to_numpy()
    count[rows, cols] = inside["count"].to_numpy()
    median[rows, cols] = inside["bed"].to_numpy()
    distance = _distance(picks, x, y)
    # scipy's Delaunay computes one tiny LAPACK solve per triangle; a
    # multithreaded BLAS makes each of them start threads (measured: 0.02 s
    # single-threaded vs 12 s for 4000 triangles on a busy 2-core machine)
    with threadpool_limits(limits=1, user_api="blas"):
        bed = _interpolate(cells, x, y, method, context=margin)
    # triangulation-based methods are NaN outside the block medians' convex hull,
    # which can leave out a cell centre next to its own picks: use their median there
    bed = np.where(np.isnan(bed) & (count > 0), median, bed)
    bed[distance > mask_radius] = np.nan
    return _dataset(bed, count, distance, x, y, gbox.crs, attrs, method, mask_radius, len(picks))


def _dataset(bed, count, distance, x, y, crs, attrs, method, mask_radius, n) -> xr.Dataset:  # noqa: ANN001
    dims = ("y", "x")
    ds = xr.Dataset(
        {
            "bed": (
                dims,
                bed,
                {"units": "m", "long_name": "bed elevation gridded from survey picks"},
            ),
            "count": (dims, count, {"units": "1", "long_name": "survey picks per cell"}),
            "distance": (dims, distance, {"units": "m", "long_name": "distance to nearest pick"}),
        },
        coords={"y": y, "x": x},
        attrs={
            "source": attrs.get("source", "points"),
            "vertical_datum": attrs.get("vertical_datum", "unspecified"),
            "method": f"block median 250 m + verde {method}",
            "mask_radius": float(mask_radius),
            "n_points": int(n),
        },
    )
    for name in ("bed", "distance"):
        ds[name] = ds[name].rio.write_nodata(np.nan, encoded=False)
    return ds.rio.write_crs(str(crs))
