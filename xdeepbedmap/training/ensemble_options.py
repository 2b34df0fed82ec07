"""The options an ensemble folder is trained with: recorded first, checked on every resume.

``training_options.json`` holds the member count, bootstrap, storage type,
training configuration, the training data's description and SHA-256 digests
of the training and validation tiles. A rerun with the same options resumes;
any difference is named in the refusal, so two trainings never mix members.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from xdeepbedmap.atomic import atomic_path
from xdeepbedmap.ensemble.store import MANIFEST, EnsembleError
from xdeepbedmap.training.config import TrainConfig
from xdeepbedmap.training.dataset import TileDataset

__all__ = ["OPTIONS_FILE", "ensemble_options", "prepare_folder"]

#: The options record inside an ensemble folder being trained.
OPTIONS_FILE = "training_options.json"


def _digest(tiles: TileDataset) -> str:
    """SHA-256 of the tiles' values (loaded), so a resume never mixes two tile sets."""
    sha = hashlib.sha256()
    for tensor in tiles.tensors():
        sha.update(tensor.numpy().tobytes())
    return sha.hexdigest()


def ensemble_options(
    config: TrainConfig,
    members: int,
    bootstrap: bool,
    storage: str,
    train_tiles: TileDataset,
    val_tiles: TileDataset,
    data: dict[str, Any],
) -> dict[str, Any]:
    """What a resume must match: counts, storage, config, data and tile digests (JSON)."""
    return {
        "members": members,
        "bootstrap": bootstrap,
        "storage": storage,
        "config": config.to_dict(),
        "train_tiles": {"count": len(train_tiles), "sha256": _digest(train_tiles)},
        "val_tiles": {"count": len(val_tiles), "sha256": _digest(val_tiles)},
        # a JSON round trip so tuples and lists compare equal with the saved record
        "data": json.loads(json.dumps(data)),
    }


def _differences(saved: Any, wanted: Any, name: str = "") -> list[str]:
    """Dotted names of the options that differ, with both values."""
    if isinstance(saved, dict) and isinstance(wanted, dict):
        keys = sorted(set(saved) | set(wanted))
        return [
            d
            for key in keys
            for d in _differences(saved.get(key), wanted.get(key), f"{name}.{key}".lstrip("."))
        ]
    return [] if saved == wanted else [f"{name} (folder: {saved!r}, now: {wanted!r})"]


def _clear(folder: Path, run_root: Path) -> None:
    """Remove what an earlier ensemble training left, so nothing of it is resumed."""
    for path in (folder / MANIFEST, folder / OPTIONS_FILE, *folder.glob("member_*.safetensors")):
        path.unlink(missing_ok=True)
    for run in run_root.glob("member_*"):
        for name in ("state.pt", "best.safetensors"):
            (run / name).unlink(missing_ok=True)


def prepare_folder(
    folder: Path, run_root: Path, options: dict[str, Any], restart: bool, overwrite: bool
) -> None:
    """Resume a folder made with ``options``; refuse (or, when asked, clear) any other."""
    record = folder / OPTIONS_FILE
    ours = [folder / MANIFEST, *folder.glob("member_*.safetensors")]
    if restart:
        _clear(folder, run_root)
    elif record.exists():
        diffs = _differences(json.loads(record.read_text()), options)
        if diffs and not overwrite:
            raise EnsembleError(
                f"{folder} was made with other options: {'; '.join(diffs)}. Rerun with the "
                "same options, choose another folder, or start over (overwrite=True / "
                "restart=True; CLI --overwrite / --restart)"
            )
        if diffs:
            _clear(folder, run_root)
    elif any(path.exists() for path in ours) and not overwrite:
        raise EnsembleError(
            f"{folder} holds an ensemble without {OPTIONS_FILE} (not made by train_ensemble, "
            "or by another version); pass overwrite=True (CLI --overwrite) to replace it"
        )
    elif any(path.exists() for path in ours):
        _clear(folder, run_root)
    folder.mkdir(parents=True, exist_ok=True)
    if not record.exists():
        with atomic_path(record, overwrite=True) as staged:
            staged.write_text(json.dumps(options, indent=2, sort_keys=True) + "\n")
