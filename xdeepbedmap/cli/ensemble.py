"""Calibrated deep ensembles from the command line.

``xdeepbedmap train --members K`` wraps
:func:`xdeepbedmap.training.ensemble.train_ensemble` (``train`` cuts the tiles
and splits them as for one generator); ``xdeepbedmap ensemble --from-study``
wraps :func:`xdeepbedmap.training.ensemble_study.ensemble_from_study`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from xdeepbedmap.cli._args import (
    add_region_options,
    at_least,
    fraction,
    parse_seeds,
    refuse_seen_regions,
)
from xdeepbedmap.ensemble.calibration import METHODS
from xdeepbedmap.synthetic import WORLDS
from xdeepbedmap.training.config import TrainConfig
from xdeepbedmap.training.dataset import TileDataset
from xdeepbedmap.training.ensemble import EnsembleResult, MemberResult, train_ensemble
from xdeepbedmap.training.trainer import format_epoch

__all__ = [
    "add_calibrate_command",
    "add_ensemble_command",
    "add_snapshots_option",
    "check_ensemble_output",
    "check_snapshot_options",
    "publish_snapshots_from_args",
    "train_ensemble_from_args",
]


def check_ensemble_output(output: Path, option: str = "--members K > 1") -> None:
    """Refuse an ``--output`` that cannot be an ensemble folder, before any tile is cut."""
    if output.suffix == ".safetensors" or (output.exists() and not output.is_dir()):
        raise ValueError(
            f"--output {output}: with {option} this is an ensemble folder, not a .safetensors file"
        )


def add_snapshots_option(parser: argparse.ArgumentParser) -> None:
    """``train --snapshots K``."""
    parser.add_argument(
        "--snapshots",
        type=at_least(2),
        help="keep every epoch's generator and write the last K epochs as an ensemble "
        "folder --output (a snapshot ensemble: one run, K members; calibrate it next)",
    )


def check_snapshot_options(args: argparse.Namespace, output: Path) -> None:
    """Refuse ``train --snapshots`` options that cannot work, before any tile is cut."""
    if not args.snapshots:
        return
    if args.members > 1:
        raise ValueError("--members and --snapshots: choose one way to make an ensemble")
    check_ensemble_output(output, "--snapshots K")
    if args.snapshots > args.epochs:
        raise ValueError(f"--snapshots {args.snapshots} > --epochs {args.epochs}")


def publish_snapshots_from_args(
    args: argparse.Namespace,
    run_dir: str,
    history: list[dict[str, float]],
    storage: str,
    source: dict[str, Any],
) -> int:
    """Write the last ``--snapshots`` epochs of the run as the ``--output`` ensemble folder."""
    from xdeepbedmap.training.snapshots import publish_snapshots

    manifest = publish_snapshots(
        run_dir,
        history,
        args.output,
        args.snapshots,
        storage=storage,
        overwrite=args.overwrite,
        metadata={"data": {"training_data": source}},
    )
    print(f"  wrote {manifest} (last {args.snapshots} epochs; calibrate it next)")
    return 0


def train_ensemble_from_args(
    args: argparse.Namespace, config: TrainConfig, tiles: Any, train_idx: Any, val_idx: Any,
    source: dict[str, Any],
) -> int:  # fmt: skip
    """Train ``args.members`` members into ``args.output``, one line per member finished."""
    done: list[MemberResult] = []
    count = args.members

    def on_epoch(epoch: int, row: dict[str, float]) -> None:
        # members run in order, so the one training is the next not yet reported
        print(f"member {len(done) + 1}/{count}: {format_epoch(epoch, row)}")

    def on_member(member: MemberResult) -> None:
        done.append(member)
        how = "already trained" if member.skipped else f"trained in {member.seconds:.0f} s"
        print(
            f"member {member.index + 1}/{count} (seed {member.seed}): {how}, best validation "
            f"RMSE {member.val_rmse:.2f} m at epoch {member.epoch} -> {member.path}"
        )

    started = time.perf_counter()
    result = train_ensemble(
        TileDataset(tiles, train_idx),
        TileDataset(tiles, val_idx),
        config,
        args.output,
        count,
        bootstrap=not args.no_bootstrap,
        storage="float16" if args.half else "float32",
        run_root=args.run_dir,
        device=args.device,
        restart=args.restart,
        overwrite=args.overwrite,
        on_epoch=on_epoch,
        on_member=on_member,
        metadata={"training_data": source, "tiles": int(tiles.sizes["tile"])},
    )
    _print_result(result, time.perf_counter() - started)
    return 0


def _print_result(result: EnsembleResult, seconds: float) -> None:
    size = sum(member.path.stat().st_size for member in result.members)
    calibration = result.calibration
    print(
        f"calibrated: bed_std = {calibration.formula} from {calibration.n_pixels} pixels "
        f"of {calibration.fitted_on}"
    )
    print(
        f"ensemble of {len(result.members)} in {seconds:.0f} s: wrote {result.manifest} "
        f"({size / 1e6:.1f} MB of members)"
    )


def _cmd_ensemble(args: argparse.Namespace) -> int:
    import warnings

    import optuna

    from xdeepbedmap.training.ensemble_study import ensemble_from_study
    from xdeepbedmap.training.study import open_storage
    from xdeepbedmap.training.tiles import open_tiles, split_tiles

    check_ensemble_output(Path(args.output))
    tiles_store = Path(args.run_root) / f"{args.study}-tiles.zarr"
    if not tiles_store.exists():
        raise FileNotFoundError(
            f"{tiles_store}: the study's tile cache (its validation tiles calibrate the "
            "ensemble); pass the --run-root the study was tuned with"
        )
    with warnings.catch_warnings():  # heartbeats are 'experimental' in optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.load_study(study_name=args.study, storage=open_storage(args.from_study))
    tiles = open_tiles(tiles_store)
    _, val_idx = split_tiles(tiles.sizes["tile"], args.validation_fraction, args.seed)
    started = time.perf_counter()
    result = ensemble_from_study(
        study,
        TileDataset(tiles, val_idx),
        args.output,
        args.top,
        storage="float16" if args.half else "float32",
        overwrite=args.overwrite,
        device=args.device,
    )
    for member in result.members:
        print(f"member {member.index + 1}/{len(result.members)}: {member.path}")
    _print_result(result, time.perf_counter() - started)
    return 0


def add_ensemble_command(sub: Any) -> None:
    """Register ``ensemble`` (an ensemble from the best trials of a tuning study)."""
    en = sub.add_parser(
        "ensemble",
        help="build a calibrated ensemble from the best trials of an Optuna study",
        description="Copy the checkpoints of the --top trials with the lowest held-out RMSE "
        "into an ensemble folder and calibrate their spread on the study's validation tiles. "
        "The trials were ranked on the study's held-out region: judge coverage elsewhere.",
    )
    en.add_argument("--from-study", required=True, help="the study's SQLite file or URL")
    en.add_argument("--study", default="deepbedmap", help="study name (default deepbedmap)")
    en.add_argument("--top", type=at_least(2), default=4, help="members (default 4)")
    en.add_argument("--output", required=True, help="ensemble folder to write")
    en.add_argument("--run-root", default="runs/tune", help="as given to tune (tile cache)")
    en.add_argument("--validation-fraction", type=fraction, default=0.05, help="as for tune")
    en.add_argument("--seed", type=int, default=0, help="as for tune (the split)")
    en.add_argument("--half", action="store_true", help="store the members in float16")
    en.add_argument("--overwrite", action="store_true", help="replace an existing ensemble")
    en.add_argument("--device", default="auto", help="auto (default), cpu, cuda (calibration)")
    en.set_defaults(func=_cmd_ensemble)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from xdeepbedmap.cli._regions import regions_from_args
    from xdeepbedmap.ensemble.region_calibration import calibrate_on_regions
    from xdeepbedmap.ensemble.store import read_ensemble, set_calibration

    ensemble = read_ensemble(args.ensemble)  # complete and intact, before any tile is cut
    if ensemble.source != str(Path(args.ensemble)):
        raise ValueError(f"--ensemble {args.ensemble}: calibrate needs an ensemble folder")
    trained = ensemble.metadata.get("data", {}).get("training_data", {})
    if args.synthetic and trained.get("synthetic_seeds"):
        refuse_seen_regions(trained, parse_seeds(args.synthetic), args.synthetic_world, "members")
    if ensemble.blend is not None and (not args.synthetic or args.regions):
        raise ValueError(
            f"--ensemble {args.ensemble} has a distance blend: calibrate it on --synthetic "
            "regions of a survey world, whose picks are known"
        )
    if ensemble.blend is not None and WORLDS[args.synthetic_world]["bed_model"] != "survey":
        raise ValueError(
            f"--synthetic-world {args.synthetic_world} has no survey lines, and --ensemble "
            f"{args.ensemble} has a distance blend: calibrate it on a survey world (v2)"
        )
    regions = regions_from_args(args, train_on=True)
    surveys = None
    if ensemble.blend is not None:
        from xdeepbedmap.synthetic import survey_picks

        seeds = parse_seeds(args.synthetic)
        surveys = [
            survey_picks(truth, seed) for seed, (_, truth) in zip(seeds, regions, strict=True)
        ]
    described = f"synthetic seeds {args.synthetic}" if args.synthetic else str(args.catalog)
    calibration = calibrate_on_regions(
        ensemble,
        regions,
        method=args.method,
        fitted_on=f"{len(regions)} held-out regions of {described}",
        progress=True,
        surveys=surveys,
        device=args.device,
    )
    before = ensemble.calibration.formula if ensemble.calibration else "spread (uncalibrated)"
    set_calibration(args.ensemble, calibration)
    print(
        f"calibrated {args.ensemble}: bed_std = {before} -> {calibration.formula} "
        f"from {calibration.n_pixels} pixels of {calibration.fitted_on}"
    )
    return 0


def add_calibrate_command(sub: Any) -> None:
    """Register ``calibrate`` (refit an ensemble's spread factor on held-out regions)."""
    ca = sub.add_parser(
        "calibrate",
        help="refit an ensemble's error model on held-out regions",
        description="Super-resolve each held-out region with every member (as "
        "superresolve --ensemble does) and store the error model fitted against its truth: "
        "bed_std = sqrt(floor^2 + (s spread)^2 + (r relief)^2), or one factor on the spread "
        "(the validation tiles of `train --members` sit between training tiles of the same "
        "regions, so what is fitted on them is too small).",
    )
    ca.add_argument("--ensemble", required=True, help="the ensemble folder to recalibrate")
    add_region_options(ca, default_catalog=None)
    ca.add_argument(
        "--method",
        choices=METHODS,
        default=METHODS[0],
        help="intervals (default): floor, spread and relief factors whose Gaussian 68/95 %% "
        "intervals hold their shares; likelihood: the same three by maximum likelihood; "
        "coverage: one factor on the spread whose intervals hold their shares best; "
        "variance: one factor giving unit-variance z-scores "
        "(see xdeepbedmap.ensemble.calibration)",
    )
    ca.set_defaults(func=_cmd_calibrate)
