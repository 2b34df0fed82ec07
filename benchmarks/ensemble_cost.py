"""Inference cost of a K-member ensemble relative to one model, on the demo region, in one run.

The members are the bundled demo model and K - 1 copies with perturbed
weights (the cost does not depend on the weights' values). Both paths use
the same chunks, halo, window and threads, and run after a warm-up that
loads every member; the ratio of the wall times is the cost of the ensemble.
Expect about K: the window batch is assembled once per block for all members,
but the network dominates.

    python benchmarks/ensemble_cost.py [--members 4] [--chunks 40] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import dask
import torch

from xdeepbedmap.catalog import open_inputs
from xdeepbedmap.ensemble import superresolve_ensemble
from xdeepbedmap.inference import superresolve
from xdeepbedmap.model import load_checkpoint
from xdeepbedmap.model.checkpoint import save_checkpoint
from xdeepbedmap.model_store import BUNDLED_MODEL


def perturbed_members(count: int, folder: Path) -> list[Path]:
    """The bundled model and ``count - 1`` copies with 1 % weight noise, as checkpoints."""
    files = [BUNDLED_MODEL]
    for k in range(1, count):
        model = load_checkpoint(BUNDLED_MODEL)
        torch.manual_seed(k)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1 + 0.01 * torch.randn_like(p))
        files.append(save_checkpoint(model, folder / f"member_{k:02d}.safetensors"))
    return files


def _timed(run) -> float:
    start = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=1):  # torch uses the cores
        run().compute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--chunks", type=int, default=40, help="base px per chunk (make demo: 40)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ds = open_inputs("demo", chunks=args.chunks)
    with tempfile.TemporaryDirectory() as tmp:
        files = perturbed_members(args.members, Path(tmp))

        def single():
            return superresolve(ds, BUNDLED_MODEL, device="cpu")

        def ensemble():
            return superresolve_ensemble(ds, files, device="cpu")

        _timed(single), _timed(ensemble)  # warm-up: every member loaded once
        rows = [(_timed(single), _timed(ensemble)) for _ in range(args.repeats)]
    one, many = (min(column) for column in zip(*rows, strict=True))
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    print(f"demo region {ny} x {nx} base px, chunks {args.chunks}, {args.threads} torch threads")
    print(f"one model:          {one:7.2f} s (best of {args.repeats})")
    print(f"ensemble of {args.members}:     {many:7.2f} s (best of {args.repeats})")
    print(f"ratio: {many / one:.2f} (per member {many / one / args.members:.2f})")


if __name__ == "__main__":
    main()
