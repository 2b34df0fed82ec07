"""Sanity of the synthetic regions: physics relations that could fail."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xdeepbedmap.grids import NestingError, validate_inputs
from xdeepbedmap.synthetic import (
    BED_SMOOTHING_SIGMA,
    MIN_THICKNESS,
    _nan_gaussian,
    block_mean,
    inputs_from_bed,
    make_region,
    make_truth,
    training_regions,
)


@pytest.fixture(scope="module")
def region():
    return make_region((48, 56), seed=3)


def test_deterministic_and_seed_dependent():
    a_inputs, a_truth = make_region((16, 16), seed=5)
    b_inputs, b_truth = make_region((16, 16), seed=5)
    c_inputs, c_truth = make_region((16, 16), seed=6)
    xr.testing.assert_identical(a_inputs, b_inputs)
    xr.testing.assert_identical(a_truth, b_truth)
    assert not np.allclose(np.nan_to_num(a_truth.values), np.nan_to_num(c_truth.values))


def test_region_is_canonical_and_nested(region):
    inputs, truth = region
    base = validate_inputs(inputs)
    assert base.shape == (48, 56)
    assert truth.shape == (4 * 48, 4 * 56)
    assert truth.rio.crs.to_epsg() == 3031
    np.testing.assert_allclose(truth.x.values.reshape(-1, 4).mean(1), inputs.x.values)


def test_truth_is_realistic_terrain(region):
    _, truth = region
    values = truth.values
    ocean = np.isnan(values)
    assert 0.02 < ocean.mean() < 0.3  # a no-data ocean corner, not the whole region
    assert ocean[-1, -1] and not ocean[0, 0]
    relief = np.nanpercentile(values, 99) - np.nanpercentile(values, 1)
    assert 500 < relief < 3000  # hundreds of metres of relief
    # rough at every scale: 250 m neighbours differ, but far less than the relief
    step = np.nanmedian(np.abs(np.diff(values, axis=1)))
    assert 1.0 < step < 0.1 * relief


def test_bed_is_the_smoothed_block_mean_of_truth(region):
    inputs, truth = region
    expected = _nan_gaussian(block_mean(truth.values.astype(np.float64), 4), BED_SMOOTHING_SIGMA)
    bed = inputs["bed"].values
    valid = np.isfinite(bed)
    np.testing.assert_allclose(bed[valid], expected[valid], rtol=1e-6, atol=1e-3)
    # and that smoothing is mild: within tens of metres of the plain block mean
    plain = block_mean(truth.values.astype(np.float64), 4)
    assert np.nanmedian(np.abs(bed - plain)) < 40.0
    # no-data wherever a base pixel touches the ocean
    assert np.isnan(bed[np.isnan(plain)]).all()


def test_surface_above_bed_where_there_is_ice(region):
    inputs, truth = region
    surface = inputs["surface"].values
    # the 250 m truth pixel holding each 100 m surface pixel centre
    rows = ((np.arange(surface.shape[0]) + 0.5) * 0.4).astype(int)
    cols = ((np.arange(surface.shape[1]) + 0.5) * 0.4).astype(int)
    bed = truth.values[np.ix_(rows, cols)]
    ice = np.isfinite(surface) & np.isfinite(bed)
    assert ice.mean() > 0.7
    thickness = surface[ice] - bed[ice]
    assert thickness.min() >= MIN_THICKNESS - 1e-3
    assert (surface[ice] > 0).all()


def test_surface_is_smoother_than_bed(region):
    inputs, truth = region
    surface_1km = block_mean(inputs["surface"].values.astype(np.float64), 10)
    bed_1km = block_mean(truth.values.astype(np.float64), 4)

    def roughness(a):
        return np.nanstd(a - _nan_gaussian(a, 3.0))

    # the bed's short wavelengths are damped at the surface
    assert roughness(surface_1km) < 0.3 * roughness(bed_1km)


def test_velocity_fastest_over_thick_ice_in_troughs(region):
    inputs, truth = region
    speed = np.hypot(inputs["vx"].values, inputs["vy"].values).astype(np.float64)
    bed_500 = block_mean(truth.values.astype(np.float64), 2)
    valid = np.isfinite(speed) & np.isfinite(bed_500)
    low, high = np.nanpercentile(bed_500[valid], [25, 75])
    trough_speed = np.median(speed[valid & (bed_500 <= low)])
    ridge_speed = np.median(speed[valid & (bed_500 >= high)])
    assert trough_speed > 2 * ridge_speed
    assert 1 < np.median(speed[valid]) < 3000  # m/yr, a plausible range


def test_velocity_points_down_the_surface_slope(region):
    inputs, _ = region
    surface_500 = block_mean(inputs["surface"].values.astype(np.float64), 5)
    dsdy, dsdx = np.gradient(surface_500, 500.0)
    dsdy = -dsdy  # rows go south
    vx, vy = inputs["vx"].values, inputs["vy"].values
    downhill = -(vx * dsdx + vy * dsdy)
    valid = np.isfinite(downhill)
    assert np.mean(downhill[valid] > 0) > 0.8


def test_accumulation_decreases_with_elevation(region):
    inputs, _ = region
    acc = inputs["accumulation"].values
    surface_1km = block_mean(inputs["surface"].values.astype(np.float64), 10)
    valid = np.isfinite(acc) & np.isfinite(surface_1km)
    r = np.corrcoef(acc[valid], surface_1km[valid])[0, 1]
    assert r < -0.5
    assert (acc[valid] > 0).all()


def test_inputs_from_bed_checks_its_grid():
    truth = make_truth((16, 16), seed=0)
    with pytest.raises(NestingError, match="does not divide into 4 x 4"):
        inputs_from_bed(truth.isel(x=slice(0, 15)))
    coarse = truth.coarsen(x=2, y=2).mean()
    with pytest.raises(ValueError, match="truth: spacing 500 m, expected 250 m"):
        inputs_from_bed(coarse)
    no_crs = truth.drop_vars("spatial_ref")
    assert inputs_from_bed(no_crs).rio.crs.to_epsg() == 3031  # EPSG:3031 assumed


def test_make_region_is_fast():
    import time

    start = time.perf_counter()
    make_region((256, 256), seed=1)
    assert time.perf_counter() - start < 10.0


def test_training_regions_hold_out_the_demo_region():
    from xdeepbedmap.catalog import DEMO_SEED

    regions = training_regions([5, 6], shape=(16, 16))
    assert len(regions) == 2 and regions[0][1].shape == (64, 64)
    xr.testing.assert_identical(regions[1][1], make_region((16, 16), seed=6)[1])
    with pytest.raises(ValueError, match=f"seed {DEMO_SEED} is the demo region"):
        training_regions([5, DEMO_SEED], shape=(16, 16))
