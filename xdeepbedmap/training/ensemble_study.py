"""An ensemble from the best trials of an Optuna study (``xdeepbedmap ensemble --from-study``).

The members are the best checkpoints of the ``top`` completed trials with the
lowest held-out RMSE (:mod:`xdeepbedmap.training.tune`), copied (verified)
into the folder, and the spread is calibrated on the study's validation tiles
(:func:`~xdeepbedmap.ensemble.calibration.calibrate_on_tiles`). Their
diversity comes from the hyperparameters rather than from seeds and
resampling. Caveat: the trials were *ranked* on the study's held-out region,
so that region is no longer independent of the ensemble; judge its coverage
on another one.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from xdeepbedmap.ensemble.calibration import calibrate_on_tiles
from xdeepbedmap.ensemble.store import MANIFEST, EnsembleError, member_name, write_ensemble
from xdeepbedmap.model import export_checkpoint, read_checkpoint_metadata
from xdeepbedmap.training.dataset import TileDataset
from xdeepbedmap.training.ensemble import EnsembleResult, MemberResult

__all__ = ["best_trials", "ensemble_from_study"]


def best_trials(study: Any, top: int) -> list[Any]:
    """The ``top`` completed trials with the lowest value that kept a checkpoint.

    Raises
    ------
    EnsembleError
        If fewer than ``max(top, 2)`` such trials exist (the count is named).
    """
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    usable = sorted((t for t in done if "checkpoint" in t.user_attrs), key=lambda t: t.value)
    if top < 2 or len(usable) < top:
        raise EnsembleError(
            f"--top {top}: an ensemble needs >= 2 members and study {study.study_name!r} "
            f"has {len(usable)} completed trial(s) with a checkpoint"
        )
    return usable[:top]


def ensemble_from_study(
    study: Any,
    val_tiles: TileDataset,
    folder: str | PathLike[str],
    top: int = 4,
    *,
    storage: str = "float32",
    overwrite: bool = False,
    device: str | None = None,
) -> EnsembleResult:
    """Copy the ``top`` best trials' checkpoints into ``folder`` and calibrate them.

    Parameters
    ----------
    study : optuna.Study
        A study run by :func:`xdeepbedmap.training.tune.run_workers`.
    val_tiles : TileDataset
        The study's validation tiles (same tile cache, fraction and seed).
    folder : path
        The ensemble folder to write.
    top : int
        Members: the trials with the lowest held-out RMSE.
    storage : {"float32", "float16"}
        Storage type of the copies.
    overwrite : bool
        Replace a complete ensemble already in ``folder``.
    device : str, optional
        For the calibration's forward passes.

    Returns
    -------
    EnsembleResult
        Members' ``seed``, ``epoch`` and ``val_rmse`` from their checkpoints
        (the manifest names each member's trial, its held-out RMSE and params).
    """
    folder = Path(folder)
    if (folder / MANIFEST).exists() and not overwrite:
        raise EnsembleError(
            f"{folder} already holds an ensemble; "
            "pass overwrite=True (CLI --overwrite) to replace it"
        )
    trials = best_trials(study, top)  # refused before anything is written
    missing = [
        t.user_attrs["checkpoint"] for t in trials if not Path(t.user_attrs["checkpoint"]).exists()
    ]
    if missing:
        raise EnsembleError(f"trial checkpoint(s) missing: {', '.join(missing)}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST).unlink(missing_ok=True)  # the folder is incomplete until rewritten
    results, entries = [], []
    for k, trial in enumerate(trials):
        path = export_checkpoint(
            trial.user_attrs["checkpoint"], folder / member_name(k), storage, overwrite=True
        )
        meta = read_checkpoint_metadata(path)["metadata"]
        results.append(
            MemberResult(
                k,
                int(meta["training"]["seed"]),
                path,
                0.0,
                int(meta["epoch"]),
                float(meta["metrics"]["val_rmse"]),
                False,
            )
        )
        entries.append(
            {
                "file": path.name,
                "seed": int(meta["training"]["seed"]),
                "training": {
                    "trial": trial.number,
                    "holdout_rmse": trial.value,
                    "params": trial.params,
                },
            }
        )
    calibration = calibrate_on_tiles(
        [r.path for r in results],
        val_tiles,
        fitted_on=f"{len(val_tiles)} validation tiles of study {study.study_name!r}",
        device=device,
    )
    metadata = {"study": study.study_name, "top": top, "storage": storage}
    manifest = write_ensemble(folder, entries, calibration=calibration, metadata=metadata)
    return EnsembleResult(folder, manifest, calibration, tuple(results))
