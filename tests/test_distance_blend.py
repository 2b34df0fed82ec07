"""The distance blend: fitted weights recover a known trust curve and blend lazily, chunk-free."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xdeepbedmap.cli import main
from xdeepbedmap.distance_blend import (
    DistanceBlend,
    blend_by_distance,
    distance_to_points,
    fit_distance_blend,
)


def _grid(values: np.ndarray, chunks: int | None = None) -> xr.DataArray:
    ny, nx = values.shape
    da = xr.DataArray(
        values.astype(np.float32),
        coords={"y": 1e6 - 250.0 * np.arange(ny), "x": 250.0 * np.arange(nx)},
        dims=("y", "x"),
        name="bed",
    )
    return da if chunks is None else da.chunk(chunks)


def test_fit_recovers_a_known_trust_curve():
    rng = np.random.default_rng(0)
    n = 200_000
    distance = rng.uniform(0, 30, n)
    true_weight = np.clip(distance / 10, 0.1, 0.9)
    baseline = rng.normal(0, 100, n)
    residual = rng.normal(0, 50, n)
    truth = baseline + true_weight * residual + rng.normal(0, 5, n)
    blend = fit_distance_blend(baseline, baseline + residual, truth, distance)
    assert all(np.diff(blend.weights) >= 0)
    expected = np.clip(np.array(blend.knots_km) / 10, 0.1, 0.9)
    # each knot's weight is the bin's mean weight; the bins are 1-15 km wide
    assert np.allclose(blend.weights[:3], expected[:3], atol=0.05)
    assert blend.weights[-1] == pytest.approx(0.9, abs=0.02)
    assert blend.pixels == n


def test_fit_is_monotone_and_bounded_when_the_data_are_not():
    rng = np.random.default_rng(1)
    n = 50_000
    distance = rng.uniform(0, 12, n)
    # the residual is anti-correlated with the error far out: the raw weight would be < 0
    residual = rng.normal(0, 50, n)
    sign = np.where(distance < 5, 1.5, -1.0)
    truth = sign * residual
    blend = fit_distance_blend(np.zeros(n), residual, truth, distance)
    assert min(blend.weights) >= 0 and max(blend.weights) <= 1
    assert all(np.diff(blend.weights) >= 0)


def test_fit_refuses_mismatched_or_empty_input():
    with pytest.raises(ValueError, match="differ in size"):
        fit_distance_blend(np.zeros(5), np.zeros(5), np.zeros(5), np.zeros(4))
    with pytest.raises(ValueError, match="finite pixels"):
        fit_distance_blend(*(np.full(50, np.nan) for _ in range(4)))


def test_weights_at_the_ends_and_in_between():
    blend = DistanceBlend((1.0, 5.0), (0.2, 0.8))
    w = blend.weight(np.array([0.0, 1.0, 3.0, 5.0, 50.0, np.nan]))
    assert np.allclose(w[:5], [0.2, 0.2, 0.5, 0.8, 0.8]) and np.isnan(w[5])


@pytest.mark.parametrize(
    ("knots", "weights", "message"),
    [((1.0, 0.5), (0.1, 0.2), "increase"), ((1.0,), (1.5,), r"\[0, 1\]"), ((), (), "length")],
)
def test_invalid_blends_are_refused(knots, weights, message):
    with pytest.raises(ValueError, match=message):
        DistanceBlend(knots, weights)


def test_save_load_round_trip_and_foreign_files(tmp_path):
    blend = DistanceBlend((0.5, 3.0, 20.0), (0.1, 0.6, 1.0), "test", 10)
    assert DistanceBlend.load(blend.save(tmp_path / "b.json")) == blend
    (tmp_path / "other.json").write_text(json.dumps({"members": []}))
    with pytest.raises(ValueError, match="not a distance blend"):
        DistanceBlend.load(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not a distance blend"):
        DistanceBlend.load(tmp_path / "broken.json")


def test_blend_is_lazy_exact_and_independent_of_chunks():
    rng = np.random.default_rng(2)
    shape = (40, 36)
    pred, base = rng.normal(0, 100, shape), rng.normal(0, 100, shape)
    dist = rng.uniform(0, 20, shape)
    blend = DistanceBlend((1.0, 10.0), (0.0, 1.0))
    whole = blend_by_distance(_grid(pred), _grid(base), _grid(dist), blend)
    chunked = blend_by_distance(_grid(pred, 7), _grid(base, 11), _grid(dist, 13), blend)
    assert chunked.chunks is not None
    w = np.interp(dist, [1.0, 10.0], [0.0, 1.0])
    expected = (base + w * (pred - base)).astype(np.float32)
    assert np.allclose(whole.values, expected, atol=1e-3)
    assert np.array_equal(whole.values, chunked.values)
    assert "distance_blend" in whole.attrs and whole.dtype == np.float32


def test_blend_refuses_inputs_on_another_grid():
    a = _grid(np.zeros((8, 8)))
    shifted = a.assign_coords(x=a.x + 250.0)
    blend = DistanceBlend((1.0,), (0.5,))
    with pytest.raises(ValueError, match="baseline is not on the prediction's grid"):
        blend_by_distance(a, shifted, a, blend)
    with pytest.raises(ValueError, match="distance_km is not on the prediction's grid"):
        blend_by_distance(a, a, _grid(np.zeros((8, 9))), blend)


def test_distance_to_points_is_exact_and_chunk_free():
    like = _grid(np.zeros((30, 25)))
    points = pd.DataFrame({"x": [0.0, 3000.0], "y": [1e6, 1e6 - 5000.0]})
    whole = distance_to_points(points, like)
    chunked = distance_to_points(points, like.chunk(7))
    assert chunked.chunks is not None
    assert np.array_equal(whole.values, chunked.values)
    yy, xx = np.meshgrid(like.y.values, like.x.values, indexing="ij")
    brute = (
        np.minimum(np.hypot(xx - 0.0, yy - 1e6), np.hypot(xx - 3000.0, yy - (1e6 - 5000.0))) / 1e3
    )
    assert np.allclose(whole.values, brute, atol=1e-4)
    with pytest.raises(ValueError, match="x and y columns"):
        distance_to_points(pd.DataFrame({"lon": [0.0]}), like)


def test_fit_blend_refuses_a_world_without_survey_lines(tmp_path, capsys):
    from xdeepbedmap.blend_regions import fit_blend_on_regions

    model = tmp_path / "m.safetensors"
    model.write_bytes(b"")
    argv = ["fit-blend", "--model", str(model), "--synthetic", "300", "--synthetic-world", "v1"]
    argv += ["--output", str(tmp_path / "b.json")]
    with pytest.raises(SystemExit):  # argparse offers only the survey worlds
        main(argv)
    assert "invalid choice: 'v1'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="has no survey lines"):
        fit_blend_on_regions(model, [300], world="v1")
    assert not (tmp_path / "b.json").exists()


def test_fit_blend_cli_fits_and_writes_beside_the_checkpoint(tmp_path, capsys):
    import shutil

    from xdeepbedmap.model_store import BUNDLED_MODEL

    model = tmp_path / "demo.safetensors"
    shutil.copy(BUNDLED_MODEL, model)
    argv = ["fit-blend", "--model", str(model), "--synthetic", "336", "--synthetic-shape", "24x24"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    blend = DistanceBlend.load(tmp_path / "demo.blend.json")
    assert "residual weight by distance" in out and blend.pixels > 5000
    assert main(argv) == 1  # exists: refused without --overwrite
    assert "--overwrite" in capsys.readouterr().err


def _catalog_without_survey(folder):
    """The demo catalog without its metadata.survey entry (same rasters)."""
    from xdeepbedmap.catalog import SHIPPED_CATALOGS

    text = (SHIPPED_CATALOGS / "demo.yaml").read_text()
    lines = [line for line in text.splitlines() if not line.strip().startswith("survey:")]
    (folder / "demo").symlink_to(SHIPPED_CATALOGS / "demo")
    (folder / "bare.yaml").write_text("\n".join(lines) + "\n")
    return folder / "bare.yaml"


@pytest.fixture(scope="module")
def demo_survey(tmp_path_factory):
    """A CReSIS file flown over the demo region's truth, and a small bbox of the region."""
    from xdeepbedmap.catalog import open_inputs, open_truth
    from xdeepbedmap.survey.synthetic import synthetic_survey, write_cresis_csv

    truth = open_truth("demo").compute()
    folder = tmp_path_factory.mktemp("survey")
    survey = synthetic_survey(truth, line_spacing=6000.0, tie_spacing=None, seed=3)
    path = write_cresis_csv(survey, folder / "lines.csv")
    ds = open_inputs("demo")
    left, top = float(ds.x[0]) - 500, float(ds.y[0]) + 500
    return path, f"{left},{top - 16_000},{left + 16_000},{top}"


def test_superresolve_cli_blends_a_model_by_distance_to_survey_files(tmp_path, demo_survey):
    import rioxarray

    from xdeepbedmap.survey import read_points

    path, bbox = demo_survey
    blend = DistanceBlend((0.5, 8.0), (0.0, 1.0)).save(tmp_path / "b.json")
    common = ["superresolve", "--bbox", bbox, "--chunks", "8", "--halo", "3"]
    assert main(common + ["--no-survey", "--output", str(tmp_path / "raw.tif")]) == 0
    argv = common + ["--survey", str(path), "--blend", str(blend)]
    assert main(argv + ["--output", str(tmp_path / "blended.tif")]) == 0
    raw = rioxarray.open_rasterio(tmp_path / "raw.tif", masked=True).squeeze("band", drop=True)
    out = rioxarray.open_rasterio(tmp_path / "blended.tif", masked=True).squeeze("band", drop=True)
    from xdeepbedmap.baselines import bicubic
    from xdeepbedmap.catalog import open_inputs
    from xdeepbedmap.region import crop_to_region

    ds = open_inputs("demo", region=tuple(float(v) for v in bbox.split(",")))
    base = crop_to_region(bicubic(ds), ds).compute()
    w = np.interp(distance_to_points(read_points(path), raw).values, [0.5, 8.0], [0.0, 1.0])
    expected = base.values + w * (raw.values - base.values)
    assert np.allclose(out.values, expected, atol=0.01, equal_nan=True)
    assert np.nanmax(abs(out.values - raw.values)) > 1.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--catalog", "BARE", "--blend", "b.json"], "--blend needs --survey"),
        (["--model", "m.safetensors", "--survey", "SURVEY"], "needs --blend"),
        (["--no-survey", "--blend", "b.json"], "--no-survey and --blend contradict"),
        (["--ensemble", "bundled", "--survey", "SURVEY", "--blend", "b.json"], "for --model"),
        (["--no-survey", "--survey", "SURVEY"], "--no-survey and --survey contradict"),
    ],
)
def test_superresolve_cli_refuses_half_a_blend(tmp_path, demo_survey, capsys, extra, message):
    import shutil

    from xdeepbedmap.model_store import BUNDLED_MODEL

    path, bbox = demo_survey
    DistanceBlend((1.0,), (0.5,)).save(tmp_path / "b.json")
    shutil.copy(BUNDLED_MODEL, tmp_path / "m.safetensors")  # no blend beside this copy
    named = {"SURVEY": str(path), "b.json": str(tmp_path / "b.json")}
    named["m.safetensors"] = str(tmp_path / "m.safetensors")
    named["BARE"] = str(_catalog_without_survey(tmp_path))
    extra = [named.get(v, v) for v in extra]
    argv = ["superresolve", "--bbox", bbox, "--output", str(tmp_path / "o.tif")] + extra
    assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()


def test_a_checkpoint_uses_the_blend_beside_it_and_an_ensemble_the_catalog_picks(
    tmp_path, demo_survey, capsys
):
    """The bundled model's demo_model.blend.json; the demo catalog's survey.parquet."""
    import rioxarray

    from xdeepbedmap.model_store import BUNDLED_MODEL

    path, bbox = demo_survey
    common = ["superresolve", "--bbox", bbox, "--chunks", "8", "--halo", "3", "--survey", str(path)]
    side = str(BUNDLED_MODEL.with_suffix(".blend.json"))
    assert main(common + ["--output", str(tmp_path / "side.tif")]) == 0
    assert main(common + ["--blend", side, "--output", str(tmp_path / "named.tif")]) == 0
    beds = [
        rioxarray.open_rasterio(tmp_path / name, masked=True).values
        for name in ("side.tif", "named.tif")
    ]
    np.testing.assert_array_equal(beds[0], beds[1])
    ensemble = ["superresolve", "--bbox", bbox, "--ensemble", "bundled", "--chunks", "8"]
    capsys.readouterr()
    assert main(ensemble + ["--output", str(tmp_path / "e.zarr")]) == 0
    assert "survey picks of catalog demo" in capsys.readouterr().out
    # its error model was fitted on blended output: refused without picks
    assert main(ensemble + ["--no-survey", "--output", str(tmp_path / "raw.zarr")]) == 1
    assert "fitted on the bed blended" in capsys.readouterr().err
    assert not (tmp_path / "raw.zarr").exists()


def test_a_model_with_a_blend_uses_the_catalog_picks_unless_told_not_to(tmp_path, demo_survey):
    import rioxarray

    from xdeepbedmap.catalog_survey import survey_path

    _, bbox = demo_survey
    common = ["superresolve", "--bbox", bbox, "--chunks", "8", "--halo", "3"]
    beds = {}
    runs = {
        "default": [],
        "named": ["--survey", str(survey_path("demo")), "--survey-crs", "EPSG:3031"],
        "raw": ["--no-survey"],
    }
    for name, extra in runs.items():
        assert main(common + extra + ["--output", str(tmp_path / f"{name}.tif")]) == 0
        beds[name] = rioxarray.open_rasterio(tmp_path / f"{name}.tif", masked=True).values
    np.testing.assert_array_equal(beds["default"], beds["named"])
    assert np.nanmax(abs(beds["default"] - beds["raw"])) > 1.0


def test_picks_far_from_the_region_warn_that_the_blend_changes_nothing():
    from xdeepbedmap.pick_distance import FarPicksWarning, warn_if_far

    grid = xr.DataArray(np.zeros((3, 3)), coords={"y": [2e3, 1e3, 0.0], "x": [0.0, 1e3, 2e3]})
    near = pd.DataFrame({"x": [5e3, 9e5], "y": [0.0, 0.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_if_far(near, grid, reach_km=4.0) == 1
    far = near.assign(x=near["x"] + 2e6)  # e.g. the wrong CRS or region
    with pytest.warns(FarPicksWarning, match="none of the 2 survey picks lies within 4.0 km"):
        assert warn_if_far(far, grid, reach_km=4.0) == 0


def test_blend_figure_is_drawn(tmp_path):
    from xdeepbedmap.plot import plot_distance_blend

    blends = {"a": DistanceBlend((0.5, 5.0), (0.2, 0.9)), "b": DistanceBlend((1.0,), (0.5,))}
    path = plot_distance_blend(blends, tmp_path / "w.png")
    assert path.stat().st_size > 10_000


def test_too_few_far_pixels_are_pooled_not_given_their_own_knot():
    rng = np.random.default_rng(3)
    d = np.concatenate([rng.uniform(0, 14.9, 5000), [20.0]])
    truth = rng.normal(0, 1, d.size)
    prediction = 2 * truth  # least-squares weight 0.5 everywhere
    prediction[-1] = truth[-1] = 1.0  # one far pixel alone would say 1
    blend = fit_distance_blend(np.zeros(d.size), prediction, truth, d)
    assert max(blend.knots_km) < 15 and abs(float(blend.weight(np.array([30.0]))[0]) - 0.5) < 0.05


def test_blended_bed_records_its_picks_and_exact_weights():
    grid = xr.DataArray(
        np.zeros((4, 4), np.float32),
        coords={"y": [3.0, 2, 1, 0], "x": [0.0, 1, 2, 3]},
        dims=("y", "x"),
    )
    blend = DistanceBlend((0.5, 5.0), (0.2, 0.9))
    attrs = []
    for points in (pd.DataFrame({"x": [0.0], "y": [0.0]}), pd.DataFrame({"x": [1.0], "y": [0.0]})):
        out = blend_by_distance(grid + 1, grid, distance_to_points(points, grid), blend)
        attrs.append(out.attrs)
    assert attrs[0]["survey_sha256"] != attrs[1]["survey_sha256"]
    assert json.loads(attrs[0]["distance_blend_knots"]) == [[0.5, 5.0], [0.2, 0.9]]


def test_fit_blend_refuses_regions_the_model_trained_on(tmp_path, capsys):
    import shutil

    from xdeepbedmap.model_store import BUNDLED_MODEL

    model = tmp_path / "demo.safetensors"
    shutil.copy(BUNDLED_MODEL, model)  # trained on seeds 100-259, epochs judged on 300-311
    argv = ["fit-blend", "--model", str(model), "--synthetic", "258-260"]
    assert main(argv) == 1
    assert "seeds [258, 259] are among the model's synthetic_seeds" in capsys.readouterr().err
    assert main(["fit-blend", "--model", str(model), "--synthetic", "311-312"]) == 1
    assert "seeds [311] are among the model's validation_seeds" in capsys.readouterr().err
    assert not (tmp_path / "demo.blend.json").exists()


def test_superresolve_cli_refuses_a_blend_of_another_model(tmp_path, demo_survey, capsys):
    path, bbox = demo_survey
    blend = DistanceBlend((1.0,), (0.5,), "for another model", 10, "0" * 64)
    blend.save(tmp_path / "b.json")
    argv = ["superresolve", "--bbox", bbox, "--output", str(tmp_path / "o.tif")]
    argv += ["--survey", str(path), "--blend", str(tmp_path / "b.json")]
    assert main(argv) == 1
    assert "fitted for another model" in capsys.readouterr().err
    argv = ["superresolve", "--bbox", bbox, "--output", str(tmp_path / "o.tif")]
    assert main(argv + ["--survey-crs", "EPSG:3031"]) == 1
    assert "--survey-crs needs --survey" in capsys.readouterr().err
    assert not (tmp_path / "o.tif").exists()
