"""Training tiles cut from the same chunked arrays the inference reads.

A tile is one generator training example: an ``n x n`` base-grid window of
``bed`` and ``accumulation`` (default 11 x 11), the matching ``10n`` surface and
``2n`` velocity windows, and the ``4(n-2)`` ground-truth window the generator
predicts (default 36 x 36 at 250 m, the paper's 9 km tiles). Tiles are laid out
on a sliding window over the truth grid and kept only when every value in
them is valid (no NaN).

Extraction walks the region in blocks of base pixels, computing only each
block's inputs (plus the 10 px a tile reaches beyond it), so memory is bounded
by the block size, not the region. Tiles can be cached once to a Zarr store
(:func:`build_tiles`) and read back by a torch :class:`TileDataset`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset

from xdeepbedmap.atomic import atomic_path
from xdeepbedmap.grids import (
    OUTPUT_FACTOR,
    TOLERANCE,
    VARIABLES,
    Grid,
    grid_of,
    output_grid,
    validate_inputs,
)

__all__ = [
    "TileDataset",
    "TileLayout",
    "align_truth",
    "build_tiles",
    "extract_tiles",
    "grid_points",
    "open_tiles",
    "split_tiles",
]

#: Arrays of a tile, in generator argument order, then the target.
TILE_ARRAYS = ("x", "w1", "w2", "w3", "y")


@dataclass(frozen=True)
class TileLayout:
    """Where tiles sit on a region.

    Attributes
    ----------
    base_size : int
        Base-grid window size ``n`` (the output tile is ``4(n-2)`` px).
    stride : int
        Step between tiles in 250 m output pixels (a multiple of 4, so every
        tile stays nested in the base grid).
    """

    base_size: int = 11
    stride: int = 36

    def __post_init__(self) -> None:
        if self.base_size < 3:
            raise ValueError(f"base_size must be >= 3, got {self.base_size}")
        if self.stride < OUTPUT_FACTOR or self.stride % OUTPUT_FACTOR:
            raise ValueError(
                f"stride must be a positive multiple of 4 output px, got {self.stride}"
            )

    @property
    def tile_size(self) -> int:
        """Output tile size in 250 m pixels."""
        return OUTPUT_FACTOR * (self.base_size - 2)

    def origins(self, base_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Base-grid rows and columns of the tiles' top-left input pixels."""
        step = self.stride // OUTPUT_FACTOR
        rows = np.arange(0, base_shape[0] - self.base_size + 1, step)
        cols = np.arange(0, base_shape[1] - self.base_size + 1, step)
        return rows, cols


def align_truth(truth: xr.DataArray, base: Grid) -> xr.DataArray:
    """Put a 250 m truth grid onto the output grid of ``base`` (NaN where it has no data).

    The truth may cover only part of the region but its pixels must be the
    4 x 4 sub-pixels of the base grid.

    Raises
    ------
    ValueError
        If the truth's spacing or pixel offsets do not nest in ``base``.
    """
    target = output_grid(base)
    grid = grid_of(truth, "truth")
    if abs(grid.resolution - target.resolution) > 1e-6 * target.resolution:
        raise ValueError(
            f"truth: expected {target.resolution:g} m pixels, found {grid.resolution:g} m"
        )
    for axis, mine, theirs in (("x", grid.left, target.left), ("y", grid.top, target.top)):
        offset = ((mine - theirs) / target.resolution) % 1.0
        if min(offset, 1.0 - offset) > TOLERANCE:
            raise ValueError(
                f"truth: {axis} pixel edges are offset by {offset * target.resolution:.3f} m "
                "from the 250 m output grid of the inputs"
            )
    return truth.reindex(
        y=target.y, x=target.x, method="nearest", tolerance=0.25 * target.resolution
    )


def grid_points(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, grid: Grid, min_points: int = 1
) -> xr.DataArray:
    """Grid scattered bed picks (radar lines) onto a 250 m grid by cell mean.

    Cells with fewer than ``min_points`` picks are NaN, so tiles are only cut
    where surveys actually constrain the bed.
    """
    x, y, z = (np.asarray(a, dtype=np.float64).ravel() for a in (x, y, z))
    ny, nx = grid.shape
    col = np.floor((x - grid.left) / grid.resolution).astype(np.int64)
    row = np.floor((grid.top - y) / grid.resolution).astype(np.int64)
    inside = (row >= 0) & (row < ny) & (col >= 0) & (col < nx) & np.isfinite(z)
    flat = row[inside] * nx + col[inside]
    total = np.bincount(flat, weights=z[inside], minlength=ny * nx)
    count = np.bincount(flat, minlength=ny * nx)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count >= min_points, total / count, np.nan).reshape(ny, nx)
    out = xr.DataArray(mean.astype(np.float32), dims=("y", "x"), coords=grid.coords(), name="bed")
    return out.rio.write_crs(grid.crs).rio.write_nodata(np.nan, encoded=False)


def _blocks(size: int, block: int) -> Iterator[tuple[int, int]]:
    """Row/column ranges of tile origins per extraction block."""
    for start in range(0, size, block):
        yield start, min(start + block, size)


def extract_tiles(
    inputs: xr.Dataset,
    truth: xr.DataArray,
    layout: TileLayout | None = None,
    block: int = 256,
) -> Iterator[dict[str, np.ndarray]]:
    """Yield NaN-free tiles block by block.

    Parameters
    ----------
    inputs : xarray.Dataset
        Canonical inputs, lazy or in memory.
    truth : xarray.DataArray
        250 m ground truth nested in the inputs' output grid (any coverage).
    layout : TileLayout, optional
        Tile size and stride (default: the paper's 11 x 11 base / 36 x 36 output).
    block : int
        Base pixels of tile origins per extraction block (memory bound).

    Yields
    ------
    dict of numpy.ndarray
        Per block: ``x`` (k, 1, n, n), ``w1`` (k, 1, 10n, 10n), ``w2`` (k, 2, 2n, 2n),
        ``w3`` (k, 1, n, n), ``y`` (k, 1, t, t) float32 and ``origin`` (k, 2), the
        base row/column of each tile's input window.
    """
    layout = layout or TileLayout()
    base = validate_inputs(inputs)
    truth = align_truth(truth, base)
    n, t = layout.base_size, layout.tile_size
    rows, cols = layout.origins(base.shape)
    for r0, r1 in _blocks(len(rows), block):
        for c0, c1 in _blocks(len(cols), block):
            tile_rows, tile_cols = rows[r0:r1], cols[c0:c1]
            if tile_rows.size == 0 or tile_cols.size == 0:
                continue
            # base window of this block: origins plus the n - 1 px the last tile reaches
            by = slice(int(tile_rows[0]), int(tile_rows[-1]) + n)
            bx = slice(int(tile_cols[0]), int(tile_cols[-1]) + n)
            target = truth.isel(
                y=slice(OUTPUT_FACTOR * (by.start + 1), OUTPUT_FACTOR * (by.stop - 1)),
                x=slice(OUTPUT_FACTOR * (bx.start + 1), OUTPUT_FACTOR * (bx.stop - 1)),
            ).values
            windows = _windows_of(target, tile_rows - by.start, tile_cols - bx.start, t)
            keep = [k for k, (_, _, w) in enumerate(windows) if np.isfinite(w).all()]
            if not keep:
                continue
            arrays = {
                name: inputs[name]
                .isel({ydim: _scaled(by, factor), xdim: _scaled(bx, factor)})
                .values.astype(np.float32)
                for name, (ydim, xdim, factor) in VARIABLES.items()
            }
            tiles = _cut(arrays, windows, keep, n)
            tiles["origin"] += np.array([by.start, bx.start])  # block-relative -> region
            valid = np.ones(len(keep), dtype=bool)
            for name in ("x", "w1", "w2", "w3"):
                valid &= np.isfinite(tiles[name]).reshape(len(keep), -1).all(axis=1)
            if valid.any():
                yield {name: value[valid] for name, value in tiles.items()}


def _scaled(window: slice, factor: int) -> slice:
    return slice(factor * window.start, factor * window.stop)


def _windows_of(
    target: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int
) -> list[tuple[int, int, np.ndarray]]:
    """Truth windows of the tiles whose base origins (block-relative) are ``rows x cols``."""
    return [
        (int(r), int(c), target[OUTPUT_FACTOR * r : OUTPUT_FACTOR * r + size,
                                OUTPUT_FACTOR * c : OUTPUT_FACTOR * c + size])
        for r in rows
        for c in cols
    ]  # fmt: skip


def _cut(
    arrays: dict[str, np.ndarray],
    windows: list[tuple[int, int, np.ndarray]],
    keep: list[int],
    n: int,
) -> dict[str, np.ndarray]:
    out: dict[str, list[np.ndarray]] = {name: [] for name in (*TILE_ARRAYS, "origin")}
    for k in keep:
        r, c, target = windows[k]
        out["x"].append(arrays["bed"][None, r : r + n, c : c + n])
        out["w1"].append(arrays["surface"][None, 10 * r : 10 * (r + n), 10 * c : 10 * (c + n)])
        out["w2"].append(
            np.stack([arrays[v][2 * r : 2 * (r + n), 2 * c : 2 * (c + n)] for v in ("vx", "vy")])
        )
        out["w3"].append(arrays["accumulation"][None, r : r + n, c : c + n])
        out["y"].append(target[None])
        out["origin"].append(np.array([r, c]))
    return {name: np.stack(value) for name, value in out.items()}


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
        from). Lazy (Zarr-backed) when ``store`` is given.
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
    pieces: list[dict[str, np.ndarray]] = []
    from tqdm.auto import tqdm

    for index, (inputs, truth) in enumerate(
        tqdm(regions, desc="tiles", unit="region", disable=not progress)
    ):
        for piece in extract_tiles(inputs, truth, layout, block):
            piece["region"] = np.full(len(piece["y"]), index, dtype=np.int32)
            pieces.append(piece)
    if not pieces:
        raise ValueError("no NaN-free tile in the given regions; check the truth's coverage")
    tiles = _as_dataset(pieces, recipe)
    if store is None:
        return tiles
    with atomic_path(store) as partial, warnings.catch_warnings():
        # zarr 3 calls consolidated metadata non-standard
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        tiles.chunk({"tile": 256}).to_zarr(partial, mode="w", consolidated=True)
    return xr.open_zarr(store)


def _describe(ds: xr.Dataset, truth: xr.DataArray) -> dict[str, Any]:
    """Where a region is and a fingerprint of its values (dask's deterministic token)."""
    from dask.base import tokenize

    base = validate_inputs(ds)
    return {
        "left": base.left,
        "top": base.top,
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
    }
    ds = xr.Dataset({name: (dims[name], value) for name, value in data.items()})
    ds.attrs["recipe"] = json.dumps(recipe)
    return ds


def open_tiles(store: str | PathLike[str]) -> xr.Dataset:
    """Open a tile cache written by :func:`build_tiles`."""
    return xr.open_zarr(Path(store))


def split_tiles(
    count: int, validation_fraction: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Reproducible random train/validation split of ``count`` tiles (95/5 by default).

    Returns sorted index arrays; the same ``seed`` always gives the same split.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if count < 2:
        raise ValueError(f"need at least 2 tiles to split, got {count}")
    order = np.random.default_rng(seed).permutation(count)
    n_val = min(count - 1, max(1, int(round(validation_fraction * count))))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class TileDataset(Dataset):
    """Tiles as torch tensors ``(x, w1, w2, w3, y)`` for a ``DataLoader``.

    Parameters
    ----------
    tiles : xarray.Dataset
        From :func:`build_tiles` (in memory or Zarr-backed).
    indices : array of int, optional
        The subset to expose (e.g. the training split).
    load : bool
        Read the subset into memory once (fast; the default for datasets that
        fit). With ``False`` each item is read from the store on demand, which
        works in ``DataLoader`` worker processes.
    """

    def __init__(
        self, tiles: xr.Dataset, indices: np.ndarray | None = None, load: bool = True
    ) -> None:
        self.indices = np.arange(tiles.sizes["tile"]) if indices is None else np.asarray(indices)
        subset = tiles[list(TILE_ARRAYS)].isel(tile=self.indices)
        self._arrays: dict[str, Any] = {
            name: (np.ascontiguousarray(subset[name].values) if load else subset[name])
            for name in TILE_ARRAYS
        }
        self._loaded = load

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, ...]:
        if self._loaded:
            return tuple(torch.from_numpy(self._arrays[name][item]) for name in TILE_ARRAYS)
        return tuple(
            torch.from_numpy(np.asarray(self._arrays[name][item].values, dtype=np.float32))
            for name in TILE_ARRAYS
        )

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """All tiles as five stacked tensors (needs ``load=True``)."""
        if not self._loaded:
            raise ValueError("tensors() needs a TileDataset built with load=True")
        return tuple(torch.from_numpy(self._arrays[name]) for name in TILE_ARRAYS)
