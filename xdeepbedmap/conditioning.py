"""Perturb the conditioning inputs of a canonical Dataset (ablation, bed-only training).

DeepBedMap conditions the 1 km bed on the surface, the velocity and the
accumulation. Whether a model uses one of them is measured by destroying it
and watching the error: :func:`smooth` removes its short wavelengths,
:func:`shuffle` keeps its values but permutes blocks of it (local relation to
the bed lost), :func:`flatten` sets it to its mean. :func:`blind` replaces all
three by fixed constants: a model trained and run on blind inputs is the same
network doing single-image super-resolution of the bed (the bed-only model).
No-data stays where it was in every case.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import ndimage

from xdeepbedmap.nodata import fill_nearest

__all__ = ["BLIND_VALUES", "CONDITIONING", "blind", "flatten", "shuffle", "smooth"]

#: Conditioning groups and their variables (vx, vy go together).
CONDITIONING: dict[str, tuple[str, ...]] = {
    "surface": ("surface",),
    "velocity": ("vx", "vy"),
    "accumulation": ("accumulation",),
}
#: Values of :func:`blind` inputs: fixed, so training and inference agree.
BLIND_VALUES = {"surface": 1000.0, "vx": 0.0, "vy": 0.0, "accumulation": 200.0}


def _variables(ds: xr.Dataset, group: str) -> tuple[str, ...]:
    if group not in CONDITIONING:
        raise ValueError(f"group must be one of {sorted(CONDITIONING)}, got {group!r}")
    return CONDITIONING[group]


def _pixel_km(da: xr.DataArray) -> float:
    return float(abs(da[da.dims[1]][1] - da[da.dims[1]][0])) / 1000.0


def _replace(ds: xr.Dataset, name: str, values: np.ndarray) -> xr.Dataset:
    """``ds`` with ``name``'s values replaced, no-data kept where it was."""
    old = ds[name]
    kept = np.where(np.isfinite(old.values), values, np.nan).astype(old.dtype)
    return ds.assign({name: old.copy(data=kept)})


def smooth(ds: xr.Dataset, group: str, sigma_km: float) -> xr.Dataset:
    """Gaussian-smooth a conditioning group (``sigma_km`` standard deviation, NaN-aware)."""
    for name in _variables(ds, group):
        values = ds[name].values.astype(np.float64)
        valid = np.isfinite(values)
        sigma = sigma_km / _pixel_km(ds[name])
        num = ndimage.gaussian_filter(np.where(valid, values, 0.0), sigma, mode="nearest")
        den = ndimage.gaussian_filter(valid.astype(np.float64), sigma, mode="nearest")
        with np.errstate(invalid="ignore", divide="ignore"):
            ds = _replace(ds, name, num / den)
    return ds


def shuffle(ds: xr.Dataset, group: str, block_km: float = 8.0, seed: int = 0) -> xr.Dataset:
    """Permute ``block_km`` square blocks of a conditioning group (the same permutation for all).

    Blocks that do not fit whole at the bottom and right edges stay in place.
    """
    rng = np.random.default_rng(seed)
    permutation = None
    for name in _variables(ds, group):
        values = fill_nearest(ds[name].values.astype(np.float64))
        b = max(1, int(round(block_km / _pixel_km(ds[name]))))
        ny, nx = values.shape[0] // b, values.shape[1] // b
        blocks = values[: ny * b, : nx * b].reshape(ny, b, nx, b).swapaxes(1, 2).reshape(-1, b, b)
        if permutation is None:
            permutation = rng.permutation(len(blocks))
        moved = blocks[permutation].reshape(ny, nx, b, b).swapaxes(1, 2).reshape(ny * b, nx * b)
        out = values.copy()
        out[: ny * b, : nx * b] = moved
        ds = _replace(ds, name, out)
    return ds


def flatten(ds: xr.Dataset, group: str) -> xr.Dataset:
    """Set a conditioning group to its mean over valid pixels."""
    for name in _variables(ds, group):
        ds = _replace(ds, name, np.full(ds[name].shape, float(np.nanmean(ds[name].values))))
    return ds


def blind(ds: xr.Dataset) -> xr.Dataset:
    """All conditioning inputs set to :data:`BLIND_VALUES` (bed-only super-resolution)."""
    for name, value in BLIND_VALUES.items():
        ds = _replace(ds, name, np.full(ds[name].shape, value))
    return ds
