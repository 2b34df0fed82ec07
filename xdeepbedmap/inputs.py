"""Assemble the canonical input Dataset from rasters as they come from files."""

from __future__ import annotations

import numpy as np
import xarray as xr

from xdeepbedmap.chunking import rechunk_nested
from xdeepbedmap.grids import (
    BASE_RESOLUTION,
    DEFAULT_CRS,
    TOLERANCE,
    VARIABLES,
    Grid,
    NestingError,
    _normalise_crs,
    grid_of,
    resample_to,
    validate_inputs,
)

__all__ = ["assemble", "as_raster"]

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


def _snap_base_grid(bed: Grid, bbox: BBox | None, resolution: float, crs: str) -> Grid:
    """The base grid: the bed's own pixels in ``bbox``, or a new aligned 1 km grid."""
    if abs(bed.resolution - resolution) <= TOLERANCE * resolution:
        if bbox is None:
            return Grid(bed.left, bed.top, bed.resolution, bed.shape, crs)
        rows, cols = bed.window(bbox)
        return Grid(
            bed.left + cols.start * bed.resolution,
            bed.top - rows.start * bed.resolution,
            bed.resolution,
            (rows.stop - rows.start, cols.stop - cols.start),
            crs,
        )
    # bed at another resolution (BedMachine 500 m, say): a new grid whose
    # edges are multiples of the resolution, covering bbox or the bed
    left, bottom, right, top = bbox if bbox is not None else bed.bounds
    left = np.ceil(left / resolution) * resolution
    top = np.floor(top / resolution) * resolution
    nx = int(np.floor((right - left) / resolution))
    ny = int(np.floor((top - bottom) / resolution))
    if nx < 1 or ny < 1:
        raise ValueError(f"bbox {bbox} is smaller than one {resolution:g} m base pixel")
    return Grid(float(left), float(top), resolution, (ny, nx), crs)


def _onto(da: xr.DataArray, target: Grid, name: str, ydim: str, xdim: str) -> xr.DataArray:
    """Cut ``da`` to ``target`` if it already nests there, else resample it explicitly."""
    src = grid_of(da, name)
    tol = TOLERANCE * target.resolution
    col = (target.left - src.left) / src.resolution
    row = (src.top - target.top) / src.resolution
    aligned = (
        abs(src.resolution - target.resolution) <= tol
        and abs(col - round(col)) * src.resolution <= tol
        and abs(row - round(row)) * src.resolution <= tol
    )
    r0, c0 = int(round(row)), int(round(col))
    covered = r0 >= 0 and c0 >= 0 and r0 + target.shape[0] <= src.shape[0]
    covered = covered and c0 + target.shape[1] <= src.shape[1]
    if aligned and covered:
        out = da.isel(y=slice(r0, r0 + target.shape[0]), x=slice(c0, c0 + target.shape[1]))
        out = out.rename({"y": ydim, "x": xdim}).assign_coords({ydim: target.y, xdim: target.x})
        resampled = None
    else:
        method = "average" if src.resolution < target.resolution * (1 - TOLERANCE) else "bilinear"
        out = resample_to(da, target, ydim, xdim, resampling=method)
        resampled = f"{method} from {src.resolution:g} m"
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
        variables[name] = _onto(prepared[name], base.zoom(factor), name, ydim, xdim)
    ds = xr.Dataset(variables).rio.write_crs(crs)
    validate_inputs(ds, crs=crs, resolution=resolution)
    if chunks is not None:
        ds = rechunk_nested(ds, chunks)
    return ds
