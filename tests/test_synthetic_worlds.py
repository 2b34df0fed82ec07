"""The synthetic worlds: the survey-made 1 km bed, physics v2, and v1 left as it was."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import xarray as xr

from xdeepbedmap.grids import validate_inputs
from xdeepbedmap.synthetic import (
    WORLDS,
    bed_to_surface_transfer,
    block_mean,
    make_region,
    make_truth,
    slip_ratio,
    survey_bed,
)
from xdeepbedmap.synthetic.bedmap_like import NEAR_LINE_RMSE_BOUND
from xdeepbedmap.synthetic.constants import SLIP_RATIO_SLOW, SLIP_RATIO_STREAM


@pytest.fixture(scope="module")
def truth():
    return make_truth((256, 256), seed=101)


@pytest.fixture(scope="module")
def v2_region():
    return make_region((48, 48), seed=103, **WORLDS["v2"])


def _digest(inputs: xr.Dataset, truth: xr.DataArray) -> str:
    h = hashlib.sha256()
    for name in ("bed", "surface", "vx", "vy", "accumulation"):
        h.update(np.ascontiguousarray(inputs[name].values).tobytes())
    h.update(truth.values.tobytes())
    return h.hexdigest()


def test_world_v1_is_bit_identical_to_before_the_worlds():
    # digest of make_region((48, 56), seed=3) computed with the code before
    # bed_model/physics existed (main at a2a1698); a numpy/scipy upgrade that
    # changes FFT rounding would also change it: then recompute it from v1 there
    inputs, truth = make_region((48, 56), seed=3)
    assert _digest(inputs, truth) == (
        "be33a38d2eacd445bcc3a48c36c9d2e24d6596998e1e7e106ed348e2407b4041"
    )
    explicit = make_region((48, 56), seed=3, **WORLDS["v1"])
    xr.testing.assert_identical(explicit[0], inputs)


def test_survey_bed_matches_the_truth_near_lines_and_departs_far_from_them(truth):
    bed, distance = survey_bed(truth, seed=101)
    error = bed - block_mean(truth.values.astype(np.float64), 4)
    valid = np.isfinite(error)
    near = valid & (distance < 300.0)  # a line crosses the pixel
    far = valid & (distance > 5000.0)
    assert near.sum() > 100 and far.sum() > 100
    near_rmse = np.sqrt(np.mean(error[near] ** 2))
    far_rmse = np.sqrt(np.mean(error[far] ** 2))
    # near lines: pick noise plus the truth's spread inside a 1 km cell that a
    # line samples only along one strip (see NEAR_LINE_RMSE_BOUND)
    assert near_rmse < NEAR_LINE_RMSE_BOUND
    assert far_rmse > 3 * near_rmse
    assert far_rmse > 150.0  # hundreds of metres, as BEDMAP2 far from data


def test_survey_bed_is_deterministic_and_seed_dependent(truth):
    a, da = survey_bed(truth, seed=1)
    b, db = survey_bed(truth, seed=1)
    c, _ = survey_bed(truth, seed=2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(da, db)
    assert np.abs(a - c).max() > 10.0


def test_world_v2_is_canonical_with_a_bed_everywhere_on_ice(v2_region):
    inputs, truth = v2_region
    validate_inputs(inputs)
    plain = block_mean(truth.values.astype(np.float64), 4)
    bed = inputs["bed"].values
    assert np.isfinite(bed[np.isfinite(plain)]).all()  # every ice pixel has a value
    assert np.isnan(bed[np.isnan(plain)]).all()
    v1_bed = make_region((48, 48), seed=103)[0]["bed"].values
    assert np.nanmax(np.abs(bed - v1_bed)) > 100.0  # a different, worse bed


def test_unknown_options_are_refused():
    with pytest.raises(
        ValueError, match="bed_model must be 'block_mean' or 'survey', got 'kriging'"
    ):
        make_region((16, 16), bed_model="kriging")
    with pytest.raises(ValueError, match="physics must be one of"):
        make_region((16, 16), physics="v3")


def test_transfer_limits():
    kh = np.logspace(-4, 2, 200)
    slips = [0.0, 1.0, 10.0, 100.0, 1e4, 1e8]
    curves = np.array([bed_to_surface_transfer(kh, c) for c in slips])
    # k -> 0: everything reaches the surface, whatever the slip
    np.testing.assert_allclose(curves[:, 0], 1.0, atol=1e-6)
    # huge slip: 1 wherever the wavelength is long against the thickness
    assert (curves[-1][kh < 0.05] > 0.998).all()
    # short wavelengths never reach the surface
    assert (curves[:, -1] < 1e-10).all()
    # monotone: more slip, more transfer; longer wavelength, more transfer
    assert (np.diff(curves, axis=0) >= 0).all()
    assert (np.diff(curves, axis=1) <= 0).all()
    assert (curves > 0).all() and (curves <= 1).all()
    # no slip: half transfer near kH = 1/5 (wavelength ~ 30 H), as physics v1
    assert 0.4 < bed_to_surface_transfer(0.2, 0.0) < 0.55
    # at a wavelength of 10 H an ice stream (C = 100) transmits most of the
    # bed, ice frozen to its bed almost none
    assert bed_to_surface_transfer(2 * np.pi / 10, 100.0) > 0.7
    assert bed_to_surface_transfer(2 * np.pi / 10, 0.0) < 0.1
    with pytest.raises(ValueError, match="kh and slip must be >= 0"):
        bed_to_surface_transfer(-1.0, 0.0)


def test_slip_ratio_high_in_troughs_low_on_ridges(v2_region):
    _, truth = v2_region
    c = slip_ratio(truth.values.astype(np.float64), 250.0)
    assert SLIP_RATIO_SLOW <= c.min() and c.max() <= SLIP_RATIO_STREAM
    bed = truth.values
    deep = np.isfinite(bed) & (bed < np.nanpercentile(bed, 10))
    high = np.isfinite(bed) & (bed > np.nanpercentile(bed, 90))
    assert np.median(c[deep]) > 10 * np.median(c[high])


def _band_correlation(surface_1km: np.ndarray, bed_1km: np.ndarray) -> float:
    """Correlation of surface and bed at 3-12 km wavelengths (difference of Gaussians)."""
    from xdeepbedmap.synthetic import _nan_gaussian

    def band(a):
        return _nan_gaussian(a, 1.0) - _nan_gaussian(a, 4.0)

    s, b = band(surface_1km), band(bed_1km)
    valid = np.isfinite(s) & np.isfinite(b)
    return float(np.corrcoef(s[valid], b[valid])[0, 1])


def test_v2_surface_carries_more_of_the_bed_at_km_scales(v2_region):
    inputs_v2, truth = v2_region
    inputs_v1 = make_region((48, 48), seed=103)[0]
    bed = block_mean(truth.values.astype(np.float64), 4)
    corr = {
        name: _band_correlation(block_mean(ds["surface"].values.astype(np.float64), 10), bed)
        for name, ds in (("v1", inputs_v1), ("v2", inputs_v2))
    }
    assert corr["v2"] > corr["v1"] + 0.1, corr


def test_v2_ice_streams_flow_in_deep_troughs(v2_region):
    inputs, truth = v2_region
    speed = np.hypot(inputs["vx"].values, inputs["vy"].values).astype(np.float64)
    bed_500 = block_mean(truth.values.astype(np.float64), 2)
    valid = np.isfinite(speed) & np.isfinite(bed_500)
    low, high = np.nanpercentile(bed_500[valid], [20, 80])
    assert np.median(speed[valid & (bed_500 <= low)]) > 10 * np.median(
        speed[valid & (bed_500 >= high)]
    )
    assert 1 < np.median(speed[valid]) < 3000
