"""The reliability contract, one case per row: bad files, bad options, interruptions.

Each test states the good behaviour for one way a careful user breaks things:
refused with a message that names what was wrong, before anything is written;
or a result equal to the uninterrupted one. ``docs/reliability.md`` states the
contract these tests check.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from xdeepbedmap.model import Generator, load_chainer_weights, load_checkpoint, save_checkpoint
from xdeepbedmap.model.chainer_weights import chainer_key_for
from xdeepbedmap.model.checkpoint import (
    CheckpointError,
    checkpoint_digest,
    read_checkpoint_metadata,
    tensor_digest,
    upgrade_checkpoint,
)
from xdeepbedmap.model_store import resolve_model


@pytest.fixture()
def checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(Generator(num_residual_blocks=1), tmp_path / "model.safetensors")


def rewrite(path: Path, out: Path, tensors=None, **header_changes) -> Path:
    """Rewrite a checkpoint with other tensors or header fields (as an editor would)."""
    with safe_open(str(path), framework="pt") as handle:
        header = dict(handle.metadata())
    header.update(
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in header_changes.items()}
    )
    save_file(tensors if tensors is not None else load_file(str(path)), str(out), metadata=header)
    return out


# -- model files -------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [{"residual_scaling": 0.5}, {"bed_skip": True}, {"input_scaling": None}],
    ids=["residual_scaling", "bed_skip", "input_scaling"],
)
def test_edited_hyperparameters_are_refused(checkpoint, tmp_path, change):
    hyper = read_checkpoint_metadata(checkpoint)["hyperparameters"]
    if "input_scaling" in change:
        change = {
            "input_scaling": {k: [1.0, 2.0] for k in ("bed", "surface", "velocity", "accumulation")}
        }
    edited = rewrite(
        checkpoint, tmp_path / "edited.safetensors", hyperparameters={**hyper, **change}
    )
    with pytest.raises(CheckpointError, match="hyperparameters or weights do not match"):
        load_checkpoint(edited)
    with pytest.raises(CheckpointError, match="do not match"):
        resolve_model(edited)  # refused when the computation is set up, not in a task


def test_nan_weights_with_a_recomputed_digest_are_refused(checkpoint, tmp_path):
    tensors = load_file(str(checkpoint))
    tensors["pre_residual_conv_layer.weight"][0, 0, 0, 0] = float("nan")
    hyper = read_checkpoint_metadata(checkpoint)["hyperparameters"]
    forged = rewrite(
        checkpoint, tmp_path / "nan.safetensors", tensors, sha256=checkpoint_digest(tensors, hyper)
    )
    with pytest.raises(CheckpointError, match=r"non-finite weights .* pre_residual_conv_layer"):
        load_checkpoint(forged)


def test_nan_weights_are_never_saved_or_converted(tmp_path):
    model = Generator(num_residual_blocks=1)
    with torch.no_grad():
        model.post_residual_conv_layer.weight.fill_(float("inf"))
    with pytest.raises(CheckpointError, match="non-finite"):
        save_checkpoint(model, tmp_path / "inf.safetensors")
    assert not list(tmp_path.iterdir())
    arrays = {chainer_key_for(k, 1): v.numpy() for k, v in model.state_dict().items()}
    np.savez(tmp_path / "inf.npz", **arrays)
    with pytest.raises(CheckpointError, match="non-finite"):
        load_chainer_weights(tmp_path / "inf.npz")


def test_header_claiming_huge_architecture_fails_fast(checkpoint, tmp_path):
    hyper = read_checkpoint_metadata(checkpoint)["hyperparameters"]
    tensors = load_file(str(checkpoint))
    hyper["num_residual_blocks"] = 3000
    forged = rewrite(
        checkpoint,
        tmp_path / "huge.safetensors",
        hyperparameters=hyper,
        sha256=checkpoint_digest(tensors, hyper),
    )
    start = time.perf_counter()
    with pytest.raises(
        CheckpointError, match="claims num_residual_blocks=3000, the tensors hold 1"
    ):
        load_checkpoint(forged)
    assert time.perf_counter() - start < 2.0


def test_unknown_hyperparameter_is_refused(checkpoint, tmp_path):
    hyper = {**read_checkpoint_metadata(checkpoint)["hyperparameters"], "dropout": 0.1}
    tensors = load_file(str(checkpoint))
    forged = rewrite(
        checkpoint,
        tmp_path / "x.safetensors",
        hyperparameters=hyper,
        sha256=checkpoint_digest(tensors, hyper),
    )
    with pytest.raises(CheckpointError, match="hyperparameters .* are not valid"):
        load_checkpoint(forged)


def test_format_1_is_refused_then_upgraded(checkpoint, tmp_path):
    tensors = load_file(str(checkpoint))
    old = rewrite(
        checkpoint, tmp_path / "v1.safetensors", format_version="1", sha256=tensor_digest(tensors)
    )
    with pytest.raises(CheckpointError, match="upgrade_checkpoint"):
        load_checkpoint(old)
    new = upgrade_checkpoint(old, tmp_path / "v2.safetensors")
    reloaded = load_checkpoint(new)
    for key, value in tensors.items():
        assert torch.equal(reloaded.state_dict()[key], value.float()), key
