"""``xdeepbedmap evaluate``: a model against a truth grid or survey points."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from xdeepbedmap.cli._args import add_region_options, at_least, ensemble_option, parse_seeds
from xdeepbedmap.cli._regions import regions_from_args
from xdeepbedmap.cli.survey import add_point_options, evaluate_at_points
from xdeepbedmap.evaluation import evaluate, format_table

__all__ = ["add_commands"]


def _cmd_evaluate(args: argparse.Namespace) -> int:
    if args.points:
        if args.ensemble:
            raise ValueError("--ensemble is judged against a truth grid; drop --points")
        return evaluate_at_points(args)
    regions = regions_from_args(args, train_on=False)
    if len(regions) != 1:
        raise ValueError("evaluate takes one region (one --synthetic seed)")
    ensemble = None
    if args.ensemble:  # read and checked before any work
        ensemble = ensemble_option(args.ensemble)
    inputs, truth = regions[0]
    table = evaluate(
        inputs,
        truth.compute(),
        args.model,
        ensemble=ensemble,
        figure=args.figure,
        survey=_survey(args, ensemble, truth),
        halo=args.halo,
        device=args.device,
    )
    print(format_table(table))
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2) + "\n")
        print(f"  wrote {args.json}")
    if args.figure:
        print(f"  wrote {args.figure}")
        if ensemble is not None:
            figure = Path(args.figure)
            print(f"  wrote {figure.with_name(f'{figure.stem}_uncertainty.png')}")
    return 0


def _survey(args: argparse.Namespace, ensemble: Any, truth: Any) -> Any:
    """The picks to blend the ensemble with: ``--survey``, or a synthetic region's own."""
    if args.survey:
        if ensemble is None or ensemble.blend is None:
            raise ValueError("--survey blends an --ensemble that has a distance blend")
        from xdeepbedmap.cli.blend import read_survey_files

        return read_survey_files(args)
    if ensemble is None or ensemble.blend is None or not args.synthetic:
        return None
    from xdeepbedmap.synthetic import WORLDS, survey_picks

    if WORLDS[args.synthetic_world]["bed_model"] != "survey":
        return None
    # the region's own survey: the one its 1 km bed was gridded from
    return survey_picks(truth, parse_seeds(args.synthetic)[0])


def _add_evaluate(sub: Any) -> None:
    ev = sub.add_parser(
        "evaluate",
        help="RMSE and roughness of a model vs bicubic on a region with truth",
        description="Super-resolve a region with known truth and compare with bicubic "
        "interpolation of the 1 km bed: RMSE, MAE, bias and roughness.",
    )
    add_region_options(ev, default_catalog="demo")
    ev.add_argument("--model", help="checkpoint or Chainer .npz (default: bundled demo model)")
    ev.add_argument(
        "--ensemble",
        action="append",
        help="ensemble folder, member checkpoints (repeat) or 'bundled': adds its mean's "
        "errors and the uncertainty numbers (coverage, z-scores, rank correlation, CRPS)",
    )
    ev.add_argument("--halo", type=at_least(0), help="base px of context per window")
    ev.add_argument("--figure", help="comparison PNG (with --points: the --transect PNG)")
    ev.add_argument("--json", help="write the table as JSON")
    ev.add_argument("--points", help="judge at these survey picks instead of a truth grid")
    ev.add_argument("--training-points", help="picks the survey-only baseline interpolates")
    ev.add_argument("--transect", help="x0,y0,x1,y1: elevation and roughness along this line")
    ev.add_argument(
        "--survey",
        action="append",
        metavar="FILE",
        help="blend the --ensemble by distance to these picks (its blend); a --synthetic "
        "region of a survey world uses its own survey by default",
    )
    ev.add_argument("--survey-crs", help="CRS of x/y columns of x/y/z --survey files")
    add_point_options(ev)
    ev.set_defaults(func=_cmd_evaluate)


def add_commands(sub: Any) -> None:
    """Register evaluate."""
    _add_evaluate(sub)
