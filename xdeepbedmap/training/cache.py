"""The Zarr tile cache: tiles of several regions extracted once, reused while the recipe holds.

A cache records its recipe (tile layout, and per region its geometry plus a
fingerprint of its values); it is reused only for the same recipe and refused
for another, never silently mixed.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xdeepbedmap.atomic import atomic_path
from xdeepbedmap.grids import validate_inputs
from xdeepbedmap.training.extract import extract_regions
from xdeepbedmap.training.layout import TileLayout

__all__ = ["build_tiles", "open_tiles"]


def build_tiles(
    regions: list[tuple[xr.Dataset, xr.DataArray]],
    store: str | PathLike[str] | None = None,
    layout: TileLayout | None = None,
    block: int = 256,
    progress: bool = False,
) -> xr.Dataset:
    """Extract the tiles of several regions into one Dataset, cached in Zarr.

    Parameters
    ----------
    regions : list of (inputs, truth)
        Canonical inputs and their 250 m truth.
    store : path, optional
        Zarr cache. If it exists and was built with the same layout and region
        descriptions it is reused; otherwise it is built under
        ``<store>.partial`` and renamed when complete.
    layout : TileLayout, optional
        Tile geometry.
    block : int
        Extraction block size in base pixels (memory bound).
    progress : bool
        Show a progress bar over regions and blocks.

    Returns
    -------
    xarray.Dataset
        ``x``, ``w1``, ``w2``, ``w3``, ``y`` on a ``tile`` dimension, plus
        ``region`` and ``origin`` (which region and base pixel each tile came
        from) and ``coverage`` (valid fraction of each tile's truth before
        filling). ``attrs["coverage"]`` (JSON) holds per region the measured
        truth coverage and tile counts (:func:`extract_regions`). Lazy
        (Zarr-backed) when ``store`` is given.

    Raises
    ------
    ValueError
        If ``store`` holds tiles of another recipe, or no region has a NaN-free tile.
    """
    layout = layout or TileLayout()
    recipe = {"layout": asdict(layout), "regions": [_describe(ds, t) for ds, t in regions]}
    if store is not None:
        store = Path(store)
        if store.exists():
            cached = xr.open_zarr(store)
            if json.loads(cached.attrs.get("recipe", "null")) == recipe:
                return cached
            raise ValueError(
                f"{store} holds tiles of another recipe ({cached.attrs.get('recipe')}); "
                "remove it or pass another store"
            )
    stats: list[dict[str, float]] = []
    tiles = _as_dataset(extract_regions(regions, layout, block, progress, stats), recipe)
    tiles.attrs["coverage"] = json.dumps(stats)
    if store is None:
        return tiles
    with atomic_path(store) as partial:
        with warnings.catch_warnings():  # zarr 3 calls consolidated metadata non-standard
            warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
            tiles.chunk({"tile": 256}).to_zarr(partial, mode="w", consolidated=True)
    return xr.open_zarr(store)


def _describe(ds: xr.Dataset, truth: xr.DataArray) -> dict[str, Any]:
    """Where a region is and a fingerprint of its values (dask's deterministic token)."""
    from dask.base import tokenize

    base = validate_inputs(ds)
    return {
        "left": base.boundingbox.left,
        "top": base.boundingbox.top,
        "shape": list(base.shape),
        "token": tokenize(ds, truth),
    }


def _as_dataset(pieces: list[dict[str, np.ndarray]], recipe: dict[str, Any]) -> xr.Dataset:
    data = {name: np.concatenate([p[name] for p in pieces]) for name in pieces[0]}
    # row-major order of (region, row, column): independent of the extraction block size
    order = np.lexsort((data["origin"][:, 1], data["origin"][:, 0], data["region"]))
    data = {name: value[order] for name, value in data.items()}
    dims = {
        "x": ("tile", "channel_x", "y_base", "x_base"),
        "w1": ("tile", "channel_w1", "y_surface", "x_surface"),
        "w2": ("tile", "channel_w2", "y_velocity", "x_velocity"),
        "w3": ("tile", "channel_w3", "y_base", "x_base"),
        "y": ("tile", "channel_y", "y_out", "x_out"),
        "origin": ("tile", "axis"),
        "region": ("tile",),
        "coverage": ("tile",),
    }
    ds = xr.Dataset({name: (dims[name], value) for name, value in data.items()})
    ds.attrs["recipe"] = json.dumps(recipe)
    return ds


def open_tiles(store: str | PathLike[str]) -> xr.Dataset:
    """Open a tile cache written by :func:`build_tiles`."""
    return xr.open_zarr(Path(store))
