"""Save and load generators as self-describing, tamper-evident safetensors files.

A checkpoint is one ``.safetensors`` file: the weights, the hyperparameters
that rebuild the architecture, free-form metadata (training data, epochs,
metrics) and a SHA-256 digest over all tensors. Loading never unpickles
anything, and a truncated or altered file is refused with a clear error.
"""

from __future__ import annotations

import hashlib
import json
import os
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from xdeepbedmap.atomic import atomic_path
from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.model.generator import Generator

__all__ = [
    "CheckpointError",
    "export_checkpoint",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "save_checkpoint",
]

FORMAT = "xdeepbedmap-generator"
FORMAT_VERSION = "1"
#: Dtypes a checkpoint may store its floating-point weights in, by name.
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


class CheckpointError(XDeepBedMapError, ValueError):
    """A checkpoint file is unreadable, truncated, tampered with or of another kind."""


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``tensors`` (sorted by name)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _storage_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, str):
        if dtype not in STORAGE_DTYPES:
            raise ValueError(f"storage_dtype must be one of {list(STORAGE_DTYPES)}, got {dtype!r}")
        return STORAGE_DTYPES[dtype]
    if dtype not in STORAGE_DTYPES.values():
        raise ValueError(
            f"storage_dtype must be one of {list(STORAGE_DTYPES.values())}, got {dtype!r}"
        )
    return dtype


def save_checkpoint(
    model: Generator,
    path: str | PathLike[str],
    storage_dtype: torch.dtype | str = torch.float32,
    **metadata: Any,
) -> Path:
    """Write ``model`` and ``metadata`` to one safetensors checkpoint.

    Parameters
    ----------
    model : Generator
        The generator to save (any device; weights are stored on CPU).
    path : str or path-like
        Destination file (conventionally ``*.safetensors``), replaced if it
        exists. It is built aside and published only when complete
        (:func:`xdeepbedmap.atomic.atomic_path`), so a crash never leaves a
        partial file under ``path``.
    storage_dtype : torch.dtype or {"float32", "float16"}
        ``torch.float16`` (``"float16"``) halves the file (for shipping);
        weights are loaded back as float32.
    **metadata
        JSON-serialisable facts to keep with the weights (training data,
        epochs, metrics, ...).

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    storage_dtype = _storage_dtype(storage_dtype)
    tensors = {
        k: v.detach().to("cpu", storage_dtype if v.is_floating_point() else v.dtype).contiguous()
        for k, v in model.state_dict().items()
    }
    try:
        meta_json = json.dumps(metadata, sort_keys=True)
    except TypeError as err:
        raise TypeError(f"checkpoint metadata must be JSON-serialisable: {err}") from err
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "hyperparameters": json.dumps(model.hyperparameters, sort_keys=True),
        "metadata": meta_json,
        "sha256": tensor_digest(tensors),
    }
    with atomic_path(path, overwrite=True) as tmp:
        save_file(tensors, str(tmp), metadata=header)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # readable like any other file, not 0600
    return path


def _read_header(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({err})") from err
    if header.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: format {header.get('format')!r} is not an xdeepbedmap generator checkpoint"
        )
    if header.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {header.get('format_version')!r}, "
            f"this xdeepbedmap reads {FORMAT_VERSION!r}"
        )
    return header


def read_checkpoint_metadata(path: str | PathLike[str]) -> dict[str, Any]:
    """Return ``{"hyperparameters": ..., "metadata": ..., "sha256": ...}`` without the weights."""
    path = Path(path)
    header = _read_header(path)
    try:
        return {
            "hyperparameters": json.loads(header["hyperparameters"]),
            "metadata": json.loads(header["metadata"]),
            "sha256": header["sha256"],
        }
    except (KeyError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: checkpoint header is damaged ({err})") from err


def load_checkpoint(
    path: str | PathLike[str], map_location: str | torch.device = "cpu"
) -> Generator:
    """Rebuild a :class:`Generator` from a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        If the file is truncated, tampered with (digest mismatch), of another
        format, or its tensors do not fit the recorded architecture.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    info = read_checkpoint_metadata(path)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: truncated or damaged checkpoint ({err})") from err
    if tensor_digest(tensors) != info["sha256"]:
        raise CheckpointError(
            f"{path}: weights do not match the checkpoint's SHA-256 digest "
            "(the file was altered or damaged)"
        )
    try:
        model = Generator(**info["hyperparameters"])
        model.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
        )
    except (TypeError, RuntimeError) as err:
        raise CheckpointError(
            f"{path}: tensors do not fit the recorded architecture ({err})"
        ) from err
    return model.to(map_location).eval()


def export_checkpoint(
    source: str | PathLike[str],
    path: str | PathLike[str],
    storage_dtype: torch.dtype | str = torch.float32,
    overwrite: bool = False,
) -> Path:
    """Write a verified copy of checkpoint ``source``, metadata kept, e.g. in float16.

    The source is loaded (its digest checked) and saved again with
    :func:`save_checkpoint`, so a damaged checkpoint is never passed on.

    Parameters
    ----------
    source : str or path-like
        A checkpoint written by :func:`save_checkpoint`.
    path : str or path-like
        Where to write the copy.
    storage_dtype : torch.dtype or {"float32", "float16"}
        ``"float16"`` halves the file (``xdeepbedmap train --half``).
    overwrite : bool
        Replace an existing ``path``.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    metadata = read_checkpoint_metadata(source)["metadata"]
    return save_checkpoint(load_checkpoint(source), path, storage_dtype, **metadata)
