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
   95 m (docs/inference.md). Blocks without no-data are cut from their
   overlapped block (no further copy).

Non-finite values (NaN, +-inf) are no data. :func:`plan_fill` also checks the
physical ranges and warns (:class:`InputRangeWarning`, naming the variable and
the count) and warns once (:class:`GapFillWarning`) when more than
:data:`FILLED_WARNING_FRACTION` of the land inputs are filled.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.delayed import Delayed
from scipy import ndimage

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
#: Base pixels (km) over which the nearest valid pixel's residual fades into a
#: gap; also the overlap each block is read with. 8 km: 24 km surface gap, bed
#: within 2 km of it max / RMS 31 / 6.6 m (4 km: 32 / 7.1 m; none: 95 / 21 m).
EDGE_REACH = 8


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


def _field_at(source: FillSource, name: str, factor: int, origin, shape) -> np.ndarray:
    """The fill field interpolated bilinearly at the centres of a block's fine pixels."""
    field, cell = source.fields[name], source.cell
    (r0, c0), (ny, nx) = origin, shape
    y0, y1, wy = _cell_values(field.shape[0], cell, factor, r0, r0 + ny, source.shift[0])
    x0, x1, wx = _cell_values(field.shape[1], cell, factor, c0, c0 + nx, source.shift[1])
    wy, wx = wy[:, None], wx[None, :]
    values = (field[np.ix_(y0, x0)] * (1 - wx) + field[np.ix_(y0, x1)] * wx) * (1 - wy)
    values += (field[np.ix_(y1, x0)] * (1 - wx) + field[np.ix_(y1, x1)] * wx) * wy
    return values


def _filled(
    ext: np.ndarray,
    core: tuple[slice, slice],
    origin: tuple[int, int],
    source: FillSource,
    name: str,
    factor: int,
) -> np.ndarray:
    """The ``core`` of a block read with overlap (``ext``, first fine pixel at ``origin``), filled.

    A no-data pixel takes the fill field at its centre plus its nearest valid
    pixel's residual, tapered to zero at :data:`EDGE_REACH` base pixels: every
    pixel within reach is inside ``ext``, so the value depends on the pixel's
    position and the data only, never on the block.
    """
    block = ext[core]
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(block, axis=None)):  # one cheap pass: no NaN, no inf
            return block
    valid = np.isfinite(ext)
    if valid[core].all():  # the sum overflowed on finite values
        return block
    smooth = _field_at(source, name, factor, origin, ext.shape)
    values = smooth[core]
    if valid.any():
        distance, (iy, ix) = ndimage.distance_transform_edt(~valid, return_indices=True)
        taper = np.clip(1.0 - distance[core] / (EDGE_REACH * factor), 0.0, 1.0)
        nearest = (iy[core], ix[core])
        values = values + (ext[nearest] - smooth[nearest]) * taper.astype(np.float32)
    out = block.copy()
    np.copyto(out, values, where=~valid[core])
    return out


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
    if len(names) == 1 and not keep:  # one channel: a view of the read block (the surface)
        return _filled(blocks[0], core, origin, source, names[0], factor)[None]
    n = len(names) + int(keep)
    out = np.empty((n, *blocks[0][core].shape), dtype=np.float32)
    for k, name in enumerate(names):
        out[k] = _filled(blocks[k], core, origin, source, name, factor)
    if keep:
        mask = np.isfinite(blocks[0][core])
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


def _reads(chunks: tuple[int, ...], depth: int) -> list[tuple[slice, slice]]:
    """Per block along one axis: the rows to read (``depth`` more per side) and its core in them."""
    stops = np.cumsum(chunks)
    out = []
    for start, stop in zip(stops - np.asarray(chunks), stops, strict=True):
        lo, hi = max(int(start) - depth, 0), min(int(stop) + depth, int(stops[-1]))
        out.append((slice(lo, hi), slice(int(start) - lo, int(stop) - lo)))
    return out


def _overlapped_block(
    *blocks: np.ndarray, reads: tuple[list, list], block_info: dict | None = None, **options
) -> np.ndarray:
    """:func:`_group_block` of a block from ``dask.array.overlap`` (located by its index)."""
    i, j = block_info[0]["chunk-location"]  # type: ignore[index]
    (ys, ycore), (xs, xcore) = reads[0][i], reads[1][j]
    return _group_block(*blocks, core=(ycore, xcore), origin=(ys.start, xs.start), **options)


def _fill_group(arrays, names, source, keep, mask) -> da.Array:
    """One group's filled channels: per block, one task on the block read with overlap."""
    depth = EDGE_REACH * VARIABLES[names[0]][2]
    chunks = arrays[0].chunks
    reads = (_reads(chunks[0], depth), _reads(chunks[1], depth))
    options = {"names": names, "source": source, "keep": keep}
    channels = len(names) + int(keep)
    extra = [] if mask is None else [mask]
    if min(min(c) for c in chunks) >= depth:  # dask's overlap: a compact graph
        wide = [
            da.overlap.overlap(a, {0: depth, 1: depth}, "none", allow_rechunk=False) for a in arrays
        ]
        return da.map_blocks(
            _overlapped_block, *wide, *extra, reads=reads, **options, new_axis=0,
            chunks=((channels,), *chunks), dtype=np.float32, meta=np.empty((0, 0, 0), np.float32),
        )  # fmt: skip
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
