"""Judge a model against bicubic interpolation on a region with known truth."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xdeepbedmap.baselines import bicubic
from xdeepbedmap.ensemble import superresolve_ensemble
from xdeepbedmap.ensemble.inference import resolve_ensemble
from xdeepbedmap.ensemble.metrics import ensemble_summary
from xdeepbedmap.grids import validate_inputs
from xdeepbedmap.inference import superresolve
from xdeepbedmap.metrics import error_summary, roughness
from xdeepbedmap.region import crop_to_region
from xdeepbedmap.truth import align_truth

__all__ = ["evaluate", "format_table"]


def evaluate(
    inputs: xr.Dataset,
    truth: xr.DataArray,
    model: Any = None,
    *,
    ensemble: Any = None,
    roughness_window: int = 5,
    figure: str | PathLike[str] | None = None,
    survey: Any = None,
    blend: Any = None,
    **superresolve_kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """RMSE, MAE, bias and roughness of the model and of bicubic against the truth.

    Parameters
    ----------
    inputs : xarray.Dataset
        Canonical inputs of the evaluation region.
    truth : xarray.DataArray
        250 m truth nested in the inputs' output grid.
    model : optional
        Anything :func:`xdeepbedmap.inference.superresolve` accepts.
    ensemble : optional
        Anything :func:`xdeepbedmap.ensemble.superresolve_ensemble` accepts
        as ``models`` (an :class:`~xdeepbedmap.ensemble.Ensemble`, a folder,
        checkpoint files); ``None``: no ensemble.
    roughness_window : int
        Window (250 m pixels) of the roughness measure.
    figure : path, optional
        Also write a comparison PNG (inputs, bicubic, model, truth).
    survey : pandas.DataFrame, optional
        Survey picks: an ensemble that has a distance blend is blended by
        distance to them (see :func:`~xdeepbedmap.ensemble.superresolve_ensemble`;
        one without is judged unblended), and so is the model if ``blend``
        is given.
    blend : DistanceBlend, optional
        The model's distance blend (:mod:`xdeepbedmap.distance_blend`): with
        ``survey``, adds a ``"DeepBedMap blended"`` row.
    **superresolve_kwargs
        Passed on (``halo``, ``device`` ...).

    Returns
    -------
    dict
        ``{"DeepBedMap": {...}, "bicubic": {...}, "truth": {...}}`` with
        ``rmse``, ``mae``, ``bias`` and ``count`` against the truth (not for the
        truth itself) and ``roughness``, the median moving-window standard
        deviation over pixels valid in all three. Compare roughness to the
        truth's: closer is better. With ``ensemble``, also a
        ``"DeepBedMap ensemble"`` row (its mean bed) and an ``"uncertainty"``
        entry (:func:`xdeepbedmap.ensemble.metrics.ensemble_summary`); the
        ``figure`` then has an uncertainty panel, and
        ``<stem>_uncertainty.png`` beside it shows mean, std, absolute error
        and the reliability diagram.
    """
    base = validate_inputs(inputs)
    # inputs opened for a bbox carry a margin: judge the requested region only
    truth = crop_to_region(align_truth(truth, base), inputs)
    beds = {
        "DeepBedMap": superresolve(inputs, model, **superresolve_kwargs),
        "bicubic": crop_to_region(bicubic(inputs), inputs),
    }
    if blend is not None and survey is not None:
        from xdeepbedmap.blend_regions import blend_model_bed

        beds["DeepBedMap blended"] = blend_model_bed(beds["DeepBedMap"], inputs, survey, blend)
    std = None
    if ensemble is not None:
        ensemble = resolve_ensemble(ensemble)
        picks = survey if ensemble.blend is not None else None
        result = superresolve_ensemble(
            inputs, ensemble, survey=picks, **superresolve_kwargs
        ).compute()
        beds["DeepBedMap ensemble"], std = result["bed"], result["bed_std"]
    beds = {name: bed.compute() for name, bed in beds.items()}
    rough = {
        name: roughness(bed, roughness_window) for name, bed in {**beds, "truth": truth}.items()
    }
    common = np.logical_and.reduce([np.isfinite(r.values) for r in rough.values()])
    table: dict[str, dict[str, float]] = {}
    for name, bed in beds.items():
        table[name] = error_summary(bed, truth)
    table["truth"] = {}
    for name, values in rough.items():
        table[name]["roughness"] = float(np.median(values.values[common]))
    if std is not None:
        table["uncertainty"] = _uncertainty(beds["DeepBedMap ensemble"], std, truth, figure)
    if figure is not None:
        from xdeepbedmap.plot import plot_comparison

        plot_comparison(inputs, beds, truth, figure, uncertainty=std)
    return table


def _uncertainty(
    mean: xr.DataArray, std: xr.DataArray, truth: xr.DataArray, figure: Any
) -> dict[str, Any]:
    """The ensemble's uncertainty numbers, and their figure beside ``figure``."""
    summary = ensemble_summary(mean, std, truth)
    summary["calibrated"] = int(std.attrs.get("calibrated", 0))
    summary["std_scale"] = float(std.attrs.get("std_scale", 1.0))
    summary["std_floor"] = float(std.attrs.get("std_floor", 0.0))
    summary["relief_scale"] = float(std.attrs.get("relief_scale", 0.0))
    if figure is not None:
        from xdeepbedmap.ensemble.plot import plot_uncertainty

        path = Path(figure)
        plot_uncertainty(
            mean, std, truth, summary["reliability"], path.with_name(f"{path.stem}_uncertainty.png")
        )
    return summary


def format_table(table: dict[str, dict[str, Any]]) -> str:
    """A plain-text table of :func:`evaluate`'s result, with the RMSE improvement."""
    rows = {name: row for name, row in table.items() if name != "uncertainty"}
    width = max(12, *(len(name) for name in rows))
    head = f"{'RMSE (m)':>9s} {'MAE (m)':>8s} {'bias (m)':>9s} {'roughness (m)':>14s}"
    lines = [f"{'':{width}s} {head}"]
    for name, row in rows.items():
        cells = [f"{row[k]:9.2f}" if k in row else f"{'':9s}" for k in ("rmse", "mae", "bias")]
        rough = f"{row['roughness']:14.2f}"
        lines.append(f"{name:{width}s} {cells[0]} {cells[1][1:]} {cells[2]} {rough}")
    if "bicubic" in rows:
        changes = [
            f"{name} {row['rmse'] / rows['bicubic']['rmse'] - 1:+.1%}"
            for name, row in rows.items()
            if name.startswith("DeepBedMap") and "rmse" in row
        ]
        lines.append(f"RMSE vs bicubic (negative: better than bicubic): {', '.join(changes)}")
    if "uncertainty" in table:
        u = table["uncertainty"]
        lines.append(
            f"ensemble spread: coverage {u['coverage_68']:.2f} of 68 %, {u['coverage_95']:.2f} "
            f"of 95 %; z {u['z_mean']:+.2f} +- {u['z_std']:.2f}; rank corr(std, |error|) "
            f"{u['spearman_std_error']:.2f}; CRPS {u['crps']:.2f} m"
        )
    return "\n".join(lines)
