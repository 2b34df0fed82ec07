"""Save and load generators as self-describing, tamper-evident safetensors files.

A checkpoint is one ``.safetensors`` file: the weights, the hyperparameters
that rebuild the architecture, free-form metadata (training data, epochs,
metrics) and a SHA-256 digest over the hyperparameters and all tensors, i.e.
over everything that changes what the model computes. Loading never
unpickles anything; a truncated or altered file, a header whose
hyperparameters disagree with its tensors, and non-finite weights are refused
with a clear error before any model is built.

Format history: version 1 (xdeepbedmap 0.1) digested the tensors only, so an
edited hyperparameter went unnoticed; such files are refused and can be
re-signed deliberately with :func:`upgrade_checkpoint`.
"""

from __future__ import annotations

import json
import os
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from xdeepbedmap.atomic import atomic_path
from xdeepbedmap.model.generator import Generator
from xdeepbedmap.model.integrity import (
    CheckpointError,
    check_architecture,
    check_finite,
    checkpoint_digest,
    tensor_digest,
)

__all__ = [
    "CheckpointError",
    "check_finite",
    "checkpoint_digest",
    "export_checkpoint",
    "load_checkpoint",
    "model_digest",
    "read_checkpoint_metadata",
    "save_checkpoint",
    "upgrade_checkpoint",
]

FORMAT = "xdeepbedmap-generator"
FORMAT_VERSION = "2"
#: Older format versions :func:`upgrade_checkpoint` can re-sign.
_UPGRADABLE = {"1"}
#: Dtypes a checkpoint may store its floating-point weights in, by name.
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def model_digest(model: Generator, storage_dtype: torch.dtype | None = None) -> str:
    """The :func:`checkpoint_digest` a checkpoint of ``model`` would record."""
    return checkpoint_digest(_tensors_of(model, storage_dtype), model.hyperparameters)


def _tensors_of(model: Generator, storage_dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    return {
        k: v.detach()
        .to("cpu", storage_dtype if storage_dtype and v.is_floating_point() else v.dtype)
        .contiguous()
        for k, v in model.state_dict().items()
    }


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
    tensors = _tensors_of(model, storage_dtype)
    check_finite(tensors, f"model to save as {path}")
    try:
        meta_json = json.dumps(metadata, sort_keys=True)
    except TypeError as err:
        raise TypeError(f"checkpoint metadata must be JSON-serialisable: {err}") from err
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "hyperparameters": json.dumps(model.hyperparameters, sort_keys=True),
        "metadata": meta_json,
        "sha256": checkpoint_digest(tensors, model.hyperparameters),
    }
    with atomic_path(path, overwrite=True) as tmp:
        save_file(tensors, str(tmp), metadata=header)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # readable like any other file, not 0600
    return path


def _read_header(path: Path, versions: set[str] | None = None) -> dict[str, str]:
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
    version = header.get("format_version")
    if version in _UPGRADABLE and not (versions and version in versions):
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} does not protect its "
            "hyperparameters with its digest; check them, then re-sign the file with "
            "xdeepbedmap.model.checkpoint.upgrade_checkpoint(path, new_path)"
        )
    if version != FORMAT_VERSION and not (versions and version in versions):
        raise CheckpointError(
            f"{path}: checkpoint format version {header.get('format_version')!r}, "
            f"this xdeepbedmap reads {FORMAT_VERSION!r}"
        )
    return header


def read_checkpoint_metadata(
    path: str | PathLike[str], _versions: set[str] | None = None
) -> dict[str, Any]:
    """Return ``{"hyperparameters": ..., "metadata": ..., "sha256": ...}`` without the weights."""
    path = Path(path)
    header = _read_header(path, _versions)
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
    tensors = _load_tensors(path)
    if checkpoint_digest(tensors, info["hyperparameters"]) != info["sha256"]:
        raise CheckpointError(
            f"{path}: hyperparameters or weights do not match the checkpoint's SHA-256 digest "
            "(the file was altered or damaged)"
        )
    return _build(path, tensors, info["hyperparameters"]).to(map_location)


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: truncated or damaged checkpoint ({err})") from err


def _build(path: Path, tensors: dict[str, torch.Tensor], hyper: dict[str, Any]) -> Generator:
    check_architecture(path, tensors, hyper)
    check_finite(tensors, str(path))
    model = Generator(**hyper)
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    )
    return model.eval()


def upgrade_checkpoint(
    path: str | PathLike[str], output: str | PathLike[str], overwrite: bool = False
) -> Path:
    """Re-sign a format-1 checkpoint so its digest covers its hyperparameters too.

    Format 1 digested the tensors only. This verifies them against that old
    digest, checks the header's hyperparameters against the tensors, and
    writes ``output`` in the current format with the same weights, storage
    dtype and metadata. Check the hyperparameters it prints first: they are
    what the new digest will vouch for.
    """
    path, output = Path(path), Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass overwrite=True to replace it")
    info = read_checkpoint_metadata(path, _versions=_UPGRADABLE | {FORMAT_VERSION})
    tensors = _load_tensors(path)
    if tensor_digest(tensors) != info["sha256"] and (
        checkpoint_digest(tensors, info["hyperparameters"]) != info["sha256"]
    ):
        raise CheckpointError(f"{path}: weights do not match the checkpoint's SHA-256 digest")
    model = _build(path, tensors, info["hyperparameters"])
    dtypes = {v.dtype for v in tensors.values() if v.is_floating_point()}
    return save_checkpoint(
        model,
        output,
        storage_dtype=dtypes.pop() if len(dtypes) == 1 else torch.float32,
        **info["metadata"],
    )


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
