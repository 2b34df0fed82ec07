"""Read radar survey picks into EPSG:3031 points: CReSIS, Bedmap, x/y/z and Parquet.

Every reader returns pandas DataFrames with columns ``x``, ``y`` (EPSG:3031
metres), ``bed`` (bed elevation, m) and, where the file has them,
``quality`` and ``line`` (flight line / frame id). Rows with no bed pick
(``-9999`` or NaN) and rows whose quality flag is worse than ``max_quality``
are dropped and counted.

Layouts (the column schema; the file format comes from the suffix, ``.parquet``
/ ``.pq`` for Parquet, anything else is delimited text, ``.gz`` allowed):

``cresis``
    CReSIS ``csv`` / ``csv_good``: ``LAT,LON,UTCTIMESOD,THICK,ELEVATION,FRAME,
    SURFACE,BOTTOM,QUALITY``. Our reading of the CReSIS convention: ``LAT``/``LON``
    are WGS 84 degrees; ``SURFACE`` and ``BOTTOM`` are elevations (m) of the ice
    surface and ice bottom on the WGS 84 ellipsoid (``BOTTOM`` is the base of
    the ice, so under floating ice it is the ice-shelf base, not the sea floor);
    ``THICK = SURFACE - BOTTOM``; ``-9999`` marks no pick; ``QUALITY`` is 1 (high
    confidence), 2 (medium) or 3 (low confidence / derived). The bed is
    ``BOTTOM`` and picks with ``QUALITY > max_quality`` (default 2) are dropped.
``bedmap``
    Bedmap-style point CSVs (``#`` comment lines, ``longitude (degree_east)``,
    ``latitude (degree_north)``, ``bedrock_altitude (m)``, ``trajectory_id``):
    longitude/latitude columns found by name, the bed column by ``bed_column``
    (default: the first column named ``bedrock_altitude...`` or ``bed...``).
``xyz``
    Projected coordinates and a bed column in any CRS (``crs`` required):
    columns ``x_column``/``y_column``/``bed_column``, or the first three columns.

Files are read ``chunksize`` rows at a time (:func:`iter_points`), so memory is
bounded by the chunk, not the file; :func:`read_points` concatenates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from functools import lru_cache
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from xdeepbedmap.grids import DEFAULT_CRS
from xdeepbedmap.survey.errors import SurveyError
from xdeepbedmap.survey.files import raw_chunks

__all__ = [
    "CRESIS_COLUMNS",
    "DEFAULT_CHUNKSIZE",
    "NODATA",
    "iter_points",
    "read_points",
]

logger = logging.getLogger(__name__)

Layout = Literal["auto", "cresis", "bedmap", "xyz"]
#: CReSIS csv / csv_good header.
CRESIS_COLUMNS = (
    "LAT",
    "LON",
    "UTCTIMESOD",
    "THICK",
    "ELEVATION",
    "FRAME",
    "SURFACE",
    "BOTTOM",
    "QUALITY",
)
#: Value that marks a missing pick in CReSIS and Bedmap files.
NODATA = -9999.0
#: Rows per chunk: about 100 MB of parsed CReSIS text.
DEFAULT_CHUNKSIZE = 1_000_000
_DATUMS = {"cresis": "WGS84 ellipsoid"}
_STAT_KEYS = ("rows_read", "dropped_nodata", "dropped_quality")


@lru_cache(maxsize=16)
def _transformer(crs: str) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs(crs, DEFAULT_CRS, always_xy=True)


def _find(columns: Iterable[str], prefixes: tuple[str, ...]) -> str | None:
    for prefix in prefixes:
        for column in columns:
            if str(column).strip().lower().startswith(prefix):
                return str(column)
    return None


def _schema(columns: list[str], layout: Layout) -> str:
    if layout != "auto":
        return layout
    if {"LAT", "LON", "BOTTOM"} <= set(columns):
        return "cresis"
    if _find(columns, ("lon",)) and _find(columns, ("lat",)):
        return "bedmap"
    return "xyz"


def _columns(
    raw: pd.DataFrame, schema: str, options: dict[str, Any], path: Path
) -> dict[str, str | None]:
    """Which raw column plays each role: x, y, bed, quality, line."""
    cols = [str(c) for c in raw.columns]
    bed = options["bed_column"]
    if schema == "cresis":
        roles = {"x": "LON", "y": "LAT", "bed": bed or "BOTTOM", "quality": "QUALITY"}
        roles["line"] = "FRAME"
    elif schema == "bedmap":
        roles = {
            "x": options["x_column"] or _find(cols, ("lon",)),
            "y": options["y_column"] or _find(cols, ("lat",)),
            "bed": bed or _find(cols, ("bedrock_altitude", "bed")),
            "quality": _find(cols, ("quality",)),
            "line": _find(cols, ("trajectory_id", "line", "frame")),
        }
    elif schema == "xyz":
        first = [*cols[:3], None, None, None]
        roles = {
            "x": options["x_column"] or first[0],
            "y": options["y_column"] or first[1],
            "bed": bed or first[2],
            "quality": None,
            "line": None,
        }
    else:
        raise SurveyError(f"layout must be auto, cresis, bedmap or xyz; got {schema!r}")
    for role in ("x", "y", "bed"):
        if roles[role] is None or roles[role] not in cols:
            raise SurveyError(
                f"{path}: no {role} column {roles[role]!r} for layout {schema!r}; "
                f"the file's columns are {cols}"
            )
    return {k: (v if v in cols else None) for k, v in roles.items()}


def _normalise(
    raw: pd.DataFrame, roles: dict[str, str | None], crs: str, max_quality: int | None
) -> pd.DataFrame:
    """Drop no-data and bad-quality rows, reproject to EPSG:3031, rename."""
    lon = pd.to_numeric(raw[roles["x"]], errors="coerce").to_numpy(np.float64)
    lat = pd.to_numeric(raw[roles["y"]], errors="coerce").to_numpy(np.float64)
    bed = pd.to_numeric(raw[roles["bed"]], errors="coerce").to_numpy(np.float64)
    valid = np.isfinite(lon) & np.isfinite(lat) & np.isfinite(bed) & (bed != NODATA)
    good = valid.copy()
    quality = None
    if roles["quality"] is not None:
        quality = pd.to_numeric(raw[roles["quality"]], errors="coerce").to_numpy(np.float64)
        if max_quality is not None:
            good &= np.isfinite(quality) & (quality <= max_quality)
    x, y = _transformer(crs).transform(lon[good], lat[good])
    out = pd.DataFrame({"x": np.asarray(x), "y": np.asarray(y), "bed": bed[good]})
    if quality is not None:
        out["quality"] = quality[good].astype(np.int8)
    if roles["line"] is not None:
        out["line"] = raw[roles["line"]].to_numpy()[good].astype(str)
    out.attrs = {
        "rows_read": len(raw),
        "dropped_nodata": int((~valid).sum()),
        "dropped_quality": int((valid & ~good).sum()),
    }
    return out


def iter_points(
    path: str | PathLike[str],
    layout: Layout = "auto",
    *,
    chunksize: int = DEFAULT_CHUNKSIZE,
    bed_column: str | None = None,
    x_column: str | None = None,
    y_column: str | None = None,
    crs: str | None = None,
    max_quality: int | None = 2,
) -> Iterator[pd.DataFrame]:
    """Yield a survey file's valid picks ``chunksize`` rows at a time.

    Parameters
    ----------
    path : str or path-like
        CSV/text (optionally ``.gz``) or Parquet file.
    layout : {"auto", "cresis", "bedmap", "xyz"}
        Column schema (see the module docstring); ``auto`` decides from the
        column names (CReSIS if ``LAT``, ``LON``, ``BOTTOM``; Bedmap if
        longitude/latitude columns; otherwise x/y/z).
    chunksize : int
        Rows read at a time.
    bed_column, x_column, y_column : str, optional
        Column names overriding the layout's defaults.
    crs : str, optional
        CRS of the coordinate columns; default EPSG:4326 (lon/lat) for the
        ``cresis`` and ``bedmap`` layouts; required for ``xyz``.
    max_quality : int or None
        Drop picks whose quality flag is larger (worse); ``None`` keeps all.

    Yields
    ------
    pandas.DataFrame
        ``x``, ``y`` (EPSG:3031 m), ``bed`` and, if present, ``quality``,
        ``line``; ``attrs`` counts ``rows_read``, ``dropped_nodata``,
        ``dropped_quality`` for the chunk.
    """
    path = Path(path)
    if not path.exists():
        raise SurveyError(f"survey file {path} does not exist")
    if chunksize < 1:
        raise SurveyError(f"chunksize must be a positive number of rows, got {chunksize}")
    options = {"bed_column": bed_column, "x_column": x_column, "y_column": y_column}
    roles = None
    for raw in raw_chunks(path, chunksize):
        raw.columns = [str(c).strip() for c in raw.columns]  # header-less files: 0, 1, 2
        if roles is None:
            schema = _schema(list(raw.columns), layout)
            if schema == "xyz" and crs is None:
                raise SurveyError(
                    f"{path}: x/y/z columns need their CRS (crs='EPSG:3031' or the file's CRS)"
                )
            roles = _columns(raw, schema, options, path)
            src_crs = crs or "EPSG:4326"
        chunk = _normalise(raw, roles, src_crs, max_quality)
        chunk.attrs["layout"] = schema
        yield chunk


def read_points(
    paths: str | PathLike[str] | Iterable[str | PathLike[str]],
    layout: Layout = "auto",
    *,
    vertical_datum: str | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Read one or more survey files into one DataFrame (see :func:`iter_points`).

    Parameters
    ----------
    paths : path or list of paths
        Survey files, all of the same layout.
    layout : str
        Column schema, see :func:`iter_points`.
    vertical_datum : str, optional
        What ``bed`` heights are relative to; default ``"WGS84 ellipsoid"``
        for CReSIS files, otherwise ``"unspecified"``.
    **kwargs
        Passed to :func:`iter_points` (``chunksize``, ``bed_column``, ``crs``,
        ``max_quality`` ...).

    Returns
    -------
    pandas.DataFrame
        ``x``, ``y``, ``bed`` (+ ``quality``, ``line``); ``attrs`` records
        ``source``, ``crs`` (of the file), ``vertical_datum``, ``layout`` and
        the counts ``rows_read``, ``dropped_nodata``, ``dropped_quality``.
    """
    if isinstance(paths, str | PathLike):
        paths = [paths]
    paths = [Path(p) for p in paths]
    chunks, stats, schema = [], dict.fromkeys(_STAT_KEYS, 0), "xyz"
    for path in paths:
        for chunk in iter_points(path, layout, **kwargs):
            for key in _STAT_KEYS:
                stats[key] += chunk.attrs[key]
            schema = chunk.attrs["layout"]
            chunks.append(chunk)
    if not chunks:
        raise SurveyError(f"no data rows in {[str(p) for p in paths]}")
    out = pd.concat(chunks, ignore_index=True)
    out.attrs = {
        "source": ", ".join(str(p) for p in paths),
        "layout": schema,
        "crs": kwargs.get("crs") or "EPSG:4326",
        "vertical_datum": vertical_datum or _DATUMS.get(schema, "unspecified"),
        **stats,
    }
    logger.info(
        "read %d picks from %s (%d rows; dropped %d without a bed pick, %d of poor quality)",
        len(out),
        out.attrs["source"],
        stats["rows_read"],
        stats["dropped_nodata"],
        stats["dropped_quality"],
    )
    return out
