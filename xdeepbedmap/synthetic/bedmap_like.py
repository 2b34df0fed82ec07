"""A BEDMAP2-like 1 km bed made the way BEDMAP2 was made: survey lines, then interpolation.

BEDMAP2 (Fretwell et al. 2013, The Cryosphere 7, 375-393) compiled radar
ice-thickness picks flown along lines that are a few km apart in well-surveyed
areas and tens of km apart (with gaps of 100 km and more) elsewhere, and
interpolated them onto a regular grid. Its bed is therefore accurate on and
near the lines and increasingly wrong between them. This module reproduces
that process on a synthetic 250 m truth:

1. **Survey.** :func:`xdeepbedmap.survey.synthetic_survey` flies east-west
   lines ``line_spacing`` apart (drawn per seed from
   :data:`LINE_SPACING_RANGE`) with north-south tie lines three times as far
   apart, ``dense_patches`` 15 km squares flown 1 km apart, and ``gaps``
   squares of side :data:`GAP_SIZE_RANGE` with no line at all. Picks are
   every :data:`SAMPLE_SPACING` m with Gaussian pick noise
   :data:`PICK_NOISE` m (quality 2 picks: twice that); quality 3 (derived)
   picks and no-pick stretches are dropped, as a compilation would.
2. **Block median at 1 km** (:func:`xdeepbedmap.survey.block_median`): one
   value per base pixel holding picks, so dense along-track sampling does not
   dominate.
3. **Interpolation**: a damped biharmonic spline (``verde.Spline``,
   damping :data:`SPLINE_DAMPING`), the minimum-curvature family of gridders
   used by such compilations (BEDMAP2 used ArcGIS *Topo to Raster*, a
   thin-plate-spline-like method). It gives every base pixel a value; far from
   the lines it is a smooth guess, which is the point. Above
   :data:`MAX_SPLINE_CELLS` cells (regions larger than about 100 km) the
   block size doubles until the O(n^2) spline fits.

Measured (``benchmarks/synthetic_bed_error.py``, ``docs/synthetic.md``): the
1 km error against the truth's block mean grows from a few tens of metres on
the lines to a few hundred metres 10 km and more from them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from xdeepbedmap.grids import BASE_RESOLUTION

__all__ = [
    "GAP_SIZE_RANGE",
    "LINE_SPACING_RANGE",
    "MAX_SPLINE_CELLS",
    "NEAR_LINE_RMSE_BOUND",
    "PICK_NOISE",
    "SAMPLE_SPACING",
    "SPLINE_DAMPING",
    "survey_bed",
    "survey_picks",
]

LINE_SPACING_RANGE = (6e3, 15e3)  # m, main east-west lines, drawn per seed
GAP_SIZE_RANGE = (30e3, 60e3)  # m, side of the unsurveyed squares
SAMPLE_SPACING = 100.0  # m along track: ten picks per 1 km cell is plenty
PICK_NOISE = 10.0  # m, std of quality-1 bed picks
SPLINE_DAMPING = 1e-6
MAX_SPLINE_CELLS = 3000
#: RMSE (m) against the truth's 1 km block mean that base pixels crossed by a
#: line stay within: pick noise (10-20 m) plus the truth's spread inside the
#: cell, which a line samples along one strip only, plus the spline's damping.
#: Measured 33-61 m (seeds 0-4, 24 km regions; 48 m over the nine 64-80 km
#: regions of docs/synthetic.md).
NEAR_LINE_RMSE_BOUND = 80.0
_SEED_OFFSET = 104_729  # the survey's random stream differs from the region's


def survey_picks(truth: xr.DataArray, seed: int = 0) -> pd.DataFrame:
    """The kept bed picks (``x``, ``y``, ``bed``) of a synthetic survey over ``truth``.

    Deterministic per ``seed``; the layout (line spacing, patches, gaps) is
    drawn from the seed as the module docstring describes.
    """
    from xdeepbedmap.survey import synthetic_survey

    rng = np.random.default_rng(seed + _SEED_OFFSET)
    spacing = float(rng.uniform(*LINE_SPACING_RANGE))
    # a gap never covers more than 60% of the region's side: some lines always remain
    extent = min(truth.sizes["x"], truth.sizes["y"]) * float(abs(truth.x[1] - truth.x[0]))
    gap_size = min(float(rng.uniform(*GAP_SIZE_RANGE)), 0.6 * extent)
    survey = synthetic_survey(
        truth,
        line_spacing=spacing,
        tie_spacing=3 * spacing,
        sample_spacing=SAMPLE_SPACING,
        noise=PICK_NOISE,
        dense_patches=int(rng.integers(1, 3)),
        dense_spacing=1000.0,
        patch_size=15e3,
        gaps=int(rng.integers(1, 3)),
        gap_size=gap_size,
        seed=int(rng.integers(0, 2**31)),
    )
    kept = survey[(survey["BOTTOM"] > -9000) & (survey["QUALITY"] < 3)]
    return pd.DataFrame(
        {"x": kept["x"].to_numpy(), "y": kept["y"].to_numpy(), "bed": kept["BOTTOM"].to_numpy()}
    )


def _base_centres(truth: xr.DataArray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Pixel centres of the 1 km base grid under ``truth``, and its left/top edges."""
    half = float(abs(truth.x[1] - truth.x[0])) / 2
    left, top = float(truth.x.min()) - half, float(truth.y.max()) + half
    nx = round(truth.sizes["x"] * 2 * half / BASE_RESOLUTION)
    ny = round(truth.sizes["y"] * 2 * half / BASE_RESOLUTION)
    x = left + BASE_RESOLUTION * (np.arange(nx) + 0.5)
    y = top - BASE_RESOLUTION * (np.arange(ny) + 0.5)
    return x, y, left, top


def survey_bed(truth: xr.DataArray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The interpolated 1 km bed of a synthetic survey, and each pixel's distance to a pick.

    Parameters
    ----------
    truth : xarray.DataArray
        250 m true bed on (``y``, ``x``), nested in a 1 km base grid.
    seed : int
        Seed of the survey (layout and pick noise).

    Returns
    -------
    bed : numpy.ndarray
        ``(ny, nx)`` base-grid bed (m), finite everywhere (the caller masks
        the ocean).
    distance : numpy.ndarray
        ``(ny, nx)`` distance (m) from each base pixel centre to the nearest
        kept pick.
    """
    import verde as vd
    from scipy.spatial import cKDTree

    from xdeepbedmap.survey import block_median

    picks = survey_picks(truth, seed)
    if len(picks) < 3:
        raise ValueError(
            f"synthetic survey of seed {seed} kept {len(picks)} picks over a "
            f"{truth.sizes['y']} x {truth.sizes['x']} truth; expected at least 3 to interpolate"
        )
    x, y, left, top = _base_centres(truth)
    block = BASE_RESOLUTION
    cells, _ = block_median(picks, left, top, block)
    while len(cells) > MAX_SPLINE_CELLS:  # bounded O(n^2) memory, O(n^3) time
        block *= 2
        cells, _ = block_median(picks, left, top, block)
    # coordinates relative to the region centre keep the spline well conditioned
    ox, oy = float(x.mean()), float(y.mean())
    spline = vd.Spline(damping=SPLINE_DAMPING)
    spline.fit((cells["x"].to_numpy() - ox, cells["y"].to_numpy() - oy), cells["bed"].to_numpy())
    xx, yy = np.meshgrid(x, y)
    bed = spline.predict((xx - ox, yy - oy))
    distance, _ = cKDTree(picks[["x", "y"]].to_numpy()).query(
        np.column_stack([xx.ravel(), yy.ravel()])
    )
    return np.asarray(bed, dtype=np.float64), distance.reshape(xx.shape)
