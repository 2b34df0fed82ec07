"""Open the inputs through Intake catalogs, lazily; write synthetic regions as real files.

Two catalogs ship with the package (and are linked from the repository's
``catalogs/`` folder): ``demo`` (an embedded synthetic region, real
GeoTIFFs) and ``antarctica`` (the real products, read from files you
download; see each entry's metadata). A catalog names the entry that plays
each role in its ``metadata.inputs`` mapping (``bed``, ``surface``, ``vx``,
``vy``, ``accumulation``; optionally ``variable`` for multi-variable files),
optionally the alternative beds (``metadata.bed_sources``), a categorical ice
mask (``metadata.ice_mask``) and whether it holds real or synthetic data
(``metadata.kind``). Reading an entry (CRS, nodata) is :mod:`xdeepbedmap.entries`.
"""

from __future__ import annotations

import os
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xdeepbedmap.atomic import atomic_path
from xdeepbedmap.entries import ICE_MASK_CHOICES, LOG, read_ice_mask, read_role
from xdeepbedmap.grids import VARIABLES
from xdeepbedmap.inputs import BBox, assemble
from xdeepbedmap.region import DEFAULT_MARGIN

__all__ = [
    "SHIPPED_CATALOGS",
    "catalog_path",
    "open_catalog",
    "open_inputs",
    "open_truth",
    "write_demo_data",
    "write_region_files",
]

SHIPPED_CATALOGS = Path(__file__).parent / "catalogs"
DEFAULT_DATA_DIR = "~/.local/share/xdeepbedmap"
DEMO_SHAPE = (80, 80)
DEMO_SEED = 42
#: The synthetic world of the demo region (``synthetic.WORLDS``): v2, its 1 km
#: bed gridded from a synthetic survey whose picks ship beside it.
DEMO_WORLD = "v2"


def catalog_path(catalog: str | PathLike[str]) -> Path:
    """Resolve a shipped catalog name (``"demo"``, ``"antarctica"``) or a YAML path."""
    path = Path(catalog)
    if path.suffix in {".yaml", ".yml"}:
        if not path.exists():
            raise FileNotFoundError(f"catalog file not found: {path}")
        return path
    shipped = SHIPPED_CATALOGS / f"{catalog}.yaml"
    if not shipped.exists():
        names = sorted(p.stem for p in SHIPPED_CATALOGS.glob("*.yaml"))
        raise ValueError(f"unknown catalog {str(catalog)!r}: give a .yaml path or one of {names}")
    return shipped


def open_catalog(catalog: str | PathLike[str] = "demo") -> Any:
    """Open an Intake catalog by shipped name or path.

    Raises
    ------
    ValueError
        If the file is not valid YAML (the message names the file, line and column).
    """
    import intake
    import yaml

    path = catalog_path(catalog)
    try:
        return intake.open_catalog(str(path))
    except yaml.YAMLError as err:
        # yaml parses the text it was handed, so it calls the file "<unicode string>"
        where = " ".join(str(err).replace('"<unicode string>"', str(path)).split())
        raise ValueError(f"catalog {path} is not valid YAML: {where}") from None


def _resolve_data_dir(data_dir: str | PathLike[str] | None) -> str:
    chosen = data_dir or os.environ.get("XDEEPBEDMAP_DATA_DIR") or DEFAULT_DATA_DIR
    return str(Path(chosen).expanduser())


def _roles(
    meta: dict[str, Any],
    catalog: str | PathLike[str],
    sources: dict[str, Any] | None,
    bed_source: str | None,
) -> dict[str, dict[str, Any]]:
    """Which entry (and variable) plays each role, after ``bed_source`` and ``sources``."""
    roles = {role: dict(spec) for role, spec in (meta.get("inputs") or {}).items()}
    if bed_source is not None:
        choices = meta.get("bed_sources") or {}
        if bed_source not in choices:
            raise ValueError(
                f"catalog {catalog}: unknown bed_source {bed_source!r}; "
                f"choices are {sorted(choices) or 'none (the catalog lists no bed_sources)'}"
            )
        roles["bed"] = dict(choices[bed_source])
    for role, entry in (sources or {}).items():
        if role not in VARIABLES:
            raise ValueError(f"unknown input role {role!r}; roles are {list(VARIABLES)}")
        roles[role] = dict(entry) if isinstance(entry, dict) else {"source": entry}
    missing = [role for role in VARIABLES if role not in roles]
    if missing:
        raise ValueError(f"catalog {catalog}: metadata.inputs lacks role(s) {missing}")
    return roles


def _ice_mask(
    cat: Any, meta: dict[str, Any], ice_mask: str | None, data_dir: str, said: set[str]
) -> xr.DataArray | None:
    """The 0/1 ice raster asked for: ``"auto"`` is ``"grounded"`` if the mask file is there."""
    spec = meta.get("ice_mask")
    if ice_mask is None or (ice_mask == "auto" and not spec):
        return None
    if not spec:
        raise ValueError(
            f"ice_mask={ice_mask!r}: the catalog names no ice mask (metadata.ice_mask)"
        )
    which = "grounded" if ice_mask == "auto" else ice_mask
    try:
        return read_ice_mask(cat, spec, which, data_dir, said)
    except FileNotFoundError as err:
        if ice_mask != "auto":
            raise
        LOG.warning("no ice mask: %s", err)
        return None


def open_inputs(
    catalog: str | PathLike[str] = "demo",
    region: BBox | None = None,
    chunks: int | tuple[int, int] | None = 256,
    data_dir: str | PathLike[str] | None = None,
    sources: dict[str, Any] | None = None,
    *,
    bed_source: str | None = None,
    ice_mask: str | None = "auto",
    margin: int | None = None,
) -> xr.Dataset:
    """Open the canonical input Dataset from a catalog, dask-backed and lazy.

    No pixel is read until the result is computed.

    Parameters
    ----------
    catalog : str or path-like
        ``"demo"`` (default), ``"antarctica"`` or the path of a catalog YAML.
    region : tuple of float, optional
        ``(xmin, ymin, xmax, ymax)`` in EPSG:3031 metres; default: the bed's extent.
        The Dataset covers the region grown by ``margin``; crop results back
        with :func:`xdeepbedmap.region.crop_to_region`.
    chunks : int or tuple of int, optional
        Base-grid chunk size; nested variables get 10x (surface) and 2x
        (velocity) chunks so that chunks nest.
    data_dir : str or path-like, optional
        Folder of downloaded files for catalogs with a ``data_dir`` parameter
        (default: ``$XDEEPBEDMAP_DATA_DIR`` or ``~/.local/share/xdeepbedmap``).
    sources : dict, optional
        Override which entry plays a role: an entry name, or
        ``{"source": entry, "variable": name}``, e.g.
        ``{"vx": {"source": "measures_velocity_v2", "variable": "VX"}}``.
    bed_source : str, optional
        A name from the catalog's ``metadata.bed_sources`` (``antarctica``:
        ``"bedmap2"`` (default), ``"bedmachine"``, ``"bedmap3"``).
    ice_mask : {"auto", "grounded", "ice", None}
        Add ``ice_mask``, the fraction (0..1) of each 1 km base pixel covered
        by grounded ice (``"grounded"``) or by grounded or floating ice
        (``"ice"``), from the catalog's ``metadata.ice_mask`` source
        (BedMachine ``mask``). ``"auto"`` (default): grounded, when the
        catalog names a mask and its file is present; ``None``: no mask.
    margin : int, optional
        With ``region``: base pixels of true data added on every side (fewer
        where the bed ends), so results near the region's edge do not depend
        on it; default :data:`xdeepbedmap.region.DEFAULT_MARGIN`. The region
        itself is recorded in ``attrs["xdeepbedmap_region"]``.

    Returns
    -------
    xarray.Dataset
        ``bed``, ``accumulation``, ``surface``, ``vx``, ``vy`` on nested grids,
        optionally ``ice_mask`` (chunked like ``bed``); ``attrs["catalog_kind"]``
        is the catalog's ``metadata.kind`` (``"real"`` or ``"synthetic"``).
    """
    if ice_mask not in (None, "auto", *ICE_MASK_CHOICES):
        raise ValueError(f"ice_mask must be 'auto', 'grounded', 'ice' or None, got {ice_mask!r}")
    cat = open_catalog(catalog)
    meta = dict(cat.metadata or {})
    roles = _roles(meta, catalog, sources, bed_source)
    resolved = _resolve_data_dir(data_dir)
    said: set[str] = set()  # entries whose missing CRS was reported already
    rasters = {role: read_role(cat, role, roles[role], resolved, said) for role in VARIABLES}
    mask = _ice_mask(cat, meta, ice_mask, resolved, said)
    margin = DEFAULT_MARGIN if margin is None else int(margin)
    ds = assemble(**rasters, bbox=region, chunks=chunks, margin=margin, ice_mask=mask)
    ds.attrs["catalog"] = str(catalog)
    ds.attrs["catalog_kind"] = str(meta.get("kind", "unknown"))
    ds.attrs["bed_source"] = str(roles["bed"]["source"])
    if mask is not None:
        which = "grounded" if ice_mask == "auto" else ice_mask
        ds["ice_mask"].attrs.update(
            {
                "long_name": f"fraction of the 1 km cell covered by {which} ice",
                "units": "1",
                "classes": list(meta["ice_mask"][which]),
            }
        )
    return ds


def open_truth(
    catalog: str | PathLike[str] = "demo",
    data_dir: str | PathLike[str] | None = None,
) -> xr.DataArray:
    """Open a catalog's 250 m ground-truth bed (``metadata.truth``), lazily."""
    cat = open_catalog(catalog)
    spec = (cat.metadata or {}).get("truth")
    if not spec:
        raise ValueError(f"catalog {catalog} names no ground truth (metadata.truth)")
    return read_role(cat, "truth", spec, _resolve_data_dir(data_dir), set())


def _write_tif(da: xr.DataArray, path: Path) -> Path:
    ydim, xdim = da.dims
    out = da.rename({ydim: "y", xdim: "x"}).rio.set_spatial_dims(x_dim="x", y_dim="y")
    out = out.rio.write_nodata(np.nan, encoded=False)
    with atomic_path(path, overwrite=True) as tmp:
        out.rio.to_raster(
            tmp,
            driver="GTiff",
            compress="DEFLATE",
            predictor=3,
            zlevel=9,
            tiled=True,
            blockxsize=256,
            blockysize=256,
        )
    return path


def write_region_files(
    directory: str | PathLike[str], inputs: xr.Dataset, truth: xr.DataArray | None = None
) -> dict[str, Path]:
    """Write a region's inputs (and truth) as tiled, compressed GeoTIFFs.

    File names match the demo catalog: ``bed.tif``, ``surface.tif``,
    ``velocity_x.tif``, ``velocity_y.tif``, ``accumulation.tif``, ``truth.tif``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = {
        "bed": "bed",
        "surface": "surface",
        "vx": "velocity_x",
        "vy": "velocity_y",
        "accumulation": "accumulation",
    }
    crs = inputs.rio.crs
    written = {}
    for var, stem in names.items():
        written[var] = _write_tif(inputs[var].rio.write_crs(crs), directory / f"{stem}.tif")
    if truth is not None:
        written["truth"] = _write_tif(truth, directory / "truth.tif")
    return written


def write_demo_data(directory: str | PathLike[str] | None = None) -> dict[str, Path]:
    """(Re)generate the embedded demo region's files from ``make_region``.

    World :data:`DEMO_WORLD`: the rasters, the truth and ``survey.parquet``,
    the picks of the synthetic survey its 1 km bed was gridded from.
    """
    from xdeepbedmap.catalog_survey import write_survey
    from xdeepbedmap.synthetic import WORLDS, make_region, survey_picks

    directory = Path(directory or SHIPPED_CATALOGS / "demo")
    inputs, truth = make_region(DEMO_SHAPE, seed=DEMO_SEED, **WORLDS[DEMO_WORLD])
    written = write_region_files(directory, inputs, truth)
    written["survey"] = write_survey(survey_picks(truth, DEMO_SEED), directory)
    return written
