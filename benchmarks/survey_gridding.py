"""Survey gridding: time to read + grid a million picks, and gridding error vs line spacing.

Both on synthetic beds (:func:`xdeepbedmap.synthetic.make_truth`) flown with
:func:`xdeepbedmap.survey.synthetic_survey` (east-west lines, north-south tie
lines every 3 line spacings, 30 m along track, 5 m pick noise) and written in
the CReSIS csv_good layout. Errors are gridded bed - true bed over the cells
the distance mask keeps (``mask_radius`` = half the line spacing + 250 m, so
the cells between lines count). Prints Markdown tables.

    python benchmarks/survey_gridding.py [--size 800] [--spacings 2,5,10,20] [--methods ...]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from xdeepbedmap.survey import grid_points, read_points, synthetic_survey, write_cresis_csv
from xdeepbedmap.synthetic import make_truth


def bbox_of(truth) -> tuple[float, float, float, float]:  # noqa: ANN001
    half = 125.0
    xs, ys = truth.x.values, truth.y.values
    return (xs.min() - half, ys.min() - half, xs.max() + half, ys.max() + half)


def timing(size: int, line_spacing: float, method: str, folder: Path) -> None:
    truth = make_truth((size, size), seed=11, ocean=False)
    survey = synthetic_survey(truth, line_spacing=line_spacing, tie_spacing=4 * line_spacing)
    path = write_cresis_csv(survey, folder / "million_csv_good.csv")
    start = time.perf_counter()
    points = read_points(path)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    ds = grid_points(points, bbox_of(truth), mask_radius=line_spacing, method=method)
    grid_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| rows | picks kept | cells with picks | output cells | read s | grid s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {len(survey):,} | {len(points):,} | {int((ds['count'] > 0).sum()):,} | "
        f"{ds['bed'].size:,} | {read_s:.1f} | {grid_s:.1f} | {peak:.0f} |"
    )


def accuracy(size: int, spacings: list[float], methods: list[str]) -> None:
    truth = make_truth((size, size), seed=12, ocean=False)
    true = truth.values.astype(np.float64)
    print("| line spacing km | method | picks | cells kept % | RMSE m | max abs m | grid s |")
    print("|---|---|---|---|---|---|---|")
    for spacing in spacings:
        survey = synthetic_survey(truth, line_spacing=spacing, tie_spacing=3 * spacing, seed=3)
        keep = (survey.BOTTOM > -9999) & (survey.QUALITY <= 2)
        points = survey.loc[keep, ["x", "y"]].assign(bed=survey.BOTTOM[keep])
        for method in methods:
            start = time.perf_counter()
            ds = grid_points(points, bbox_of(truth), mask_radius=spacing / 2 + 250, method=method)
            seconds = time.perf_counter() - start
            error = ds["bed"].values - true
            kept = np.isfinite(error)
            print(
                f"| {spacing / 1000:g} | {method} | {len(points):,} | {100 * kept.mean():.1f} | "
                f"{np.sqrt(np.mean(error[kept] ** 2)):.1f} | {np.max(np.abs(error[kept])):.0f} | "
                f"{seconds:.1f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=800, help="250 m cells per side (timing)")
    parser.add_argument("--timing-spacing", type=float, default=1500.0, help="m, ~1M picks at 800")
    parser.add_argument("--accuracy-size", type=int, default=400, help="250 m cells per side")
    parser.add_argument("--spacings", default="2,5,10,20", help="line spacings, km")
    parser.add_argument("--methods", default="linear,cubic,kneighbors")
    parser.add_argument("--skip-timing", action="store_true")
    args = parser.parse_args()
    methods = args.methods.split(",")
    if not args.skip_timing:
        with tempfile.TemporaryDirectory() as folder:
            timing(args.size, args.timing_spacing, methods[0], Path(folder))
        print()
    spacings = [float(s) * 1000 for s in args.spacings.split(",")]
    accuracy(args.accuracy_size, spacings, methods)


if __name__ == "__main__":
    main()
