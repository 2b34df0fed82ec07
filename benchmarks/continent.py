"""Continent-scale super-resolution on lazily generated inputs of the real sizes.

Inputs are BEDMAP2-sized (base 6667 x 6667 at 1 km, surface 66,670 x 66,670 at
100 m), generated chunk by chunk on demand: random values inside a disc that
covers one third of the grid (the ice sheet), NaN outside (ocean), so about
two thirds of the chunks are all no-data and skip the network. The script
times the graph construction, then streams a window of ``--extent`` base px
(default: the whole continent) to Zarr and reports base px/s.

    python benchmarks/continent.py --extent 512          # a CPU-sized piece
    python benchmarks/continent.py --device cuda         # all of it, on a GPU
"""

from __future__ import annotations

import argparse
import tempfile
import time

import dask.array as da
import numpy as np
import xarray as xr

import xdeepbedmap  # noqa: F401 - accessor
from xdeepbedmap.grids import VARIABLES, grid_coords, make_grid, zoom_in
from xdeepbedmap.io import open_zarr_output, to_zarr

BASE = make_grid(-3_333_500.0, 3_333_500.0, 1000.0, (6667, 6667), "EPSG:3031")
#: Disc radius (base px) covering one third of the grid.
RADIUS = 6667 * np.sqrt(1 / (3 * np.pi))


def _field(factor: int, seed: int):
    def block(block_info=None):
        info = block_info[None]
        (r0, r1), (c0, c1) = info["array-location"]
        rows = (np.arange(r0, r1) + 0.5) / factor - 3333.5
        cols = (np.arange(c0, c1) + 0.5) / factor - 3333.5
        inside = rows[:, None] ** 2 + cols[None, :] ** 2 < RADIUS**2
        if not inside.any():
            return np.full((r1 - r0, c1 - c0), np.nan, np.float32)
        rng = np.random.default_rng([seed, r0, c0])
        values = rng.normal(500.0, 100.0, (r1 - r0, c1 - c0)).astype(np.float32)
        return np.where(inside, values, np.float32(np.nan))

    return block


def continent_inputs(chunks: int = 256) -> xr.Dataset:
    """Lazy canonical inputs over the BEDMAP2 grid."""
    variables = {}
    for seed, (name, (ydim, xdim, factor)) in enumerate(VARIABLES.items()):
        grid = zoom_in(BASE, factor)
        data = da.map_blocks(
            _field(factor, seed),
            chunks=da.core.normalize_chunks(factor * chunks, tuple(grid.shape)),
            dtype=np.float32,
            meta=np.empty((0, 0), np.float32),
        )
        variables[name] = xr.DataArray(
            data, dims=(ydim, xdim), coords=grid_coords(grid, ydim, xdim)
        )
    return xr.Dataset(variables).rio.write_crs("EPSG:3031")


def all_nodata_chunks(stored: da.Array, chunks: tuple[tuple[int, ...], ...]) -> int:
    """Output chunks that are all no data: exactly those whose block skipped the network."""
    flags = stored.rechunk(chunks).map_blocks(
        lambda block: np.array([[np.isnan(block).all()]]), chunks=(1, 1), dtype=bool
    )
    return int(flags.sum().compute())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=256)
    parser.add_argument("--extent", type=int, default=6667, help="base px of the window run")
    parser.add_argument("--model", default=None, help="default: the bundled demo model")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()

    start = time.perf_counter()
    ds = continent_inputs(args.chunks)
    full = ds.deepbedmap.superresolve(args.model, device=args.device, dtype=args.dtype)
    tasks = len(full.data.__dask_graph__())
    chunks = full.data.npartitions
    print(f"continent graph: {time.perf_counter() - start:.1f} s to build, {tasks:,} tasks for "
          f"{chunks} chunks ({tasks / chunks:.1f} per chunk), output {full.shape}")  # fmt: skip

    # a window centred on the coast at the disc's edge (land, ocean and coast chunks)
    centre = int(3333 + RADIUS * 0.7071)
    lo = max(0, min(6667 - args.extent, centre - args.extent // 2))
    part = ds.isel(
        {dim: slice(f * lo, f * (lo + args.extent))
         for ydim, xdim, f in VARIABLES.values() for dim in (ydim, xdim)}
    )  # fmt: skip
    if args.extent >= 6667:
        part = ds
    out = part.deepbedmap.superresolve(args.model, device=args.device, dtype=args.dtype)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        to_zarr(out, f"{tmp}/bed.zarr")
        seconds = time.perf_counter() - start
        stored = open_zarr_output(f"{tmp}/bed.zarr")["bed"].data
        skipped = all_nodata_chunks(stored, out.data.chunks)
    pixels = part.sizes["y"] * part.sizes["x"]
    land = float(np.mean(np.isfinite(part.bed.values))) if args.extent <= 2048 else float("nan")
    print(f"window {part.sizes['y']} x {part.sizes['x']} base px ({land:.0%} land): "
          f"{seconds:.1f} s to Zarr, {pixels / seconds:,.0f} base px/s, "
          f"{skipped} of {out.data.npartitions} chunks skipped (all no data)")  # fmt: skip
    land_pixels = np.pi * RADIUS**2
    print(f"continent ({land_pixels / 1e6:.1f} M land base px) at the land rate: "
          f"{land_pixels / (pixels * land / seconds) / 60:.1f} min")  # fmt: skip


if __name__ == "__main__":
    main()
