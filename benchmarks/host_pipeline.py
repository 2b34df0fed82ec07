"""Host-side throughput of chunked super-resolution, with a stand-in network.

The network is replaced by a generator that only returns zeros of the right
shape, so what is timed is the host work around it: gap filling, overlap,
cutting windows, assembling batches, masking. One thread
(``torch.set_num_threads(1)``, dask's synchronous scheduler), on pieces of the
continent-shaped inputs of :mod:`benchmarks.continent`:

* ``interior``: a region entirely inside the ice sheet (no gaps);
* ``coast``: a region centred on the disc's edge (about half no data).

The inputs are generated and held in memory first (still dask-backed, in the
same chunks), so input generation is not in the timings. Rates are land base
pixels (finite bed) per second; the same regions also go through the real
bundled demo model for comparison.

    python benchmarks/host_pipeline.py --extent 768           # this checkout
    python benchmarks/host_pipeline.py --baseline-src /tmp/old   # + an older checkout

``--baseline-src`` runs this script again in a subprocess with ``PYTHONPATH``
pointing at another source tree (e.g. ``git archive <commit> | tar -x -C
/tmp/old``), so before and after are measured side by side in one session.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import dask
import numpy as np
import torch

import xdeepbedmap  # noqa: F401 - accessor
from xdeepbedmap.grids import VARIABLES
from xdeepbedmap.model import Generator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.continent import RADIUS, continent_inputs  # noqa: E402


class ZeroGenerator(Generator):
    """A stand-in network: zeros of the generator's output shape, no arithmetic."""

    def forward(self, x, w1, w2, w3):  # noqa: D102 - same contract as Generator.forward
        n, _, h, w = x.shape
        return torch.zeros((n, 1, 4 * (h - 2), 4 * (w - 2)), dtype=x.dtype)


def _piece(ds, row0: int, col0: int, extent: int):
    """The base-grid window ``[row0, row0 + extent) x [col0, col0 + extent)`` of every input."""
    sel = {}
    for ydim, xdim, f in VARIABLES.values():
        sel[ydim] = slice(f * row0, f * (row0 + extent))
        sel[xdim] = slice(f * col0, f * (col0 + extent))
    return ds.isel(sel)


def _best_time(run, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def measure(
    extent: int, chunks: int, repeats: int, model_extent: int
) -> list[tuple[str, float, float]]:
    """``(region, stand-in rate, demo-model rate)`` in land base px/s, one thread.

    The demo model runs on the central ``model_extent`` px of each region (0: not at all).
    """
    torch.set_num_threads(1)
    ds = continent_inputs(chunks)
    centre = 3333 - extent // 2
    regions = {
        "interior": (centre, centre),
        "coast": (centre, int(3333 + RADIUS) - extent // 2),
    }
    zero = ZeroGenerator(num_residual_blocks=1).eval()
    rows = []
    with dask.config.set(scheduler="synchronous"):
        for name, (r0, c0) in regions.items():
            piece = _piece(ds, r0, c0, extent).persist()  # generated once, held in memory
            land = int(np.isfinite(piece.bed.values).sum())
            host = _best_time(lambda p=piece: p.deepbedmap.superresolve(zero).values, repeats)
            model = float("nan")
            if model_extent:
                shift = (extent - model_extent) // 2
                small = _piece(ds, r0 + shift, c0 + shift, model_extent).persist()
                small_land = int(np.isfinite(small.bed.values).sum())
                seconds = _best_time(lambda p=small: p.deepbedmap.superresolve().values, 1)
                model = small_land / seconds
            rows.append((name, land / host, model))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extent", type=int, default=768, help="base px per side of a region")
    parser.add_argument("--chunks", type=int, default=256, help="base-grid chunk size")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument(
        "--model-extent", type=int, default=128, help="central px run by the demo model (0: skip)"
    )
    parser.add_argument("--baseline-src", help="another source tree to measure in the same run")
    parser.add_argument("--label", default="this checkout")
    args = parser.parse_args()

    if args.baseline_src:
        env = dict(os.environ, PYTHONPATH=f"{args.baseline_src}{os.pathsep}{Path.cwd()}")
        cmd = [sys.executable, str(Path(args.baseline_src) / "benchmarks" / "host_pipeline.py")]
        if not (Path(args.baseline_src) / "benchmarks" / "host_pipeline.py").exists():
            cmd = [sys.executable, __file__]
        forwarded = ["--extent", str(args.extent), "--chunks", str(args.chunks)]
        forwarded += ["--repeats", str(args.repeats), "--label", f"baseline {args.baseline_src}"]
        forwarded += ["--model-extent", str(args.model_extent)]
        subprocess.run(cmd + forwarded, env=env, check=True)

    rows = measure(args.extent, args.chunks, args.repeats, args.model_extent)
    print(
        f"{args.label}: {args.extent} x {args.extent} base px (demo model: central "
        f"{args.model_extent} x {args.model_extent}), chunks {args.chunks}, 1 thread"
    )
    print("| region | stand-in network (land base px/s/core) | demo model (land base px/s/core) |")
    print("|---|---:|---:|")
    for name, host, model in rows:
        print(f"| {name} | {host:,.0f} | {model:,.0f} |")


if __name__ == "__main__":
    main()
