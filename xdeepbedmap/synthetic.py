"""Synthetic but physically plausible regions: a 250 m "true" bed and its inputs.

The demo, the tests and the bundled demo model use these regions, so they must
relate the way the real products relate to the real bed. One paragraph per
field:

**Bed (1 km, BEDMAP2-like).** BEDMAP2 interpolates sparse radar lines onto a
1 km grid, so it is a smoothed average of the true bed. We take the 4 x 4 block
mean of the 250 m truth and smooth it with a Gaussian of
``BED_SMOOTHING_SIGMA`` base pixels (NaN-aware); a base pixel touching no-data
(ocean) is no-data.

**Surface (100 m, REMA-like).** Ice flowing over a bed transmits its long
wavelengths to the surface and damps the short ones (Gudmundsson 2003): we
filter the bed anomaly with the transfer function ``1 / (1 + (5 k H)^2)`` (k the
angular wavenumber, H the mean ice thickness) and add it to a perfectly plastic
ice-sheet profile ``sqrt(2 tau_0 (d + 20 km) / (rho g))`` rising with
distance ``d`` from the coast (Nye 1951, ``tau_0`` = 50 kPa as over low-drag
ice-stream beds; the 20 km offset stands for the grounding zone). Ice is at
least ``MIN_THICKNESS`` thick and its surface stays above sea level. The 250 m
surface is interpolated (bilinear) to 100 m and gets ``SURFACE_ROUGHNESS``
metres (std) of spatially correlated DEM-like roughness.

**Velocity (500 m, MEaSUREs-like).** Shallow-ice approximation: the driving
stress ``rho g H |grad s|`` (surface slope smoothed over a few ice
thicknesses, as longitudinal stresses do) gives internal deformation
``2A/(n+1) (rho g |grad s|)^n H^(n+1)`` (Glen's law, n = 3, A = 2.4e-24
Pa^-3 s^-1) plus linear sliding ``C tau_b`` where the bed lies below sea
level (soft, wet trough beds). Ice flows down the surface gradient, so thick
ice in troughs flows fastest. ``vx`` and ``vy`` are 2 x 2 block means of the
250 m field.

**Accumulation (1 km, Arthern-like).** Snowfall decreases with elevation and
distance from the coast: ``a_0 exp(-s / s_0)`` plus a floor, with 10% smooth
spatial variability, in kg m-2 yr-1, on the 1 km grid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr
from scipy import ndimage

from xdeepbedmap.grids import (
    BASE_RESOLUTION,
    DEFAULT_CRS,
    OUTPUT_FACTOR,
    coarsen,
    grid_coords,
    make_grid,
    zoom_in,
)
from xdeepbedmap.nodata import fill_nearest
from xdeepbedmap.truth import base_grid_of_truth

__all__ = ["inputs_from_bed", "make_region", "make_truth", "training_regions"]

RHO_ICE = 917.0  # kg m-3
GRAVITY = 9.81  # m s-2
GLEN_N = 3
GLEN_A = 2.4e-24  # Pa-3 s-1, ice at about -10 C (Cuffey & Paterson 2010)
SECONDS_PER_YEAR = 365.25 * 86400
YIELD_STRESS = 5.0e4  # Pa, Nye perfectly plastic profile (ice-stream regions, low drag)
SLIDING_C = 2e-3  # m yr-1 Pa-1: linear sliding, 200 m/yr under 100 kPa in troughs
COAST_OFFSET = 20e3  # m: the profile starts at the height Nye gives 20 km inland
MIN_THICKNESS = 50.0  # m
MIN_SURFACE = 10.0  # m above sea level: grounded ice near the coast
DAMPING_LENGTH = 5.0  # bed-to-surface transfer decays at wavelengths below ~ 2 pi * 5 H
BED_SMOOTHING_SIGMA = 1.0  # base pixels
SURFACE_ROUGHNESS = 1.0  # m, std of the 100 m surface noise
ACCUMULATION_VARIABILITY = 0.1  # relative std of the smooth accumulation noise
DEFAULT_ORIGIN = (-1_600_000.0, -200_000.0)  # (left, top) in EPSG:3031, West Antarctica


def _nan_gaussian(field: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing that ignores NaN and keeps NaN where the input had them."""
    valid = np.isfinite(field)
    num = ndimage.gaussian_filter(np.where(valid, field, 0.0), sigma, mode="nearest")
    den = ndimage.gaussian_filter(valid.astype(np.float64), sigma, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    return np.where(valid, out, np.nan)


def _smooth_noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Spatially correlated Gaussian noise with unit standard deviation."""
    noise = ndimage.gaussian_filter(rng.normal(size=shape), sigma, mode="wrap")
    return noise / noise.std()


def block_mean(field: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor x factor`` blocks; NaN if any pixel of the block is NaN."""
    ny, nx = field.shape
    return field.reshape(ny // factor, factor, nx // factor, factor).mean(axis=(1, 3))


def _fractal(shape: tuple[int, int], hurst: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with power spectrum ~ k^-(2 hurst + 2), zero mean, unit std."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    k = np.hypot(ky, kx)
    k[0, 0] = np.inf
    amplitude = k ** (-(hurst + 1.0))
    noise = rng.normal(size=(shape[0], kx.shape[1])) + 1j * rng.normal(size=(shape[0], kx.shape[1]))
    field = np.fft.irfft2(noise * amplitude, s=shape)
    return (field - field.mean()) / field.std()


def _troughs(
    shape: tuple[int, int], pixel: float, rng: np.random.Generator, count: int
) -> np.ndarray:
    """Depth (positive, metres) of sinuous U-shaped glacial troughs running roughly N-S."""
    ny, nx = shape
    rows = np.arange(ny)[:, None] * pixel
    cols = np.arange(nx)[None, :] * pixel
    depth = np.zeros(shape)
    for _ in range(count):
        centre = rng.uniform(0.15, 0.85) * nx * pixel
        wavelength = rng.uniform(20e3, 60e3)
        amplitude = rng.uniform(2e3, 8e3)
        tilt = rng.uniform(-0.4, 0.4)
        half_width = rng.uniform(2.5e3, 7e3)
        trough_depth = rng.uniform(350.0, 900.0)
        path = (
            centre
            + tilt * rows
            + amplitude * np.sin(2 * np.pi * rows / wavelength + rng.uniform(0, 6.3))
        )
        distance = np.abs(cols - path) / half_width
        # flat floor, steep walls: the U shape of glacially carved valleys
        depth = np.maximum(depth, trough_depth * np.exp(-(distance**4)))
    return depth


def make_truth(
    shape: tuple[int, int],
    seed: int = 0,
    origin: tuple[float, float] = DEFAULT_ORIGIN,
    ocean: bool = True,
) -> xr.DataArray:
    """A realistic 250 m bed: fractal terrain, carved troughs, ridges and an ocean corner.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the 250 m grid (multiples of 4).
    seed : int
        Random seed; the same seed gives the same bed.
    origin : tuple of float
        ``(left, top)`` pixel edges in EPSG:3031 metres.
    ocean : bool
        Whether to cut a no-data (NaN) ocean corner.

    Returns
    -------
    xarray.DataArray
        ``bed`` on (``y``, ``x``) in metres, with CRS EPSG:3031 and NaN no-data.
    """
    rng = np.random.default_rng(seed)
    pixel = BASE_RESOLUTION / OUTPUT_FACTOR
    grid = make_grid(origin[0], origin[1], pixel, shape, DEFAULT_CRS)
    coarsen(grid, OUTPUT_FACTOR)  # shape check
    ny, nx = shape
    rough = _fractal(shape, hurst=0.8, rng=rng)
    ridged = 1.0 - np.abs(_fractal(shape, hurst=0.6, rng=rng))
    count = max(1, int(round(nx * pixel / 40e3)) + int(rng.integers(0, 2)))
    v = np.linspace(0.0, 1.0, ny)[:, None]
    bed = (
        rng.uniform(-100.0, 300.0)
        - 350.0 * v  # regional deepening towards the coast (south edge of the region)
        + 260.0 * rough
        + 220.0 * (ridged**2 - 0.5)
        - _troughs(shape, pixel, rng, count)
    )
    if ocean:
        # wavy coastline cutting off the south-east corner
        u = np.linspace(0.0, 1.0, nx)[None, :]
        coast = 1.55 + 0.05 * np.sin(2 * np.pi * (3 * u + rng.uniform()))
        bed = np.where(u + v > coast, np.nan, bed)
    return (
        xr.DataArray(
            bed.astype(np.float32),
            dims=("y", "x"),
            coords=grid_coords(grid),
            name="bed",
            attrs={"units": "m", "long_name": "synthetic true bed elevation", "seed": seed},
        )
        .rio.write_crs(DEFAULT_CRS)
        .rio.write_nodata(np.nan, encoded=False)
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


def inputs_from_bed(truth: xr.DataArray, seed: int = 0) -> xr.Dataset:
    """Derive the four DeepBedMap inputs from a 250 m true bed.

    Parameters
    ----------
    truth : xarray.DataArray
        Bed elevation (m) on (``y``, ``x``) at 250 m, sizes divisible by 4,
        NaN where there is no data (ocean). Without a CRS, EPSG:3031 is assumed.
    seed : int
        Seed of the small random parts (surface roughness, accumulation
        variability).

    Returns
    -------
    xarray.Dataset
        The canonical inputs: ``bed``, ``accumulation`` (1 km), ``surface``
        (100 m), ``vx``, ``vy`` (500 m), see :mod:`xdeepbedmap.grids`.
        The physics of each field is described in this module's docstring.
    """
    base = base_grid_of_truth(truth)
    rng = np.random.default_rng(seed + 7919)
    pixel = base.resolution.x / OUTPUT_FACTOR
    true_bed = np.asarray(truth.values, dtype=np.float64)

    bed_1km = _nan_gaussian(block_mean(true_bed, OUTPUT_FACTOR), BED_SMOOTHING_SIGMA)

    surface_250 = _surface_250(true_bed, pixel)
    surface_100 = _interp_to(fill_nearest(surface_250), OUTPUT_FACTOR, 10)
    surface_100 += SURFACE_ROUGHNESS * _smooth_noise(surface_100.shape, 1.0, rng)
    # interpolation can dip below a sharp bed peak: keep the ice at least
    # MIN_THICKNESS thick over the 250 m bed pixel under each 100 m pixel
    rows = ((np.arange(surface_100.shape[0]) + 0.5) * OUTPUT_FACTOR / 10).astype(int)
    cols = ((np.arange(surface_100.shape[1]) + 0.5) * OUTPUT_FACTOR / 10).astype(int)
    bed_under = fill_nearest(true_bed)[np.ix_(rows, cols)]
    surface_100 = np.maximum(surface_100, bed_under + MIN_THICKNESS)
    ocean_100 = _interp_to(np.isnan(true_bed).astype(np.float64), OUTPUT_FACTOR, 10) > 0
    surface_100 = np.where(ocean_100, np.nan, surface_100)

    vx_250, vy_250 = _velocity_250(surface_250, true_bed, pixel)
    vx = block_mean(vx_250, 2)
    vy = block_mean(vy_250, 2)

    surface_1km = block_mean(surface_250, OUTPUT_FACTOR)
    variability = 1.0 + ACCUMULATION_VARIABILITY * _smooth_noise(tuple(base.shape), 4.0, rng)
    accumulation = (40.0 + 600.0 * np.exp(-np.nan_to_num(surface_1km) / 900.0)) * variability
    accumulation = np.where(np.isnan(surface_1km) | np.isnan(bed_1km), np.nan, accumulation)
    bed_1km = np.where(np.isnan(surface_1km), np.nan, bed_1km)

    def var(data: np.ndarray, factor: int, ydim: str, xdim: str, attrs: dict) -> xr.DataArray:
        grid = zoom_in(base, factor)
        return xr.DataArray(
            data.astype(np.float32),
            dims=(ydim, xdim),
            coords=grid_coords(grid, ydim, xdim),
            attrs=attrs,
        )

    ds = xr.Dataset(
        {
            "bed": var(bed_1km, 1, "y", "x", {"units": "m", "long_name": "bed elevation (1 km)"}),
            "surface": var(
                surface_100,
                10,
                "y_surface",
                "x_surface",
                {"units": "m", "long_name": "ice surface elevation (100 m)"},
            ),
            "vx": var(
                vx,
                2,
                "y_velocity",
                "x_velocity",
                {"units": "m yr-1", "long_name": "ice velocity, x component"},
            ),
            "vy": var(
                vy,
                2,
                "y_velocity",
                "x_velocity",
                {"units": "m yr-1", "long_name": "ice velocity, y component"},
            ),
            "accumulation": var(
                accumulation,
                1,
                "y",
                "x",
                {"units": "kg m-2 yr-1", "long_name": "snow accumulation"},
            ),
        },
        attrs={"title": "synthetic DeepBedMap inputs", "source": "xdeepbedmap.synthetic"},
    )
    for name in ds.data_vars:
        ds[name] = ds[name].rio.write_nodata(np.nan, encoded=False)
    return ds.rio.write_crs(str(base.crs))


def make_region(
    shape: tuple[int, int] = (64, 64),
    seed: int = 0,
    origin: tuple[float, float] = DEFAULT_ORIGIN,
    ocean: bool = True,
) -> tuple[xr.Dataset, xr.DataArray]:
    """Generate a synthetic region: canonical inputs on a ``shape`` base grid and the truth.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the 1 km base grid.
    seed : int
        Random seed: the same seed gives the same region.
    origin : tuple of float
        ``(left, top)`` pixel edges in EPSG:3031 metres (snapped to whole km).
    ocean : bool
        Whether the region has a no-data ocean corner.

    Returns
    -------
    inputs : xarray.Dataset
        Canonical inputs (see :func:`inputs_from_bed`).
    truth : xarray.DataArray
        The 250 m true bed, ``4 ny x 4 nx``.
    """
    left = round(origin[0] / BASE_RESOLUTION) * BASE_RESOLUTION
    top = round(origin[1] / BASE_RESOLUTION) * BASE_RESOLUTION
    truth = make_truth(
        (shape[0] * OUTPUT_FACTOR, shape[1] * OUTPUT_FACTOR),
        seed=seed,
        origin=(left, top),
        ocean=ocean,
    )
    return inputs_from_bed(truth, seed=seed), truth


def training_regions(
    seeds: Sequence[int], shape: tuple[int, int] = (64, 64)
) -> list[tuple[xr.Dataset, xr.DataArray]]:
    """Synthetic regions to train on, one per seed; the demo region is refused.

    The demo region (``catalog.DEMO_SEED``) is held out for evaluation, so a
    model is never judged on a region it was trained on.

    Parameters
    ----------
    seeds : sequence of int
        One region per seed (see :func:`make_region`).
    shape : tuple of int
        ``(ny, nx)`` of each region's 1 km base grid.

    Raises
    ------
    ValueError
        If ``seeds`` holds the demo region's seed.
    """
    # catalog is a layer above this module (it writes the demo region with make_region)
    from xdeepbedmap.catalog import DEMO_SEED

    if DEMO_SEED in seeds:
        raise ValueError(
            f"seed {DEMO_SEED} is the demo region, held out for evaluation; train on others"
        )
    return [make_region(shape, seed=seed) for seed in seeds]
