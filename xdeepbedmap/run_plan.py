"""Option checks and graph building shared by single-model and ensemble inference.

:func:`plan_run` validates every option (sizes, precision, device, ice mask)
and plans the nested inputs and the gap fill's source once; :func:`map_kernel`
maps the per-block kernel over them for one generator or a tuple of them (an
ensemble: one pass over each block runs every member): the fused graph of
:mod:`xdeepbedmap.block_graph` (any chunk width), or with
:data:`FUSED_GRAPH` off the filled groups through ``map_overlap`` (the
reference the tests compare against); :func:`as_bed` wraps a lazy 250 m array as a
georeferenced DataArray. :func:`xdeepbedmap.inference.superresolve` and
:func:`xdeepbedmap.ensemble.superresolve_ensemble` are thin layers over these.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import torch
import xarray as xr
from dask.delayed import Delayed

from xdeepbedmap.block_graph import map_fused
from xdeepbedmap.chunking import ensure_nested_chunks, widen_small_chunks
from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.gapfill import fill_inputs, plan_fill
from xdeepbedmap.grids import (
    OUTPUT_FACTOR,
    VARIABLES,
    GeoBox,
    grid_coords,
    output_grid,
    validate_inputs,
)
from xdeepbedmap.kernel import superresolve_block, superresolve_block_members
from xdeepbedmap.model.precision import resolve_precision
from xdeepbedmap.model_store import ModelSpec, resolve_device

__all__ = ["DEFAULT_CHUNKS", "DTYPES", "RunPlan", "as_bed", "map_kernel", "plan_run"]

#: Build the fused graph (:mod:`xdeepbedmap.block_graph`); ``False`` builds the
#: general one (fill tasks, then ``map_overlap``): same bytes, about 5 x the
#: tasks, kept as the reference the fused graph is tested against.
FUSED_GRAPH = True

#: Base-grid chunk size used when the input is not chunked yet.
DEFAULT_CHUNKS = 256

#: What ``dtype=`` accepts. Plain half-precision names map to the mixed path:
#: casting the whole network to bfloat16 lost 47 m RMS and overflowed to 3e38
#: (docs/precision.md), so no option runs that cast.
DTYPES = ("float32", "channels_last", "mixed", "bfloat16", "float16", "auto")
_TORCH_DTYPES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def resolve_dtype(dtype: Any, device: torch.device) -> str:
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


#: Base pixels of context on each side of every window. Chosen from the seam
#: measurement in docs/inference.md (bundled model, three regions, chunks of
#: 16 and 20): the smallest halo whose worst RMS seam error is below 1e-4 of
#: the output's std, 10x inside the 1e-3 requirement (halo 12: 1.4e-4,
#: halo 14: 3.0e-5; the former default 8: 8.8e-4).
DEFAULT_HALO = 14
#: Largest window core, in base pixels, run through the network at once.
DEFAULT_WINDOW = 128


@dataclass(frozen=True)
class RunPlan:
    """Checked options and the lazy, nested, filled input groups of one inference run."""

    base: GeoBox
    work: xr.Dataset
    #: The gap fill's lazy source (:func:`xdeepbedmap.gapfill.plan_fill`).
    source: Delayed
    #: The ice fraction chunked like the bed, when the output is masked by it.
    ice: da.Array | None
    precision: str
    halo: int
    window: int
    batch_size: int
    device: torch.device
    resources: dict[str, float] | None
    use_ice: bool

    def filled_arrays(self) -> dict[str, da.Array]:
        """The filled input groups of the general graph (``gapfill.fill_inputs``)."""
        return fill_inputs(self.work, self.source, self.ice)


def plan_run(
    ds: xr.Dataset,
    *,
    halo: int | None,
    window: int | None,
    batch_size: int | None,
    device: str | torch.device | None,
    dtype: str | torch.dtype | None,
    chunks: int | tuple[int, int] | None,
    resources: dict[str, float] | None,
    ice_mask: bool | None,
) -> RunPlan:
    """Check every option and build the input graph (see ``superresolve`` for the options).

    ``halo`` and ``window`` default to :data:`DEFAULT_HALO` and
    :data:`DEFAULT_WINDOW`. Raises before any task runs: bad sizes,
    precision, device, batch size or ice mask.
    """
    halo = DEFAULT_HALO if halo is None else int(halo)
    window = DEFAULT_WINDOW if window is None else int(window)
    base = validate_inputs(ds)
    torch_device = resolve_device(device)
    precision = resolve_dtype(dtype, torch_device)
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
    return RunPlan(
        base,
        work,
        source,
        ice,
        precision,
        halo,
        window,
        int(batch_size),
        torch_device,
        resources,
        use_ice,
    )


def map_kernel(plan: RunPlan, specs: ModelSpec | tuple[ModelSpec, ...]) -> da.Array:
    """The lazy 250 m output of one generator (2-D) or of each member of a tuple (3-D).

    With a tuple, block ``(i, j)`` is one task running every member
    (:func:`~xdeepbedmap.kernel.superresolve_block_members`), so the output
    has one ``(K, 4cy, 4cx)`` chunk per base chunk. The graph is the fused
    one (:mod:`xdeepbedmap.block_graph`: one task per block fills and cuts
    only the windows it runs) unless :data:`FUSED_GRAPH` is off (the
    general graph: fill tasks, then ``map_overlap``). Both give the same bytes.
    """
    members = not isinstance(specs, ModelSpec)
    options: dict[str, Any] = {
        "halo": plan.halo,
        "window": plan.window,
        "batch_size": plan.batch_size,
        "device": plan.device,
        "compute_dtype": torch.float32,  # the fast forms take float32; precision is in the spec
    }
    token = "deepbedmap-ensemble" if members else "deepbedmap-superresolve"
    if FUSED_GRAPH:
        arrays = {name: plan.work[name].data for name in VARIABLES}
        return map_fused(
            arrays,
            plan.ice,
            plan.source,
            members=members,
            token=token,
            resources=plan.resources,
            specs=tuple(specs) if members else (specs,),
            **options,
        )
    return _map_overlap(plan, specs, options, token)


def _map_overlap(
    plan: RunPlan, specs: ModelSpec | tuple[ModelSpec, ...], options: dict[str, Any], token: str
) -> da.Array:
    """:func:`map_kernel`'s general graph: the filled groups through ``map_overlap``."""
    arrays = plan.filled_arrays()
    depth = plan.halo + 1
    factors = {"base": 1, "surface": 10, "velocity": 2}
    depths = [{0: 0, 1: depth * f, 2: depth * f} for f in factors.values()]
    cy, cx = arrays["base"].chunks[1:]
    out_chunks = (tuple(OUTPUT_FACTOR * c for c in cy), tuple(OUTPUT_FACTOR * c for c in cx))
    kernel: Callable[..., np.ndarray]
    if isinstance(specs, ModelSpec):
        kernel, shape = superresolve_block, {"drop_axis": 0, "chunks": out_chunks}
        options = {**options, "spec": specs}
    else:
        kernel, shape = superresolve_block_members, {"chunks": ((len(specs),), *out_chunks)}
        options = {**options, "specs": tuple(specs)}
    with dask.annotate(**({"resources": plan.resources} if plan.resources else {})):
        return da.map_overlap(
            kernel,
            *(arrays[name] for name in factors),
            depth=depths,
            boundary="reflect",
            trim=False,
            align_arrays=False,
            dtype=np.float32,
            meta=np.empty((0,) * (2 if "drop_axis" in shape else 3), dtype=np.float32),
            token=token,  # name + hash of the inputs and options
            **shape,
            **options,
        )


def as_bed(data: da.Array, plan: RunPlan, attrs: dict[str, Any], name: str = "bed") -> xr.DataArray:
    """A lazy 250 m (``y``, ``x``) array as a DataArray with coordinates, CRS and NaN nodata."""
    out = xr.DataArray(data, dims=("y", "x"), coords=grid_coords(output_grid(plan.base)), name=name)
    out.attrs = dict(attrs)
    return out.rio.write_crs(str(plan.base.crs)).rio.write_nodata(np.nan, encoded=False)
