"""Hyperparameter search with Optuna: what a trial does, and the processes that run them.

Each trial trains a generator (:func:`xdeepbedmap.training.trainer.train`)
with hyperparameters drawn by the TPE sampler, reports the validation RMSE
after every epoch so that the Hyperband pruner can stop unpromising trials,
and is scored by the RMSE of its best generator against the truth of a
held-out region (bicubic's RMSE is recorded beside it). Diverging trials are
pruned, not crashed.

The study lives in a persistent storage (:mod:`xdeepbedmap.training.study`),
so it survives interruption and several processes (:func:`run_workers`), or
dask workers with one GPU each, can run trials of the same study at once.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Any

import optuna
import xarray as xr

from xdeepbedmap.output_checks import NetworkOutputError
from xdeepbedmap.plot import plot_study
from xdeepbedmap.training.study import export_best, open_study, run_study, storage_url
from xdeepbedmap.training.tiles import TileDataset, open_tiles, split_tiles
from xdeepbedmap.training.trainer import TrainConfig, TrainingDiverged, train

__all__ = [
    "SearchSpace",
    "TuneJob",
    "export_best",
    "make_objective",
    "open_study",
    "plot_study",
    "run_study",
    "run_workers",
    "storage_url",
]


@dataclass(frozen=True)
class SearchSpace:
    """Ranges searched (the paper's by default); each a ``(low, high)`` or a choice list."""

    learning_rate: tuple[float, float] = (1e-4, 2e-4)
    num_residual_blocks: tuple[int, int] = (8, 14)
    batch_size: tuple[int, ...] = (64, 128)
    epochs: tuple[int, int] = (90, 150)
    residual_scaling: tuple[float, float] = (0.1, 0.5)
    extra: dict[str, Any] = field(default_factory=dict)

    def with_overrides(self, overrides: list[str]) -> SearchSpace:
        """Apply ``name=low:high`` (range) or ``name=a,b`` (choices) overrides."""
        changes: dict[str, Any] = {}
        for text in overrides:
            name, _, value = text.partition("=")
            name = name.strip().replace("-", "_")
            if name not in {"learning_rate", "num_residual_blocks", "batch_size", "epochs",
                            "residual_scaling"}:  # fmt: skip
                raise ValueError(f"unknown search parameter {name!r} in {text!r}")
            cast = float if name in {"learning_rate", "residual_scaling"} else int
            try:
                if name == "batch_size":
                    changes[name] = tuple(int(v) for v in value.split(","))
                else:
                    low, high = (cast(v) for v in value.split(":"))
                    if low > high:
                        raise ValueError
                    changes[name] = (low, high)
            except ValueError as err:
                raise ValueError(
                    f"search override {text!r}: expected {name}=low:high"
                    + (" or a,b,c" if name == "batch_size" else "")
                ) from err
        return replace(self, **changes)

    def suggest(self, trial: optuna.Trial, base: TrainConfig) -> TrainConfig:
        """Draw one configuration."""
        return replace(
            base,
            learning_rate=trial.suggest_float("learning_rate", *self.learning_rate, log=True),
            num_residual_blocks=trial.suggest_int("num_residual_blocks", *self.num_residual_blocks),
            batch_size=trial.suggest_categorical("batch_size", list(self.batch_size)),
            epochs=trial.suggest_int("epochs", *self.epochs),
            residual_scaling=trial.suggest_float("residual_scaling", *self.residual_scaling),
        )


def make_objective(
    train_tiles: TileDataset,
    val_tiles: TileDataset,
    holdout: Holdout | list[Holdout],
    space: SearchSpace,
    base: TrainConfig,
    run_root: str | PathLike[str],
    device: str | None = None,
) -> Callable[[optuna.Trial], float]:
    """The function Optuna minimises: held-out RMSE of the trial's best generator.

    ``holdout`` is one ``(inputs, truth)`` pair or a list of them; a truth is
    a 250 m grid or survey picks (a DataFrame with ``x``, ``y``, ``bed``).
    With several, the score is the RMSE pooled over all their pixels/points.
    """
    run_root = Path(run_root)

    def objective(trial: optuna.Trial) -> float:
        config = space.suggest(trial, base)
        run_dir = run_root / f"trial-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("pid", os.getpid())

        def report(epoch: int, metrics: dict[str, float]) -> None:
            trial.report(metrics["val_rmse"], step=epoch)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at epoch {epoch}")

        try:
            result = train(
                train_tiles,
                val_tiles,
                config,
                run_dir,
                device=device,
                resume=False,
                progress=False,
                on_epoch=report,
            )
        except TrainingDiverged as err:
            raise optuna.TrialPruned(f"diverged: {err}") from err
        if result.best_checkpoint is None:
            raise optuna.TrialPruned("no epoch finished")
        try:
            tables = [_score(pair, result.best_checkpoint, device) for pair in _as_list(holdout)]
        except NetworkOutputError as err:  # NaN or absurd beds: as good as diverged
            raise optuna.TrialPruned(f"the best checkpoint's output is not a bed: {err}") from err
        trial.set_user_attr("checkpoint", str(result.best_checkpoint))
        trial.set_user_attr("holdout", json.dumps(tables if len(tables) > 1 else tables[0]))
        trial.set_user_attr("bicubic_rmse", _pooled(tables, "bicubic"))
        return _pooled(tables, "DeepBedMap")

    return objective


Holdout = tuple[xr.Dataset, Any]


def _as_list(holdout: Holdout | list[Holdout]) -> list[Holdout]:
    return [holdout] if isinstance(holdout, tuple) else list(holdout)


def _score(pair: Holdout, checkpoint: Path, device: str | None) -> dict[str, dict[str, float]]:
    """RMSE table of a checkpoint and bicubic on one held-out region (grid or points)."""
    import pandas as pd

    inputs, truth = pair
    if isinstance(truth, pd.DataFrame):
        from xdeepbedmap.survey import evaluate_points

        table = evaluate_points(
            inputs, truth, model=checkpoint, baselines=("bicubic",), device=device
        )
        rows = table.rename(index={"model": "DeepBedMap"}).to_dict(orient="index")
        return {name: {k: float(v) for k, v in row.items()} for name, row in rows.items()}
    from xdeepbedmap.evaluation import evaluate

    return evaluate(inputs, truth, checkpoint, device=device)


def _pooled(tables: list[dict[str, dict[str, float]]], name: str) -> float:
    """RMSE over the pixels/points of all tables (each weighted by its count)."""
    squared = sum(t[name]["rmse"] ** 2 * t[name]["count"] for t in tables)
    return math.sqrt(squared / sum(t[name]["count"] for t in tables))


@dataclass(frozen=True)
class TuneJob:
    """Everything a tuning process needs (picklable: spawned workers get a copy).

    Attributes
    ----------
    study_name, storage
        The study and its SQLite file or SQLAlchemy URL.
    tiles_store
        Zarr tile cache (:func:`~xdeepbedmap.training.tiles.build_tiles`),
        split into training and validation tiles with ``base.seed``.
    holdout
        ``(inputs, truth)`` of the region each trial is scored on, or a list
        of them (pooled RMSE); a truth may be survey picks (a DataFrame).
    n_trials
        Finished trials (complete or pruned) wanted in the study.
    space, base
        Ranges searched, and the configuration the rest is taken from.
    run_root
        Trial run folders go under ``<run_root>/<study_name>/``.
    validation_fraction, n_startup_trials, heartbeat_interval, device
        As in :func:`~xdeepbedmap.training.tiles.split_tiles`,
        :func:`~xdeepbedmap.training.study.open_study` and
        :func:`~xdeepbedmap.training.trainer.train`.
    threads
        torch threads per worker (``None``: torch's default).
    """

    study_name: str
    storage: str
    tiles_store: str
    holdout: Holdout | list[Holdout]
    n_trials: int
    space: SearchSpace = field(default_factory=SearchSpace)
    base: TrainConfig = field(default_factory=TrainConfig)
    run_root: str = "runs/tune"
    validation_fraction: float = 0.05
    n_startup_trials: int = 20
    heartbeat_interval: int = 10
    device: str | None = None
    threads: int | None = None


def _run_worker(job: TuneJob) -> None:
    """One tuning process: open the shared study and run trials until the budget is spent."""
    import torch

    threads = torch.get_num_threads()
    if job.threads:
        torch.set_num_threads(job.threads)
    try:
        tiles = open_tiles(job.tiles_store)
        train_idx, val_idx = split_tiles(
            tiles.sizes["tile"], job.validation_fraction, job.base.seed
        )
        study = open_study(
            job.study_name,
            job.storage,
            n_startup_trials=job.n_startup_trials,
            max_epochs=job.space.epochs[1],
            seed=job.base.seed,
            heartbeat_interval=job.heartbeat_interval,
        )
        objective = make_objective(
            TileDataset(tiles, train_idx),
            TileDataset(tiles, val_idx),
            job.holdout,
            job.space,
            job.base,
            Path(job.run_root) / job.study_name,
            device=job.device,
        )
        run_study(study, objective, job.n_trials)
    finally:
        torch.set_num_threads(threads)  # a worker run in this process leaves it as it was


def run_workers(job: TuneJob, workers: int = 1) -> optuna.Study:
    """Run ``job``'s trials in ``workers`` processes sharing the study; return the study.

    One worker runs in this process; more are spawned (not forked: torch and
    zarr hold threads), each drawing its own trials until the study holds
    ``job.n_trials`` finished ones. Rerunning resumes an interrupted study.

    Raises
    ------
    RuntimeError
        If a worker process failed (its exit code is given).
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    # create the study (and its tables) once, before workers race to do it
    open_study(job.study_name, job.storage, seed=None, heartbeat_interval=job.heartbeat_interval)
    if workers == 1:
        _run_worker(job)
    else:
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=_run_worker, args=(job,)) for _ in range(workers)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        failed = [p.exitcode for p in processes if p.exitcode]
        if failed:
            raise RuntimeError(f"{len(failed)} tuning worker(s) failed (exit codes {failed})")
    return open_study(job.study_name, job.storage, seed=None)
