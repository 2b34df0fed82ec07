"""Snapshot ensembles: every epoch kept, the last K published as an ordinary ensemble."""

from __future__ import annotations

import json

import pytest
import torch

from xdeepbedmap.cli import main
from xdeepbedmap.ensemble import read_ensemble
from xdeepbedmap.ensemble.store import EnsembleError
from xdeepbedmap.model import load_checkpoint
from xdeepbedmap.synthetic import make_region
from xdeepbedmap.training.snapshots import publish_snapshots
from xdeepbedmap.training.tiles import TileDataset, TileLayout, build_tiles, split_tiles
from xdeepbedmap.training.trainer import TrainConfig, snapshot_path, train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tiles = build_tiles([make_region((24, 24), seed=21)], layout=TileLayout(stride=8))
    train_idx, val_idx = split_tiles(tiles.sizes["tile"], 0.2, seed=0)
    config = TrainConfig(num_residual_blocks=1, batch_size=8, epochs=3, seed=5, adversarial=False)
    folder = tmp_path_factory.mktemp("run")
    result = train(
        TileDataset(tiles, train_idx[:16]),
        TileDataset(tiles, val_idx[:4]),
        config,
        folder,
        progress=False,
        snapshots=True,
    )
    return folder, result


def test_every_epoch_is_kept_and_differs(run):
    folder, result = run
    weights = []
    for epoch in (1, 2, 3):
        model = load_checkpoint(snapshot_path(folder, epoch))
        weights.append(model.post_residual_conv_layer.weight.detach().clone())
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])
    last = load_checkpoint(snapshot_path(folder, 3))
    assert torch.equal(
        last.post_residual_conv_layer.weight, result.generator.post_residual_conv_layer.weight
    )


def test_publish_writes_the_last_epochs_as_an_ensemble(run, tmp_path):
    folder, result = run
    manifest = publish_snapshots(folder, result.history, tmp_path / "ens", 2)
    ensemble = read_ensemble(manifest.parent)
    assert len(ensemble.members) == 2 and ensemble.calibration is None
    record = json.loads(manifest.read_text())
    assert [m["training"]["epoch"] for m in record["members"]] == [2, 3]
    assert record["metadata"]["kind"] == "snapshots"
    with pytest.raises(EnsembleError, match="already holds an ensemble"):
        publish_snapshots(folder, result.history, tmp_path / "ens", 2)
    publish_snapshots(folder, result.history, tmp_path / "ens", 3, overwrite=True)
    assert len(read_ensemble(tmp_path / "ens").members) == 3


def test_publish_refuses_what_the_run_does_not_have(run, tmp_path):
    folder, result = run
    with pytest.raises(EnsembleError, match="3 epoch\\(s\\) trained, 4 snapshots"):
        publish_snapshots(folder, result.history, tmp_path / "a", 4)
    with pytest.raises(EnsembleError, match=">= 2 members"):
        publish_snapshots(folder, result.history, tmp_path / "b", 1)
    empty = tmp_path / "no-snapshots"
    empty.mkdir()
    with pytest.raises(EnsembleError, match="snapshots missing"):
        publish_snapshots(empty, result.history, tmp_path / "c", 2)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--members", "2", "--snapshots", "2"], "choose one way"),
        (["--snapshots", "3", "--epochs", "2"], "--snapshots 3 > --epochs 2"),
        (["--snapshots", "2", "--output", "x.safetensors"], "ensemble folder"),
    ],
)
def test_cli_refuses_bad_snapshot_options_before_any_work(
    tmp_path, capsys, monkeypatch, extra, message
):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--synthetic", "21", "--synthetic-shape", "16x16", "--run-dir", "run"]
    argv += ["--output", "ens"] + extra
    assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_snapshot_of_another_run_is_refused(run, tmp_path):
    import shutil

    folder, result = run
    copy = tmp_path / "run"
    shutil.copytree(folder, copy)
    shutil.copy(snapshot_path(copy, 1), snapshot_path(copy, 3))  # epoch 1 posing as epoch 3
    with pytest.raises(EnsembleError, match="is not epoch 3 of this run"):
        publish_snapshots(copy, result.history, tmp_path / "ens", 2)
    assert not (tmp_path / "ens").exists()


def test_a_fresh_run_removes_the_snapshots_of_the_one_before(tmp_path):
    tiles = build_tiles([make_region((24, 24), seed=21)], layout=TileLayout(stride=8))
    config = TrainConfig(num_residual_blocks=1, batch_size=8, epochs=1, seed=5, adversarial=False)
    stale = snapshot_path(tmp_path, 7)
    stale.write_bytes(b"old")
    train(TileDataset(tiles, range(8)), TileDataset(tiles, range(8, 10)), config, tmp_path,
          progress=False, resume=False)  # fmt: skip
    assert not stale.exists() and not snapshot_path(tmp_path, 1).exists()


def test_cli_trains_and_publishes_a_snapshot_ensemble(tmp_path, capsys):
    argv = ["train", "--synthetic", "21", "--synthetic-shape", "16x16", "--blocks", "1"]
    argv += ["--epochs", "2", "--batch-size", "8", "--stride", "8", "--no-adversarial"]
    argv += ["--snapshots", "2", "--device", "cpu", "--run-dir", str(tmp_path / "run")]
    argv += ["--output", str(tmp_path / "ens")]
    assert main(argv) == 0
    assert "last 2 epochs; calibrate it next" in capsys.readouterr().out
    ensemble = read_ensemble(tmp_path / "ens")
    assert len(ensemble.members) == 2
    # where calibrate and fit-blend look for the seeds the members saw
    assert ensemble.metadata["data"]["training_data"]["synthetic_seeds"] == "21"
    assert main(argv) == 1  # the folder exists: refused without --overwrite
    assert "--overwrite" in capsys.readouterr().err
