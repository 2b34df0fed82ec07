"""Global, chunk-independent no-data filling of the inputs, done once before ``map_overlap``.

Why global: a fill that looks only at one block (a nearest-value fill over
the block) gives a pixel a value that depends on where the chunk boundaries
fall, so chunked and one-window results differed by hundreds of metres around
large gaps. Here a pixel's fill value is a function of the whole input and of
the pixel's position only:

1. **Fill source** (:func:`plan_fill`, lazy, one extra pass over the
   inputs whose result is small): every variable is sampled once per 1 km base cell (the fine pixel
   nearest the cell centre; the bed and accumulation are their own samples),
   the samples are averaged over cells of :data:`COARSE_CELL` x
   :data:`COARSE_CELL` base pixels anchored at the array's first pixel, and
   coarse cells without data are filled by a pull-push pyramid (coarsen by 2
   until there is data, upsample bilinearly back): a smooth field defined
   everywhere, of size ``(ny / 2) x (nx / 2)``.
2. **Fill** (:func:`fill_inputs`, lazy, per block, no overlap needed): a no-data
   pixel takes the fill field bilinearly interpolated at its base cell's
   centre. Blocks without no-data are passed through untouched (no copy).

Non-finite values (NaN, +-inf) are no data. The same pass checks the physical
ranges and warns (:class:`InputRangeWarning`, naming the variable and the
count) and warns once (:class:`GapFillWarning`) when more than
:data:`FILLED_WARNING_FRACTION` of the land inputs are filled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.delayed import Delayed
from dask.graph_manipulation import clone

from xdeepbedmap.grids import VARIABLES, grid_of
from xdeepbedmap.input_checks import (
    FILLED_WARNING_FRACTION,
    MAX_SPEED,
    PHYSICAL_RANGES,
    GapFillWarning,
    InputRangeWarning,
    out_of_range,
    warn_inputs,
)
from xdeepbedmap.nodata import pull_push

__all__ = [
    "COARSE_CELL",
    "FILLED_WARNING_FRACTION",
    "MAX_SPEED",
    "PHYSICAL_RANGES",
    "GROUPS",
    "ICE_MASK_THRESHOLD",
    "FillSource",
    "GapFillWarning",
    "InputRangeWarning",
    "fill_inputs",
    "plan_fill",
]

#: Base pixels per side of the fill source's cells. 2 fills a 24 km surface gap as
#: well as 1 (docs/inference.md) with a quarter of the memory (continent: 44 MB per
#: variable); 4 left 20% larger errors next to the gap.
COARSE_CELL = 2
#: A base cell is ice (and output) when its ``ice_mask`` fraction is at least this.
ICE_MASK_THRESHOLD = 0.5
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
    added up later.
    """
    valid = np.isfinite(samples)
    pad = (
        (b0 % cell, -(b0 + samples.shape[0]) % cell),
        (c0 % cell, -(c0 + samples.shape[1]) % cell),
    )
    values = np.pad(np.where(valid, samples, 0.0).astype(np.float64), pad)
    counts = np.pad(valid.astype(np.float64), pad)
    ny, nx = values.shape[0] // cell, values.shape[1] // cell
    return (
        values.reshape(ny, cell, nx, cell).sum(axis=(1, 3)),
        counts.reshape(ny, cell, nx, cell).sum(axis=(1, 3)),
    )


def _summarise_block(blocks: dict[str, np.ndarray], origin: tuple[int, int], cell: int) -> dict:
    """Everything :func:`plan_fill` needs from one nested block (small)."""
    b0, c0 = origin
    samples = {}
    for name, (_, _, f) in VARIABLES.items():
        samples[name] = blocks[name][f // 2 :: f, f // 2 :: f] if f > 1 else blocks[name]
    land = np.isfinite(samples["bed"])
    ranges = {
        check: int(out_of_range(blocks[check], check=check)[0, 0]) for check in PHYSICAL_RANGES
    }
    ranges["velocity"] = int(out_of_range(blocks["vx"], blocks["vy"], check="velocity")[0, 0])
    return {
        "cells": (b0 // cell, c0 // cell),
        "sums": {name: _cell_sums(v, b0, c0, cell) for name, v in samples.items()},
        "land": int(land.sum()),
        "gaps": sum(int((land & ~np.isfinite(samples[n])).sum()) for n in _GAP_VARIABLES),
        "ranges": ranges,
    }


def _reading_copy(array: da.Array) -> da.Array:
    """``array`` through a clone of its graph, or ``array`` itself where cloning fails.

    dask's ``clone`` drops dependencies of rechunk layers (the cloned graph
    misses keys and cannot run); such inputs are read once and shared with
    the network's tasks instead, which holds their blocks until the fill
    source is complete.
    """
    copy = clone(array, seed="xdeepbedmap-gapfill")
    graph = dict(copy.__dask_graph__())
    for task in graph.values():
        dependencies = getattr(task, "dependencies", None)
        if dependencies is not None and not set(dependencies) <= graph.keys():
            return array
    return copy


def plan_fill(ds: xr.Dataset, cell: int = COARSE_CELL) -> Delayed:
    """The fill source of nested, dask-backed inputs, lazily (a ``Delayed`` :class:`FillSource`).

    Its graph reads the inputs through a clone of their graph (keys of its
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
    blocks = {name: _reading_copy(ds[name].data).to_delayed() for name in VARIABLES}
    chunks = ds["bed"].data.chunks
    starts = [s + np.cumsum((0, *c[:-1])) for s, c in zip(shift, chunks, strict=True)]
    summarise = dask.delayed(_summarise_block, pure=True)
    lazy = [
        summarise({name: b[i, j] for name, b in blocks.items()}, (starts[0][i], starts[1][j]), cell)
        for i, j in np.ndindex(*blocks["bed"].shape)
    ]
    shape = tuple(-(-(n + s) // cell) for n, s in zip(ds["bed"].shape, shift, strict=True))
    cells = (origin[0] // cell, origin[1] // cell)
    return dask.delayed(_combine, pure=True)(lazy, shape, cell, shift, cells)


def _combine(
    summaries: list[dict],
    shape: tuple[int, int],
    cell: int,
    shift: tuple[int, int],
    origin: tuple[int, int],
) -> FillSource:
    """The fill source from the blocks' summaries (and the warnings they call for)."""
    totals = {name: (np.zeros(shape), np.zeros(shape)) for name in VARIABLES}
    for summary in summaries:
        r, c = summary["cells"]
        for name, (sums, counts) in summary["sums"].items():
            totals[name][0][r : r + sums.shape[0], c : c + sums.shape[1]] += sums
            totals[name][1][r : r + sums.shape[0], c : c + sums.shape[1]] += counts
    fields, empty = {}, []
    for name, (sums, counts) in totals.items():
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(counts > 0, sums / counts, 0.0)
        if not (counts > 0).any():
            empty.append(name)
        fields[name] = pull_push(mean, counts, origin).astype(np.float32)
    n_land = max(sum(s["land"] for s in summaries), 1)
    land_filled = sum(s["gaps"] for s in summaries) / (len(_GAP_VARIABLES) * n_land)
    ranges = {k: sum(s["ranges"][k] for s in summaries) for k in summaries[0]["ranges"]}
    warn_inputs(ranges, land_filled, empty)
    return FillSource(fields=fields, cell=cell, land_filled_fraction=land_filled, shift=shift)


def _cell_values(n: int, cell: int, factor: int, start: int, stop: int, shift: int) -> tuple:
    """Indices and weights of the bilinear interpolation at fine pixels ``start..stop``.

    A field of ``n`` cells of ``cell`` base pixels, whose first cell starts
    ``shift`` base pixels before the inputs; fine pixels are ``factor`` per base pixel.
    """
    centres = (np.arange(start, stop) + 0.5) / factor + shift  # base px from the first cell
    pos = centres / cell - 0.5
    i0 = np.clip(np.floor(pos).astype(int), 0, n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    w = np.clip(pos - i0, 0.0, 1.0).astype(np.float32)
    return i0, i1, w


def _filled(
    block: np.ndarray, source: FillSource, name: str, factor: int, origin: tuple[int, int]
) -> np.ndarray:
    """No data of one block (starting at fine pixel ``origin``) replaced from the fill field.

    The value is the field interpolated bilinearly at the pixel's own centre
    (smooth at the fine resolution, no steps between base cells), so it
    depends on the pixel's position only, never on the block.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(block, axis=None)):  # one cheap pass: no NaN, no inf
            return block
    valid = np.isfinite(block)
    if valid.all():  # the sum overflowed on finite values
        return block
    field, cell = source.fields[name], source.cell
    (ny, nx), (r0, c0) = block.shape, origin
    y0, y1, wy = _cell_values(field.shape[0], cell, factor, r0, r0 + ny, source.shift[0])
    x0, x1, wx = _cell_values(field.shape[1], cell, factor, c0, c0 + nx, source.shift[1])
    wy, wx = wy[:, None], wx[None, :]
    values = (field[np.ix_(y0, x0)] * (1 - wx) + field[np.ix_(y0, x1)] * wx) * (1 - wy)
    values += (field[np.ix_(y1, x0)] * (1 - wx) + field[np.ix_(y1, x1)] * wx) * wy
    out = block.copy()
    np.copyto(out, values, where=~valid)
    return out


def _group_block(
    *blocks: np.ndarray,
    names: tuple[str, ...],
    source: FillSource,
    keep: bool,
    block_info: dict | None = None,
) -> np.ndarray:
    """Filled blocks of one grid stacked as channels; with ``keep``, the output mask last.

    ``keep`` is ``isfinite(bed)``, and'ed with ``ice_mask >= ICE_MASK_THRESHOLD``
    when an extra last block (the ice mask) is given.
    """
    origin = tuple(lo for lo, _ in block_info[0]["array-location"])  # type: ignore[index]
    factor = VARIABLES[names[0]][2]
    if len(names) == 1 and not keep:  # one channel: a view, not a copy (the surface)
        return _filled(blocks[0], source, names[0], factor, origin)[None]
    n = len(names) + int(keep)
    out = np.empty((n, *blocks[0].shape), dtype=np.float32)
    for k, name in enumerate(names):
        out[k] = _filled(blocks[k], source, name, factor, origin)
    if keep:
        mask = np.isfinite(blocks[0])
        if len(blocks) > len(names):
            mask &= blocks[-1] >= ICE_MASK_THRESHOLD
        out[-1] = mask
    return out


#: The kernel's input groups: filled variables of one grid, stacked as channels.
GROUPS: dict[str, tuple[str, ...]] = {
    "base": ("bed", "accumulation"),
    "surface": ("surface",),
    "velocity": ("vx", "vy"),
}


def fill_inputs(
    ds: xr.Dataset, source: FillSource | Delayed, ice_mask: da.Array | None = None
) -> dict[str, da.Array]:
    """The inputs, no data filled from ``source``, stacked per grid (lazy, float32).

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical inputs with nested dask chunks.
    source : FillSource or Delayed
        :func:`plan_fill`'s result, lazy or computed.
    ice_mask : dask.array.Array, optional
        The base-grid ice fraction, chunked like ``ds.bed``; cells below
        :data:`ICE_MASK_THRESHOLD` are not output.

    Returns
    -------
    dict of dask.array.Array
        ``base`` (bed, accumulation, output mask), ``surface`` (surface) and
        ``velocity`` (vx, vy), each ``(channels, y, x)`` with one chunk per
        nested chunk (one task per chunk and grid: no overlap is needed, a
        pixel's fill depends only on its position and the global source).
    """
    lazy_source = source if isinstance(source, Delayed) else dask.delayed(source, pure=True)
    out = {}
    for group, names in GROUPS.items():
        arrays = [ds[name].data for name in names]
        keep = group == "base"
        if keep and ice_mask is not None:
            arrays.append(ice_mask)
        channels = len(names) + int(keep)
        out[group] = da.map_blocks(
            _group_block,
            *arrays,
            names=names,
            source=lazy_source,
            keep=keep,
            new_axis=0,
            chunks=((channels,), *arrays[0].chunks),
            dtype=np.float32,
            meta=np.empty((0, 0, 0), np.float32),
        )
    return out
