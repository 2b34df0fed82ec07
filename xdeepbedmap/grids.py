"""The grid-nesting contract: one 1 km base grid and the grids nested in it.

Every 1 km base pixel covers exactly 10 x 10 surface pixels (100 m), 2 x 2
velocity pixels (500 m) and 4 x 4 output pixels (250 m), with coinciding pixel
edges. Grids are north-up: ``x`` increases along columns, ``y`` decreases
along rows, coordinates are pixel centres, and the CRS is recorded the
rioxarray way (EPSG:3031 by default).

:class:`Grid` is the small value object behind all of it; :func:`validate_inputs`
checks a canonical input Dataset and says exactly what does not nest;
:func:`resample_to` brings a raster that does not nest onto the nest by
explicit bilinear resampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine

from xdeepbedmap.errors import XDeepBedMapError

__all__ = [
    "BASE_RESOLUTION",
    "DEFAULT_CRS",
    "OUTPUT_FACTOR",
    "VARIABLES",
    "Grid",
    "NestingError",
    "grid_of",
    "output_grid",
    "resample_to",
    "validate_inputs",
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


@dataclass(frozen=True)
class Grid:
    """A north-up regular grid of square pixels.

    Parameters
    ----------
    left, top : float
        Coordinates of the outer edges of the first column and row (metres).
    resolution : float
        Pixel size (metres).
    shape : tuple of int
        ``(ny, nx)``.
    crs : str or None
        CRS as a string understood by pyproj (``"EPSG:3031"``).
    """

    left: float
    top: float
    resolution: float
    shape: tuple[int, int]
    crs: str | None = DEFAULT_CRS

    @property
    def x(self) -> np.ndarray:
        """Pixel-centre x coordinates (increasing)."""
        return self.left + (np.arange(self.shape[1]) + 0.5) * self.resolution

    @property
    def y(self) -> np.ndarray:
        """Pixel-centre y coordinates (decreasing)."""
        return self.top - (np.arange(self.shape[0]) + 0.5) * self.resolution

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of the outer pixel edges."""
        ny, nx = self.shape
        return (
            self.left,
            self.top - ny * self.resolution,
            self.left + nx * self.resolution,
            self.top,
        )

    @property
    def transform(self) -> Affine:
        """GDAL-style affine transform of the pixel edges."""
        return Affine(self.resolution, 0.0, self.left, 0.0, -self.resolution, self.top)

    def zoom(self, factor: int) -> Grid:
        """The grid nested ``factor`` times finer, with the same pixel edges outside."""
        if factor < 1 or int(factor) != factor:
            raise ValueError(f"zoom factor must be a positive integer, got {factor}")
        ny, nx = self.shape
        return Grid(
            self.left, self.top, self.resolution / factor, (ny * factor, nx * factor), self.crs
        )

    def coarsen(self, factor: int) -> Grid:
        """The grid ``factor`` times coarser; the shape must divide by ``factor``."""
        ny, nx = self.shape
        if ny % factor or nx % factor:
            raise NestingError(
                f"a {ny} x {nx} grid does not divide into {factor} x {factor} blocks "
                f"(both sizes must be multiples of {factor})"
            )
        return Grid(
            self.left, self.top, self.resolution * factor, (ny // factor, nx // factor), self.crs
        )

    def coords(self, ydim: str = "y", xdim: str = "x") -> dict[str, tuple[str, np.ndarray]]:
        """Coordinates for an xarray object on this grid."""
        return {ydim: (ydim, self.y), xdim: (xdim, self.x)}

    def to_geobox(self):  # -> odc.geo.geobox.GeoBox (imported lazily)
        """This grid as an ``odc.geo`` GeoBox."""
        from odc.geo.geobox import GeoBox

        return GeoBox(self.shape, self.transform, self.crs)

    def window(self, bbox: tuple[float, float, float, float]) -> tuple[slice, slice]:
        """Row and column slices of the pixels whose centres fall inside ``bbox``.

        ``bbox`` is ``(xmin, ymin, xmax, ymax)`` in the grid's CRS.
        """
        xmin, ymin, xmax, ymax = bbox
        if not (xmin < xmax and ymin < ymax):
            raise ValueError(f"bbox must be (xmin, ymin, xmax, ymax) with min < max, got {bbox}")
        cols = np.flatnonzero((self.x >= xmin) & (self.x <= xmax))
        rows = np.flatnonzero((self.y >= ymin) & (self.y <= ymax))
        if cols.size == 0 or rows.size == 0:
            raise ValueError(
                f"bbox {bbox} holds no pixel centre of the grid with bounds {self.bounds}"
            )
        return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


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


def grid_of(da: xr.DataArray, name: str | None = None, ydim: str = "y", xdim: str = "x") -> Grid:
    """Describe the grid of a 2-D DataArray from its pixel-centre coordinates.

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
    return Grid(float(x[0] - dx / 2), float(y[0] + dy / 2), dx, (y.size, x.size), _crs_string(da))


def _check_nested(name: str, grid: Grid, base: Grid, factor: int) -> None:
    """Raise a NestingError unless ``grid`` is ``base`` zoomed by ``factor``."""
    expected = base.zoom(factor)
    tol = TOLERANCE * expected.resolution
    if abs(grid.resolution - expected.resolution) > tol:
        raise NestingError(
            f"{name}: spacing {grid.resolution:g} m, expected {expected.resolution:g} m "
            f"(base {base.resolution:g} m / {factor})"
        )
    for label, found, want in (
        ("x origin (left edge)", grid.left, expected.left),
        ("y origin (top edge)", grid.top, expected.top),
    ):
        if abs(found - want) > tol:
            raise NestingError(
                f"{name}: {label} {found:.3f} m is offset by {found - want:+.3f} m from the "
                f"base grid's {want:.3f} m (nested grids must share pixel edges)"
            )
    if grid.shape != expected.shape:
        raise NestingError(
            f"{name}: shape {grid.shape}, expected {expected.shape} "
            f"= {factor} x base shape {base.shape}"
        )


def validate_inputs(
    ds: xr.Dataset, crs: str = DEFAULT_CRS, resolution: float | None = BASE_RESOLUTION
) -> Grid:
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
    Grid
        The base grid.

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
    want_crs = _normalise_crs(crs)
    for name, (ydim, xdim, _) in VARIABLES.items():
        da = ds[name]
        if da.dims != (ydim, xdim):
            raise NestingError(f"{name}: dims {da.dims}, expected {(ydim, xdim)}")
        found = _crs_string(da) or _crs_string(ds)
        if found is None:
            raise NestingError(
                f"{name}: no CRS recorded, expected {crs}; set it with ds.rio.write_crs({crs!r})"
            )
        if _normalise_crs(found) != want_crs:
            raise NestingError(f"{name}: CRS {found}, expected {crs}")

    base = grid_of(ds["bed"], "bed")
    if resolution is not None and abs(base.resolution - resolution) > TOLERANCE * resolution:
        raise NestingError(f"bed: spacing {base.resolution:g} m, expected {resolution:g} m")
    for name, (ydim, xdim, factor) in VARIABLES.items():
        if name != "bed":
            _check_nested(name, grid_of(ds[name], name, ydim, xdim), base, factor)
    return Grid(base.left, base.top, base.resolution, base.shape, crs)


def _normalise_crs(crs: str) -> str:
    from pyproj import CRS

    try:
        parsed = CRS.from_user_input(crs)
    except Exception as err:  # pyproj raises its own CRSError
        raise NestingError(f"unrecognised CRS {crs!r}: {err}") from err
    epsg = parsed.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else parsed.to_wkt()


def output_grid(base: Grid) -> Grid:
    """The 250 m output grid of a base grid: centres of its 4 x 4 sub-pixels."""
    return base.zoom(OUTPUT_FACTOR)


def resample_to(
    da: xr.DataArray,
    target: Grid,
    ydim: str = "y",
    xdim: str = "x",
    resampling: Literal["bilinear", "cubic", "average", "nearest"] = "bilinear",
) -> xr.DataArray:
    """Resample a raster onto ``target`` explicitly (bilinear by default).

    Uses odc-geo's reprojection (GDAL warp), which stays lazy for dask-backed
    input. GDAL widens the bilinear kernel when the target is coarser than the
    source (450 m to 500 m velocity), so it also low-pass filters a little, as
    an area-aware resampler should. The result has dims ``(ydim, xdim)``,
    pixel-centre coordinates of ``target`` and its CRS; pixels the source does
    not cover are NaN.

    Parameters
    ----------
    da : xarray.DataArray
        2-D raster with ``y``/``x`` coordinates and a CRS.
    target : Grid
        The grid to resample onto.
    ydim, xdim : str
        Dimension names of the result.
    resampling : str
        GDAL resampling method.
    """
    import odc.geo.xr  # noqa: F401  (registers the .odc accessor)

    if da.rio.crs is None:
        raise NestingError(f"{da.name}: no CRS recorded, cannot resample it onto {target.crs}")
    src = da.astype(np.float32)
    nodata = da.rio.nodata if da.rio.nodata is not None else da.rio.encoded_nodata
    if nodata is not None and not np.isnan(nodata):
        src = src.where(src != nodata)
    src = src.rio.write_nodata(np.nan, encoded=False)
    out = src.odc.reproject(target.to_geobox(), resampling=resampling, dst_nodata=np.nan)
    out = out.rename({out.dims[-2]: ydim, out.dims[-1]: xdim})
    # exact coordinates of the nest (odc computes them from the transform too;
    # assigning ours removes any last-bit differences)
    out = out.assign_coords({ydim: target.y, xdim: target.x})
    return out.rio.write_crs(target.crs).rio.set_spatial_dims(x_dim=xdim, y_dim=ydim)
