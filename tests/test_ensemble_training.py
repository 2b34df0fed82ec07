"""Deep ensembles: member-by-member training that resumes, and the calibration of the spread."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from xdeepbedmap.ensemble import EnsembleError, member_name, read_ensemble
from xdeepbedmap.ensemble.calibration import calibrate_on_tiles, fit_std_scale, spread_on_tiles
from xdeepbedmap.model import Generator, read_checkpoint_metadata
from xdeepbedmap.synthetic import make_region
from xdeepbedmap.training.ensemble import OPTIONS_FILE, bootstrap_indices, train_ensemble
from xdeepbedmap.training.tiles import TileDataset, TileLayout, build_tiles, split_tiles
from xdeepbedmap.training.trainer import TrainConfig

CONFIG = TrainConfig(
    num_residual_blocks=1, batch_size=8, epochs=1, learning_rate=1e-3, seed=3, adversarial=False
)


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def tiles():
    return build_tiles([make_region((24, 24), seed=21)], layout=TileLayout(stride=8))


@pytest.fixture(scope="module")
def split(tiles):
    train_idx, val_idx = split_tiles(tiles.sizes["tile"], 0.2, seed=0)
    return train_idx[:8], val_idx[:4]


def _datasets(tiles, split):
    return TileDataset(tiles, split[0]), TileDataset(tiles, split[1])


def _random_members(count):
    members = []
    for k in range(count):
        torch.manual_seed(100 + k)
        members.append(Generator(num_residual_blocks=1).eval())
    return members


def test_fit_std_scale_matches_the_formula_and_gives_unit_variance():
    rng = np.random.default_rng(0)
    stds = rng.uniform(0.5, 3.0, size=(4, 1, 9, 9))
    errors = 2.5 * stds * rng.standard_normal(stds.shape)  # spread 2.5x too small
    stds[0, 0, 0, :3] = 0.0  # no spread: left out, never a division by zero
    scale = fit_std_scale(errors, stds, method="variance")
    used = stds > 0
    assert scale == pytest.approx(np.sqrt(np.mean((errors[used] / stds[used]) ** 2)), rel=1e-12)
    assert scale == pytest.approx(2.5, rel=0.1)
    z = errors[used] / (scale * stds[used])
    assert np.mean(z**2) == pytest.approx(1.0, rel=1e-12)
    assert np.var(z) == pytest.approx(1.0, abs=0.05)  # unbiased errors: the same variance
    # Gaussian errors: the coverage rule finds about the same factor
    assert fit_std_scale(errors, stds) == pytest.approx(scale, rel=0.1)
    with pytest.raises(EnsembleError, match="method must be one of"):
        fit_std_scale(errors, stds, method="mad")
    with pytest.raises(EnsembleError, match="positive member spread"):
        fit_std_scale(errors, np.zeros_like(stds))
    with pytest.raises(EnsembleError, match=r"shape \(4, 1, 9, 9\).*\(3,\)"):
        fit_std_scale(errors, np.ones(3))


def test_coverage_rule_fits_the_central_intervals_of_heavy_tailed_errors():
    """Laplace errors: unit variance makes the 68% interval hold ~76%; coverage holds ~68%."""
    rng = np.random.default_rng(1)
    stds = rng.uniform(0.5, 3.0, size=200_000)
    errors = 4.0 * stds * rng.laplace(size=stds.shape)
    share = {}
    for method in ("variance", "coverage"):
        scale = fit_std_scale(errors, stds, method=method)
        z = np.abs(errors / (scale * stds))
        share[method] = (np.mean(z <= 1.0), np.mean(z <= 1.96))
    assert share["variance"][0] > 0.74  # too wide in the middle
    assert abs(share["coverage"][0] - 0.683) < abs(share["variance"][0] - 0.683)
    assert abs(share["coverage"][0] - 0.683) < 0.04 and share["coverage"][1] > 0.85


def test_calibration_uses_the_validation_tiles_only(tiles, split):
    members = _random_members(2)
    val = TileDataset(tiles, split[1])
    calibration = calibrate_on_tiles(members, val, method="coverage", device="cpu")
    errors, stds = spread_on_tiles(members, val, device="cpu")
    assert calibration.std_scale == pytest.approx(fit_std_scale(errors, stds), rel=1e-12)
    assert calibration.n_pixels == errors.size == 4 * 36 * 36
    # the training tiles replaced by another region's: the same factor
    other = make_region((24, 24), seed=77)
    swapped = tiles.copy(deep=True)
    replacement = build_tiles([other], layout=TileLayout(stride=8))
    for name in ("x", "w1", "w2", "w3", "y"):
        swapped[name][split[0]] = replacement[name].values[split[0]]
    assert not np.array_equal(swapped["y"].values, tiles["y"].values)
    again = calibrate_on_tiles(
        members, TileDataset(swapped, split[1]), method="coverage", device="cpu"
    )
    assert again.std_scale == calibration.std_scale
    # the default, three-factor fit likewise
    fitted = calibrate_on_tiles(members, val, device="cpu")
    assert fitted == calibrate_on_tiles(members, TileDataset(swapped, split[1]), device="cpu")
    # while other validation tiles do change it (the test could fail)
    moved = TileDataset(tiles, split[0][:4])
    assert (
        calibrate_on_tiles(members, moved, method="coverage", device="cpu").std_scale
        != calibration.std_scale
    )
    assert calibrate_on_tiles(members, moved, device="cpu") != fitted
    with pytest.raises(EnsembleError, match="at least 2 members, got 1"):
        calibrate_on_tiles(members[:1], val, device="cpu")


def test_bootstrap_is_drawn_from_the_seed_and_repeats_tiles():
    draw = bootstrap_indices(50, seed=4)
    assert np.array_equal(draw, bootstrap_indices(50, seed=4))
    assert not np.array_equal(draw, bootstrap_indices(50, seed=5))
    assert len(draw) == 50 and draw.min() >= 0 and draw.max() < 50
    assert len(np.unique(draw)) < 50  # with replacement


def test_subset_keeps_loaded_and_lazy_tiles_alike(tiles, split):
    lazy = TileDataset(tiles, split[0])
    loaded = TileDataset(tiles, split[0]).load()
    positions = np.array([0, 0, 5, 7])
    a, b = lazy.subset(positions), loaded.subset(positions)
    assert b.loaded and not a.loaded
    np.testing.assert_array_equal(a.indices, split[0][positions])
    for x, y in zip(a.load().tensors(), b.tensors(), strict=True):
        assert torch.equal(x, y)
    with pytest.raises(IndexError, match=r"\[0, 8\), got 0..8"):
        loaded.subset(np.array([0, 8]))


def test_ensemble_trains_resumes_member_by_member_and_refuses_other_options(tiles, split, tmp_path):
    folder = tmp_path / "ens"
    seen = []

    def stop_in_member_1(epoch, row):
        seen.append(epoch)
        if len(seen) == 2:  # the first epoch of member 1 is done, its state saved
            raise Interrupt

    with pytest.raises(Interrupt):
        train_ensemble(*_datasets(tiles, split), CONFIG, folder, 2, storage="float16",
                       progress=False, device="cpu", on_epoch=stop_in_member_1)  # fmt: skip
    assert (folder / member_name(0)).exists() and not (folder / member_name(1)).exists()
    assert (folder / "runs" / "member_01" / "state.pt").exists()  # member 1 resumes from it
    with pytest.raises(EnsembleError, match="no ensemble.json"):
        read_ensemble(folder)  # incomplete: no manifest yet
    finished = []
    result = train_ensemble(*_datasets(tiles, split), CONFIG, folder, 2, storage="float16",
                            progress=False, device="cpu", on_member=finished.append)  # fmt: skip
    assert [m.skipped for m in finished] == [True, False]
    assert [m.seed for m in finished] == [3, 4]
    ensemble = read_ensemble(folder)
    assert len(ensemble.members) == 2 and ensemble.std_scale == result.calibration.std_scale
    assert result.calibration.n_pixels == 4 * 36 * 36
    val = TileDataset(tiles, split[1])
    refit = calibrate_on_tiles([folder / member_name(k) for k in range(2)], val, device="cpu")
    assert refit.std_scale == pytest.approx(ensemble.std_scale, rel=1e-9)
    meta = read_checkpoint_metadata(folder / member_name(1))["metadata"]
    assert meta["training"]["seed"] == 4 and meta["ensemble_member"]["bootstrap"] is True
    size16 = (folder / member_name(0)).stat().st_size
    assert size16 < 0.6 * (folder / "runs" / "member_00" / "best.safetensors").stat().st_size
    manifest = json.loads((folder / "ensemble.json").read_text())
    assert [m["seed"] for m in manifest["members"]] == [3, 4]
    # a rerun of the complete ensemble trains nothing
    again = train_ensemble(*_datasets(tiles, split), CONFIG, folder, 2, storage="float16",
                           progress=False, device="cpu")  # fmt: skip
    assert all(m.skipped for m in again.members) and again.calibration == result.calibration
    # other options are refused before any work, naming the option
    stamp = (folder / "ensemble.json").stat().st_mtime_ns
    other = TrainConfig(**{**CONFIG.to_dict(), "adam_betas": (0.9, 0.99), "learning_rate": 2e-3})
    with pytest.raises(EnsembleError, match=r"config\.learning_rate \(folder: 0\.001, now: 0\.002"):
        train_ensemble(*_datasets(tiles, split), other, folder, 2, storage="float16",
                       progress=False, device="cpu")  # fmt: skip
    with pytest.raises(EnsembleError, match=r"bootstrap \(folder: True, now: False\)"):
        train_ensemble(*_datasets(tiles, split), CONFIG, folder, 2, bootstrap=False,
                       storage="float16", progress=False, device="cpu")  # fmt: skip
    assert (folder / "ensemble.json").stat().st_mtime_ns == stamp
    assert json.loads((folder / OPTIONS_FILE).read_text())["config"]["learning_rate"] == 1e-3


def test_one_member_is_refused_before_any_work(tiles, split, tmp_path):
    with pytest.raises(EnsembleError, match="members must be >= 2"):
        train_ensemble(*_datasets(tiles, split), CONFIG, tmp_path / "e", 1, device="cpu")
    assert not (tmp_path / "e").exists()


TRAIN = ["train", "--synthetic", "21", "--synthetic-shape", "16x16", "--blocks", "1"]
TRAIN += ["--epochs", "1", "--no-adversarial", "--batch-size", "8", "--stride", "8"]
TRAIN += ["--validation-fraction", "0.2", "--device", "cpu", "--members", "2", "--half"]


def test_cli_trains_a_calibrated_ensemble_and_resumes(tmp_path, capsys):
    from xdeepbedmap.cli import main

    folder = tmp_path / "ens"
    assert main([*TRAIN, "--output", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "member 1/2: epoch 1:" in out and "member 2/2 (seed 1): trained in" in out
    assert "calibrated: bed_std = sqrt(" in out and "validation tiles held out" in out
    ensemble = read_ensemble(folder)
    assert len(ensemble.members) == 2 and ensemble.std_scale > 0
    assert (folder / "runs" / "member_01" / "metrics.csv").exists()
    assert main([*TRAIN, "--output", str(folder)]) == 0
    assert capsys.readouterr().out.count("already trained") == 2
    assert main([*TRAIN, "--output", str(folder), "--no-bootstrap"]) == 1
    assert "bootstrap (folder: True, now: False)" in capsys.readouterr().err
    assert main([*TRAIN, "--output", str(tmp_path / "e.safetensors")]) == 1
    assert "ensemble folder" in capsys.readouterr().err
    assert not (tmp_path / "e.safetensors").exists()

    # refit on held-out regions: not on the training seeds, nor on another world
    calibrate = ["calibrate", "--ensemble", str(folder), "--synthetic-shape", "16x16"]
    calibrate += ["--device", "cpu"]
    manifest = (folder / "ensemble.json").read_text()
    assert main([*calibrate, "--synthetic", "20-21"]) == 1
    assert "trained on seeds 21" in capsys.readouterr().err
    assert main([*calibrate, "--synthetic", "23", "--synthetic-world", "v2"]) == 1
    assert "trained on world v1" in capsys.readouterr().err
    assert (folder / "ensemble.json").read_text() == manifest  # refused: nothing written
    assert main([*calibrate, "--synthetic", "23"]) == 0
    assert "bed_std = " in capsys.readouterr().out
    recalibrated = read_ensemble(folder)
    assert "synthetic seeds 23" in recalibrated.calibration.fitted_on
    assert recalibrated.members == ensemble.members


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_ensemble_from_the_best_trials_of_a_study(tiles, tmp_path, capsys):
    import optuna

    from xdeepbedmap.cli import main
    from xdeepbedmap.model.checkpoint import save_checkpoint
    from xdeepbedmap.training.study import open_storage

    run_root, db = tmp_path / "tune", tmp_path / "tune.db"
    cache = build_tiles([make_region((24, 24), seed=21)], store=run_root / "s-tiles.zarr",
                        layout=TileLayout(stride=8))  # fmt: skip
    study = optuna.create_study(study_name="s", storage=open_storage(db), direction="minimize")
    for number, (value, generator) in enumerate(
        zip([30.0, 10.0, 20.0], _random_members(3), strict=True)
    ):
        path = tmp_path / f"trial-{number}.safetensors"
        save_checkpoint(generator, path, training={"seed": 0}, epoch=2, metrics={"val_rmse": 5.0})
        study.add_trial(
            optuna.trial.create_trial(value=value, user_attrs={"checkpoint": str(path)})
        )
    argv = ["ensemble", "--from-study", str(db), "--study", "s", "--run-root", str(run_root)]
    argv += ["--validation-fraction", "0.2", "--device", "cpu", "--output", str(tmp_path / "e")]
    assert main([*argv, "--top", "4"]) == 1
    assert "has 3 completed trial(s) with a checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()
    assert main([*argv, "--top", "2"]) == 0
    assert "calibrated: bed_std = sqrt(" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "e" / "ensemble.json").read_text())
    assert [m["training"]["trial"] for m in manifest["members"]] == [1, 2]  # lowest RMSE first
    _, val_idx = split_tiles(cache.sizes["tile"], 0.2, seed=0)
    refit = calibrate_on_tiles(_random_members(3)[1:], TileDataset(cache, val_idx), device="cpu")
    assert read_ensemble(tmp_path / "e").std_scale == pytest.approx(refit.std_scale, rel=1e-9)
    assert main([*argv, "--top", "2"]) == 1  # a complete ensemble is not replaced silently
    assert "--overwrite" in capsys.readouterr().err
