"""Persistent Optuna studies: TPE sampling, Hyperband pruning, shared SQLite storage.

A study lives in an SQLite file (or any SQLAlchemy URL), so it survives
interruption and several processes can run trials of it at once. A trial
whose process died is noticed by its missing heartbeat and retried once.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

import optuna

from xdeepbedmap.io.lock import output_lock
from xdeepbedmap.model.checkpoint import export_checkpoint

__all__ = ["export_best", "open_storage", "open_study", "run_study", "storage_url"]


def storage_url(storage: str | PathLike[str]) -> str:
    """A path becomes ``sqlite:///<absolute path>``; URLs pass through."""
    text = str(storage)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def _sqlite_file(url: str) -> Path | None:
    """The database file of an ``sqlite:///`` URL (``None`` for other databases, in-memory)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url[len(prefix) :] in ("", ":memory:"):
        return None
    return Path(url[len(prefix) :])


def _check_sqlite_folder(db: Path) -> None:
    """Refuse a database whose folder is missing or not writable, naming it."""
    folder = db.parent
    if not folder.is_dir():
        raise FileNotFoundError(
            f"--storage {db}: folder {folder} does not exist; create it or choose another path"
        )
    # SQLite writes a journal beside the file, so the folder itself must be writable
    if not os.access(folder, os.W_OK | os.X_OK) or (db.exists() and not os.access(db, os.W_OK)):
        raise PermissionError(f"--storage {db}: {folder} or the file is not writable")


def open_storage(
    storage: str | PathLike[str], heartbeat_interval: int = 10, grace_period: int | None = None
) -> Any:
    """The Optuna ``RDBStorage`` of ``storage``, created safely when several processes race.

    Use it (not a bare URL) to read a study another process may be creating:
    opening a new SQLite file creates its tables, and two processes doing so at
    once fail with ``UNIQUE constraint failed: alembic_version``.

    Raises
    ------
    FileNotFoundError, PermissionError
        If an SQLite file's folder is missing or not writable.
    """
    url = storage_url(storage)
    db = _sqlite_file(url)
    if db is None:
        return _new_rdb(url, heartbeat_interval, grace_period)
    _check_sqlite_folder(db)
    # processes opening a new file at once race to create its tables
    # ("UNIQUE constraint failed: alembic_version"): one creates, the others wait
    with output_lock(db, wait=True):
        return _new_rdb(url, heartbeat_interval, grace_period)


def _new_rdb(url: str, heartbeat_interval: int, grace_period: int | None) -> Any:
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

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
        rdb = open_storage(storage, heartbeat_interval, grace_period)
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
    """Write a verified copy of the best trial's checkpoint to ``output``; returns it.

    Raises
    ------
    CheckpointError
        If the trial's checkpoint is damaged (nothing is written).
    """
    try:
        best = study.best_trial
    except ValueError as err:
        raise ValueError(f"study {study.study_name!r} has no completed trial yet") from err
    source = Path(best.user_attrs["checkpoint"])
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # loaded and verified, written atomically: a damaged trial checkpoint is never passed on
    return export_checkpoint(source, output, overwrite=True)
