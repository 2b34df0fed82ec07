"""A held-out synthetic region judged at survey points: model, bicubic and survey-only.

The region (default: the demo region, seed 42, which no bundled-model training
region used) is flown with :func:`xdeepbedmap.survey.synthetic_survey`
(east-west lines, north-south tie lines every 3 line spacings, 30 m along
track, 5 m pick noise, quality flags, -9999 runs). As the paper held out a
campaign, one set of lines is the test set and the rest the training picks of
the survey-only baseline (:func:`xdeepbedmap.survey.survey_baseline`, block
median + verde linear, 20 km mask):

* ``ties``: test = the tie lines, train = the east-west lines;
* ``every 3rd``: test = every third line (east-west and ties), train = the others.

Every bed is scored on the same picks (``evaluate_points(common=True)``);
``truth`` is the true bed sampled at the picks: the pick-noise floor. Prints
a Markdown table.

    python benchmarks/survey_holdout.py [--seed 42] [--shape 80] [--spacings 3,6] [--model PATH]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from xdeepbedmap.survey import evaluate_points, point_beds, survey_baseline, synthetic_survey
from xdeepbedmap.synthetic import make_region


def valid_picks(flown: pd.DataFrame) -> pd.DataFrame:
    """The picks a reader keeps (bed pick present, quality 1-2), with their line id."""
    keep = (flown.BOTTOM > -9999) & (flown.QUALITY <= 2)
    line = flown.FRAME[keep] - 2018110100000
    return flown.loc[keep, ["x", "y"]].assign(bed=flown.BOTTOM[keep], line=line)


def splits(points: pd.DataFrame) -> dict[str, pd.Series]:
    """Test masks: the tie lines (ids 2000+), or every third line."""
    return {"ties": points.line >= 2000, "every 3rd": points.line % 3 == 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42, help="held-out region seed (demo: 42)")
    parser.add_argument("--shape", type=int, default=80, help="base px per side")
    parser.add_argument("--spacings", default="3,6", help="east-west line spacings, km")
    parser.add_argument("--model", help="checkpoint (default: the bundled demo model)")
    args = parser.parse_args()
    inputs, truth = make_region((args.shape, args.shape), seed=args.seed)
    start = time.perf_counter()
    beds = point_beds(inputs, args.model, ("bicubic",), device="cpu")
    print(f"model + bicubic over {args.shape} x {args.shape} base px: "
          f"{time.perf_counter() - start:.1f} s\n")  # fmt: skip
    columns = ["line spacing km", "test lines", "train picks", "test picks", "bed", "RMSE m"]
    print("| " + " | ".join([*columns, "MAE m", "bias m"]) + " |")
    print("|---" * (len(columns) + 2) + "|")
    for km in (float(v) for v in args.spacings.split(",")):
        flown = synthetic_survey(truth, line_spacing=km * 1000, tie_spacing=3 * km * 1000, seed=7)
        points = valid_picks(flown)
        for label, test in splits(points).items():
            train, held = points[~test], points[test]
            grids = {**beds, "survey": survey_baseline(train, beds["bicubic"]), "truth": truth}
            table = evaluate_points(None, held, model=False, baselines=(), grids=grids)
            for name, row in table.iterrows():
                print(f"| {km:g} | {label} | {len(train):,} | {int(row['count']):,} | {name} | "
                      f"{row.rmse:.1f} | {row.mae:.1f} | {row.bias:+.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
