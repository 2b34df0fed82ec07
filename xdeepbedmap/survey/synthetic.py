"""A synthetic radar survey of a synthetic bed, written in the CReSIS csv_good layout.

Flight lines are straight east-west lines every ``line_spacing`` metres with
north-south tie lines every ``tie_spacing``, sampled every ``sample_spacing``
metres along track (aircraft radar: tens of metres). Survey density can vary
like a real compilation: ``dense_patches`` squares are flown ``dense_spacing``
apart and ``gaps`` squares are not flown at all. Picks carry Gaussian noise;
``quality`` 2 and 3 picks are noisier (3 = derived, the kind readers drop by
default); some stretches have no bed pick (``BOTTOM = -9999``), as where the
radar loses the bed. Positions are written as WGS 84 lon/lat (pyproj inverse
of EPSG:3031), heights relative to the same datum as the truth.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from xdeepbedmap.atomic import atomic_path
from xdeepbedmap.grids import DEFAULT_CRS
from xdeepbedmap.survey.errors import SurveyError
from xdeepbedmap.survey.readers import CRESIS_COLUMNS, NODATA

__all__ = ["synthetic_survey", "write_cresis_csv"]

AIRCRAFT_SPEED = 130.0  # m/s, a survey aircraft (for UTCTIMESOD)
CLEARANCE = 500.0  # m, aircraft height above the ice surface


def _lines(xlim, ylim, spacing: float, step: float, rng, along: str) -> np.ndarray:  # noqa: ANN001
    """(x, y, line id) of straight lines ``spacing`` apart, sampled every ``step``."""
    (x0, x1), (y0, y1) = xlim, ylim
    across, length = ((y0, y1), (x0, x1)) if along == "x" else ((x0, x1), (y0, y1))
    offsets = np.arange(across[0] + rng.uniform(0, spacing), across[1], spacing)
    track = np.arange(length[0], length[1], step)
    a, t = np.meshgrid(offsets, track, indexing="ij")
    ids = np.repeat(np.arange(offsets.size), track.size)
    xy = (t.ravel(), a.ravel()) if along == "x" else (a.ravel(), t.ravel())
    return np.column_stack([xy[0], xy[1], ids])


def _boxes(n: int, size: float, xlim, ylim, rng) -> list[tuple[float, float, float, float]]:  # noqa: ANN001
    xs = rng.uniform(xlim[0], max(xlim[0], xlim[1] - size), n)
    ys = rng.uniform(ylim[0], max(ylim[0], ylim[1] - size), n)
    return [(x, y, x + size, y + size) for x, y in zip(xs, ys, strict=True)]


def _in_box(x: np.ndarray, y: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    return (x >= box[0]) & (x < box[2]) & (y >= box[1]) & (y < box[3])


def _tracks(truth: xr.DataArray, rng, p: dict) -> np.ndarray:  # noqa: ANN001
    """All survey positions (x, y, line id), patches added and gaps cut out."""
    half = float(abs(truth.x[1] - truth.x[0])) / 2
    xlim = (float(truth.x.min()) - half, float(truth.x.max()) + half)
    ylim = (float(truth.y.min()) - half, float(truth.y.max()) + half)
    parts = [_lines(xlim, ylim, p["line_spacing"], p["sample_spacing"], rng, "x")]
    if p["tie_spacing"]:
        parts.append(_lines(xlim, ylim, p["tie_spacing"], p["sample_spacing"], rng, "y"))
    for box in _boxes(p["dense_patches"], p["patch_size"], xlim, ylim, rng):
        for along in ("x", "y"):
            extra = _lines(
                (box[0], box[2]),
                (box[1], box[3]),
                p["dense_spacing"],
                p["sample_spacing"],
                rng,
                along,
            )
            parts.append(extra)
    for i, part in enumerate(parts):
        part[:, 2] += 1000 * (i + 1)  # distinct line ids per part
    xyl = np.concatenate(parts)
    keep = np.ones(len(xyl), dtype=bool)
    for box in _boxes(p["gaps"], p["gap_size"], xlim, ylim, rng):
        keep &= ~_in_box(xyl[:, 0], xyl[:, 1], box)
    return xyl[keep]


def synthetic_survey(
    truth: xr.DataArray,
    *,
    line_spacing: float = 3000.0,
    tie_spacing: float | None = 9000.0,
    sample_spacing: float = 30.0,
    noise: float = 5.0,
    dense_patches: int = 0,
    dense_spacing: float = 750.0,
    patch_size: float = 15000.0,
    gaps: int = 0,
    gap_size: float = 20000.0,
    nodata_fraction: float = 0.02,
    quality_fractions: tuple[float, float] = (0.05, 0.03),
    seed: int = 0,
) -> pd.DataFrame:
    """Fly a synthetic radar survey over ``truth`` (a 250 m bed in EPSG:3031).

    Parameters
    ----------
    truth : xarray.DataArray
        True bed on (``y``, ``x``), e.g. :func:`xdeepbedmap.synthetic.make_truth`.
    line_spacing, tie_spacing : float
        Spacing (m) of the east-west lines and the north-south tie lines
        (``None``: no tie lines).
    sample_spacing : float
        Along-track spacing of the picks (m).
    noise : float
        Standard deviation (m) of quality-1 picks; quality 2 and 3 picks have
        2x and 5x this.
    dense_patches, dense_spacing, patch_size : int, float, float
        Number of square patches (side ``patch_size``) flown in both
        directions ``dense_spacing`` apart.
    gaps, gap_size : int, float
        Number of square areas (side ``gap_size``) with no survey at all.
    nodata_fraction : float
        Fraction of picks, in along-track runs, with ``BOTTOM = -9999``.
    quality_fractions : tuple of float
        Fractions of picks flagged quality 2 and quality 3.
    seed : int
        Random seed.

    Returns
    -------
    pandas.DataFrame
        The CReSIS columns (:data:`~xdeepbedmap.survey.readers.CRESIS_COLUMNS`)
        plus the exact EPSG:3031 ``x``, ``y`` of every pick (not written to file).
        Picks over no-data truth (ocean) have ``BOTTOM = THICK = -9999``.
    """
    from pyproj import Transformer

    from xdeepbedmap.metrics import sample_points

    if line_spacing <= 0 or sample_spacing <= 0:
        raise SurveyError(
            f"line_spacing and sample_spacing must be > 0, got {line_spacing}, {sample_spacing}"
        )
    rng = np.random.default_rng(seed)
    layout = {
        "line_spacing": line_spacing,
        "tie_spacing": tie_spacing,
        "sample_spacing": sample_spacing,
        "dense_patches": dense_patches,
        "dense_spacing": dense_spacing,
        "patch_size": patch_size,
        "gaps": gaps,
        "gap_size": gap_size,
    }
    xyl = _tracks(truth, rng, layout)
    x, y, line = xyl[:, 0], xyl[:, 1], xyl[:, 2].astype(np.int64)
    quality = rng.choice([1, 2, 3], size=x.size, p=[1 - sum(quality_fractions), *quality_fractions])
    bed = (
        sample_points(truth, x, y)
        + rng.normal(0.0, noise, x.size) * np.array([0, 1, 2, 5])[quality]
    )
    # no-pick stretches: runs of ~100 picks starting at random places
    starts = rng.random(x.size) < nodata_fraction / 100
    lost = np.convolve(starts, np.ones(100), mode="full")[: x.size] > 0
    bed = np.where(lost | ~np.isfinite(bed), NODATA, bed)
    thick = np.where(bed == NODATA, NODATA, np.clip(1500.0 - 0.5 * bed, 100.0, None))
    surface = np.where(bed == NODATA, 1500.0, bed + thick)
    lon, lat = Transformer.from_crs(DEFAULT_CRS, "EPSG:4326", always_xy=True).transform(x, y)
    along = np.arange(x.size) - np.searchsorted(line, line)  # line ids are non-decreasing
    frame = pd.DataFrame(
        {
            "LAT": lat,
            "LON": lon,
            "UTCTIMESOD": (43200.0 + along * sample_spacing / AIRCRAFT_SPEED) % 86400.0,
            "THICK": thick,
            "ELEVATION": surface + CLEARANCE,
            "FRAME": 2018110100000 + line,
            "SURFACE": surface,
            "BOTTOM": bed,
            "QUALITY": np.where(bed == NODATA, 1, quality),
        }
    )
    frame["x"], frame["y"] = x, y
    return frame


def write_cresis_csv(
    survey: pd.DataFrame, path: str | PathLike[str], overwrite: bool = False
) -> Path:
    """Write a survey's CReSIS columns as a csv_good file (lon/lat to 1e-7 degrees)."""
    missing = [c for c in CRESIS_COLUMNS if c not in survey]
    if missing:
        raise SurveyError(f"survey lacks CReSIS column(s) {missing}")
    out = survey[list(CRESIS_COLUMNS)].copy()
    out[["LAT", "LON"]] = out[["LAT", "LON"]].round(7)
    rest = ["UTCTIMESOD", "THICK", "ELEVATION", "SURFACE", "BOTTOM"]
    out[rest] = out[rest].round(3)
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        out.to_csv(tmp, index=False)
    return path
