"""Cloud-Optimised GeoTIFF output, streamed chunk by chunk.

Both intermediate files (the tiled GeoTIFF dask streams into and the COG
copied from it) live inside a ``<name>.partial`` folder, so an interrupted
write never leaves a file that opens as a GeoTIFF beside the output; the
next write of the same path clears that folder. The COG replaces an
existing output in one ``os.replace``, only when complete.
"""

from __future__ import annotations

import threading
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xdeepbedmap.atomic import partial_path, publish, remove
from xdeepbedmap.cluster import current_client, keep_annotations
from xdeepbedmap.io.lock import output_lock

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
    CRS and nodata kept. The file appears under ``path`` only when complete,
    replacing an existing one in one step; intermediate files stay inside
    ``<path>.partial/`` (removed on success, and by the next write after a crash).

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

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    OutputLockedError
        If another process is writing ``path``.
    """
    import rasterio.shutil

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if array.rio.crs is None:
        raise ValueError(f"{array.name}: no CRS recorded; cannot write a GeoTIFF")
    nodata = array.rio.nodata if array.rio.nodata is not None else array.rio.encoded_nodata
    with output_lock(path):
        work = partial_path(path)
        remove(work)  # left by an interrupted write
        # where earlier versions staged, beside the output: it opened as a valid GeoTIFF
        remove(path.with_name(path.name + ".staging.tif"))
        work.mkdir(parents=True)
        try:
            out = array.copy()
            out.encoding = {}  # a reopened Zarr/netCDF encoding would clash with the nodata attr
            out = out.rio.write_nodata(np.nan if nodata is None else nodata, encoded=False)
            # the tiled GeoTIFF dask streams into; the COG driver can only copy a finished file
            _write_tiled(out, work / "tiled.tif", blocksize)
            rasterio.shutil.copy(
                work / "tiled.tif",
                work / "cog.tif",
                driver="COG",
                COMPRESS="DEFLATE",
                PREDICTOR="YES",
                BLOCKSIZE=blocksize,
                BIGTIFF="IF_SAFER",
                OVERVIEWS="AUTO",
            )
            publish(work / "cog.tif", path, overwrite=overwrite)
        finally:
            remove(work)
    return path
