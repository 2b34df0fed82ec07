"""``xdeepbedmap train`` and ``xdeepbedmap evaluate``."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

__all__ = ["add_training_commands", "parse_seeds", "training_regions"]


def parse_seeds(text: str) -> list[int]:
    """``"100-103,110"`` -> ``[100, 101, 102, 103, 110]``."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part.strip()[1:]:
                lo, hi = part.split("-", 1)
                seeds.extend(range(int(lo), int(hi) + 1))
            else:
                seeds.append(int(part))
    except ValueError as err:
        raise ValueError(f"seeds must look like 100-115,120; got {text!r}") from err
    if not seeds:
        raise ValueError(f"no seed in {text!r}")
    return seeds


def _parse_shape(text: str) -> tuple[int, int]:
    try:
        ny, nx = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise ValueError(f"--synthetic-shape must look like 64x64, got {text!r}") from err
    return ny, nx


def training_regions(args: argparse.Namespace) -> list[tuple[Any, Any]]:
    """The (inputs, truth) pairs a command works on: synthetic seeds or a catalog."""
    if getattr(args, "synthetic", None):
        from xdeepbedmap.catalog import DEMO_SEED
        from xdeepbedmap.synthetic import make_region

        seeds = parse_seeds(args.synthetic)
        if args.command == "train" and DEMO_SEED in seeds:
            raise ValueError(
                f"seed {DEMO_SEED} is the demo region, held out for evaluation; train on others"
            )
        return [make_region(_parse_shape(args.synthetic_shape), seed=s) for s in seeds]

    from xdeepbedmap.catalog import open_inputs, open_truth
    from xdeepbedmap.cli import _parse_bbox

    inputs = open_inputs(args.catalog, region=_parse_bbox(args.bbox), data_dir=args.data_dir)
    if args.truth:
        import rioxarray

        truth = rioxarray.open_rasterio(args.truth, masked=True, chunks={"band": 1})
        truth = truth.squeeze("band", drop=True)
    else:
        truth = open_truth(args.catalog, data_dir=args.data_dir)
    return [(inputs, truth)]


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from xdeepbedmap.training.tiles import TileDataset, TileLayout, build_tiles, split_tiles
    from xdeepbedmap.training.trainer import TrainConfig, print_epoch, train

    output = Path(args.output)
    if output.suffix != ".safetensors":
        raise ValueError(f"--output {output}: expected a .safetensors checkpoint path")
    if output.exists() and not args.overwrite:
        raise FileExistsError(f"--output {output} exists; pass --overwrite to replace it")
    config = TrainConfig(
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
    regions = training_regions(args)
    tiles = build_tiles(
        regions, store=args.tiles, layout=TileLayout(stride=args.stride), progress=True
    )
    train_idx, val_idx = split_tiles(tiles.sizes["tile"], args.validation_fraction, args.seed)
    print(f"{tiles.sizes['tile']} tiles: {len(train_idx)} for training, {len(val_idx)} validation")
    source = (
        {"synthetic_seeds": args.synthetic, "synthetic_shape": args.synthetic_shape}
        if args.synthetic
        else {"catalog": str(args.catalog), "bbox": args.bbox}
    )
    started = time.perf_counter()
    result = train(
        TileDataset(tiles, train_idx),
        TileDataset(tiles, val_idx),
        config,
        args.run_dir,
        device=args.device,
        resume=not args.restart,
        on_epoch=print_epoch,
        metadata={"training_data": source, "tiles": int(tiles.sizes["tile"])},
    )
    if result.best_checkpoint is None:
        raise RuntimeError(f"no epoch finished; nothing to write (run folder {args.run_dir})")
    output.parent.mkdir(parents=True, exist_ok=True)
    if args.half:
        from xdeepbedmap.model import load_checkpoint
        from xdeepbedmap.model.checkpoint import read_checkpoint_metadata, save_checkpoint

        meta = read_checkpoint_metadata(result.best_checkpoint)["metadata"]
        best_model = load_checkpoint(result.best_checkpoint)
        save_checkpoint(best_model, output, storage_dtype=torch.float16, **meta)
    else:
        shutil.copyfile(result.best_checkpoint, output)
    best = min(result.history, key=lambda row: row["val_rmse"])
    print(
        f"trained {len(result.history)} epochs in {time.perf_counter() - started:.0f} s; "
        f"best validation RMSE {best['val_rmse']:.2f} m at epoch {best['epoch']:.0f}"
        + (" (stopped early)" if result.stopped_early else "")
    )
    print(f"  wrote {output}\n  metrics in {Path(args.run_dir) / 'metrics.csv'}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from xdeepbedmap.evaluation import evaluate, format_table

    regions = training_regions(args)
    if len(regions) != 1:
        raise ValueError("evaluate takes one region (one --synthetic seed)")
    inputs, truth = regions[0]
    table = evaluate(
        inputs, truth.compute(), args.model, figure=args.figure, halo=args.halo, device=args.device
    )
    print(format_table(table))
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2) + "\n")
        print(f"  wrote {args.json}")
    if args.figure:
        print(f"  wrote {args.figure}")
    return 0


def _tune_worker(args: argparse.Namespace, tiles_store: str) -> None:
    """One tuning process: open the shared study and run trials until the budget is spent."""
    import torch

    from xdeepbedmap.training.tiles import TileDataset, open_tiles, split_tiles
    from xdeepbedmap.training.trainer import TrainConfig
    from xdeepbedmap.training.tune import SearchSpace, make_objective, open_study, run_study

    if args.threads:
        torch.set_num_threads(args.threads)
    space = SearchSpace().with_overrides(args.search or [])
    tiles = open_tiles(tiles_store)
    train_idx, val_idx = split_tiles(tiles.sizes["tile"], args.validation_fraction, args.seed)
    base = TrainConfig(
        seed=args.seed,
        adversarial=not args.no_adversarial,
        bed_skip=args.bed_skip,
        adam_eps=args.adam_eps,
    )
    study = open_study(
        args.study,
        args.storage,
        n_startup_trials=args.startup_trials,
        max_epochs=space.epochs[1],
        seed=args.seed,
        heartbeat_interval=args.heartbeat,
    )
    holdout = _holdout(args)
    objective = make_objective(
        TileDataset(tiles, train_idx),
        TileDataset(tiles, val_idx),
        holdout,
        space,
        base,
        Path(args.run_root) / args.study,
        device=args.device,
    )
    run_study(study, objective, args.trials)


def _holdout(args: argparse.Namespace) -> tuple[Any, Any]:
    from xdeepbedmap.synthetic import make_region

    if args.synthetic:
        inputs, truth = make_region(_parse_shape(args.synthetic_shape), seed=args.holdout_seed)
        return inputs, truth
    from xdeepbedmap.catalog import open_inputs, open_truth

    inputs = open_inputs(args.holdout_catalog, data_dir=args.data_dir)
    return inputs, open_truth(args.holdout_catalog, data_dir=args.data_dir).compute()


def _cmd_tune(args: argparse.Namespace) -> int:
    import multiprocessing

    from xdeepbedmap.training.tiles import TileLayout, build_tiles
    from xdeepbedmap.training.tune import export_best, open_study

    if args.synthetic and args.holdout_seed in parse_seeds(args.synthetic):
        raise ValueError(f"--holdout-seed {args.holdout_seed} is also a training seed")
    run_root = Path(args.run_root)
    run_root.mkdir(parents=True, exist_ok=True)
    tiles_store = str(run_root / f"{args.study}-tiles.zarr")
    tiles = build_tiles(
        training_regions(args), store=tiles_store, layout=TileLayout(stride=args.stride)
    )
    print(f"study {args.study!r} in {args.storage}: {tiles.sizes['tile']} tiles, "
          f"{args.trials} trials, {args.workers} worker process(es)")  # fmt: skip
    # create the study (and its tables) once, before workers race to do it
    open_study(args.study, args.storage, seed=None, heartbeat_interval=args.heartbeat)
    if args.workers == 1:
        _tune_worker(args, tiles_store)
    else:
        context = multiprocessing.get_context("spawn")  # torch and zarr threads: no fork
        workers = [
            context.Process(target=_tune_worker, args=(args, tiles_store))
            for _ in range(args.workers)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        failed = [w.exitcode for w in workers if w.exitcode]
        if failed:
            raise RuntimeError(f"{len(failed)} tuning worker(s) failed (exit codes {failed})")
    study = open_study(args.study, args.storage, seed=None)
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
        from xdeepbedmap.training.tune import plot_study

        print(f"  wrote {plot_study(study, args.figure)}")
    from xdeepbedmap.training.tune import storage_url

    print(f"browse: optuna-dashboard {storage_url(args.storage)}")
    return 0


def _add_region_options(parser: argparse.ArgumentParser, default_catalog: str | None) -> None:
    parser.add_argument(
        "--synthetic", help="synthetic region seeds, e.g. 100-115 (instead of a catalog)"
    )
    parser.add_argument("--synthetic-shape", default="64x64", help="base px per synthetic region")
    parser.add_argument("--catalog", default=default_catalog, help="catalog name or YAML path")
    parser.add_argument("--bbox", help="xmin,ymin,xmax,ymax in EPSG:3031 metres")
    parser.add_argument("--truth", help="250 m truth GeoTIFF (default: the catalog's truth)")
    parser.add_argument("--data-dir", help="folder of downloaded files (real catalogs)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")


def add_training_commands(sub: Any) -> None:
    """Register ``train`` and ``evaluate`` on the CLI's subparsers."""
    tr = sub.add_parser(
        "train",
        help="train a generator on tiles cut from regions with ground truth",
        description="Cut NaN-free tiles from the regions, train the DeepBedMap GAN with the "
        "paper's losses (checkpoint every epoch; rerun the same command to resume) and write "
        "the generator with the best validation RMSE.",
    )
    _add_region_options(tr, default_catalog="demo")
    tr.add_argument("--output", required=True, help="checkpoint to write (.safetensors)")
    tr.add_argument("--run-dir", default="runs/train", help="state, metrics and loss curve")
    tr.add_argument("--tiles", help="Zarr store caching the tiles (built once)")
    tr.add_argument("--stride", type=int, default=36, help="tile stride, 250 m px (default 36)")
    tr.add_argument("--validation-fraction", type=float, default=0.05)
    tr.add_argument("--blocks", type=int, default=12, help="residual blocks (default 12)")
    tr.add_argument("--residual-scaling", type=float, default=0.2)
    tr.add_argument("--learning-rate", type=float, default=1.7e-4)
    tr.add_argument(
        "--adam-eps", type=float, default=1e-8, help="Adam epsilon (the paper's 0.1 stalls here)"
    )
    tr.add_argument("--batch-size", type=int, default=128)
    tr.add_argument("--epochs", type=int, default=140)
    tr.add_argument("--patience", type=int, help="stop after this many epochs without progress")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--raw-units", action="store_true", help="no input standardisation")
    tr.add_argument("--bed-skip", action="store_true", help="learn the residual over bilinear")
    tr.add_argument("--no-adversarial", action="store_true", help="no discriminator (faster)")
    tr.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    tr.add_argument("--mixed-precision", action="store_true", help="bfloat16 autocast on CUDA")
    tr.add_argument("--restart", action="store_true", help="ignore a resumable state in --run-dir")
    tr.add_argument("--half", action="store_true", help="store --output in float16 (half size)")
    tr.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    tr.set_defaults(func=_cmd_train)

    ev = sub.add_parser(
        "evaluate",
        help="RMSE and roughness of a model vs bicubic on a region with truth",
        description="Super-resolve a region with known truth and compare with bicubic "
        "interpolation of the 1 km bed: RMSE, MAE, bias and roughness.",
    )
    _add_region_options(ev, default_catalog="demo")
    ev.add_argument("--model", help="checkpoint or Chainer .npz (default: bundled demo model)")
    ev.add_argument("--halo", type=int, help="base px of context per window")
    ev.add_argument("--figure", help="comparison PNG to write")
    ev.add_argument("--json", help="write the table as JSON")
    ev.set_defaults(func=_cmd_evaluate)

    tu = sub.add_parser(
        "tune",
        help="search hyperparameters with Optuna (TPE + Hyperband) in a persistent study",
        description="Run trials of an Optuna study stored in SQLite: each trains a generator, "
        "reports validation RMSE per epoch for Hyperband pruning and is scored by its RMSE on a "
        "held-out region. Rerun to resume; several --workers share the study.",
    )
    _add_region_options(tu, default_catalog="demo")
    tu.add_argument("--study", default="deepbedmap", help="study name (default deepbedmap)")
    tu.add_argument("--storage", default="tune.db", help="SQLite file or SQLAlchemy URL")
    tu.add_argument("--trials", type=int, default=50, help="finished trials wanted in the study")
    tu.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    tu.add_argument("--threads", type=int, help="torch threads per worker")
    tu.add_argument(
        "--search",
        action="append",
        help="override a range: epochs=2:6, num_residual_blocks=1:2, batch_size=16,32 ...",
    )
    tu.add_argument("--startup-trials", type=int, default=20, help="random trials before TPE")
    tu.add_argument("--holdout-seed", type=int, default=42, help="synthetic held-out region")
    tu.add_argument("--holdout-catalog", default="demo", help="held-out region (catalogs)")
    tu.add_argument("--stride", type=int, default=36)
    tu.add_argument("--validation-fraction", type=float, default=0.05)
    tu.add_argument("--seed", type=int, default=0)
    tu.add_argument("--adam-eps", type=float, default=1e-8)
    tu.add_argument("--bed-skip", action="store_true")
    tu.add_argument("--no-adversarial", action="store_true")
    tu.add_argument(
        "--heartbeat", type=int, default=10, help="s; a trial silent for 2x this is retried"
    )
    tu.add_argument("--run-root", default="runs/tune", help="trial run folders and tile cache")
    tu.add_argument("--output", help="write the best trial's checkpoint here")
    tu.add_argument("--figure", help="write the optimisation history and epochs plot (PNG)")
    tu.set_defaults(func=_cmd_tune)
