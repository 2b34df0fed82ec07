"""The GAN trainer: learns, checkpoints, resumes bit-identically, reports clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xdeepbedmap.model import load_checkpoint
from xdeepbedmap.synthetic import make_region
from xdeepbedmap.training.tiles import TileDataset, TileLayout, build_tiles, split_tiles
from xdeepbedmap.training.trainer import TrainConfig, TrainingDiverged, train


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def datasets():
    tiles = build_tiles([make_region((24, 24), seed=21)], layout=TileLayout(stride=8))
    train_idx, val_idx = split_tiles(tiles.sizes["tile"], 0.2, seed=0)
    return TileDataset(tiles, train_idx[:16]), TileDataset(tiles, val_idx[:4])


CONFIG = TrainConfig(num_residual_blocks=1, batch_size=8, epochs=3, learning_rate=1e-3, seed=5)


def test_short_run_decreases_the_loss_and_writes_its_records(datasets, tmp_path):
    result = train(*datasets, CONFIG, tmp_path, progress=False)
    losses = [row["generator_loss"] for row in result.history]
    assert len(losses) == 3 and losses[-1] < losses[0]
    row = result.history[-1]
    assert {"val_rmse", "val_psnr", "val_discriminator_accuracy", "tiles_per_s"} <= set(row)
    assert 0.0 <= row["val_discriminator_accuracy"] <= 1.0
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 4
    assert (tmp_path / "loss_curve.png").stat().st_size > 5000
    best = load_checkpoint(result.best_checkpoint)
    assert best.num_residual_blocks == 1 and best.input_scaling is not None
    from xdeepbedmap.model.checkpoint import read_checkpoint_metadata

    meta = read_checkpoint_metadata(result.best_checkpoint)["metadata"]
    assert meta["training"]["learning_rate"] == 1e-3
    assert meta["metrics"]["val_rmse"] == min(r["val_rmse"] for r in result.history)


def test_interrupted_run_resumes_to_identical_weights(datasets, tmp_path):
    config = TrainConfig(num_residual_blocks=1, batch_size=8, epochs=3, seed=9)
    straight = train(*datasets, config, tmp_path / "straight", progress=False)

    def stop_after_first(epoch, metrics):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(*datasets, config, tmp_path / "resumed", progress=False, on_epoch=stop_after_first)
    resumed = train(*datasets, config, tmp_path / "resumed", progress=False)
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3]
    for key, value in straight.generator.state_dict().items():
        assert torch.equal(value, resumed.generator.state_dict()[key]), key
    runs = (tmp_path / "straight", tmp_path / "resumed")
    states = [torch.load(run / "state.pt", weights_only=True) for run in runs]
    for key, value in states[0]["discriminator"].items():
        assert torch.equal(value, states[1]["discriminator"][key]), key
    np.testing.assert_allclose(
        [r["val_rmse"] for r in straight.history], [r["val_rmse"] for r in resumed.history]
    )
    other = TrainConfig(num_residual_blocks=1, batch_size=8, epochs=3, seed=10)
    with pytest.raises(ValueError, match="another configuration"):
        train(*datasets, other, tmp_path / "resumed", progress=False)


def test_divergence_is_reported(datasets, tmp_path):
    config = TrainConfig(num_residual_blocks=1, batch_size=8, epochs=1, adversarial=False)
    x, w1, w2, w3, y = datasets[0].load().tensors()
    y[0, 0, 0, 0] = float("nan")  # a poisoned target
    with pytest.raises(TrainingDiverged, match="generator loss is nan"):
        train(*datasets, config, tmp_path, progress=False)


def test_config_round_trip_and_unknown_options():
    assert TrainConfig.from_dict(json.loads(json.dumps(CONFIG.to_dict()))) == CONFIG
    with pytest.raises(ValueError, match="unknown training options.*'lr'"):
        TrainConfig.from_dict({"lr": 1e-4})
