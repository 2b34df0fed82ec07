"""Synthetic regions: the four DeepBedMap inputs derived from a true bed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr

from xdeepbedmap.grids import BASE_RESOLUTION, OUTPUT_FACTOR, grid_coords, zoom_in
from xdeepbedmap.nodata import fill_nearest
from xdeepbedmap.synthetic.bedmap_like import survey_bed
from xdeepbedmap.synthetic.constants import (
    ACCUMULATION_VARIABILITY,
    BED_SMOOTHING_SIGMA,
    DEFAULT_ORIGIN,
    MIN_THICKNESS,
    SURFACE_ROUGHNESS,
)
from xdeepbedmap.synthetic.ice import (
    _interp_to,
    _surface_250,
    _surface_250_v2,
    _velocity_250,
    _velocity_250_v2,
)
from xdeepbedmap.synthetic.terrain import _nan_gaussian, _smooth_noise, block_mean, make_truth
from xdeepbedmap.truth import base_grid_of_truth

__all__ = ["WORLDS", "inputs_from_bed", "make_region", "training_regions"]

BedModel = Literal["block_mean", "survey"]
Physics = Literal["v1", "v2"]
#: Named synthetic worlds: "v1" is today's (and the bundled model's), "v2" the
#: BEDMAP2-like survey bed under slip-ratio-dependent ice physics.
WORLDS: dict[str, dict[str, str]] = {
    "v1": {"bed_model": "block_mean", "physics": "v1"},
    "v2": {"bed_model": "survey", "physics": "v2"},
}
_PHYSICS = {"v1": (_surface_250, _velocity_250), "v2": (_surface_250_v2, _velocity_250_v2)}


def _check_options(bed_model: str, physics: str) -> None:
    if bed_model not in ("block_mean", "survey"):
        raise ValueError(f"bed_model must be 'block_mean' or 'survey', got {bed_model!r}")
    if physics not in _PHYSICS:
        raise ValueError(f"physics must be one of {sorted(_PHYSICS)}, got {physics!r}")


def inputs_from_bed(
    truth: xr.DataArray,
    seed: int = 0,
    bed_model: BedModel = "block_mean",
    physics: Physics = "v1",
) -> xr.Dataset:
    """Derive the four DeepBedMap inputs from a 250 m true bed.

    Parameters
    ----------
    truth : xarray.DataArray
        Bed elevation (m) on (``y``, ``x``) at 250 m, sizes divisible by 4,
        NaN where there is no data (ocean). Without a CRS, EPSG:3031 is assumed.
    seed : int
        Seed of the random parts (surface roughness, accumulation
        variability, the synthetic survey).
    bed_model : {"block_mean", "survey"}
        How the 1 km bed is made: the smoothed block mean of the truth (a
        perfectly surveyed BEDMAP2), or interpolated from synthetic survey
        lines (:mod:`xdeepbedmap.synthetic.bedmap_like`).
    physics : {"v1", "v2"}
        Surface and velocity physics (:mod:`xdeepbedmap.synthetic.ice`).

    Returns
    -------
    xarray.Dataset
        The canonical inputs: ``bed``, ``accumulation`` (1 km), ``surface``
        (100 m), ``vx``, ``vy`` (500 m), see :mod:`xdeepbedmap.grids`.
        The physics of each field is described in this module's docstring.
    """
    _check_options(bed_model, physics)
    base = base_grid_of_truth(truth)
    rng = np.random.default_rng(seed + 7919)
    pixel = base.resolution.x / OUTPUT_FACTOR
    true_bed = np.asarray(truth.values, dtype=np.float64)

    plain = block_mean(true_bed, OUTPUT_FACTOR)
    if bed_model == "survey":
        bed_1km = np.where(np.isnan(plain), np.nan, survey_bed(truth, seed)[0])
    else:
        bed_1km = _nan_gaussian(plain, BED_SMOOTHING_SIGMA)
    surface_fn, velocity_fn = _PHYSICS[physics]
    surface_250 = surface_fn(true_bed, pixel)
    surface_100 = _surface_100(surface_250, true_bed, rng)
    vx_250, vy_250 = velocity_fn(surface_250, true_bed, pixel)
    surface_1km = block_mean(surface_250, OUTPUT_FACTOR)
    accumulation = _accumulation(surface_1km, bed_1km, rng)
    bed_1km = np.where(np.isnan(surface_1km), np.nan, bed_1km)
    fields = {
        "bed": bed_1km,
        "surface": surface_100,
        "vx": block_mean(vx_250, 2),
        "vy": block_mean(vy_250, 2),
        "accumulation": accumulation,
    }
    return _as_inputs(fields, base)


def _surface_100(
    surface_250: np.ndarray, true_bed: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The 100 m surface: interpolated, roughened, above the bed, NaN over the ocean."""
    surface_100 = _interp_to(fill_nearest(surface_250), OUTPUT_FACTOR, 10)
    surface_100 += SURFACE_ROUGHNESS * _smooth_noise(surface_100.shape, 1.0, rng)
    # interpolation can dip below a sharp bed peak: keep the ice at least
    # MIN_THICKNESS thick over the 250 m bed pixel under each 100 m pixel
    rows = ((np.arange(surface_100.shape[0]) + 0.5) * OUTPUT_FACTOR / 10).astype(int)
    cols = ((np.arange(surface_100.shape[1]) + 0.5) * OUTPUT_FACTOR / 10).astype(int)
    bed_under = fill_nearest(true_bed)[np.ix_(rows, cols)]
    surface_100 = np.maximum(surface_100, bed_under + MIN_THICKNESS)
    ocean_100 = _interp_to(np.isnan(true_bed).astype(np.float64), OUTPUT_FACTOR, 10) > 0
    return np.where(ocean_100, np.nan, surface_100)


def _accumulation(
    surface_1km: np.ndarray, bed_1km: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Snowfall falling with elevation, with smooth variability; NaN where there is no ice."""
    variability = 1.0 + ACCUMULATION_VARIABILITY * _smooth_noise(surface_1km.shape, 4.0, rng)
    accumulation = (40.0 + 600.0 * np.exp(-np.nan_to_num(surface_1km) / 900.0)) * variability
    return np.where(np.isnan(surface_1km) | np.isnan(bed_1km), np.nan, accumulation)


VX_NAME, VY_NAME = "ice velocity, x component", "ice velocity, y component"
#: Per variable: nesting factor, dims and attributes of the canonical input.
_LAYOUT = {
    "bed": (1, "y", "x", {"units": "m", "long_name": "bed elevation (1 km)"}),
    "surface": (
        10,
        "y_surface",
        "x_surface",
        {"units": "m", "long_name": "ice surface elevation (100 m)"},
    ),
    "vx": (
        2,
        "y_velocity",
        "x_velocity",
        {"units": "m yr-1", "long_name": "ice velocity, x component"},
    ),
    "vy": (
        2,
        "y_velocity",
        "x_velocity",
        {"units": "m yr-1", "long_name": "ice velocity, y component"},
    ),
    "accumulation": (1, "y", "x", {"units": "kg m-2 yr-1", "long_name": "snow accumulation"}),
}


def _as_inputs(fields: dict[str, np.ndarray], base: Any) -> xr.Dataset:
    """The canonical input Dataset of ``fields`` on the grids nested in ``base``."""
    variables = {}
    for name, (factor, ydim, xdim, attrs) in _LAYOUT.items():
        grid = zoom_in(base, factor)
        variables[name] = xr.DataArray(
            fields[name].astype(np.float32),
            dims=(ydim, xdim),
            coords=grid_coords(grid, ydim, xdim),
            attrs=dict(attrs),
        ).rio.write_nodata(np.nan, encoded=False)
    ds = xr.Dataset(
        variables,
        attrs={"title": "synthetic DeepBedMap inputs", "source": "xdeepbedmap.synthetic"},
    )
    return ds.rio.write_crs(str(base.crs))


def make_region(
    shape: tuple[int, int] = (64, 64),
    seed: int = 0,
    origin: tuple[float, float] = DEFAULT_ORIGIN,
    ocean: bool = True,
    bed_model: BedModel = "block_mean",
    physics: Physics = "v1",
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
    bed_model, physics : str
        See :func:`inputs_from_bed`; ``**WORLDS[name]`` picks a named world.

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
    return inputs_from_bed(truth, seed=seed, bed_model=bed_model, physics=physics), truth


def training_regions(
    seeds: Sequence[int], shape: tuple[int, int] = (64, 64), world: str = "v1"
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
    world : str
        A key of :data:`WORLDS`.

    Raises
    ------
    ValueError
        If ``seeds`` holds the demo region's seed, or ``world`` is unknown.
    """
    # catalog is a layer above this module (it writes the demo region with make_region)
    from xdeepbedmap.catalog import DEMO_SEED

    if DEMO_SEED in seeds:
        raise ValueError(
            f"seed {DEMO_SEED} is the demo region, held out for evaluation; train on others"
        )
    if world not in WORLDS:
        raise ValueError(f"world must be one of {sorted(WORLDS)}, got {world!r}")
    return [make_region(shape, seed=seed, **WORLDS[world]) for seed in seeds]
