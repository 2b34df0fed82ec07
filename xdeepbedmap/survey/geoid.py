"""Move survey bed heights between a geoid and the WGS 84 ellipsoid.

Heights above the ellipsoid ``h`` and above a geoid ``H`` differ by the geoid
height ``N`` (geoid above ellipsoid): ``h = H + N``. BEDMAP2 heights are on
the gl04c geoid, CReSIS picks on the WGS 84 ellipsoid, so comparing them
needs one of these corrections. ``N`` is sampled bilinearly from a geoid-height
raster (for BEDMAP2: ``gl04c_geiod_to_WGS84.tif``, EPSG:3031, 1 km).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from xdeepbedmap.grids import DEFAULT_CRS
from xdeepbedmap.survey.errors import SurveyError

__all__ = ["ELLIPSOID", "geoid_height", "to_ellipsoid", "to_geoid"]

#: The vertical datum label of heights on the WGS 84 ellipsoid.
ELLIPSOID = "WGS84 ellipsoid"


def geoid_height(points: pd.DataFrame, geoid: xr.DataArray) -> np.ndarray:
    """Geoid height (m above the ellipsoid) at the points' ``x``, ``y`` (EPSG:3031).

    ``geoid`` has ``x``/``y`` coordinates in its rioxarray CRS (EPSG:3031 if
    none is recorded); a ``band`` dimension of size 1 is dropped.

    Raises
    ------
    SurveyError
        If some points fall outside the raster or on its no-data pixels.
    """
    if "band" in geoid.dims:
        geoid = geoid.squeeze("band", drop=True)
    x, y = points["x"].to_numpy(np.float64), points["y"].to_numpy(np.float64)
    crs = geoid.rio.crs
    if crs is not None and crs.to_epsg() != 3031:
        from pyproj import Transformer

        x, y = Transformer.from_crs(DEFAULT_CRS, crs, always_xy=True).transform(x, y)
    if geoid.rio.nodata is not None and not np.isnan(geoid.rio.nodata):
        geoid = geoid.where(geoid != geoid.rio.nodata)
    n = geoid.astype(np.float64).interp(
        x=xr.DataArray(x, dims="point"), y=xr.DataArray(y, dims="point"), method="linear"
    )
    n = np.asarray(n, dtype=np.float64)
    missing = int(np.isnan(n).sum())
    if missing:
        raise SurveyError(
            f"geoid: {missing} of {n.size} points fall outside the geoid raster or on its "
            f"no-data pixels (raster x {float(geoid.x.min()):.0f}..{float(geoid.x.max()):.0f}, "
            f"y {float(geoid.y.min()):.0f}..{float(geoid.y.max()):.0f})"
        )
    return n


def _shift(points: pd.DataFrame, n: np.ndarray, sign: int, datum: str, frm: str) -> pd.DataFrame:
    found = points.attrs.get("vertical_datum", "unspecified")
    if found == datum:
        raise SurveyError(
            f"points: vertical_datum is already {datum!r}; correcting again would shift "
            f"the bed by the geoid height twice"
        )
    if found not in (frm, "unspecified"):
        raise SurveyError(f"points: vertical_datum {found!r}, expected {frm!r}")
    out = points.copy()
    out["bed"] = points["bed"].to_numpy(np.float64) + sign * n
    out.attrs = {**points.attrs, "vertical_datum": datum}
    return out


def to_ellipsoid(
    points: pd.DataFrame, geoid: xr.DataArray, geoid_name: str = "gl04c geoid"
) -> pd.DataFrame:
    """Heights above ``geoid_name`` to heights above the WGS 84 ellipsoid (``h = H + N``)."""
    return _shift(points, geoid_height(points, geoid), +1, ELLIPSOID, geoid_name)


def to_geoid(
    points: pd.DataFrame, geoid: xr.DataArray, geoid_name: str = "gl04c geoid"
) -> pd.DataFrame:
    """Heights above the WGS 84 ellipsoid to heights above ``geoid_name`` (``H = h - N``)."""
    return _shift(points, geoid_height(points, geoid), -1, geoid_name, ELLIPSOID)
