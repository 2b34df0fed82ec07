"""Publish the last epochs of one training run as a snapshot ensemble.

A run trained with ``train(..., snapshots=True)`` keeps every epoch's
generator. Averaging the last few (Huang et al. 2017, "Snapshot ensembles:
train 1, get M for free") cancels part of what each epoch hallucinates at
no extra training cost; the folder is an ordinary ensemble
(:mod:`xdeepbedmap.ensemble.store`) without a calibration: fit one with
``xdeepbedmap calibrate`` on held-out regions.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from xdeepbedmap.ensemble.store import MANIFEST, EnsembleError, member_name, write_ensemble
from xdeepbedmap.model import export_checkpoint
from xdeepbedmap.model.checkpoint import read_checkpoint_metadata
from xdeepbedmap.training.trainer import snapshot_path

__all__ = ["publish_snapshots"]


def publish_snapshots(
    run_dir: str | PathLike[str],
    history: list[dict[str, float]],
    folder: str | PathLike[str],
    count: int,
    *,
    storage: str = "float32",
    overwrite: bool = False,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Copy the snapshots of the last ``count`` epochs of a run into an ensemble folder.

    Parameters
    ----------
    run_dir : path
        The run folder (``epoch_NNN.safetensors`` files).
    history : list of dict
        The run's per-epoch metrics (``epoch``, ``val_rmse``), as returned by
        :func:`~xdeepbedmap.training.trainer.train`.
    folder : path
        The ensemble folder to write; members first, ``ensemble.json`` last.
    count : int
        Number of members (>= 2): the last ``count`` epochs.
    storage : {"float32", "float16"}
        Storage type of the members.
    overwrite : bool
        Replace an ensemble already complete in ``folder``.
    metadata : dict, optional
        Extra facts for the manifest (training data ...).

    Returns
    -------
    pathlib.Path
        The manifest.

    Raises
    ------
    EnsembleError
        When the run has fewer than ``count`` epochs, a snapshot is missing,
        or ``folder`` holds a complete ensemble and ``overwrite`` is false.
    """
    folder = Path(folder)
    if count < 2:
        raise EnsembleError(f"a snapshot ensemble needs >= 2 members, got {count}")
    if len(history) < count:
        raise EnsembleError(
            f"{run_dir}: {len(history)} epoch(s) trained, {count} snapshots asked for"
        )
    rows = history[-count:]
    sources = [snapshot_path(run_dir, int(row["epoch"])) for row in rows]
    missing = [str(p) for p in sources if not p.exists()]
    if missing:
        raise EnsembleError(
            f"snapshots missing: {missing}; was the run trained with snapshots kept "
            "(train --snapshots) from its first epoch?"
        )
    for row, source in zip(rows, sources, strict=True):
        recorded = read_checkpoint_metadata(source)["metadata"]
        if recorded.get("epoch") != int(row["epoch"]) or not np.isclose(
            recorded.get("metrics", {}).get("val_rmse", np.nan), row["val_rmse"]
        ):
            raise EnsembleError(
                f"{source} is not epoch {int(row['epoch'])} of this run (it records epoch "
                f"{recorded.get('epoch')}, validation RMSE "
                f"{recorded.get('metrics', {}).get('val_rmse')}); retrain with --restart"
            )
    if (folder / MANIFEST).exists() and not overwrite:
        raise EnsembleError(f"{folder} already holds an ensemble; pass overwrite to replace it")
    folder.mkdir(parents=True, exist_ok=True)
    # an old manifest must not vouch for members being replaced
    (folder / MANIFEST).unlink(missing_ok=True)
    entries = []
    for index, (row, source) in enumerate(zip(rows, sources, strict=True)):
        name = member_name(index)
        export_checkpoint(source, folder / name, storage, overwrite=True)
        entries.append(
            {
                "file": name,
                "training": {
                    "epoch": int(row["epoch"]),
                    "val_rmse": float(row["val_rmse"]),
                    "snapshot": True,
                },
            }
        )
    info = {"kind": "snapshots", "run": str(run_dir), "storage": storage}
    return write_ensemble(folder, entries, metadata={**info, **(metadata or {})})
