"""Uncertainty measures on constructed cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from xdeepbedmap.ensemble.metrics import (
    crps_gaussian,
    ensemble_summary,
    interval_coverage,
    reliability,
    spread_error_correlation,
)


@pytest.fixture(scope="module")
def gaussian():
    """Truth = mean + N(0, sigma) with a sigma that varies over the grid."""
    rng = np.random.default_rng(0)
    shape = (400, 400)
    mean = rng.normal(500, 100, shape)
    sigma = np.repeat(np.repeat(rng.uniform(5, 50, (80, 80)), 5, axis=0), 5, axis=1)
    truth = mean + rng.normal(0, 1, shape) * sigma
    return mean, sigma, truth


def test_calibrated_gaussian_errors_give_nominal_numbers(gaussian):
    mean, sigma, truth = gaussian
    summary = ensemble_summary(mean, sigma, truth)
    assert summary["coverage_68"] == pytest.approx(0.6827, abs=0.005)
    assert summary["coverage_95"] == pytest.approx(0.95, abs=0.003)
    assert summary["z_mean"] == pytest.approx(0, abs=0.01)
    assert summary["z_std"] == pytest.approx(1, abs=0.01)
    # sigma is constant on each 5 x 5 window: the window-mean |error| ranks with it
    assert summary["spearman_std_error"] > 0.8
    # E|X| for X ~ N(0, s) is s sqrt(2 / pi); expected CRPS is s / sqrt(pi)
    assert summary["crps"] == pytest.approx(np.mean(sigma) / np.sqrt(np.pi), rel=0.01)
    assert summary["count"] == truth.size
    observed = np.asarray(summary["reliability"]["observed"])
    np.testing.assert_allclose(observed, summary["reliability"]["nominal"], atol=0.01)


def test_too_narrow_spread_undercovers(gaussian):
    mean, sigma, truth = gaussian
    narrow = ensemble_summary(mean, sigma / 2, truth)
    assert narrow["coverage_68"] == pytest.approx(2 * stats.norm.cdf(0.5) - 1, abs=0.005)
    assert narrow["z_std"] == pytest.approx(2, abs=0.02)
    assert all(o < n for n, o in zip(*reliability(mean, sigma / 2, truth).values(), strict=True))


def test_crps_matches_its_formula_at_a_point():
    # truth 1 sigma above the mean: sigma (1 (2 Phi(1) - 1) + 2 phi(1) - 1/sqrt(pi))
    expected = 3.0 * (2 * stats.norm.cdf(1) - 1 + 2 * stats.norm.pdf(1) - 1 / np.sqrt(np.pi))
    assert crps_gaussian(10.0, 3.0, 13.0) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(1.8073, abs=1e-3)  # 3 (0.6827 + 0.4839 - 0.5642)
    # as sigma -> 0 the CRPS is the absolute error
    assert crps_gaussian(10.0, 1e-9, 13.0) == pytest.approx(3.0, rel=1e-6)
    # numerically: the integral of (F(x) - 1{x >= truth})^2, split at the step
    below, above = np.linspace(-40, 13, 200_001), np.linspace(13, 60, 200_001)
    integral = np.trapezoid(stats.norm.cdf(below, 10, 3) ** 2, below) + np.trapezoid(
        (stats.norm.cdf(above, 10, 3) - 1) ** 2, above
    )
    assert crps_gaussian(10.0, 3.0, 13.0) == pytest.approx(integral, rel=1e-7)


def test_invalid_pixels_and_windows_are_left_out(gaussian):
    mean, sigma, truth = (a.copy() for a in gaussian)
    truth[:5, :5] = np.nan
    sigma[5:10, :5] = 0.0  # no spread: no interval to cover with
    assert ensemble_summary(mean, sigma, truth)["count"] == truth.size - 50
    assert interval_coverage(mean, sigma, truth, 0.95) == pytest.approx(0.95, abs=0.003)
    assert np.isfinite(spread_error_correlation(mean, sigma, truth))
    with pytest.raises(ValueError, match="share their shape"):
        ensemble_summary(mean, sigma[:-1], truth)
    with pytest.raises(ValueError, match="no pixel"):
        interval_coverage(mean, np.zeros_like(sigma), truth, 0.5)


def test_figures_show_the_spread_the_error_and_the_reliability(tmp_path):
    from xdeepbedmap.ensemble.plot import plot_uncertainty
    from xdeepbedmap.plot import plot_comparison
    from xdeepbedmap.synthetic import make_region

    ds, truth = make_region((12, 12), seed=5)
    rng = np.random.default_rng(1)
    std = truth.copy(data=rng.uniform(1, 20, truth.shape).astype(np.float32))
    mean = truth + std * rng.normal(0, 1, truth.shape)
    fig = plot_comparison(ds, {"mean": mean}, truth, tmp_path / "cmp.png", uncertainty=std)
    titles = [ax.get_title() for ax in fig.axes]
    assert "uncertainty (std), 250 m" in titles and "mean, 250 m" in titles
    curve = reliability(mean, std, truth)
    fig = plot_uncertainty(mean, std, truth, curve, tmp_path / "unc.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:3] == [
        "ensemble mean, 250 m",
        "ensemble std (uncertainty), 250 m",
        "|truth - mean|, 250 m",
    ]
    # std and error share one colour scale
    assert fig.axes[1].images[0].get_clim() == fig.axes[2].images[0].get_clim()
    np.testing.assert_allclose(fig.axes[3].lines[1].get_ydata(), curve["observed"])
    assert (tmp_path / "cmp.png").stat().st_size > 10_000
    assert (tmp_path / "unc.png").stat().st_size > 10_000
