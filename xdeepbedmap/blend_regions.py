"""Fit a :class:`~xdeepbedmap.distance_blend.DistanceBlend` on whole synthetic regions.

Regions are super-resolved whole (default halo, window and chunks), as the
blend will be applied, and compared with their 250 m truth; the distance of
each output pixel is taken to the picks of the survey that made the region's
1 km bed (:func:`xdeepbedmap.synthetic.survey_picks`, same seed). Use seeds
no model trained on or picked its epochs with, and never the region the
result is judged on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xdeepbedmap.baselines import bicubic
from xdeepbedmap.conditioning import blind
from xdeepbedmap.distance_blend import DistanceBlend, distance_to_points, fit_distance_blend
from xdeepbedmap.grids import validate_inputs
from xdeepbedmap.pick_distance import warn_if_far
from xdeepbedmap.synthetic import WORLDS, make_region, survey_picks
from xdeepbedmap.truth import align_truth

__all__ = [
    "blend_model_bed",
    "fit_blend_on_regions",
    "model_blend",
    "model_digest",
    "predict_bed",
    "region_distance",
]


def model_digest(model: str | PathLike[str] | None) -> str:
    """A checkpoint's digest (``None``: the bundled model's), or an ensemble folder's."""
    if model is not None and Path(model).is_dir():
        from xdeepbedmap.ensemble.store import read_ensemble

        return read_ensemble(model).digest
    from xdeepbedmap.model_store import resolve_model

    return resolve_model(model).digest


def model_blend(model: str | PathLike[str], blend: str | PathLike[str] | None) -> DistanceBlend:
    """The blend of ``model``: the file ``blend``, or the one in an ensemble folder's manifest.

    Raises
    ------
    ValueError
        ``blend`` is None and ``model`` is not an ensemble folder with a blend.
    """
    if blend is not None:
        return DistanceBlend.load(blend)
    if Path(model).is_dir():
        from xdeepbedmap.ensemble.store import read_ensemble

        own = read_ensemble(model).blend
        if own is not None:
            return own
    raise ValueError(f"{model}: no distance blend given and none in its manifest (fit-blend)")


def predict_bed(inputs: xr.Dataset, model: str | PathLike[str], **kwargs: Any) -> xr.DataArray:
    """The network's bed: one checkpoint, or the member mean of an ensemble folder.

    ``kwargs`` go to ``superresolve`` (or ``superresolve_ensemble``).
    """
    if Path(model).is_dir():
        from xdeepbedmap.ensemble import superresolve_ensemble

        # the mean does not depend on the calibration; one fitted blended would refuse an
        # unblended run (a refit of the blend of a calibrated ensemble)
        return superresolve_ensemble(inputs, model, **{"calibration": 1.0, **kwargs})["bed"]
    from xdeepbedmap.inference import superresolve

    return superresolve(inputs, model, **kwargs)


def blend_model_bed(
    result: xr.DataArray | xr.Dataset,
    inputs: xr.Dataset,
    picks: Any,
    blend: DistanceBlend,
) -> xr.DataArray | xr.Dataset:
    """A single model's bed (or ``bed`` of a Dataset) blended by distance to ``picks``.

    The blend is pointwise, so ``result`` may be cropped to a region of the
    (margin-padded) ``inputs``: the bicubic bed is cropped the same way.
    """
    from xdeepbedmap.distance_blend import blend_by_distance
    from xdeepbedmap.region import crop_to_region

    bed = result["bed"] if isinstance(result, xr.Dataset) else result
    warn_if_far(picks, bed, max(blend.knots_km))
    base = crop_to_region(bicubic(inputs), inputs)
    if bed.chunks is not None:
        base = base.chunk(dict(zip(("y", "x"), bed.chunks, strict=True)))
    blended = blend_by_distance(bed, base, distance_to_points(picks, bed), blend)
    return result.assign(bed=blended) if isinstance(result, xr.Dataset) else blended


def region_distance(
    truth: xr.DataArray, seed: int, like: xr.DataArray | None = None
) -> xr.DataArray:
    """Distance (km) to the picks of region ``seed``'s survey, on ``like`` (default ``truth``)."""
    return distance_to_points(survey_picks(truth, seed), truth if like is None else like)


def fit_blend_on_regions(
    model: str | PathLike[str],
    seeds: Sequence[int],
    *,
    world: str = "v2",
    shape: tuple[int, int] = (80, 80),
    blind_conditioning: bool = False,
    progress: bool = False,
) -> DistanceBlend:
    """Fit the blend of ``model`` on the synthetic regions ``seeds`` of ``world``.

    Parameters
    ----------
    model : path
        A checkpoint or an ensemble folder (its member mean is blended).
    seeds : sequence of int
        Region seeds, held out of the model's training and epoch choice.
    world : str
        A world of :data:`xdeepbedmap.synthetic.WORLDS` whose 1 km bed is
        gridded from a survey (``bed_model="survey"``).
    shape : tuple of int
        Base pixels of each region.
    blind_conditioning : bool
        Run the model on blind inputs (:func:`xdeepbedmap.conditioning.blind`):
        for a bed-only model trained with ``--blind-conditioning``.
    progress : bool
        Show a progress bar over the regions.

    Returns
    -------
    DistanceBlend
    """
    from tqdm.auto import tqdm

    if WORLDS[world].get("bed_model") != "survey":
        raise ValueError(
            f"world {world!r} has no survey lines (bed_model {WORLDS[world].get('bed_model')!r}); "
            "a distance blend needs a world whose 1 km bed is gridded from a survey"
        )
    if not seeds:
        raise ValueError("fit_blend_on_regions: no seeds given")
    parts: list[list[np.ndarray]] = [[], [], [], []]
    for seed in tqdm(seeds, desc="blend regions", unit="region", disable=not progress):
        inputs, truth = make_region(shape, seed=seed, **WORLDS[world])
        truth = align_truth(truth, validate_inputs(inputs))
        arrays = (
            bicubic(inputs).compute(),
            predict_bed(blind(inputs) if blind_conditioning else inputs, model).compute(),
            truth,
            region_distance(truth, seed),
        )
        for part, array in zip(parts, arrays, strict=True):
            part.append(np.asarray(array.values, dtype=np.float64).ravel())
    seeds_text = f"{min(seeds)}-{max(seeds)}" if len(seeds) > 1 else str(seeds[0])
    blend = fit_distance_blend(
        *(np.concatenate(part) for part in parts),
        fitted_on=f"{len(seeds)} world-{world} regions {shape[0]}x{shape[1]} km "
        f"(seeds {seeds_text}), model {Path(model).name}"
        + (" on blind inputs" if blind_conditioning else ""),
    )
    return replace(blend, model_sha256=model_digest(model))
