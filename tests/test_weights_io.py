"""Chainer weight import, checkpoints and the convert-weights command."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from xdeepbedmap.cli import main
from xdeepbedmap.model import (
    CheckpointError,
    Generator,
    export_checkpoint,
    load_chainer_weights,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from xdeepbedmap.model.chainer_weights import chainer_key_for, read_chainer_archive


@pytest.fixture()
def small_model() -> Generator:
    torch.manual_seed(0)
    model = Generator(num_residual_blocks=2, residual_scaling=0.3)
    with torch.no_grad():  # non-trivial biases so a round trip is a real test
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return model


def write_chainer_like(path: Path, model: Generator, **changes) -> Path:
    """Save ``model`` as Chainer would, then add/drop/replace keys."""
    blocks = model.num_residual_blocks
    arrays = {chainer_key_for(k, blocks): v.numpy() for k, v in model.state_dict().items()}
    for key, value in changes.items():
        key = key.replace("__", "/")
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(path, **arrays)
    return path


# -- Chainer archives -------------------------------------------------------------


def test_chainer_round_trip_with_block_quirk(tmp_path, small_model):
    path = write_chainer_like(tmp_path / "g.npz", small_model)
    loaded = load_chainer_weights(path, residual_scaling=0.3)
    assert loaded.num_residual_blocks == 2 and not loaded.training
    for key, value in small_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_chainer_key_mapping_is_a_permutation():
    keys = [chainer_key_for(k, 12) for k in Generator(12).state_dict()]
    assert len(set(keys)) == len(keys)
    assert "residual_network/0/residual_dense_block1/conv_layer1/W" in keys
    assert chainer_key_for("residual_network.11.residual_dense_block3.conv_layer5.weight", 12) == (
        "residual_network/1/residual_dense_block3/conv_layer5/W"
    )


def test_not_an_archive(tmp_path):
    bad = tmp_path / "weights.npz"
    bad.write_text("this is not a zip archive")
    with pytest.raises(ValueError, match="not a readable Chainer save_npz"):
        load_chainer_weights(bad)


def test_truncated_archive(tmp_path, small_model):
    path = write_chainer_like(tmp_path / "g.npz", small_model)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable Chainer save_npz"):
        load_chainer_weights(path)


def test_pickled_object_array_is_refused(tmp_path):
    path = tmp_path / "pickle.npz"
    np.savez(path, evil=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a plain Chainer save_npz"):
        read_chainer_archive(path)


def test_missing_key(tmp_path, small_model):
    path = write_chainer_like(
        tmp_path / "g.npz", small_model, final_conv_layer2__offset_conv__b=None
    )
    with pytest.raises(ValueError, match="missing 1 key.*final_conv_layer2/offset_conv/b"):
        load_chainer_weights(path)


def test_extra_key(tmp_path, small_model):
    path = write_chainer_like(tmp_path / "g.npz", small_model, extra_layer__W=np.zeros(3))
    with pytest.raises(ValueError, match="unexpected key.*extra_layer/W"):
        load_chainer_weights(path)


def test_wrong_shape_names_key_and_shapes(tmp_path, small_model):
    path = write_chainer_like(
        tmp_path / "g.npz", small_model, input_block__conv_on_W2__W=np.zeros((32, 1, 6, 6), "f4")
    )
    with pytest.raises(
        ValueError, match=r"input_block/conv_on_W2/W.*\(32, 1, 6, 6\).*\(32, 2, 6, 6\)"
    ):
        load_chainer_weights(path)


def test_not_a_generator(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, conv_layer0__W=np.zeros(3))
    with pytest.raises(ValueError, match="no 'residual_network"):
        load_chainer_weights(path)


# -- checkpoints ------------------------------------------------------------------


def test_checkpoint_round_trip_is_bit_exact(tmp_path, small_model):
    path = save_checkpoint(small_model, tmp_path / "m.safetensors", epochs=3, data={"seed": 1})
    loaded = load_checkpoint(path)
    assert loaded.hyperparameters == {"num_residual_blocks": 2, "residual_scaling": 0.3}
    for key, value in small_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    meta = read_checkpoint_metadata(path)
    assert meta["metadata"] == {"epochs": 3, "data": {"seed": 1}}
    assert len(meta["sha256"]) == 64
    assert not (tmp_path / "m.safetensors.partial").exists()


def test_export_checkpoint_halves_the_file_and_keeps_the_metadata(tmp_path, small_model):
    source = save_checkpoint(small_model, tmp_path / "m.safetensors", epochs=3)
    half = export_checkpoint(source, tmp_path / "half.safetensors", storage_dtype="float16")
    assert half.stat().st_size < 0.6 * source.stat().st_size
    assert read_checkpoint_metadata(half)["metadata"] == {"epochs": 3}
    for key, value in load_checkpoint(half).state_dict().items():
        torch.testing.assert_close(value, small_model.state_dict()[key], atol=1e-3, rtol=1e-3)
    full = export_checkpoint(source, tmp_path / "full.safetensors")
    assert read_checkpoint_metadata(full)["sha256"] == read_checkpoint_metadata(source)["sha256"]
    with pytest.raises(FileExistsError, match="full.safetensors"):
        export_checkpoint(source, full)
    with pytest.raises(ValueError, match="storage_dtype must be one of"):
        save_checkpoint(small_model, tmp_path / "x.safetensors", storage_dtype="int8")
    assert not (tmp_path / "x.safetensors").exists()


def test_truncated_checkpoint(tmp_path, small_model):
    path = save_checkpoint(small_model, tmp_path / "m.safetensors")
    data = path.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 4):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="m.safetensors"):
            load_checkpoint(path)


def test_tampered_checkpoint(tmp_path, small_model):
    path = save_checkpoint(small_model, tmp_path / "m.safetensors")
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # flip bits inside the last tensor's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path)


def test_checkpoint_of_other_format(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "something-else"})
    with pytest.raises(CheckpointError, match="not an xdeepbedmap generator checkpoint"):
        load_checkpoint(path)


def test_checkpoint_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_checkpoint_refuses_a_pickle(tmp_path, small_model):
    path = tmp_path / "m.safetensors"
    buffer = io.BytesIO()
    torch.save(small_model.state_dict(), buffer)
    path.write_bytes(buffer.getvalue())
    assert zipfile.is_zipfile(path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


# -- command line -----------------------------------------------------------------


def test_cli_convert_weights(tmp_path, reference_weights, capsys):
    out = tmp_path / "ref.safetensors"
    assert main(["convert-weights", str(reference_weights), str(out)]) == 0
    assert "3 residual blocks" in capsys.readouterr().out
    converted = load_checkpoint(out)
    direct = load_chainer_weights(reference_weights)
    for key, value in direct.state_dict().items():
        assert torch.equal(converted.state_dict()[key], value)
    assert read_checkpoint_metadata(out)["metadata"]["source"] == reference_weights.name


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_text("nope")
    out = tmp_path / "out.safetensors"
    assert main(["convert-weights", str(bad), str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists()
    assert main(["convert-weights", str(tmp_path / "absent.npz"), str(out)]) == 1
    assert "not found" in capsys.readouterr().err
