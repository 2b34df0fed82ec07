"""The 250 m ground truth and the base grid it nests in.

A truth (a bed grid to learn from or to judge against) lives on the 250 m
output grid of some 1 km base grid: :func:`base_grid_of_truth` finds that base
grid, :func:`align_truth` puts a truth covering any part of a region onto the
region's output grid, and :func:`grid_points` turns scattered bed picks into
such a grid.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from xdeepbedmap.grids import (
    BASE_RESOLUTION,
    DEFAULT_CRS,
    OUTPUT_FACTOR,
    TOLERANCE,
    GeoBox,
    NestingError,
    coarsen,
    grid_coords,
    grid_of,
    output_grid,
    pixel_centres,
)

__all__ = ["align_truth", "base_grid_of_truth", "grid_points"]


def _truth_grid(truth: xr.DataArray, pixel: float) -> GeoBox:
    """The truth's own grid, or a NestingError if its pixels are not ``pixel`` m."""
    grid = grid_of(truth, "truth")
    found = grid.resolution.x
    if abs(found - pixel) > 1e-6 * pixel:
        raise NestingError(f"truth: spacing {found:g} m, expected {pixel:g} m")
    return grid


def base_grid_of_truth(truth: xr.DataArray) -> GeoBox:
    """The 1 km base grid whose 4 x 4 sub-pixels are the pixels of a 250 m truth.

    Without a CRS on the truth, EPSG:3031 is assumed.

    Raises
    ------
    NestingError
        If the truth's pixels are not 250 m or its shape does not divide by 4.
    """
    grid = _truth_grid(truth, BASE_RESOLUTION / OUTPUT_FACTOR)
    base = coarsen(grid, OUTPUT_FACTOR)
    return GeoBox(base.shape, base.affine, grid.crs or DEFAULT_CRS)


def align_truth(truth: xr.DataArray, base: GeoBox) -> xr.DataArray:
    """Put a 250 m truth grid onto the output grid of ``base`` (NaN where it has no data).

    The truth may cover only part of the region but its pixels must be the
    4 x 4 sub-pixels of the base grid.

    Raises
    ------
    NestingError
        If the truth's spacing or pixel offsets do not nest in ``base``.
    """
    target = output_grid(base)
    pixel = target.resolution.x
    mine, theirs = _truth_grid(truth, pixel).boundingbox, target.boundingbox
    for axis, edge, want in (("x", mine.left, theirs.left), ("y", mine.top, theirs.top)):
        offset = ((edge - want) / pixel) % 1.0
        if min(offset, 1.0 - offset) > TOLERANCE:
            raise NestingError(
                f"truth: {axis} pixel edges are offset by {offset * pixel:.3f} m "
                "from the 250 m output grid of the inputs"
            )
    y, x = pixel_centres(target)
    return truth.reindex(y=y, x=x, method="nearest", tolerance=0.25 * pixel)


def grid_points(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, grid: GeoBox, min_points: int = 1
) -> xr.DataArray:
    """Grid scattered bed picks (radar lines) onto a 250 m grid by cell mean.

    Cells with fewer than ``min_points`` picks are NaN, so tiles are only cut
    where surveys actually constrain the bed.
    """
    x, y, z = (np.asarray(a, dtype=np.float64).ravel() for a in (x, y, z))
    ny, nx = grid.shape
    pixel, bounds = grid.resolution.x, grid.boundingbox
    col = np.floor((x - bounds.left) / pixel).astype(np.int64)
    row = np.floor((bounds.top - y) / pixel).astype(np.int64)
    inside = (row >= 0) & (row < ny) & (col >= 0) & (col < nx) & np.isfinite(z)
    flat = row[inside] * nx + col[inside]
    total = np.bincount(flat, weights=z[inside], minlength=ny * nx)
    count = np.bincount(flat, minlength=ny * nx)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count >= min_points, total / count, np.nan).reshape(ny, nx)
    out = xr.DataArray(
        mean.astype(np.float32), dims=("y", "x"), coords=grid_coords(grid), name="bed"
    )
    crs = None if grid.crs is None else str(grid.crs)
    return out.rio.write_crs(crs).rio.write_nodata(np.nan, encoded=False)
