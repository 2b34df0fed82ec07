"""Model vs bicubic on whole held-out synthetic regions (RMSE against the 250 m truth).

Each region is made with :func:`xdeepbedmap.synthetic.make_region` and
super-resolved whole (default halo, window and chunks), so the figures are
what a user gets, not tile scores. Use seeds no model trained on (the
validation seeds of ``make demo-model-world`` are 300-311).

    python benchmarks/heldout_regions.py --model runs/demo_model_v2.safetensors \
        --world v2 --seeds 300-311 --shape 80
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xdeepbedmap.baselines import bicubic  # noqa: E402
from xdeepbedmap.cli._args import parse_seeds  # noqa: E402
from xdeepbedmap.grids import validate_inputs  # noqa: E402
from xdeepbedmap.inference import superresolve  # noqa: E402
from xdeepbedmap.metrics import error_summary  # noqa: E402
from xdeepbedmap.synthetic import WORLDS, make_region  # noqa: E402
from xdeepbedmap.truth import align_truth  # noqa: E402


def region_rmse(model: str, world: str, seed: int, shape: int) -> tuple[float, float]:
    """``(bicubic, model)`` RMSE (m) on one whole synthetic region."""
    inputs, truth = make_region((shape, shape), seed=seed, **WORLDS[world])
    truth = align_truth(truth, validate_inputs(inputs))
    return (
        float(error_summary(bicubic(inputs).compute(), truth)["rmse"]),
        float(error_summary(superresolve(inputs, model).compute(), truth)["rmse"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="checkpoint")
    parser.add_argument("--world", default="v2", choices=sorted(WORLDS))
    parser.add_argument("--seeds", default="300-311")
    parser.add_argument("--shape", type=int, default=80, help="base px per side")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| seed | bicubic RMSE (m) | model RMSE (m) | change |\n|---|---:|---:|---:|")
    rows = []
    for seed in parse_seeds(args.seeds):
        b, m = region_rmse(args.model, args.world, seed, args.shape)
        rows.append((b, m))
        print(f"| {seed} | {b:.1f} | {m:.1f} | {m / b - 1:+.1%} |", flush=True)
    mean = np.mean(rows, axis=0)
    print(f"| mean | {mean[0]:.1f} | {mean[1]:.1f} | {mean[1] / mean[0] - 1:+.1%} |")


if __name__ == "__main__":
    main()
