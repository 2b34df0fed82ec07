"""Chunked super-resolution of canonical input Datasets with ``dask.array.map_overlap``.

How it works (see ``docs/inference.md``):

* The four inputs are mapped together with per-resolution overlap depths:
  ``d = halo + 1`` base pixels, ``2d`` velocity pixels, ``10d`` surface pixels
  (the extra base pixel is eaten by the generator's 'valid' input block). Chunks
  are rechunked to nest first (:mod:`xdeepbedmap.chunking`), so block
  ``(i, j)`` of every input covers the same ground, and the output gets one
  ``4cy x 4cx`` chunk per base chunk.
* At the outer edge of the domain the inputs are padded by mirror reflection,
  so the output covers the full input extent.
* No data in the inputs is filled once, globally, before the overlap
  (:mod:`xdeepbedmap.gapfill`), so no block's fill depends on its neighbours;
  the output is masked where the bed had no data and, when the Dataset has an
  ``ice_mask``, where the cell is not ice.
* Each block is super-resolved by :func:`xdeepbedmap.kernel.superresolve_block`
  (windows, batching and masking).

This module validates the options, builds the graph and wraps the result in a
DataArray; the baseline it is compared with is :func:`xdeepbedmap.baselines.bicubic`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import dask
import dask.array as da
import numpy as np
import torch
import xarray as xr

from xdeepbedmap._version import __version__
from xdeepbedmap.chunking import ensure_nested_chunks, widen_small_chunks
from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.gapfill import ICE_MASK_THRESHOLD, fill_inputs, plan_fill
from xdeepbedmap.grids import OUTPUT_FACTOR, grid_coords, output_grid, validate_inputs
from xdeepbedmap.kernel import superresolve_block
from xdeepbedmap.model import Generator
from xdeepbedmap.model.precision import resolve_precision
from xdeepbedmap.model_store import ModelSpec, check_model_for_data, resolve_device, resolve_model
from xdeepbedmap.quality import filled_fraction
from xdeepbedmap.region import crop_to_region

__all__ = [
    "DEFAULT_CHUNKS",
    "DEFAULT_HALO",
    "DEFAULT_WINDOW",
    "ICE_MASK_THRESHOLD",
    "superresolve",
]

#: Base pixels of context on each side of every window. Chosen from the seam
#: measurement in docs/inference.md (bundled model, three regions, chunks of
#: 16 and 20): the smallest halo whose worst RMS seam error is below 1e-4 of
#: the output's std, 10x inside the 1e-3 requirement (halo 12: 1.4e-4,
#: halo 14: 3.0e-5; the former default 8: 8.8e-4).
DEFAULT_HALO = 14
#: Largest window core, in base pixels, run through the network at once.
DEFAULT_WINDOW = 128
#: Base-grid chunk size used when the input is not chunked yet.
DEFAULT_CHUNKS = 256

#: What ``dtype=`` accepts. Plain half-precision names map to the mixed path:
#: casting the whole network to bfloat16 lost 47 m RMS and overflowed to 3e38
#: (docs/precision.md), so no option runs that cast.
DTYPES = ("float32", "channels_last", "mixed", "bfloat16", "float16", "auto")
_TORCH_DTYPES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def _resolve_dtype(dtype: Any, device: torch.device) -> str:
    """The precision the network runs in, as a ``ModelSpec.precision``.

    ``float32`` (default) is the generator itself; ``channels_last`` the same
    numbers in oneDNN's fast layout; ``mixed`` half-precision convolutions
    with metres and positions in float32 (bfloat16 on CPU, float16 on CUDA);
    ``bfloat16``/``float16`` the mixed path with that half type; ``auto``
    :func:`xdeepbedmap.model.precision.resolve_precision` (``mixed`` only
    where its measured error is inside docs/precision.md's bound).
    """
    name = _TORCH_DTYPES.get(dtype, dtype) if isinstance(dtype, torch.dtype) else dtype
    name = "float32" if name is None else name
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    if name == "auto":
        name = resolve_precision("auto", device)
    if name == "mixed":
        name = "float16" if device.type == "cuda" else "bfloat16"
    if name == "float16" and device.type != "cuda":
        raise ValueError(
            "dtype float16 needs a CUDA device; on CPU use dtype='mixed' (bfloat16 "
            "convolutions, float32 where metres and positions matter) or 'float32'"
        )
    return f"mixed-{name}" if name in ("bfloat16", "float16") else name


def _check_sizes(ds: xr.Dataset, halo: int, window: int) -> None:
    """Refuse a negative halo, an empty window, and a halo the mirror padding cannot fill."""
    if halo < 0:
        raise ValueError(f"halo must be >= 0, got {halo}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    depth = halo + 1
    for dim in ("y", "x"):
        if ds.sizes[dim] < depth:
            raise ValueError(
                f"halo {halo} needs at least {depth} base pixels along {dim!r} "
                f"(mirror padding at the edge); the input has {ds.sizes[dim]}: use a smaller halo"
            )


def _use_ice_mask(ds: xr.Dataset, ice_mask: bool | None) -> bool:
    """Whether to mask with ``ds.ice_mask``: by default when it is there."""
    present = "ice_mask" in ds.data_vars
    if ice_mask and not present:
        raise XDeepBedMapError(
            "ice_mask=True, but the input Dataset has no 'ice_mask' variable "
            f"(it has {sorted(map(str, ds.data_vars))})"
        )
    if present and ds["ice_mask"].dims != ("y", "x"):
        raise XDeepBedMapError(f"ice_mask: dims {ds['ice_mask'].dims}, expected ('y', 'x')")
    return present if ice_mask is None else bool(ice_mask)


def superresolve(
    ds: xr.Dataset,
    model: Generator | str | ModelSpec | None = None,
    *,
    halo: int | None = None,
    window: int | None = None,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    chunks: int | tuple[int, int] | None = None,
    residual_scaling: float = 0.2,
    resources: dict[str, float] | None = None,
    quality: bool = False,
    ice_mask: bool | None = None,
) -> xr.DataArray | xr.Dataset:
    """Super-resolve a canonical input Dataset to a 250 m bed.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical inputs (see :func:`xdeepbedmap.grids.validate_inputs`),
        dask-backed or in memory; optionally ``ice_mask`` on (``y``, ``x``),
        the share of each base cell that is ice.
    model : Generator, path or None
        A generator, a checkpoint (``.safetensors``), Chainer weights
        (``.npz``), or ``None`` for the bundled demo model.
    halo : int, optional
        Base pixels of context around every window (default
        :data:`DEFAULT_HALO`, chosen from the seam measurement).
    window : int, optional
        Largest window core in base pixels (default :data:`DEFAULT_WINDOW`).
    batch_size : int, optional
        Windows per network call (default 4 on CUDA, 1 on CPU).
    device : str, optional
        ``"auto"`` (default: CUDA if present), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
    dtype : str, optional
        Precision of the network (docs/precision.md): ``"float32"`` (default,
        exact), ``"channels_last"`` (float32, faster layout), ``"mixed"``
        (half-precision convolutions, metres and positions in float32:
        bfloat16 on CPU, float16 on CUDA; 0.6 m RMS from float32 on the demo
        region's land), ``"bfloat16"``/``"float16"`` (the mixed path with that
        half type; float16 needs CUDA) or ``"auto"`` (``mixed`` only where it
        was measured within 1 m RMS / 10 m max of float32). The whole network
        is never cast to half precision (it lost tens of metres).
    chunks : int or tuple of int, optional
        Base-grid chunk size; default: keep nested dask chunks, or 256.
    residual_scaling : float
        Residual scaling for Chainer weights (0.2 for the published model).
    resources : dict, optional
        Dask worker resources the network tasks need; default ``{"GPU": 1}``
        on CUDA (they then run only on GPU workers of a distributed cluster)
        and none on CPU.
    quality : bool
        Also return the quality layer
        (:func:`xdeepbedmap.quality.filled_fraction`): the result is then a
        Dataset with ``bed`` and ``filled_fraction``.
    ice_mask : bool, optional
        Mask the output (NaN) where ``ds.ice_mask`` is below
        :data:`ICE_MASK_THRESHOLD`; default: when ``ds`` has an ``ice_mask``.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        ``bed`` on (``y``, ``x``) at 250 m (``4 ny x 4 nx``), float32, with the
        input's CRS, NaN no-data and attributes naming the model (with
        ``quality=True``, a Dataset of ``bed`` and ``filled_fraction``). Lazy
        (one chunk per input chunk) when ``ds`` is dask-backed, in memory
        otherwise.

    Warns
    -----
    xdeepbedmap.gapfill.InputRangeWarning, xdeepbedmap.gapfill.GapFillWarning
        When the result is computed: values outside the physical ranges;
        many inputs filled (see :func:`xdeepbedmap.gapfill.plan_fill`).
    """
    base = validate_inputs(ds)
    spec = resolve_model(model, residual_scaling)
    torch_device = resolve_device(device)
    # the fast forms take float32 inputs; the precision travels in the spec
    spec = replace(spec, precision=_resolve_dtype(dtype, torch_device))
    torch_dtype = torch.float32
    halo = DEFAULT_HALO if halo is None else int(halo)
    window = DEFAULT_WINDOW if window is None else int(window)
    _check_sizes(ds, halo, window)
    use_ice = _use_ice_mask(ds, ice_mask)
    if batch_size is None:
        batch_size = 4 if torch_device.type == "cuda" else 1
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if resources is None and torch_device.type == "cuda":
        resources = {"GPU": 1}
    work = ensure_nested_chunks(ds, chunks, DEFAULT_CHUNKS)
    work = widen_small_chunks(work, halo + 1)
    source = plan_fill(work)  # lazy: fill source, range checks and warnings when computed
    ice = work["ice_mask"].data.rechunk(work["bed"].data.chunks) if use_ice else None
    arrays = fill_inputs(work, source, ice)
    with dask.annotate(**({"resources": resources} if resources else {})):
        result = _map_kernel(
            arrays,
            spec=spec,
            halo=halo,
            window=window,
            batch_size=batch_size,
            device=torch_device,
            compute_dtype=torch_dtype,
        )
    out = xr.DataArray(result, dims=("y", "x"), coords=grid_coords(output_grid(base)), name="bed")
    out.attrs = _output_attrs(spec, halo, window)
    out.attrs.update(check_model_for_data(model, ds))
    out.attrs["ice_mask_applied"] = int(use_ice)
    out = out.rio.write_crs(str(base.crs)).rio.write_nodata(np.nan, encoded=False)
    result_obj: xr.DataArray | xr.Dataset = out
    if quality:
        result_obj = xr.Dataset({"bed": out, "filled_fraction": filled_fraction(work, halo)})
    # inputs opened with a margin of true data around a bbox: back to the bbox
    result_obj = crop_to_region(result_obj, ds)
    if ds["bed"].chunks is None:
        result_obj = result_obj.compute()
    return result_obj


def _map_kernel(arrays: dict[str, da.Array], **kernel_options: Any) -> da.Array:
    """The lazy 250 m bed: :func:`superresolve_block` over nested, overlapping blocks."""
    depth = kernel_options["halo"] + 1
    factors = {"base": 1, "surface": 10, "velocity": 2}
    depths = [{0: 0, 1: depth * f, 2: depth * f} for f in factors.values()]
    cy, cx = arrays["base"].chunks[1:]
    return da.map_overlap(
        superresolve_block,
        *(arrays[name] for name in factors),
        depth=depths,
        boundary="reflect",
        trim=False,
        align_arrays=False,
        drop_axis=0,
        chunks=(tuple(OUTPUT_FACTOR * c for c in cy), tuple(OUTPUT_FACTOR * c for c in cx)),
        dtype=np.float32,
        meta=np.empty((0, 0), dtype=np.float32),
        token="deepbedmap-superresolve",  # name + hash of the inputs and options
        **kernel_options,
    )


def _output_attrs(spec: ModelSpec, halo: int, window: int) -> dict[str, Any]:
    """Attributes naming the model (hyperparameters from the spec) and the run's options."""
    attrs: dict[str, Any] = {
        "units": "m",
        "long_name": "bed elevation (DeepBedMap super-resolution, 250 m)",
        "model": spec.path.rsplit("/", 1)[-1],
        "model_sha256": spec.digest,
        "model_format": spec.kind,
        "halo_base_px": halo,
        "window_base_px": window,
        "compute_dtype": spec.precision,
        "xdeepbedmap_version": __version__,
    }
    attrs.update({f"model_{k}": v for k, v in spec.hyperparameters.items()})
    return attrs
