"""An ensemble blended by distance to the survey picks, judged on whole held-out regions.

For each region of a survey world (default: the demo region of world v2,
never trained on, nor used to fit the blend or the calibration) prints the
RMSE (m) against the 250 m truth of bicubic, of the members' mean and of the
blended mean, and the uncertainty measures of the blended, calibrated
``bed_std`` (:func:`xdeepbedmap.ensemble.metrics.ensemble_summary`: coverage
of the 68.3 % and 95 % intervals, Spearman correlation of ``bed_std`` with
the error over 5 x 5 px windows, CRPS).

    python benchmarks/blended_ensemble.py --ensemble runs/demo_ensemble_v2 [--seeds 42]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xdeepbedmap.baselines import bicubic  # noqa: E402
from xdeepbedmap.catalog import DEMO_SEED, DEMO_SHAPE  # noqa: E402
from xdeepbedmap.cli._args import parse_seeds  # noqa: E402
from xdeepbedmap.ensemble import read_ensemble, superresolve_ensemble  # noqa: E402
from xdeepbedmap.ensemble.metrics import ensemble_summary  # noqa: E402
from xdeepbedmap.grids import validate_inputs  # noqa: E402
from xdeepbedmap.metrics import error_summary  # noqa: E402
from xdeepbedmap.synthetic import WORLDS, make_region, survey_picks  # noqa: E402
from xdeepbedmap.truth import align_truth  # noqa: E402


def judge(ensemble: str, seed: int, world: str, shape: tuple[int, int]) -> dict:
    """RMSEs and the blended ensemble's uncertainty measures on one region."""
    inputs, truth = make_region(shape, seed=seed, **WORLDS[world])
    picks = survey_picks(truth, seed)
    truth = align_truth(truth, validate_inputs(inputs))
    members = read_ensemble(ensemble)
    raw = superresolve_ensemble(inputs, members, calibration=1.0)
    blended = superresolve_ensemble(inputs, members, survey=picks)

    def rmse(bed):  # noqa: ANN001, ANN202
        return float(error_summary(bed, truth)["rmse"])

    summary = ensemble_summary(blended["bed"], blended["bed_std"], truth)
    summary.pop("reliability")
    # ensemble_summary's own rmse_mean is the blended mean's: keep the unblended one apart
    return {
        **summary,
        "seed": seed,
        "rmse_bicubic": rmse(bicubic(inputs)),
        "rmse_unblended_mean": rmse(raw["bed"]),
        "rmse_blended": rmse(blended["bed"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ensemble", required=True, help="ensemble folder with a blend")
    parser.add_argument("--seeds", default=str(DEMO_SEED), help=f"default {DEMO_SEED} (demo)")
    parser.add_argument("--world", default="v2", choices=sorted(WORLDS))
    parser.add_argument("--shape", default=None, help="base px, e.g. 80x80 (default: demo's)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    shape = DEMO_SHAPE if args.shape is None else tuple(int(v) for v in args.shape.split("x"))
    rows = []
    print("| seed | bicubic | mean | blended | cov 68 | cov 95 | Spearman | CRPS | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for seed in parse_seeds(args.seeds):
        start = time.perf_counter()
        row = judge(args.ensemble, seed, args.world, shape)
        rows.append(row)
        print(
            f"| {seed} | {row['rmse_bicubic']:.1f} | {row['rmse_unblended_mean']:.1f} | "
            f"{row['rmse_blended']:.1f} | {row['coverage_68']:.3f} | {row['coverage_95']:.3f} | "
            f"{row['spearman_std_error']:.2f} | {row['crps']:.1f} | "
            f"{time.perf_counter() - start:.0f} |",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
