"""Commands around making and judging a model: train, evaluate, tune."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from xdeepbedmap.catalog import open_inputs, open_truth
from xdeepbedmap.cli._args import (
    add_region_options,
    at_least,
    fraction,
    parse_seeds,
    parse_shape,
    refuse_existing,
)
from xdeepbedmap.cli._regions import regions_from_args, training_tiles
from xdeepbedmap.cli.ensemble import (
    add_calibrate_command,
    add_ensemble_command,
    add_snapshots_option,
    check_ensemble_output,
    check_snapshot_options,
    publish_snapshots_from_args,
    train_ensemble_from_args,
)
from xdeepbedmap.io.lock import output_lock
from xdeepbedmap.model import export_checkpoint
from xdeepbedmap.model.checkpoint import CheckpointError
from xdeepbedmap.synthetic import WORLDS, make_region
from xdeepbedmap.training.regions import (
    open_holdouts,
    require_tiles,
)
from xdeepbedmap.training.tiles import TileDataset, TileLayout, build_tiles
from xdeepbedmap.training.trainer import TrainConfig, print_epoch, train

__all__ = ["add_commands"]

DEFAULT_RUN_DIR = "runs/train"


def _train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        num_residual_blocks=args.blocks,
        residual_scaling=args.residual_scaling,
        learning_rate=args.learning_rate,
        adam_eps=args.adam_eps,
        batch_size=args.batch_size,
        epochs=args.epochs,
        patience=args.patience,
        seed=args.seed,
        standardise=not args.raw_units,
        bed_skip=args.bed_skip,
        adversarial=not args.no_adversarial,
        num_workers=args.workers,
        mixed_precision=args.mixed_precision,
    )


def _cmd_train(args: argparse.Namespace) -> int:
    output = Path(args.output)
    check_snapshot_options(args, output)
    if args.members > 1:
        check_ensemble_output(output)
        return train_ensemble_from_args(args, _train_config(args), *training_tiles(args))
    if not args.snapshots and output.suffix != ".safetensors":
        raise ValueError(f"--output {output}: expected a .safetensors checkpoint path")
    refuse_existing([output], args.overwrite)
    config = _train_config(args)
    tiles, train_idx, val_idx, source = training_tiles(args)
    run_dir = args.run_dir or DEFAULT_RUN_DIR
    started = time.perf_counter()
    result = train(
        TileDataset(tiles, train_idx),
        TileDataset(tiles, val_idx),
        config,
        run_dir,
        device=args.device,
        resume=not args.restart,
        metadata={"training_data": source, "tiles": int(tiles.sizes["tile"])},
        on_epoch=print_epoch,
        snapshots=bool(args.snapshots),
    )
    if result.best_checkpoint is None:
        raise RuntimeError(f"no epoch finished; nothing to write (run folder {run_dir})")
    storage = "float16" if args.half else "float32"
    if args.snapshots:
        return publish_snapshots_from_args(args, run_dir, result.history, storage, source)
    try:  # loads and verifies the run's best checkpoint: a damaged one is never published
        export_checkpoint(result.best_checkpoint, output, storage, overwrite=args.overwrite)
    except CheckpointError as err:
        raise CheckpointError(
            f"{err}; nothing was written to {output}. Rerun with --restart to train again"
        ) from err
    best = min(result.history, key=lambda row: row["val_rmse"])
    print(
        f"trained {len(result.history)} epochs in {time.perf_counter() - started:.0f} s; "
        f"best validation RMSE {best['val_rmse']:.2f} m at epoch {best['epoch']:.0f}"
        + (" (stopped early)" if result.stopped_early else "")
    )
    print(f"  wrote {output}\n  metrics in {Path(run_dir) / 'metrics.csv'}")
    return 0


def _holdout(args: argparse.Namespace) -> Any:
    if args.holdout or args.holdout_points:
        source = args.holdout or args.holdout_catalog
        return open_holdouts(source, args.holdout_points, data_dir=args.data_dir)
    if args.synthetic:
        return make_region(
            parse_shape(args.synthetic_shape),
            seed=args.holdout_seed,
            **WORLDS[args.synthetic_world],
        )
    inputs = open_inputs(args.holdout_catalog, data_dir=args.data_dir)
    return inputs, open_truth(args.holdout_catalog, data_dir=args.data_dir).compute()


def _cmd_tune(args: argparse.Namespace) -> int:
    # imported here: optuna is slow to import and only tune needs it
    from xdeepbedmap.training.tune import (
        SearchSpace,
        TuneJob,
        export_best,
        plot_study,
        run_workers,
        storage_url,
    )

    if args.synthetic and args.holdout_seed in parse_seeds(args.synthetic):
        raise ValueError(f"--holdout-seed {args.holdout_seed} is also a training seed")
    tiles_store = Path(args.run_root) / f"{args.study}-tiles.zarr"
    tiles_store.parent.mkdir(parents=True, exist_ok=True)
    # tune processes sharing --run-root: one builds the tile cache, the others wait for it
    layout = TileLayout(stride=args.stride, min_coverage=args.min_coverage)
    with output_lock(tiles_store, wait=True):
        tiles = build_tiles(
            regions_from_args(args, train_on=False), store=tiles_store, layout=layout
        )
    require_tiles(tiles, 2)
    print(f"study {args.study!r} in {args.storage}: {tiles.sizes['tile']} tiles, "
          f"{args.trials} trials, {args.workers} worker process(es)")  # fmt: skip
    job = TuneJob(
        study_name=args.study,
        storage=args.storage,
        tiles_store=str(tiles_store),
        holdout=_holdout(args),
        n_trials=args.trials,
        space=SearchSpace().with_overrides(args.search or []),
        base=TrainConfig(
            seed=args.seed,
            adversarial=not args.no_adversarial,
            bed_skip=args.bed_skip,
            adam_eps=args.adam_eps,
        ),
        run_root=args.run_root,
        validation_fraction=args.validation_fraction,
        n_startup_trials=args.startup_trials,
        heartbeat_interval=args.heartbeat,
        device=args.device,
        threads=args.threads,
    )
    study = run_workers(job, workers=args.workers)
    states: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    best = study.best_trial
    print(f"trials: {states}")
    print(f"best trial #{best.number}: held-out RMSE {best.value:.2f} m "
          f"(bicubic {best.user_attrs.get('bicubic_rmse', float('nan')):.2f} m)")  # fmt: skip
    for key, value in best.params.items():
        print(f"  {key} = {value}")
    if args.output:
        print(f"  wrote {export_best(study, args.output)}")
    if args.figure:
        print(f"  wrote {plot_study(study, args.figure)}")
    print(f"browse: optuna-dashboard {storage_url(args.storage)}")
    return 0


def _add_train(sub: Any) -> None:
    tr = sub.add_parser(
        "train",
        help="train a generator on tiles cut from regions with ground truth",
        description="Cut NaN-free tiles from the regions, train the DeepBedMap GAN with the "
        "paper's losses (checkpoint every epoch; rerun the same command to resume) and write "
        "the generator with the best validation RMSE.",
    )
    add_region_options(tr, default_catalog="demo")
    tr.add_argument(
        "--output",
        required=True,
        help="checkpoint to write (.safetensors); with --members K > 1 an ensemble folder",
    )
    tr.add_argument(
        "--run-dir",
        help=f"state, metrics and loss curve (default {DEFAULT_RUN_DIR}; with --members, "
        "one run folder per member under it, default OUTPUT/runs)",
    )
    tr.add_argument(
        "--members",
        type=at_least(1),
        default=1,
        help="train an ensemble of this many generators (seeds --seed + k) into the --output "
        "folder, calibrated on the validation tiles (default 1: one generator)",
    )
    add_snapshots_option(tr)
    tr.add_argument(
        "--no-bootstrap",
        action="store_true",
        help="with --members: every member trains on all training tiles (default: a resample "
        "with replacement per member)",
    )
    tr.add_argument("--tiles", help="Zarr store caching the tiles (built once)")
    tr.add_argument(
        "--blind-conditioning",
        action="store_true",
        help="train a bed-only model: surface, velocity and accumulation set to constants "
        "(xdeepbedmap.conditioning.blind; run it on blind inputs too)",
    )
    tr.add_argument(
        "--stride", type=at_least(1), default=36, help="tile stride, 250 m px (default 36)"
    )
    tr.add_argument("--validation-fraction", type=fraction, default=0.05)
    tr.add_argument(
        "--validation-synthetic",
        help="validate (and pick the best epoch) on these held-out synthetic seeds, "
        "e.g. 300-307, instead of a random --validation-fraction of the training tiles",
    )
    tr.add_argument("--blocks", type=at_least(1), default=12, help="residual blocks (default 12)")
    tr.add_argument("--residual-scaling", type=at_least(0.0, float, strict=True), default=0.2)
    tr.add_argument("--learning-rate", type=at_least(0.0, float, strict=True), default=1.7e-4)
    tr.add_argument(
        "--adam-eps",
        type=at_least(0.0, float, strict=True),
        default=1e-8,
        help="Adam epsilon (the paper's 0.1 stalls here)",
    )
    tr.add_argument("--batch-size", type=at_least(1), default=128)
    tr.add_argument("--epochs", type=at_least(1), default=140)
    tr.add_argument(
        "--patience", type=at_least(1), help="stop after this many epochs without progress"
    )
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--raw-units", action="store_true", help="no input standardisation")
    tr.add_argument("--bed-skip", action="store_true", help="learn the residual over bilinear")
    tr.add_argument("--no-adversarial", action="store_true", help="no discriminator (faster)")
    tr.add_argument("--workers", type=at_least(0), default=0, help="DataLoader worker processes")
    tr.add_argument("--mixed-precision", action="store_true", help="bfloat16 autocast on CUDA")
    tr.add_argument(
        "--restart",
        action="store_true",
        help="ignore a resumable state in --run-dir (with --members: start the folder over)",
    )
    tr.add_argument(
        "--half", action="store_true", help="store --output (or each member) in float16 (half size)"
    )
    tr.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --output (with --members: an ensemble made with other "
        "options; one made with the same options is resumed)",
    )
    tr.set_defaults(func=_cmd_train)


def _add_tune(sub: Any) -> None:
    tu = sub.add_parser(
        "tune",
        help="search hyperparameters with Optuna (TPE + Hyperband) in a persistent study",
        description="Run trials of an Optuna study stored in SQLite: each trains a generator, "
        "reports validation RMSE per epoch for Hyperband pruning and is scored by its RMSE on a "
        "held-out region. Rerun to resume; several --workers share the study.",
    )
    add_region_options(tu, default_catalog="demo")
    tu.add_argument("--study", default="deepbedmap", help="study name (default deepbedmap)")
    tu.add_argument("--storage", default="tune.db", help="SQLite file or SQLAlchemy URL")
    tu.add_argument(
        "--trials", type=at_least(1), default=50, help="finished trials wanted in the study"
    )
    tu.add_argument("--workers", type=at_least(1), default=1, help="parallel worker processes")
    tu.add_argument("--threads", type=at_least(1), help="torch threads per worker")
    tu.add_argument(
        "--search",
        action="append",
        help="override a range: epochs=2:6, num_residual_blocks=1:2, batch_size=16,32 ...",
    )
    tu.add_argument(
        "--startup-trials", type=at_least(0), default=20, help="random trials before TPE"
    )
    tu.add_argument("--holdout-seed", type=int, default=42, help="synthetic held-out region")
    tu.add_argument("--holdout-catalog", default="demo", help="held-out region (catalogs)")
    tu.add_argument("--holdout", help="held-out regions: a regions YAML or a catalog")
    tu.add_argument("--holdout-points", help="score the held-out region at these survey picks")
    tu.add_argument("--stride", type=at_least(1), default=36)
    tu.add_argument("--validation-fraction", type=fraction, default=0.05)
    tu.add_argument("--seed", type=int, default=0)
    tu.add_argument("--adam-eps", type=at_least(0.0, float, strict=True), default=1e-8)
    tu.add_argument("--bed-skip", action="store_true")
    tu.add_argument("--no-adversarial", action="store_true")
    tu.add_argument(
        "--heartbeat", type=at_least(1), default=10, help="s; a trial silent for 2x this is retried"
    )
    tu.add_argument("--run-root", default="runs/tune", help="trial run folders and tile cache")
    tu.add_argument("--output", help="write the best trial's checkpoint here")
    tu.add_argument("--figure", help="write the optimisation history and epochs plot (PNG)")
    tu.set_defaults(func=_cmd_tune)


def add_commands(sub: Any) -> None:
    """Register train, tune and ensemble."""
    _add_train(sub)
    _add_tune(sub)
    add_ensemble_command(sub)
    add_calibrate_command(sub)
