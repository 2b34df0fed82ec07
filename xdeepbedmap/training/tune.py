"""Hyperparameter search with Optuna: TPE sampling, Hyperband pruning, persistent storage.

Each trial trains a generator (:func:`xdeepbedmap.training.trainer.train`)
with hyperparameters drawn by the TPE sampler, reports the validation RMSE
after every epoch so that the Hyperband pruner can stop unpromising trials,
and is scored by the RMSE of its best generator against the truth of a
held-out region (bicubic's RMSE is recorded beside it). Diverging trials are
pruned, not crashed.

The study lives in an SQLite (or any SQLAlchemy URL) storage, so it survives
interruption and several processes, or dask workers with one GPU each, can
run trials of the same study at once. A trial whose process died is noticed
by its missing heartbeat and retried once.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Any

import optuna
import xarray as xr

from xdeepbedmap.training.dataset import TileDataset
from xdeepbedmap.training.trainer import TrainConfig, TrainingDiverged, train

__all__ = [
    "SearchSpace",
    "export_best",
    "make_objective",
    "open_study",
    "plot_study",
    "run_study",
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


def storage_url(storage: str | PathLike[str]) -> str:
    """A path becomes ``sqlite:///<absolute path>``; URLs pass through."""
    text = str(storage)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def _rdb_storage(
    storage: str | PathLike[str], heartbeat_interval: int, grace_period: int | None
) -> Any:
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    url = storage_url(storage)
    return RDBStorage(
        url,
        # several processes write one SQLite file: wait for its lock instead of failing
        engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {},
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
    )


def open_study(
    study_name: str,
    storage: str | PathLike[str],
    *,
    seed: int | None = 0,
    n_startup_trials: int = 20,
    max_epochs: int = 150,
    heartbeat_interval: int = 10,
    grace_period: int | None = None,
) -> optuna.Study:
    """Create or load a minimising study with TPE + Hyperband on a persistent storage.

    Parameters
    ----------
    study_name : str
        Name of the study inside the storage.
    storage : str or path
        SQLite file path or SQLAlchemy URL.
    seed : int, optional
        Seed of the TPE sampler (each process offsets it by its pid so that
        parallel workers do not draw the same points).
    n_startup_trials : int
        Random trials before TPE takes over (20 in the paper).
    max_epochs : int
        Hyperband's maximum resource (epochs of the longest trial).
    heartbeat_interval, grace_period : int
        Seconds between a running trial's heartbeats, and after which a
        silent trial counts as failed (and is retried once).
    """
    with warnings.catch_warnings():  # heartbeats are 'experimental' in optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = _rdb_storage(storage, heartbeat_interval, grace_period)
    sampler = optuna.samplers.TPESampler(
        n_startup_trials=n_startup_trials,
        seed=None if seed is None else seed + os.getpid() % 10_000,
    )
    pruner = optuna.pruners.HyperbandPruner(
        min_resource=1, max_resource=max_epochs, reduction_factor=3
    )
    return optuna.create_study(
        study_name=study_name,
        storage=rdb,
        sampler=sampler,
        pruner=pruner,
        direction="minimize",
        load_if_exists=True,
    )


def make_objective(
    train_tiles: TileDataset,
    val_tiles: TileDataset,
    holdout: tuple[xr.Dataset, xr.DataArray],
    space: SearchSpace,
    base: TrainConfig,
    run_root: str | PathLike[str],
    device: str | None = None,
) -> Callable[[optuna.Trial], float]:
    """The function Optuna minimises: held-out RMSE of the trial's best generator."""
    from xdeepbedmap.evaluation import evaluate

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
        inputs, truth = holdout
        table = evaluate(inputs, truth, result.best_checkpoint, device=device)
        trial.set_user_attr("checkpoint", str(result.best_checkpoint))
        trial.set_user_attr("holdout", json.dumps(table))
        trial.set_user_attr("bicubic_rmse", table["bicubic"]["rmse"])
        return table["DeepBedMap"]["rmse"]

    return objective


def run_study(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    progress: bool = False,
) -> optuna.Study:
    """Run trials until the study holds ``n_trials`` finished ones (complete or pruned).

    Counting finished trials in the storage, not trials of this call, makes an
    interrupted study resume where it stopped and lets several processes share
    one budget.
    """
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished))
    if done >= n_trials:
        return study
    study.optimize(
        objective,
        n_trials=n_trials - done,
        callbacks=[MaxTrialsCallback(n_trials, states=finished)],
        show_progress_bar=progress,
        catch=(),
    )
    return study


def export_best(study: optuna.Study, output: str | PathLike[str]) -> Path:
    """Copy the best trial's checkpoint to ``output``; returns it."""
    try:
        best = study.best_trial
    except ValueError as err:
        raise ValueError(f"study {study.study_name!r} has no completed trial yet") from err
    source = Path(best.user_attrs["checkpoint"])
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, output)
    return output


def plot_study(study: optuna.Study, path: str | PathLike[str]) -> Path:
    """Plot the optimisation history and every trial's learning curve to a PNG.

    Left: held-out RMSE per completed trial and the best so far (bicubic as a
    reference line). Right: validation RMSE per epoch, pruned trials dashed with crosses.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    numbers = [t.number for t in complete]
    values = [t.value for t in complete]
    ax1.plot(numbers, values, "o", label="trial")
    best = [min(values[: i + 1]) for i in range(len(values))]
    ax1.step(numbers, best, where="post", color="C3", label="best so far")
    bicubic = [t.user_attrs.get("bicubic_rmse") for t in complete]
    if bicubic and bicubic[0] is not None:
        ax1.axhline(bicubic[0], color="grey", ls="--", lw=1, label="bicubic")
    ax1.set(xlabel="trial", ylabel="held-out RMSE (m)", title="optimisation history")
    ax1.legend()
    for t in trials:
        if not t.intermediate_values:
            continue
        steps = sorted(t.intermediate_values)
        pruned = t.state == TrialState.PRUNED
        ax2.plot(steps, [t.intermediate_values[s] for s in steps], "x--" if pruned else "-", lw=1)
    ax2.set(xlabel="epoch", ylabel="validation RMSE (m)", yscale="log",
            title="learning curves (x--: pruned)")  # fmt: skip
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
