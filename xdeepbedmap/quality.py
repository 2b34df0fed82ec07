"""The quality layer: how much of what the network saw around a pixel was filled.

For every 1 km base cell, each input channel (bed, accumulation, surface,
vx, vy) contributes the fraction of its pixels in the cell that are no data
(non-finite), and the cell's value is the mean over the five channels. The
quality of an output pixel is the mean of that over the ``(2r + 1) x (2r + 1)``
base cells around its base cell, ``r = halo + 1`` (the context the network is
given), replicated to the 4 x 4 sub-pixels. At the outer edge of the data the
neighbourhood is mirrored, as the network's inputs are.

Counts are integers and summed exactly, so the layer is identical for every
chunking. It is 0 where no input within reach was filled and 1 where all were
(e.g. far out over the ocean). Ocean cells count as filled too (the network
sees filled values there), so coastal pixels have values above 0.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr
from dask.array.overlap import ensure_minimum_chunksize

from xdeepbedmap.chunking import ensure_nested_chunks
from xdeepbedmap.grids import OUTPUT_FACTOR, VARIABLES, grid_coords, output_grid, validate_inputs

__all__ = ["cell_filled_counts", "filled_fraction"]

#: Each channel's pixels per base cell divide this, so weighted counts are integers.
_SCALE = 100


def _cell_counts(block: np.ndarray, factor: int) -> np.ndarray:
    """No-data pixels per base cell of one block, weighted by ``_SCALE / factor**2``."""
    missing = ~np.isfinite(block)
    if factor > 1:
        ny, nx = block.shape[0] // factor, block.shape[1] // factor
        missing = missing.reshape(ny, factor, nx, factor).sum(axis=(1, 3), dtype=np.int32)
    return missing.astype(np.int32) * (_SCALE // factor**2)


def cell_filled_counts(ds: xr.Dataset) -> da.Array:
    """Per base cell, the filled share of all five channels times ``5 * 100`` (int32, lazy).

    ``ds`` must have nested dask chunks (:func:`xdeepbedmap.chunking.ensure_nested_chunks`).
    """
    total = None
    for name, (_, _, factor) in VARIABLES.items():
        counts = ds[name].data.map_blocks(
            _cell_counts,
            factor=factor,
            chunks=ds["bed"].data.chunks,
            dtype=np.int32,
            meta=np.empty((0, 0), np.int32),
        )
        total = counts if total is None else total + counts
    return total


def _box_mean(block: np.ndarray, reach: int, denominator: int) -> np.ndarray:
    """Mean over ``(2 reach + 1)^2`` cells of the core of an overlapped block, 4x replicated."""
    width = 2 * reach + 1
    sums = np.zeros((block.shape[0] + 1, block.shape[1] + 1), dtype=np.int64)
    sums[1:, 1:] = block.cumsum(axis=0, dtype=np.int64).cumsum(axis=1)
    box = (
        sums[width:, width:]
        - sums[:-width, width:]
        - sums[width:, :-width]
        + sums[:-width, :-width]
    )
    mean = (box / (denominator * width * width)).astype(np.float32)
    return np.repeat(np.repeat(mean, OUTPUT_FACTOR, axis=0), OUTPUT_FACTOR, axis=1)


def filled_fraction(ds: xr.Dataset, halo: int | None = None) -> xr.DataArray:
    """Share of the inputs within the network's reach that were filled, per 250 m pixel.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical inputs (as :func:`xdeepbedmap.inference.superresolve` takes).
    halo : int, optional
        The halo of the run (default :data:`xdeepbedmap.inference.DEFAULT_HALO`);
        the reach is ``halo + 1`` base cells on every side.

    Returns
    -------
    xarray.DataArray
        ``filled_fraction`` on the 250 m output grid, float32 in ``[0, 1]``,
        lazy when ``ds`` is dask-backed (one chunk per base chunk).
    """
    from xdeepbedmap.inference import DEFAULT_CHUNKS, DEFAULT_HALO

    base = validate_inputs(ds)
    reach = (DEFAULT_HALO if halo is None else int(halo)) + 1
    work = ensure_nested_chunks(ds, None, DEFAULT_CHUNKS)
    counts = cell_filled_counts(work)
    counts = counts.rechunk(tuple(ensure_minimum_chunksize(reach, c) for c in counts.chunks))
    data = da.map_overlap(
        _box_mean,
        counts,
        depth=reach,
        boundary="reflect",
        trim=False,
        reach=reach,
        denominator=len(VARIABLES) * _SCALE,
        chunks=tuple(tuple(OUTPUT_FACTOR * c for c in cs) for cs in counts.chunks),
        dtype=np.float32,
        meta=np.empty((0, 0), np.float32),
    )
    out = xr.DataArray(data, dims=("y", "x"), coords=grid_coords(output_grid(base)))
    out = out.rename("filled_fraction").assign_attrs(
        units="1",
        long_name="share of the inputs within the network's reach that were filled",
        reach_base_px=reach,
    )
    out = out.rio.write_crs(str(base.crs))
    return out.compute() if ds["bed"].chunks is None else out
