"""Run state: save/load round trip, atomic saves; train() prints only through a callback."""

from __future__ import annotations

import math

import pytest
import torch

from xdeepbedmap.synthetic import make_region
from xdeepbedmap.training.run_state import RunState
from xdeepbedmap.training.tiles import TileDataset, TileLayout, build_tiles
from xdeepbedmap.training.trainer import TrainConfig, format_epoch, print_epoch, train

CONFIG = TrainConfig(num_residual_blocks=1, batch_size=4, epochs=1, seed=3)
CPU = torch.device("cpu")


def stepped_state() -> RunState:
    """A fresh state whose optimisers have taken one step, with some history."""
    state = RunState.start(CONFIG, CPU)
    for net, opt in ((state.generator, state.generator_optimizer),
                     (state.discriminator, state.discriminator_optimizer)):  # fmt: skip
        loss = sum(p.sum() for p in net.parameters())
        loss.backward()
        opt.step()
    state.epochs_done, state.best_rmse, state.since_best = 2, 12.5, 1
    state.history = [{"epoch": 1, "val_rmse": 13.0}, {"epoch": 2, "val_rmse": 12.5}]
    return state


def test_save_then_load_restores_every_part(tmp_path):
    state = stepped_state()
    path = state.save(tmp_path / "state.pt")
    assert path == tmp_path / "state.pt" and not (tmp_path / "state.pt.partial").exists()
    assert torch.load(path, weights_only=True)["epoch"] == 1  # file format: last epoch index
    again = RunState.load(path, CONFIG, CPU)
    assert (again.epochs_done, again.best_rmse, again.since_best) == (2, 12.5, 1)
    assert again.history == state.history
    for mine, theirs in ((state.generator, again.generator),
                         (state.discriminator, again.discriminator)):  # fmt: skip
        for key, value in mine.state_dict().items():
            assert torch.equal(value, theirs.state_dict()[key]), key
    moments = again.generator_optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(moments, state.generator_optimizer.state_dict()["state"][0]["exp_avg"])
    fresh = RunState.start(CONFIG, CPU)
    assert fresh.epochs_done == 0 and fresh.history == [] and math.isinf(fresh.best_rmse)


def test_load_refuses_another_configuration(tmp_path):
    path = stepped_state().save(tmp_path / "state.pt")
    with pytest.raises(ValueError, match="another configuration.*resume=False"):
        RunState.load(path, TrainConfig(num_residual_blocks=1, seed=4), CPU)


def test_a_failed_save_keeps_the_previous_state(tmp_path, monkeypatch):
    path = tmp_path / "state.pt"
    stepped_state().save(path)
    before = path.read_bytes()

    def crash(obj, target):
        with open(target, "wb") as handle:
            handle.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        RunState.start(CONFIG, CPU).save(path)
    assert path.read_bytes() == before and not (tmp_path / "state.pt.partial").exists()


def test_train_prints_only_through_its_callback(tmp_path, capsys):
    tiles = build_tiles([make_region((16, 16), seed=21)], layout=TileLayout(stride=8))
    lazy = TileDataset(tiles)
    result = train(lazy, TileDataset(tiles), CONFIG, tmp_path, progress=False)
    assert capsys.readouterr().out == ""
    assert lazy.loaded  # the trainer asked for the tiles in memory
    row = result.history[0]
    print_epoch(1, row)
    line = capsys.readouterr().out
    assert line == format_epoch(1, row) + "\n"
    assert line.startswith(f"epoch 1: loss {row['generator_loss']:.4g}, val RMSE ")
    assert line.endswith(f"PSNR {row['val_psnr']:.2f} dB, {row['tiles_per_s']:.0f} tiles/s\n")
