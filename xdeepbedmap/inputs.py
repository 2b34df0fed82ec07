"""Assemble the canonical input Dataset from rasters as they come from files."""

from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr
from affine import Affine

from xdeepbedmap.chunking import rechunk_nested
from xdeepbedmap.crs import CRSMismatchError, crs_label, reproject_advice, same_crs
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
from xdeepbedmap.region import REGION_ATTR, grow_within

__all__ = ["assemble", "as_raster", "resample_to"]

BBox = tuple[float, float, float, float]


def _file_nodata(da: xr.DataArray) -> float | None:
    """The nodata value a file declares (rioxarray's tag or the encoded ``_FillValue``)."""
    nodata = da.rio.nodata
    if nodata is None or np.isnan(nodata):
        encoded = da.rio.encoded_nodata
        nodata = encoded if encoded is not None else nodata
    return None if nodata is None else float(nodata)


def as_raster(
    da: xr.DataArray | xr.Dataset,
    name: str,
    variable: str | None = None,
    nodata: float | None = None,
) -> xr.DataArray:
    """Turn an opened file into a north-up 2-D DataArray on (``y``, ``x``) with NaN no-data.

    Accepts what rioxarray/intake give: a Dataset (``variable`` picks the data
    variable, else the only one), a leading ``band`` dimension of size one,
    ``lat``/``lon``-free projected ``y``/``x`` coordinates, and a nodata value
    (replaced by NaN). Integer sources are masked in their own dtype before
    the conversion to float32, so no arithmetic ever sees the sentinel.

    Parameters
    ----------
    da : xarray.DataArray or xarray.Dataset
        The opened file.
    name : str
        Name of the result (and of the input in error messages).
    variable : str, optional
        Data variable of a multi-variable Dataset.
    nodata : float, optional
        No-data value to apply when the file declares none of its own, or
        only NaN (a NaN fill value cannot hide a numeric sentinel such as
        -9999 written into the data), e.g. the catalog entry's ``nodata``.
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
    sentinels = {_file_nodata(da)}
    if None in sentinels or any(np.isnan(v) for v in sentinels if v is not None):
        sentinels.add(None if nodata is None else float(nodata))
    crs = da.rio.crs
    out = da.transpose("y", "x")
    for value in sorted(v for v in sentinels if v is not None and not np.isnan(v)):
        out = out.where(out != value)  # in the source dtype: int16 32767 masked exactly
    out = out.astype(np.float32).sortby("y", ascending=False).sortby("x")
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


def _check_crs(da: xr.DataArray, name: str, crs: str) -> xr.DataArray:
    """``da`` with the canonical CRS if its own equals it in parameters, else an error."""
    found = da.rio.crs
    if found is None:
        raise NestingError(
            f"{name}: no CRS recorded, expected {crs}; set it with .rio.write_crs({crs!r}) "
            "(catalog entries fall back to their metadata 'crs')"
        )
    if not same_crs(found, crs):
        where = str(da.attrs.get("source_path", ""))
        advice = (
            reproject_advice(where, crs, da.attrs.get("source_variable"))
            if where
            else (f"reproject it first, e.g. da.odc.reproject({crs!r}) or gdalwarp -t_srs {crs}")
        )
        raise CRSMismatchError(
            f"{name}: CRS {crs_label(found)} differs from {crs_label(crs)}, which every input "
            f"must share; {advice}"
        )
    # write the canonical form: odc/GDAL then see one CRS and never warp between
    # two spellings of it
    return da.rio.write_crs(crs)


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
    margin: int = 0,
    ice_mask: xr.DataArray | None = None,
) -> xr.Dataset:
    """Build the canonical input Dataset from separately opened rasters.

    Each raster is cut to the common region; one that does not nest on the
    base grid (another spacing, such as 450 m velocity, or shifted pixel
    edges) is brought onto its nested grid by explicit resampling: an area
    average when the source is finer (450 m velocity onto 500 m, 500 m bed
    onto 1 km), bilinear otherwise; that is recorded in its
    ``xdeepbedmap_resampled`` attribute. Dask-backed inputs stay lazy.

    Parameters
    ----------
    bed, surface, vx, vy, accumulation : xarray.DataArray
        Rasters with ``y``/``x`` coordinates and a CRS (a ``band`` dim of
        size one and Datasets of one variable are accepted). A CRS equal to
        ``crs`` in its projection parameters counts as ``crs``
        (:func:`xdeepbedmap.crs.same_crs`).
    bbox : tuple of float, optional
        ``(xmin, ymin, xmax, ymax)`` in the CRS's metres; base pixels whose
        centres fall inside are kept (for a bed of another resolution: the
        base pixels wholly inside). Default: the bed's extent.
    crs : str
        Required CRS of every input (EPSG:3031).
    resolution : float
        Base-grid spacing (1000 m).
    chunks : int or tuple of int, optional
        Base-grid chunk size; nested variables get nested chunks (see
        :func:`xdeepbedmap.chunking.rechunk_nested`).
    margin : int
        With ``bbox``: base pixels of the sources' own data to add on every
        side (fewer where the bed ends); the requested region is recorded in
        ``attrs["xdeepbedmap_region"]`` for :func:`xdeepbedmap.region.crop_to_region`.
    ice_mask : xarray.DataArray, optional
        Fraction of ice (0..1) on any grid; added as ``ice_mask`` on the base
        grid (area-averaged when finer), chunked like ``bed``.

    Returns
    -------
    xarray.Dataset
        The canonical inputs, validated by :func:`xdeepbedmap.grids.validate_inputs`.

    Raises
    ------
    CRSMismatchError
        If an input's CRS differs from ``crs`` (naming both, and how to reproject).
    """
    rasters = {
        "bed": bed,
        "surface": surface,
        "vx": vx,
        "vy": vy,
        "accumulation": accumulation,
    }
    _normalise_crs(crs)  # an unparsable target CRS fails here
    prepared = {name: _check_crs(as_raster(r, name), name, crs) for name, r in rasters.items()}
    bed_grid = grid_of(prepared["bed"], "bed")
    requested = _snap_base_grid(bed_grid, bbox, resolution, crs)
    base = requested
    if bbox is not None and margin:
        base, _ = grow_within(requested, bed_grid, margin)
    variables = {}
    for name, (ydim, xdim, factor) in VARIABLES.items():
        variables[name] = _onto(prepared[name], zoom_in(base, factor), name, ydim, xdim)
    if ice_mask is not None:
        mask = _check_crs(as_raster(ice_mask, "ice_mask"), "ice_mask", crs)
        variables["ice_mask"] = _onto(mask, base, "ice_mask", "y", "x").clip(0.0, 1.0)
    ds = xr.Dataset(variables).rio.write_crs(crs)
    if bbox is not None:
        ds.attrs[REGION_ATTR] = [float(v) for v in requested.boundingbox.bbox]
    validate_inputs(ds, crs=crs, resolution=resolution)
    if chunks is not None:
        ds = rechunk_nested(ds, chunks)
    return ds
