"""The grid-nesting contract: one 1 km base grid and the grids nested in it.

Every 1 km base pixel covers exactly 10 x 10 surface pixels (100 m), 2 x 2
velocity pixels (500 m) and 4 x 4 output pixels (250 m), with coinciding pixel
edges. Grids are north-up: ``x`` increases along columns, ``y`` decreases
along rows, coordinates are pixel centres, and the CRS is recorded the
rioxarray way (EPSG:3031 by default).

A grid is an odc-geo :class:`~odc.geo.geobox.GeoBox`. This module adds what is
the project's own: :func:`validate_inputs` checks a canonical input Dataset and
says exactly what does not nest; :func:`zoom_in`/:func:`coarsen` move between
nested grids, :func:`window` cuts one to a bbox, and :func:`grid_coords` gives its
xarray coordinates (:func:`xdeepbedmap.inputs.resample_to` brings a raster that
does not nest onto the nest).
"""

from __future__ import annotations

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox

from xdeepbedmap.crs import same_crs
from xdeepbedmap.errors import XDeepBedMapError

__all__ = [
    "BASE_RESOLUTION",
    "DEFAULT_CRS",
    "OUTPUT_FACTOR",
    "TOLERANCE",
    "VARIABLES",
    "GeoBox",
    "NestingError",
    "coarsen",
    "grid_coords",
    "grid_of",
    "make_grid",
    "output_grid",
    "pixel_centres",
    "validate_inputs",
    "window",
    "zoom_in",
]

DEFAULT_CRS = "EPSG:3031"
#: Pixel size of the base grid (BEDMAP2), metres.
BASE_RESOLUTION = 1000.0
#: Output (250 m) pixels per base pixel along each axis.
OUTPUT_FACTOR = 4
#: Allowed misfit of spacings and pixel edges, as a fraction of the finer pixel:
#: absorbs float32 coordinates and rounding, never a real shift (>= 1% of a pixel).
TOLERANCE = 5e-3

#: Canonical variables: (y dim, x dim, pixels per base pixel along each axis).
VARIABLES: dict[str, tuple[str, str, int]] = {
    "bed": ("y", "x", 1),
    "accumulation": ("y", "x", 1),
    "surface": ("y_surface", "x_surface", 10),
    "vx": ("y_velocity", "x_velocity", 2),
    "vy": ("y_velocity", "x_velocity", 2),
}


class NestingError(XDeepBedMapError, ValueError):
    """Input grids do not follow the nesting contract."""


def make_grid(
    left: float,
    top: float,
    resolution: float,
    shape: tuple[int, int],
    crs: str | None = DEFAULT_CRS,
) -> GeoBox:
    """A north-up grid of square ``resolution`` m pixels, ``shape = (ny, nx)``.

    ``left`` and ``top`` are the outer edges of the first column and row.
    """
    return GeoBox(shape, Affine(resolution, 0.0, left, 0.0, -resolution, top), crs)


def pixel_centres(grid: GeoBox) -> tuple[np.ndarray, np.ndarray]:
    """``(y, x)`` pixel-centre coordinates (float64, y decreasing) of a north-up grid."""
    # GeoBox.coords computes ``arange * res + (edge + res / 2)``, which can differ
    # from ``edge + (arange + 0.5) * res`` in the last bit; keep the latter so the
    # coordinates of written outputs do not change.
    step_x, _, left, _, step_y, top = grid.affine[:6]
    ny, nx = grid.shape
    return top + (np.arange(ny) + 0.5) * step_y, left + (np.arange(nx) + 0.5) * step_x


def grid_coords(
    grid: GeoBox, ydim: str = "y", xdim: str = "x"
) -> dict[str, tuple[str, np.ndarray]]:
    """Coordinates for an xarray object on ``grid`` with dims ``(ydim, xdim)``."""
    y, x = pixel_centres(grid)
    return {ydim: (ydim, y), xdim: (xdim, x)}


def zoom_in(grid: GeoBox, factor: int) -> GeoBox:
    """The grid nested ``factor`` times finer, with the same pixel edges outside."""
    if factor < 1 or int(factor) != factor:
        raise ValueError(f"zoom factor must be a positive integer, got {factor}")
    # not grid.zoom_out(1 / factor): multiplying by a rounded 1/10 can change the
    # last bit of the pixel size (333.3 m), dividing keeps today's exact spacing
    step_x, _, left, _, step_y, top = grid.affine[:6]
    ny, nx = grid.shape
    affine = Affine(step_x / factor, 0.0, left, 0.0, step_y / factor, top)
    return GeoBox((ny * factor, nx * factor), affine, grid.crs)


def coarsen(grid: GeoBox, factor: int) -> GeoBox:
    """The grid ``factor`` times coarser; the shape must divide by ``factor``."""
    ny, nx = grid.shape
    if ny % factor or nx % factor:
        raise NestingError(
            f"a {ny} x {nx} grid does not divide into {factor} x {factor} blocks "
            f"(both sizes must be multiples of {factor})"
        )
    return grid.zoom_out(factor)


def output_grid(base: GeoBox) -> GeoBox:
    """The 250 m output grid of a base grid: centres of its 4 x 4 sub-pixels."""
    return zoom_in(base, OUTPUT_FACTOR)


def window(grid: GeoBox, bbox: tuple[float, float, float, float]) -> tuple[slice, slice]:
    """Row and column slices of the pixels whose centres fall inside ``bbox``.

    ``bbox`` is ``(xmin, ymin, xmax, ymax)`` in the grid's CRS; ``grid[rows, cols]``
    is the grid of those pixels.
    """
    xmin, ymin, xmax, ymax = bbox
    if not (xmin < xmax and ymin < ymax):
        raise ValueError(f"bbox must be (xmin, ymin, xmax, ymax) with min < max, got {bbox}")
    # by pixel centres, inclusive: odc-geo's overlap_roi/from_bbox decide edge
    # pixels by overlap instead, which would change which pixels a bbox keeps
    y, x = pixel_centres(grid)
    cols = np.flatnonzero((x >= xmin) & (x <= xmax))
    rows = np.flatnonzero((y >= ymin) & (y <= ymax))
    if cols.size == 0 or rows.size == 0:
        raise ValueError(
            f"bbox {bbox} holds no pixel centre of the grid with bounds "
            f"{tuple(grid.boundingbox.bbox)}"
        )
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def _crs_string(obj: xr.DataArray | xr.Dataset) -> str | None:
    crs = obj.rio.crs
    return None if crs is None else crs.to_string()


def _spacing(name: str, axis: str, values: np.ndarray, expected_sign: int) -> float:
    """Regular spacing of 1-D coordinates, or a NestingError naming the variable."""
    if values.size < 2:
        raise NestingError(f"{name}: needs at least 2 pixels along {axis} to define a grid")
    steps = np.diff(values.astype(np.float64))
    step = float(np.median(steps))
    if np.sign(step) != expected_sign:
        order = "increase" if expected_sign > 0 else "decrease"
        raise NestingError(
            f"{name}: {axis} coordinates must {order} (north-up grid), found step {step:g} m; "
            f"use .sortby('{axis}', ascending={expected_sign > 0})"
        )
    worst = float(np.max(np.abs(steps - step)))
    if worst > TOLERANCE * abs(step):
        raise NestingError(
            f"{name}: {axis} coordinates are not regularly spaced "
            f"(step {abs(step):g} m varies by up to {worst:g} m)"
        )
    return abs(step)


def grid_of(da: xr.DataArray, name: str | None = None, ydim: str = "y", xdim: str = "x") -> GeoBox:
    """The grid of a 2-D DataArray, from its pixel-centre coordinates.

    Agrees with ``da.odc.geobox`` to rounding, but the pixel size is the median
    of all coordinate steps: odc-geo takes the first step only, which moves
    output coordinates by up to a few 1e-10 m on non-round grids.

    Raises
    ------
    NestingError
        If the coordinates are missing, irregular, not north-up or the pixels
        not square.
    """
    name = name or str(da.name)
    for dim in (ydim, xdim):
        if dim not in da.coords:
            raise NestingError(f"{name}: no '{dim}' coordinate (dims are {da.dims})")
    x = np.asarray(da[xdim].values, dtype=np.float64)
    y = np.asarray(da[ydim].values, dtype=np.float64)
    dx = _spacing(name, xdim, x, +1)
    dy = _spacing(name, ydim, y, -1)
    if abs(dx - dy) > TOLERANCE * min(dx, dy):
        raise NestingError(f"{name}: pixels must be square, found {dx:g} m (x) by {dy:g} m (y)")
    edges = (float(x[0] - dx / 2), float(y[0] + dy / 2))
    return make_grid(*edges, dx, (y.size, x.size), _crs_string(da))


def _check_nested(name: str, grid: GeoBox, base: GeoBox, factor: int) -> None:
    """Raise a NestingError unless ``grid`` is ``base`` zoomed in by ``factor``."""
    expected = zoom_in(base, factor)
    found_res, want_res = grid.resolution.x, expected.resolution.x
    tol = TOLERANCE * want_res
    if abs(found_res - want_res) > tol:
        raise NestingError(
            f"{name}: spacing {found_res:g} m, expected {want_res:g} m "
            f"(base {base.resolution.x:g} m / {factor})"
        )
    found, want = grid.boundingbox, expected.boundingbox
    for label, mine, theirs in (
        ("x origin (left edge)", found.left, want.left),
        ("y origin (top edge)", found.top, want.top),
    ):
        if abs(mine - theirs) > tol:
            raise NestingError(
                f"{name}: {label} {mine:.3f} m is offset by {mine - theirs:+.3f} m from the "
                f"base grid's {theirs:.3f} m (nested grids must share pixel edges)"
            )
    if grid.shape != expected.shape:
        raise NestingError(
            f"{name}: shape {tuple(grid.shape)}, expected {tuple(expected.shape)} "
            f"= {factor} x base shape {tuple(base.shape)}"
        )


def validate_inputs(
    ds: xr.Dataset, crs: str = DEFAULT_CRS, resolution: float | None = BASE_RESOLUTION
) -> GeoBox:
    """Check a canonical input Dataset against the nesting contract.

    Parameters
    ----------
    ds : xarray.Dataset
        Holds ``bed`` and ``accumulation`` on (``y``, ``x``), ``surface`` on
        (``y_surface``, ``x_surface``), ``vx`` and ``vy`` on (``y_velocity``,
        ``x_velocity``), with a CRS recorded the rioxarray way.
    crs : str
        The CRS every variable must have.
    resolution : float or None
        Required base-grid spacing in metres (1000 for DeepBedMap); ``None``
        accepts any.

    Returns
    -------
    GeoBox
        The base grid, in ``crs``.

    Raises
    ------
    NestingError
        Naming the variable and the expected and found numbers.
    """
    missing = [name for name in VARIABLES if name not in ds.data_vars]
    if missing:
        raise NestingError(
            f"input Dataset lacks variable(s) {missing}; it has {sorted(map(str, ds.data_vars))}"
        )
    _normalise_crs(crs)  # refuse an unparsable expected CRS early
    for name, (ydim, xdim, _) in VARIABLES.items():
        da = ds[name]
        if da.dims != (ydim, xdim):
            raise NestingError(f"{name}: dims {da.dims}, expected {(ydim, xdim)}")
        found = _crs_string(da) or _crs_string(ds)
        if found is None:
            raise NestingError(
                f"{name}: no CRS recorded, expected {crs}; set it with ds.rio.write_crs({crs!r})"
            )
        if not same_crs(found, crs):  # by projection parameters, not names
            raise NestingError(f"{name}: CRS {found}, expected {crs}")

    base = grid_of(ds["bed"], "bed")
    found_res = base.resolution.x
    if resolution is not None and abs(found_res - resolution) > TOLERANCE * resolution:
        raise NestingError(f"bed: spacing {found_res:g} m, expected {resolution:g} m")
    for name, (ydim, xdim, factor) in VARIABLES.items():
        if name != "bed":
            _check_nested(name, grid_of(ds[name], name, ydim, xdim), base, factor)
    return GeoBox(base.shape, base.affine, crs)


def _normalise_crs(crs: str) -> str:
    from pyproj import CRS

    try:
        parsed = CRS.from_user_input(crs)
    except Exception as err:  # pyproj raises its own CRSError
        raise NestingError(f"unrecognised CRS {crs!r}: {err}") from err
    epsg = parsed.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else parsed.to_wkt()
