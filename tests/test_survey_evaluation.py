"""Point evaluation against a brute-force computation, baselines, transects and their plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xdeepbedmap.metrics import roughness
from xdeepbedmap.model import Generator
from xdeepbedmap.survey import SurveyError, evaluate_points, synthetic_survey, transect
from xdeepbedmap.survey.plot import plot_transect
from xdeepbedmap.synthetic import make_region


def grid(values, left=0.0, top=4000.0, step=250.0):
    ny, nx = values.shape
    return xr.DataArray(
        values,
        dims=("y", "x"),
        coords={"y": top - (np.arange(ny) + 0.5) * step, "x": left + (np.arange(nx) + 0.5) * step},
    )


def bilinear_brute(values, x, y, left=0.0, top=4000.0, step=250.0):
    """Bilinear interpolation written out by hand, point by point."""
    out = []
    for px, py in zip(x, y, strict=True):
        c = (px - left) / step - 0.5
        r = (top - py) / step - 0.5
        c0, r0 = int(np.floor(c)), int(np.floor(r))
        fc, fr = c - c0, r - r0
        v = (
            values[r0, c0] * (1 - fr) * (1 - fc)
            + values[r0, c0 + 1] * (1 - fr) * fc
            + values[r0 + 1, c0] * fr * (1 - fc)
            + values[r0 + 1, c0 + 1] * fr * fc
        )
        out.append(v)
    return np.array(out)


def test_point_errors_match_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 100, (16, 16)), rng.normal(0, 100, (16, 16))
    x, y = rng.uniform(200, 3800, 50), rng.uniform(200, 3800, 50)
    points = pd.DataFrame({"x": x, "y": y, "bed": rng.normal(0, 100, 50)})
    table = evaluate_points(
        None, points, model=False, baselines=(), grids={"a": grid(a), "b": grid(b)}
    )
    assert table.index.tolist() == ["a", "b"]
    for name, values in (("a", a), ("b", b)):
        error = bilinear_brute(values, x, y) - points.bed.to_numpy()
        row = table.loc[name]
        np.testing.assert_allclose(row.rmse, np.sqrt(np.mean(error**2)), rtol=1e-10)
        np.testing.assert_allclose(row.mae, np.mean(np.abs(error)), rtol=1e-10)
        np.testing.assert_allclose(row.bias, np.mean(error), rtol=1e-10)
        assert row["count"] == 50


def test_common_points_only_unless_asked():
    a = np.ones((16, 16))
    b = a.copy()
    b[:8] = np.nan  # b has no value in the north half
    points = pd.DataFrame({"x": [1000.0, 1000.0], "y": [3500.0, 500.0], "bed": [0.0, 0.0]})
    grids = {"a": grid(a), "b": grid(b)}
    common = evaluate_points(None, points, model=False, baselines=(), grids=grids)
    assert common["count"].tolist() == [1, 1]
    own = evaluate_points(None, points, model=False, baselines=(), grids=grids, common=False)
    assert own["count"].tolist() == [2, 1]


def test_model_bicubic_and_survey_baseline_on_a_synthetic_region():
    inputs, truth = make_region((16, 16), seed=5, ocean=False)
    train = synthetic_survey(truth, line_spacing=1000.0, tie_spacing=3000.0, noise=0.0, seed=1)
    test = synthetic_survey(truth, line_spacing=1700.0, tie_spacing=None, noise=0.0, seed=9)
    as_points = lambda s: pd.DataFrame({"x": s.x, "y": s.y, "bed": s.BOTTOM})[s.BOTTOM > -9999]  # noqa: E731
    model = Generator(num_residual_blocks=1)  # a small untrained model: the path, not the skill
    table = evaluate_points(
        inputs, as_points(test), model=model, training_points=as_points(train), device="cpu"
    )
    assert table.index.tolist() == ["model", "bicubic", "survey"]
    assert (table["count"] == table["count"].iloc[0]).all() and table["count"].iloc[0] > 100
    assert np.isfinite(table.to_numpy()).all()
    # dense lines 1 km apart know the bed better than a 1 km smoothed grid
    assert table.loc["survey", "rmse"] < table.loc["bicubic", "rmse"]
    with pytest.raises(SurveyError, match="training_points"):
        evaluate_points(inputs, as_points(test), model=False)
    with pytest.raises(SurveyError, match="unknown baseline"):
        evaluate_points(inputs, as_points(test), model=False, baselines=("kriging",))


def test_transect_elevation_and_roughness():
    rng = np.random.default_rng(1)
    values = rng.normal(0, 50, (16, 16))
    rough = roughness(grid(values))
    # along a row of pixel centres, samples are the pixel values themselves
    row_y = float(grid(values).y[7])
    profile = transect(
        {"truth": grid(values), "flat": grid(np.zeros((16, 16)))},
        (125.0, row_y),
        (3875.0, row_y),
        spacing=250.0,
    )
    assert profile.sizes == {"grid": 2, "distance": 16}
    np.testing.assert_allclose(profile["elevation"].sel(grid="truth"), values[7], rtol=1e-6)
    np.testing.assert_allclose(
        profile["roughness"].sel(grid="truth")[3:-3], rough.values[7, 3:-3], rtol=1e-5
    )
    np.testing.assert_allclose(profile["roughness"].sel(grid="flat")[3:-3], 0.0, atol=1e-6)
    np.testing.assert_allclose(profile["x"], grid(values).x)
    fig = plot_transect(profile, title="test")
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 2
    with pytest.raises(SurveyError, match="distinct"):
        transect({"truth": grid(values)}, (0.0, 0.0), (0.0, 0.0))
