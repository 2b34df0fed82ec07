"""Calibrate an ensemble's error model on whole held-out regions, as ``bed_std`` is used.

Tiles cut for training see 11 base pixels of context and stop at their
edges; ``superresolve_ensemble`` sees a halo of neighbours and computes the
relief of the mean across block edges. Fitting the error model on the same
kind of output it will be applied to (whole regions, default halo, window and
chunks) avoids calibrating one thing and shipping another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from xdeepbedmap.ensemble.calibration import calibration_from_errors
from xdeepbedmap.ensemble.inference import EnsembleLike, resolve_ensemble, superresolve_ensemble
from xdeepbedmap.ensemble.spread_model import local_relief
from xdeepbedmap.ensemble.store import Calibration, Ensemble
from xdeepbedmap.grids import validate_inputs
from xdeepbedmap.truth import align_truth

__all__ = ["calibrate_on_regions", "errors_on_region"]


def errors_on_region(
    ensemble: Ensemble, inputs: xr.Dataset, truth: xr.DataArray, **superresolve_kwargs: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``truth - mean``, the members' spread and the relief of the mean at the truth pixels.

    Only pixels where all three are finite are returned (flat float64 arrays).
    """
    # the spread itself (scale 1), blended like the output when a survey is passed
    bare = Ensemble(ensemble.members, None, ensemble.source, blend=ensemble.blend)
    out = superresolve_ensemble(inputs, bare, **superresolve_kwargs).compute()
    aligned = align_truth(truth, validate_inputs(inputs))
    pixel = abs(float(out.x[1] - out.x[0]))
    aligned = aligned.reindex(y=out.y, x=out.x, method="nearest", tolerance=0.25 * pixel)
    mean = out["bed"].values.astype(np.float64)
    error = np.asarray(aligned.values, dtype=np.float64) - mean
    spread = out["bed_std"].values.astype(np.float64)
    relief = local_relief(mean)
    keep = np.isfinite(error) & np.isfinite(spread) & np.isfinite(relief)
    return error[keep], spread[keep], relief[keep]


def calibrate_on_regions(
    ensemble: EnsembleLike,
    regions: Sequence[tuple[xr.Dataset, xr.DataArray]],
    *,
    method: str = "intervals",
    fitted_on: str | None = None,
    progress: bool = False,
    surveys: Sequence[pd.DataFrame] | None = None,
    **superresolve_kwargs: Any,
) -> Calibration:
    """Fit the ensemble's :class:`Calibration` on held-out ``(inputs, truth)`` regions.

    Parameters
    ----------
    ensemble : Ensemble, folder or checkpoint files
        The members, as :func:`superresolve_ensemble` takes them (their own
        calibration is ignored: the raw spread is fitted).
    regions : sequence of (xarray.Dataset, xarray.DataArray)
        Held-out regions with a 250 m truth nested in their output grid; none
        of the members may have trained on them (the caller checks).
    method : str
        A rule of :data:`~xdeepbedmap.ensemble.calibration.METHODS`.
    fitted_on : str, optional
        What the regions are, for the record (default: their count).
    progress : bool
        Show a progress bar over the regions.
    surveys : sequence of pandas.DataFrame, optional
        Each region's survey picks: the calibration is then fitted on the
        output blended by distance to them (the ensemble needs a blend) and
        marked ``blended``.
    **superresolve_kwargs
        ``halo``, ``window``, ``chunks``, ``device`` ... as for inference.

    Returns
    -------
    Calibration
    """
    from tqdm.auto import tqdm

    members = resolve_ensemble(ensemble)
    if surveys is not None and len(surveys) != len(regions):
        raise ValueError(f"{len(surveys)} surveys for {len(regions)} regions")
    picks = list(surveys) if surveys is not None else [None] * len(regions)
    parts = [
        errors_on_region(members, inputs, truth, survey=survey, **superresolve_kwargs)
        for (inputs, truth), survey in tqdm(
            list(zip(regions, picks, strict=True)),
            desc="calibration regions",
            disable=not progress,
        )
    ]
    errors, spread, relief = (np.concatenate(column) for column in zip(*parts, strict=True))
    described = fitted_on or f"{len(regions)} held-out regions"
    if surveys is not None:
        described += ", blended by distance to the survey picks"
    calibration = calibration_from_errors(errors, spread, relief, method, described)
    return replace(calibration, blended=surveys is not None)
