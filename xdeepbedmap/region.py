"""Requested regions read with a margin of true data, and results cropped back to them.

A region asked for by a bbox is opened with ``margin`` extra base pixels of
the sources' own data on every side (fewer where the data end), so the
network's halo near the bbox edge sees the real neighbourhood instead of a
mirror image; the result is then cropped back with :func:`crop_to_region`.
Mirror padding is left only where the data themselves end. The requested
region is recorded in the Dataset's ``xdeepbedmap_region`` attribute as the
outer edges ``[left, bottom, right, top]`` (metres) of its base pixels.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox

from xdeepbedmap.grids import TOLERANCE, VARIABLES

__all__ = ["DEFAULT_MARGIN", "REGION_ATTR", "crop_to_region", "grow_within"]

#: Base pixels of true data read around a requested region by default. The
#: network reaches further than its halo: at the default halo (14) a bbox and
#: the same bbox grown by 10 km differ on shared pixels by RMS 1.3e-3 of the
#: output std at margin 16 and a few 1e-6 at margin 24 (demo model; 0 margin:
#: 0.15); see docs/data.md and benchmarks/bbox_dependence.py.
DEFAULT_MARGIN = 24
#: Dataset attribute holding the requested region's outer edges.
REGION_ATTR = "xdeepbedmap_region"


def _room(distance: float, resolution: float) -> int:
    """Whole pixels that fit in ``distance`` metres (never negative)."""
    return max(0, math.floor(distance / resolution + TOLERANCE))


def grow_within(requested: GeoBox, data: GeoBox, margin: int) -> tuple[GeoBox, tuple[int, ...]]:
    """``requested`` grown by up to ``margin`` pixels per side, staying inside ``data``.

    Parameters
    ----------
    requested : GeoBox
        The grid of the requested region (north-up).
    data : GeoBox
        The extent the sources hold data over (the bed's grid).
    margin : int
        Pixels of ``requested``'s size to add on each side.

    Returns
    -------
    GeoBox, tuple of int
        The grown grid and the pixels added ``(top, bottom, left, right)``.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0 base pixels, got {margin}")
    res = requested.resolution.x
    have, edges = data.boundingbox, requested.boundingbox
    top = min(margin, _room(have.top - edges.top, res))
    bottom = min(margin, _room(edges.bottom - have.bottom, res))
    left = min(margin, _room(edges.left - have.left, res))
    right = min(margin, _room(have.right - edges.right, res))
    ny, nx = requested.shape
    affine = Affine(res, 0.0, edges.left - left * res, 0.0, -res, edges.top + top * res)
    grown = GeoBox((ny + top + bottom, nx + left + right), affine, requested.crs)
    return grown, (top, bottom, left, right)


def _inside(values: np.ndarray, low: float, high: float, dim: str) -> slice:
    """The slice of pixel centres strictly between ``low`` and ``high``."""
    hits = np.flatnonzero((values > low) & (values < high))
    if hits.size == 0:
        raise ValueError(
            f"{dim} from {values.min():g} to {values.max():g} does not overlap "
            f"the requested region's {low:g}..{high:g}"
        )
    return slice(int(hits[0]), int(hits[-1]) + 1)


def crop_to_region(result: xr.DataArray | xr.Dataset, ds: xr.Dataset) -> xr.DataArray | xr.Dataset:
    """Crop a result computed from ``ds`` back to the region ``ds`` was requested for.

    Keeps the pixels whose centres fall inside the requested region's outer
    edges (``ds.attrs["xdeepbedmap_region"]``), along every grid dimension
    the object has: the 250 m bed on ``y``/``x``, a quality layer, or the
    canonical inputs themselves (``y_surface``, ``x_velocity`` ...). Returns
    ``result`` unchanged when ``ds`` records no region (opened without a
    bbox); cropping twice changes nothing. Lazy results stay lazy.

    Parameters
    ----------
    result : xarray.DataArray or xarray.Dataset
        On north-up pixel-centre coordinates.
    ds : xarray.Dataset
        The inputs, as returned by :func:`xdeepbedmap.open_inputs`.
    """
    bounds = ds.attrs.get(REGION_ATTR)
    if bounds is None:
        return result
    left, bottom, right, top = (float(v) for v in bounds)
    cuts = {}
    for ydim, xdim in {("y", "x")} | {(y, x) for y, x, _ in VARIABLES.values()}:
        if ydim in result.dims and xdim in result.dims:
            cuts[ydim] = _inside(np.asarray(result[ydim].values, np.float64), bottom, top, ydim)
            cuts[xdim] = _inside(np.asarray(result[xdim].values, np.float64), left, right, xdim)
    out = result.isel(cuts)
    out.attrs = {k: v for k, v in result.attrs.items() if k != REGION_ATTR}
    return out
