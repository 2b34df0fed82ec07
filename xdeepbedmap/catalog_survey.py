"""The survey picks a catalog ships beside its rasters (``metadata.survey``).

The demo catalog's 1 km bed was gridded from a synthetic radar survey; the
picks of that survey ship with it (``demo/survey.parquet``), so a blended
model or ensemble (:mod:`xdeepbedmap.distance_blend`) can measure each output
pixel's distance to the nearest pick exactly as it would with real lines.
The catalog entry names the file (relative to the catalog's folder), its
column layout and the CRS of projected ``x``/``y`` columns::

    metadata:
      survey: {path: demo/survey.parquet, layout: xyz, crs: "EPSG:3031"}
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

from xdeepbedmap.catalog import catalog_path, open_catalog

__all__ = ["find_survey", "open_survey", "survey_path", "write_survey"]

#: File name of the picks beside a catalog's rasters (demo catalog).
SURVEY_FILE = "survey.parquet"


def _spec(catalog: str | PathLike[str]) -> dict[str, Any] | None:
    spec = (open_catalog(catalog).metadata or {}).get("survey")
    if spec and not (isinstance(spec, dict) and isinstance(spec.get("path"), str)):
        raise ValueError(
            f"catalog {catalog}: metadata.survey must be a mapping with a path (and layout, "
            f"crs), e.g. {{path: demo/survey.parquet, layout: xyz, crs: 'EPSG:3031'}}; "
            f"found {spec!r}"
        )
    return spec


def _located(catalog: str | PathLike[str]) -> tuple[Path, dict[str, Any]] | None:
    """The survey file ``catalog`` names and its entry, or ``None`` when it names none."""
    spec = _spec(catalog)
    if not spec:
        return None
    path = Path(spec["path"])
    if not path.is_absolute():
        path = catalog_path(catalog).parent / path
    if not path.exists():
        raise FileNotFoundError(f"catalog {catalog}: metadata.survey names {path}, not found")
    return path, spec


def survey_path(catalog: str | PathLike[str] = "demo") -> Path | None:
    """The survey file ``catalog`` names, or ``None`` when it names none.

    Raises
    ------
    FileNotFoundError
        If the catalog names a survey file that is not there.
    """
    located = _located(catalog)
    return None if located is None else located[0]


def find_survey(catalog: str | PathLike[str] = "demo") -> pd.DataFrame | None:
    """The survey picks ``catalog`` ships (``x``, ``y`` in EPSG:3031, ``bed``), or ``None``."""
    from xdeepbedmap.survey import read_points

    located = _located(catalog)
    if located is None:
        return None
    path, spec = located
    return read_points(path, spec.get("layout", "auto"), crs=spec.get("crs"))


def open_survey(catalog: str | PathLike[str] = "demo") -> pd.DataFrame:
    """Read the survey picks ``catalog`` ships (``x``, ``y`` in EPSG:3031, ``bed``).

    Raises
    ------
    ValueError
        If the catalog names no survey (``metadata.survey``).
    """
    picks = find_survey(catalog)
    if picks is None:
        raise ValueError(f"catalog {catalog} names no survey picks (metadata.survey)")
    return picks


def write_survey(picks: pd.DataFrame, directory: str | PathLike[str]) -> Path:
    """Write ``picks`` (``x``, ``y``, ``bed``) atomically as ``directory/survey.parquet``."""
    from xdeepbedmap.atomic import atomic_path

    path = Path(directory) / SURVEY_FILE
    with atomic_path(path, overwrite=True) as tmp:
        picks[["x", "y", "bed"]].to_parquet(tmp, index=False)
    return path
