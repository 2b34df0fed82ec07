"""``xdeepbedmap evaluate``: a model against a truth grid or survey points."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from xdeepbedmap.cli._args import add_region_options, at_least, ensemble_option, parse_seeds
from xdeepbedmap.cli._regions import regions_from_args
from xdeepbedmap.cli.survey import add_point_options, evaluate_at_points
from xdeepbedmap.cli.survey_blend import add_survey_options
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
    if args.synthetic:
        _note_other_world(args)
    table = evaluate(
        inputs,
        truth.compute(),
        args.model,
        ensemble=ensemble,
        figure=args.figure,
        **_survey_and_blend(args, ensemble, truth),
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


def _note_other_world(args: argparse.Namespace) -> None:
    """Say so when the model trained on another synthetic world than the one judged."""
    from xdeepbedmap.cli.blend import training_data
    from xdeepbedmap.model_store import BUNDLED_MODEL

    trained = training_data(Path(args.model) if args.model else BUNDLED_MODEL)
    world = trained.get("synthetic_world")
    if world and world != args.synthetic_world:
        print(
            f"note: the model trained on synthetic world {world}; judging it on world "
            f"{args.synthetic_world} (pass --synthetic-world {world} for its own world)"
        )


def _survey_and_blend(args: argparse.Namespace, ensemble: Any, truth: Any) -> dict[str, Any]:
    """``survey=`` and ``blend=`` of ``evaluate``: the picks and the model's blend, if any.

    The picks: ``--survey``; else a ``--synthetic`` region's own survey (a survey
    world's) or the picks the catalog ships, when the ensemble or the model
    has a blend to use them with.
    """
    from xdeepbedmap.cli.survey_blend import (
        checkpoint_blend,
        picks_from_args,
        refuse_contradictions,
    )

    if refuse_contradictions(args):
        return {}
    blend = checkpoint_blend(args.model, args.blend)
    ensemble_blended = ensemble is not None and ensemble.blend is not None
    if blend is None and not ensemble_blended:
        if args.survey:
            raise ValueError(
                "--survey blends an --ensemble that has a distance blend, or a --model "
                "with one (--blend, or MODEL.blend.json beside it)"
            )
        return {}
    if args.synthetic and not args.survey:
        from xdeepbedmap.synthetic import WORLDS, survey_picks

        world = args.synthetic_world
        if WORLDS[world]["bed_model"] != "survey":
            if ensemble_blended:
                raise ValueError(
                    f"--synthetic-world {world} has no survey lines to blend by, and the "
                    "ensemble's blend and error model hold only for blended output: pass "
                    "--synthetic-world v2 (the bundled ensemble's world)"
                )
            return {}
        # the region's own survey: the one its 1 km bed was gridded from
        picks = survey_picks(truth, parse_seeds(args.synthetic)[0])
        print(f"blending by distance to the {len(picks)} survey picks of region {args.synthetic}")
    else:
        picks = picks_from_args(args)
    return {} if picks is None else {"survey": picks, "blend": blend}


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
    add_survey_options(ev)
    add_point_options(ev)
    ev.set_defaults(func=_cmd_evaluate)


def add_commands(sub: Any) -> None:
    """Register evaluate."""
    _add_evaluate(sub)
