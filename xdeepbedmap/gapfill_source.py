"""The fill source of the gap fill: one global, lazy pass over the inputs (small result).

Every variable is sampled once per 1 km base cell (the fine pixel nearest the
cell centre; the bed and accumulation are their own samples), the samples are
averaged over cells of :data:`COARSE_CELL` x :data:`COARSE_CELL` base pixels
that sit on multiples of :data:`COARSE_CELL` of the product's global grid
(:func:`global_origin`, not the region's first pixel), and coarse cells
without data are filled by a pull-push pyramid anchored the same way
(:func:`xdeepbedmap.nodata.pull_push`): a smooth field defined everywhere. The
same pass checks the physical ranges and counts the no data for the warnings.
:mod:`xdeepbedmap.gapfill` fills the inputs from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from xdeepbedmap.grids import VARIABLES, grid_of
from xdeepbedmap.input_checks import PHYSICAL_RANGES, extremes, out_of_range, warn_inputs
from xdeepbedmap.nodata import pull_push

__all__ = ["COARSE_CELL", "FillSource", "global_origin", "plan_fill"]

#: Base pixels per side of the fill source's cells. 2 fills a 24 km surface gap as
#: well as 1 (docs/inference.md) with a quarter of the memory (continent: 44 MB per
#: variable); 4 left 20% larger errors next to the gap.
COARSE_CELL = 2
_GAP_VARIABLES = ("surface", "vx", "vy", "accumulation")


@dataclass(frozen=True)
class FillSource:
    """Per variable, the smooth coarse field no-data pixels are filled from."""

    fields: dict[str, np.ndarray]
    cell: int
    land_filled_fraction: float
    #: Base pixels ``(rows, columns)`` between the fields' first cell and the
    #: inputs' first pixel: cells sit on multiples of ``cell`` of the global grid.
    shift: tuple[int, int] = (0, 0)
    #: ``(variable, i, j)`` of the blocks (chunk grid of the inputs it was
    #: planned from) without no data: their fill is skipped unchecked.
    complete: frozenset[tuple[str, int, int]] = frozenset()


def global_origin(ds: xr.Dataset) -> tuple[int, int]:
    """Global ``(row, column)`` index of the inputs' first base pixel.

    Counted from the CRS origin in base pixels (rows southwards), so two
    regions cut from the same product index a pixel alike: the fill's cells
    and pyramid levels are anchored on these indices, not on the region.
    Edges on whole or half pixels (BEDMAP2, BedMachine) both round safely.
    """
    grid = grid_of(ds["bed"], "bed")
    step_x, _, left, _, step_y, top = grid.affine[:6]
    return math.floor(top / step_y + 0.25), math.floor(left / step_x + 0.25)


def _cell_sums(samples: np.ndarray, b0: int, c0: int, cell: int) -> tuple[np.ndarray, ...]:
    """Sums and counts of the finite samples over whole coarse cells.

    ``samples`` starts at base pixel ``(b0, c0)`` counted from the fill
    field's first cell (cells start on multiples of ``cell``); it is padded
    to whole cells so a cell split between blocks is summed in parts and
    added up later. Sums are float64 (exact for four float32 samples of
    like magnitude); the padded copy is written once, and cells of 2 are
    summed by strided adds in the order of ``reshape(...).sum(axis=(1, 3))``
    (columns, then rows), a tenth of its cost.
    """
    valid = np.isfinite(samples)
    (top, left), (h, w) = (b0 % cell, c0 % cell), samples.shape
    ny, nx = -(-(top + h) // cell), -(-(left + w) // cell)
    values = np.zeros((ny * cell, nx * cell))
    counts = np.zeros((ny * cell, nx * cell), dtype=np.uint8)
    np.copyto(values[top : top + h, left : left + w], samples, where=valid)
    counts[top : top + h, left : left + w] = valid
    if cell != 2:
        return (
            values.reshape(ny, cell, nx, cell).sum(axis=(1, 3)),
            counts.reshape(ny, cell, nx, cell).sum(axis=(1, 3)).astype(np.float64),
        )
    sums = values[:, 0::2] + values[:, 1::2]
    n = counts[:, 0::2] + counts[:, 1::2]
    return sums[0::2] + sums[1::2], (n[0::2] + n[1::2]).astype(np.float64)


def _summarise_block(
    blocks: dict[str, np.ndarray],
    origin: tuple[int, int],
    cell: int,
    index: tuple[int, int] = (0, 0),
) -> dict:
    """Everything :func:`plan_fill` needs from one nested block (small).

    ``index`` is the block's position in the chunk grid: the summary names
    the variables without no data in it (from the range check's extremes).
    """
    b0, c0 = origin
    samples = {}
    for name, (_, _, f) in VARIABLES.items():
        samples[name] = blocks[name][f // 2 :: f, f // 2 :: f] if f > 1 else blocks[name]
    land = np.isfinite(samples["bed"])
    ends = {name: extremes(block) for name, block in blocks.items()}
    ranges = {
        check: int(out_of_range(blocks[check], check=check, known=[ends[check]])[0, 0])
        for check in PHYSICAL_RANGES
    }
    velocity = out_of_range(
        blocks["vx"], blocks["vy"], check="velocity", known=[ends["vx"], ends["vy"]]
    )
    ranges["velocity"] = int(velocity[0, 0])
    return {
        "complete": {(name, *index) for name, pair in ends.items() if np.isfinite(pair).all()},
        "cells": (b0 // cell, c0 // cell),
        "sums": {name: _cell_sums(v, b0, c0, cell) for name, v in samples.items()},
        "land": int(land.sum()),
        "gaps": sum(int((land & ~np.isfinite(samples[n])).sum()) for n in _GAP_VARIABLES),
        "ranges": ranges,
    }


def _reading_copy(array: da.Array) -> da.Array:
    """``array`` through a copy of its whole graph under keys of its own.

    The fill source's tasks read the inputs through this copy, so their blocks
    are released as soon as they are summarised instead of being held for the
    network's tasks (which wait for the finished source): memory stays bounded
    by the chunks, and each input is read twice. dask's ``clone`` would do it
    but drops the dependencies of rechunk layers (every input rechunked to the
    nested chunks has them), so the graph is copied here by renaming every key
    (``GraphNode.substitute``). Where that dask API is missing, ``array``
    itself is returned: the result is the same, only the memory bound is lost.
    """
    try:
        from dask._task_spec import convert_legacy_graph
    except ImportError:  # pragma: no cover - older or newer dask
        return array
    graph = convert_legacy_graph(dict(array.__dask_graph__()))
    tag = "-xdeepbedmap-fill-read"
    renamed = {
        key: ((key[0] + tag, *key[1:]) if isinstance(key, tuple) else f"{key}{tag}")
        for key in graph
    }
    copied = {
        renamed[key]: node.substitute(renamed, key=renamed[key]) for key, node in graph.items()
    }
    name = array.name + tag
    layer = HighLevelGraph.from_collections(name, copied, dependencies=())
    return da.Array(layer, name, array.chunks, meta=array._meta)


def plan_fill(ds: xr.Dataset, cell: int = COARSE_CELL) -> Delayed:
    """The fill source of nested, dask-backed inputs, lazily (a ``Delayed`` :class:`FillSource`).

    Its graph reads the inputs through a copy of their graph (keys of its
    own), so the blocks read for it are released at once instead of being
    held until the network's tasks, which need the finished source, run:
    memory stays bounded by the chunks, and the inputs are read twice.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical inputs with nested dask chunks
        (:func:`xdeepbedmap.chunking.ensure_nested_chunks`).
    cell : int
        Base pixels per side of the fill source's cells.

    Returns
    -------
    dask.delayed.Delayed
        Computes to a :class:`FillSource`: the coarse fill field of every
        variable (see the module docstring) and the share of the land inputs
        that are no data (estimated from one sample per base cell).

    Warns
    -----
    InputRangeWarning
        When computed: per variable with values outside
        :data:`PHYSICAL_RANGES` (velocity: speed above :data:`MAX_SPEED`),
        naming the variable and the count.
    GapFillWarning
        When computed: more than :data:`FILLED_WARNING_FRACTION` of the land
        inputs are no data, or a variable has no valid value at all.
    """
    origin = global_origin(ds)
    shift = (origin[0] % cell, origin[1] % cell)
    arrays = [_reading_copy(ds[name].data) for name in VARIABLES]
    chunks = ds["bed"].data.chunks
    starts = [s + np.cumsum((0, *c[:-1])) for s, c in zip(shift, chunks, strict=True)]
    shape = tuple(-(-(n + s) // cell) for n, s in zip(ds["bed"].shape, shift, strict=True))
    cells = (origin[0] // cell, origin[1] // cell)
    # one raw layer (a task per block, one to combine): dask.delayed calls on
    # dicts of blocks took longer to build than the interior's blocks to run
    name = f"fill-source-{dask.base.tokenize([a.name for a in arrays], cell, shift, cells)}"
    graph: dict = {}
    for i, j in np.ndindex(*arrays[0].numblocks):
        origin_ij = (int(starts[0][i]), int(starts[1][j]))
        task = partial(_summarise_keys, origin=origin_ij, cell=cell, index=(i, j))
        graph[(f"{name}-block", i, j)] = (task, [(a.name, i, j) for a in arrays])
    summaries = [(f"{name}-block", i, j) for i, j in np.ndindex(*arrays[0].numblocks)]
    # one task per variable for the pyramids (the continent's take seconds
    # each: side by side on a worker's threads), one to assemble and warn
    fields = []
    for variable in VARIABLES:
        task = partial(_variable_field, name=variable, shape=shape, origin=cells)
        graph[(f"{name}-field", variable)] = (task, summaries)
        fields.append((f"{name}-field", variable))
    graph[name] = (partial(_combine, cell=cell, shift=shift), summaries, fields)
    return Delayed(name, HighLevelGraph.from_collections(name, graph, dependencies=arrays))


def _summarise_keys(blocks: list[np.ndarray], **options) -> dict:
    """:func:`_summarise_block` of the blocks of every variable, in :data:`VARIABLES` order."""
    return _summarise_block(dict(zip(VARIABLES, blocks, strict=True)), **options)


def _variable_field(
    summaries: list[dict], name: str, shape: tuple[int, int], origin: tuple[int, int]
) -> tuple[np.ndarray, bool]:
    """The fill field of one variable from the blocks' cell sums, and whether it has data."""
    sums, counts = np.zeros(shape), np.zeros(shape)
    for summary in summaries:
        r, c = summary["cells"]
        block_sums, block_counts = summary["sums"][name]
        sums[r : r + block_sums.shape[0], c : c + block_sums.shape[1]] += block_sums
        counts[r : r + block_sums.shape[0], c : c + block_sums.shape[1]] += block_counts
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / counts, 0.0)
    field = pull_push(mean, counts, origin).astype(np.float32)  # zeros without data
    return field, bool((counts > 0).any())


def _combine(
    summaries: list[dict],
    fields: list[tuple[np.ndarray, bool]],
    cell: int,
    shift: tuple[int, int],
) -> FillSource:
    """The fill source from the variables' fields and the blocks' summaries (and the warnings)."""
    empty = [name for name, (_, has) in zip(VARIABLES, fields, strict=True) if not has]
    filled = {name: field for name, (field, _) in zip(VARIABLES, fields, strict=True)}
    n_land = max(sum(s["land"] for s in summaries), 1)
    land_filled = sum(s["gaps"] for s in summaries) / (len(_GAP_VARIABLES) * n_land)
    ranges = {k: sum(s["ranges"][k] for s in summaries) for k in summaries[0]["ranges"]}
    warn_inputs(ranges, land_filled, empty)
    complete = frozenset().union(*(s["complete"] for s in summaries))
    return FillSource(filled, cell, land_filled, shift, complete)
