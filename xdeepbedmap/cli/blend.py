"""``xdeepbedmap fit-blend``: fit the distance blend of a model on held-out synthetic regions."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import xarray as xr

from xdeepbedmap.cli._args import parse_seeds, parse_shape, refuse_existing, refuse_seen_regions
from xdeepbedmap.synthetic import WORLDS

__all__ = ["add_commands"]


def _training_data(model: Path) -> dict[str, Any]:
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
        _training_data(model),
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


def add_survey_options(parser: argparse.ArgumentParser) -> None:
    """``--survey`` and ``--blend`` of ``superresolve``."""
    parser.add_argument(
        "--survey",
        action="append",
        metavar="FILE",
        help="bed picks (CReSIS/Bedmap CSV or Parquet; repeat for several): blend the result "
        "with the bicubic bed by distance to them (the ensemble's blend, or --blend)",
    )
    parser.add_argument(
        "--survey-crs", help="CRS of x/y columns of x/y/z survey files (default: lon/lat)"
    )
    parser.add_argument("--blend", help="distance blend (JSON from fit-blend) for --model")


def survey_from_args(args: argparse.Namespace, crs: Any, has_ensemble: bool) -> Any:
    """``(picks, blend)`` for ``--survey``/``--blend``, read and checked before any output."""
    from xdeepbedmap.crs import same_crs
    from xdeepbedmap.distance_blend import DistanceBlend

    if not args.survey:
        if args.blend or args.survey_crs:
            option = "--blend" if args.blend else "--survey-crs"
            raise ValueError(f"{option} needs --survey: the picks to measure distances to")
        return None, None
    if has_ensemble and args.blend:
        raise ValueError("--blend is for --model; an ensemble uses the blend in its manifest")
    if not has_ensemble and not args.blend:
        raise ValueError("--survey with --model needs --blend (fit one with fit-blend)")
    if not same_crs(crs, "EPSG:3031"):
        raise ValueError(f"--survey picks are read in EPSG:3031; the inputs are in {crs}")
    blend = DistanceBlend.load(args.blend) if args.blend else None
    picks = read_survey_files(args)
    if blend is not None and blend.model_sha256:
        from xdeepbedmap.blend_regions import model_digest

        if blend.model_sha256 != model_digest(args.model):
            raise ValueError(
                f"--blend {args.blend} was fitted for another model ({blend.fitted_on}); "
                "fit one for this model with fit-blend"
            )
    return picks, blend


def read_survey_files(args: argparse.Namespace) -> Any:
    """The picks of ``--survey`` (x/y in EPSG:3031), with ``--survey-crs`` for x/y/z files."""
    from xdeepbedmap.survey import read_points
    from xdeepbedmap.survey.errors import SurveyError

    try:
        return read_points(args.survey, crs=args.survey_crs)
    except SurveyError as err:
        if "need their CRS" in str(err):
            raise SurveyError(f"{err}; on the command line: --survey-crs EPSG:3031") from err
        raise


def blend_single(result: Any, ds: Any, picks: Any, blend: Any) -> Any:
    """A single model's bed blended by distance to ``picks`` (pointwise, so crop-free)."""
    from xdeepbedmap.baselines import bicubic
    from xdeepbedmap.distance_blend import blend_by_distance, distance_to_points
    from xdeepbedmap.region import crop_to_region

    bed = result["bed"] if isinstance(result, xr.Dataset) else result
    base = crop_to_region(bicubic(ds), ds)
    if bed.chunks is not None:
        base = base.chunk(dict(zip(("y", "x"), bed.chunks, strict=True)))
    blended = blend_by_distance(bed, base, distance_to_points(picks, bed), blend)
    if isinstance(result, xr.Dataset):
        return result.assign(bed=blended)
    return blended
