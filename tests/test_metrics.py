"""Errors against grids and points, and roughness."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xdeepbedmap.grids import grid_coords, make_grid, pixel_centres
from xdeepbedmap.metrics import error_summary, point_errors, roughness, sample_points

GRID = make_grid(-2.0e5, 3.0e5, 250.0, (20, 30), "EPSG:3031")
GRID_Y, GRID_X = pixel_centres(GRID)


def plane(a: float = 0.1, b: float = -0.05, c: float = 300.0) -> xr.DataArray:
    coords = grid_coords(GRID)
    x, y = np.meshgrid(GRID_X, GRID_Y)
    return xr.DataArray(a * x + b * y + c, dims=("y", "x"), coords=coords)


def test_error_summary_by_hand():
    truth = plane()
    pred = truth + 3.0
    pred[0, 0] = np.nan
    pred[1, 1] = truth[1, 1] - 1.0
    summary = error_summary(pred, truth)
    n = 20 * 30 - 1
    assert summary["count"] == n
    assert summary["bias"] == pytest.approx((3.0 * (n - 1) - 1.0) / n)
    assert summary["rmse"] == pytest.approx(np.sqrt((9.0 * (n - 1) + 1.0) / n))
    assert summary["mae"] == pytest.approx(summary["bias"] + 2 / n)
    with pytest.raises(ValueError, match="differ along 'x'"):
        error_summary(pred.isel(x=slice(1, None)), truth)


def test_points_are_sampled_bilinearly():
    grid = plane()
    rng = np.random.default_rng(0)
    x = rng.uniform(GRID_X[0], GRID_X[-1], 50)
    y = rng.uniform(GRID_Y[-1], GRID_Y[0], 50)
    np.testing.assert_allclose(sample_points(grid, x, y), 0.1 * x - 0.05 * y + 300.0, rtol=1e-9)
    errors = point_errors(grid, x, y, 0.1 * x - 0.05 * y + 298.0)
    assert errors["bias"] == pytest.approx(2.0) and errors["rmse"] == pytest.approx(2.0)
    outside = sample_points(grid, np.array([GRID_X[0] - 1e4]), np.array([GRID_Y[0]]))
    assert np.isnan(outside).all()


def test_roughness_is_window_standard_deviation():
    flat = plane(0, 0, 100.0)
    assert float(np.nanmax(roughness(flat))) == pytest.approx(0.0, abs=1e-6)
    checker = flat.copy(data=np.indices(flat.shape).sum(axis=0) % 2 * 10.0)
    rough = roughness(checker, window=4)  # even window: half 0, half 10 -> std 5
    assert float(np.nanmedian(rough)) == pytest.approx(5.0, rel=1e-6)
    holes = checker.where(checker.x > GRID_X[5])
    assert np.isnan(roughness(holes, 3).values[:, :6]).all()
