"""Integrity checks of generator weights: digests, finite values, architecture.

Shared by checkpoint files and Chainer weights: a file's identity is a digest
over everything that changes what the model computes, and nothing is built
from tensors that are non-finite or disagree with the architecture claimed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.model.generator import Generator

__all__ = [
    "CheckpointError",
    "check_architecture",
    "check_finite",
    "checkpoint_digest",
    "tensor_digest",
]


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


def checkpoint_digest(tensors: dict[str, torch.Tensor], hyperparameters: dict[str, Any]) -> str:
    """SHA-256 over the hyperparameters (canonical JSON) and :func:`tensor_digest`.

    This is a checkpoint's identity: it changes whenever anything that changes
    the model's output changes.
    """
    canonical = json.dumps(hyperparameters, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{canonical}|{tensor_digest(tensors)}".encode()).hexdigest()


def check_finite(tensors: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights holding NaN or infinity, naming the tensors and counts.

    Raises
    ------
    CheckpointError
        If any floating-point tensor has a non-finite value.
    """
    bad = {
        name: int((~torch.isfinite(t)).sum())
        for name, t in tensors.items()
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    }
    if bad:
        listed = ", ".join(f"{name} ({count})" for name, count in sorted(bad.items())[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise CheckpointError(
            f"{source}: non-finite weights (NaN or infinity) in {len(bad)} tensor(s): "
            f"{listed}{more}; the model would output NaN everywhere"
        )


def check_architecture(path: Path, tensors: dict[str, torch.Tensor], hyper: Any) -> None:
    """Compare the header's architecture with the tensors without allocating it."""
    if not isinstance(hyper, dict):
        raise CheckpointError(f"{path}: hyperparameters must be a mapping, found {hyper!r}")
    blocks = {k.split(".")[1] for k in tensors if k.startswith("residual_network.")}
    claimed = hyper.get("num_residual_blocks")
    if claimed != len(blocks):
        raise CheckpointError(
            f"{path}: header claims num_residual_blocks={claimed!r}, the tensors hold "
            f"{len(blocks)} residual blocks"
        )
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated
            expected = {k: tuple(v.shape) for k, v in Generator(**hyper).state_dict().items()}
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: hyperparameters {hyper} are not valid ({err})") from err
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if found != expected:
        wrong = sorted(set(found) ^ set(expected)) or sorted(
            k for k in found if found[k] != expected[k]
        )
        raise CheckpointError(
            f"{path}: tensors do not fit the recorded architecture {hyper} "
            f"({len(wrong)} tensor(s) missing, unexpected or misshapen, e.g. {wrong[:3]})"
        )
