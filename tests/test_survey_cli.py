"""Survey commands and many regions: grid-survey, --regions, evaluate --points, end to end."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from xdeepbedmap.catalog import SHIPPED_CATALOGS, open_inputs, write_region_files
from xdeepbedmap.cli import main
from xdeepbedmap.survey import (
    evaluate_points,
    open_truth_layers,
    read_points,
    synthetic_survey,
    write_cresis_csv,
)
from xdeepbedmap.synthetic import make_region
from xdeepbedmap.training.regions import (
    TooFewTiles,
    load_regions,
    open_holdouts,
    read_region_specs,
    require_tiles,
)
from xdeepbedmap.training.tiles import TileLayout, build_tiles

SHAPE = (24, 24)  # base px: a 24 km region, 96 x 96 truth cells


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A synthetic region as a catalog on disk, flown with 1 km lines (CReSIS csv_good)."""
    folder = tmp_path_factory.mktemp("site")
    inputs, truth = make_region(SHAPE, seed=5, ocean=False)
    write_region_files(folder / "demo", inputs, truth)
    shutil.copy(SHIPPED_CATALOGS / "demo.yaml", folder / "cat.yaml")  # {{CATALOG_DIR}}/demo/...
    flown = synthetic_survey(truth, line_spacing=1000, tie_spacing=3000, seed=1)
    write_cresis_csv(flown, folder / "all_csv_good.csv")
    # held-out lines: every third frame, as a held-out campaign
    test = (flown.FRAME % 3) == 0
    write_cresis_csv(flown[~test], folder / "train_csv_good.csv")
    write_cresis_csv(flown[test], folder / "test_csv_good.csv")
    xs, ys = truth.x.values, truth.y.values
    bbox = (xs.min() - 125, ys.min() - 125, xs.max() + 125, ys.max() + 125)
    return {"folder": folder, "truth": truth, "bbox": ",".join(f"{v:.0f}" for v in bbox)}


def _grid(site, output, *extra):
    argv = ["grid-survey", str(site["folder"] / "all_csv_good.csv"), "--bbox", site["bbox"]]
    return main([*argv, "--output", str(output), "--mask-radius", "700", *extra])


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_grid_survey_writes_truth_with_count_and_distance(site, tmp_path, suffix, capsys):
    output = tmp_path / f"truth{suffix}"
    assert _grid(site, output) == 0
    out = capsys.readouterr().out
    assert "picks" in out and "wrote" in out
    if suffix == ".tif":
        assert {p.name for p in tmp_path.iterdir()} == {
            "truth.tif",
            "truth_count.tif",
            "truth_distance.tif",
        }
    ds = open_truth_layers(output)
    bed, count, distance = (ds[name].values for name in ("bed", "count", "distance"))
    assert bed.shape == site["truth"].shape and count.sum() > 10_000
    np.testing.assert_allclose(ds.x.values, site["truth"].x.values)
    # cells beyond the mask radius are NaN, cells with picks are not
    assert np.isnan(bed[distance > 700]).all() and np.isfinite(bed[count > 0]).all()
    error = bed - site["truth"].values
    assert np.sqrt(np.nanmean(error**2)) < 60  # rough fractal bed, 1 km lines: measured ~25 m


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--output", "{tmp}/truth.png"], "expected a .tif, .tiff or .zarr"),
        (["--output", "{tmp}/old.tif"], "exists; pass overwrite"),
        (["--output", "{tmp}/t.tif", "--bbox", "1,2,3"], "--bbox must be"),
        (["--output", "{tmp}/t.tif", "--bbox", "5,5,1,1"], "min < max"),
        (["--output", "{tmp}/t.tif", "--mask-radius", "0"], "mask_radius must be"),
        (["--output", "{tmp}/t.tif", "--to-geoid"], "need --geoid"),
        (["--output", "{tmp}/t.tif", "--geoid", "{tmp}/old.tif"], "exactly one of"),
        (["{tmp}/missing.csv", "--output", "{tmp}/t.zarr"], "missing.csv"),
    ],
)
def test_grid_survey_refuses_bad_input_before_writing(site, tmp_path, extra, message, capsys):
    (tmp_path / "old.tif").write_bytes(b"x")
    argv = ["grid-survey", str(site["folder"] / "all_csv_good.csv")]
    argv += [part.format(tmp=tmp_path) for part in extra]
    if "--bbox" not in extra:
        argv += ["--bbox", site["bbox"]]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and message in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.tif"]


def _regions_file(folder, truth_path, name="regions.yaml", **extra):
    fields = ", ".join(f"{k}: {v}" for k, v in {"truth": truth_path, **extra}.items())
    path = folder / name
    path.write_text(f"- {{catalog: cat.yaml, {fields}}}\n")
    return path


def test_regions_tile_only_where_the_truth_covers_them(site, tmp_path):
    """Half the truth masked: tiles come from the covered half only; below 1, NaN is filled."""
    truth = site["truth"].copy()
    truth[:, 48:] = np.nan  # east half unknown
    truth.rio.write_crs("EPSG:3031").rio.to_raster(tmp_path / "half.tif")
    shutil.copy(site["folder"] / "cat.yaml", tmp_path / "cat.yaml")
    shutil.copytree(site["folder"] / "demo", tmp_path / "demo")
    regions = load_regions(_regions_file(tmp_path, "half.tif", bbox=f"[{site['bbox']}]"))
    full = build_tiles(regions, layout=TileLayout(stride=16))
    cols = full.origin.values[:, 1]
    # a tile at base column c covers truth columns 4(c+1) .. 4(c+1)+35: all west of 48
    assert full.sizes["tile"] > 0 and (4 * (cols + 1) + 36 <= 48).all()
    stats = json.loads(full.attrs["coverage"])[0]
    assert stats["truth_coverage"] == pytest.approx(0.5, abs=0.01)
    assert stats["kept"] == full.sizes["tile"] < stats["positions"]
    assert (full.coverage.values == 1).all()
    partial = build_tiles(regions, layout=TileLayout(stride=16, min_coverage=0.5))
    assert partial.sizes["tile"] > full.sizes["tile"]
    assert np.isfinite(partial.y.values).all() and (partial.coverage.values >= 0.5).all()
    assert (partial.coverage.values < 1).any()


def test_too_sparse_truth_says_how_much_it_covers(site, tmp_path, capsys):
    """A truth from 6 km lines with a 300 m mask fills no tile: the message gives the coverage."""
    flown = synthetic_survey(site["truth"], line_spacing=6000, tie_spacing=None, seed=2)
    write_cresis_csv(flown, tmp_path / "sparse.csv")
    truth = tmp_path / "sparse.tif"
    argv = ["grid-survey", str(tmp_path / "sparse.csv"), "--bbox", site["bbox"]]
    assert main([*argv, "--output", str(truth), "--mask-radius", "300"]) == 0
    shutil.copy(site["folder"] / "cat.yaml", tmp_path / "cat.yaml")
    shutil.copytree(site["folder"] / "demo", tmp_path / "demo")
    regions = _regions_file(tmp_path, "sparse.tif")
    capsys.readouterr()
    argv = ["train", "--regions", str(regions), "--stride", "16", "--epochs", "1"]
    assert main([*argv, "--output", str(tmp_path / "m.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "the truth covers" in err and "% of the region" in err and "tile positions" in err
    assert not (tmp_path / "m.safetensors").exists()
    # with some tiles but fewer than two: require_tiles explains, never a bare split error
    tiles = build_tiles(load_regions(regions), layout=TileLayout(stride=16, min_coverage=0.05))
    with pytest.raises(TooFewTiles, match=r"the truth covers \d+\.\d% of the region"):
        require_tiles(tiles, tiles.sizes["tile"] + 1)


def test_regions_file_is_checked(tmp_path):
    (tmp_path / "r.yaml").write_text("- {catalog: demo, colour: blue}\n")
    with pytest.raises(ValueError, match="unknown key"):
        read_region_specs(tmp_path / "r.yaml")
    (tmp_path / "r.yaml").write_text("- {catalog: demo, truth: nope.tif}\n")
    with pytest.raises(FileNotFoundError, match="nope.tif"):
        read_region_specs(tmp_path / "r.yaml")
    (tmp_path / "r.yaml").write_text("- {catalog: demo, bbox: [3, 2, 1]}\n")
    with pytest.raises(ValueError, match="bbox must be"):
        read_region_specs(tmp_path / "r.yaml")


def test_holdouts_from_regions_with_points(site):
    path = _regions_file(site["folder"], "demo/truth.tif", name="holdout.yaml")
    pairs = open_holdouts(path, points=site["folder"] / "test_csv_good.csv")
    assert len(pairs) == 1 and isinstance(pairs[0][1], pd.DataFrame)
    assert {"x", "y", "bed"} <= set(pairs[0][1].columns)
    (grid_pair,) = open_holdouts(path)
    assert grid_pair[1].shape == site["truth"].shape


def test_end_to_end_points_to_truth_to_model_to_evaluation(site, tmp_path, capsys):
    """Synthetic survey -> grid-survey -> regions -> train (tiny) -> evaluate at held-out lines."""
    folder = site["folder"]
    truth = tmp_path / "truth.zarr"
    argv = ["grid-survey", str(folder / "train_csv_good.csv"), "--bbox", site["bbox"]]
    assert main([*argv, "--output", str(truth), "--mask-radius", "1000"]) == 0
    shutil.copy(folder / "cat.yaml", tmp_path / "cat.yaml")
    shutil.copytree(folder / "demo", tmp_path / "demo")
    regions = _regions_file(tmp_path, "truth.zarr")
    model = tmp_path / "model.safetensors"
    argv = ["train", "--regions", str(regions), "--stride", "16", "--blocks", "1", "--epochs"]
    argv += ["1", "--batch-size", "8", "--no-adversarial", "--device", "cpu"]
    assert main([*argv, "--run-dir", str(tmp_path / "run"), "--output", str(model)]) == 0
    assert "tiles:" in capsys.readouterr().out
    report, png = tmp_path / "eval.json", tmp_path / "transect.png"
    xs, ys = site["truth"].x.values, site["truth"].y.values
    line = f"{xs[4]:.0f},{ys[50]:.0f},{xs[90]:.0f},{ys[40]:.0f}"
    argv = ["evaluate", "--catalog", str(tmp_path / "cat.yaml"), "--model", str(model)]
    argv += ["--points", str(folder / "test_csv_good.csv")]
    argv += ["--training-points", str(folder / "train_csv_good.csv"), "--device", "cpu"]
    argv += ["--transect", line, "--figure", str(png), "--json", str(report)]
    assert main(argv) == 0
    assert "survey" in capsys.readouterr().out and png.stat().st_size > 10_000
    table = json.loads(report.read_text())
    expected = evaluate_points(
        open_inputs(tmp_path / "cat.yaml"),
        read_points(folder / "test_csv_good.csv"),
        model=model,
        training_points=read_points(folder / "train_csv_good.csv"),
        device="cpu",
    )
    assert list(table) == ["model", "bicubic", "survey"] == expected.index.tolist()
    for name, row in expected.iterrows():
        for key in ("rmse", "mae", "bias", "count"):
            assert table[name][key] == pytest.approx(row[key], rel=1e-9)
    assert all(np.isfinite(row["rmse"]) and row["count"] > 1000 for row in table.values())


def test_tune_pools_held_out_rmse_over_regions():
    from xdeepbedmap.training.tune import _pooled

    tables = [
        {"DeepBedMap": {"rmse": 3.0, "count": 1}},
        {"DeepBedMap": {"rmse": 4.0, "count": 3}},
    ]
    assert _pooled(tables, "DeepBedMap") == pytest.approx(np.sqrt((9 * 1 + 16 * 3) / 4))
