"""One result, several output files, computed once."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from os import PathLike
from pathlib import Path
from typing import Any, cast

import numpy as np
import xarray as xr

from xdeepbedmap.io.cog import to_cog
from xdeepbedmap.io.lock import output_lock
from xdeepbedmap.io.zarr_store import open_zarr_output, to_zarr

__all__ = [
    "OUTPUT_SUFFIXES",
    "check_outputs",
    "open_layers",
    "open_output",
    "quality_path",
    "write_outputs",
]

#: Variables written together into each output: a Zarr store's variables, a
#: GeoTIFF's bands in this order (an ensemble's mean bed and its spread).
BED_LAYERS = ("bed", "bed_std")

#: File name endings :func:`write_outputs` knows: GeoTIFF (written as a COG) and Zarr.
OUTPUT_SUFFIXES = (".tif", ".tiff", ".zarr")


def _is_zarr(path: Path) -> bool:
    return path.suffix.lower() == ".zarr"


def check_outputs(paths: Sequence[str | PathLike[str]], overwrite: bool = False) -> list[Path]:
    """Refuse output paths :func:`write_outputs` would refuse, before anything is computed.

    Returns
    -------
    list of pathlib.Path
        The paths, in the order :func:`write_outputs` writes them (Zarr first).

    Raises
    ------
    ValueError
        If no path is given, one does not end in ``.tif``, ``.tiff`` or
        ``.zarr``, or two name the same file (``a.zarr`` and ``./a.zarr``).
    FileExistsError
        If one exists and ``overwrite`` is false.
    """
    outputs = [Path(p) for p in paths]
    if not outputs:
        raise ValueError("no output path given; expected at least one .tif, .tiff or .zarr path")
    seen: dict[str, str] = {}
    for given, out in zip(paths, outputs, strict=True):
        # two writers of one file would each publish over the other's half
        same = os.path.normcase(os.path.realpath(out))
        if same in seen:
            raise ValueError(
                f"output {seen[same]!r} is given twice (also as {str(given)!r}); "
                "give each output once"
            )
        seen[same] = str(given)
        if out.suffix.lower() not in OUTPUT_SUFFIXES:
            raise ValueError(f"output {out}: expected a .tif, .tiff or .zarr path")
        if out.exists() and not overwrite:
            raise FileExistsError(f"output {out} exists; pass overwrite=True to replace it")
    # sorted() is stable: the Zarr store(s) first, otherwise the caller's order
    return sorted(outputs, key=lambda p: not _is_zarr(p))


def quality_path(path: str | PathLike[str]) -> Path:
    """Where the quality layer of output ``path`` goes: ``<stem>_quality<suffix>`` beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}_quality{path.suffix}")


def write_outputs(
    result: xr.DataArray | xr.Dataset,
    paths: Sequence[str | PathLike[str]],
    *,
    overwrite: bool = False,
    progress: Callable[[int, int], Any] | None = None,
    inputs: xr.Dataset | None = None,
    restart: bool = False,
) -> list[Path]:
    """Write one (lazy) result to several GeoTIFF/Zarr files, computing it only once.

    The resumable Zarr store (if one is asked for) is written first, from
    ``result``; every other output is copied from the first file written
    (reopened with :func:`open_output`), not recomputed. A rerun after an
    interruption resumes the Zarr write (:func:`~xdeepbedmap.io.to_zarr`) if
    it is the same computation. Every output is locked against other writers
    before anything is computed.

    Parameters
    ----------
    result : xarray.DataArray or xarray.Dataset
        The 250 m bed, e.g. from :func:`xdeepbedmap.inference.superresolve`;
        or the Dataset of ``superresolve(..., quality=True)``, whose
        ``filled_fraction`` is then written beside each output as
        ``<stem>_quality<suffix>`` (:func:`quality_path`), in the same format;
        or the Dataset of :func:`xdeepbedmap.ensemble.superresolve_ensemble`,
        whose ``bed`` and ``bed_std`` go into each output together: two
        variables of a Zarr store, bands 1 and 2 of a GeoTIFF (band
        descriptions ``bed``, ``bed_std``), computed once (``bed_members``
        is not written).
    paths : sequence of str or path-like
        ``.zarr`` (resumable store) or ``.tif``/``.tiff`` (Cloud-Optimised GeoTIFF).
    overwrite : bool
        Replace existing outputs.
    progress : callable, optional
        ``progress(done, total)`` after each chunk of the first output when it
        is a Zarr store.
    inputs : xarray.Dataset, optional
        The inputs ``result`` is computed from, recorded in the resumable
        store so that a resume from other inputs is refused.
    restart : bool
        Discard an interrupted Zarr write instead of resuming it.

    Returns
    -------
    list of pathlib.Path
        The written outputs, in writing order (Zarr first).

    Raises
    ------
    ValueError, FileExistsError
        As :func:`check_outputs`, before anything is computed.
    OutputLockedError
        If another process is writing one of the outputs, before anything is computed.

    Examples
    --------
    >>> bed = superresolve(open_inputs("demo"))  # doctest: +SKIP
    >>> write_outputs(bed, ["bed.zarr", "bed.tif"])  # doctest: +SKIP
    [PosixPath('bed.zarr'), PosixPath('bed.tif')]
    """
    outputs = check_outputs(paths, overwrite)
    layers: dict[str, xr.DataArray | xr.Dataset] = {"": result}
    if isinstance(result, xr.Dataset):
        beds = [name for name in BED_LAYERS if name in result.data_vars]
        layers = {"": result[beds] if len(beds) > 1 else result["bed"]}
        if "filled_fraction" in result.data_vars:
            layers["quality"] = result["filled_fraction"]
            check_outputs([quality_path(p) for p in outputs], overwrite)
    written: list[Path] = []
    with ExitStack() as locks:
        for kind in layers:
            for out in outputs:
                locks.enter_context(output_lock(quality_path(out) if kind else out))
        for kind, layer in layers.items():
            first: Path | None = None
            for out in outputs:
                target = quality_path(out) if kind else out
                source = _reopen(first, layer) if first else layer
                if _is_zarr(target):
                    # the store records the inputs so a resume from others is refused
                    store_inputs = None if first else inputs
                    written.append(
                        to_zarr(
                            source,
                            target,
                            overwrite=overwrite,
                            progress=progress,
                            inputs=store_inputs,
                            restart=restart,
                        )
                    )
                else:
                    written.append(to_cog(_as_bands(source), target, overwrite=overwrite))
                first = first or written[-1]
    return written


def _reopen(path: Path, layer: xr.DataArray | xr.Dataset) -> xr.DataArray | xr.Dataset:
    """The written ``path`` as the same kind of object as ``layer`` (copied, not recomputed)."""
    if isinstance(layer, xr.DataArray):
        return open_output(path)
    return open_layers(path)[list(layer.data_vars)]


def _as_bands(layer: xr.DataArray | xr.Dataset) -> xr.DataArray:
    """A Dataset of 2-D variables as one (``band``, ``y``, ``x``) array for a GeoTIFF.

    The bands are described by the variable names; the first variable's
    attributes become the file's tags, each other's prefixed with its name.
    """
    if isinstance(layer, xr.DataArray):
        return layer
    names = [str(n) for n in layer.data_vars]
    first = layer[names[0]]
    bands = xr.concat([layer[n].reset_coords(drop=True) for n in names], dim="band")
    bands = bands.assign_coords(band=np.arange(1, len(names) + 1))
    attrs = {k: v for k, v in first.attrs.items() if k != "_FillValue"}
    for name in names[1:]:
        attrs.update({f"{name}_{k}": v for k, v in layer[name].attrs.items() if k != "_FillValue"})
    attrs["long_name"] = tuple(names)  # rioxarray writes these as band descriptions
    bands.attrs = attrs
    return bands.rio.write_crs(first.rio.crs).rio.write_nodata(np.nan, encoded=False)


def open_layers(path: str | PathLike[str]) -> xr.Dataset:
    """Every layer of an output written by :func:`write_outputs`, lazily, as a Dataset.

    A Zarr store's variables; a GeoTIFF's bands, named by their descriptions
    (a one-band file's layer is ``bed``).
    """
    path = Path(path)
    if _is_zarr(path):
        return open_zarr_output(path)
    import rioxarray

    opened = rioxarray.open_rasterio(path, masked=True, chunks={"band": 1, "y": 2048, "x": 2048})
    da = cast(xr.DataArray, opened)  # one raster file: one DataArray
    names = da.attrs.get("long_name")
    if da.sizes["band"] == 1 or not isinstance(names, (tuple, list)):
        return da.isel(band=0, drop=True).to_dataset(name="bed")
    tags = {k: v for k, v in da.attrs.items() if k != "long_name"}
    layers = {str(n): da.isel(band=i, drop=True) for i, n in enumerate(names)}
    for i, (name, layer) in enumerate(layers.items()):
        # the tags _as_bands prefixed with a later band's name are that band's
        own = {k[len(name) + 1 :]: v for k, v in tags.items() if k.startswith(f"{name}_")}
        others = tuple(f"{n}_" for n in list(layers)[1:])
        layer.attrs = own if i else {k: v for k, v in tags.items() if not k.startswith(others)}
        layer.name = name
    return xr.Dataset(layers)


def open_output(path: str | PathLike[str]) -> xr.DataArray:
    """Open a bed written by :func:`write_outputs` (Zarr or GeoTIFF), lazily.

    A Zarr store must be complete (see :func:`~xdeepbedmap.io.open_zarr_output`);
    its only variable is returned (``bed`` when it holds several); of a
    GeoTIFF with several bands (an ensemble's), the band described ``bed``.
    """
    path = Path(path)
    if _is_zarr(path):
        ds = open_zarr_output(path)
        names = list(ds.data_vars)
        return ds[names[0] if len(names) == 1 else "bed"]
    import rioxarray

    da = rioxarray.open_rasterio(path, masked=True, chunks={"band": 1, "y": 2048, "x": 2048})
    if da.sizes["band"] > 1:
        return open_layers(path)["bed"]
    return da.squeeze("band", drop=True)
