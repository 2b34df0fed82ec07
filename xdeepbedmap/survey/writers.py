"""Write and reopen gridded survey truth: GeoTIFF (one file per layer) or Zarr.

GeoTIFF layout: the bed goes to ``path`` as a single-band float32 GeoTIFF, so
every reader of a truth grid (catalog entries, ``rioxarray.open_rasterio``)
takes it as is; ``count`` and ``distance`` go beside it as
``<stem>_count.tif`` and ``<stem>_distance.tif``. (One 3-band file would need
a band selector everywhere a truth grid is read, and GeoTIFF bands share one
dtype.) Zarr holds the three layers in one store. Both are written with
:func:`xdeepbedmap.atomic.atomic_path`: readers never see half a file.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import rioxarray
import xarray as xr

from xdeepbedmap.atomic import atomic_path
from xdeepbedmap.survey.errors import SurveyError

__all__ = ["LAYERS", "layer_paths", "open_truth_layers", "write_geotiff", "write_zarr"]

#: Layers of a gridded survey truth, in file order.
LAYERS = ("bed", "count", "distance")


def layer_paths(path: str | PathLike[str]) -> dict[str, Path]:
    """GeoTIFF path of each layer: ``path`` for the bed, ``<stem>_<layer>.tif`` beside it."""
    path = Path(path)
    return {
        name: path if name == "bed" else path.with_name(f"{path.stem}_{name}{path.suffix}")
        for name in LAYERS
    }


def _check(ds: xr.Dataset) -> None:
    missing = [name for name in LAYERS if name not in ds]
    if missing:
        raise SurveyError(f"survey truth lacks layer(s) {missing}; it has {list(ds.data_vars)}")


def write_geotiff(
    ds: xr.Dataset, path: str | PathLike[str], overwrite: bool = False
) -> dict[str, Path]:
    """Write ``bed``, ``count`` and ``distance`` as three tiled, compressed GeoTIFFs.

    Returns the path of each layer (see :func:`layer_paths`).
    """
    _check(ds)
    paths = layer_paths(path)
    for name, target in paths.items():
        da = ds[name].astype(np.float32 if name != "count" else np.int32)
        if name != "count":
            da = da.rio.write_nodata(np.nan, encoded=False)
        with atomic_path(target, overwrite=overwrite) as tmp:
            da.rio.to_raster(
                tmp, driver="GTiff", compress="DEFLATE", tiled=True, blockxsize=256, blockysize=256
            )
    return paths


def write_zarr(ds: xr.Dataset, path: str | PathLike[str], overwrite: bool = False) -> Path:
    """Write the three layers (and attributes, CRS) to one Zarr store."""
    _check(ds)
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        # unconsolidated: Zarr format 3 has no consolidated metadata (xarray warns)
        ds.to_zarr(tmp, mode="w", consolidated=False)
    return path


def open_truth_layers(path: str | PathLike[str]) -> xr.Dataset:
    """Reopen a truth written by :func:`write_geotiff` or :func:`write_zarr`."""
    path = Path(path)
    if path.is_dir():
        return xr.open_zarr(path, consolidated=False, decode_coords="all")
    layers = {}
    for name, layer_path in layer_paths(path).items():
        if not layer_path.exists():
            raise SurveyError(f"survey truth layer {name!r}: {layer_path} does not exist")
        da = rioxarray.open_rasterio(layer_path, masked=name != "count").squeeze("band", drop=True)
        layers[name] = da.drop_vars("spatial_ref", errors="ignore")
    ds = xr.Dataset(layers)
    return ds.rio.write_crs(rioxarray.open_rasterio(path).rio.crs)
