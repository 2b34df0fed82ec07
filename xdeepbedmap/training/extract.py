"""Cutting training tiles out of the same chunked arrays the inference reads.

Extraction walks the region in blocks of tile origins, computing only each
block's inputs (plus the 10 px a tile reaches beyond it), so memory is bounded
by the block size, not the region. A tile is kept only when every value in its
five arrays is valid (no NaN). The truth may cover part of the region only
(:func:`align_truth`); scattered radar picks are gridded first
(:func:`grid_points`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import xarray as xr

from xdeepbedmap.grids import OUTPUT_FACTOR, VARIABLES, validate_inputs
from xdeepbedmap.training.layout import TILE_ARRAYS, TileLayout
from xdeepbedmap.truth import align_truth
from xdeepbedmap.windows import cut_nested

__all__ = ["extract_regions", "extract_tiles"]


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
        for name, value in cut_nested(arrays, slice(r, r + n), slice(c, c + n)).items():
            out[name].append(value)
        out["y"].append(target[None])
        out["origin"].append(np.array([r, c]))
    return {name: np.stack(value) for name, value in out.items()}


def extract_regions(
    regions: list[tuple[xr.Dataset, xr.DataArray]],
    layout: TileLayout,
    block: int = 256,
    progress: bool = False,
) -> list[dict[str, np.ndarray]]:
    """The tiles of several regions, as :func:`extract_tiles` pieces tagged with ``region``.

    Each piece gains ``region`` (k,) int32: the index of the region it came from.

    Raises
    ------
    ValueError
        If no region yields a single NaN-free tile.
    """
    from tqdm.auto import tqdm

    pieces: list[dict[str, np.ndarray]] = []
    for index, (inputs, truth) in enumerate(
        tqdm(regions, desc="tiles", unit="region", disable=not progress)
    ):
        for piece in extract_tiles(inputs, truth, layout, block):
            piece["region"] = np.full(len(piece["y"]), index, dtype=np.int32)
            pieces.append(piece)
    if not pieces:
        raise ValueError("no NaN-free tile in the given regions; check the truth's coverage")
    return pieces
