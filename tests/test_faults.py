"""The reliability contract, one case per row: bad files, bad options, interruptions.

Each test states the good behaviour for one way a careful user breaks things:
refused with a message that names what was wrong, before anything is written;
or a result equal to the uninterrupted one. ``docs/reliability.md`` states the
contract these tests check.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from xdeepbedmap.atomic import partial_path
from xdeepbedmap.baselines import bicubic
from xdeepbedmap.catalog import SHIPPED_CATALOGS, open_inputs
from xdeepbedmap.cli import main
from xdeepbedmap.inference import superresolve
from xdeepbedmap.io import (
    OutputLockedError,
    ResumeMismatchError,
    check_outputs,
    open_output,
    to_cog,
    to_zarr,
    write_outputs,
)
from xdeepbedmap.io.lock import lock_path
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
from xdeepbedmap.plot import plot_comparison
from xdeepbedmap.training.config import TrainConfig
from xdeepbedmap.training.run_state import RunState, RunStateError
from xdeepbedmap.training.study import open_study

from .test_io import lazy_field
from .test_tune import cli_args, finished_trials


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


# -- resumable outputs: what wrote them, who writes them, what an overwrite keeps ------

TESTS_DIR = Path(__file__).parent


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    """Two different 1-block checkpoints."""
    folder = tmp_path_factory.mktemp("models")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(save_checkpoint(Generator(num_residual_blocks=1), folder / f"m{seed}.st"))
    return paths[0], paths[1]


@pytest.fixture(scope="module")
def corner() -> tuple[float, float, float, float]:
    """A 16 x 16 base-pixel corner of the demo region (16 chunks of 4 x 4)."""
    ds = open_inputs("demo")
    left, top = float(ds.x[0]) - 500, float(ds.y[0]) + 500
    return (left, top - 16_000, left + 16_000, top)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 180) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds (it must still be running then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not ready():
        assert proc.poll() is None, "the writer finished before it could be killed"
        time.sleep(0.05)
    assert ready(), "the writer never got far enough"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def done_chunks(store: Path) -> int:
    markers = partial_path(store) / ".xdeepbedmap-done"
    try:
        return len([p for p in markers.iterdir() if p.name != "spec.json"])
    except FileNotFoundError:
        return 0


def start(script: str, **values) -> subprocess.Popen:
    code = textwrap.dedent(script).format(tests=str(TESTS_DIR), **values)
    return subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())


SLOW_SUPERRESOLVE = """
    import time, dask
    from xdeepbedmap.catalog import open_inputs
    from xdeepbedmap.inference import superresolve
    from xdeepbedmap.io import write_outputs
    ds = open_inputs("demo", region={bbox!r}, chunks=4)
    bed = superresolve(ds, {model!r}, halo=2, device="cpu")
    with dask.config.set(scheduler="synchronous"):
        write_outputs(bed, [{store!r}], inputs=ds, progress=lambda d, t: time.sleep(0.4))
"""


def superresolve_argv(corner, model, store, *extra) -> list[str]:
    bbox = ",".join(map(str, corner))
    argv = ["superresolve", f"--bbox={bbox}", "--model", str(model), "--chunks", "4"]
    return argv + ["--halo", "2", "--device", "cpu", "--output", str(store), *extra]


#: Every computing process alike: torch's float rounding depends on its thread count and
#: on concurrent calls (~1e-9 differences seen otherwise), bit-identity is asked for here.
SAME_ROUNDING = {**os.environ, "OMP_NUM_THREADS": "2", "DASK_NUM_WORKERS": "1"}


def cli(argv: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "xdeepbedmap.cli", *argv]
    return subprocess.run(command, env=SAME_ROUNDING, capture_output=True, text=True)


def test_killed_write_resumes_only_the_same_computation(tmp_path, models, corner, capsys):
    store = tmp_path / "bed.zarr"
    code = textwrap.dedent(SLOW_SUPERRESOLVE).format(
        bbox=corner, model=str(models[0]), store=str(store)
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env=SAME_ROUNDING)
    kill_when(proc, lambda: done_chunks(store) >= 2)
    done = done_chunks(store)
    assert 2 <= done < 16 and not store.exists()

    # another model, or another halo: refused, naming what differs and how to start over
    assert main(superresolve_argv(corner, models[1], store)) == 1
    err = capsys.readouterr().err
    assert "does not match" in err and "model_sha256: was" in err and "--restart" in err
    halo_3 = superresolve_argv(corner, models[0], store)
    halo_3[halo_3.index("--halo") + 1] = "3"
    assert main(halo_3) == 1
    assert "halo_base_px: was 2, now 3" in capsys.readouterr().err
    assert done_chunks(store) == done  # refusals touch nothing

    # the same computation resumes (in another process: the inputs' token is stable)
    resumed = cli(superresolve_argv(corner, models[0], store))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming the interrupted write" in resumed.stdout
    fresh = tmp_path / "fresh.zarr"
    assert cli(superresolve_argv(corner, models[0], fresh)).returncode == 0
    resumed, uninterrupted = open_output(store), open_output(fresh)
    np.testing.assert_array_equal(resumed.values, uninterrupted.values)
    assert resumed.attrs["model_sha256"] == uninterrupted.attrs["model_sha256"]


def interrupted(bed, store: Path, inputs=None) -> None:
    def stop(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        to_zarr(bed, store, progress=stop, inputs=inputs)


def test_resume_from_changed_input_files_is_refused_and_restart_starts_over(
    tmp_path, models, corner
):
    shutil.copytree(SHIPPED_CATALOGS / "demo", tmp_path / "demo")
    shutil.copy(SHIPPED_CATALOGS / "demo.yaml", tmp_path / "demo.yaml")
    catalog, store = tmp_path / "demo.yaml", tmp_path / "bed.zarr"

    def run(model):
        ds = open_inputs(catalog, region=corner, chunks=4)
        return ds, superresolve(ds, model, halo=2, device="cpu")

    ds, bed = run(models[0])
    interrupted(bed, store, inputs=ds)
    os.utime(tmp_path / "demo" / "surface.tif")  # the input file changed since
    ds, bed = run(models[0])
    with pytest.raises(ResumeMismatchError, match="inputs token: was"):
        to_zarr(bed, store, inputs=ds)
    ds, other = run(models[1])
    written = to_zarr(other, store, inputs=ds, restart=True)
    assert open_output(written).attrs["model_sha256"] == other.attrs["model_sha256"]
    np.testing.assert_array_equal(open_output(written).values, other.values)


OVERWRITER = """
    import sys, time
    import dask
    sys.path.insert(0, {tests!r})
    from test_io import lazy_field
    from xdeepbedmap.io import to_cog, to_zarr

    class Slow(list):
        def append(self, item):
            time.sleep(0.4)  # slow enough to be killed mid-way
            super().append(item)

    with dask.config.set(scheduler="synchronous"):
        {writer}(lazy_field(Slow()), {path!r}, overwrite=True)
"""


def test_killed_zarr_overwrite_keeps_the_old_store(tmp_path):
    store = tmp_path / "bed.zarr"
    old = lazy_field() + 1000.0
    to_zarr(old.rename("bed"), store)
    kill_when(start(OVERWRITER, writer="to_zarr", path=str(store)), lambda: done_chunks(store) >= 3)
    np.testing.assert_array_equal(open_output(store).values, old.values)  # intact, complete
    to_zarr(lazy_field(), store, overwrite=True)  # resumes the replacement
    np.testing.assert_array_equal(open_output(store).values, lazy_field().values)
    assert not partial_path(store).exists() and not lock_path(store).exists()


def test_killed_cog_overwrite_keeps_the_old_file_and_leaves_no_geotiff_beside_it(tmp_path):
    path = tmp_path / "bed.tif"
    to_cog(lazy_field() + 1000.0, path)
    before = path.read_bytes()
    work = partial_path(path)
    kill_when(
        start(OVERWRITER, writer="to_cog", path=str(path)),
        lambda: work.is_dir() and any(work.iterdir()),
    )
    assert path.read_bytes() == before
    beside = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    # no bed.tif.staging.tif that opens as a GeoTIFF; the lock is released by the system
    assert beside == ["bed.tif", "bed.tif.lock"]
    to_cog(lazy_field(), path, overwrite=True)  # the next write clears the leftovers
    np.testing.assert_array_equal(open_output(path).values, lazy_field().values)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bed.tif"]


def test_the_same_output_twice_is_refused_before_anything_runs(
    tmp_path, models, corner, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    argv = superresolve_argv(corner, models[0], "a.zarr", "--output", "./a.zarr")
    assert main(argv) == 1
    assert "given twice" in capsys.readouterr().err
    with pytest.raises(ValueError, match="given twice"):
        check_outputs([tmp_path / "b.tif", tmp_path / "sub" / ".." / "b.tif"])
    assert sorted(p.name for p in tmp_path.iterdir()) == []


WRITER = """
    import sys, time
    import dask
    sys.path.insert(0, {tests!r})
    from test_io import lazy_field
    from xdeepbedmap.io import to_zarr

    class Slow(list):
        def append(self, item):
            time.sleep(0.4)
            super().append(item)

    with dask.config.set(scheduler="synchronous"):
        to_zarr(lazy_field(Slow()), {path!r})
"""


def test_a_second_writer_is_refused_and_a_crashed_ones_lock_recovers(tmp_path):
    store = tmp_path / "bed.zarr"
    proc = start(WRITER, path=str(store))
    deadline = time.monotonic() + 120
    while done_chunks(store) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(OutputLockedError, match=f"being written by process {proc.pid} "):
        to_zarr(lazy_field(), store)
    with pytest.raises(OutputLockedError, match="bed.zarr"):
        write_outputs(lazy_field(), [tmp_path / "other.tif", store])
    assert not (tmp_path / "other.tif").exists()
    kill_when(proc, lambda: True)
    assert lock_path(store).exists()  # left by the crash, released by the system
    to_zarr(lazy_field(), store)  # no manual cleanup
    np.testing.assert_array_equal(open_output(store).values, lazy_field().values)


# -- options and commands ---------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["superresolve", "--output", "x.zarr", "--batch-size", "-1"],
        ["superresolve", "--output", "x.zarr", "--batch-size", "0"],
        ["superresolve", "--output", "x.zarr", "--chunks", "0"],
        ["superresolve", "--output", "x.zarr", "--halo", "-1"],
        ["superresolve", "--output", "x.zarr", "--window", "0"],
        ["info", "--window", "0"],
        ["info", "--window", "2"],
        ["train", "--output", "m.safetensors", "--synthetic", "1", "--synthetic-shape", "0x0"],
        ["train", "--output", "m.safetensors", "--epochs", "0"],
        ["train", "--output", "m.safetensors", "--learning-rate", "nan"],
        ["train", "--output", "m.safetensors", "--validation-fraction", "1"],
        ["tune", "--trials", "0"],
        ["tune", "--workers", "0"],
    ],
    ids=lambda argv: " ".join(argv[-2:]),
)
def test_numeric_options_are_refused_when_parsed(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "must be" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_numeric_arguments_are_refused_in_python_too(models):
    ds = open_inputs("demo")
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        superresolve(ds, models[0], batch_size=0, device="cpu")
    with pytest.raises(ValueError, match="chunks must be positive"):
        superresolve(ds, models[0], chunks=0, device="cpu")
    with pytest.raises(ValueError, match=r"TrainConfig.epochs must be >= 1, got 0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="on CPU use dtype='mixed'") as refused:
        superresolve(ds, models[0], dtype="float16", device="cpu")
    # plain bfloat16 (47 m RMS on CPU) is never recommended; the mixed path is 0.6 m
    assert "dtype='bfloat16'" not in str(refused.value)


def test_chunks_of_one_work_with_the_bicubic_baseline_and_figure(tmp_path, models, corner):
    ds = open_inputs("demo", region=corner)
    np.testing.assert_array_equal(
        bicubic(ds.chunk({"y": 1, "x": 1})).values, bicubic(ds.chunk({"y": 2, "x": 2})).values
    )
    # the network at one base pixel per chunk on 8 x 8 base px; without the
    # catalog's margin (with it: 32 x 32 one-pixel chunks, minutes of graph work)
    bbox = (corner[0], corner[3] - 8000, corner[0] + 8000, corner[3])
    small = open_inputs("demo", region=bbox, margin=0)
    ones = superresolve(small, models[0], chunks=1, halo=1, device="cpu")
    whole = superresolve(small, models[0], halo=1, device="cpu")
    assert ones.shape == whole.shape == (32, 32) and np.isfinite(ones.values).all()
    figure = tmp_path / "f.png"
    plot_comparison(small, {"bicubic": bicubic(small), "DeepBedMap": ones}, None, figure)
    assert figure.stat().st_size > 10_000


def test_convert_weights_refuses_an_existing_output(tmp_path, reference_weights, capsys):
    out = tmp_path / "ref.safetensors"
    out.write_bytes(b"keep me")
    assert main(["convert-weights", str(reference_weights), str(out)]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert main(["convert-weights", str(reference_weights), str(out), "--overwrite"]) == 0
    assert load_checkpoint(out).num_residual_blocks == 3


def test_malformed_catalog_yaml_names_the_file(tmp_path, capsys):
    bad = tmp_path / "broken.yaml"
    bad.write_text("metadata:\n  inputs: [\n  bad: : :\n")
    assert main(["superresolve", "--catalog", str(bad), "--output", str(tmp_path / "a.zarr")]) == 1
    err = capsys.readouterr().err
    assert f"catalog {bad} is not valid YAML" in err and f"in {bad}, line 3" in err
    assert "<unicode string>" not in err and not (tmp_path / "a.zarr").exists()


# -- training and tuning ----------------------------------------------------------------

TRAIN = ["train", "--synthetic", "21", "--synthetic-shape", "16x16", "--blocks", "1"]
TRAIN += ["--epochs", "1", "--no-adversarial", "--batch-size", "8", "--stride", "8"]
TRAIN += ["--validation-fraction", "0.2", "--device", "cpu"]


def test_a_damaged_best_checkpoint_is_never_published(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*TRAIN, "--run-dir", str(run), "--output", str(tmp_path / "a.safetensors")]) == 0
    best = run / "best.safetensors"
    best.write_bytes(best.read_bytes()[:-1000])  # truncated after the run finished
    out = tmp_path / "b.safetensors"
    assert main([*TRAIN, "--run-dir", str(run), "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert "best.safetensors" in err and "--restart" in err
    assert not out.exists()


@pytest.mark.parametrize("content", ["truncated", "foreign"])
def test_a_damaged_training_state_names_the_file_and_restart(tmp_path, content):
    path = tmp_path / "state.pt"
    if content == "truncated":
        RunState.start(TrainConfig(num_residual_blocks=1), torch.device("cpu")).save(path)
        path.write_bytes(path.read_bytes()[:5000])
    else:
        torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(RunStateError) as refused:
        RunState.load(path, TrainConfig(num_residual_blocks=1), torch.device("cpu"))
    message = str(refused.value)
    assert str(path) in message and "corrupt" in message and "--restart" in message
    assert "weights_only" not in message


def test_tune_storage_in_a_missing_folder_names_the_path(tmp_path):
    db = tmp_path / "missing" / "study.db"
    with pytest.raises(FileNotFoundError, match=f"folder {tmp_path / 'missing'} does not exist"):
        open_study("s", db)
    assert not (tmp_path / "missing").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_tune_storage_in_a_read_only_folder_names_the_path(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    with pytest.raises(PermissionError, match=str(folder)):
        open_study("s", folder / "study.db")


def test_two_tune_commands_share_a_new_study_and_run_root(tmp_path):
    # both race to create the database's tables and the run root's tile cache
    storage, run_root = tmp_path / "study.db", tmp_path / "runs"
    procs = [
        subprocess.Popen(cli_args(storage, run_root, trials=2), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    errors = [proc.communicate(timeout=600)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], errors
    assert len(finished_trials(storage)) >= 2
