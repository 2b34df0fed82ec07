"""How fast the coast's host work could be with a cheaper gap fill: the fill's steps removed.

Issue 16 asks for >= 1 M land base px per CPU-second at the coast with the
stand-in network (:mod:`benchmarks.host_pipeline`). The gap fill
(:func:`xdeepbedmap.gapfill_block.filled`: the fill field interpolated into
each gap, plus the nearest valid pixel's residual tapered over 8 km) is the
largest part of that work. This script bounds what any cheaper fill could
reach: it times, side by side in one process, alternating rounds, best of
``--repeats`` each, the host pipeline's pieces with

* ``interior``: the piece without gaps (no fill runs), for scale;
* ``coast``: the fill as shipped;
* ``coast, no residual``: the nearest-pixel residual skipped (the feature
  transform and all that follows it), only the fill field interpolated;
* ``coast, no fill``: gaps left as they are (the stand-in network never reads
  its inputs), so no fill step runs at all: no fill, however cheap, can do
  better than this.

The last two are not usable fills; they are ablations that patch the
library's functions for the duration of a timing.

    python benchmarks/coast_bound.py [--rounds 3] [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

import dask
import numpy as np
import torch

import xdeepbedmap  # noqa: F401 - the accessor
from xdeepbedmap import block_windows, gapfill_block

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.continent import RADIUS, continent_inputs  # noqa: E402
from benchmarks.host_pipeline import ZeroGenerator, _best_times, _piece  # noqa: E402


def _no_residual(*args, **kwargs) -> None:
    """Skip the nearest pixel's residual: the gap keeps the interpolated fill field."""


def _no_fill(ext, core, *args, **kwargs):
    """Return the block's core as it is, gaps included (no fill step at all)."""
    return ext[core]


@contextmanager
def _patched(patch: tuple | None):
    """``module.name`` replaced by ``replacement`` inside the block (``patch``; None: nothing)."""
    if patch is None:
        yield
        return
    module, name, replacement = patch
    original = getattr(module, name)
    setattr(module, name, replacement)
    try:
        yield
    finally:
        setattr(module, name, original)


#: label -> (piece, (module, attribute, replacement) or None for the library as it is)
VARIANTS = {
    "interior": ("interior", None),
    "coast": ("coast", None),
    "coast, no residual": ("coast", (gapfill_block, "_add_residual", _no_residual)),
    "coast, no fill": ("coast", (block_windows, "filled", _no_fill)),
}


def measure(extent: int, chunks: int, rounds: int, repeats: int) -> dict[str, float]:
    """Best land base px per CPU-second of each variant, one thread, rounds alternating."""
    torch.set_num_threads(1)
    ds = continent_inputs(chunks)
    centre = 3333 - extent // 2
    pieces = {
        "interior": _piece(ds, centre, centre, extent).persist(),
        "coast": _piece(ds, centre, int(3333 + RADIUS) - extent // 2, extent).persist(),
    }
    land = {k: int(np.isfinite(p.bed.values).sum()) for k, p in pieces.items()}
    zero = ZeroGenerator(num_residual_blocks=1).eval()
    best = dict.fromkeys(VARIANTS, 0.0)
    with dask.config.set(scheduler="synchronous"):
        for _ in range(rounds):
            for label, (which, patch) in VARIANTS.items():
                piece = pieces[which]
                with _patched(patch):
                    run = lambda p=piece: p.deepbedmap.superresolve(zero).values  # noqa: E731
                    _, cpu = _best_times(run, repeats)
                best[label] = max(best[label], land[which] / cpu)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extent", type=int, default=768, help="base px per side of a piece")
    parser.add_argument("--chunks", type=int, default=256, help="base-grid chunk size")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--repeats", type=int, default=2, help="timings per variant and round")
    args = parser.parse_args()
    best = measure(args.extent, args.chunks, args.rounds, args.repeats)
    print(
        f"{args.extent} x {args.extent} base px, chunks {args.chunks}, stand-in network, "
        f"1 thread, best of {args.rounds * args.repeats} in {args.rounds} alternating rounds"
    )
    print("| variant | land base px per CPU-s | of the interior's |\n|---|---:|---:|")
    for label, rate in best.items():
        print(f"| {label} | {rate:,.0f} | {rate / best['interior']:.2f} |")


if __name__ == "__main__":
    main()
