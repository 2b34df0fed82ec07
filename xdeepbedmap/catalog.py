"""Open the inputs through Intake catalogs, lazily; write synthetic regions as real files.

Two catalogs ship with the package (and are linked from the repository's
``catalogs/`` folder): ``demo`` (an embedded synthetic region, real
GeoTIFFs) and ``antarctica`` (the real products, read from files you
download; see each entry's metadata). A catalog names the entry that plays
each role in its ``metadata.inputs`` mapping (``bed``, ``surface``, ``vx``,
``vy``, ``accumulation``; optionally ``variable`` for multi-variable files).
"""

from __future__ import annotations

import os
import warnings
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xdeepbedmap.atomic import atomic_path
from xdeepbedmap.grids import VARIABLES
from xdeepbedmap.inputs import BBox, as_raster, assemble

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


def _open_entry(cat: Any, name: str, data_dir: str | None) -> tuple[Any, dict[str, Any]]:
    """Open catalog entry ``name``; raise FileNotFoundError saying where to get its file."""
    if name not in cat:
        raise ValueError(f"catalog has no entry {name!r}; entries are {sorted(cat)}")
    entry = cat._entries[name]
    described = entry.describe()
    params = {p["name"] if isinstance(p, dict) else p for p in described.get("user_parameters", [])}
    with warnings.catch_warnings():
        # intake warns about shell templates on every parameter, used or not
        warnings.filterwarnings("ignore", message="Shell command not executed")
        source = entry.get(**({"data_dir": data_dir} if "data_dir" in params and data_dir else {}))
    metadata = dict(described.get("metadata") or {})
    url = getattr(getattr(getattr(source, "reader", None), "data", None), "url", None)
    if isinstance(url, str) and "://" not in url and not Path(url).exists():
        where = metadata.get("url", "see the catalog")
        filename = metadata.get("filename", Path(url).name)
        raise FileNotFoundError(
            f"{name}: file {url} not found. Download it from {where} and save it as "
            f"{filename} under the data folder (data_dir / XDEEPBEDMAP_DATA_DIR)"
        )
    return source, metadata


def _read_role(cat: Any, role: str, spec: dict[str, Any], data_dir: str | None) -> xr.DataArray:
    source, metadata = _open_entry(cat, spec["source"], data_dir)
    opened = source.to_dask()
    variable = spec.get("variable", metadata.get("variable"))
    if isinstance(opened, xr.Dataset) and variable is None and "band_data" in opened:
        variable = "band_data"
    da = as_raster(opened, role, variable=variable)
    da.attrs.update({"source_entry": spec["source"], "units": metadata.get("units", "")})
    return da


def open_inputs(
    catalog: str | PathLike[str] = "demo",
    region: BBox | None = None,
    chunks: int | tuple[int, int] | None = 256,
    data_dir: str | PathLike[str] | None = None,
    sources: dict[str, str] | None = None,
) -> xr.Dataset:
    """Open the canonical input Dataset from a catalog, dask-backed and lazy.

    No pixel is read until the result is computed.

    Parameters
    ----------
    catalog : str or path-like
        ``"demo"`` (default), ``"antarctica"`` or the path of a catalog YAML.
    region : tuple of float, optional
        ``(xmin, ymin, xmax, ymax)`` in EPSG:3031 metres; default: the bed's extent.
    chunks : int or tuple of int, optional
        Base-grid chunk size; nested variables get 10x (surface) and 2x
        (velocity) chunks so that chunks nest.
    data_dir : str or path-like, optional
        Folder of downloaded files for catalogs with a ``data_dir`` parameter
        (default: ``$XDEEPBEDMAP_DATA_DIR`` or ``~/.local/share/xdeepbedmap``).
    sources : dict, optional
        Override which entry plays a role, e.g. ``{"bed": "bedmachine_bed"}``.

    Returns
    -------
    xarray.Dataset
        ``bed``, ``accumulation``, ``surface``, ``vx``, ``vy`` on nested grids.
    """
    cat = open_catalog(catalog)
    roles = dict((cat.metadata or {}).get("inputs") or {})
    for role, entry in (sources or {}).items():
        if role not in VARIABLES:
            raise ValueError(f"unknown input role {role!r}; roles are {list(VARIABLES)}")
        roles[role] = {"source": entry}
    missing = [role for role in VARIABLES if role not in roles]
    if missing:
        raise ValueError(f"catalog {catalog}: metadata.inputs lacks role(s) {missing}")
    resolved = _resolve_data_dir(data_dir)
    rasters = {role: _read_role(cat, role, roles[role], resolved) for role in VARIABLES}
    ds = assemble(**rasters, bbox=region, chunks=chunks)
    ds.attrs["catalog"] = str(catalog)
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
    return _read_role(cat, "truth", spec, _resolve_data_dir(data_dir))


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
    """(Re)generate the embedded demo region's files from ``make_region``."""
    from xdeepbedmap.synthetic import make_region

    inputs, truth = make_region(DEMO_SHAPE, seed=DEMO_SEED)
    return write_region_files(directory or SHIPPED_CATALOGS / "demo", inputs, truth)
