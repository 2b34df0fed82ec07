"""Peak RSS of ``superresolve`` on inputs whose chunks do not nest (rechunk layers).

Real files' own blocks rarely nest (10 surface px per base px, 2 velocity
px), so the inputs are rechunked, and dask's ``clone`` cannot copy rechunk
layers. Variant ``copy`` is the fill source reading its own key-renamed copy
of the inputs (``gapfill_source._reading_copy``); ``shared`` is the former
fallback, the fill source and the network sharing the input blocks. The
stand-in network of ``benchmarks/host_pipeline.py`` (zeros) keeps the run
about memory, not arithmetic; one process per run, peak from ``getrusage``.

    python benchmarks/memory_rechunked.py SIZE CHUNKS copy|shared
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import torch
import xarray as xr

import xdeepbedmap  # noqa: F401 - accessor
import xdeepbedmap.gapfill_source as gapfill_source
from xdeepbedmap.grids import VARIABLES, grid_coords, make_grid, zoom_in
from xdeepbedmap.io import to_zarr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.host_pipeline import ZeroGenerator  # noqa: E402


def main() -> None:
    size, chunks, variant = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    if variant == "shared":
        gapfill_source._reading_copy = lambda array: array
    torch.set_num_threads(1)
    base = make_grid(-1.0e6, 1.0e6, 1000.0, (size, size), "EPSG:3031")
    rng = da.random.default_rng(0)
    variables = {}
    for name, (ydim, xdim, f) in VARIABLES.items():
        grid = zoom_in(base, f)
        # blocks that do not nest, as files' own blocks rarely do: rechunk layers
        blocks = f * chunks + 3 * f + 1
        data = (rng.random(tuple(grid.shape), chunks=blocks) * 100).astype(np.float32)
        variables[name] = xr.DataArray(
            data, dims=(ydim, xdim), coords=grid_coords(grid, ydim, xdim)
        )
    ds = xr.Dataset(variables).rio.write_crs("EPSG:3031")
    out = ds.deepbedmap.superresolve(ZeroGenerator(num_residual_blocks=1), chunks=chunks)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, dask.config.set(scheduler="threads", num_workers=1):
        to_zarr(out, tmp + "/bed.zarr")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row = {"variant": variant, "size": size, "peak_rss_mib": round(peak)}
    print(json.dumps({**row, "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
