"""CRS comparison by projection parameters, and advice for a CRS that really differs.

Real products write EPSG:3031 in several ways: an EPSG code, a WKT named
``"unnamed"`` (BEDMAP2), CF grid-mapping parameters with an ``"undefined"``
datum (MEaSUREs, BedMachine), a PROJ string in a global attribute. pyproj's
``to_epsg()`` matches names as well as numbers, so only the first two are
recognised by it; :func:`same_crs` compares what defines the projection.
"""

from __future__ import annotations

import functools
from typing import Any

from xdeepbedmap.errors import XDeepBedMapError

__all__ = ["CRSMismatchError", "crs_label", "parse_crs", "reproject_advice", "same_crs"]


class CRSMismatchError(XDeepBedMapError, ValueError):
    """A file's CRS is not the one the inputs must share (or cannot be read)."""


def parse_crs(crs: Any) -> Any:
    """A :class:`pyproj.CRS` from anything pyproj reads (EPSG string, WKT, PROJ, CF dict)."""
    from pyproj import CRS

    if isinstance(crs, str) and crs.strip().lower().startswith("+init="):
        crs = crs.strip()[len("+init=") :]  # "+init=epsg:3031" is deprecated in PROJ
    try:
        return CRS.from_cf(crs) if isinstance(crs, dict) else CRS.from_user_input(crs)
    except Exception as err:  # pyproj raises its own CRSError
        raise CRSMismatchError(f"unrecognised CRS {crs!r}: {err}") from err


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _same_parameters(left: Any, right: Any) -> bool:
    ops = (left.coordinate_operation, right.coordinate_operation)
    if None in ops or ops[0].method_code != ops[1].method_code:
        return False
    params = [{p.code: (p.value, p.unit_name) for p in op.params} for op in ops]
    return params[0].keys() == params[1].keys() and all(
        unit == params[1][code][1] and _close(value, params[1][code][0])
        for code, (value, unit) in params[0].items()
    )


@functools.lru_cache(maxsize=256)
def _same_text(a: str, b: str) -> bool:
    return _same(parse_crs(a), parse_crs(b))


def same_crs(a: Any, b: Any) -> bool:
    """Whether two CRSs are the same projection, by parameters rather than names.

    True when pyproj finds them equal (ignoring axis order), or when both are
    projected with the same projection method and parameter values, the same
    ellipsoid, prime meridian and linear unit. Datum names (and so WGS 84
    realisations, which differ by at most a metre) are ignored.

    Parameters
    ----------
    a, b : str, dict or pyproj.CRS
        Anything :func:`parse_crs` reads (a dict is taken as CF grid-mapping
        attributes).
    """
    if isinstance(a, str) and isinstance(b, str):
        return _same_text(a, b)  # cached: parsing a CF-built WKT takes ~0.1-1 s
    return _same(parse_crs(a), parse_crs(b))


def _same(left: Any, right: Any) -> bool:
    if left.equals(right, ignore_axis_order=True):
        return True
    if not (left.is_projected and right.is_projected) or not _same_parameters(left, right):
        return False
    ells = (left.ellipsoid, right.ellipsoid)
    units = {axis.unit_name for crs in (left, right) for axis in crs.axis_info}
    return (
        None not in ells
        and _close(ells[0].semi_major_metre, ells[1].semi_major_metre)
        and _close(ells[0].inverse_flattening, ells[1].inverse_flattening)
        and _close(left.prime_meridian.longitude, right.prime_meridian.longitude)
        and len(units) == 1
    )


def crs_label(crs: Any) -> str:
    """A short name for messages: ``EPSG:n`` if pyproj knows one, else name and PROJ string."""
    parsed = parse_crs(crs)
    epsg = parsed.to_epsg()
    if epsg is not None:
        return f"EPSG:{epsg}"
    import warnings

    with warnings.catch_warnings():  # "you will likely lose information": it is a label
        warnings.simplefilter("ignore")
        return f"{parsed.name!r} ({parsed.to_proj4()})"


def reproject_advice(path: str, want: str, variable: str | None = None) -> str:
    """How a command-line user can reproject ``path`` to ``want`` (GDAL's gdalwarp)."""
    stem = path.rsplit(".", 1)[0]
    source = f"NETCDF:{path}:{variable}" if variable and path.endswith(".nc") else path
    return (
        f"reproject the file first, e.g. `gdalwarp -t_srs {want} -r bilinear {source} "
        f"{stem}_{want.replace(':', '')}.tif`, and point the catalog entry at the result"
    )
