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
pixels (finite bed) per CPU-second of this process (``time.process_time``:
the per-core rate, whatever else shares the machine) and per wall second;
the same regions also go through the real bundled demo model for comparison.

    python benchmarks/host_pipeline.py --extent 768           # this checkout
    python benchmarks/host_pipeline.py --baseline-src /tmp/old   # + an older checkout

``--baseline-src`` runs this script again in a subprocess with ``PYTHONPATH``
pointing at another source tree (e.g. ``git archive <commit> | tar -x -C
/tmp/old``), so before and after are measured by the same code, side by side
in one session and one table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dask
import numpy as np
import torch

import xdeepbedmap  # accessor; its path names the tree measured
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


def _best_times(run, repeats: int) -> tuple[float, float]:
    """The best wall and the best CPU seconds of this process over ``repeats`` runs of ``run``.

    CPU time (``time.process_time``, one thread) is what a core spends on the
    work whatever else shares it; wall time grows with the machine's load.
    """
    wall = cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        cpu = min(cpu, time.process_time() - start_cpu)
        wall = min(wall, time.perf_counter() - start)
    return wall, cpu


#: One row of results: region, then land base px per CPU-second and per wall
#: second of the stand-in network, then the same of the demo model.
Row = tuple[str, float, float, float, float]


def measure(extent: int, chunks: int, repeats: int, model_extent: int) -> list[Row]:
    """Per region, the land base px rates of the stand-in and the demo model, one thread.

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
            wall, cpu = _best_times(lambda p=piece: p.deepbedmap.superresolve(zero).values, repeats)
            model_wall = model_cpu = float("nan")
            if model_extent:
                shift = (extent - model_extent) // 2
                small = _piece(ds, r0 + shift, c0 + shift, model_extent).persist()
                small_land = int(np.isfinite(small.bed.values).sum())
                seconds = _best_times(lambda p=small: p.deepbedmap.superresolve().values, 1)
                model_wall, model_cpu = (small_land / s for s in seconds)
            rows.append((name, land / cpu, land / wall, model_cpu, model_wall))
    return rows


def _table(results: list[tuple[str, list[Row]]]) -> str:
    """A markdown table: per region, each run's rates side by side (per CPU-s, then wall)."""
    head = ["region"]
    for label, _ in results:
        head += [f"{label}: stand-in /CPU-s", f"{label}: stand-in /wall-s"]
    for label, _ in results:
        head += [f"{label}: demo model /CPU-s", f"{label}: demo model /wall-s"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for k, (name, *_) in enumerate(results[0][1]):
        cells = [name]
        for _, rows in results:
            cells += [f"{rows[k][1]:,.0f}", f"{rows[k][2]:,.0f}"]
        for _, rows in results:
            cells += [f"{rows[k][3]:,.0f}", f"{rows[k][4]:,.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _baseline(args: argparse.Namespace) -> list[Row]:
    """This script's measurement on ``--baseline-src`` (its package first on the path)."""
    env = dict(os.environ, PYTHONPATH=f"{args.baseline_src}{os.pathsep}{Path.cwd()}")
    forwarded = ["--extent", str(args.extent), "--chunks", str(args.chunks)]
    forwarded += ["--repeats", str(args.repeats), "--model-extent", str(args.model_extent)]
    done = subprocess.run(
        [sys.executable, __file__, *forwarded, "--rows-json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    reply = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(reply["package"]).resolve().parent != Path(args.baseline_src).resolve():
        raise RuntimeError(f"the baseline run imported {reply['package']}, not --baseline-src")
    return [tuple(row) for row in reply["rows"]]  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extent", type=int, default=768, help="base px per side of a region")
    parser.add_argument("--chunks", type=int, default=256, help="base-grid chunk size")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument(
        "--model-extent", type=int, default=128, help="central px run by the demo model (0: skip)"
    )
    parser.add_argument("--baseline-src", help="another source tree to measure in the same run")
    parser.add_argument("--rows-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    results = []
    if args.baseline_src:
        results.append(("before", _baseline(args)))
    rows = measure(args.extent, args.chunks, args.repeats, args.model_extent)
    if args.rows_json:  # the baseline subprocess: rows for the parent
        print(json.dumps({"package": str(Path(xdeepbedmap.__file__).parent), "rows": rows}))
        return
    results.append(("after" if args.baseline_src else "this checkout", rows))
    print(
        f"{args.extent} x {args.extent} base px (demo model: central {args.model_extent} x "
        f"{args.model_extent}), chunks {args.chunks}, 1 thread, best of {args.repeats}; "
        "land base px per CPU-second (= per core) and per wall second"
    )
    if args.baseline_src:
        print(f"before: {args.baseline_src}; after: {Path(xdeepbedmap.__file__).parent}")
    print(_table(results))


if __name__ == "__main__":
    main()
