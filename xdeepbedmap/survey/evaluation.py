"""Judge beds at survey points and along transects, as the paper does.

:func:`evaluate_points` samples each 250 m bed bilinearly at held-out survey
picks (GMT ``grdtrack`` style) and reports RMSE, MAE, bias and count for the
model (:func:`~xdeepbedmap.inference.superresolve`), bicubic interpolation of
the 1 km bed and a survey-only interpolation of the *training* picks ("what
would the surveys alone give?": block median + verde, as
:func:`~xdeepbedmap.survey.gridding.grid_points`, with a 20 km mask). GStatSim
kriging is not used: it is not installed here; the verde interpolator stands in.
:func:`transect` samples elevation and roughness (standard deviation in a
5 x 5 pixel window, :func:`xdeepbedmap.metrics.roughness`) along a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xdeepbedmap.metrics import roughness, sample_points
from xdeepbedmap.survey.errors import SurveyError
from xdeepbedmap.survey.gridding import DEFAULT_METHOD, grid_points

__all__ = [
    "BASELINES",
    "SURVEY_BASELINE_RADIUS",
    "evaluate_points",
    "point_beds",
    "survey_baseline",
    "transect",
]

#: Distance (m) from training picks beyond which the survey-only baseline has no value.
SURVEY_BASELINE_RADIUS = 20_000.0
#: Baselines :func:`evaluate_points` knows how to build.
BASELINES = ("bicubic", "survey")


def survey_baseline(
    training_points: pd.DataFrame,
    like: xr.DataArray,
    method: str = DEFAULT_METHOD,
    mask_radius: float = SURVEY_BASELINE_RADIUS,
) -> xr.DataArray:
    """Interpolate training picks onto the 250 m grid of ``like``.

    The mask is generous (:data:`SURVEY_BASELINE_RADIUS`, 20 km): the
    baseline answers "what would the surveys alone give?" wherever lines
    are not absurdly far.
    """
    xs, ys = like.x.values, like.y.values
    half = abs(float(xs[1] - xs[0])) / 2
    bbox = (xs.min() - half, ys.min() - half, xs.max() + half, ys.max() + half)
    ds = grid_points(training_points, bbox, mask_radius=mask_radius, method=method)  # type: ignore[arg-type]
    return ds["bed"].sel(x=like.x, y=like.y, method="nearest", tolerance=1.0)


def _summary(error: np.ndarray) -> dict[str, float]:
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "bias": float(np.mean(error)),
        "count": int(error.size),
    }


def evaluate_points(
    ds_inputs: xr.Dataset | None,
    points: pd.DataFrame,
    *,
    model: Any = None,
    baselines: Sequence[str] = BASELINES,
    training_points: pd.DataFrame | None = None,
    grids: dict[str, xr.DataArray] | None = None,
    common: bool = True,
    **superresolve_kwargs: Any,
) -> pd.DataFrame:
    """RMSE, MAE, bias (m) and count of several beds at held-out survey points.

    Parameters
    ----------
    ds_inputs : xarray.Dataset or None
        Canonical inputs of the region (``None`` only with ``model=False``, no
        baselines and ``grids``).
    points : pandas.DataFrame
        Test picks: ``x``, ``y`` (EPSG:3031 m) and ``bed``, on the same
        vertical datum as the inputs.
    model : optional
        Passed to :func:`~xdeepbedmap.inference.superresolve` (``None``: the
        bundled model); ``False`` leaves the model out.
    baselines : sequence of str
        Any of ``"bicubic"`` and ``"survey"`` (needs ``training_points``).
    training_points : pandas.DataFrame, optional
        Picks the survey-only baseline interpolates (never the test picks).
    grids : dict, optional
        Further named 250 m beds to evaluate, e.g. a precomputed prediction.
    common : bool
        Score every bed on the same points, those where all are valid (the
        fair comparison); otherwise each on its own valid points.
    **superresolve_kwargs
        Passed to ``superresolve`` (``device``, ``chunks`` ...).

    Returns
    -------
    pandas.DataFrame
        One row per bed (index ``name``), columns ``rmse``, ``mae``, ``bias``,
        ``count``. Errors are bed - pick (positive bias: too high).
    """
    beds = point_beds(ds_inputs, model, baselines, training_points, **superresolve_kwargs)
    beds.update(grids or {})
    if not beds:
        raise SurveyError("nothing to evaluate: model=False, no baselines and no grids")
    x, y = points["x"].to_numpy(np.float64), points["y"].to_numpy(np.float64)
    z = points["bed"].to_numpy(np.float64)
    errors = {name: sample_points(bed, x, y) - z for name, bed in beds.items()}
    valid = np.logical_and.reduce([np.isfinite(e) for e in errors.values()])
    rows = {}
    for name, error in errors.items():
        use = valid if common else np.isfinite(error)
        if not use.any():
            raise SurveyError(f"{name}: no survey point where it (and the others) has a value")
        rows[name] = _summary(error[use])
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "name"
    return table


def point_beds(
    ds: xr.Dataset | None,
    model: Any = None,
    baselines: Sequence[str] = BASELINES,
    training_points: pd.DataFrame | None = None,
    **kwargs: Any,
) -> dict[str, xr.DataArray]:
    """The 250 m beds :func:`evaluate_points` judges, computed: ``model``, ``bicubic``, ``survey``.

    Parameters as in :func:`evaluate_points`. Useful to score and draw
    transects of the same beds without computing them twice.
    """
    # imported here: inference pulls in torch, and its location may move
    from xdeepbedmap.baselines import bicubic
    from xdeepbedmap.inference import superresolve

    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise SurveyError(f"unknown baseline(s) {unknown}; choose from {list(BASELINES)}")
    beds: dict[str, xr.DataArray] = {}
    if model is not False:
        beds["model"] = superresolve(ds, model, **kwargs).compute()
    if "survey" in baselines and training_points is None:
        raise SurveyError("baseline 'survey' needs training_points (the picks to interpolate)")
    if baselines:
        cubic = bicubic(ds).compute()  # also the 250 m template of the survey baseline
    if "bicubic" in baselines:
        beds["bicubic"] = cubic
    if "survey" in baselines:
        beds["survey"] = survey_baseline(training_points, cubic)  # type: ignore[arg-type]
    return beds


def transect(
    grids: dict[str, xr.DataArray],
    start: tuple[float, float],
    end: tuple[float, float],
    *,
    spacing: float = 250.0,
    window: int = 5,
) -> xr.Dataset:
    """Elevation and roughness of several 250 m beds along a straight line.

    Parameters
    ----------
    grids : dict
        Named beds on (``y``, ``x``), e.g. ``{"truth": ..., "model": ...}``.
    start, end : tuple of float
        ``(x, y)`` end points in EPSG:3031 metres.
    spacing : float
        Distance between samples (m).
    window : int
        Roughness window (pixels): standard deviation in ``window x window``.

    Returns
    -------
    xarray.Dataset
        ``elevation`` and ``roughness`` on (``grid``, ``distance``), with
        ``x``, ``y`` coordinates along ``distance`` (m from ``start``).
    """
    length = float(np.hypot(end[0] - start[0], end[1] - start[1]))
    if length <= 0 or spacing <= 0:
        raise SurveyError(
            f"transect needs distinct end points and spacing > 0, got {start}, {end}, {spacing}"
        )
    distance = np.arange(0.0, length + 1e-9, spacing)
    x = start[0] + (end[0] - start[0]) * distance / length
    y = start[1] + (end[1] - start[1]) * distance / length
    elevation, rough = [], []
    for bed in grids.values():
        # roughness only near the line: crop with a margin of the window
        pad = window * abs(float(bed.x[1] - bed.x[0]))
        near = bed.sel(x=slice(x.min() - pad, x.max() + pad), y=slice(y.max() + pad, y.min() - pad))
        elevation.append(sample_points(near, x, y))
        rough.append(sample_points(roughness(near.astype(np.float64), window), x, y))
    dims = ("grid", "distance")
    return xr.Dataset(
        {
            "elevation": (dims, np.array(elevation), {"units": "m"}),
            "roughness": (dims, np.array(rough), {"units": "m", "window_px": window}),
        },
        coords={
            "grid": list(grids),
            "distance": distance,
            "x": ("distance", x),
            "y": ("distance", y),
        },
    )
