"""Read one catalog entry the way its file really is: CRS, nodata, variables.

Real products record their CRS in different places, or not at all: a GeoTIFF
tag, a CF grid-mapping variable (read by rioxarray with ``decode_coords="all"``
in the catalog's ``xarray_kwargs``), a global ``proj4``/``crs_wkt``/
``spatial_ref`` attribute (BedMachine), or nowhere. When the file records
none, the entry's metadata ``crs`` is used and that is logged once per file.
The entry's metadata ``nodata`` is applied when the file declares no nodata
value of its own (Arthern's untagged -9999).
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xdeepbedmap.crs import parse_crs, same_crs
from xdeepbedmap.inputs import as_raster

__all__ = ["ICE_MASK_CHOICES", "open_entry", "read_ice_mask", "read_role"]

LOG = logging.getLogger("xdeepbedmap")
#: Global attributes some NetCDF products hold their CRS in.
CRS_ATTRIBUTES = ("crs_wkt", "spatial_ref", "proj4", "proj4text", "crs")
#: ``ice_mask`` choices of :func:`xdeepbedmap.open_inputs` besides ``None``.
ICE_MASK_CHOICES = ("grounded", "ice")
_CF_CACHE: dict[str, str] = {}


def open_entry(cat: Any, name: str, data_dir: str | None) -> tuple[Any, dict[str, Any]]:
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
    metadata["_path"] = url if isinstance(url, str) else ""
    return source, metadata


def _pick(opened: xr.Dataset | xr.DataArray, spec: dict[str, Any], metadata: dict[str, Any]):
    """The variable name a role reads (``None`` for a single-variable file)."""
    variable = spec.get("variable", metadata.get("variable"))
    if isinstance(opened, xr.Dataset) and variable is None and "band_data" in opened:
        variable = "band_data"
    return variable


def _grid_mapping(opened: xr.Dataset | xr.DataArray) -> tuple[str, dict[str, Any]] | None:
    """Name and attributes of the CF grid-mapping variable the data variables point to."""
    if not isinstance(opened, xr.Dataset):
        return None
    for var in opened.data_vars.values():
        name = var.encoding.get("grid_mapping", var.attrs.get("grid_mapping"))
        if name and name in opened.variables:
            return str(name), dict(opened[name].attrs)
    return None


def _cf_wkt(attrs: dict[str, Any]) -> str:
    """WKT of CF grid-mapping attributes, parsed once per distinct set of attributes.

    pyproj needs about a second to build the datum of a CF CRS, and rioxarray
    rebuilds it on every ``.rio.crs``: parse once, then carry a plain CRS.
    """
    key = repr(sorted((k, str(v)) for k, v in attrs.items()))
    if key not in _CF_CACHE:
        text = attrs.get("crs_wkt") or attrs.get("spatial_ref")
        _CF_CACHE[key] = parse_crs(text if isinstance(text, str) else attrs).to_wkt()
    return _CF_CACHE[key]


def _with_crs(
    opened: xr.Dataset | xr.DataArray, name: str, metadata: dict[str, Any], said: set[str]
) -> xr.Dataset | xr.DataArray:
    """``opened`` with a CRS: its own, a global attribute's, or the catalog's (logged once).

    A CRS equal to the catalog's ``crs`` in its parameters is replaced by that
    (canonical) spelling, so later steps compare and warp nothing.
    """
    mapping = _grid_mapping(opened)
    if mapping is not None:
        found = _cf_wkt(mapping[1])
        opened = opened.drop_vars(mapping[0])
        for var in opened.data_vars.values():
            var.encoding.pop("grid_mapping", None)
            var.attrs.pop("grid_mapping", None)
    else:
        found = opened.rio.crs
        for attr in CRS_ATTRIBUTES if found is None else ():
            value = opened.attrs.get(attr)
            if isinstance(value, str) and value.strip():
                found = value.strip()
                break
    crs = metadata.get("crs")
    if found is None:
        if crs is None:
            return opened  # assemble refuses it, naming the variable
        if name not in said:
            said.add(name)
            LOG.warning(
                "%s: %s records no CRS; using the catalog's %s", name, metadata.get("_path"), crs
            )
        return opened.rio.write_crs(crs)
    if crs is not None and same_crs(found, crs):
        found = crs
    return opened.rio.write_crs(parse_crs(found))


def _catalog_nodata(metadata: dict[str, Any]) -> float | None:
    value = metadata.get("nodata")
    if value is None:
        return None
    value = float(value)  # YAML "NaN" -> nan
    return None if math.isnan(value) else value


def read_role(
    cat: Any, role: str, spec: dict[str, Any], data_dir: str | None, said: set[str]
) -> xr.DataArray:
    """One input (``spec = {"source": entry, "variable": ...}``) as a raster with a CRS.

    ``said`` collects the entries whose missing CRS was already reported.
    """
    source, metadata = open_entry(cat, spec["source"], data_dir)
    opened = _with_crs(source.to_dask(), spec["source"], metadata, said)
    variable = _pick(opened, spec, metadata)
    da = as_raster(opened, role, variable=variable, nodata=_catalog_nodata(metadata))
    da.attrs.update(
        {
            "source_entry": spec["source"],
            "source_path": metadata["_path"],
            "units": metadata.get("units", ""),
        }
    )
    if variable and variable != "band_data":
        da.attrs["source_variable"] = variable
    return da


def read_ice_mask(
    cat: Any, spec: dict[str, Any], which: str, data_dir: str | None, said: set[str]
) -> xr.DataArray:
    """0/1 ice raster from a categorical mask: 1 where the class is in ``spec[which]``.

    ``spec`` is the catalog's ``metadata.ice_mask``: ``source`` (and
    ``variable``) of the mask, and the class values that count as
    ``grounded`` and as ``ice`` (grounded or floating).
    """
    if which not in ICE_MASK_CHOICES:
        raise ValueError(f"ice_mask must be one of {ICE_MASK_CHOICES} or None, got {which!r}")
    classes = spec.get(which)
    if not classes:
        raise ValueError(f"catalog metadata.ice_mask names no {which!r} classes")
    source, metadata = open_entry(cat, spec["source"], data_dir)
    opened = _with_crs(source.to_dask(), spec["source"], metadata, said)
    variable = spec.get("variable")
    raw = opened[variable] if isinstance(opened, xr.Dataset) and variable else opened
    if isinstance(raw, xr.Dataset):
        raise ValueError(f"ice mask entry {spec['source']}: say which variable is the mask")
    crs = opened.rio.crs
    # compare classes before any resampling: a mask is categorical
    inside = raw.isin(classes)
    flag = xr.where(raw.notnull(), inside.astype(np.float32), np.float32(np.nan))
    flag = flag.astype(np.float32).rio.write_crs(crs).rename("ice_mask")
    return flag.rio.write_nodata(np.nan, encoded=False)
