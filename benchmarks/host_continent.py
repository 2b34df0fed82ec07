"""The host work of the whole continent, estimated from a transect, and its scaling with threads.

:mod:`benchmarks.host_pipeline` times two pieces of the continent-shaped
inputs (the interior and the ice edge). How much host work the whole
continent costs depends on how much of its land lies near the edge, so this
script times the stand-in network (zeros, no arithmetic) on square pieces of
``--extent`` base px along a ray from the centre of
:func:`benchmarks.continent.continent_inputs` (a disc of 14.8 M land base
px) to past the edge: along the rows (``--angle 0``, the coast across the
chunk grid at right angles) or at ``--angle`` degrees (45: the coast
diagonal to the chunks, crossing more of them). Each piece stands for the
annulus of the disc within half a piece of its centre's radius: the
continent's host CPU time is the sum over pieces of (CPU-s per land px) x
(land px in its annulus).

Each piece is timed with ``--threads`` dask threads in one process (torch
one thread each, the GPU worker's situation): the CPU time per land px is
what a core spends; the wall rate with several threads shows how well the
host work of different blocks runs side by side (numpy releases the GIL in
its loops; scipy's feature transform, used by the gap fill at the coast,
does not).

    python benchmarks/host_continent.py [--extent 768] [--angle 0] [--threads 1 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dask
import numpy as np
import torch

import xdeepbedmap  # before the path below: PYTHONPATH=<tree> measures another tree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.continent import RADIUS, continent_inputs  # noqa: E402
from benchmarks.host_pipeline import ZeroGenerator, _best_times, _piece  # noqa: E402

CENTRE = 3333


def annulus_land(inner: float, outer: float) -> float:
    """Land base px of the continent's disc between radii ``inner`` and ``outer``."""
    inner, outer = (min(max(r, 0.0), RADIUS) for r in (inner, outer))
    return float(np.pi * (outer**2 - inner**2))


def time_piece(piece, threads: int, repeats: int) -> tuple[float, float]:
    """Best wall and best CPU seconds of the stand-in on ``piece`` with ``threads`` dask threads."""
    zero = ZeroGenerator(num_residual_blocks=1).eval()
    config = {"scheduler": "synchronous"} if threads == 1 else {"scheduler": "threads"}
    with dask.config.set(config, num_workers=threads):
        return _best_times(lambda: piece.deepbedmap.superresolve(zero).values, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extent", type=int, default=768, help="base px per side of a piece")
    parser.add_argument("--chunks", type=int, default=256, help="base-grid chunk size")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="dask threads")
    parser.add_argument("--repeats", type=int, default=2, help="best of this many runs")
    parser.add_argument("--angle", type=float, default=0.0, help="the ray's angle, degrees")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds = continent_inputs(args.chunks)
    extent, threads = args.extent, args.threads
    print(f"xdeepbedmap from {Path(xdeepbedmap.__file__).parent}")
    print(
        f"pieces of {extent} x {extent} base px along a ray at {args.angle:g} deg, "
        f"chunks {args.chunks}, "
        f"stand-in network, torch 1 thread, dask threads {threads}, best of {args.repeats}"
    )
    head = ["radius (km)", "land share", "CPU-s per land Mpx"]
    head += [f"land px/wall-s, {t} thr" for t in threads]
    print("| " + " | ".join(head) + " |\n|---" + "|---:" * (len(head) - 1) + "|")
    totals = {"cpu": 0.0, **{t: 0.0 for t in threads}}
    k = 0
    while k * extent - extent / 2 < RADIUS:
        inner, outer = max(k * extent - extent / 2, 0.0), k * extent + extent / 2
        centre_row = CENTRE + round(k * extent * np.sin(np.radians(args.angle)))
        centre_col = CENTRE + round(k * extent * np.cos(np.radians(args.angle)))
        piece = _piece(ds, centre_row - extent // 2, centre_col - extent // 2, extent).persist()
        land = int(np.isfinite(piece.bed.values).sum())
        times = {t: time_piece(piece, t, args.repeats) for t in threads}
        cpu = (times[1] if 1 in times else time_piece(piece, 1, args.repeats))[1]
        weight = annulus_land(inner, outer)
        totals["cpu"] += cpu / land * weight
        for t in threads:
            totals[t] += times[t][0] / land * weight
        cells = [f"{inner:.0f}-{outer:.0f}", f"{land / extent**2:.2f}", f"{cpu / land * 1e6:.3f}"]
        cells += [f"{land / times[t][0]:,.0f}" for t in threads]
        print("| " + " | ".join(cells) + " |")
        k += 1
    land = annulus_land(0.0, RADIUS)
    print(
        f"continent ({land / 1e6:.1f} M land base px): host work {totals['cpu']:.1f} CPU-s "
        f"({land / totals['cpu']:,.0f} land px per CPU-s)"
    )
    for t in threads:
        print(
            f"  {t} thread(s) in one process: {totals[t]:.1f} s wall "
            f"({land / totals[t]:,.0f} land px/s)"
        )


if __name__ == "__main__":
    main()
