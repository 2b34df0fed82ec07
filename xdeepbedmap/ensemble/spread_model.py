"""The error model behind ``bed_std``: the members' spread, a floor and the local relief.

A deep ensemble's spread ranks where its members disagree, which is not all
of where they are wrong: members trained on the same world share its blind
spots (fine relief that neither the 1 km bed nor the conditioning inputs
show). Measured on the held-out calibration tiles of the bundled demo
ensemble (docs/ensemble.md), the spread alone ranks the absolute error with a
Spearman correlation of 0.21 over 5 x 5 px windows, the local relief of the
ensemble mean alone 0.35. The calibrated standard deviation therefore adds
both, as independent Gaussian variances::

    bed_std = sqrt(floor**2 + (std_scale * spread)**2 + (relief_scale * relief)**2)

``spread`` is the members' ddof=1 standard deviation and ``relief`` the
:func:`local_relief` of their mean. The three factors are fitted on held-out
regions. :func:`fit_likelihood` maximises the Gaussian likelihood, a proper
scoring rule: it rewards a standard deviation that is both the right size
and large where the error is. :func:`fit_intervals` (the default of
``calibrate``) starts there and moves the factors until the Gaussian 68.3 %
and 95 % intervals hold their nominal shares: bed errors are heavy-tailed, so
the likelihood's factors, pulled up by the tail, make the 68 % interval too
wide. ``floor = relief_scale = 0`` is the one-factor calibration
(``std_scale * spread``) of earlier ensembles, which still reads and runs
unchanged.

The relief is the 5 x 5 px (1.25 km) mean of ``|mean - G(mean)|``, ``G`` a
Gaussian of one pixel (250 m) standard deviation: the bed's relief at the
scales the 1 km input cannot resolve. Both filters skip NaN pixels (no-data,
masked ocean) and what lies beyond the array, so a chunk computed with
:data:`RELIEF_DEPTH` pixels of overlap equals the same pixels of the whole
grid (up to float rounding).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage, optimize, stats

__all__ = [
    "RELIEF_DEPTH",
    "RELIEF_SIGMA_PX",
    "RELIEF_WINDOW_PX",
    "INTERVAL_LEVELS",
    "calibrated_std",
    "fit_intervals",
    "fit_likelihood",
    "gaussian_nll",
    "local_relief",
]

#: Central-interval levels :func:`fit_intervals` matches (+-1 and +-1.96 std).
INTERVAL_LEVELS = (0.6827, 0.95)
#: Weight of the likelihood in :func:`fit_intervals`: a tie-break among factors
#: whose intervals hold the same shares (coverage is a step function of them).
_LIKELIHOOD_WEIGHT = 1e-4
#: Standard deviation (250 m pixels) of the Gaussian the relief is taken against.
RELIEF_SIGMA_PX = 1.0
#: Side (pixels) of the box the absolute high-pass is averaged over.
RELIEF_WINDOW_PX = 5
#: Pixels of context :func:`local_relief` reads on each side (Gaussian truncated at 4 sigma).
RELIEF_DEPTH = int(4 * RELIEF_SIGMA_PX) + RELIEF_WINDOW_PX // 2


def _nan_filter(values: np.ndarray, filt: Any, **kwargs: Any) -> np.ndarray:
    """``filt`` over the finite pixels only (normalised convolution), NaN where none was."""
    finite = np.isfinite(values)
    weights = filt(finite.astype(np.float64), mode="constant", cval=0.0, **kwargs)
    summed = filt(np.where(finite, values, 0.0), mode="constant", cval=0.0, **kwargs)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = summed / weights
    out[weights <= 1e-12] = np.nan
    return out


def local_relief(bed: np.ndarray) -> np.ndarray:
    """The bed's relief below the 1 km scale: box mean of ``|bed - G(bed)|`` (module docstring).

    Parameters
    ----------
    bed : numpy.ndarray
        250 m bed (m), filtered over its last two axes (any leading axes, e.g.
        tiles, are kept apart). NaN pixels are skipped, and stay NaN.

    Returns
    -------
    numpy.ndarray
        float64, same shape, metres.
    """
    values = np.asarray(bed, dtype=np.float64)
    lead = (0.0,) * (values.ndim - 2)
    smooth = _nan_filter(
        values, ndimage.gaussian_filter, sigma=(*lead, RELIEF_SIGMA_PX, RELIEF_SIGMA_PX),
        truncate=4.0,
    )  # fmt: skip
    size = (*((1,) * (values.ndim - 2)), RELIEF_WINDOW_PX, RELIEF_WINDOW_PX)
    relief = _nan_filter(np.abs(values - smooth), ndimage.uniform_filter, size=size)
    relief[~np.isfinite(values)] = np.nan
    return relief


def calibrated_std(
    spread: np.ndarray,
    relief: np.ndarray | None,
    std_scale: float,
    floor: float = 0.0,
    relief_scale: float = 0.0,
) -> np.ndarray:
    """``sqrt(floor**2 + (std_scale * spread)**2 + (relief_scale * relief)**2)``, float64.

    ``relief`` may be ``None`` when ``relief_scale`` is 0 (the one-factor model).
    """
    spread = np.asarray(spread, dtype=np.float64)
    variance = floor**2 + (std_scale * spread) ** 2
    if relief_scale:
        if relief is None:
            raise ValueError("calibrated_std: relief_scale > 0 needs the relief of the mean")
        variance = variance + (relief_scale * np.asarray(relief, dtype=np.float64)) ** 2
    return np.sqrt(variance)


def gaussian_nll(errors: np.ndarray, sigma: np.ndarray) -> float:
    """Mean negative log-likelihood of ``errors`` under ``N(0, sigma)`` (constant dropped)."""
    errors, sigma = np.asarray(errors, np.float64), np.asarray(sigma, np.float64)
    return float(np.mean(2 * np.log(sigma) + (errors / sigma) ** 2) / 2)


def _finite_pixels(*arrays: np.ndarray) -> list[np.ndarray]:
    """float64 copies of ``arrays`` at the pixels where all are finite (at least 3 of them)."""
    values = [np.asarray(a, dtype=np.float64) for a in arrays]
    usable = np.logical_and.reduce([np.isfinite(v) for v in values])
    if usable.sum() < 3:
        raise ValueError(f"the error model needs at least 3 usable pixels, got {int(usable.sum())}")
    return [v[usable] for v in values]


def _factors(logs: np.ndarray) -> np.ndarray:
    """The fitted factors from their logarithms, bounded to ``exp(+-30)``.

    A degenerate sample (e.g. all-equal spreads) must not drive a factor to 0 or infinity.
    """
    return np.exp(np.clip(logs, -30.0, 30.0))


def fit_likelihood(
    errors: np.ndarray, spread: np.ndarray, relief: np.ndarray | None = None
) -> tuple[float, float, float]:
    """``(floor, std_scale, relief_scale)`` maximising the Gaussian likelihood of ``errors``.

    Fitted over the pixels where the error, the spread and (when given) the
    relief are finite; without ``relief``, ``relief_scale`` is 0. The
    parameters are optimised as logarithms (Nelder-Mead), so all stay > 0.

    Parameters
    ----------
    errors, spread, relief : numpy.ndarray
        ``truth - mean``, the members' ddof=1 standard deviation and
        :func:`local_relief` of the mean, same shape (m).

    Returns
    -------
    tuple of float
    """
    if relief is None:
        (e, d), h = _finite_pixels(errors, spread), None
    else:
        e, d, h = _finite_pixels(errors, spread, relief)
    rms = float(np.sqrt(np.mean(e**2))) or 1.0
    d_rms = float(np.sqrt(np.mean(d**2))) or 1.0

    def loss(logs: np.ndarray) -> float:
        floor, scale, rel = _factors(logs)
        return gaussian_nll(e, calibrated_std(d, h, scale, floor, rel if h is not None else 0.0))

    start = np.log([rms / 2, rms / (2 * d_rms), 1.0])
    if h is None:
        fit = optimize.minimize(lambda p: loss(np.r_[p, 0.0]), start[:2], method="Nelder-Mead")
        floor, scale = _factors(fit.x)
        return float(floor), float(scale), 0.0
    fit = optimize.minimize(loss, start, method="Nelder-Mead", options={"maxiter": 2000})
    floor, scale, rel = _factors(fit.x)
    return float(floor), float(scale), float(rel)


def fit_intervals(
    errors: np.ndarray, spread: np.ndarray, relief: np.ndarray
) -> tuple[float, float, float]:
    """``(floor, std_scale, relief_scale)`` whose Gaussian intervals hold their nominal shares.

    Minimises the squared coverage error at :data:`INTERVAL_LEVELS` (plus a
    small multiple of the Gaussian NLL, to choose among equally covering
    factors), from :func:`fit_likelihood`'s factors; the ratios of the three
    terms stay close to the likelihood's, their size follows the coverage.

    Parameters
    ----------
    errors, spread, relief : numpy.ndarray
        As for :func:`fit_likelihood`.

    Returns
    -------
    tuple of float
    """
    start = fit_likelihood(errors, spread, relief)
    e, d, h = _finite_pixels(errors, spread, relief)
    levels = np.asarray(INTERVAL_LEVELS)
    widths = stats.norm.ppf(0.5 + levels / 2)  # z of each central interval

    def loss(logs: np.ndarray) -> float:
        floor, scale, rel = _factors(logs)
        sigma = calibrated_std(d, h, scale, floor, rel)
        ratio = np.abs(e) / sigma
        covered = np.array([np.mean(ratio <= w) for w in widths])
        return float(((covered - levels) ** 2).sum() + _LIKELIHOOD_WEIGHT * gaussian_nll(e, sigma))

    fit = optimize.minimize(loss, np.log(start), method="Nelder-Mead", options={"maxiter": 600})
    floor, scale, rel = _factors(fit.x)
    return float(floor), float(scale), float(rel)
