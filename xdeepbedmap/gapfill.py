"""Global, chunk-independent no-data filling of the inputs, done once before ``map_overlap``.

Why global: a fill that looks only at one block (a nearest-value fill over
the block) gives a pixel a value that depends on where the chunk boundaries
fall, so chunked and one-window results differed by hundreds of metres around
large gaps. Here a pixel's fill value is a function of the input and of the
pixel's position only:

1. **Fill source** (:func:`plan_fill`, :mod:`xdeepbedmap.gapfill_source`):
   a smooth field per variable on 2 km cells, from one lazy pass over the
   whole input, its cells and pyramid levels anchored on the global grid.
2. **Fill** (:func:`fill_inputs`, lazy, per block with an overlap of
   :data:`EDGE_REACH` base pixels): a no-data pixel takes the fill field
   interpolated bilinearly at its own centre, plus the residual (data minus
   field) of its nearest valid pixel, tapered linearly to zero at
   :data:`EDGE_REACH` base pixels from the data. The residual term carries
   the surface's 100 m texture a few km into a gap, so the fill meets the
   data without a step; without it the network read the change of texture
   at the gap's edge and the bed within 2 km of a 24 km gap moved by up to
   95 m (docs/inference.md). A block without no data is passed on as it is:
   its neighbours' edges are read but not assembled, and nothing is copied.

Non-finite values (NaN, +-inf) are no data. :func:`plan_fill` also checks the
physical ranges and warns (:class:`InputRangeWarning`, naming the variable and
the count) and warns once (:class:`GapFillWarning`) when more than
:data:`FILLED_WARNING_FRACTION` of the land inputs are filled.
"""

from __future__ import annotations

import operator
from functools import partial

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from xdeepbedmap.gapfill_block import EDGE_REACH, filled
from xdeepbedmap.gapfill_block import field_at as _field_at  # noqa: F401 - tested here
from xdeepbedmap.gapfill_source import (
    COARSE_CELL,
    FillSource,
    _reading_copy,  # noqa: F401 - tested here, where it used to live
    global_origin,
    plan_fill,
)
from xdeepbedmap.grids import VARIABLES
from xdeepbedmap.input_checks import (
    FILLED_WARNING_FRACTION,
    MAX_SPEED,
    PHYSICAL_RANGES,
    GapFillWarning,
    InputRangeWarning,
)

__all__ = [
    "COARSE_CELL",
    "EDGE_REACH",
    "FILLED_WARNING_FRACTION",
    "MAX_SPEED",
    "PHYSICAL_RANGES",
    "GROUPS",
    "ICE_MASK_THRESHOLD",
    "FillSource",
    "GapFillWarning",
    "InputRangeWarning",
    "fill_inputs",
    "global_origin",
    "plan_fill",
]

#: A base cell is ice (and output) when its ``ice_mask`` fraction is at least this.
ICE_MASK_THRESHOLD = 0.5


def _group_block(
    *blocks: np.ndarray,
    names: tuple[str, ...],
    source: FillSource,
    keep: bool,
    core: tuple[slice, slice],
    origin: tuple[int, int],
) -> np.ndarray:
    """Filled blocks of one grid stacked as channels; with ``keep``, the output mask last.

    ``blocks`` are read with overlap (their ``core`` is the output block,
    their first fine pixel is ``origin``); ``keep`` is ``isfinite(bed)``,
    and'ed with ``ice_mask >= ICE_MASK_THRESHOLD`` when an extra last block
    (the ice mask, core only) is given.
    """
    factor = VARIABLES[names[0]][2]
    cores = [
        filled(b, core, origin, source, n, factor) for b, n in zip(blocks, names, strict=False)
    ]  # blocks: the ice mask may follow
    ice = blocks[-1] if len(blocks) > len(names) else None
    return _stacked(cores, blocks[0][core], ice, keep)


def _stacked(
    cores: list[np.ndarray], bed: np.ndarray, ice: np.ndarray | None, keep: bool
) -> np.ndarray:
    """Filled cores as channels (one channel: a view), with ``keep`` the output mask last."""
    if len(cores) == 1 and not keep:  # one channel: a view of the read block (the surface)
        return cores[0][None]
    out = np.empty((len(cores) + int(keep), *bed.shape), dtype=np.float32)
    for k, values in enumerate(cores):
        out[k] = values
    if keep:
        mask = np.isfinite(bed)
        if ice is not None:
            mask &= ice >= ICE_MASK_THRESHOLD
        out[-1] = mask
    return out


def _all_finite(block: np.ndarray) -> bool:
    """No NaN and no inf in ``block``: one summing pass, the full test only if that overflowed."""
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(block, axis=None)):
            return True
    return bool(np.isfinite(block).all())


def _pieces_block(
    pieces: list[list[list[np.ndarray]]],
    extra: list[np.ndarray],
    source: FillSource,
    *,
    names: tuple[str, ...],
    keep: bool,
    core: tuple[slice, slice],
    origin: tuple[int, int],
    centre: tuple[int, int],
) -> np.ndarray:
    """:func:`_group_block` from the block and its neighbours' edges, per variable.

    ``pieces[k]`` is variable ``k``'s grid of pieces (the block at
    ``centre``, the ``depth``-wide edges of its neighbours around it). A
    block without no data is its own filled core (no copy); only a block
    with no data is assembled with its overlap (one copy) and filled.
    """
    factor = VARIABLES[names[0]][2]
    cores = []
    for grid, name in zip(pieces, names, strict=True):
        middle = grid[centre[0]][centre[1]]
        if _all_finite(middle):
            cores.append(middle)
        else:
            cores.append(filled(np.block(grid), core, origin, source, name, factor))
    return _stacked(cores, pieces[0][centre[0]][centre[1]], extra[0] if extra else None, keep)


def _edge(offset: int, depth: int) -> slice:
    """The part of a neighbour at ``offset`` (-1, 0, 1) next to the block, along one axis."""
    return slice(-depth, None) if offset < 0 else slice(None, depth) if offset > 0 else slice(None)


def _piece_keys(array: da.Array, depth: int, name: str) -> tuple[dict, dict]:
    """Getitem tasks of every block's neighbour edges, and per block its grid of piece keys."""
    ny, nx = array.numblocks
    graph: dict = {}
    grids: dict = {}
    for i, j in np.ndindex(ny, nx):
        rows = []
        for di in [d for d in (-1, 0, 1) if 0 <= i + d < ny]:
            row = []
            for dj in [d for d in (-1, 0, 1) if 0 <= j + d < nx]:
                key = (array.name, i + di, j + dj)
                if di or dj:
                    piece = (name, i, j, di + 1, dj + 1)
                    graph[piece] = (operator.getitem, key, (_edge(di, depth), _edge(dj, depth)))
                    key = piece
                row.append(key)
            rows.append(row)
        grids[i, j] = rows
    return graph, grids


def _fill_from_pieces(arrays, names, source, keep, mask, depth) -> da.Array:
    """The compact graph (chunks at least ``depth`` wide): one task per block on its pieces.

    Like ``dask.array.overlap.overlap`` + ``map_blocks``, but the overlap is
    assembled inside the task and only for blocks with no data, so blocks
    without (the interior) are neither concatenated nor copied.
    """
    chunks = arrays[0].chunks
    reads = (_reads(chunks[0], depth), _reads(chunks[1], depth))
    token = dask.base.tokenize(*arrays, names, source, keep, mask, depth)
    name = f"gapfill-{'-'.join(names)}-{token}"
    graph, grids = {}, []
    for k, a in enumerate(arrays):
        more, per_block = _piece_keys(a, depth, f"{name}-piece{k}")
        graph.update(more)
        grids.append(per_block)
    options = {"names": names, "keep": keep}
    for i, j in np.ndindex(*arrays[0].numblocks):
        (ys, ycore), (xs, xcore) = reads[0][i], reads[1][j]
        task = partial(
            _pieces_block, **options, core=(ycore, xcore), origin=(ys.start, xs.start),
            centre=(int(i > 0), int(j > 0)),
        )  # fmt: skip
        extra = [] if mask is None else [(mask.name, i, j)]
        graph[(name, 0, i, j)] = (task, [g[i, j] for g in grids], extra, source.key)
    deps = [*arrays, source, *([] if mask is None else [mask])]
    layer = HighLevelGraph.from_collections(name, graph, dependencies=deps)
    channels = len(names) + int(keep)
    return da.Array(layer, name, ((channels,), *chunks), meta=np.empty((0, 0, 0), np.float32))


#: The kernel's input groups: filled variables of one grid, stacked as channels.
GROUPS: dict[str, tuple[str, ...]] = {
    "base": ("bed", "accumulation"),
    "surface": ("surface",),
    "velocity": ("vx", "vy"),
}


def _reads(chunks: tuple[int, ...], depth: int) -> list[tuple[slice, slice]]:
    """Per block along one axis: the rows to read (``depth`` more per side) and its core in them."""
    stops = np.cumsum(chunks)
    out = []
    for start, stop in zip(stops - np.asarray(chunks), stops, strict=True):
        lo, hi = max(int(start) - depth, 0), min(int(stop) + depth, int(stops[-1]))
        out.append((slice(lo, hi), slice(int(start) - lo, int(stop) - lo)))
    return out


def _fill_group(arrays, names, source, keep, mask) -> da.Array:
    """One group's filled channels: per block, one task on the block read with overlap."""
    depth = EDGE_REACH * VARIABLES[names[0]][2]
    chunks = arrays[0].chunks
    reads = (_reads(chunks[0], depth), _reads(chunks[1], depth))
    options = {"names": names, "source": source, "keep": keep}
    channels = len(names) + int(keep)
    extra = [] if mask is None else [mask]
    if min(min(c) for c in chunks) >= depth:  # neighbours' edges: a compact graph
        return _fill_from_pieces(arrays, names, source, keep, mask, depth)
    # chunks narrower than the overlap (small chunks, low halo): slice each read
    task = dask.delayed(_group_block, pure=True)
    rows = []
    for i, (ys, ycore) in enumerate(reads[0]):
        row = []
        for j, (xs, xcore) in enumerate(reads[1]):
            blocks = [a[ys, xs] for a in arrays] + [e.blocks[i, j] for e in extra]
            lazy = task(*blocks, core=(ycore, xcore), origin=(ys.start, xs.start), **options)
            shape = (channels, chunks[0][i], chunks[1][j])
            row.append(da.from_delayed(lazy, shape, dtype=np.float32))
        rows.append(row)
    return da.block(rows)


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
        nested chunk: one task per chunk and grid, reading its block with
        :data:`EDGE_REACH` base pixels of overlap.
    """
    lazy_source = source if isinstance(source, Delayed) else dask.delayed(source, pure=True)
    out = {}
    for group, names in GROUPS.items():
        keep = group == "base"
        mask = ice_mask if keep else None
        arrays = [ds[name].data for name in names]
        out[group] = _fill_group(arrays, names, lazy_source, keep, mask)
    return out
