"""Assemble the canonical input Dataset from rasters as they come from files."""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr
from affine import Affine

from xdeepbedmap.chunking import rechunk_nested
from xdeepbedmap.grids import (
    BASE_RESOLUTION,
    DEFAULT_CRS,
    TOLERANCE,
    VARIABLES,
    GeoBox,
    NestingError,
    _normalise_crs,
    grid_coords,
    grid_of,
    validate_inputs,
    window,
    zoom_in,
)

__all__ = ["assemble", "as_raster", "resample_to"]

BBox = tuple[float, float, float, float]


def as_raster(
    da: xr.DataArray | xr.Dataset, name: str, variable: str | None = None
) -> xr.DataArray:
    """Turn an opened file into a north-up 2-D DataArray on (``y``, ``x``) with NaN no-data.

    Accepts what rioxarray/intake give: a Dataset (``variable`` picks the data
    variable, else the only one), a leading ``band`` dimension of size one,
    ``lat``/``lon``-free projected ``y``/``x`` coordinates, and an integer
    nodata value (replaced by NaN).
    """
    if isinstance(da, xr.Dataset):
        names = [str(v) for v in da.data_vars]
        if variable is None:
            if len(names) != 1:
                raise ValueError(f"{name}: file has variables {names}; say which one to use")
            variable = names[0]
        if variable not in da.data_vars:
            raise ValueError(f"{name}: variable {variable!r} not in file (has {names})")
        crs = da.rio.crs
        da = da[variable]
        if da.rio.crs is None and crs is not None:
            da = da.rio.write_crs(crs)
    if "band" in da.dims:
        if da.sizes["band"] != 1:
            raise ValueError(f"{name}: {da.sizes['band']} bands, expected one")
        da = da.squeeze("band", drop=True)
    if set(da.dims) != {"y", "x"}:
        raise ValueError(f"{name}: dims {da.dims}, expected ('y', 'x')")
    nodata = da.rio.nodata
    if nodata is None:
        nodata = da.rio.encoded_nodata
    out = da.transpose("y", "x").astype(np.float32)
    if nodata is not None and not np.isnan(nodata):
        out = out.where(out != nodata)
    crs = da.rio.crs
    out = out.sortby("y", ascending=False).sortby("x")
    if crs is not None:
        out = out.rio.write_crs(crs)
    return out.rio.write_nodata(np.nan, encoded=False).rename(name)


def _snap_base_grid(bed: GeoBox, bbox: BBox | None, resolution: float, crs: str) -> GeoBox:
    """The base grid: the bed's own pixels in ``bbox``, or a new aligned 1 km grid."""
    if abs(bed.resolution.x - resolution) <= TOLERANCE * resolution:
        own = bed if bbox is None else bed[window(bed, bbox)]
        return GeoBox(own.shape, own.affine, crs)
    # bed at another resolution (BedMachine 500 m, say): a new grid whose
    # edges are multiples of the resolution (anchor "edge"), inside bbox or
    # the bed; from_bbox would grow a bbox outwards, so shrink it to pixel edges first
    left, bottom, right, top = bbox if bbox is not None else bed.boundingbox.bbox
    inner = (
        np.ceil(left / resolution) * resolution,
        np.ceil(bottom / resolution) * resolution,
        np.floor(right / resolution) * resolution,
        np.floor(top / resolution) * resolution,
    )
    if inner[2] - inner[0] < resolution or inner[3] - inner[1] < resolution:
        raise ValueError(f"bbox {bbox} is smaller than one {resolution:g} m base pixel")
    return GeoBox.from_bbox(inner, crs, resolution=resolution, anchor="edge")


def resample_to(
    da: xr.DataArray,
    target: GeoBox,
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
    target : GeoBox
        The grid to resample onto.
    ydim, xdim : str
        Dimension names of the result.
    resampling : str
        GDAL resampling method.
    """
    import odc.geo.xr  # noqa: F401  (registers the .odc accessor; slow, so only here)

    if da.rio.crs is None:
        raise NestingError(f"{da.name}: no CRS recorded, cannot resample it onto {target.crs}")
    src = da.astype(np.float32)
    nodata = da.rio.nodata if da.rio.nodata is not None else da.rio.encoded_nodata
    if nodata is not None and not np.isnan(nodata):
        src = src.where(src != nodata)
    src = src.rio.write_nodata(np.nan, encoded=False)
    out = src.odc.reproject(target, resampling=resampling, dst_nodata=np.nan)
    out = out.rename({out.dims[-2]: ydim, out.dims[-1]: xdim})
    # exact coordinates of the nest (odc computes them from the transform too;
    # assigning ours removes any last-bit differences)
    out = out.assign_coords(grid_coords(target, ydim, xdim))
    return out.rio.write_crs(str(target.crs)).rio.set_spatial_dims(x_dim=xdim, y_dim=ydim)


def _onto(da: xr.DataArray, target: GeoBox, name: str, ydim: str, xdim: str) -> xr.DataArray:
    """Cut ``da`` to ``target`` if it already nests there, else resample it explicitly."""
    src = grid_of(da, name)
    pixel = target.resolution.x
    rows = cols = slice(0, 0)
    if abs(src.resolution.x - pixel) <= TOLERANCE * pixel:
        # same pixel size within TOLERANCE: compare on the target's pitch and CRS
        # (the CRS is checked already), so float32 coordinates still count as nested
        edges = src.boundingbox
        step = Affine(pixel, 0.0, edges.left, 0.0, target.resolution.y, edges.top)
        try:
            rows, cols = GeoBox(src.shape, step, target.crs).overlap_roi(target, tol=TOLERANCE)
        except ValueError:  # "Incompatible grids": pixel edges offset from the target's
            pass
    if (rows.stop - rows.start, cols.stop - cols.start) == target.shape:
        out = da.isel(y=rows, x=cols).rename({"y": ydim, "x": xdim})
        out = out.assign_coords(grid_coords(target, ydim, xdim))
        resampled = None
    else:
        method = "average" if src.resolution.x < pixel * (1 - TOLERANCE) else "bilinear"
        out = resample_to(da, target, ydim, xdim, resampling=method)
        resampled = f"{method} from {src.resolution.x:g} m"
    out = out.drop_vars("spatial_ref", errors="ignore")
    if resampled:
        out.attrs["xdeepbedmap_resampled"] = resampled
    return out


def assemble(
    bed: xr.DataArray,
    surface: xr.DataArray,
    vx: xr.DataArray,
    vy: xr.DataArray,
    accumulation: xr.DataArray,
    bbox: BBox | None = None,
    crs: str = DEFAULT_CRS,
    resolution: float = BASE_RESOLUTION,
    chunks: int | tuple[int, int] | None = None,
) -> xr.Dataset:
    """Build the canonical input Dataset from separately opened rasters.

    Each raster is cut to the common region; one that does not nest on the
    base grid (another spacing, such as 450 m velocity, or shifted pixel
    edges) is brought onto its nested grid by explicit bilinear resampling
    (area-average when it is finer), and that is recorded in its
    ``xdeepbedmap_resampled`` attribute. Dask-backed inputs stay lazy.

    Parameters
    ----------
    bed, surface, vx, vy, accumulation : xarray.DataArray
        Rasters with ``y``/``x`` coordinates and a CRS (a ``band`` dim of
        size one and Datasets of one variable are accepted).
    bbox : tuple of float, optional
        ``(xmin, ymin, xmax, ymax)`` in the CRS's metres; base pixels whose
        centres fall inside are kept. Default: the bed's extent.
    crs : str
        Required CRS of every input (EPSG:3031).
    resolution : float
        Base-grid spacing (1000 m).
    chunks : int or tuple of int, optional
        Base-grid chunk size; nested variables get nested chunks (see
        :func:`xdeepbedmap.chunking.rechunk_nested`).

    Returns
    -------
    xarray.Dataset
        The canonical inputs, validated by :func:`xdeepbedmap.grids.validate_inputs`.
    """
    rasters = {
        "bed": bed,
        "surface": surface,
        "vx": vx,
        "vy": vy,
        "accumulation": accumulation,
    }
    want = _normalise_crs(crs)
    prepared = {}
    for name, raster in rasters.items():
        da = as_raster(raster, name)
        found = da.rio.crs
        if found is None:
            raise NestingError(
                f"{name}: no CRS recorded, expected {crs}; set it with .rio.write_crs({crs!r})"
            )
        if _normalise_crs(found.to_string()) != want:
            raise NestingError(
                f"{name}: CRS {found.to_string()}, expected {crs} (reproject it explicitly first)"
            )
        prepared[name] = da

    base = _snap_base_grid(grid_of(prepared["bed"], "bed"), bbox, resolution, crs)
    variables = {}
    for name, (ydim, xdim, factor) in VARIABLES.items():
        variables[name] = _onto(prepared[name], zoom_in(base, factor), name, ydim, xdim)
    ds = xr.Dataset(variables).rio.write_crs(crs)
    validate_inputs(ds, crs=crs, resolution=resolution)
    if chunks is not None:
        ds = rechunk_nested(ds, chunks)
    return ds
