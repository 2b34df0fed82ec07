"""Small, format-faithful stand-ins of the real Antarctic products.

Each writer produces a file with the real product's file name, variable
names, dtype, nodata convention, pixel registration, global grid lines and
CRS encoding (see ../shared/design.md, "Real products"), cut to a small
window of the continent. The values are synthetic: planes whose value says
where a pixel is, so a test can check placement after every resampling
(bilinear and area-average interpolation reproduce a plane exactly):
``value = offset + sx * (x - X0) / 1000 + sy * (y - Y0) / 1000``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

#: A point near the window's centre the planes are referred to (metres, EPSG:3031).
X0, Y0 = -1_580_000.0, -380_000.0
#: Half-width of the default window (metres): a 12 km bbox around (X0, Y0) read
#: with the default margin (24 base px) plus the velocity's area average fits inside.
HALF_WIDTH = 36_000.0
#: The default window of the stand-ins: 72 x 72 km around (X0, Y0).
EXTENT = (X0 - HALF_WIDTH, Y0 - HALF_WIDTH, X0 + HALF_WIDTH, Y0 + HALF_WIDTH)

#: BEDMAP2's own WKT: a polar stereographic CRS named "unnamed", no EPSG code.
BEDMAP2_WKT = (
    'PROJCS["unnamed",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,'
    '298.257223563,AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0],'
    'UNIT["degree",0.0174532925199433]],PROJECTION["Polar_Stereographic"],'
    'PARAMETER["latitude_of_origin",-71],PARAMETER["central_meridian",0],'
    'PARAMETER["scale_factor",1],PARAMETER["false_easting",0],PARAMETER["false_northing",0],'
    'UNIT["metre",1,AUTHORITY["EPSG","9001"]]]'
)

#: CF grid-mapping attributes of EPSG:3031 as NetCDF products write them.
CF_POLAR_STEREO = {
    "grid_mapping_name": "polar_stereographic",
    "straight_vertical_longitude_from_pole": 0.0,
    "latitude_of_projection_origin": -90.0,
    "standard_parallel": -71.0,
    "false_easting": 0.0,
    "false_northing": 0.0,
    "semi_major_axis": 6378137.0,
    "inverse_flattening": 298.257223563,
}


@dataclass(frozen=True)
class Plane:
    """``offset + sx * (x - X0) / 1000 + sy * (y - Y0) / 1000``."""

    offset: float
    sx: float
    sy: float

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.offset + self.sx * (x - X0) / 1000.0 + self.sy * (y - Y0) / 1000.0


PLANES = {
    "bed": Plane(-200.0, 3.0, -2.0),
    "surface": Plane(1500.0, 1.5, 2.5),
    "vx": Plane(120.0, 0.8, 0.3),
    "vy": Plane(-60.0, -0.4, 0.9),
    "accumulation": Plane(200.0, 0.5, -0.25),
}


def centres(first: float, step: float, count: int) -> np.ndarray:
    """``count`` pixel centres from ``first`` in steps of ``step`` (float64)."""
    return first + step * np.arange(count, dtype=np.float64)


def on_global_grid(origin: float, step: float, lo: float, hi: float) -> np.ndarray:
    """Centres ``origin + step * i`` of a global grid that fall within ``[lo, hi]``."""
    first = np.ceil((lo - origin) / step)
    last = np.floor((hi - origin) / step)
    return origin + step * np.arange(first, last + 1, dtype=np.float64)


def _grid(origin: float, step: float, extent: tuple[float, float, float, float]):
    xmin, ymin, xmax, ymax = extent
    x = on_global_grid(origin, step, xmin, xmax)
    y = on_global_grid(origin, step, ymin, ymax)[::-1]  # north-up
    return x, y


def _write_tif(values, x, y, path: Path, crs: str, nodata, dtype) -> Path:
    da = xr.DataArray(values.astype(dtype), dims=("y", "x"), coords={"y": y, "x": x})
    da = da.rio.write_crs(crs)
    if nodata is not None:
        da = da.rio.write_nodata(nodata, encoded=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    da.rio.to_raster(path, tiled=True, blockxsize=256, blockysize=256, compress="DEFLATE")
    return path


def write_bedmap2(data_dir: Path, extent, ocean_x: float | None = None) -> Path:
    """``bedmap2_tiff/bedmap2_bed.tif``: int16, nodata 32767, WKT "unnamed", 1 km.

    Global grid: outer edges at +-3,333,500 m, so centres on multiples of 1000 m.
    West of ``ocean_x`` the bed is a flat -800 m seabed (bathymetry, valid data).
    """
    x, y = _grid(-3_333_000.0, 1000.0, extent)
    xx, yy = np.meshgrid(x, y)
    values = np.round(PLANES["bed"](xx, yy))
    if ocean_x is not None:
        values = np.where(xx < ocean_x, -800.0, values)
    values[0, 0] = 32767  # one no-data pixel in a corner
    path = data_dir / "bedmap2_tiff" / "bedmap2_bed.tif"
    return _write_tif(values, x, y, path, BEDMAP2_WKT, 32767, np.int16)


def write_rema(data_dir: Path, extent, gap: tuple[float, float, float, float] | None = None):
    """``REMA_100m_dem.tif``: float32, nodata -9999, EPSG:3031, edges on multiples of 100 m."""
    x, y = _grid(-3_000_050.0, 100.0, extent)
    xx, yy = np.meshgrid(x, y)
    values = PLANES["surface"](xx, yy)
    if gap is not None:
        gx0, gy0, gx1, gy1 = gap
        values = np.where((xx > gx0) & (xx < gx1) & (yy > gy0) & (yy < gy1), -9999.0, values)
    return _write_tif(
        values, x, y, data_dir / "REMA_100m_dem.tif", "EPSG:3031", -9999.0, np.float32
    )


def write_arthern(data_dir: Path, extent) -> Path:
    """``Arthern_accumulation_bedmap2_grid1.tif``: BEDMAP2 grid, -9999 with NO nodata tag."""
    x, y = _grid(-3_333_000.0, 1000.0, extent)
    xx, yy = np.meshgrid(x, y)
    values = PLANES["accumulation"](xx, yy)
    values[-1, -1] = -9999.0
    path = data_dir / "Arthern_accumulation_bedmap2_grid1.tif"
    return _write_tif(values, x, y, path, BEDMAP2_WKT, None, np.float32)


def _cf_dataset(variables: dict[str, np.ndarray], x, y, crs_mode: str, mapping: str):
    """A NetCDF-style Dataset with the CRS as WKT, as CF parameters only, or absent."""
    ds = xr.Dataset(
        {name: (("y", "x"), values) for name, values in variables.items()},
        coords={"x": ("x", x, {"units": "m"}), "y": ("y", y, {"units": "m"})},
    )
    if crs_mode == "absent":
        return ds
    attrs = dict(CF_POLAR_STEREO)
    if crs_mode == "wkt":
        from pyproj import CRS

        attrs["crs_wkt"] = CRS.from_epsg(3031).to_wkt()
    ds[mapping] = xr.DataArray(np.int32(0), attrs=attrs)
    for name in variables:
        ds[name].attrs["grid_mapping"] = mapping
    return ds


def write_measures(data_dir: Path, extent, version: int = 1, crs_mode: str = "cf") -> Path:
    """MEaSUREs velocity, 450 m, centres at -2,800,000 + 450 i, ``VX``/``VY`` in m/yr.

    ``crs_mode``: ``"cf"`` (CF grid-mapping parameters only, as the products
    ship), ``"wkt"`` (CF plus ``crs_wkt``) or ``"absent"``.
    """
    x, y = _grid(-2_800_000.0, 450.0, extent)
    xx, yy = np.meshgrid(x, y)
    variables = {
        "VX": PLANES["vx"](xx, yy).astype(np.float32),
        "VY": PLANES["vy"](xx, yy).astype(np.float32),
    }
    name = (
        "antarctic_ice_vel_phase_map_v01.nc"
        if version == 1
        else "antarctica_ice_velocity_450m_v2.nc"
    )
    ds = _cf_dataset(variables, x, y, crs_mode, "coord_system")
    for var in ("VX", "VY"):
        ds[var].attrs["units"] = "meter/year"
    path = data_dir / name
    ds.to_netcdf(path, engine="netcdf4")
    return path


#: BedMachine mask values (as in the product).
OCEAN, ICE_FREE, GROUNDED, FLOATING, VOSTOK = 0, 1, 2, 3, 4


def write_bedmachine(
    data_dir: Path,
    extent,
    ocean_x: float | None = None,
    crs_mode="cf",
    floating: tuple[float, float] | None = None,
) -> Path:
    """``BedMachineAntarctica-v3.nc``: 500 m, centres on multiples of 500 m.

    Variables ``bed``, ``surface``, ``thickness`` (float32), ``mask`` (int8:
    0 ocean, 2 grounded, 3 floating), ``errbed``; CRS as a CF ``mapping``
    variable (``crs_mode="cf"``), or only as a global ``proj4`` attribute
    (``"global"``). West of ``ocean_x``: ocean with -800 m bathymetry;
    ``floating = (x0, x1)``: floating ice (mask 3) where ``x0 <= x < x1``.
    """
    x, y = _grid(-3_333_000.0, 500.0, extent)
    xx, yy = np.meshgrid(x, y)
    bed = PLANES["bed"](xx, yy).astype(np.float32)
    surface = PLANES["surface"](xx, yy).astype(np.float32)
    mask = np.full(bed.shape, GROUNDED, dtype=np.int8)
    if ocean_x is not None:
        ocean = xx < ocean_x
        bed[ocean], surface[ocean], mask[ocean] = -800.0, 0.0, OCEAN
    if floating is not None:
        mask[(xx >= floating[0]) & (xx < floating[1])] = FLOATING
    variables = {
        "bed": bed,
        "surface": surface,
        "thickness": np.maximum(surface - bed, 0).astype(np.float32),
        "mask": mask,
        "errbed": np.full(bed.shape, 50.0, dtype=np.float32),
    }
    ds = _cf_dataset(variables, x, y, "cf" if crs_mode == "cf" else "absent", "mapping")
    if crs_mode == "global":
        ds.attrs["proj4"] = "+init=epsg:3031"
    path = data_dir / "BedMachineAntarctica-v3.nc"
    ds.to_netcdf(path, engine="netcdf4")
    return path


def write_bedmap3(data_dir: Path, extent) -> Path:
    """``bedmap3.nc``: 500 m, ``bed_topography`` float32 with NaN no-data, CF mapping."""
    x, y = _grid(-3_333_000.0, 500.0, extent)
    xx, yy = np.meshgrid(x, y)
    bed = PLANES["bed"](xx, yy).astype(np.float32)
    ds = _cf_dataset({"bed_topography": bed}, x, y, "cf", "crs")
    path = data_dir / "bedmap3.nc"
    ds.to_netcdf(path, engine="netcdf4")
    return path


def write_all(data_dir: Path, extent=None, **kwargs) -> dict[str, Path]:
    """Every product of the ``antarctica`` catalog over ``extent`` (default :data:`EXTENT`)."""
    extent = extent or EXTENT
    data_dir = Path(data_dir)
    return {
        "bedmap2": write_bedmap2(data_dir, extent, kwargs.get("ocean_x")),
        "rema": write_rema(data_dir, extent, kwargs.get("gap")),
        "measures_v1": write_measures(data_dir, extent, 1, kwargs.get("crs_mode", "cf")),
        "measures_v2": write_measures(data_dir, extent, 2, kwargs.get("crs_mode", "cf")),
        "arthern": write_arthern(data_dir, extent),
        "bedmachine": write_bedmachine(data_dir, extent, kwargs.get("ocean_x")),
        "bedmap3": write_bedmap3(data_dir, extent),
    }
