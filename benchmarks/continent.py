"""Continent-scale super-resolution on lazily generated inputs of the real sizes.

Inputs are BEDMAP2-sized (base 6667 x 6667 at 1 km, surface 66,670 x 66,670 at
100 m), generated chunk by chunk on demand: random values inside a disc that
covers one third of the grid (the ice sheet), NaN outside (ocean), so about
two thirds of the chunks are all no-data and skip the network. The script
times the graph construction, then streams a window of ``--extent`` base px
(default: the whole continent) to Zarr and reports base px/s.

With ``--inputs zarr`` or ``--inputs geotiff`` the window's inputs are first
written once into ``--cache`` (a Zarr store, or tiled DEFLATE GeoTIFFs; the
values are the same synthetic ones) and read back from there, so the timing
includes opening, decompressing and reading files; the run then reports how
the task time splits between read, host work, network and write
(``continent_files.PhaseTimer``).

    python benchmarks/continent.py --extent 512          # a CPU-sized piece
    python benchmarks/continent.py --inputs zarr --extent 256   # from files, < 2 min on 2 cores
    python benchmarks/continent.py --device cuda         # all of it, on a GPU
    python benchmarks/continent.py --inputs zarr --cache /scratch/continent \
        --extent 6667 --device cuda --model g12.safetensors   # ~25 GB of input files
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import torch
import xarray as xr

import xdeepbedmap  # noqa: F401 - accessor
from xdeepbedmap.grids import VARIABLES, grid_coords, make_grid, zoom_in
from xdeepbedmap.io import open_zarr_output, to_zarr
from xdeepbedmap.model_store import load_model, resolve_device, resolve_model

try:
    from benchmarks.continent_files import PhaseTimer, cached_inputs
except ImportError:  # run as a script from benchmarks/
    from continent_files import PhaseTimer, cached_inputs  # type: ignore[no-redef]

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


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, help="base px (default 256; 128 from files)")
    parser.add_argument(
        "--extent", type=int, help="base px of the window run (default: all; 256 from files)"
    )
    parser.add_argument("--model", default=None, help="default: the bundled demo model")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--inputs", choices=["lazy", "zarr", "geotiff"], default="lazy")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "xdbm-continent"))
    parser.add_argument("--threads", type=int, default=None, help="dask threads (default: CPUs)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--skip-graph", action="store_true", help="skip the whole-continent graph")
    return parser.parse_args()


def window_of(ds: xr.Dataset, extent: int) -> xr.Dataset:
    """A window of ``extent`` base px centred on the coast (land, ocean and coast chunks)."""
    if extent >= 6667:
        return ds
    centre = int(3333 + RADIUS * 0.7071)
    lo = max(0, min(6667 - extent, centre - extent // 2))
    return ds.isel(
        {dim: slice(f * lo, f * (lo + extent))
         for ydim, xdim, f in VARIABLES.values() for dim in (ydim, xdim)}
    )  # fmt: skip


def main() -> None:
    args = _parse()
    args.chunks = args.chunks or (256 if args.inputs == "lazy" else 128)
    ds = continent_inputs(args.chunks)
    if not args.skip_graph:
        start = time.perf_counter()
        full = ds.deepbedmap.superresolve(args.model, device=args.device, dtype=args.dtype)
        tasks = len(full.data.__dask_graph__())
        chunks = full.data.npartitions
        print(f"continent graph: {time.perf_counter() - start:.1f} s to build, {tasks:,} "
              f"tasks for {chunks} chunks ({tasks / chunks:.1f} per chunk), "
              f"output {full.shape}")  # fmt: skip
    # files are written once per window: a small default, the continent on request
    part = window_of(ds, args.extent or (6667 if args.inputs == "lazy" else 256))
    if args.inputs != "lazy":
        start = time.perf_counter()
        cache = Path(args.cache)
        cache.mkdir(parents=True, exist_ok=True)
        part = cached_inputs(part, cache, args.inputs, args.chunks)
        print(f"inputs from {args.inputs} files in {cache} ({time.perf_counter() - start:.1f} s "
              "to open; written on the first run only)")  # fmt: skip

    def run() -> xr.DataArray:
        return part.deepbedmap.superresolve(args.model, device=args.device, dtype=args.dtype)

    device = resolve_device(args.device)
    spec = replace(resolve_model(args.model), precision=run().attrs["compute_dtype"])
    network = load_model(spec, device, torch.float32)  # the kernel's cached model
    threads = args.threads or (torch.get_num_threads() if device.type == "cpu" else 4)
    timer = PhaseTimer()
    with tempfile.TemporaryDirectory() as tmp:
        with dask.config.set(scheduler="threads", num_workers=threads), timer.installed(network):
            out = run()  # built inside: the graph holds the timed kernel
            start = time.perf_counter()
            to_zarr(out, f"{tmp}/bed.zarr")
            seconds = time.perf_counter() - start
        stored = open_zarr_output(f"{tmp}/bed.zarr")["bed"].data
        skipped = all_nodata_chunks(stored, out.data.chunks)
    figures = _summary(part, out, seconds, skipped)
    print(timer.report(seconds, threads))
    if args.json:
        figures.update(threads=threads, device=str(device), inputs=args.inputs)
        figures["split_seconds"] = dict(timer.seconds)
        Path(args.json).write_text(json.dumps(figures, indent=2))


def _summary(
    part: xr.Dataset, out: xr.DataArray, seconds: float, skipped: int
) -> dict[str, object]:
    pixels = part.sizes["y"] * part.sizes["x"]
    land = float(np.mean(np.isfinite(part.bed.values))) if part.sizes["y"] <= 2048 else np.nan
    print(f"window {part.sizes['y']} x {part.sizes['x']} base px ({land:.0%} land), "
          f"{out.attrs['compute_dtype']}: {seconds:.1f} s to Zarr, {pixels / seconds:,.0f} base "
          f"px/s, {skipped} of {out.data.npartitions} chunks skipped (all no data)")  # fmt: skip
    land_pixels = np.pi * RADIUS**2
    minutes = land_pixels / (pixels * land / seconds) / 60
    print(f"continent ({land_pixels / 1e6:.1f} M land base px) at the land rate: "
          f"{minutes:.1f} min")  # fmt: skip
    return {"window_base_px": [part.sizes["y"], part.sizes["x"]], "land_fraction": land,
            "precision": out.attrs["compute_dtype"], "seconds": seconds,
            "base_px_per_s": pixels / seconds, "chunks": out.data.npartitions,
            "chunks_skipped": skipped, "continent_minutes_extrapolated": minutes}  # fmt: skip


if __name__ == "__main__":
    main()
