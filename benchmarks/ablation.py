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

``--model`` may be a checkpoint or an ensemble folder (its member mean).
With ``--blend`` (a :class:`xdeepbedmap.distance_blend.DistanceBlend` fitted on
other regions, e.g. ``xdeepbedmap fit-blend``; ``--blend`` alone takes the one
in an ensemble folder's manifest) the model and every variant are
blended with the bicubic bed by distance to the nearest pick, and the
unblended network gets its own row; ``--bed-only-blend`` does the same for the
bed-only model.

Prints Markdown tables and writes them with a figure (``--markdown``,
``--figure``; defaults under docs/, suffixed with the world).

    python benchmarks/ablation.py [--world v1] [--model PATH] [--bed-only-model PATH]
        [--blend JSON] [--bed-only-blend JSON]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xdeepbedmap.baselines import bicubic
from xdeepbedmap.blend_regions import model_blend, predict_bed, region_distance
from xdeepbedmap.catalog import DEMO_SEED, DEMO_SHAPE
from xdeepbedmap.conditioning import CONDITIONING, blind, flatten, shuffle, smooth
from xdeepbedmap.distance_blend import blend_by_distance
from xdeepbedmap.grids import validate_inputs
from xdeepbedmap.inference import superresolve
from xdeepbedmap.metrics import error_summary
from xdeepbedmap.synthetic import WORLDS, make_region
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


def _predictor(model: str | None, blend: str | None, distance: xr.DataArray | None, device: str):  # noqa: ANN202
    """``predict(ds)``: the model's bed, blended by distance when ``blend`` is given."""
    weights = None if not blend else model_blend(model, None if blend == "model" else blend)

    def predict(ds: xr.Dataset, raw: bool = False) -> xr.DataArray:
        if model:
            bed = predict_bed(ds, model, device=device).compute()
        else:
            bed = superresolve(ds, device=device).compute()
        if weights is None or raw:
            return bed
        return blend_by_distance(bed, bicubic(ds).compute(), distance, weights)

    return predict


def run(args: argparse.Namespace) -> dict[str, Any]:
    inputs, truth = make_region(DEMO_SHAPE, seed=DEMO_SEED, **WORLDS[args.world])
    truth = align_truth(truth, validate_inputs(inputs))
    survey = WORLDS[args.world]["bed_model"] == "survey"
    distance = region_distance(truth, DEMO_SEED) if survey else None
    if (args.blend or args.bed_only_blend) and distance is None:
        raise SystemExit(f"--blend needs a survey world; {args.world} has no survey lines")
    predict = _predictor(args.model, args.blend, distance, args.device)
    table = {"bicubic": ("-", rmse(bicubic(inputs).compute(), truth))}
    beds = {"bicubic": bicubic(inputs).compute()}
    if args.blend:
        beds["network"] = predict(inputs, raw=True)
        table["network, unblended"] = ("-", rmse(beds["network"], truth))
    for label, (group, ds) in variants(inputs, args.sigmas).items():
        start = time.perf_counter()
        bed = predict(ds)
        table[label] = (group, rmse(bed, truth))
        if label == "model":
            beds["model"] = bed
        print(f"  {label}: {table[label][1]:.2f} m ({time.perf_counter() - start:.0f} s)")
    if args.bed_only_model:
        bed_only = _predictor(args.bed_only_model, args.bed_only_blend, distance, args.device)
        bed = bed_only(blind(inputs))
        table["bed-only model"] = ("-", rmse(bed, truth))
        beds["bed-only model"] = bed
    rows = by_distance(beds, truth, distance.values) if survey else []
    return {"table": table, "distance": rows}


def markdown(result: dict[str, Any], args: argparse.Namespace) -> str:
    model = args.model or "bundled demo model"
    if args.blend:
        model += f", blended by distance ({args.blend})"
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
    parser.add_argument(
        "--blend",
        nargs="?",
        const="model",
        help="distance blend (JSON) of --model; alone: the ensemble folder's own",
    )
    parser.add_argument(
        "--bed-only-blend", nargs="?", const="model", help="the bed-only model's blend (same)"
    )
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
