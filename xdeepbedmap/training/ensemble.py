"""Train a deep ensemble member by member, resumably, then calibrate it on the validation tiles.

Member ``k`` is an ordinary :func:`~xdeepbedmap.training.trainer.train` run
with seed ``config.seed + k`` (initialisation and shuffling) on, with
``bootstrap``, a resample with replacement of the training tiles drawn from
that seed. The validation tiles are the same for every member and never
enter a resample: they choose each member's best epoch and, once all members
are done, fit the :class:`~xdeepbedmap.ensemble.store.Calibration`
(:func:`~xdeepbedmap.ensemble.calibration.calibrate_on_tiles`).

An ensemble folder while it is trained::

    folder/
        training_options.json   # the options it is made with (written first)
        member_00.safetensors   # a finished member, published atomically
        ...
        ensemble.json           # written last, with the calibration: complete
    run_root/member_00/         # member 0's run (state.pt ...); default folder/runs

Running the same call again skips finished members, resumes the interrupted
one from its ``state.pt`` and refuses a folder made with other options.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from xdeepbedmap.ensemble.calibration import calibrate_on_tiles
from xdeepbedmap.ensemble.store import (
    MANIFEST,
    Calibration,
    EnsembleError,
    member_name,
    read_ensemble,
    write_ensemble,
)
from xdeepbedmap.model import export_checkpoint, read_checkpoint_metadata
from xdeepbedmap.training.config import TrainConfig
from xdeepbedmap.training.dataset import TileDataset
from xdeepbedmap.training.ensemble_options import OPTIONS_FILE, ensemble_options, prepare_folder
from xdeepbedmap.training.trainer import train

__all__ = [
    "OPTIONS_FILE",
    "EnsembleResult",
    "MemberResult",
    "bootstrap_indices",
    "train_ensemble",
]

_STORAGES = ("float32", "float16")


@dataclass(frozen=True)
class MemberResult:
    """One finished member.

    Attributes
    ----------
    index, seed : int
        Position in the ensemble and training seed (``config.seed + index``).
    path : pathlib.Path
        Its checkpoint in the ensemble folder.
    seconds : float
        Time spent on it by this call (0 when it was already finished).
    epoch : int
        The epoch kept (lowest validation RMSE).
    val_rmse : float
        Its validation RMSE (m) at that epoch.
    skipped : bool
        Whether it was finished before this call.
    """

    index: int
    seed: int
    path: Path
    seconds: float
    epoch: int
    val_rmse: float
    skipped: bool


@dataclass(frozen=True)
class EnsembleResult:
    """A complete ensemble folder: its manifest, calibration and members."""

    folder: Path
    manifest: Path
    calibration: Calibration
    members: tuple[MemberResult, ...]


def bootstrap_indices(count: int, seed: int) -> np.ndarray:
    """A sorted resample with replacement of ``range(count)``, drawn from ``seed`` alone."""
    return np.sort(np.random.default_rng(seed).integers(0, count, size=count))


def _member_result(
    path: Path, index: int, seed: int, seconds: float, skipped: bool
) -> MemberResult:
    metadata = read_checkpoint_metadata(path)["metadata"]
    return MemberResult(
        index,
        seed,
        path,
        seconds,
        int(metadata["epoch"]),
        float(metadata["metrics"]["val_rmse"]),
        skipped,
    )


def train_ensemble(
    train_tiles: TileDataset,
    val_tiles: TileDataset,
    config: TrainConfig,
    folder: str | PathLike[str],
    members: int = 4,
    *,
    bootstrap: bool = True,
    storage: str = "float32",
    run_root: str | PathLike[str] | None = None,
    device: str | None = None,
    restart: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    on_member: Callable[[MemberResult], None] | None = None,
    metadata: dict[str, Any] | None = None,
) -> EnsembleResult:
    """Train ``members`` generators into an ensemble folder and calibrate their spread.

    Parameters
    ----------
    train_tiles, val_tiles : TileDataset
        Training tiles (resampled per member with ``bootstrap``) and held-out
        validation tiles (best epoch per member, and the calibration).
    config : TrainConfig
        Hyperparameters; member ``k`` uses ``seed = config.seed + k``.
    folder : path
        The ensemble folder (module docstring).
    members : int
        Number of members, at least 2 (the spread needs two).
    bootstrap : bool
        Train each member on a resample with replacement of ``train_tiles``.
    storage : {"float32", "float16"}
        Storage type of the member checkpoints (float16 halves them).
    run_root : path, optional
        Where the members' run folders go (default ``folder/runs``).
    device : str, optional
        ``auto`` (default), ``cpu``, ``cuda``.
    restart : bool
        Start over: discard finished members and run states first.
    overwrite : bool
        Replace an ensemble made with other options instead of refusing.
    progress : bool
        tqdm bars over each epoch's batches.
    on_epoch : callable, optional
        ``on_epoch(epoch, metrics)`` after every epoch of every member (as in ``train``).
    on_member : callable, optional
        ``on_member(MemberResult)`` once per member, finished now or before.
    metadata : dict, optional
        Facts about the training data; part of the options a resume must match,
        and stored in every checkpoint and the manifest.

    Returns
    -------
    EnsembleResult

    Raises
    ------
    EnsembleError
        Fewer than 2 members, an unknown storage, or a folder made with other
        options (the message names them), before anything is trained.
    """
    if members < 2:
        raise EnsembleError(f"members must be >= 2 (the spread needs two), got {members}")
    if storage not in _STORAGES:
        raise EnsembleError(f"storage must be one of {_STORAGES}, got {storage!r}")
    folder = Path(folder)
    run_root = folder / "runs" if run_root is None else Path(run_root)
    data = dict(metadata or {})
    train_tiles.load()
    val_tiles.load()
    options = ensemble_options(config, members, bootstrap, storage, train_tiles, val_tiles, data)
    prepare_folder(folder, run_root, options, restart, overwrite)
    results = []
    for k in range(members):
        path, seed = folder / member_name(k), config.seed + k
        skipped, started = path.exists(), time.perf_counter()
        if not skipped:
            tiles = (
                train_tiles.subset(bootstrap_indices(len(train_tiles), seed))
                if bootstrap
                else train_tiles
            )
            member_meta = {
                **data,
                "ensemble_member": {"index": k, "of": members, "bootstrap": bootstrap},
            }
            _train_member(
                tiles,
                val_tiles,
                replace(config, seed=seed),
                run_root / f"member_{k:02d}",
                path,
                storage,
                dict(device=device, progress=progress, on_epoch=on_epoch, metadata=member_meta),
            )
        result = _member_result(path, k, seed, time.perf_counter() - started, skipped)
        results.append(result)
        if on_member is not None:
            on_member(result)
    return _finish(folder, results, val_tiles, options, device)


def _train_member(
    tiles: TileDataset,
    val_tiles: TileDataset,
    config: TrainConfig,
    run: Path,
    path: Path,
    storage: str,
    train_options: dict[str, Any],
) -> None:
    """One member's ``train`` run (resumed from ``run/state.pt``), published as ``path``."""
    result = train(tiles, val_tiles, config, run, **train_options)
    if result.best_checkpoint is None:
        raise EnsembleError(f"member run {run}: no epoch finished, nothing to publish")
    # loads and verifies the run's best checkpoint, then writes it atomically
    export_checkpoint(result.best_checkpoint, path, storage, overwrite=True)


def _finish(
    folder: Path,
    results: list[MemberResult],
    val_tiles: TileDataset,
    options: dict[str, Any],
    device: str | None,
) -> EnsembleResult:
    """Calibrate on the validation tiles with the stored members, then write the manifest."""
    if (folder / MANIFEST).exists():
        calibration = read_ensemble(folder).calibration  # digests checked: members unchanged
        if calibration is not None:
            return EnsembleResult(folder, folder / MANIFEST, calibration, tuple(results))
    # the members as shipped (float16 storage included) are what gets calibrated
    calibration = calibrate_on_tiles(
        [r.path for r in results],
        val_tiles,
        fitted_on=f"{len(val_tiles)} validation tiles held out of every member's training",
        device=device,
    )
    entries = [
        {
            "file": r.path.name,
            "seed": r.seed,
            "training": {
                "epoch": r.epoch,
                "val_rmse": r.val_rmse,
                "bootstrap": options["bootstrap"],
            },
        }
        for r in results
    ]
    metadata = {key: options[key] for key in ("config", "data", "storage", "members")}
    metadata["tiles"] = {
        "train": options["train_tiles"]["count"],
        "val": options["val_tiles"]["count"],
    }
    manifest = write_ensemble(folder, entries, calibration=calibration, metadata=metadata)
    return EnsembleResult(folder, manifest, calibration, tuple(results))
