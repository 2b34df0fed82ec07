"""Ablation: does a model use its conditioning inputs? RMSE on the held-out demo region.

On the demo region (``catalog.DEMO_SHAPE``, seed ``catalog.DEMO_SEED``, never
trained on) of the chosen synthetic world, the RMSE (m) against the 250 m
truth of:

- the model on the intact inputs, and bicubic interpolation of the 1 km bed;
- the model with each conditioning input (surface; velocity, vx and vy
  together; accumulation) Gaussian-smoothed at ``--sigmas`` km, shuffled
  (8 km blocks permuted) or flattened (set to its mean), see
  :mod:`xdeepbedmap.conditioning`;
- optionally a bed-only model (``--bed-only-model``: the same network trained
  with ``xdeepbedmap train --blind-conditioning``), run on blind inputs;
- in world v2 (survey bed), RMSE against distance to the nearest survey pick
  for the model, bicubic (and the bed-only model).

Prints Markdown tables and writes them with a figure (``--markdown``,
``--figure``; defaults under docs/, suffixed with the world).

    python benchmarks/ablation.py [--world v1] [--model PATH] [--bed-only-model PATH]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xdeepbedmap.baselines import bicubic
from xdeepbedmap.catalog import DEMO_SEED, DEMO_SHAPE
from xdeepbedmap.conditioning import CONDITIONING, blind, flatten, shuffle, smooth
from xdeepbedmap.grids import validate_inputs
from xdeepbedmap.inference import superresolve
from xdeepbedmap.metrics import error_summary
from xdeepbedmap.synthetic import WORLDS, make_region, survey_picks
from xdeepbedmap.truth import align_truth

DISTANCE_EDGES_KM = (0.0, 1.0, 2.0, 5.0, 10.0, np.inf)


def variants(inputs: xr.Dataset, sigmas: list[float]) -> dict[str, tuple[str, xr.Dataset]]:
    """``{label: (input group, perturbed inputs)}`` for every ablation of the model."""
    out = {"model": ("-", inputs)}
    for group in CONDITIONING:
        for sigma in sigmas:
            out[f"{group} smoothed {sigma:g} km"] = (group, smooth(inputs, group, sigma))
        out[f"{group} shuffled"] = (group, shuffle(inputs, group))
        out[f"{group} flattened"] = (group, flatten(inputs, group))
    return out


def rmse(bed: xr.DataArray, truth: xr.DataArray) -> float:
    return float(error_summary(bed, truth)["rmse"])


def distance_to_lines(truth: xr.DataArray, seed: int) -> np.ndarray:
    """Distance (km) from every 250 m truth pixel centre to the nearest kept survey pick."""
    from scipy.spatial import cKDTree

    picks = survey_picks(truth, seed)
    xx, yy = np.meshgrid(truth.x.values, truth.y.values)
    dist, _ = cKDTree(picks[["x", "y"]].to_numpy()).query(np.column_stack([xx.ravel(), yy.ravel()]))
    return dist.reshape(xx.shape) / 1e3


def by_distance(beds: dict[str, xr.DataArray], truth: xr.DataArray, dist: np.ndarray) -> list:
    """Rows ``(lo, hi, share, {name: rmse})`` of RMSE binned by distance to the lines."""
    rows = []
    errors = {name: bed.values - truth.values for name, bed in beds.items()}
    valid = np.logical_and.reduce([np.isfinite(e) for e in errors.values()])
    for lo, hi in zip(DISTANCE_EDGES_KM[:-1], DISTANCE_EDGES_KM[1:], strict=True):
        m = valid & (dist >= lo) & (dist < hi)
        if m.sum() < 10:
            continue
        rmses = {name: float(np.sqrt(np.mean(e[m] ** 2))) for name, e in errors.items()}
        rows.append((lo, hi, 100 * m.sum() / valid.sum(), rmses))
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    inputs, truth = make_region(DEMO_SHAPE, seed=DEMO_SEED, **WORLDS[args.world])
    truth = align_truth(truth, validate_inputs(inputs))
    kwargs = {"device": args.device}
    table = {"bicubic": ("-", rmse(bicubic(inputs).compute(), truth))}
    beds = {"bicubic": bicubic(inputs).compute()}
    for label, (group, ds) in variants(inputs, args.sigmas).items():
        start = time.perf_counter()
        bed = superresolve(ds, args.model, **kwargs).compute()
        table[label] = (group, rmse(bed, truth))
        if label == "model":
            beds["model"] = bed
        print(f"  {label}: {table[label][1]:.2f} m ({time.perf_counter() - start:.0f} s)")
    if args.bed_only_model:
        bed = superresolve(blind(inputs), args.bed_only_model, **kwargs).compute()
        table["bed-only model"] = ("-", rmse(bed, truth))
        beds["bed-only model"] = bed
    rows = []
    if WORLDS[args.world]["bed_model"] == "survey":
        rows = by_distance(beds, truth, distance_to_lines(truth, DEMO_SEED))
    return {"table": table, "distance": rows}


def markdown(result: dict[str, Any], args: argparse.Namespace) -> str:
    model = args.model or "bundled demo model"
    base = result["table"]["model"][1]
    lines = [
        f"World {args.world}, demo region {DEMO_SHAPE[0]}x{DEMO_SHAPE[1]} km (seed {DEMO_SEED}, "
        f"held out), model: {model}.",
        "",
        "| variant | input | RMSE (m) | vs model |",
        "|---|---|---|---|",
    ]
    for label, (group, value) in result["table"].items():
        lines.append(f"| {label} | {group} | {value:.2f} | {100 * (value / base - 1):+.1f}% |")
    if result["distance"]:
        names = list(result["distance"][0][3])
        lines += [
            "",
            "RMSE (m) against distance to the nearest survey pick:",
            "",
            "| distance (km) | share | " + " | ".join(names) + " |",
            "|---|---|" + "---|" * len(names),
        ]
        for lo, hi, share, rmses in result["distance"]:
            values = " | ".join(f"{rmses[n]:.1f}" for n in names)
            lines.append(f"| {lo:g}-{hi:g} | {share:.0f}% | {values} |")
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], path: Path, world: str) -> None:
    import matplotlib.pyplot as plt

    ncols = 2 if result["distance"] else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols, 5.5), layout="constrained")
    axes = np.atleast_1d(axes)
    labels = list(result["table"])
    values = [result["table"][k][1] for k in labels]
    colours = [
        f"C{list(CONDITIONING).index(g) + 1}" if g in CONDITIONING else "0.3"
        for g, _ in result["table"].values()
    ]
    axes[0].barh(labels, values, color=colours)
    axes[0].axvline(result["table"]["model"][1], color="k", lw=0.8)
    axes[0].invert_yaxis()
    axes[0].set_xlabel("RMSE against the truth (m)")
    axes[0].set_title(f"Ablation on the held-out demo region (world {world})")
    axes[0].tick_params(axis="y", labelsize=7)
    if result["distance"]:
        mids = [(lo + min(hi, 15.0)) / 2 for lo, hi, _, _ in result["distance"]]
        for name in result["distance"][0][3]:
            axes[1].plot(mids, [r[3][name] for r in result["distance"]], "o-", label=name)
        axes[1].set_xlabel("distance to nearest survey pick (km)")
        axes[1].set_ylabel("RMSE (m)")
        axes[1].legend()
        axes[1].set_title("Error against distance to the survey lines")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="v1", choices=sorted(WORLDS))
    parser.add_argument("--model", default=None, help="checkpoint (default: bundled demo model)")
    parser.add_argument("--bed-only-model", default=None, help="model trained on blind inputs")
    parser.add_argument("--sigmas", default="1,3,10", help="smoothing sigmas (km)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--markdown", default=None, help="default docs/ablation_<world>.md")
    parser.add_argument("--figure", default=None, help="default docs/ablation_<world>.png")
    args = parser.parse_args()
    args.sigmas = [float(s) for s in args.sigmas.split(",")]
    start = time.perf_counter()
    result = run(args)
    text = markdown(result, args)
    print(text)
    md = Path(args.markdown or f"docs/ablation_{args.world}.md")
    figure = Path(args.figure or f"docs/ablation_{args.world}.png")
    md.write_text(text)
    plot(result, figure, args.world)
    print(f"wrote {md} and {figure} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
