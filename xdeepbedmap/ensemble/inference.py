"""Ensemble super-resolution: the members' mean bed and their calibrated spread.

:func:`superresolve_ensemble` is :func:`xdeepbedmap.inference.superresolve`
for a tuple of generators: the same option checks, chunking, halo, gap fill,
masking, cropping and CRS (all from :mod:`xdeepbedmap.run_plan`), with one
task per input block running every member on each window batch
(:func:`xdeepbedmap.kernel.superresolve_block_members`). The mean and the
standard deviation are then taken per block over the member axis.

Given the survey picks (``survey=``) and an ensemble with a distance blend
(:mod:`xdeepbedmap.distance_blend`), every member is blended with the bicubic
bed by distance to the nearest pick before the statistics: the mean becomes
``b + w (mean - b)`` and the spread ``w spread`` (the blend is linear), and
the relief is taken of the blended mean. This happens on the uncropped grid,
so the relief still sees its context across a requested region's edge.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any, cast

import dask.array as da
import numpy as np
import pandas as pd
import torch
import xarray as xr

from xdeepbedmap.distance_blend import blend_attrs, blend_values, survey_digest
from xdeepbedmap.ensemble.blending import blend_terms, check_blend
from xdeepbedmap.ensemble.spread_model import RELIEF_DEPTH, calibrated_std, local_relief
from xdeepbedmap.ensemble.store import BUNDLED_ENSEMBLE, Calibration, Ensemble, read_ensemble
from xdeepbedmap.grids import validate_inputs
from xdeepbedmap.inference import output_attrs
from xdeepbedmap.model_store import ModelSpec, check_model_for_data
from xdeepbedmap.quality import filled_fraction
from xdeepbedmap.region import crop_to_region
from xdeepbedmap.run_plan import RunPlan, as_bed, map_kernel, plan_run

__all__ = ["OneMemberWarning", "resolve_ensemble", "superresolve_ensemble"]

EnsembleLike = Ensemble | str | PathLike[str] | Sequence[str | PathLike[str]] | None


class OneMemberWarning(UserWarning):
    """A one-member ensemble has no spread: ``bed_std`` is NaN."""


def resolve_ensemble(models: EnsembleLike) -> Ensemble:
    """Turn what a user passes as ``models`` into an :class:`Ensemble` (members checked now).

    ``None`` is the bundled demo ensemble; an :class:`Ensemble` is used as is;
    a folder or a list of checkpoint files goes through
    :func:`~xdeepbedmap.ensemble.read_ensemble`.

    Raises
    ------
    FileNotFoundError
        ``None`` and no bundled ensemble (it is built by ``make demo-ensemble``),
        or a path that does not exist.
    EnsembleError
        An incomplete or inconsistent ensemble folder.
    """
    if isinstance(models, Ensemble):
        return models
    if models is None:
        if not (BUNDLED_ENSEMBLE / "ensemble.json").exists():
            raise FileNotFoundError(
                f"no bundled demo ensemble at {BUNDLED_ENSEMBLE}; build it with "
                "`make demo-ensemble`, or pass models= an ensemble folder or checkpoint files"
            )
        models = BUNDLED_ENSEMBLE
    if isinstance(models, (str, PathLike)) and not Path(models).exists():
        raise FileNotFoundError(f"ensemble not found: {models} (expected a folder or checkpoint)")
    return read_ensemble(models)


def _calibration(
    ensemble: Ensemble, calibration: Calibration | float | None
) -> tuple[Calibration, str]:
    """The error model to apply (the caller's, the ensemble's or the bare spread), its origin."""
    if calibration is None:
        calibration = ensemble.calibration
    if calibration is None:
        return Calibration(1.0, "", 0), "uncalibrated"
    if isinstance(calibration, Calibration):
        return calibration, f"fitted on {calibration.fitted_on}: bed_std = {calibration.formula}"
    scale = float(calibration)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"calibration must be a factor > 0, got {calibration!r}")
    return Calibration(scale, "given by the caller", 0), "given by the caller"


def _calibrated(spread: np.ndarray, relief: np.ndarray | None, cal: Calibration) -> np.ndarray:
    return calibrated_std(spread, relief, cal.std_scale, cal.floor, cal.relief_scale).astype(
        np.float32
    )


def _std(spread: da.Array, mean: da.Array, cal: Calibration) -> da.Array:
    """The calibrated standard deviation, lazily (the relief reads RELIEF_DEPTH px around)."""
    # float64 until the end; with floor = relief_scale = 0, sqrt((s d)**2) is s d exactly
    relief = None
    if cal.relief_scale:
        relief = mean.map_overlap(
            local_relief, depth=RELIEF_DEPTH, boundary="none", dtype=np.float64
        )
    return da.map_blocks(_calibrated, spread, relief, cal, dtype=np.float32)


def _member_mean(block: np.ndarray) -> np.ndarray:
    # float64 sum: one member returns its own float32 values exactly
    return block.mean(axis=0, dtype=np.float64).astype(np.float32)


def _member_spread(block: np.ndarray) -> np.ndarray:
    if block.shape[0] < 2:
        return np.full(block.shape[1:], np.nan, dtype=np.float64)
    return block.std(axis=0, ddof=1, dtype=np.float64)


def superresolve_ensemble(
    ds: xr.Dataset,
    models: EnsembleLike = None,
    *,
    calibration: Calibration | float | None = None,
    members: bool = False,
    halo: int | None = None,
    window: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    chunks: int | tuple[int, int] | None = None,
    resources: dict[str, float] | None = None,
    quality: bool = False,
    ice_mask: bool | None = None,
    survey: pd.DataFrame | None = None,
) -> xr.Dataset:
    """Super-resolve with every member of an ensemble: mean bed and calibrated spread.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical inputs, as for :func:`xdeepbedmap.inference.superresolve`.
    models : Ensemble, folder, checkpoint files or None
        The members: an :class:`~xdeepbedmap.ensemble.Ensemble`, an ensemble
        folder (``ensemble.json`` and member checkpoints), a list of
        checkpoint files (uncalibrated), or ``None`` for the bundled demo
        ensemble (``make demo-ensemble``).
    calibration : Calibration or float, optional
        Factor on the members' standard deviation; default: the ensemble's
        calibration, or 1 (uncalibrated) when it has none.
    members : bool
        Also return each member's bed as ``bed_members`` on a ``member`` dim.
    halo, window, batch_size, device, dtype, chunks, resources, quality, ice_mask
        As :func:`xdeepbedmap.inference.superresolve`.
    survey : pandas.DataFrame, optional
        The bed picks (``x``, ``y`` in the inputs' CRS, e.g. from
        :func:`xdeepbedmap.survey.read_points`): blend the members by
        distance to them with the ensemble's ``blend`` (module docstring).
        Required when the calibration was fitted on blended output.

    Returns
    -------
    xarray.Dataset
        ``bed`` (member mean, float32, attributes as ``superresolve`` plus
        ``ensemble`` and ``member_sha256``), ``bed_std`` (standard deviation
        over the members, ``ddof=1``, times the calibration factor; attributes
        ``calibrated`` (0/1), ``std_scale`` and ``calibration``), and, on
        request, ``bed_members`` and ``filled_fraction``. Same grid, CRS, NaN
        nodata, masking and cropping as ``superresolve``; lazy when ``ds`` is
        dask-backed. A one-member ensemble's ``bed`` equals ``superresolve``
        exactly, and its ``bed_std`` is NaN (one sample has no spread).

    Warns
    -----
    OneMemberWarning
        When the ensemble has one member.

    Raises
    ------
    ValueError
        ``survey`` given to an ensemble without a blend, or missing for a
        calibration fitted on blended output.
    """
    validate_inputs(ds)
    ensemble = resolve_ensemble(models)
    cal, origin = _calibration(ensemble, calibration)
    check_blend(ensemble, cal, survey)
    plan = plan_run(
        ds,
        halo=halo,
        window=window,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        chunks=chunks,
        resources=resources,
        ice_mask=ice_mask,
    )
    specs = tuple(replace(spec, precision=plan.precision) for spec in ensemble.members)
    if len(specs) == 1:
        warnings.warn(
            f"ensemble {ensemble.source}: one member, so bed_std is NaN (no spread to measure)",
            OneMemberWarning,
            stacklevel=2,
        )
    stack = map_kernel(plan, specs)  # (K, 4 ny, 4 nx), one (K, ., .) chunk per block
    attrs = _ensemble_attrs(ensemble, specs, plan, models, ds)
    attrs["ice_mask_applied"] = int(plan.use_ice)
    mean = stack.map_blocks(_member_mean, drop_axis=0, dtype=np.float32)
    spread = stack.map_blocks(_member_spread, drop_axis=0, dtype=np.float64)
    if survey is not None:
        assert ensemble.blend is not None  # _check_blend
        weight, base = blend_terms(ds, survey, ensemble.blend, mean.chunks)
        mean = blend_values(mean, base, weight)
        spread = weight * spread
        stack = blend_values(stack, base[None], weight[None]) if members else stack
        attrs.update(blend_attrs(ensemble.blend, survey_digest(survey)))
    std = _std(spread, mean, cal)
    out = xr.Dataset(
        {
            "bed": as_bed(mean, plan, attrs),
            "bed_std": as_bed(std, plan, _std_attrs(attrs, cal, origin), "bed_std"),
        }
    )
    if members:
        out["bed_members"] = _members_array(stack, out["bed"], attrs)
    if quality:
        out["filled_fraction"] = filled_fraction(plan.work, plan.halo)
    cropped = cast(xr.Dataset, crop_to_region(out, ds))
    return cropped.compute() if ds["bed"].chunks is None else cropped


def _ensemble_attrs(
    ensemble: Ensemble,
    specs: tuple[ModelSpec, ...],
    plan: RunPlan,
    models: Any,
    ds: xr.Dataset,
) -> dict[str, Any]:
    """``superresolve``'s attributes for the first member, naming the whole ensemble."""
    attrs = output_attrs(specs[0], plan.halo, plan.window, plan.device)
    attrs["long_name"] = "bed elevation (DeepBedMap ensemble mean, 250 m)"
    attrs["model"] = Path(ensemble.source.split(", ")[0]).name if ensemble.source else "ensemble"
    del attrs["model_sha256"]  # one digest per member instead
    attrs["ensemble_members"] = len(specs)
    # a comma-separated string: kept by Zarr, GeoTIFF tags and the resume identity alike
    attrs["member_sha256"] = ",".join(spec.digest for spec in specs)
    attrs.update(check_model_for_data(None if models is None else models, ds))
    return attrs


def _std_attrs(attrs: dict[str, Any], cal: Calibration, origin: str) -> dict[str, Any]:
    std = dict(attrs)
    std["long_name"] = "bed elevation uncertainty (calibrated ensemble standard deviation, 250 m)"
    std["calibrated"] = int(origin != "uncalibrated")
    std["std_scale"] = float(cal.std_scale)
    std["std_floor"] = float(cal.floor)
    std["relief_scale"] = float(cal.relief_scale)
    std["calibration"] = origin
    return std


def _members_array(stack: da.Array, bed: xr.DataArray, attrs: dict[str, Any]) -> xr.DataArray:
    members = xr.DataArray(
        stack,
        dims=("member", "y", "x"),
        coords={"member": np.arange(stack.shape[0]), "y": bed.y, "x": bed.x},
        name="bed_members",
        attrs={**attrs, "long_name": "bed elevation of each ensemble member (250 m)"},
    )
    return members.rio.write_crs(bed.rio.crs).rio.write_nodata(np.nan, encoded=False)
