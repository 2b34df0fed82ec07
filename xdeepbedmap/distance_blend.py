"""Trust the network by distance to the nearest bed measurement.

The 1 km input bed (BEDMAP2, or the synthetic survey bed) is measured along
radar lines and interpolated between them. Near a line it is already close to
the truth, and what the network adds there is mostly noise; far from the
lines the surface and the flow are all there is, and the network's residual
is worth most of its size. DeepBedMap's generator is never told where the
lines are, so it adds the same amount of detail everywhere. On world v2's
held-out regions the least-squares weight of the network's residual over the
bicubic bed rises from about 0.15 within 1 km of a pick to 1 beyond 15 km
(docs/ablation_v2.md).

:func:`fit_distance_blend` fits that weight, ``w(d)``, on regions with a known
truth (never the region it will be judged on), and :func:`blend_by_distance`
applies it::

    bed = baseline + w(d) * (network - baseline)

with ``baseline`` the bicubic 1 km bed and ``d`` the distance (km) from each
output pixel to the nearest bed measurement (:func:`distance_to_points`).
``w`` is piecewise linear between the fitted knots, non-decreasing, in
[0, 1], and constant beyond the first and last knot, so the result has no
steps and never extrapolates the network's residual.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xdeepbedmap.atomic import atomic_path
from xdeepbedmap.pick_distance import distance_to_points, survey_digest

__all__ = [
    "DEFAULT_EDGES_KM",
    "DistanceBlend",
    "blend_attrs",
    "blend_by_distance",
    "blend_values",
    "distance_to_points",
    "fit_distance_blend",
    "survey_digest",
]

#: Distance bins (km) of the fit: finer near the lines, where the weight changes fastest.
DEFAULT_EDGES_KM = (0.0, 1.0, 2.0, 3.5, 5.0, 7.5, 10.0, 15.0, np.inf)
_FORMAT = 1


@dataclass(frozen=True)
class DistanceBlend:
    """The fitted weight of the network's residual against distance to the nearest pick.

    Attributes
    ----------
    knots_km : tuple of float
        Distances (km) of the knots, increasing: the mean distance of the
        fitted pixels in each bin.
    weights : tuple of float
        Weight at each knot, in [0, 1] and non-decreasing.
    fitted_on : str
        Where it was fitted (regions, seeds, model).
    pixels : int
        Number of output pixels it was fitted on.
    model_sha256 : str
        Digest of the model it was fitted for (a checkpoint's, or of an
        ensemble's member digests); empty when unknown.
    """

    knots_km: tuple[float, ...]
    weights: tuple[float, ...]
    fitted_on: str = ""
    pixels: int = 0
    model_sha256: str = ""

    def __post_init__(self) -> None:
        knots, weights = np.asarray(self.knots_km, float), np.asarray(self.weights, float)
        if knots.ndim != 1 or knots.size == 0 or knots.shape != weights.shape:
            raise ValueError(
                f"DistanceBlend: knots_km and weights need the same non-zero length, "
                f"got {knots.size} and {weights.size}"
            )
        if not (np.isfinite(knots).all() and (np.diff(knots) > 0).all() and knots[0] >= 0):
            raise ValueError(f"DistanceBlend: knots_km must increase from >= 0, got {knots}")
        if not ((weights >= 0) & (weights <= 1)).all():
            raise ValueError(f"DistanceBlend: weights must lie in [0, 1], got {weights}")

    def weight(self, distance_km: np.ndarray) -> np.ndarray:
        """``w(d)``: piecewise linear between the knots, constant outside them (NaN stays NaN)."""
        d = np.asarray(distance_km, dtype=np.float64)
        w = np.interp(d, self.knots_km, self.weights)
        return np.where(np.isnan(d), np.nan, w).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable record (what :meth:`save` writes)."""
        return {"format": _FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, record: Any, where: str = "record") -> DistanceBlend:
        """The blend of a :meth:`to_dict` record; anything else is refused."""
        if not isinstance(record, dict) or record.get("format") != _FORMAT:
            raise ValueError(f"{where}: not a distance blend of format {_FORMAT}")
        try:
            return cls(
                tuple(float(k) for k in record["knots_km"]),
                tuple(float(w) for w in record["weights"]),
                str(record.get("fitted_on", "")),
                int(record.get("pixels", 0)),
                str(record.get("model_sha256", "")),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"{where}: not a distance blend ({err!r})") from err

    def save(self, path: str | PathLike[str]) -> Path:
        """Write the blend as JSON, atomically (a reader sees the old or the new file)."""
        with atomic_path(path, overwrite=True) as staged:
            staged.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | PathLike[str]) -> DistanceBlend:
        """Read a blend written by :meth:`save`; a file of another kind is refused."""
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not a distance blend ({err})") from err
        return cls.from_dict(record, str(path))

    def describe(self) -> str:
        """One line: the weight at each knot."""
        pairs = ", ".join(
            f"{k:.1f} km: {w:.2f}" for k, w in zip(self.knots_km, self.weights, strict=True)
        )
        return f"residual weight by distance to the nearest pick: {pairs}"


def _isotonic(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, w in zip(values, weights, strict=True):
        blocks.append([float(v), float(w), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            total = w1 + w2
            blocks.append([(v1 * w1 + v2 * w2) / total, total, n1 + n2])
    return np.concatenate([np.full(int(n), v) for v, _, n in blocks])


def fit_distance_blend(
    baseline: np.ndarray,
    prediction: np.ndarray,
    truth: np.ndarray,
    distance_km: np.ndarray,
    edges_km: tuple[float, ...] = DEFAULT_EDGES_KM,
    *,
    fitted_on: str = "",
    min_pixels: int = 1000,
) -> DistanceBlend:
    """Least-squares weight of ``prediction - baseline`` in each distance bin.

    In each bin the weight minimising ``sum((baseline + w r - truth)^2)`` with
    ``r = prediction - baseline`` is ``sum(r e) / sum(r^2)``, ``e = truth -
    baseline``; it is clipped to [0, 1] and the bins are made non-decreasing
    (weighted by ``sum(r^2)``, the information each bin holds).

    Parameters
    ----------
    baseline, prediction, truth, distance_km : numpy.ndarray
        Same-shaped arrays (any shape; several regions may be concatenated),
        NaN where unknown; pixels with any NaN are left out.
    edges_km : tuple of float
        Bin edges (km), increasing from 0.
    fitted_on : str
        Provenance, stored with the result.
    min_pixels : int
        Bins with fewer finite pixels are merged into their neighbour.

    Returns
    -------
    DistanceBlend

    Raises
    ------
    ValueError
        When the arrays differ in shape or no bin has ``min_pixels`` pixels.
    """
    arrays = [np.asarray(a, dtype=np.float64).ravel() for a in (baseline, prediction, truth)]
    d = np.asarray(distance_km, dtype=np.float64).ravel()
    if len({a.size for a in arrays} | {d.size}) != 1:
        raise ValueError(
            "fit_distance_blend: baseline, prediction, truth and distance_km differ in size: "
            f"{[a.size for a in arrays] + [d.size]}"
        )
    b, p, t = arrays
    ok = np.isfinite(b) & np.isfinite(p) & np.isfinite(t) & np.isfinite(d)
    b, p, t, d = b[ok], p[ok], t[ok], d[ok]
    r, e = p - b, t - b
    which = np.clip(np.searchsorted(edges_km, d, side="right") - 1, 0, len(edges_km) - 2)
    groups: list[np.ndarray] = []  # pixel masks of the pooled bins, nearest first
    pending = np.zeros(d.size, dtype=bool)
    for index in range(len(edges_km) - 1):
        pending |= which == index
        if pending.sum() >= min_pixels:
            groups.append(pending)
            pending = np.zeros(d.size, dtype=bool)
    if pending.any():  # the farthest bins lack min_pixels: pool them with the previous group
        if groups:
            groups[-1] = groups[-1] | pending
        else:
            groups.append(pending)
    knots, raw, info = [], [], []
    for group in groups:
        rr = float((r[group] ** 2).sum())
        knots.append(float(d[group].mean()))
        raw.append(float(np.clip((r[group] * e[group]).sum() / rr, 0, 1)) if rr > 0 else 1.0)
        info.append(rr)
    if not knots or sum(ok) < min_pixels:
        raise ValueError(f"fit_distance_blend: {int(ok.sum())} finite pixels, need >= {min_pixels}")
    weights = np.clip(_isotonic(np.array(raw), np.array(info) + 1e-12), 0, 1)
    return DistanceBlend(tuple(knots), tuple(float(w) for w in weights), fitted_on, int(ok.sum()))


def blend_values(bed: Any, base: Any, weight: Any) -> Any:
    """``base + weight (bed - base)`` as float32; ``bed`` itself where ``base`` is unknown.

    The one formula of the blend, for numpy or dask arrays of any matching
    (broadcastable) shape: a single bed, or an ensemble's member stack.
    """
    return np.where(np.isnan(base), bed, base + weight * (bed - base)).astype(np.float32)


def blend_by_distance(
    prediction: xr.DataArray,
    baseline: xr.DataArray,
    distance_km: xr.DataArray,
    blend: DistanceBlend,
) -> xr.DataArray:
    """``baseline + w(d) (prediction - baseline)``, lazily, on the prediction's grid.

    Parameters
    ----------
    prediction : xarray.DataArray
        The network's 250 m bed (e.g. ``superresolve``'s result).
    baseline : xarray.DataArray
        The bicubic bed on the same grid (:func:`xdeepbedmap.baselines.bicubic`).
    distance_km : xarray.DataArray
        Distance (km) to the nearest pick on the same grid (:func:`distance_to_points`).
    blend : DistanceBlend
        The fitted weights.

    Returns
    -------
    xarray.DataArray
        The blended bed (:func:`blend_values`), float32, with the prediction's
        attributes plus ``distance_blend`` (the weights) and ``history``
        noting the step.
    """
    for name, other in (("baseline", baseline), ("distance_km", distance_km)):
        if other.shape != prediction.shape or not all(
            np.allclose(other[dim].values, prediction[dim].values) for dim in ("y", "x")
        ):
            raise ValueError(
                f"blend_by_distance: {name} is not on the prediction's grid "
                f"(shape {other.shape}, expected {prediction.shape} with the same x/y)"
            )
    weight = xr.apply_ufunc(
        blend.weight, distance_km, dask="parallelized", output_dtypes=[np.float32]
    )
    out = prediction.copy(data=blend_values(prediction.data, baseline.data, weight.data))
    out.attrs = dict(prediction.attrs)
    out.attrs.update(blend_attrs(blend, distance_km.attrs.get("survey_sha256")))
    out.attrs["history"] = (
        prediction.attrs.get("history", "") + "; blended with the bicubic bed by distance to "
        "the nearest pick (xdeepbedmap.distance_blend)"
    ).lstrip("; ")
    return out.rename(prediction.name)


def blend_attrs(blend: DistanceBlend, survey_sha256: str | None) -> dict[str, str]:
    """What a blended result records (and a resumed write must match): weights and picks."""
    attrs = {
        "distance_blend": blend.describe(),
        "distance_blend_knots": json.dumps([blend.knots_km, blend.weights]),
    }
    if survey_sha256:
        attrs["survey_sha256"] = survey_sha256
    return attrs
