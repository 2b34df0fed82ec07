"""Ice over the synthetic bed: surface (bed-to-surface transfer) and velocity (SIA plus sliding)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from xdeepbedmap.nodata import fill_nearest
from xdeepbedmap.synthetic.constants import (
    COAST_OFFSET,
    DAMPING_LENGTH,
    GLEN_A,
    GLEN_N,
    GRAVITY,
    MIN_SURFACE,
    MIN_THICKNESS,
    RHO_ICE,
    SECONDS_PER_YEAR,
    SLIDING_C,
    YIELD_STRESS,
)


def _interp_to(field: np.ndarray, factor_in: int, factor_out: int) -> np.ndarray:
    """Bilinear interpolation between two grids nested in the same base grid.

    ``factor_in`` and ``factor_out`` are pixels per base pixel of the source and
    the destination. NaN-free input expected.
    """
    ny, nx = field.shape
    base = (ny // factor_in, nx // factor_in)
    out_shape = (base[0] * factor_out, base[1] * factor_out)
    scale = factor_in / factor_out
    rows = (np.arange(out_shape[0]) + 0.5) * scale - 0.5
    cols = (np.arange(out_shape[1]) + 0.5) * scale - 0.5
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    return ndimage.map_coordinates(field, [rr, cc], order=1, mode="nearest")


def _surface_250(bed: np.ndarray, pixel: float) -> np.ndarray:
    """Ice surface on the 250 m grid: Nye profile plus the damped bed imprint."""
    ocean = ~np.isfinite(bed)
    if ocean.any():
        distance = ndimage.distance_transform_edt(~ocean) * pixel
    else:  # no coast in the region: put it 100 km beyond the south edge
        distance = (bed.shape[0] - np.arange(bed.shape[0])[:, None]) * pixel + 100e3
        distance = np.broadcast_to(distance, bed.shape)
    profile = np.sqrt(2.0 * YIELD_STRESS * (distance + COAST_OFFSET) / (RHO_ICE * GRAVITY))
    filled = fill_nearest(bed)
    thickness = max(float(np.mean(profile - filled)), 500.0)
    ky = np.fft.fftfreq(bed.shape[0], d=pixel)[:, None]
    kx = np.fft.rfftfreq(bed.shape[1], d=pixel)[None, :]
    transfer = 1.0 / (1.0 + (2 * np.pi * np.hypot(ky, kx) * DAMPING_LENGTH * thickness) ** 2)
    anomaly = filled - filled.mean()
    imprint = np.fft.irfft2(np.fft.rfft2(anomaly) * transfer, s=bed.shape)
    # a bed above sea level lifts the whole profile; one below it does not sink it
    surface = profile + max(float(filled.mean()), 0.0) + imprint
    surface = np.maximum(np.maximum(surface, filled + MIN_THICKNESS), MIN_SURFACE)
    return np.where(ocean, np.nan, surface)


def _velocity_250(surface: np.ndarray, bed: np.ndarray, pixel: float) -> tuple[np.ndarray, ...]:
    """Shallow-ice velocity (m/yr) on the 250 m grid: deformation plus trough sliding."""
    ocean = ~np.isfinite(surface)
    s = fill_nearest(surface)
    b = fill_nearest(bed)
    thickness = np.maximum(s - b, MIN_THICKNESS)
    mean_h = float(thickness.mean())
    # longitudinal stresses average the driving stress over a few ice thicknesses
    sigma = 4.0 * mean_h / pixel
    s_smooth = ndimage.gaussian_filter(s, sigma, mode="nearest")
    h_smooth = ndimage.gaussian_filter(thickness, sigma, mode="nearest")
    b_smooth = ndimage.gaussian_filter(b, sigma, mode="nearest")
    dsdy, dsdx = np.gradient(s_smooth, pixel)
    dsdy = -dsdy  # rows run north to south: y decreases with the row index
    slope = np.hypot(dsdx, dsdy) + 1e-9
    tau = RHO_ICE * GRAVITY * h_smooth * slope
    deformation = (
        2 * GLEN_A / (GLEN_N + 1) * (RHO_ICE * GRAVITY * slope) ** GLEN_N * h_smooth ** (GLEN_N + 1)
    ) * SECONDS_PER_YEAR
    wet = 1.0 / (1.0 + np.exp(b_smooth / 100.0))  # beds below sea level slide
    speed = deformation + SLIDING_C * wet * tau
    vx = -speed * dsdx / slope
    vy = -speed * dsdy / slope
    return np.where(ocean, np.nan, vx), np.where(ocean, np.nan, vy)
