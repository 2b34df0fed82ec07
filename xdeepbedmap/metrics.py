"""How good is a bed: errors against gridded or point ground truth, and roughness.

Errors are ``prediction - truth`` (positive bias: the bed is too high), over
the pixels or points where both are valid. Point truth (radar picks) is
compared by sampling the grid bilinearly at each point, as GMT ``grdtrack``
does. Roughness is the standard deviation of elevation in a moving window,
the measure the paper maps to show how much texture a bed has.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import ndimage

__all__ = ["error_summary", "point_errors", "roughness", "sample_points"]


def _summary(error: np.ndarray) -> dict[str, float]:
    error = error[np.isfinite(error)]
    if error.size == 0:
        raise ValueError("no location where both the prediction and the truth are valid")
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "bias": float(np.mean(error)),
        "count": int(error.size),
    }


def error_summary(prediction: xr.DataArray, truth: xr.DataArray) -> dict[str, float]:
    """RMSE, MAE and bias (m) of ``prediction`` against a truth grid on the same pixels.

    Raises
    ------
    ValueError
        If the grids do not share their ``x``/``y`` coordinates (within 1 cm)
        or have no valid pixel in common.
    """
    for dim in ("y", "x"):
        a, b = np.asarray(prediction[dim]), np.asarray(truth[dim])
        if a.shape != b.shape or not np.allclose(a, b, rtol=0, atol=0.01):
            raise ValueError(
                f"prediction and truth differ along {dim!r}: {a.size} pixels from {a[0]:.2f} "
                f"vs {b.size} pixels from {b[0]:.2f}"
            )
    return _summary(np.asarray(prediction, dtype=np.float64) - np.asarray(truth, np.float64))


def sample_points(grid: xr.DataArray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``grid`` at points ``(x, y)`` (NaN outside or next to no data)."""
    points = grid.interp(
        x=xr.DataArray(np.asarray(x, dtype=np.float64), dims="point"),
        y=xr.DataArray(np.asarray(y, dtype=np.float64), dims="point"),
        method="linear",
    )
    return np.asarray(points, dtype=np.float64)


def point_errors(
    prediction: xr.DataArray, x: np.ndarray, y: np.ndarray, z: np.ndarray
) -> dict[str, float]:
    """RMSE, MAE and bias (m) of ``prediction`` against point elevations ``z`` at ``(x, y)``."""
    return _summary(sample_points(prediction, x, y) - np.asarray(z, dtype=np.float64))


def roughness(bed: xr.DataArray, window: int = 5) -> xr.DataArray:
    """Standard deviation of elevation in a moving ``window`` x ``window`` pixel window.

    Windows touching no data are NaN.
    """
    if window < 2:
        raise ValueError(f"window must be >= 2 pixels, got {window}")
    values = np.asarray(bed, dtype=np.float64)
    valid = np.isfinite(values)
    filled = np.where(valid, values, 0.0)
    mean = ndimage.uniform_filter(filled, window, mode="nearest")
    mean_sq = ndimage.uniform_filter(filled**2, window, mode="nearest")
    coverage = ndimage.uniform_filter(valid.astype(np.float64), window, mode="nearest")
    std = np.sqrt(np.clip(mean_sq - mean**2, 0.0, None))
    std[coverage < 1.0 - 1e-9] = np.nan
    out = bed.copy(data=std.astype(np.float32))
    out.name = "roughness"
    out.attrs = {"units": "m", "long_name": f"bed roughness (std in {window} x {window} px)"}
    return out
