"""Blending an ensemble's members by distance to the survey picks (checks and lazy terms)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from xdeepbedmap.distance_blend import DistanceBlend, distance_to_points
from xdeepbedmap.ensemble.store import Calibration, Ensemble
from xdeepbedmap.pick_distance import warn_if_far

__all__ = ["blend_terms", "check_blend"]


def check_blend(ensemble: Ensemble, cal: Calibration, survey: pd.DataFrame | None) -> None:
    """Refuse blending without a blend fitted for these members, or calibrations that don't hold."""
    if survey is not None and ensemble.blend is None:
        raise ValueError(
            f"ensemble {ensemble.source}: survey picks given but it has no distance blend; "
            "fit one with `xdeepbedmap fit-blend --model FOLDER`"
        )
    recorded = ensemble.blend.model_sha256 if ensemble.blend is not None else ""
    if recorded and recorded != ensemble.digest:
        raise ValueError(
            f"ensemble {ensemble.source}: its distance blend ({ensemble.blend.fitted_on}) was "
            "fitted for other members; refit it with `xdeepbedmap fit-blend --model FOLDER "
            "--overwrite`"
        )
    if survey is None and cal.blended:
        raise ValueError(
            f"ensemble {ensemble.source}: its error model was fitted on the bed blended by "
            "distance to survey picks and holds only for blended output, so it needs picks: "
            "--survey FILE or a catalog that ships them (not --no-survey); in Python, "
            "survey=, or calibration=1.0 for the raw spread of the unblended mean"
        )
    if survey is not None and cal.n_pixels and not cal.blended:
        raise ValueError(
            f"ensemble {ensemble.source}: its calibration ({cal.fitted_on}) was fitted on the "
            "unblended mean and does not hold for blended output; refit it with "
            "`xdeepbedmap calibrate` (which blends like the output), or pass calibration=1.0 "
            "for the raw spread"
        )


def blend_terms(
    ds: xr.Dataset, survey: pd.DataFrame, blend: DistanceBlend, chunks: tuple
) -> tuple[da.Array, da.Array]:
    """The blend weight and the bicubic bed on the uncropped output grid, in ``chunks``."""
    from xdeepbedmap.baselines import bicubic

    base = bicubic(ds)
    data = base.data if isinstance(base.data, da.Array) else da.from_array(base.data)
    base = base.copy(data=data.rechunk(chunks))
    warn_if_far(survey, base, max(blend.knots_km))
    distance = distance_to_points(survey, base)
    weight = distance.data.map_blocks(blend.weight, dtype=np.float32)
    return weight, base.data
