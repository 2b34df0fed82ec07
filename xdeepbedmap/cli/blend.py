"""``xdeepbedmap fit-blend``: fit the distance blend of a model on held-out synthetic regions."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from xdeepbedmap.cli._args import parse_seeds, parse_shape, refuse_existing, refuse_seen_regions
from xdeepbedmap.synthetic import WORLDS

__all__ = ["add_commands", "training_data"]


def training_data(model: Path) -> dict[str, Any]:
    """What the model records of its training data (empty when unknown)."""
    if model.is_dir():
        from xdeepbedmap.ensemble.store import read_ensemble

        return read_ensemble(model).metadata.get("data", {}).get("training_data", {})
    from xdeepbedmap.model.checkpoint import read_checkpoint_metadata

    try:
        return read_checkpoint_metadata(model)["metadata"].get("training_data", {}) or {}
    except (KeyError, ValueError, OSError):
        return {}  # a Chainer .npz or a checkpoint without records: nothing to check


def _cmd_fit_blend(args: argparse.Namespace) -> int:
    from xdeepbedmap.blend_regions import fit_blend_on_regions

    model = Path(args.model)
    if not model.exists():
        raise FileNotFoundError(f"--model {model}: no such checkpoint or ensemble folder")
    in_manifest = model.is_dir() and not args.output
    recalibrate = False
    if in_manifest:  # complete and intact, and not already blended unless asked
        from xdeepbedmap.ensemble.store import read_ensemble

        ensemble = read_ensemble(model)
        recalibrate = ensemble.calibration is not None and ensemble.calibration.blended
        if ensemble.blend is not None and not args.overwrite:
            raise FileExistsError(
                f"--model {model} already has a distance blend; pass --overwrite to refit it"
            )
    refuse_seen_regions(
        training_data(model),
        parse_seeds(args.synthetic),
        args.synthetic_world,
        "model",
        keys=("synthetic_seeds", "validation_seeds"),
    )
    output = Path(args.output) if args.output else model.with_suffix(".blend.json")
    if not in_manifest:
        refuse_existing([output], args.overwrite)
    seeds = parse_seeds(args.synthetic)
    started = time.perf_counter()
    blend = fit_blend_on_regions(
        model,
        seeds,
        world=args.synthetic_world,
        shape=parse_shape(args.synthetic_shape),
        blind_conditioning=args.blind_conditioning,
        progress=True,
    )
    if in_manifest:
        from xdeepbedmap.ensemble.store import set_distance_blend

        output = set_distance_blend(model, blend)
        note = " (its calibration was for the old blend and is dropped: recalibrate)"
        note = note if recalibrate else ""
    else:
        output, note = blend.save(output), ""
    print(f"{blend.describe()}\n  fitted on {blend.fitted_on}, {blend.pixels} pixels, "
          f"{time.perf_counter() - started:.0f} s\n  wrote {output}{note}")  # fmt: skip
    return 0


def add_commands(sub: Any) -> None:
    """Register ``fit-blend``."""
    fb = sub.add_parser(
        "fit-blend",
        help="fit how much to trust a model's residual against distance to the survey lines",
        description="Super-resolve whole held-out synthetic regions of a survey world with "
        "the model (or an ensemble folder's member mean), and fit w(d), the least-squares "
        "weight of its residual over the bicubic bed against distance d to the nearest survey "
        "pick (xdeepbedmap.distance_blend). Use seeds the model never trained on or picked "
        "epochs with, and not the region you will judge it on.",
    )
    fb.add_argument("--model", required=True, help="checkpoint or ensemble folder")
    fb.add_argument("--synthetic", required=True, help="region seeds, e.g. 312-323")
    fb.add_argument("--synthetic-shape", default="80x80", help="base px per region (default 80x80)")
    survey_worlds = sorted(w for w, spec in WORLDS.items() if spec["bed_model"] == "survey")
    fb.add_argument(
        "--synthetic-world",
        default="v2",
        choices=survey_worlds,
        help="a world whose 1 km bed is gridded from survey lines (default v2)",
    )
    fb.add_argument(
        "--output",
        help="JSON to write (default: into the manifest of an ensemble folder, which is what "
        "superresolve --ensemble uses; MODEL.blend.json beside a checkpoint)",
    )
    fb.add_argument(
        "--blind-conditioning",
        action="store_true",
        help="run the model on blind inputs (a bed-only model trained with --blind-conditioning)",
    )
    fb.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    fb.set_defaults(func=_cmd_fit_blend)
