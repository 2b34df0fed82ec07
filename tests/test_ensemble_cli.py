"""``superresolve --ensemble`` and ``evaluate --ensemble``: real files, bad input nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rioxarray
import torch

from xdeepbedmap.catalog import open_inputs
from xdeepbedmap.cli import main
from xdeepbedmap.ensemble import member_name, write_ensemble
from xdeepbedmap.io import open_layers, open_zarr_output
from xdeepbedmap.model import Generator
from xdeepbedmap.model.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ens") / "ensemble"
    folder.mkdir()
    for k in range(2):
        torch.manual_seed(50 + k)
        save_checkpoint(Generator(num_residual_blocks=1), folder / member_name(k))
    write_ensemble(folder, [{"file": member_name(k), "seed": 50 + k} for k in range(2)])
    return folder


@pytest.fixture(scope="module")
def bbox() -> str:
    """A 24 x 20 base-pixel corner of the demo region."""
    ds = open_inputs("demo")
    left, top = float(ds.x[0]) - 500, float(ds.y[0]) + 500
    return f"{left},{top - 24_000},{left + 20_000},{top}"


def test_superresolve_ensemble_writes_bed_and_std(tmp_path, ensemble, bbox):
    tif, store, png = tmp_path / "bed.tif", tmp_path / "bed.zarr", tmp_path / "cmp.png"
    argv = ["superresolve", "--bbox", bbox, "--ensemble", str(ensemble), "--chunks", "12"]
    argv += ["--halo", "3", "--output", str(tif), "--output", str(store), "--figure", str(png)]
    assert main(argv) == 0
    stored = open_zarr_output(store)
    assert set(stored.data_vars) == {"bed", "bed_std"}
    assert stored.bed.shape == (96, 80) and stored.bed_std.attrs["calibrated"] == 0
    cog = rioxarray.open_rasterio(tif, masked=True)
    assert cog.sizes["band"] == 2 and cog.attrs["long_name"] == ("bed", "bed_std")
    layers = open_layers(tif)
    for name in ("bed", "bed_std"):
        np.testing.assert_array_equal(layers[name].values, stored[name].values)
    assert np.nanmin(stored.bed_std.values) > 0
    assert png.stat().st_size > 10_000


def test_member_files_and_bad_folders(tmp_path, ensemble, bbox, capsys):
    files = [str(ensemble / member_name(k)) for k in range(2)]
    out = tmp_path / "files.zarr"
    argv = ["superresolve", "--bbox", bbox, "--chunks", "12", "--halo", "3"]
    argv += ["--ensemble", files[0], "--ensemble", files[1], "--output", str(out)]
    assert main(argv) == 0
    assert set(open_zarr_output(out).data_vars) == {"bed", "bed_std"}
    # a folder without ensemble.json, and --model with --ensemble: refused, nothing written
    half = tmp_path / "half"
    half.mkdir()
    (half / member_name(0)).write_bytes((ensemble / member_name(0)).read_bytes())
    capsys.readouterr()
    for extra, message in [
        (["--ensemble", str(half)], "no ensemble.json"),
        (["--ensemble", str(tmp_path / "nope")], "ensemble not found"),
        (["--ensemble", str(ensemble), "--model", files[0]], "not both"),
    ]:
        target = tmp_path / "bad.tif"
        assert main(["superresolve", "--bbox", bbox, "--output", str(target), *extra]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error:") and message in err and len(err.splitlines()) == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == ["files.zarr", "half"]


def test_evaluate_ensemble_adds_the_uncertainty_numbers(tmp_path, ensemble):
    report, png = tmp_path / "eval.json", tmp_path / "eval.png"
    argv = ["evaluate", "--synthetic", "42", "--synthetic-shape", "24x24", "--halo", "3"]
    argv += ["--ensemble", str(ensemble), "--json", str(report), "--figure", str(png)]
    assert main(argv) == 0
    table = json.loads(report.read_text())
    assert {"DeepBedMap ensemble", "bicubic"} <= set(table)
    numbers = table["uncertainty"]
    for key in ("coverage_68", "coverage_95", "z_mean", "z_std", "spearman_std_error", "crps"):
        assert np.isfinite(numbers[key])
    assert 0 <= numbers["coverage_68"] <= numbers["coverage_95"] <= 1
    assert len(numbers["reliability"]["nominal"]) == 9
    assert png.stat().st_size > 10_000
    assert (tmp_path / "eval_uncertainty.png").stat().st_size > 10_000


def test_bundled_keyword_reads_the_shipped_ensemble(tmp_path, ensemble, bbox, monkeypatch, capsys):
    import xdeepbedmap.ensemble.inference as ensemble_inference

    argv = ["superresolve", "--bbox", bbox, "--chunks", "12", "--halo", "3"]
    argv += ["--ensemble", "bundled", "--output", str(tmp_path / "b.zarr")]
    monkeypatch.setattr(ensemble_inference, "BUNDLED_ENSEMBLE", tmp_path / "absent")
    assert main(argv) == 1
    assert "make demo-ensemble" in capsys.readouterr().err
    assert not (tmp_path / "b.zarr").exists()
    monkeypatch.setattr(ensemble_inference, "BUNDLED_ENSEMBLE", ensemble)
    assert main(argv) == 0
    assert open_zarr_output(tmp_path / "b.zarr").bed_std.attrs["calibrated"] == 0
