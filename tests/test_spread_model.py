"""The calibrated error model: local relief, the three-term standard deviation, its fit."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from xdeepbedmap.ensemble import Calibration
from xdeepbedmap.ensemble.spread_model import (
    RELIEF_DEPTH,
    calibrated_std,
    fit_likelihood,
    gaussian_nll,
    local_relief,
)
from xdeepbedmap.ensemble.store import EnsembleError


def _rough_field(shape=(60, 70), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    return 300 * np.sin(x / 9.0) + 2 * y + 25 * rng.standard_normal(shape)


def test_relief_is_zero_on_a_flat_bed_and_skips_no_data():
    flat = np.full((30, 30), 812.5)
    flat[10:14, 5:20] = np.nan
    relief = local_relief(flat)
    assert np.isnan(relief[10:14, 5:20]).all()
    np.testing.assert_allclose(relief[np.isfinite(flat)], 0.0, atol=1e-9)
    rough = local_relief(_rough_field())
    assert np.nanmin(rough) > 0 and np.all(np.isfinite(rough))


def test_relief_of_chunks_with_overlap_equals_the_whole_grid():
    field = _rough_field()
    field[20:26, 30:41] = np.nan  # a hole across a chunk edge
    whole = local_relief(field)
    chunked = da.from_array(field, chunks=(17, 23)).map_overlap(
        local_relief, depth=RELIEF_DEPTH, boundary="none", dtype=np.float64
    )
    np.testing.assert_allclose(chunked.compute(), whole, rtol=1e-10, atol=1e-9)
    # too little overlap would not do (the test can fail)
    short = da.from_array(field, chunks=(17, 23)).map_overlap(
        local_relief, depth=2, boundary="none", dtype=np.float64
    )
    assert np.nanmax(np.abs(short.compute() - whole)) > 1e-3


def test_tiles_are_filtered_apart():
    a, b = _rough_field(seed=1)[:36, :36], _rough_field(seed=2)[:36, :36]
    stacked = local_relief(np.stack([a, b])[:, None])
    np.testing.assert_allclose(stacked[0, 0], local_relief(a))
    np.testing.assert_allclose(stacked[1, 0], local_relief(b))


def test_zero_floor_and_relief_is_the_scaled_spread_exactly():
    spread = np.random.default_rng(3).uniform(0, 40, 1000)
    np.testing.assert_array_equal(calibrated_std(spread, None, 5.92), 5.92 * spread)
    with pytest.raises(ValueError, match="needs the relief"):
        calibrated_std(spread, None, 1.0, 0.0, 0.5)


def test_likelihood_fit_recovers_known_factors():
    rng = np.random.default_rng(4)
    spread = rng.uniform(0.5, 6.0, 200_000)
    relief = rng.uniform(0.0, 30.0, spread.size)
    sigma = calibrated_std(spread, relief, 3.0, 12.0, 1.5)
    errors = sigma * rng.standard_normal(spread.size)
    floor, scale, relief_scale = fit_likelihood(errors, spread, relief)
    assert floor == pytest.approx(12.0, rel=0.05)
    assert scale == pytest.approx(3.0, rel=0.05)
    assert relief_scale == pytest.approx(1.5, rel=0.05)
    fitted = calibrated_std(spread, relief, scale, floor, relief_scale)
    # better than the best single factor on the spread (the one-term model)
    one = np.sqrt(np.mean((errors / spread) ** 2))
    assert gaussian_nll(errors, fitted) < gaussian_nll(errors, one * spread) - 0.05
    # without the relief: floor and spread only
    assert fit_likelihood(errors, spread)[2] == 0.0


def test_calibration_refuses_negative_terms_and_reads_old_records():
    old = Calibration(**{"std_scale": 5.9, "fitted_on": "seeds 116-123", "n_pixels": 10})
    assert old.floor == 0.0 and old.relief_scale == 0.0 and old.formula == "5.9 * spread"
    with pytest.raises(EnsembleError, match="floor must be finite and >= 0, got -1"):
        Calibration(1.0, "x", 1, floor=-1.0)
    with pytest.raises(EnsembleError, match="relief_scale"):
        Calibration(1.0, "x", 1, relief_scale=float("nan"))
