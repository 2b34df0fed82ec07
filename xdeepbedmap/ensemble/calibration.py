"""Fit what turns the members' spread into an error estimate, on held-out data.

``method="intervals"`` (the default) and ``"likelihood"`` fit the three-term
error model of :mod:`xdeepbedmap.ensemble.spread_model` (a floor, a factor on
the spread and one on the local relief of the mean), so that its Gaussian
intervals hold their nominal shares, or by maximum likelihood. The two
one-factor rules below, ``"coverage"`` and ``"variance"``, scale the spread
alone (``bed_std = s * spread``), as the first bundled ensemble did.
:func:`calibration_from_errors` applies a rule to errors, spreads and reliefs;
:func:`calibrate_on_tiles` gets them from tiles (``train --members``),
:mod:`xdeepbedmap.ensemble.region_calibration` from whole held-out regions
(``calibrate``).

A deep ensemble's spread (the per-pixel standard deviation of its members)
ranks where the bed is uncertain, but its size is arbitrary: members trained
from nearby seeds on resampled tiles agree more closely than they are right.
One factor ``s`` corrects that: ``bed_std = s * std``. It is fitted on the
validation tiles, which no member trained on, and on nothing else; the
evaluation regions never enter it, so the coverage measured there is an
honest check.

The formula
-----------
With ``e = truth - mean`` and ``d = std`` (ddof=1) over the ``n`` fitting
pixels where ``d > 0``, the calibrated z-score is ``z = e / (s d)``. Its
variance about 0 (the value a calibrated, unbiased ensemble centres on) is
``mean(z**2) = mean((e/d)**2) / s**2``, so unit variance gives::

    s = sqrt(mean((e / d) ** 2))

Measuring the variance about 0 rather than about the sample mean of ``z``
counts a bias of the ensemble mean as error: the intervals widen to cover it
instead of ignoring it. Pixels with ``d == 0`` (members that agree exactly,
e.g. a constant region) carry no spread to scale and are left out.

Heavy tails: ``method="coverage"``
-------------------------------------------------
Bed errors are heavy-tailed (most pixels close, a few far off), so the unit
variance factor, pulled up by the tail, makes the central intervals too wide
(measured on the bundled demo ensemble: 85% of the truth inside the nominal
68% interval, 96% inside the 95% one). ``method="coverage"`` instead picks the
``s`` whose Gaussian intervals ``mean +- s d z_p`` hold the nominal share
``p`` of the fitting pixels best at :data:`COVERAGE_LEVELS`, the 68.3% and
95% intervals (least squares on the coverage error; the coverage of each
level is a step function of ``s``, evaluated on a fine grid of candidates):
with heavy tails no single factor gets both exactly, and this one splits the
difference. ``method="variance"`` is the unit-variance factor above. The
choice was made after seeing the demo ensemble's results (docs/ensemble.md
lists all three rules tried, fitted on the same held-out regions).
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader

from xdeepbedmap.ensemble.spread_model import fit_intervals, fit_likelihood, local_relief
from xdeepbedmap.ensemble.store import Calibration, EnsembleError
from xdeepbedmap.model import Generator, load_checkpoint
from xdeepbedmap.model_store import resolve_device

if TYPE_CHECKING:  # the ensemble layer sits below training: types only
    from xdeepbedmap.training.dataset import TileDataset

__all__ = [
    "COVERAGE_LEVELS",
    "METHODS",
    "SCALE_METHODS",
    "calibrate_on_tiles",
    "calibration_from_errors",
    "fit_std_scale",
    "spread_on_tiles",
]

#: Nominal central-interval levels the ``"coverage"`` factor is fitted to: the
#: two intervals users read from a standard deviation, +-1 and +-1.96 std.
COVERAGE_LEVELS = (0.6827, 0.95)
#: Calibration rules: three-term fits first, then the one-factor rules of :func:`fit_std_scale`.
METHODS = ("intervals", "likelihood", "coverage", "variance")
SCALE_METHODS = METHODS[2:]


def _usable(errors: np.ndarray, stds: np.ndarray) -> np.ndarray:
    """Pixels the factor can be fitted on: finite error, finite and positive spread."""
    return np.isfinite(errors) & np.isfinite(stds) & (stds > 0)


def fit_std_scale(errors: np.ndarray, stds: np.ndarray, method: str = "coverage") -> float:
    """The factor ``s`` that calibrates the spread ``stds`` against ``errors``.

    ``method="variance"``: the z-scores ``errors / (s * stds)`` get unit
    variance, ``s = sqrt(mean((errors / stds) ** 2))`` (taken about 0).
    ``method="coverage"`` (default): the Gaussian intervals of ``s * stds``
    hold the nominal share of the errors best over :data:`COVERAGE_LEVELS`
    (module docstring). Both over the pixels where ``stds > 0`` and both are
    finite.

    Parameters
    ----------
    errors : array
        ``truth - ensemble mean`` per pixel (m).
    stds : array
        The members' standard deviation (ddof=1) per pixel (m), same shape.

    Returns
    -------
    float
        The scale factor (> 0).

    Raises
    ------
    EnsembleError
        If the shapes differ, no pixel has a positive spread (all members
        identical, or a one-member ensemble), or the errors are all zero.
    """
    if method not in SCALE_METHODS:
        raise EnsembleError(f"fit_std_scale: method must be one of {SCALE_METHODS}, got {method!r}")
    errors, stds = np.asarray(errors, dtype=np.float64), np.asarray(stds, dtype=np.float64)
    if errors.shape != stds.shape:
        raise EnsembleError(
            f"fit_std_scale: errors have shape {errors.shape}, stds {stds.shape}; expected equal"
        )
    usable = _usable(errors, stds)
    if not usable.any():
        raise EnsembleError(
            f"fit_std_scale: none of the {errors.size} pixels has a finite error and a "
            "positive member spread (do the members differ? an ensemble needs >= 2)"
        )
    ratio = errors[usable] / stds[usable]
    scale = float(np.sqrt(np.mean(ratio**2)))
    if not scale > 0:
        raise EnsembleError(
            f"fit_std_scale: the {ratio.size} usable errors are all zero; nothing to calibrate"
        )
    return scale if method == "variance" else _coverage_scale(np.abs(ratio), scale)


def _coverage_scale(ratio: np.ndarray, variance_scale: float) -> float:
    """The ``s`` minimising the squared coverage error over :data:`COVERAGE_LEVELS`."""
    from scipy.stats import norm

    ordered = np.sort(ratio)
    widths = norm.ppf(0.5 + np.asarray(COVERAGE_LEVELS) / 2)  # z_p of each central interval
    candidates = variance_scale * np.geomspace(0.05, 2.0, 4001)
    # share of |e/d| <= s z_p for every candidate s and level p
    counts = np.searchsorted(ordered, np.outer(candidates, widths), side="right")
    misfit = ((counts / ordered.size - np.asarray(COVERAGE_LEVELS)) ** 2).sum(axis=1)
    return float(candidates[int(np.argmin(misfit))])


def _as_generators(
    members: Sequence[Generator | str | PathLike[str]], device: torch.device
) -> list[Generator]:
    loaded = [m if isinstance(m, Generator) else load_checkpoint(m) for m in members]
    return [m.to(device).eval() for m in loaded]


def spread_on_tiles(
    members: Sequence[Generator | str | PathLike[str]],
    tiles: TileDataset,
    *,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Every member's prediction of every tile: the error of their mean and their spread.

    Each batch of tiles is read once and run through all members under
    ``torch.inference_mode``.

    Parameters
    ----------
    members : sequence of Generator or checkpoint path
        At least two members.
    tiles : TileDataset
        Tiles with truth (``y``).
    batch_size : int
        Tiles per forward pass.
    device : str, optional
        ``auto`` (default), ``cpu``, ``cuda``.

    Returns
    -------
    errors, stds : numpy.ndarray
        ``truth - mean`` and the members' ddof=1 standard deviation, float64,
        shaped like the stacked truth tiles.
    """
    errors, stds, _ = _predict_tiles(members, tiles, batch_size, device)
    return errors, stds


def _predict_tiles(
    members: Sequence[Generator | str | PathLike[str]],
    tiles: TileDataset,
    batch_size: int,
    device: str | torch.device | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``truth - mean``, the ddof=1 spread and the mean of every tile (float64)."""
    if len(members) < 2:
        raise EnsembleError(
            f"an ensemble spread needs at least 2 members, got {len(members)} (ddof=1 std)"
        )
    if len(tiles) == 0:
        raise EnsembleError("no tiles to compute the ensemble spread on")
    torch_device = resolve_device(device)
    generators = _as_generators(members, torch_device)
    errors, stds, means = [], [], []
    with torch.inference_mode():
        for x, w1, w2, w3, y in DataLoader(tiles, batch_size=batch_size):
            inputs = tuple(t.to(torch_device) for t in (x, w1, w2, w3))
            stack = torch.stack([g(*inputs).double() for g in generators])
            mean = stack.mean(0)
            errors.append((y.to(torch_device).double() - mean).cpu().numpy())
            stds.append(stack.std(0, correction=1).cpu().numpy())
            means.append(mean.cpu().numpy())
    return np.concatenate(errors), np.concatenate(stds), np.concatenate(means)


def calibrate_on_tiles(
    members: Sequence[Generator | str | PathLike[str]],
    val_tiles: TileDataset,
    *,
    fitted_on: str | None = None,
    method: str = "intervals",
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> Calibration:
    """Fit :class:`Calibration` on held-out validation tiles (``method``).

    Parameters
    ----------
    members : sequence of Generator or checkpoint path
        The ensemble's members as they will be used (e.g. the float16-stored
        checkpoints, loaded back), at least two.
    val_tiles : TileDataset
        Validation tiles no member trained on.
    fitted_on : str, optional
        What the tiles are, for the record (default: their count).
    method : str
        ``"intervals"`` (default) or ``"likelihood"``: floor, spread and
        relief factors (:func:`~xdeepbedmap.ensemble.spread_model.fit_intervals`,
        :func:`~xdeepbedmap.ensemble.spread_model.fit_likelihood`); or the
        one-factor ``"coverage"`` or ``"variance"`` (:func:`fit_std_scale`).
    batch_size : int
        Tiles per forward pass.
    device : str, optional
        ``auto`` (default), ``cpu``, ``cuda``.

    Returns
    -------
    Calibration
    """
    if method not in METHODS:
        raise EnsembleError(f"calibrate_on_tiles: method must be one of {METHODS}, got {method!r}")
    errors, stds, means = _predict_tiles(members, val_tiles, batch_size, device)
    described = fitted_on or f"{len(val_tiles)} validation tiles"
    return calibration_from_errors(errors, stds, local_relief(means), method, described)


def calibration_from_errors(
    errors: np.ndarray, spread: np.ndarray, relief: np.ndarray, method: str, fitted_on: str
) -> Calibration:
    """The :class:`Calibration` that ``method`` fits to these held-out pixels.

    Parameters
    ----------
    errors, spread, relief : numpy.ndarray
        ``truth - mean``, the members' ddof=1 standard deviation and the
        :func:`~xdeepbedmap.ensemble.spread_model.local_relief` of the mean, same shape (m).
    method : str
        One of :data:`METHODS`.
    fitted_on : str
        What the pixels are, for the record (the method is appended).
    """
    if method not in METHODS:
        raise EnsembleError(f"calibration: method must be one of {METHODS}, got {method!r}")
    described = f"{fitted_on} ({method})"
    n_pixels = int(_usable(errors, spread).sum())
    if method in SCALE_METHODS:
        scale = fit_std_scale(errors, spread, method)
        return Calibration(std_scale=scale, fitted_on=described, n_pixels=n_pixels)
    fit_std_scale(errors, spread, "variance")  # its refusals (no spread, no error), before the fit
    fit = fit_intervals if method == "intervals" else fit_likelihood
    floor, scale, relief_scale = fit(errors, spread, relief)
    return Calibration(scale, described, n_pixels, floor=floor, relief_scale=relief_scale)
