"""The synthetic 250 m true bed: fractal terrain with glacial troughs and an ocean corner."""

from __future__ import annotations

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
)
from xdeepbedmap.synthetic.constants import (
    DEFAULT_ORIGIN,
)

__all__ = ["block_mean", "make_truth"]


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
