"""Cutting training tiles out of the same chunked arrays the inference reads.

Extraction walks the region in blocks of tile origins, computing only each
block's inputs (plus the 10 px a tile reaches beyond it), so memory is bounded
by the block size, not the region. A tile is kept only when every value in its
input arrays is valid and at least ``layout.min_coverage`` of its truth is
(default 1: no NaN at all; below 1 the missing truth pixels are filled with
the nearest valid one of the tile). The truth may cover part of the region
only (:func:`align_truth`); radar picks are gridded first
(:func:`xdeepbedmap.survey.grid_points`). What each region yielded, with its
measured truth coverage, is recorded (``stats``) so that too few tiles can be
explained (:func:`coverage_message`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import xarray as xr

from xdeepbedmap.grids import OUTPUT_FACTOR, VARIABLES, validate_inputs
from xdeepbedmap.nodata import fill_nearest
from xdeepbedmap.training.layout import TILE_ARRAYS, TileLayout
from xdeepbedmap.truth import align_truth
from xdeepbedmap.windows import cut_nested

__all__ = ["coverage_message", "extract_regions", "extract_tiles"]


def _blocks(size: int, block: int) -> Iterator[tuple[int, int]]:
    """Row/column ranges of tile origins per extraction block."""
    for start in range(0, size, block):
        yield start, min(start + block, size)


def extract_tiles(
    inputs: xr.Dataset,
    truth: xr.DataArray,
    layout: TileLayout | None = None,
    block: int = 256,
    stats: dict[str, float] | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Yield tiles with valid inputs and enough valid truth, block by block.

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
    stats : dict, optional
        Filled (when given) with ``positions`` (tile positions in the region),
        ``covered`` (positions with enough valid truth), ``kept`` (also with
        valid inputs) and ``best_tile_coverage``.

    Yields
    ------
    dict of numpy.ndarray
        Per block: ``x`` (k, 1, n, n), ``w1`` (k, 1, 10n, 10n), ``w2`` (k, 2, 2n, 2n),
        ``w3`` (k, 1, n, n), ``y`` (k, 1, t, t) float32, ``origin`` (k, 2), the
        base row/column of each tile's input window, and ``coverage`` (k,), the
        valid fraction of each tile's truth before filling.
    """
    layout = layout or TileLayout()
    base = validate_inputs(inputs)
    truth = align_truth(truth, base)
    stats = {} if stats is None else stats
    stats.update(positions=0, covered=0, kept=0, best_tile_coverage=0.0)
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
            coverage = np.array([np.isfinite(w).mean() for _, _, w in windows])
            # a tiny tolerance: 1295/1296 must not count as 1.0, 1.0 must
            keep = np.flatnonzero(coverage >= layout.min_coverage - 1e-9).tolist()
            stats["positions"] += len(windows)
            stats["covered"] += len(keep)
            stats["best_tile_coverage"] = max(stats["best_tile_coverage"], float(coverage.max()))
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
            tiles["coverage"] = coverage[keep].astype(np.float32)
            valid = np.ones(len(keep), dtype=bool)
            for name in ("x", "w1", "w2", "w3"):
                valid &= np.isfinite(tiles[name]).reshape(len(keep), -1).all(axis=1)
            stats["kept"] += int(valid.sum())
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
        out["y"].append(fill_nearest(target)[None])
        out["origin"].append(np.array([r, c]))
    return {name: np.stack(value) for name, value in out.items()}


def extract_regions(
    regions: list[tuple[xr.Dataset, xr.DataArray]],
    layout: TileLayout,
    block: int = 256,
    progress: bool = False,
    stats: list[dict[str, float]] | None = None,
) -> list[dict[str, np.ndarray]]:
    """The tiles of several regions, as :func:`extract_tiles` pieces tagged with ``region``.

    Each piece gains ``region`` (k,) int32: the index of the region it came from.
    ``stats`` (when given) receives one dict per region: :func:`extract_tiles`'
    counts plus ``truth_coverage``, the valid fraction of the region's truth.

    Raises
    ------
    ValueError
        If no region yields a single tile (the message gives each region's coverage).
    """
    from tqdm.auto import tqdm

    stats = [] if stats is None else stats
    pieces: list[dict[str, np.ndarray]] = []
    for index, (inputs, truth) in enumerate(
        tqdm(regions, desc="tiles", unit="region", disable=not progress)
    ):
        region_stats: dict[str, float] = {}
        for piece in extract_tiles(inputs, truth, layout, block, region_stats):
            piece["region"] = np.full(len(piece["y"]), index, dtype=np.int32)
            pieces.append(piece)
        aligned = align_truth(truth, validate_inputs(inputs))
        region_stats["truth_coverage"] = float(aligned.notnull().mean())
        stats.append(region_stats)
    if not pieces:
        kind = "NaN-free tile" if layout.min_coverage >= 1.0 else "tile"
        raise ValueError(
            f"no {kind} in the given regions; check the truth's coverage. "
            + coverage_message(stats, layout)
        )
    return pieces


def coverage_message(stats: list[dict[str, float]], layout: TileLayout) -> str:
    """One sentence per region: how much of it the truth covers and how many tiles fit."""
    t = layout.tile_size
    parts = []
    for index, row in enumerate(stats):
        parts.append(
            f"region {index}: the truth covers {100 * row['truth_coverage']:.1f}% of the region; "
            f"at most {row['covered']:.0f} of its {row['positions']:.0f} tile positions "
            f"({t} x {t} px at stride {layout.stride}) have truth on >= "
            f"{100 * layout.min_coverage:.0f}% of their pixels (best tile "
            f"{100 * row['best_tile_coverage']:.0f}%), {row['kept']:.0f} with valid inputs too."
        )
    return " ".join(parts)
