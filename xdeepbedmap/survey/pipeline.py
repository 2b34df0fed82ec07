"""Survey files to a truth file in one call: stream, correct the datum, grid, write.

What ``xdeepbedmap grid-survey`` runs. Files are streamed chunk by chunk
(:func:`~xdeepbedmap.survey.readers.iter_points`) and only the picks near the
box are kept (:func:`~xdeepbedmap.survey.gridding.grid_points`), so memory
scales with the picks in the box, not with the files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import xarray as xr

from xdeepbedmap.survey.errors import SurveyError
from xdeepbedmap.survey.geoid import ELLIPSOID, to_ellipsoid, to_geoid
from xdeepbedmap.survey.gridding import DEFAULT_MASK_RADIUS, DEFAULT_METHOD, grid_points
from xdeepbedmap.survey.readers import iter_points
from xdeepbedmap.survey.writers import layer_paths, write_geotiff, write_zarr

__all__ = ["grid_survey_files", "stream_points", "truth_outputs"]

Datum = Literal["ellipsoid", "geoid"]
_SUFFIXES = (".tif", ".tiff", ".zarr")


def truth_outputs(output: str | PathLike[str], overwrite: bool = False) -> list[Path]:
    """The files a truth ``output`` will be written to; refuse a bad suffix or existing files."""
    output = Path(output)
    if output.suffix.lower() not in _SUFFIXES:
        raise SurveyError(f"output {output}: expected a .tif, .tiff or .zarr path")
    paths = [output] if output.suffix.lower() == ".zarr" else list(layer_paths(output).values())
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"output {existing} exists; pass overwrite (--overwrite) to replace")
    return paths


def stream_points(
    paths: Sequence[str | PathLike[str]],
    *,
    geoid: xr.DataArray | None = None,
    to: Datum | None = None,
    geoid_name: str = "gl04c geoid",
    vertical_datum: str | None = None,
    stats: dict[str, int] | None = None,
    **reader_kwargs: Any,
) -> Iterator[pd.DataFrame]:
    """Yield the picks of several files chunk by chunk, moved to another datum if asked.

    Parameters
    ----------
    paths : sequence of path
        Survey files (see :func:`~xdeepbedmap.survey.iter_points`).
    geoid, to : optional
        A geoid-height raster and the datum to move heights to (``"ellipsoid"``
        or ``"geoid"``); both or neither.
    geoid_name : str
        Name of the geoid the raster describes.
    vertical_datum : str, optional
        Datum of the files' heights (default: WGS 84 ellipsoid for CReSIS,
        ``"unspecified"`` otherwise).
    stats : dict, optional
        Accumulates ``rows_read``, ``dropped_nodata``, ``dropped_quality``, ``kept``.
    **reader_kwargs
        Passed to :func:`~xdeepbedmap.survey.iter_points`.
    """
    if (geoid is None) != (to is None):
        raise SurveyError("a datum change needs both a geoid raster and a target datum")
    if to not in (None, "ellipsoid", "geoid"):
        raise SurveyError(f"to must be 'ellipsoid' or 'geoid', got {to!r}")
    stats = {} if stats is None else stats
    for key in ("rows_read", "dropped_nodata", "dropped_quality", "kept"):
        stats.setdefault(key, 0)
    source = ", ".join(str(p) for p in paths)
    for path in paths:
        for chunk in iter_points(path, **reader_kwargs):
            for key in ("rows_read", "dropped_nodata", "dropped_quality"):
                stats[key] += int(chunk.attrs[key])
            stats["kept"] += len(chunk)
            default = ELLIPSOID if chunk.attrs["layout"] == "cresis" else "unspecified"
            chunk.attrs.update(source=source, vertical_datum=vertical_datum or default)
            if to == "ellipsoid":
                chunk = to_ellipsoid(chunk, geoid, geoid_name)  # type: ignore[arg-type]
            elif to == "geoid":
                chunk = to_geoid(chunk, geoid, geoid_name)  # type: ignore[arg-type]
            yield chunk


def grid_survey_files(
    paths: Sequence[str | PathLike[str]],
    bbox: tuple[float, float, float, float],
    output: str | PathLike[str] | None = None,
    *,
    mask_radius: float = DEFAULT_MASK_RADIUS,
    method: str = DEFAULT_METHOD,
    overwrite: bool = False,
    stats: dict[str, int] | None = None,
    **stream_kwargs: Any,
) -> xr.Dataset:
    """Grid survey files to a 250 m truth with ``count`` and ``distance``, written to ``output``.

    Everything that can be checked is checked before any file is read or
    written: the output suffix and existence, the files' existence, the
    mask radius.

    Parameters
    ----------
    paths : sequence of path
        Survey files.
    bbox : tuple of float
        ``(xmin, ymin, xmax, ymax)`` in EPSG:3031 m.
    output : path, optional
        ``.tif``/``.tiff`` (three GeoTIFFs, :func:`write_geotiff`) or ``.zarr``.
    mask_radius, method
        As in :func:`~xdeepbedmap.survey.grid_points`.
    overwrite : bool
        Replace existing output files.
    stats : dict, optional
        Filled with the reading counts (see :func:`stream_points`).
    **stream_kwargs
        Passed to :func:`stream_points` (``geoid``, ``to``, ``layout``,
        ``bed_column``, ``crs`` ...).

    Returns
    -------
    xarray.Dataset
        The gridded truth (``bed``, ``count``, ``distance``).
    """
    if output is not None:
        truth_outputs(output, overwrite)
    if not paths:
        raise SurveyError("no survey file given")
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise SurveyError(f"survey file(s) {missing} do not exist")
    if not mask_radius > 0:
        raise SurveyError(f"mask_radius must be a positive distance in metres, got {mask_radius}")
    stats = {} if stats is None else stats
    points = stream_points(paths, stats=stats, **stream_kwargs)
    truth = grid_points(points, bbox, mask_radius=mask_radius, method=method)  # type: ignore[arg-type]
    if output is not None:
        if Path(output).suffix.lower() == ".zarr":
            write_zarr(truth, output, overwrite=overwrite)
        else:
            write_geotiff(truth, output, overwrite=overwrite)
    return truth
