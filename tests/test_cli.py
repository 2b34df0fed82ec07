"""The ``xdeepbedmap`` command: happy paths write real files, bad input writes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import rioxarray
import torch

from xdeepbedmap.catalog import open_inputs
from xdeepbedmap.cli import main
from xdeepbedmap.io import open_zarr_output
from xdeepbedmap.model import Generator
from xdeepbedmap.model.checkpoint import read_checkpoint_metadata, save_checkpoint
from xdeepbedmap.synthetic import training_regions
from xdeepbedmap.training.tiles import TileLayout, build_tiles


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return save_checkpoint(Generator(num_residual_blocks=1), path, note="test model")


@pytest.fixture(scope="module")
def bbox() -> str:
    """A 24 x 20 base-pixel corner of the demo region."""
    ds = open_inputs("demo")
    left, top = float(ds.x[0]) - 500, float(ds.y[0]) + 500
    return f"{left},{top - 24_000},{left + 20_000},{top}"


def test_superresolve_writes_cog_zarr_and_figure(tmp_path, checkpoint, bbox, capsys):
    tif, store, png = tmp_path / "bed.tif", tmp_path / "bed.zarr", tmp_path / "cmp.png"
    argv = ["superresolve", "--bbox", bbox, "--model", str(checkpoint), "--chunks", "12"]
    argv += ["--halo", "3", "--output", str(tif), "--output", str(store)]
    argv += ["--figure", str(png), "--truth"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "24 x 20 base px (96 x 80 output px)" in out and "base px/s" in out
    cog = rioxarray.open_rasterio(tif, masked=True).squeeze("band", drop=True)
    zarr_bed = open_zarr_output(store)["bed"]
    assert cog.shape == (96, 80) and cog.rio.crs.to_epsg() == 3031
    np.testing.assert_array_equal(cog.values, zarr_bed.values)
    assert np.isfinite(cog.values).mean() > 0.5
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--output", "{tmp}/bed.png"], "expected a .tif, .tiff or .zarr"),
        (["--output", "{tmp}/bed.tif", "--model", "{tmp}/nope.safetensors"], "not found"),
        (["--output", "{tmp}/bed.tif", "--model", "{tmp}/junk.safetensors"], "junk.safetensors"),
        (["--output", "{tmp}/bed.tif", "--bbox", "1,2,3"], "--bbox must be"),
        (["--output", "{tmp}/bed.tif", "--bbox", "0,0,1000,1000"], "bbox"),
        (["--output", "{tmp}/bed.tif", "--catalog", "{tmp}/none.yaml"], "none.yaml"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, checkpoint, extra, message, capsys):
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 100)
    argv = ["superresolve", "--model", str(checkpoint)]
    argv += [part.format(tmp=tmp_path) for part in extra]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.safetensors"]


def test_convert_weights_and_info(tmp_path, reference_weights, capsys):
    out = tmp_path / "ref.safetensors"
    assert main(["convert-weights", str(reference_weights), str(out)]) == 0
    assert main(["info", "--model", str(out), "--window", "12"]) == 0
    assert "3 residual blocks" in capsys.readouterr().out


def test_info_times_a_fresh_generator(capsys):
    assert main(["info", "--blocks", "1", "--window", "8"]) == 0
    out = capsys.readouterr().out
    assert "'num_residual_blocks': 1" in out
    assert "8 x 8 base window -> (" in out and "base px/s" in out


def test_train_refuses_the_demo_region_before_any_work(tmp_path, capsys):
    argv = ["train", "--synthetic", "41-42", "--synthetic-shape", "16x16"]
    argv += ["--output", str(tmp_path / "m.safetensors"), "--run-dir", str(tmp_path / "run")]
    assert main(argv) == 1
    assert "seed 42 is the demo region" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_bbox_may_start_with_a_minus_sign(tmp_path, capsys):
    ds = open_inputs("demo")
    left, top = float(ds.x[0]) - 500, float(ds.y[0]) + 500
    assert left < 0  # the case argparse would take for an option
    bbox = f"{left},{top - 8_000},{left + 8_000},{top}"
    assert main(["plot-inputs", "--bbox", bbox, "--output", str(tmp_path / "q.png")]) == 0
    assert (tmp_path / "q.png").exists()


def test_train_validates_on_held_out_regions(tmp_path, capsys):
    """--validation-synthetic: all training tiles train, the held-out regions validate."""
    argv = ["train", "--synthetic", "21", "--validation-synthetic", "22-23"]
    argv += ["--synthetic-shape", "16x16", "--blocks", "1", "--epochs", "1", "--no-adversarial"]
    argv += ["--batch-size", "8", "--stride", "8", "--device", "cpu"]
    argv += ["--output", str(tmp_path / "m.safetensors"), "--run-dir", str(tmp_path / "run")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    alone = build_tiles(training_regions([21], (16, 16)), layout=TileLayout(stride=8))
    held = build_tiles(training_regions([22, 23], (16, 16)), layout=TileLayout(stride=8))
    n_train, n_val = alone.sizes["tile"], held.sizes["tile"]
    assert f"{n_train + n_val} tiles: {n_train} for training, {n_val} validation" in out
    meta = read_checkpoint_metadata(tmp_path / "m.safetensors")
    assert meta["metadata"]["training_data"]["validation_seeds"] == "22-23"


@pytest.mark.parametrize(
    ("validation", "message"),
    [("21-22", "seeds [21] are also training seeds"), ("42", "seed 42 is the demo region")],
)
def test_train_refuses_validation_regions_that_are_not_held_out(
    tmp_path, capsys, validation, message
):
    argv = ["train", "--synthetic", "20-21", "--validation-synthetic", validation]
    argv += ["--synthetic-shape", "16x16", "--output", str(tmp_path / "m.safetensors")]
    argv += ["--run-dir", str(tmp_path / "run"), "--tiles", str(tmp_path / "tiles.zarr")]
    assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before the training tiles (and their cache)
