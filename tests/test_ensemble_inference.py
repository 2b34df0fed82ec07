"""Ensemble inference: mean and spread of the members, one pass over each block."""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import torch
import xarray as xr

import xdeepbedmap  # noqa: F401 - registers the accessor
from xdeepbedmap.ensemble import (
    Calibration,
    Ensemble,
    OneMemberWarning,
    member_name,
    superresolve_ensemble,
    write_ensemble,
)
from xdeepbedmap.ensemble import inference as ensemble_inference
from xdeepbedmap.ensemble.region_calibration import calibrate_on_regions, errors_on_region
from xdeepbedmap.ensemble.spread_model import local_relief
from xdeepbedmap.model import Generator
from xdeepbedmap.model.checkpoint import save_checkpoint
from xdeepbedmap.model_store import resolve_model
from xdeepbedmap.synthetic import make_region

from .test_inference import CountingGenerator


def _generator(seed: int, cls: type = Generator) -> Generator:
    torch.manual_seed(seed)
    return cls(num_residual_blocks=1).eval()


@pytest.fixture(scope="module")
def region() -> tuple[xr.Dataset, xr.DataArray]:
    return make_region((36, 36), seed=3)


@pytest.fixture(scope="module")
def pair() -> Ensemble:
    """Two tiny members with their own weights (no other test caches them)."""
    return Ensemble(tuple(resolve_model(_generator(s)) for s in (21, 22)), None, "pair")


@pytest.fixture(scope="module")
def one_window(region, pair) -> xr.Dataset:
    """The whole region in one network window: the seam-free reference."""
    ds, _ = region
    return superresolve_ensemble(ds, pair, members=True, halo=35, chunks=36, window=36)


def test_mean_and_std_are_those_of_the_members(one_window):
    members = one_window.bed_members.values
    assert one_window.bed_members.dims == ("member", "y", "x")
    np.testing.assert_allclose(one_window.bed, members.mean(axis=0), rtol=0, atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the masked (all-NaN) pixels
        expected = members.std(axis=0, ddof=1)
    np.testing.assert_allclose(one_window.bed_std, expected, rtol=1e-5, atol=1e-5)
    assert float(one_window.bed_std.min()) > 0  # two different members disagree everywhere
    xr.testing.assert_equal(np.isnan(one_window.bed), np.isnan(one_window.bed_std))
    assert one_window.bed_std.attrs["calibrated"] == 0
    assert one_window.bed_std.attrs["std_scale"] == 1.0
    assert one_window.bed.rio.crs.to_epsg() == 3031 and np.isnan(one_window.bed_std.rio.nodata)
    assert one_window.bed.attrs["ensemble_members"] == 2
    assert len(one_window.bed.attrs["member_sha256"].split(",")) == 2


@pytest.mark.parametrize("chunks", [(18, 18), (12, 24)])
def test_chunked_ensemble_matches_one_window(chunks, region, pair, one_window):
    ds, _ = region
    lazy = ds.chunk({"y": chunks[0], "x": chunks[1]})
    out = superresolve_ensemble(lazy, pair, halo=12)
    assert isinstance(out.bed.data, da.Array) and isinstance(out.bed_std.data, da.Array)
    result = out.compute()
    for name in ("bed", "bed_std"):
        # the seam tolerance of the single-model test, relative to the bed's std
        scale = float(np.nanstd(one_window.bed))
        assert np.nanmax(np.abs(result[name] - one_window[name])) / scale < 1e-4
        xr.testing.assert_equal(np.isnan(result[name]), np.isnan(one_window[name]))


def test_every_member_runs_once_per_block(region):
    ds, _ = region
    counting = tuple(_generator(s, CountingGenerator) for s in (31, 32, 33))
    ensemble = Ensemble(tuple(resolve_model(g) for g in counting), None, "counting")
    out = superresolve_ensemble(ds.chunk({"y": 18, "x": 18}), ensemble, halo=4, window=18)
    blocks = out.bed.data.npartitions
    dask.compute(out.bed, out.bed_std, scheduler="synchronous")  # mean and std together
    # one 18 x 18 window per block, run through each member once
    assert [g.calls for g in counting] == [blocks] * 3 == [4] * 3
    assert [g.windows for g in counting] == [blocks] * 3


def test_one_member_ensemble_reproduces_superresolve(region):
    ds, _ = region
    model = _generator(41)
    single = ds.deepbedmap.superresolve(model, halo=4, chunks=18)
    with pytest.warns(OneMemberWarning, match="one member"):
        out = ds.deepbedmap.superresolve_ensemble([resolve_model(model).path], halo=4, chunks=18)
    np.testing.assert_array_equal(out.bed.values, single.values)
    assert out.bed.dtype == np.float32 and np.isnan(out.bed_std.values).all()


def test_calibration_scales_the_spread(region, pair, tmp_path):
    ds, _ = region
    plain = superresolve_ensemble(ds, pair, halo=4, chunks=36)
    doubled = superresolve_ensemble(ds, pair, calibration=2.0, halo=4, chunks=36)
    np.testing.assert_allclose(doubled.bed_std, 2 * plain.bed_std, rtol=1e-6)
    np.testing.assert_array_equal(doubled.bed, plain.bed)
    assert doubled.bed_std.attrs["calibrated"] == 1 and doubled.bed_std.attrs["std_scale"] == 2
    # an ensemble folder's own calibration is used by default
    folder = tmp_path / "ens"
    folder.mkdir()
    for k, seed in enumerate((21, 22)):
        save_checkpoint(_generator(seed), folder / member_name(k))
    files = [{"file": member_name(k)} for k in range(2)]
    write_ensemble(folder, files, calibration=Calibration(3.0, "seed 200", 100))
    stored = superresolve_ensemble(ds, folder, halo=4, chunks=36)
    np.testing.assert_allclose(stored.bed_std, 3 * plain.bed_std, rtol=1e-5)
    assert stored.bed_std.attrs["calibration"] == "fitted on seed 200: bed_std = 3 * spread"
    with pytest.raises(ValueError, match="calibration must be a factor > 0"):
        superresolve_ensemble(ds, pair, calibration=-1.0)


def test_floor_and_relief_terms_follow_the_formula_and_the_chunking(region, pair, one_window):
    """bed_std = sqrt(a^2 + (s spread)^2 + (r relief(mean))^2), the same chunked or not."""
    ds, _ = region
    cal = Calibration(2.0, "seed 200", 100, floor=7.0, relief_scale=0.8)
    whole = superresolve_ensemble(ds, pair, calibration=cal, halo=35, chunks=36, window=36)
    relief = local_relief(one_window.bed.values)
    expected = np.sqrt(7.0**2 + (2 * one_window.bed_std.values) ** 2 + (0.8 * relief) ** 2)
    np.testing.assert_allclose(whole.bed_std, expected, rtol=1e-5)
    assert float(np.nanmin(whole.bed_std)) >= 7.0 * (1 - 1e-6)  # the floor holds everywhere
    assert whole.bed_std.attrs["std_floor"] == 7.0 and whole.bed_std.attrs["relief_scale"] == 0.8
    assert "sqrt(7**2 + (2 * spread)**2 + (0.8 * relief)**2)" in whole.bed_std.attrs["calibration"]
    # chunked: the relief reads its neighbours across block edges
    chunked = superresolve_ensemble(ds.chunk({"y": 12, "x": 24}), pair, calibration=cal, halo=12)
    scale = float(np.nanstd(one_window.bed))
    assert np.nanmax(np.abs(chunked.bed_std.values - whole.bed_std.values)) / scale < 1e-4
    xr.testing.assert_equal(np.isnan(chunked.bed_std), np.isnan(whole.bed_std))


def test_missing_bundled_ensemble_names_the_make_target(region, tmp_path, monkeypatch):
    ds, _ = region
    monkeypatch.setattr(ensemble_inference, "BUNDLED_ENSEMBLE", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="make demo-ensemble"):
        superresolve_ensemble(ds)


def test_writing_bed_and_std_runs_each_member_once_per_block(region, tmp_path):
    from xdeepbedmap.io import ResumeMismatchError, open_layers, to_zarr, write_outputs

    ds, _ = region
    counting = tuple(_generator(s, CountingGenerator) for s in (61, 62))
    ensemble = Ensemble(tuple(resolve_model(g) for g in counting), None, "counting")
    out = superresolve_ensemble(ds.chunk({"y": 18, "x": 18}), ensemble, halo=4, window=18)
    with dask.config.set(scheduler="synchronous"):
        # GeoTIFF only: both bands come from one computation of the member blocks
        (tif,) = write_outputs(out, [tmp_path / "bed.tif"])
    assert [g.calls for g in counting] == [4, 4]
    layers = open_layers(tif)
    reference = out.compute()
    for name in ("bed", "bed_std"):
        np.testing.assert_array_equal(layers[name].values, reference[name].values)
    assert layers["bed_std"].attrs["calibration"] == "uncalibrated"
    # an interrupted Zarr write by another ensemble is not resumed by this one
    other = Ensemble((ensemble.members[0], resolve_model(_generator(63))), None, "other")
    first = superresolve_ensemble(ds.chunk({"y": 18, "x": 18}), other, halo=4, window=18)

    def stop(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), dask.config.set(scheduler="synchronous"):
        to_zarr(first[["bed", "bed_std"]], tmp_path / "bed.zarr", progress=stop)
    with pytest.raises(ResumeMismatchError, match="member_sha256: was"):
        to_zarr(out[["bed", "bed_std"]], tmp_path / "bed.zarr")
    # the same ensemble resumes it: only the two chunks not yet written are computed
    before = counting[0].calls  # a member of both ensembles
    with dask.config.set(scheduler="synchronous"):
        to_zarr(first[["bed", "bed_std"]], tmp_path / "bed.zarr")
    assert counting[0].calls - before == 2
    resumed = open_layers(tmp_path / "bed.zarr")
    np.testing.assert_array_equal(resumed["bed_std"].values, first["bed_std"].values)


def test_region_calibration_fits_what_inference_outputs(region, pair, one_window):
    """calibrate_on_regions fits the raw spread of superresolve_ensemble against the truth."""
    ds, truth = region
    kwargs = {"halo": 35, "chunks": 36, "window": 36}
    errors, spread, relief = errors_on_region(pair, ds, truth, **kwargs)
    expected = (truth.values - one_window.bed.values).ravel()
    keep = np.isfinite(expected) & np.isfinite(one_window.bed_std.values.ravel())
    np.testing.assert_allclose(errors, expected[keep], atol=1e-3)
    np.testing.assert_allclose(spread, one_window.bed_std.values.ravel()[keep], rtol=1e-5)
    np.testing.assert_allclose(relief, local_relief(one_window.bed.values).ravel()[keep])
    # the ensemble's own calibration is not what gets fitted: the raw spread is
    calibrated = Ensemble(pair.members, Calibration(9.0, "x", 1), "pair")
    one = calibrate_on_regions(calibrated, [region], method="variance", **kwargs)
    assert one.std_scale == pytest.approx(np.sqrt(np.mean((errors / spread) ** 2)))
    three = calibrate_on_regions(pair, [region, region], fitted_on="seed 3 twice", **kwargs)
    assert three.n_pixels == 2 * errors.size and three.fitted_on == "seed 3 twice (intervals)"
    assert three.floor > 0 and three.relief_scale > 0
