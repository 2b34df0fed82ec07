"""Optuna tuning: TPE + Hyperband prune trials, studies persist, resume and are shared."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy.exc import OperationalError

from xdeepbedmap.synthetic import make_region
from xdeepbedmap.training.study import open_storage
from xdeepbedmap.training.tiles import TileDataset, TileLayout, build_tiles, split_tiles
from xdeepbedmap.training.trainer import TrainConfig
from xdeepbedmap.training.tune import (
    SearchSpace,
    TuneJob,
    export_best,
    make_objective,
    open_study,
    run_study,
    run_workers,
)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
TINY_SEARCH = ["learning_rate=1e-5:3e-2", "num_residual_blocks=1:1", "batch_size=8",
               "epochs=1:4"]  # fmt: skip


def cli_args(storage, run_root, trials, workers=1):
    args = [sys.executable, "-m", "xdeepbedmap.cli", "tune", "--synthetic", "21",
            "--synthetic-shape", "24x24", "--holdout-seed", "22", "--stride", "8",
            "--validation-fraction", "0.2", "--no-adversarial", "--startup-trials", "3",
            "--study", "tiny", "--storage", str(storage), "--trials", str(trials),
            "--workers", str(workers), "--threads", "1", "--heartbeat", "1",
            "--run-root", str(run_root)]  # fmt: skip
    for override in TINY_SEARCH:
        args += ["--search", override]
    return args


def finished_trials(storage):
    # open_storage: a bare URL would race the child creating the tables and fail it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.load_study(study_name="tiny", storage=open_storage(storage))
    return study.get_trials(deepcopy=False, states=FINISHED)


def test_search_space_overrides():
    space = SearchSpace().with_overrides(["epochs=2:5", "batch_size=8,16"])
    assert space.epochs == (2, 5) and space.batch_size == (8, 16)
    assert space.learning_rate == (1e-4, 2e-4)  # the paper's range stays
    with pytest.raises(ValueError, match="unknown search parameter 'depth'"):
        SearchSpace().with_overrides(["depth=1:2"])
    with pytest.raises(ValueError, match="epochs=low:high"):
        SearchSpace().with_overrides(["epochs=9:2"])


def test_run_workers_needs_a_worker(tmp_path):
    job = TuneJob("tiny", str(tmp_path / "study.db"), str(tmp_path / "tiles.zarr"),
                  make_region((16, 16), seed=22), n_trials=1)  # fmt: skip
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        run_workers(job, workers=0)
    assert list(tmp_path.iterdir()) == []  # refused before the study was created


def _tiny_objective(tmp_path, search, n_train, n_val):
    """The objective of a tiny study: tiles of one 24 km region, a 16 km holdout."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tiles = build_tiles([make_region((24, 24), seed=21)], layout=TileLayout(stride=8))
    train_idx, val_idx = split_tiles(tiles.sizes["tile"], 0.2, seed=0)
    return make_objective(
        TileDataset(tiles, train_idx[:n_train]),
        TileDataset(tiles, val_idx[:n_val]),
        make_region((16, 16), seed=22),
        SearchSpace().with_overrides(search),
        TrainConfig(adversarial=False),
        tmp_path / "runs",
    )


def test_tiny_study_prunes_and_finds_a_best_trial(tmp_path):
    objective = _tiny_objective(tmp_path, TINY_SEARCH, n_train=16, n_val=4)
    storage = tmp_path / "study.db"
    study = open_study("tiny", storage, n_startup_trials=3, max_epochs=4, seed=1)
    run_study(study, objective, n_trials=10)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states.count(TrialState.PRUNED) >= 1
    assert states.count(TrialState.COMPLETE) >= 1
    best = study.best_trial
    assert best.value > 0 and best.user_attrs["bicubic_rmse"] > 0
    assert set(best.params) == {"learning_rate", "num_residual_blocks", "batch_size", "epochs",
                                "residual_scaling"}  # fmt: skip
    exported = export_best(study, tmp_path / "best.safetensors")
    from xdeepbedmap.model.checkpoint import read_checkpoint_metadata

    meta = read_checkpoint_metadata(exported)
    assert meta["hyperparameters"]["residual_scaling"] == pytest.approx(
        best.params["residual_scaling"]
    )
    # the storage is a real SQLite file that another process could open
    assert storage.stat().st_size > 0
    run_study(study, objective, n_trials=10)  # budget reached: no new trial
    assert len(study.get_trials(deepcopy=False, states=FINISHED)) == 10


def test_a_checkpoint_whose_output_is_not_a_bed_prunes_the_trial(tmp_path, monkeypatch):
    """A trial whose best model returns absurd elevations is pruned, not a crashed worker."""
    import xdeepbedmap.training.tune as tune
    from xdeepbedmap.output_checks import NetworkOutputError

    def absurd(*_args, **_kwargs):
        raise NetworkOutputError("returned |value| up to 4.57e+05 m")

    monkeypatch.setattr(tune, "_score", absurd)
    objective = _tiny_objective(tmp_path, [*TINY_SEARCH[:3], "epochs=1:1"], n_train=8, n_val=2)
    study = open_study("absurd", tmp_path / "study.db", n_startup_trials=3, max_epochs=1, seed=1)
    run_study(study, objective, n_trials=1)
    assert [t.state for t in study.get_trials(deepcopy=False)] == [TrialState.PRUNED]


def test_killed_study_resumes_without_losing_trials(tmp_path):
    storage, run_root = tmp_path / "study.db", tmp_path / "runs"
    proc = subprocess.Popen(cli_args(storage, run_root, trials=8), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=os.environ.copy())  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if storage.exists():
            try:
                if len(finished_trials(storage)) >= 2:
                    break
            except (KeyError, optuna.exceptions.StorageInternalError, OperationalError):
                pass  # study (or its tables) not created yet: the child is still creating them
        assert proc.poll() is None, "the study finished before it could be killed"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {t.number: (t.state, t.value) for t in finished_trials(storage)}
    assert 2 <= len(before) < 8
    time.sleep(2.5)  # let the killed trial's heartbeat go stale

    assert (
        subprocess.run(cli_args(storage, run_root, trials=8), capture_output=True).returncode == 0
    )
    after = {t.number: (t.state, t.value) for t in finished_trials(storage)}
    assert len(after) == 8
    assert all(after[n] == before[n] for n in before)  # nothing lost or redone


def test_two_processes_share_one_study(tmp_path):
    storage = tmp_path / "study.db"
    done = subprocess.run(cli_args(storage, tmp_path / "runs", trials=4, workers=2),
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "best trial #" in done.stdout and "optuna-dashboard sqlite:///" in done.stdout
    trials = finished_trials(storage)
    assert len(trials) >= 4
    assert len({t.user_attrs["pid"] for t in trials}) == 2
