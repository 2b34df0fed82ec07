"""Peak RSS of ``superresolve`` streaming to Zarr as the region grows (fixed chunk size).

Each size runs in a fresh process on lazily generated inputs (random fields,
nothing materialised up front) and writes the result with
``xdeepbedmap.io.to_zarr``; the peak resident memory of the process is read
from ``getrusage``.

    python benchmarks/memory_scaling.py [--sizes 128,256] [--chunks 64]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = """
import json, resource, sys, tempfile, time
import dask, dask.array as da, numpy as np, torch, xarray as xr
import xdeepbedmap
from xdeepbedmap.grids import VARIABLES, grid_coords, make_grid, zoom_in
from xdeepbedmap.io import to_zarr
size, chunks, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
base = make_grid(-1.0e6, 1.0e6, 1000.0, (size, size), "EPSG:3031")
rng = da.random.default_rng(0)
variables = {}
for name, (ydim, xdim, f) in VARIABLES.items():
    grid = zoom_in(base, f)
    data = (rng.random(tuple(grid.shape), chunks=f * chunks) * 100).astype(np.float32)
    variables[name] = xr.DataArray(data, dims=(ydim, xdim), coords=grid_coords(grid, ydim, xdim))
ds = xr.Dataset(variables).rio.write_crs("EPSG:3031")
out = ds.deepbedmap.superresolve()
start = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp, dask.config.set(scheduler="threads", num_workers=1):
    to_zarr(out, tmp + "/bed.zarr")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"size": size, "peak_rss_mib": peak, "seconds": seconds}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256", help="region sides, base px")
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(size), str(args.chunks), str(args.threads)],
            capture_output=True, text=True, check=True, cwd=tempfile.gettempdir(),
        )  # fmt: skip
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        row = rows[-1]
        print(f"{size:5d} x {size:<5d} base px: peak RSS {row['peak_rss_mib']:7.0f} MiB, "
              f"{size * size / row['seconds']:,.0f} base px/s")  # fmt: skip
    for small, large in zip(rows[:-1], rows[1:], strict=True):
        area = (large["size"] / small["size"]) ** 2
        growth = large["peak_rss_mib"] / small["peak_rss_mib"] - 1
        print(f"area x{area:.0f}: peak RSS {growth:+.1%}")


if __name__ == "__main__":
    main()
