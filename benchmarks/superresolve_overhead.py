"""Chunked ``superresolve`` vs the bare generator on the same region, in one run.

The bare generator runs the region's non-overlapping windows (of
``--bare-window`` base px, default the same window size superresolve uses,
each with the one-pixel border the network needs, inputs already tensors)
through the model: the least work any method must do. ``superresolve``
adds the halo, NaN filling, dask scheduling and masking. Both use the same
model and thread count; the ratio of their base-px/s is the overhead.

    python benchmarks/superresolve_overhead.py [--size 192] [--chunks 64] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import dask
import torch

try:  # imported by asv or pytest as part of the benchmarks package
    from .bench_workflow import bare_generator
except ImportError:  # run as a script: python benchmarks/superresolve_overhead.py
    from bench_workflow import bare_generator

import xdeepbedmap  # noqa: F401 - accessor
from xdeepbedmap.inference import DEFAULT_HALO, DEFAULT_WINDOW
from xdeepbedmap.model_store import load_model, resolve_model
from xdeepbedmap.synthetic import make_region


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=192, help="region side, base px")
    parser.add_argument("--chunks", type=int, default=64, help="base px per chunk")
    parser.add_argument("--halo", type=int, default=DEFAULT_HALO)
    parser.add_argument(
        "--bare-window", type=int, default=DEFAULT_WINDOW, help="bare generator window, base px"
    )
    parser.add_argument("--model", default=None, help="default: the bundled demo model")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ds, _ = make_region((args.size, args.size), seed=7, ocean=False)
    spec = resolve_model(args.model)
    model = load_model(spec, torch.device("cpu"), torch.float32)
    lazy = ds.chunk({"y": args.chunks, "x": args.chunks})
    pixels = args.size**2
    bare_generator(ds, model, args.bare_window)  # warm-up
    rows = []
    for _ in range(args.repeats):
        bare = bare_generator(ds, model, args.bare_window)
        start = time.perf_counter()
        # one dask thread: torch already uses every core inside each block
        with dask.config.set(scheduler="threads", num_workers=1):
            lazy.deepbedmap.superresolve(spec, halo=args.halo).compute()
        chunked = time.perf_counter() - start
        rows.append((pixels / bare, pixels / chunked))
    bare_rate = max(r[0] for r in rows)
    chunked_rate = max(r[1] for r in rows)
    name = spec.path.rsplit("/", 1)[-1]
    print(
        f"region {args.size} x {args.size} base px, chunks {args.chunks}, halo {args.halo}, "
        f"{torch.get_num_threads()} torch threads, model {name}"
    )
    print(f"bare generator : {bare_rate:10,.0f} base px/s")
    print(f"superresolve   : {chunked_rate:10,.0f} base px/s")
    print(f"ratio          : {chunked_rate / bare_rate:.3f}")


if __name__ == "__main__":
    main()
