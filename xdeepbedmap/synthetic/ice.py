"""Ice over the synthetic bed: surface (bed-to-surface transfer) and velocity (SIA plus sliding).

Two versions of the physics; ``physics="v1"`` is the default until a demo
model trained on v2 is bundled.

**v1.** The bed anomaly is filtered with ``1 / (1 + (L0 k H)^2)``
(``L0`` = :data:`~xdeepbedmap.synthetic.constants.DAMPING_LENGTH` = 5, ``k``
the angular wavenumber, ``H`` the region's mean thickness): half of the bed
reaches the surface at a wavelength of ``2 pi L0 H`` (about 30 H, 45 km under
1.5 km of ice), whatever the ice does. Velocity: shallow-ice deformation plus
linear sliding ``SLIDING_C tau_b`` on beds below sea level.

**v2: the transfer depends on k H and on the slip ratio.** Gudmundsson (2003,
J. Geophys. Res. 108(B5), 2227, doi:10.1029/2002JB002107) solved the
linearised full-Stokes problem for the steady bed-to-surface transfer of
topography. Its controls are the wavelength over the ice thickness and the
slip ratio ``C`` (mean basal sliding velocity over mean deformation
velocity): with no slip, bed features shorter than some tens of ice
thicknesses hardly reach the surface; with the large slip ratios of ice
streams (C of 10-100 and more) the transfer approaches 1 down to wavelengths
of a few ice thicknesses. We do not reproduce his full solution; we use the
simplified closed form (our own, chosen to have those limits)::

    T(kH, C) = sech(kH) / (1 + L0^2 (kH)^2 / (1 + C))

- ``C = 0`` gives v1's filter (times ``sech(kH)``, which is 1 at long
  wavelengths): half transfer at about 30 H.
- Sliding widens the pass band by ``sqrt(1 + C)``. Half transfer (from
  ``benchmarks/transfer_curve.py``): wavelength 32 H for C = 0, 26 H for
  C = 0.5, 11 H for C = 10, 6.1 H for C = 100 (9 km under 1.5 km of ice);
  at a wavelength of 10 H, C = 0 transmits 8% and C = 100 transmits 76%.
- ``sech(kH)`` is the decay of a perturbation through a slab of thickness H
  (potential-flow-like, ``exp(-kH)`` for ``kH >> 1``): even a freely sliding
  slab does not transmit features much shorter than its thickness.
- Limits: ``T -> 1`` as ``k -> 0`` for every C and as ``C -> inf`` at
  ``kH << 1``; ``T -> 0`` for ``kH >> 1``; ``T`` grows monotonically with C.
  The form omits the weak amplification (transfer slightly above 1) that
  full-Stokes solutions can show at intermediate wavelengths.

The slip ratio varies in space: :data:`SLIP_RATIO_STREAM` (100) over beds
below sea level (soft, wet trough sediments, as under the Siple Coast ice
streams, where sliding is almost all of the motion) and
:data:`SLIP_RATIO_SLOW` (0.5) over higher beds, switching with a logistic of
width :data:`WET_BED_WIDTH` (100 m) of the bed smoothed over
:data:`SLIP_SMOOTHING` (2 km). The ice thickness also varies: the imprint is
computed with the transfer at a few thickness levels and slip ratios and
blended pixel by pixel (a spatially varying filter has no single FFT).

**v2 velocity.** Shallow-ice deformation ``u_d = 2A/(n+1) (rho g |grad s|)^n
H^(n+1)`` (Glen n = 3, A = :data:`GLEN_A_COLD` = 3.5e-25 Pa^-3 s^-1, the
value Cuffey & Paterson 2010 recommend for ice at -10 C; v1 uses 2.4e-24,
their value for temperate ice, which with the hundredfold sliding below would
give ice streams of 10 km/yr) and
sliding that follows from the slip ratio's definition, ``u_b = C u_d``: the
speed ``(1 + C) u_d`` grows as ``H^4`` with thickness and a hundredfold where
the bed is deep and wet, down the surface gradient smoothed over four ice
thicknesses (longitudinal stress coupling). The Nye surface keeps a driving
stress near 50 kPa everywhere, while real ice streams run at 10-20 kPa, so
``(1 + C) u_d`` overshoots there (tens of km/yr); the speed saturates
smoothly, ``u / (1 + u / U_s)`` with ``U_s`` = :data:`SPEED_SATURATION`
(4 km/yr, about the fastest Antarctic ice streams, e.g. Pine Island
Glacier). The mapping is monotone, so the speed still orders the beds.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from xdeepbedmap.nodata import fill_nearest
from xdeepbedmap.synthetic.constants import (
    COAST_OFFSET,
    DAMPING_LENGTH,
    GLEN_A,
    GLEN_A_COLD,
    GLEN_N,
    GRAVITY,
    MIN_SURFACE,
    MIN_THICKNESS,
    RHO_ICE,
    SECONDS_PER_YEAR,
    SLIDING_C,
    SLIP_RATIO_SLOW,
    SLIP_RATIO_STREAM,
    SLIP_SMOOTHING,
    SPEED_SATURATION,
    WET_BED_WIDTH,
    YIELD_STRESS,
)

__all__ = ["bed_to_surface_transfer", "slip_ratio"]


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


def _nye_profile(bed: np.ndarray, pixel: float) -> np.ndarray:
    """Perfectly plastic surface height rising with distance from the coast (ocean = NaN)."""
    ocean = ~np.isfinite(bed)
    if ocean.any():
        distance = ndimage.distance_transform_edt(~ocean) * pixel
    else:  # no coast in the region: put it 100 km beyond the south edge
        distance = (bed.shape[0] - np.arange(bed.shape[0])[:, None]) * pixel + 100e3
        distance = np.broadcast_to(distance, bed.shape)
    return np.sqrt(2.0 * YIELD_STRESS * (distance + COAST_OFFSET) / (RHO_ICE * GRAVITY))


def _surface_250(bed: np.ndarray, pixel: float) -> np.ndarray:
    """Ice surface on the 250 m grid: Nye profile plus the damped bed imprint (physics v1)."""
    ocean = ~np.isfinite(bed)
    profile = _nye_profile(bed, pixel)
    filled = fill_nearest(bed)
    thickness = max(float(np.mean(profile - filled)), 500.0)
    ky = np.fft.fftfreq(bed.shape[0], d=pixel)[:, None]
    kx = np.fft.rfftfreq(bed.shape[1], d=pixel)[None, :]
    transfer = 1.0 / (1.0 + (2 * np.pi * np.hypot(ky, kx) * DAMPING_LENGTH * thickness) ** 2)
    anomaly = filled - filled.mean()
    imprint = np.fft.irfft2(np.fft.rfft2(anomaly) * transfer, s=bed.shape)
    return _surface_on_profile(profile, filled, imprint, ocean)


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


def bed_to_surface_transfer(
    kh: np.ndarray | float, slip: np.ndarray | float, damping_length: float = DAMPING_LENGTH
) -> np.ndarray:
    """Steady bed-to-surface amplitude transfer of physics v2 (see the module docstring).

    Parameters
    ----------
    kh : array_like
        Angular wavenumber times ice thickness (``2 pi H / wavelength``), >= 0.
    slip : array_like
        Slip ratio ``C`` (mean sliding over mean deformation velocity), >= 0.
    damping_length : float
        ``L0``: the no-slip transfer is 1/2 near ``kH = 1 / L0``.

    Returns
    -------
    numpy.ndarray
        ``sech(kH) / (1 + L0^2 (kH)^2 / (1 + C))``, in (0, 1].
    """
    kh = np.asarray(kh, dtype=np.float64)
    slip = np.asarray(slip, dtype=np.float64)
    if (kh < 0).any() or (slip < 0).any():
        raise ValueError("kh and slip must be >= 0")
    # 1 / cosh without overflow at large kh
    sech = 2.0 * np.exp(-kh) / (1.0 + np.exp(-2.0 * kh))
    return sech / (1.0 + (damping_length * kh) ** 2 / (1.0 + slip))


def _wet_fraction(bed_filled: np.ndarray, pixel: float) -> np.ndarray:
    """0 on high beds, 1 on beds well below sea level (smoothed over SLIP_SMOOTHING)."""
    smooth = ndimage.gaussian_filter(bed_filled, SLIP_SMOOTHING / pixel, mode="nearest")
    return 1.0 / (1.0 + np.exp(np.clip(smooth / WET_BED_WIDTH, -50, 50)))


def slip_ratio(bed: np.ndarray, pixel: float) -> np.ndarray:
    """Slip ratio C of physics v2: SLIP_RATIO_STREAM on deep beds, SLIP_RATIO_SLOW on high ones."""
    wet = _wet_fraction(fill_nearest(bed), pixel)
    return SLIP_RATIO_SLOW + (SLIP_RATIO_STREAM - SLIP_RATIO_SLOW) * wet


def _surface_250_v2(bed: np.ndarray, pixel: float) -> np.ndarray:
    """Physics v2 surface: the imprint filtered with T(kH, C) for the local H and C."""
    ocean = ~np.isfinite(bed)
    profile = _nye_profile(bed, pixel)
    filled = fill_nearest(bed)
    thickness = ndimage.gaussian_filter(
        np.maximum(profile - filled, 500.0), 10e3 / pixel, mode="nearest"
    )
    wet = _wet_fraction(filled, pixel)
    k = (
        2
        * np.pi
        * np.hypot(
            np.fft.fftfreq(bed.shape[0], d=pixel)[:, None], np.fft.rfftfreq(bed.shape[1], d=pixel)
        )
    )
    spectrum = np.fft.rfft2(filled - filled.mean())
    levels = np.unique(np.percentile(thickness, [5, 50, 95]).round(0))
    imprints = np.zeros((len(levels), 2, *bed.shape))  # (thickness level, slip) -> imprint
    for i, h in enumerate(levels):
        for j, slip in enumerate((SLIP_RATIO_SLOW, SLIP_RATIO_STREAM)):
            transfer = bed_to_surface_transfer(k * h, slip)
            imprints[i, j] = np.fft.irfft2(spectrum * transfer, s=bed.shape)
    # linear blending between thickness levels, then between the two slip ratios
    position = np.interp(thickness, levels, np.arange(len(levels)))
    lower = np.clip(np.floor(position).astype(int), 0, len(levels) - 1)
    upper = np.minimum(lower + 1, len(levels) - 1)
    frac = position - lower
    rows, cols = np.indices(bed.shape)
    by_slip = [
        (1 - frac) * imprints[lower, j, rows, cols] + frac * imprints[upper, j, rows, cols]
        for j in range(2)
    ]
    imprint = (1 - wet) * by_slip[0] + wet * by_slip[1]
    return _surface_on_profile(profile, filled, imprint, ocean)


def _velocity_250_v2(surface: np.ndarray, bed: np.ndarray, pixel: float) -> tuple[np.ndarray, ...]:
    """Physics v2 velocity (m/yr): deformation times (1 + C), C the local slip ratio."""
    ocean = ~np.isfinite(surface)
    s = fill_nearest(surface)
    b = fill_nearest(bed)
    thickness = np.maximum(s - b, MIN_THICKNESS)
    sigma = 4.0 * float(thickness.mean()) / pixel
    s_smooth = ndimage.gaussian_filter(s, sigma, mode="nearest")
    h_smooth = ndimage.gaussian_filter(thickness, sigma, mode="nearest")
    dsdy, dsdx = np.gradient(s_smooth, pixel)
    dsdy = -dsdy  # rows run north to south: y decreases with the row index
    slope = np.hypot(dsdx, dsdy) + 1e-9
    deformation = (
        2
        * GLEN_A_COLD
        / (GLEN_N + 1)
        * (RHO_ICE * GRAVITY * slope) ** GLEN_N
        * h_smooth ** (GLEN_N + 1)
    ) * SECONDS_PER_YEAR
    speed = deformation * (1.0 + slip_ratio(b, pixel))
    speed = speed / (1.0 + speed / SPEED_SATURATION)
    vx = -speed * dsdx / slope
    vy = -speed * dsdy / slope
    return np.where(ocean, np.nan, vx), np.where(ocean, np.nan, vy)


def _surface_on_profile(
    profile: np.ndarray, filled: np.ndarray, imprint: np.ndarray, ocean: np.ndarray
) -> np.ndarray:
    """The ice-sheet profile plus the bed's imprint, above the bed and sea level."""
    # a bed above sea level lifts the whole profile; one below it does not sink it
    surface = profile + max(float(filled.mean()), 0.0) + imprint
    surface = np.maximum(np.maximum(surface, filled + MIN_THICKNESS), MIN_SURFACE)
    return np.where(ocean, np.nan, surface)
