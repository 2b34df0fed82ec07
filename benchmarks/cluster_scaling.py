"""Speed-up of ``superresolve`` on a dask ``LocalCluster`` with more workers.

Each worker runs one task at a time with one torch thread, so workers map to
cores. The same region and chunking are computed with each cluster size.

    python benchmarks/cluster_scaling.py [--size 128] [--chunks 32] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import logging
import time

import xdeepbedmap  # noqa: F401 - accessor
from xdeepbedmap.cluster import connect
from xdeepbedmap.synthetic import make_region


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--chunks", type=int, default=32)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    logging.getLogger("distributed").setLevel(logging.ERROR)
    ds, _ = make_region((args.size, args.size), seed=7, ocean=False)
    lazy = ds.chunk({"y": args.chunks, "x": args.chunks})
    rates = {}
    for n in (int(w) for w in args.workers.split(",")):
        with connect("local", n_workers=n, dashboard_address=":0") as client:
            client.run(_one_thread)
            out = lazy.deepbedmap.superresolve()
            out.compute()  # warm-up: every worker loads the model once
            start = time.perf_counter()
            out.compute()
            rates[n] = args.size**2 / (time.perf_counter() - start)
        print(f"{n} worker(s): {rates[n]:,.0f} base px/s")
    first = min(rates)
    for n, value in rates.items():
        print(f"speed-up {n} vs {first} worker(s): {value / rates[first]:.2f}")


if __name__ == "__main__":
    main()
