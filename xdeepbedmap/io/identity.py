"""What wrote a resumable output: recorded at the start, compared on resume.

A resumed Zarr write must finish the same computation it started, or the
store would mix chunks of two models (or two regions, halos ...). The
identity recorded in the interrupted store holds the array's grid (shape,
chunks, dtype, CRS, extent), its scalar attributes (for a
:func:`~xdeepbedmap.inference.superresolve` result: the model digest and
hyperparameters, halo, window, compute dtype and xdeepbedmap version) and,
when the inputs are given, the dask token of the input Dataset. That token is
stable across processes and changes with the input files' names and
modification times, the region and the chunks (measured; see
``docs/reliability.md``).
"""

from __future__ import annotations

import json
import math
from typing import Any

import dask
import xarray as xr

import xdeepbedmap
from xdeepbedmap.errors import XDeepBedMapError

__all__ = ["ResumeMismatchError", "differences", "write_identity"]


class ResumeMismatchError(XDeepBedMapError, ValueError):
    """An interrupted write was started by another computation than the one resuming it."""


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples -> lists, NaN -> text, numpy -> Python)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return json.loads(json.dumps(value, default=str))


def write_identity(array: xr.DataArray, inputs: xr.Dataset | None = None) -> dict[str, Any]:
    """The facts a resumed write of ``array`` must share with the interrupted one.

    Parameters
    ----------
    array : xarray.DataArray
        The array being written, with the chunks it is written in.
    inputs : xarray.Dataset, optional
        The inputs ``array`` is computed from; their dask token is recorded.

    Returns
    -------
    dict
        Flat, JSON-compatible mapping of name -> value.
    """
    identity: dict[str, Any] = {
        "shape": list(array.shape),
        "chunks": [list(c) for c in array.chunks] if array.chunks else None,
        "dtype": str(array.dtype),
        "crs": str(array.rio.crs) if array.rio.crs is not None else None,
        "xdeepbedmap_version": xdeepbedmap.__version__,
    }
    for dim in array.dims:
        if dim in array.coords and array.sizes[dim]:
            coord = array[dim].values
            identity[f"{dim} extent"] = [float(coord[0]), float(coord[-1])]
    for key, value in array.attrs.items():
        if isinstance(value, (str, int, float, bool)):
            identity[key] = value
    if inputs is not None:
        identity["inputs token"] = dask.base.tokenize(inputs)
        if "catalog" in inputs.attrs:
            identity["inputs catalog"] = str(inputs.attrs["catalog"])
    return {key: _jsonable(value) for key, value in identity.items()}


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 70 else text[:67] + "..."


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """One ``"name: was X, now Y"`` line per fact that differs (missing counts as differing)."""
    lines = []
    for key in sorted(set(recorded) | set(current)):
        was, now = recorded.get(key, "<not recorded>"), current.get(key, "<not recorded>")
        if was != now:
            lines.append(f"{key}: was {_short(was)}, now {_short(now)}")
    return lines
