"""Error of the survey-made synthetic 1 km bed (world v2) against distance to the nearest line.

For each region (64 x 64 km, seeds 100-107 as the demo model's training
regions, and the 80 x 80 km demo region, seed 42), the 1 km bed of
:func:`xdeepbedmap.synthetic.survey_bed` minus the truth's 4 x 4 block mean,
binned by the distance from each base pixel centre to the nearest kept pick.
Also the v1 bed (block mean + 1 px Gaussian) for comparison. Prints a
Markdown table and writes a figure.

    python benchmarks/synthetic_bed_error.py [--output docs/synthetic_bed_error.png]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from xdeepbedmap.synthetic import (
    BED_SMOOTHING_SIGMA,
    _nan_gaussian,
    block_mean,
    make_truth,
    survey_bed,
)

EDGES_KM = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, np.inf)
REGIONS = [(seed, 64) for seed in range(100, 108)] + [(42, 80)]


def errors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Survey-bed error, v1-bed error and distance (km) over all regions' ice pixels."""
    survey, v1, dist = [], [], []
    for seed, size in REGIONS:
        truth = make_truth((4 * size, 4 * size), seed=seed)
        bed, distance = survey_bed(truth, seed)
        plain = block_mean(truth.values.astype(np.float64), 4)
        valid = np.isfinite(plain)
        survey.append((bed - plain)[valid])
        v1.append((_nan_gaussian(plain, BED_SMOOTHING_SIGMA) - plain)[valid])
        dist.append(distance[valid] / 1e3)
    return np.concatenate(survey), np.concatenate(v1), np.concatenate(dist)


def table(survey: np.ndarray, v1: np.ndarray, dist: np.ndarray) -> list[dict[str, float]]:
    rows = []
    for lo, hi in zip(EDGES_KM[:-1], EDGES_KM[1:], strict=True):
        m = (dist >= lo) & (dist < hi)
        if not m.any():
            continue
        rows.append(
            {
                "lo": lo,
                "hi": hi,
                "share": 100 * m.mean(),
                "rmse": float(np.sqrt(np.mean(survey[m] ** 2))),
                "p95": float(np.percentile(np.abs(survey[m]), 95)),
                "v1": float(np.sqrt(np.mean(v1[m] ** 2))),
            }
        )
    return rows


def plot(rows: list[dict[str, float]], survey: np.ndarray, dist: np.ndarray, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    ax.scatter(dist, np.abs(survey), s=1, alpha=0.08, color="0.5", label="|error| per pixel")
    mid = [(r["lo"] + min(r["hi"], 25.0)) / 2 for r in rows]
    ax.plot(mid, [r["rmse"] for r in rows], "o-", color="C0", label="RMSE (binned)")
    ax.plot(mid, [r["p95"] for r in rows], "s--", color="C1", label="95th percentile |error|")
    ax.plot(mid, [r["v1"] for r in rows], "^:", color="C2", label="v1 bed (block mean), RMSE")
    ax.axhline(66, color="k", lw=0.8, ls="-.", label="±66 m (BEDMAP2 near data, see docs)")
    ax.set_xlabel("distance from base pixel centre to nearest survey pick (km)")
    ax.set_ylabel("1 km bed - truth block mean (m)")
    ax.set_ylim(0, 1200)
    ax.set_title("Synthetic BEDMAP2-like bed (world v2): error vs distance to lines")
    ax.legend(fontsize=8, loc="upper left")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="docs/synthetic_bed_error.png")
    args = parser.parse_args()
    start = time.perf_counter()
    survey, v1, dist = errors()
    rows = table(survey, v1, dist)
    print(
        "| distance to line (km) | share of pixels | RMSE (m) | 95% abs error (m) | v1 RMSE (m) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['lo']:g}-{r['hi']:g} | {r['share']:.0f}% | {r['rmse']:.0f} "
            f"| {r['p95']:.0f} | {r['v1']:.0f} |"
        )
    print(
        f"| all | 100% | {np.sqrt(np.mean(survey**2)):.0f} "
        f"| {np.percentile(np.abs(survey), 95):.0f} | {np.sqrt(np.mean(v1**2)):.0f} |"
    )
    plot(rows, survey, dist, Path(args.output))
    print(f"wrote {args.output} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
