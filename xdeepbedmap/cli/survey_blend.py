"""``--survey``/``--blend``/``--no-survey``: a command's bed blended by distance to survey picks.

Where the picks come from: ``--survey FILE`` (repeatable), else, for a
model or ensemble that has a distance blend, the picks the catalog ships
(``metadata.survey``, :mod:`xdeepbedmap.catalog_survey`), used unasked and
announced; ``--no-survey`` gives the network's bed as it is. Which blend: an
ensemble's own (its manifest); for a checkpoint, ``--blend`` or
``MODEL.blend.json`` beside it (where ``fit-blend`` writes it). Everything
is read and checked before any output is created.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = [
    "add_survey_options",
    "checkpoint_blend",
    "picks_from_args",
    "read_survey_files",
    "refuse_contradictions",
    "survey_from_args",
]


def add_survey_options(parser: argparse.ArgumentParser) -> None:
    """``--survey``, ``--survey-crs``, ``--no-survey`` and ``--blend``."""
    parser.add_argument(
        "--survey",
        action="append",
        metavar="FILE",
        help="bed picks (CReSIS/Bedmap CSV or Parquet; repeat for several): blend the result "
        "with the bicubic bed by distance to them (the ensemble's blend; for --model, "
        "--blend or MODEL.blend.json). Default: a model or ensemble with a blend uses the "
        "picks the catalog ships, if any (the demo catalog does)",
    )
    parser.add_argument(
        "--survey-crs", help="CRS of x/y columns of x/y/z survey files (default: lon/lat)"
    )
    parser.add_argument(
        "--no-survey",
        action="store_true",
        help="no blending: the network's bed as it is (refused for an ensemble whose error "
        "model was fitted on blended output, like the bundled one)",
    )
    parser.add_argument(
        "--blend",
        help="distance blend (JSON from fit-blend) for --model "
        "(default: MODEL.blend.json beside the checkpoint, if there)",
    )


def checkpoint_blend(model: Any, blend: Any = None) -> Any:
    """The :class:`~xdeepbedmap.distance_blend.DistanceBlend` of a checkpoint, or ``None``.

    ``blend`` (a JSON path) if given, else ``MODEL.blend.json`` beside the
    checkpoint (``model=None``: the bundled model) if it exists.

    Raises
    ------
    ValueError
        If the blend records another model's digest than ``model``'s.
    """
    from xdeepbedmap.blend_regions import model_digest
    from xdeepbedmap.distance_blend import DistanceBlend
    from xdeepbedmap.model_store import BUNDLED_MODEL

    checkpoint = Path(model or BUNDLED_MODEL)
    path = Path(blend) if blend else checkpoint.with_suffix(".blend.json")
    if not blend and (checkpoint.is_dir() or not path.exists()):
        return None
    found = DistanceBlend.load(path)
    if found.model_sha256 and found.model_sha256 != model_digest(model):
        raise ValueError(
            f"blend {path} was fitted for another model ({found.fitted_on}); "
            "fit one for this model with fit-blend"
        )
    return found


def picks_from_args(args: argparse.Namespace) -> Any:
    """The picks of ``--survey``, else those ``--catalog`` ships (``None``: neither), announced.

    Raises
    ------
    ValueError
        ``--blend`` given and no picks to use it with.
    """
    from xdeepbedmap.catalog_survey import find_survey

    if args.survey:
        picks, source = read_survey_files(args), ", ".join(args.survey)
    else:
        catalog = getattr(args, "catalog", None)
        picks = None if catalog is None else find_survey(catalog)
        source = f"catalog {catalog}"
    if picks is None:
        if args.blend:
            raise ValueError("--blend needs --survey: the picks to measure distances to")
        return None
    print(f"blending by distance to the {len(picks)} survey picks of {source}")
    return picks


def refuse_contradictions(args: argparse.Namespace) -> bool:
    """Refuse contradicting survey options; ``True`` when ``--no-survey`` was given."""
    if args.survey_crs and not args.survey:
        raise ValueError("--survey-crs needs --survey: the picks to measure distances to")
    if args.no_survey and (args.survey or args.blend):
        option = "--survey" if args.survey else "--blend"
        raise ValueError(f"--no-survey and {option} contradict each other")
    return bool(args.no_survey)


def survey_from_args(args: argparse.Namespace, crs: Any, ensemble: Any = None) -> Any:
    """``(picks, blend)`` for the options, or ``(None, None)``: no blending.

    ``blend`` is ``None`` for an ensemble (it blends with its own). Without
    ``--survey``, a model or ensemble that has a blend uses the catalog's picks.
    """
    from xdeepbedmap.crs import same_crs

    explicit_blend = args.blend
    if refuse_contradictions(args):
        return None, None
    if ensemble is not None:
        if explicit_blend:
            raise ValueError("--blend is for --model; an ensemble uses the blend in its manifest")
        blend, has_blend = None, ensemble.blend is not None
    else:
        blend = checkpoint_blend(args.model, explicit_blend)
        has_blend = blend is not None
        if args.survey and not has_blend:
            raise ValueError(
                "--survey with --model needs --blend (fit one with fit-blend; "
                f"no {Path(args.model or 'MODEL').with_suffix('.blend.json')} beside it)"
            )
    if not (has_blend or args.survey):
        return None, None  # (an ensemble without a blend given --survey is refused later)
    if not same_crs(crs, "EPSG:3031"):
        raise ValueError(f"survey picks are read in EPSG:3031; the inputs are in {crs}")
    picks = picks_from_args(args)
    return (picks, blend) if picks is not None else (None, None)


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
