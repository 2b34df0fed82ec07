"""The continent's fill-source pyramids: one per variable, timed serially and side by side.

The fill source (:mod:`xdeepbedmap.gapfill_source`) ends with a pull-push
pyramid per variable over the whole region's 2 km cells; every network task
waits for them. This times five pyramids of a continent-shaped mask (the
disc of :mod:`benchmarks.continent` on 3334 x 3334 cells, two thirds empty)
with 1 and with ``--threads`` threads in one process.

    python benchmarks/fill_source.py [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from xdeepbedmap.gapfill_source import COARSE_CELL
from xdeepbedmap.nodata import pull_push

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.continent import BASE, RADIUS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    n = -(-BASE.shape[0] // COARSE_CELL)
    y, x = np.mgrid[:n, :n] + 0.5 - n / 2
    inside = (y**2 + x**2) < (RADIUS / COARSE_CELL) ** 2
    counts = inside * float(COARSE_CELL**2)
    mean = np.where(inside, np.random.default_rng(0).normal(500, 100, (n, n)), 0.0)
    origin = (-(n // 2), -(n // 2))

    def pyramid(_: int) -> np.ndarray:
        return pull_push(mean, counts, origin).astype(np.float32)

    print(f"{n} x {n} cells, {inside.mean():.0%} with data, 5 variables")
    for threads in sorted({1, args.threads}):
        start, start_cpu = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(pyramid, range(5)))
        print(
            f"{threads} thread(s): {time.perf_counter() - start:.1f} s wall, "
            f"{time.process_time() - start_cpu:.1f} CPU-s"
        )


if __name__ == "__main__":
    main()
