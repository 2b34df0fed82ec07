"""Many training (or held-out) regions from a YAML file, each a bbox of a catalog with a truth.

A regions file is a YAML list; each item names a catalog (shipped name or a
catalog YAML), optionally a ``bbox`` (``[xmin, ymin, xmax, ymax]``, EPSG:3031
m), a ``truth`` grid (a 250 m GeoTIFF, or a Zarr store such as
``xdeepbedmap grid-survey`` writes; default: the catalog's truth), survey
``points`` (held-out regions scored at picks instead of a grid), a
``data_dir`` and a ``name``. Relative paths are relative to the YAML file::

    - {catalog: antarctica, bbox: [-1600000, -300000, -1500000, -200000],
       truth: truth_pig.tif, name: pine-island}
    - {catalog: my_region.yaml, truth: thwaites.zarr}

:func:`require_tiles` explains, with each region's measured truth coverage,
why a tile set is too small to split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any

import xarray as xr

from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.training.extract import coverage_message
from xdeepbedmap.training.layout import TileLayout

__all__ = [
    "RegionSpec",
    "TooFewTiles",
    "load_regions",
    "open_holdouts",
    "open_region",
    "open_truth_grid",
    "read_region_specs",
    "require_tiles",
]

_KEYS = {"catalog", "bbox", "truth", "points", "data_dir", "name"}


class TooFewTiles(XDeepBedMapError, ValueError):
    """The regions' truth covers too little of them to give the tiles asked for."""


@dataclass(frozen=True)
class RegionSpec:
    """One region of a regions file (paths already resolved)."""

    catalog: str
    bbox: tuple[float, float, float, float] | None = None
    truth: str | None = None
    points: str | None = None
    data_dir: str | None = None
    name: str = ""


def _resolve(value: Any, folder: Path) -> str | None:
    if value is None:
        return None
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() else folder / path)


def _bbox(value: Any, where: str) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    try:
        xmin, ymin, xmax, ymax = (float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: bbox must be [xmin, ymin, xmax, ymax], got {value!r}") from err
    if not (xmin < xmax and ymin < ymax):
        raise ValueError(f"{where}: bbox must have min < max, got {value!r}")
    return xmin, ymin, xmax, ymax


def _catalog(value: Any, folder: Path) -> str:
    text = str(value)
    # a shipped catalog is a bare name; anything ending in .yaml is a file
    return _resolve(text, folder) if text.endswith((".yaml", ".yml")) else text  # type: ignore[return-value]


def read_region_specs(path: str | PathLike[str]) -> list[RegionSpec]:
    """Parse and check a regions file (nothing is opened yet).

    Raises
    ------
    ValueError
        If the file is not a non-empty list of mappings with a ``catalog``,
        has unknown keys, a malformed bbox, or names a truth/points file that
        does not exist.
    """
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"regions file not found: {path}")
    items = yaml.safe_load(path.read_text())
    if not isinstance(items, list) or not items:
        raise ValueError(f"{path}: expected a non-empty YAML list of regions, got {items!r}")
    specs = []
    for index, item in enumerate(items):
        where = f"{path} region {index}"
        if not isinstance(item, dict) or "catalog" not in item:
            raise ValueError(f"{where}: expected a mapping with a 'catalog', got {item!r}")
        unknown = sorted(set(item) - _KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(_KEYS)}")
        spec = RegionSpec(
            catalog=_catalog(item["catalog"], path.parent),
            bbox=_bbox(item.get("bbox"), where),
            truth=_resolve(item.get("truth"), path.parent),
            points=_resolve(item.get("points"), path.parent),
            data_dir=_resolve(item.get("data_dir"), path.parent),
            name=str(item.get("name", f"region {index}")),
        )
        for role in ("truth", "points"):
            file = getattr(spec, role)
            if file is not None and not Path(file).exists():
                raise FileNotFoundError(f"{where}: {role} {file} does not exist")
        specs.append(spec)
    return specs


def open_truth_grid(path: str | PathLike[str]) -> xr.DataArray:
    """A 250 m truth bed, lazily: a single-band GeoTIFF or a Zarr store's ``bed``/``truth``."""
    path = Path(path)
    if path.is_dir():
        ds = xr.open_zarr(path, consolidated=False, decode_coords="all")
        for name in ("bed", "truth"):
            if name in ds:
                return ds[name]
        raise ValueError(f"truth store {path} has no 'bed' or 'truth' variable: {list(ds)}")
    import rioxarray

    da = rioxarray.open_rasterio(path, masked=True, chunks={"band": 1})
    if da.sizes.get("band", 1) != 1:
        raise ValueError(f"truth {path}: expected one band, found {da.sizes['band']}")
    return da.squeeze("band", drop=True)


def open_region(spec: RegionSpec, chunks: int = 256) -> tuple[xr.Dataset, xr.DataArray]:
    """Lazy ``(inputs, truth)`` of a region: its catalog's inputs in ``bbox`` and its truth."""
    from xdeepbedmap.catalog import open_inputs, open_truth

    inputs = open_inputs(spec.catalog, region=spec.bbox, chunks=chunks, data_dir=spec.data_dir)
    if spec.truth is not None:
        truth = open_truth_grid(spec.truth)
    else:
        truth = open_truth(spec.catalog, data_dir=spec.data_dir)
    return inputs, truth


def load_regions(path: str | PathLike[str]) -> list[tuple[xr.Dataset, xr.DataArray]]:
    """The lazy ``(inputs, truth)`` pairs of every region in a regions file."""
    return [open_region(spec) for spec in read_region_specs(path)]


def _is_regions_file(source: str) -> bool:
    """A regions file is a YAML list; a catalog is a YAML mapping (or a shipped name)."""
    import yaml

    if not source.endswith((".yaml", ".yml")) or not Path(source).exists():
        return False
    return isinstance(yaml.safe_load(Path(source).read_text()), list)


def open_holdouts(
    source: str | PathLike[str],
    points: str | PathLike[str] | None = None,
    data_dir: str | None = None,
    **reader_kwargs: Any,
) -> list[tuple[xr.Dataset, Any]]:
    """Held-out ``(inputs, truth)`` pairs; truth is a computed grid or survey picks.

    Parameters
    ----------
    source : str or path
        A regions file (each region scored on its ``points`` if it names
        some, else on its truth grid) or a catalog (its whole extent and truth).
    points : path, optional
        Survey picks to score on instead of the truth grid; only for a catalog
        or a regions file of one region (otherwise give ``points:`` per region).
    data_dir : str, optional
        Folder of downloaded files for a catalog ``source``.
    **reader_kwargs
        Passed to :func:`xdeepbedmap.survey.read_points`.
    """
    from xdeepbedmap.survey import read_points

    source = str(source)
    if _is_regions_file(source):
        specs = read_region_specs(source)
        if points is not None:
            if len(specs) != 1:
                raise ValueError(
                    f"holdout points {points} with {len(specs)} regions in {source}: name each "
                    "region's picks with a 'points:' key instead"
                )
            specs = [replace(specs[0], points=str(points))]
    else:
        specs = [RegionSpec(catalog=source, points=None if points is None else str(points),
                            data_dir=data_dir)]  # fmt: skip
    pairs: list[tuple[xr.Dataset, Any]] = []
    for spec in specs:
        if spec.points is not None:
            from xdeepbedmap.catalog import open_inputs

            inputs = open_inputs(spec.catalog, region=spec.bbox, data_dir=spec.data_dir)
            pairs.append((inputs, read_points(spec.points, **reader_kwargs)))
        else:
            inputs, truth = open_region(spec)
            pairs.append((inputs, truth.compute()))
    return pairs


def require_tiles(tiles: xr.Dataset, minimum: int = 2) -> None:
    """Raise :class:`TooFewTiles` if ``tiles`` has fewer than ``minimum``, saying why.

    The reason comes from the per-region coverage :func:`build_tiles` records
    (the truth's valid fraction of each region and how many tile positions it
    fills to the layout's ``min_coverage``).
    """
    count = int(tiles.sizes["tile"])
    if count >= minimum:
        return
    recipe = json.loads(tiles.attrs.get("recipe", "null") or "null") or {}
    layout = TileLayout(**recipe.get("layout", {}))
    stats = json.loads(tiles.attrs.get("coverage", "[]"))
    why = coverage_message(stats, layout) if stats else "(no coverage recorded in this cache)"
    raise TooFewTiles(
        f"{count} tile(s), need at least {minimum} to split into training and validation. "
        f"{why} Lower --min-coverage, use a smaller --stride, add regions, or grid the "
        "survey with a larger --mask-radius."
    )
