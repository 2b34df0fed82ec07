"""Chunked super-resolution of canonical input Datasets: one dask task per block.

How it works (see ``docs/inference.md``):

* The four inputs are mapped together (:mod:`xdeepbedmap.block_graph`: each
  block's task reads its neighbours' edges; ``map_overlap`` for chunks
  narrower than the context plus the fill's reach) with per-resolution depths:
  ``d = halo + 1`` base pixels, ``2d`` velocity pixels, ``10d`` surface pixels
  (the extra base pixel is eaten by the generator's 'valid' input block). Chunks
  are rechunked to nest first (:mod:`xdeepbedmap.chunking`), so block
  ``(i, j)`` of every input covers the same ground, and the output gets one
  ``4cy x 4cx`` chunk per base chunk.
* At the outer edge of the domain the inputs are padded by mirror reflection,
  so the output covers the full input extent.
* No data in the inputs is filled from one global source
  (:mod:`xdeepbedmap.gapfill`), so no pixel's fill depends on the chunks;
  the output is masked where the bed had no data and, when the Dataset has an
  ``ice_mask``, where the cell is not ice.
* Each block's windows are batched, run and masked by
  :func:`xdeepbedmap.kernel.run_windows`.

The option checks and the graph are built by :mod:`xdeepbedmap.run_plan`
(shared with :func:`xdeepbedmap.ensemble.superresolve_ensemble`); this module
resolves the model and wraps the result in a DataArray; the baseline it is
compared with is :func:`xdeepbedmap.baselines.bicubic`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import xarray as xr

from xdeepbedmap._version import __version__
from xdeepbedmap.gapfill import ICE_MASK_THRESHOLD
from xdeepbedmap.grids import validate_inputs
from xdeepbedmap.model import Generator
from xdeepbedmap.model.forms import compute_form
from xdeepbedmap.model_store import ModelSpec, check_model_for_data, resolve_model
from xdeepbedmap.quality import filled_fraction
from xdeepbedmap.region import crop_to_region
from xdeepbedmap.run_plan import (
    DEFAULT_CHUNKS,
    DEFAULT_HALO,
    DEFAULT_WINDOW,
    DTYPES,
    as_bed,
    map_kernel,
    plan_run,
)
from xdeepbedmap.run_plan import resolve_dtype as _resolve_dtype  # noqa: F401 - old home

__all__ = [
    "DEFAULT_CHUNKS",
    "DEFAULT_HALO",
    "DEFAULT_WINDOW",
    "DTYPES",
    "ICE_MASK_THRESHOLD",
    "output_attrs",
    "superresolve",
]


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
    validate_inputs(ds)  # the grids first: their errors name the variables
    spec = resolve_model(model, residual_scaling)
    plan = plan_run(
        ds,
        halo=halo,
        window=window,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        chunks=chunks,
        resources=resources,
        ice_mask=ice_mask,
    )
    spec = replace(spec, precision=plan.precision)
    attrs = output_attrs(spec, plan.halo, plan.window, plan.device)
    attrs.update(check_model_for_data(model, ds))
    attrs["ice_mask_applied"] = int(plan.use_ice)
    out = as_bed(map_kernel(plan, spec), plan, attrs)
    result_obj: xr.DataArray | xr.Dataset = out
    if quality:
        result_obj = xr.Dataset(
            {"bed": out, "filled_fraction": filled_fraction(plan.work, plan.halo)}
        )
    # inputs opened with a margin of true data around a bbox: back to the bbox
    result_obj = crop_to_region(result_obj, ds)
    if ds["bed"].chunks is None:
        result_obj = result_obj.compute()
    return result_obj


def output_attrs(
    spec: ModelSpec, halo: int, window: int, device: torch.device | None = None
) -> dict[str, Any]:
    """Attributes naming the model (hyperparameters from the spec) and the run's options.

    ``compute_form`` (with ``device``) names how the precision ran, so a
    resumed write refuses to mix numbers of two forms.
    """
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
    if device is not None:
        attrs["compute_form"] = compute_form(spec.precision, device)
    attrs.update({f"model_{k}": v for k, v in spec.hyperparameters.items()})
    return attrs
