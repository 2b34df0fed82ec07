"""Chunk planning: dask chunks that nest across the inputs' resolutions.

Block ``(i, j)`` of every canonical variable must cover the same ground, so
that ``map_overlap`` hands the kernel matching pieces of all four inputs:
surface chunks are 10x and velocity chunks 2x the base chunks (the factors of
:data:`xdeepbedmap.grids.VARIABLES`).
"""

from __future__ import annotations

import xarray as xr
from dask.array.overlap import ensure_minimum_chunksize

from xdeepbedmap.grids import VARIABLES

__all__ = ["ensure_nested_chunks", "nested_chunks", "rechunk_nested", "widen_small_chunks"]


def nested_chunks(
    cy: int | tuple[int, ...], cx: int | tuple[int, ...]
) -> dict[str, int | tuple[int, ...]]:
    """Chunks of every input dimension for base-grid chunks ``cy``, ``cx``.

    Each may be a size or the explicit tuple of chunk sizes; surface chunks
    are 10x and velocity chunks 2x the base ones, so chunk ``(i, j)`` of each
    variable covers the same ground.
    """

    def scaled(c: int | tuple[int, ...], factor: int) -> int | tuple[int, ...]:
        return c * factor if isinstance(c, int) else tuple(factor * v for v in c)

    spec: dict[str, int | tuple[int, ...]] = {}
    for ydim, xdim, factor in VARIABLES.values():
        spec[ydim] = scaled(cy, factor)
        spec[xdim] = scaled(cx, factor)
    return spec


def rechunk_nested(ds: xr.Dataset, chunks: int | tuple[int, int]) -> xr.Dataset:
    """Chunk a canonical Dataset so every chunk of every variable covers the same base pixels.

    ``chunks`` is the base-grid chunk size ``(cy, cx)`` (see :func:`nested_chunks`).
    """
    cy, cx = (chunks, chunks) if isinstance(chunks, int) else chunks
    if cy < 1 or cx < 1:
        raise ValueError(f"chunks must be positive, got {chunks}")
    spec = nested_chunks(cy, cx)
    return ds.chunk({dim: size for dim, size in spec.items() if dim in ds.dims})


def ensure_nested_chunks(
    ds: xr.Dataset, chunks: int | tuple[int, int] | None, default: int
) -> xr.Dataset:
    """Dask-back ``ds`` with chunks that nest, rechunking only what does not.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical inputs, dask-backed or in memory.
    chunks : int or tuple of int or None
        Base-grid chunk size to impose; ``None`` keeps the bed's dask chunks
        (and nests the other variables on them).
    default : int
        Base-grid chunk size for an in-memory ``ds`` when ``chunks`` is ``None``.
    """
    if chunks is not None:
        return rechunk_nested(ds, chunks)
    if ds["bed"].chunks is None:
        return rechunk_nested(ds, default)
    spec = nested_chunks(*ds["bed"].chunks)
    if all(ds[name].chunks == (spec[y], spec[x]) for name, (y, x, _) in VARIABLES.items()):
        return ds
    return ds.chunk(spec)


def widen_small_chunks(ds: xr.Dataset, depth: int) -> xr.Dataset:
    """Merge base chunks smaller than the overlap depth into their neighbours.

    ``map_overlap`` can only borrow context from the adjacent chunk, so every
    chunk must hold at least ``depth`` base pixels; finer grids follow nested.
    """
    cy, cx = ds["bed"].chunks
    wide_y, wide_x = ensure_minimum_chunksize(depth, cy), ensure_minimum_chunksize(depth, cx)
    if (wide_y, wide_x) == (cy, cx):
        return ds
    return ds.chunk(nested_chunks(wide_y, wide_x))
