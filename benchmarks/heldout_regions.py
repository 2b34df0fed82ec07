"""Model vs bicubic on whole held-out synthetic regions (RMSE against the 250 m truth).

Each region is made with :func:`xdeepbedmap.synthetic.make_region` and
super-resolved whole (default halo, window and chunks), so the figures are
what a user gets, not tile scores. Use seeds no model trained on (the
validation seeds of ``make demo-model-world`` are 300-311). ``--model`` may be
an ensemble folder (its member mean); ``--blend`` adds a column for the bed
blended by distance to the survey picks (:mod:`xdeepbedmap.distance_blend`;
fit it on other seeds than these).

    python benchmarks/heldout_regions.py --model runs/demo_model_v2.safetensors \
        --world v2 --seeds 300-311 --shape 80 [--blend BLEND.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xdeepbedmap.baselines import bicubic  # noqa: E402
from xdeepbedmap.blend_regions import model_blend, predict_bed, region_distance  # noqa: E402
from xdeepbedmap.cli._args import parse_seeds  # noqa: E402
from xdeepbedmap.distance_blend import DistanceBlend, blend_by_distance  # noqa: E402
from xdeepbedmap.grids import validate_inputs  # noqa: E402
from xdeepbedmap.metrics import error_summary  # noqa: E402
from xdeepbedmap.synthetic import WORLDS, make_region  # noqa: E402
from xdeepbedmap.truth import align_truth  # noqa: E402


def region_rmse(
    model: str, world: str, seed: int, shape: int, blend: DistanceBlend | None = None
) -> tuple[float, ...]:
    """``(bicubic, model[, blended])`` RMSE (m) on one whole synthetic region."""
    inputs, truth = make_region((shape, shape), seed=seed, **WORLDS[world])
    truth = align_truth(truth, validate_inputs(inputs))
    base = bicubic(inputs).compute()
    bed = predict_bed(inputs, model).compute()
    beds = [base, bed]
    if blend is not None:
        beds.append(blend_by_distance(bed, base, region_distance(truth, seed, bed), blend))
    return tuple(float(error_summary(b, truth)["rmse"]) for b in beds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="checkpoint")
    parser.add_argument("--world", default="v2", choices=sorted(WORLDS))
    parser.add_argument("--seeds", default="300-311")
    parser.add_argument("--shape", type=int, default=80, help="base px per side")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--blend",
        nargs="?",
        const="model",
        help="distance blend (JSON) of --model, alone: an ensemble folder's own; adds a column",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    blend = None
    if args.blend:
        blend = model_blend(args.model, None if args.blend == "model" else args.blend)
    head = "| seed | bicubic RMSE (m) | model RMSE (m) | change |"
    rule = "|---|---:|---:|---:|"
    if blend is not None:
        head, rule = head + " blended RMSE (m) | change |", rule + "---:|---:|"
    print(f"{head}\n{rule}")

    def row(label: str, values: np.ndarray) -> str:
        cells = [f"{values[0]:.1f}"]
        cells += [f"{v:.1f} | {v / values[0] - 1:+.1%}" for v in values[1:]]
        return f"| {label} | " + " | ".join(cells) + " |"

    rows = []
    for seed in parse_seeds(args.seeds):
        rows.append(region_rmse(args.model, args.world, seed, args.shape, blend))
        print(row(str(seed), np.array(rows[-1])), flush=True)
    print(row("mean", np.mean(rows, axis=0)))


if __name__ == "__main__":
    main()
