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
byte for byte). It needs every chunk at least :func:`fused_depth` base
pixels wide; :func:`xdeepbedmap.run_plan.map_kernel` falls back otherwise.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from xdeepbedmap.block_windows import FilledArea, Pieces, fill_area, window_into
from xdeepbedmap.gapfill_block import EDGE_REACH
from xdeepbedmap.grids import OUTPUT_FACTOR, VARIABLES
from xdeepbedmap.kernel import Cut, live_windows, run_windows
from xdeepbedmap.windows import GENERATOR_INPUTS

__all__ = ["fused_depth", "map_fused"]

#: The variables in the order the tasks carry them.
_NAMES = tuple(VARIABLES)
_FACTOR = {name: VARIABLES[name][2] for name in _NAMES}
#: A base cell is output when its ``ice_mask`` is at least this (as xdeepbedmap.gapfill).
_ICE_THRESHOLD = 0.5


def fused_depth(halo: int) -> int:
    """Base pixels of neighbour edge each block's task reads: context plus the fill's reach."""
    return halo + 1 + EDGE_REACH


def _edge(offset: int, depth: int) -> slice:
    """The part of a neighbour at ``offset`` (-1, 0, 1) next to the block, along one axis."""
    return slice(-depth, None) if offset < 0 else slice(None, depth) if offset > 0 else slice(None)


def _edges(blocks: list[np.ndarray], offset: tuple[int, int], depth: int) -> list[np.ndarray]:
    """One neighbour's edges next to the block, per variable (views)."""
    out = []
    for block, name in zip(blocks, _NAMES, strict=True):
        d = depth * _FACTOR[name]
        out.append(block[_edge(offset[0], d), _edge(offset[1], d)])
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
    index: tuple[int, int],
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
    index, start, domain : tuple of int
        The block's position in the chunk grid, its first base pixel in the
        domain, and the domain's base shape.
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
        complete = all(
            (name, index[0] + a - 1, index[1] + b - 1) in source.complete
            for a, b in np.ndindex(3, 3)
            if grid[a][b] is not None
        )
        scaled = (f * start[0], f * start[1]), (f * domain[0], f * domain[1])
        pieces[name] = Pieces(grid, *scaled, name, f, complete)
    keep = np.isfinite(centres[_NAMES.index("bed")])
    if ice is not None:
        keep &= ice >= _ICE_THRESHOLD
    depth = options["halo"] + 1
    areas = _areas(pieces, keep, source, options["window"], depth)
    out = run_windows(partial(_cutter, pieces, areas, depth), keep, **options)
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

    ``arrays`` are the raw variables (nested chunks, each chunk at least
    :func:`fused_depth` base px), ``source`` the lazy fill source; the
    kernel tasks carry the ``resources`` annotation, the edge slicing does not.
    """
    if not isinstance(source, Delayed):
        source = dask.delayed(source, pure=True)
    bed = arrays["bed"]
    cy, cx = bed.chunks
    ny, nx = bed.numblocks
    depth = fused_depth(options["halo"])
    name = f"{token}-{dask.base.tokenize(arrays, ice, source, members, options)}"
    edge_name = f"{name}-edges"
    keys = [[(arrays[v].name, i, j) for v in _NAMES] for i, j in np.ndindex(ny, nx)]
    edge_graph: dict = {}
    for i, j in np.ndindex(ny, nx):
        for di, dj in np.ndindex(3, 3):
            a, b = i + di - 1, j + dj - 1
            if (di, dj) != (1, 1) and 0 <= a < ny and 0 <= b < nx:
                task = (_edges, keys[a * nx + b], (di - 1, dj - 1), depth)
                edge_graph[(edge_name, i, j, di, dj)] = task
    edge_layer = HighLevelGraph.from_collections(
        edge_name, edge_graph, dependencies=list(arrays.values())
    )
    edges_collection = Delayed(edge_name, edge_layer, layer=edge_name)  # a handle on the layer
    starts = (np.cumsum((0, *cy[:-1])), np.cumsum((0, *cx[:-1])))
    kernel_graph: dict = {}
    lead = (0,) if members else ()
    for i, j in np.ndindex(ny, nx):
        edges = [
            [
                (edge_name, i, j, di, dj)
                if (di, dj) != (1, 1) and 0 <= i + di - 1 < ny and 0 <= j + dj - 1 < nx
                else None
                for dj in range(3)
            ]
            for di in range(3)
        ]
        task = partial(
            superresolve_pieces, index=(i, j), start=(int(starts[0][i]), int(starts[1][j])),
            domain=(int(sum(cy)), int(sum(cx))), members=members, **options,
        )  # fmt: skip
        ice_key = None if ice is None else (ice.name, i, j)
        kernel_graph[(name, *lead, i, j)] = (task, keys[i * nx + j], edges, ice_key, source.key)
    with dask.annotate(**({"resources": resources} if resources else {})):
        deps = [*arrays.values(), edges_collection, source, *([] if ice is None else [ice])]
        layer = HighLevelGraph.from_collections(name, kernel_graph, dependencies=deps)
    out_chunks = (tuple(OUTPUT_FACTOR * c for c in cy), tuple(OUTPUT_FACTOR * c for c in cx))
    chunks = ((len(options["specs"]),), *out_chunks) if members else out_chunks
    meta = np.empty((0,) * len(chunks), dtype=np.float32)
    return da.Array(layer, name, chunks, meta=meta)
