"""Choose an ensemble error model without the demo region: leave one calibration region out.

Each held-out calibration region (synthetic seeds, never trained on) is
super-resolved with the ensemble's members (the raw spread); for each error
model and fitting rule, the factors are fitted on all regions but one and
judged on the one left out: coverage of the 68.3 % and 95 % Gaussian
intervals and the Gaussian negative log-likelihood (docs/ensemble.md).

    python benchmarks/calibration_rules.py                 # bundled ensemble, seeds 116-123
    python benchmarks/calibration_rules.py --ensemble DIR --seeds 116-123 --world v1
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import optimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xdeepbedmap.cli._args import parse_seeds  # noqa: E402
from xdeepbedmap.ensemble import read_ensemble  # noqa: E402
from xdeepbedmap.ensemble.calibration import fit_std_scale  # noqa: E402
from xdeepbedmap.ensemble.region_calibration import errors_on_region  # noqa: E402
from xdeepbedmap.ensemble.spread_model import (  # noqa: E402
    calibrated_std,
    fit_intervals,
    fit_likelihood,
    gaussian_nll,
)
from xdeepbedmap.ensemble.store import BUNDLED_ENSEMBLE  # noqa: E402
from xdeepbedmap.synthetic import WORLDS, make_region  # noqa: E402

Part = tuple[np.ndarray, np.ndarray, np.ndarray]


def _spread_and_relief(e: np.ndarray, d: np.ndarray, h: np.ndarray) -> tuple[float, ...]:
    def loss(logs: np.ndarray) -> float:
        return gaussian_nll(e, calibrated_std(d, h, *np.exp(logs)[:1], 0.0, np.exp(logs[1])))

    fit = optimize.minimize(loss, np.log([1.0, 3.0]), method="Nelder-Mead")
    return (0.0, float(np.exp(fit.x[0])), float(np.exp(fit.x[1])))


#: name -> fit(errors, spread, relief) -> (floor, std_scale, relief_scale)
RULES: dict[str, Callable[..., tuple[float, ...]]] = {
    "spread only, coverage": lambda e, d, h: (0.0, fit_std_scale(e, d, "coverage"), 0.0),
    "spread + relief, likelihood": _spread_and_relief,
    "floor + spread + relief, likelihood": fit_likelihood,
    "floor + spread + relief, intervals": fit_intervals,
}


def leave_one_out(parts: list[Part], fit: Callable[..., tuple[float, ...]]) -> np.ndarray:
    """Per left-out region: coverage of 68 %, of 95 %, Gaussian NLL."""
    rows = []
    for k, (e, d, h) in enumerate(parts):
        rest = [p for j, p in enumerate(parts) if j != k]
        floor, scale, rel = fit(*(np.concatenate(c) for c in zip(*rest, strict=True)))
        sigma = calibrated_std(d, h, scale, floor, rel)
        z = np.abs(e) / sigma
        rows.append((np.mean(z <= 1.0), np.mean(z <= 1.959964), gaussian_nll(e, sigma)))
    return np.array(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ensemble", default=str(BUNDLED_ENSEMBLE))
    parser.add_argument("--seeds", default="116-123")
    parser.add_argument("--world", default="v1")
    parser.add_argument("--shape", type=int, default=64)
    args = parser.parse_args()
    ensemble = read_ensemble(args.ensemble)
    parts = []
    for seed in parse_seeds(args.seeds):
        inputs, truth = make_region((args.shape, args.shape), seed=seed, **WORLDS[args.world])
        parts.append(errors_on_region(ensemble, inputs, truth))
        rmse = float(np.sqrt(np.mean(parts[-1][0] ** 2)))
        print(f"seed {seed}: {parts[-1][0].size} pixels, RMSE of the mean {rmse:.1f} m")
    print(
        "\n| model, fit | coverage of 68% | coverage of 95% | Gaussian NLL |\n|---|---:|---:|---:|"
    )
    for name, fit in RULES.items():
        rows = leave_one_out(parts, fit)
        cells = [
            f"{rows[:, i].mean():.3f} [{rows[:, i].min():.3f}-{rows[:, i].max():.3f}]"
            for i in (0, 1)
        ]
        print(f"| {name} | {cells[0]} | {cells[1]} | {rows[:, 2].mean():.3f} |")


if __name__ == "__main__":
    main()
