"""Cloud-Optimised GeoTIFF output, streamed chunk by chunk."""

from __future__ import annotations

import threading
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xdeepbedmap.atomic import atomic_path
from xdeepbedmap.cluster import current_client, keep_annotations

__all__ = ["to_cog"]


def _write_lock() -> Any:
    """A lock for rasterio writes: a cluster-wide one under distributed."""
    if current_client() is None:
        return threading.Lock()
    from distributed import Lock

    return Lock("xdeepbedmap-cog-write")


def _write_tiled(array: xr.DataArray, path: Path, blocksize: int) -> None:
    """Stream ``array`` chunk by chunk into a tiled, compressed GeoTIFF."""
    with keep_annotations():  # on a cluster, GPU tasks stay on GPU workers
        array.rio.to_raster(
            path,
            driver="GTiff",
            tiled=True,
            blockxsize=blocksize,
            blockysize=blocksize,
            compress="DEFLATE",
            predictor=3,
            BIGTIFF="IF_SAFER",
            lock=_write_lock(),
        )


def to_cog(
    array: xr.DataArray,
    path: str | PathLike[str],
    blocksize: int = 512,
    overwrite: bool = False,
) -> Path:
    """Write a georeferenced DataArray as a tiled, compressed Cloud-Optimised GeoTIFF.

    The data are streamed chunk by chunk into a tiled GeoTIFF, then copied to
    a COG (DEFLATE with floating-point predictor, internal overviews) with the
    CRS and nodata kept. The file appears under ``path`` only when complete
    (:func:`xdeepbedmap.atomic.atomic_path`).

    Parameters
    ----------
    array : xarray.DataArray
        2-D, with ``y``/``x`` coordinates and a CRS (rioxarray).
    path : str or path-like
        Destination ``.tif``.
    blocksize : int
        COG tile size in pixels.
    overwrite : bool
        Replace an existing file.
    """
    import rasterio.shutil

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if array.rio.crs is None:
        raise ValueError(f"{array.name}: no CRS recorded; cannot write a GeoTIFF")
    nodata = array.rio.nodata if array.rio.nodata is not None else array.rio.encoded_nodata
    # the tiled GeoTIFF dask streams into; the COG driver can only copy a finished file
    staging = path.with_name(path.name + ".staging.tif")
    with atomic_path(path, overwrite=overwrite) as tmp:
        try:
            out = array.copy()
            out.encoding = {}  # a reopened Zarr/netCDF encoding would clash with the nodata attr
            out = out.rio.write_nodata(np.nan if nodata is None else nodata, encoded=False)
            _write_tiled(out, staging, blocksize)
            rasterio.shutil.copy(
                staging,
                tmp,
                driver="COG",
                COMPRESS="DEFLATE",
                PREDICTOR="YES",
                BLOCKSIZE=blocksize,
                BIGTIFF="IF_SAFER",
                OVERVIEWS="AUTO",
            )
        finally:
            staging.unlink(missing_ok=True)
    return path
