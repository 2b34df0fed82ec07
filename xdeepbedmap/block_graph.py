"""The fused graph of chunked inference: one task per block fills, cuts and runs its windows.

The general form (:func:`xdeepbedmap.gapfill.fill_inputs`, then
``dask.array.map_overlap``) fills every block, then concatenates every
filled block with its neighbours' edges (a copy of every 100 m block) before
cutting windows: about 80 tasks per block. Here each block's task receives
its raw block of every variable and, per neighbour, one task's slices of
that neighbour's edges (the windows' context plus the fill's reach), and
writes each window's filled inputs straight into the batch buffers
(:func:`xdeepbedmap.block_windows.window_into`): about 15 tasks per block,
no overlap assembled, and only the windows with a pixel to output are
filled and run. The values are those of the general form (tested
byte for byte). Chunks narrower than :func:`fused_depth` are handled by
reading a side from several neighbouring blocks.
"""

from __future__ import annotations

import functools
from functools import partial
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from xdeepbedmap.block_windows import FilledArea, Pieces, fill_area, window_into
from xdeepbedmap.gapfill import ICE_MASK_THRESHOLD
from xdeepbedmap.gapfill_block import EDGE_REACH
from xdeepbedmap.grids import OUTPUT_FACTOR, VARIABLES
from xdeepbedmap.kernel import Cut, live_windows, run_windows
from xdeepbedmap.output_checks import NetworkOutputError
from xdeepbedmap.windows import GENERATOR_INPUTS

__all__ = ["fused_depth", "map_fused"]

#: The variables in the order the tasks carry them.
_NAMES = tuple(VARIABLES)
_FACTOR = {name: VARIABLES[name][2] for name in _NAMES}


def fused_depth(halo: int) -> int:
    """Base pixels of neighbour edge each block's task reads: context plus the fill's reach."""
    return halo + 1 + EDGE_REACH


@functools.lru_cache(maxsize=32)  # every kernel task asks; O(blocks^2) per axis to build
def _reads(chunks: tuple[int, ...], depth: int) -> list[dict[int, list[tuple[int, slice]]]]:
    """Per block along one axis, per side (-1, 0, 1): the blocks read and the part of each.

    Side -1 is the ``depth`` pixels before the block (clipped to the
    domain), 0 the block, 1 the ``depth`` after; a side may span several
    blocks narrower than ``depth``, or none at the domain's edge.
    """
    stops = np.cumsum(chunks)
    starts, size = stops - np.asarray(chunks), int(stops[-1])
    out = []
    for i in range(len(chunks)):
        sides = {
            -1: (max(int(starts[i]) - depth, 0), int(starts[i])),
            0: (int(starts[i]), int(stops[i])),
            1: (int(stops[i]), min(int(stops[i]) + depth, size)),
        }
        out.append(
            {
                side: [
                    (
                        k,
                        slice(
                            max(lo, int(starts[k])) - int(starts[k]),
                            min(hi, int(stops[k])) - int(starts[k]),
                        ),
                    )
                    for k in range(len(chunks))
                    if starts[k] < hi and stops[k] > lo
                ]
                for side, (lo, hi) in sides.items()
            }
        )
    return out


def _edge_rect(grid: list[list[list[np.ndarray]]], rows: list[slice], cols: list[slice]) -> list:
    """One side's edge per variable: the base-px ``rows x cols`` parts of the blocks in ``grid``.

    A view when the edge lies in one block (a neighbour at least as wide as
    the read), else the parts assembled (a neighbour narrower than it).
    """
    out = []
    for k, name in enumerate(_NAMES):
        f = _FACTOR[name]
        parts = [
            [
                blocks[k][f * r.start : f * r.stop, f * c.start : f * c.stop]
                for blocks, c in zip(row, cols, strict=True)
            ]
            for row, r in zip(grid, rows, strict=True)
        ]
        out.append(parts[0][0] if len(parts) == 1 and len(parts[0]) == 1 else np.block(parts))
    return out


def _cutter(
    pieces: dict[str, Pieces], areas: dict[str, FilledArea], depth: int, n: int, m: int
) -> Cut:
    """The :data:`~xdeepbedmap.kernel.Cut` of ``n x m`` base-px windows from ``pieces``."""

    def cut(k: int, r0: int, c0: int, buffers) -> None:
        for group, variables in GENERATOR_INPUTS.items():
            slot = buffers[group][k].numpy()
            for channel, name in enumerate(variables):
                f = _FACTOR[name]
                rows = (f * (r0 - depth), f * (r0 - depth + n))
                cols = (f * (c0 - depth), f * (c0 - depth + m))
                window_into(pieces[name], rows, cols, slot[channel], areas.get(name))

    return cut


def _areas(
    pieces: dict[str, Pieces], keep: np.ndarray, source: Any, window: int, depth: int
) -> dict[str, FilledArea]:
    """Per variable with no data near the block: the live windows' bounding area, filled once."""
    plan = live_windows(keep, window)
    spans = [(r0, c0, wy, wx) for (wy, wx), origins in plan.items() for r0, c0 in origins]
    if not spans:
        return {}
    rows = (min(s[0] for s in spans) - depth, max(s[0] + s[2] for s in spans) + depth)
    cols = (min(s[1] for s in spans) - depth, max(s[1] + s[3] for s in spans) + depth)
    areas = {}
    for name, p in pieces.items():
        if not p.complete:
            f = p.factor
            scaled = (f * rows[0], f * rows[1]), (f * cols[0], f * cols[1])
            areas[name] = fill_area(p, *scaled, source, EDGE_REACH * f)
    return areas


def superresolve_pieces(
    centres: list[np.ndarray],
    edges: list[list[list[np.ndarray] | None]],
    ice: np.ndarray | None,
    source: Any,
    *,
    blocks: list[tuple[int, int]],
    start: tuple[int, int],
    domain: tuple[int, int],
    members: bool,
    **options: Any,
) -> np.ndarray:
    """One block's task: its raw blocks and neighbours' edges in, the 250 m block out.

    Parameters
    ----------
    centres : list of numpy.ndarray
        The block of every variable (order of :data:`xdeepbedmap.grids.VARIABLES`), raw.
    edges : list of list
        ``edges[a][b]``: the neighbour at offset ``(a - 1, b - 1)``'s edges per
        variable, ``None`` beyond the domain (the centre entry is unused).
    ice : numpy.ndarray or None
        The block's ice fraction, when the output is masked by it.
    source : FillSource
        The gap fill's source.
    blocks : list of tuple of int
        The chunk-grid positions of every block read (the block's and its
        edges'): a variable complete in all of them needs no fill.
    start, domain : tuple of int
        The block's first base pixel in the domain, and the domain's base shape.
    members : bool
        Return ``(K, 4 ny, 4 nx)`` (an ensemble) rather than ``(4 ny, 4 nx)``.
    **options
        ``specs``, ``halo``, ``window``, ``batch_size``, ``device``,
        ``compute_dtype`` of :func:`xdeepbedmap.kernel.run_windows`.
    """
    pieces = {}
    for k, name in enumerate(_NAMES):
        f = _FACTOR[name]
        grid = [[None if e is None else e[k] for e in row] for row in edges]
        grid[1][1] = centres[k]
        complete = all((name, *ij) in source.complete for ij in blocks)
        scaled = (f * start[0], f * start[1]), (f * domain[0], f * domain[1])
        pieces[name] = Pieces(grid, *scaled, name, f, complete)
    keep = np.isfinite(centres[_NAMES.index("bed")])
    if ice is not None:
        keep &= ice >= ICE_MASK_THRESHOLD
    depth = options["halo"] + 1
    areas = _areas(pieces, keep, source, options["window"], depth)
    try:
        out = run_windows(partial(_cutter, pieces, areas, depth), keep, **options)
    except NetworkOutputError as error:  # say which block: the window's origin is relative
        raise NetworkOutputError(f"{error} (the block starts at base px {start})") from error
    return out if members else out[0]


def map_fused(
    arrays: dict[str, da.Array],
    ice: da.Array | None,
    source: Any,
    *,
    members: bool,
    token: str,
    resources: dict[str, float] | None,
    **options: Any,
) -> da.Array:
    """The lazy 250 m output: one :func:`superresolve_pieces` task per block.

    ``arrays`` are the raw variables (nested chunks), ``source`` the lazy
    fill source; the kernel tasks carry the ``resources`` annotation, the
    edge slicing does not.
    """
    if not isinstance(source, Delayed):
        source = dask.delayed(source, pure=True)
    cy, cx = arrays["bed"].chunks
    depth = fused_depth(options["halo"])
    name = f"{token}-{dask.base.tokenize(arrays, ice, source, members, options)}"
    grids = _edge_grids(arrays, depth, name)
    out_chunks = (tuple(OUTPUT_FACTOR * c for c in cy), tuple(OUTPUT_FACTOR * c for c in cx))
    chunks = ((len(options["specs"]),), *out_chunks) if members else out_chunks
    extra = [] if ice is None else [ice]
    with dask.annotate(**({"resources": resources} if resources else {})):
        return da.map_blocks(
            _fused_block, *(arrays[v] for v in _NAMES), grids, *extra,
            source=source, grid_chunks=(cy, cx), depth=depth, members=members,
            chunks=chunks, new_axis=[0] if members else None, dtype=np.float32,
            meta=np.empty((0,) * len(chunks), dtype=np.float32),
            token=token, **options,
        )  # fmt: skip


def _edge_grids(arrays: dict[str, da.Array], depth: int, name: str) -> da.Array:
    """Per block, a 1 x 1 object chunk: the 3 x 3 grid of its edge tasks' keys (None: none).

    Each edge task slices one side of the block (``depth`` base px, more
    than one block where a neighbour is narrower) from every variable. The
    grid is a dask array so that the kernel is a Blockwise layer like
    ``map_overlap``'s: writers fuse with it and keep its resources annotation.
    """
    cy, cx = arrays["bed"].chunks
    reads = (_reads(cy, depth), _reads(cx, depth))
    edge_name = f"edges-{name}"  # not a network task: its own prefix
    edge_graph: dict = {}
    grid_name = f"edge-grids-{name}"
    grid_graph: dict = {}
    for i, j in np.ndindex(len(cy), len(cx)):
        grid: list[list] = [[None] * 3 for _ in range(3)]
        for a, b in np.ndindex(3, 3):
            rows, cols = reads[0][i][a - 1], reads[1][j][b - 1]
            if (a, b) == (1, 1) or not rows or not cols:
                continue
            keys = [[[(arrays[v].name, r, c) for v in _NAMES] for c, _ in cols] for r, _ in rows]
            task = (_edge_rect, keys, [s for _, s in rows], [s for _, s in cols])
            edge_graph[(edge_name, i, j, a, b)] = task
            grid[a][b] = (edge_name, i, j, a, b)
        grid_graph[(grid_name, i, j)] = (_as_cell, grid)
    edge_layer = HighLevelGraph.from_collections(edge_name, edge_graph, list(arrays.values()))
    edges = Delayed(edge_name, edge_layer, layer=edge_name)  # a handle on the layer
    grid_layer = HighLevelGraph.from_collections(grid_name, grid_graph, [edges])
    chunks = ((1,) * len(cy), (1,) * len(cx))
    return da.Array(grid_layer, grid_name, chunks, meta=np.empty((0, 0), object))


def _as_cell(value: Any) -> np.ndarray:
    """``value`` in a 1 x 1 object array (a chunk of the edge grids' array)."""
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = value
    return cell


def _fused_block(
    *blocks: np.ndarray,
    source: Any,
    grid_chunks: tuple[tuple[int, ...], tuple[int, ...]],
    depth: int,
    block_id: tuple[int, int] = (0, 0),
    **options: Any,
) -> np.ndarray:
    """:func:`superresolve_pieces` of block ``block_id``: raw blocks, edge grid, (ice)."""
    (i, j), (cy, cx) = block_id[-2:], grid_chunks
    reads = _reads(cy, depth)[i], _reads(cx, depth)[j]
    rows = sorted({r for side in reads[0].values() for r, _ in side})
    cols = sorted({c for side in reads[1].values() for c, _ in side})
    return superresolve_pieces(
        list(blocks[: len(_NAMES)]),
        blocks[len(_NAMES)][0, 0],
        blocks[len(_NAMES) + 1] if len(blocks) > len(_NAMES) + 1 else None,
        source,
        blocks=[(r, c) for r in sorted(rows) for c in sorted(cols)],
        start=(sum(cy[:i]), sum(cx[:j])),
        domain=(sum(cy), sum(cx)),
        **options,
    )
