"""How well an ensemble's spread estimates its error, against a truth grid.

For a mean ``mu``, a standard deviation ``sigma`` and the truth ``t`` on the
same pixels (only pixels where all three are finite and ``sigma > 0`` count):

* coverage of the central ``p`` interval: the fraction of pixels with
  ``|t - mu| <= z_p sigma``, ``z_p`` the Gaussian quantile (1 for 68.27 %,
  1.96 for 95 %); a calibrated spread covers the nominal fraction;
* z-scores ``(t - mu) / sigma``: mean ~0 and standard deviation ~1 when calibrated;
* the Spearman rank correlation between ``sigma`` and ``|t - mu|`` over
  non-overlapping 5 x 5 pixel window means (single pixels are too noisy to
  rank: one Gaussian draw per pixel);
* the CRPS of the Gaussian ``N(mu, sigma)`` in closed form (Gneiting et al.
  2005), in metres: lower is better, and it reduces to ``|t - mu|`` as ``sigma -> 0``;
* the RMSE of the mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

__all__ = [
    "RELIABILITY_LEVELS",
    "crps_gaussian",
    "ensemble_summary",
    "interval_coverage",
    "reliability",
    "spread_error_correlation",
]

#: Nominal central-interval probabilities of the reliability diagram.
RELIABILITY_LEVELS = tuple(round(0.1 * k, 1) for k in range(1, 10))


def _valid(mean: Any, std: Any, truth: Any) -> tuple[np.ndarray, np.ndarray]:
    """Errors ``truth - mean`` and ``std`` (float64) at the pixels where all are usable."""
    mean, std, truth = (np.asarray(a, dtype=np.float64) for a in (mean, std, truth))
    if not mean.shape == std.shape == truth.shape:
        raise ValueError(
            f"mean, std and truth must share their shape; got {mean.shape}, {std.shape}, "
            f"{truth.shape}"
        )
    ok = np.isfinite(mean) & np.isfinite(std) & np.isfinite(truth) & (std > 0)
    if not ok.any():
        raise ValueError("no pixel where the mean, a positive std and the truth are all valid")
    return (truth - mean)[ok], std[ok]


def interval_coverage(mean: Any, std: Any, truth: Any, probability: float) -> float:
    """Fraction of pixels whose truth lies in the central ``probability`` Gaussian interval."""
    if not 0 < probability < 1:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    error, sigma = _valid(mean, std, truth)
    return float(np.mean(np.abs(error) <= stats.norm.ppf(0.5 + probability / 2) * sigma))


def reliability(
    mean: Any, std: Any, truth: Any, levels: tuple[float, ...] = RELIABILITY_LEVELS
) -> dict[str, list[float]]:
    """Observed vs nominal coverage of central intervals (the reliability diagram's points)."""
    observed = [interval_coverage(mean, std, truth, p) for p in levels]
    return {"nominal": [float(p) for p in levels], "observed": observed}


def crps_gaussian(mean: Any, std: Any, truth: Any) -> np.ndarray:
    """Per-pixel CRPS (m) of ``N(mean, std)`` at ``truth``, closed form.

    ``sigma * (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))`` with
    ``z = (truth - mean) / sigma``; NaN where an input is NaN.
    """
    mean, std, truth = (np.asarray(a, dtype=np.float64) for a in (mean, std, truth))
    with np.errstate(invalid="ignore", divide="ignore"):
        return _crps(truth - mean, std)


def _crps(error: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    z = error / sigma
    return sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


def _window_means(values: np.ndarray, window: int) -> np.ndarray:
    """Means of non-overlapping ``window x window`` blocks (edge remainders dropped); NaN stays."""
    ny, nx = (n - n % window for n in values.shape)
    blocks = values[:ny, :nx].reshape(ny // window, window, nx // window, window)
    return blocks.mean(axis=(1, 3))


def spread_error_correlation(mean: Any, std: Any, truth: Any, window: int = 5) -> float:
    """Spearman rank correlation of ``std`` and ``|truth - mean|`` over window means.

    Windows with any invalid pixel are left out (2-D inputs on one grid).
    """
    mean, std, truth = (np.asarray(a, dtype=np.float64) for a in (mean, std, truth))
    spread = _window_means(std, window)
    error = _window_means(np.abs(truth - mean), window)
    ok = np.isfinite(spread) & np.isfinite(error)
    if ok.sum() < 3:
        raise ValueError(
            f"{ok.sum()} complete {window} x {window} windows; a rank correlation needs >= 3"
        )
    return float(stats.spearmanr(spread[ok], error[ok]).statistic)


def ensemble_summary(
    mean: xr.DataArray, std: xr.DataArray, truth: xr.DataArray, window: int = 5
) -> dict[str, Any]:
    """Every measure of this module for one ensemble result against a truth grid.

    Returns
    -------
    dict
        ``coverage_68``, ``coverage_95``, ``z_mean``, ``z_std``,
        ``spearman_std_error`` (over ``window`` px window means), ``crps``
        (mean, m), ``rmse_mean`` (m), ``mean_std`` (m), ``count`` and
        ``reliability`` (nominal and observed coverage at 10 ... 90 %).
    """
    m, s, t = (np.asarray(a, dtype=np.float64) for a in (mean, std, truth))
    error, sigma = _valid(m, s, t)
    z = error / sigma
    return {
        # the intervals: mean +- 1 std (68.27 %) and +- 1.96 std (95 %)
        "coverage_68": float(np.mean(np.abs(z) <= 1.0)),
        "coverage_95": float(np.mean(np.abs(z) <= 1.96)),
        "z_mean": float(z.mean()),
        "z_std": float(z.std()),
        "spearman_std_error": spread_error_correlation(m, s, t, window),
        "crps": float(_crps(error, sigma).mean()),
        "rmse_mean": float(np.sqrt(np.mean(error**2))),
        "mean_std": float(sigma.mean()),
        "count": int(error.size),
        "reliability": reliability(m, s, t),
    }
