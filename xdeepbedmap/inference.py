"""Chunked super-resolution of canonical input Datasets with ``dask.array.map_overlap``.

How it works (see ``docs/inference.md``):

* The four inputs are mapped together with per-resolution overlap depths:
  ``d = halo + 1`` base pixels, ``2d`` velocity pixels, ``10d`` surface pixels
  (the extra base pixel is eaten by the generator's 'valid' input block). Chunks
  are rechunked to nest first, so block ``(i, j)`` of every input covers the
  same ground, and the output gets one ``4cy x 4cx`` chunk per base chunk.
* At the outer edge of the domain the inputs are padded by mirror reflection,
  so the output covers the full input extent.
* Within a block, the core is cut into windows of at most ``window`` base
  pixels, each with the same halo, run through the generator ``batch_size``
  windows at a time; each window's halo output is cropped.
* No data: NaN in an input is filled, for the network only, with the nearest
  valid value of that input (so ocean never enters as an extreme value such as
  -5000 m and land values are not dragged towards it); where a variable has no
  valid value in a block it is filled with 0. The output is NaN wherever the
  1 km bed is NaN (its 4 x 4 sub-pixels). Blocks whose bed is entirely NaN skip
  the network.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dask
import dask.array as da
import numpy as np
import torch
import xarray as xr
from dask.array.overlap import ensure_minimum_chunksize
from scipy import ndimage

import xdeepbedmap
from xdeepbedmap.grids import OUTPUT_FACTOR, VARIABLES, grid_coords, output_grid, validate_inputs
from xdeepbedmap.inputs import nested_chunks, rechunk_nested
from xdeepbedmap.model import Generator
from xdeepbedmap.model.checkpoint import read_checkpoint_metadata
from xdeepbedmap.model_store import ModelSpec, load_model, resolve_device, resolve_model

__all__ = [
    "DEFAULT_CHUNKS",
    "DEFAULT_HALO",
    "DEFAULT_WINDOW",
    "NETWORK_CALLS",
    "bicubic",
    "superresolve",
    "superresolve_block",
]

#: Base pixels of context on each side of every window. Chosen from the seam
#: measurement in docs/inference.md: the smallest halo with RMS seam error
#: below 1e-3 of the output's standard deviation for the bundled model
#: (halo 6: 1.5e-3, halo 8: 7.3e-4).
DEFAULT_HALO = 8
#: Largest window core, in base pixels, run through the network at once.
DEFAULT_WINDOW = 128
#: Base-grid chunk size used when the input is not chunked yet.
DEFAULT_CHUNKS = 256

#: Windows run through the network in this process (for tests and benchmarks).
NETWORK_CALLS = {"windows": 0, "blocks_skipped": 0}

_DTYPES = {
    None: torch.float32,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    torch.float32: torch.float32,
    torch.float16: torch.float16,
    torch.bfloat16: torch.bfloat16,
}


def _resolve_dtype(dtype: Any, device: torch.device) -> torch.dtype:
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of float32, float16, bfloat16; got {dtype!r}")
    resolved = _DTYPES[dtype]
    if resolved == torch.float16 and device.type != "cuda":
        raise ValueError("dtype float16 needs a CUDA device; use float32 (or bfloat16) on CPU")
    return resolved


def fill_nearest(values: np.ndarray) -> np.ndarray:
    """Replace NaN by the nearest valid value; all-NaN becomes zeros."""
    invalid = np.isnan(values)
    if not invalid.any():
        return values
    if invalid.all():
        return np.zeros_like(values)
    idx = ndimage.distance_transform_edt(invalid, return_distances=False, return_indices=True)
    return values[tuple(idx)]


def _windows(size: int, window: int) -> Iterator[tuple[int, int]]:
    """Split ``range(size)`` into near-equal pieces of at most ``window``."""
    count = -(-size // window)
    edges = np.linspace(0, size, count + 1).round().astype(int)
    yield from zip(edges[:-1], edges[1:], strict=True)


def superresolve_block(
    bed: np.ndarray,
    accumulation: np.ndarray,
    surface: np.ndarray,
    vx: np.ndarray,
    vy: np.ndarray,
    *,
    spec: ModelSpec,
    halo: int,
    window: int,
    batch_size: int,
    device: str,
    compute_dtype: str,
) -> np.ndarray:
    """Super-resolve one overlapped block (inputs carry ``halo + 1`` base px of context).

    Returns the ``4 * core`` output block as float32, NaN where the core's bed
    is NaN.
    """
    depth = halo + 1
    ny, nx = bed.shape[0] - 2 * depth, bed.shape[1] - 2 * depth
    core_nodata = np.isnan(bed[depth : depth + ny, depth : depth + nx])
    out = np.full((OUTPUT_FACTOR * ny, OUTPUT_FACTOR * nx), np.nan, dtype=np.float32)
    if core_nodata.all():
        NETWORK_CALLS["blocks_skipped"] += 1
        return out

    torch_device = torch.device(device)
    torch_dtype = _DTYPES[compute_dtype]
    model = load_model(spec, torch_device, torch_dtype)
    x = fill_nearest(bed.astype(np.float32))
    w1 = fill_nearest(surface.astype(np.float32))
    w2 = np.stack([fill_nearest(vx.astype(np.float32)), fill_nearest(vy.astype(np.float32))])
    w3 = fill_nearest(accumulation.astype(np.float32))

    pieces = [(r, c) for r in _windows(ny, window) for c in _windows(nx, window)]
    by_shape: dict[tuple[int, int], list[tuple[tuple[int, int], tuple[int, int]]]] = {}
    for rows, cols in pieces:
        by_shape.setdefault((rows[1] - rows[0], cols[1] - cols[0]), []).append((rows, cols))

    crop = OUTPUT_FACTOR * halo
    with torch.inference_mode():
        for (wy, wx), group in by_shape.items():
            for start in range(0, len(group), batch_size):
                batch = group[start : start + batch_size]
                tensors = [[], [], [], []]
                for (r0, _), (c0, _) in batch:
                    # window core starts at r0 in core coords = r0 + depth in block
                    # coords; with its context it spans [r0, r0 + wy + 2 depth)
                    r1, c1 = r0 + wy + 2 * depth, c0 + wx + 2 * depth
                    tensors[0].append(x[None, r0:r1, c0:c1])
                    tensors[1].append(w1[None, 10 * r0 : 10 * r1, 10 * c0 : 10 * c1])
                    tensors[2].append(w2[:, 2 * r0 : 2 * r1, 2 * c0 : 2 * c1])
                    tensors[3].append(w3[None, r0:r1, c0:c1])
                inputs = [
                    torch.from_numpy(np.stack(t)).to(device=torch_device, dtype=torch_dtype)
                    for t in tensors
                ]
                y = model(*inputs).float().cpu().numpy()[:, 0]
                NETWORK_CALLS["windows"] += len(batch)
                for k, ((r0, _), (c0, _)) in enumerate(batch):
                    tile = y[k, crop : crop + OUTPUT_FACTOR * wy, crop : crop + OUTPUT_FACTOR * wx]
                    out[
                        OUTPUT_FACTOR * r0 : OUTPUT_FACTOR * (r0 + wy),
                        OUTPUT_FACTOR * c0 : OUTPUT_FACTOR * (c0 + wx),
                    ] = tile
    mask = np.repeat(np.repeat(core_nodata, OUTPUT_FACTOR, axis=0), OUTPUT_FACTOR, axis=1)
    out[mask] = np.nan
    return out


def _ensure_nested_chunks(ds: xr.Dataset, chunks: int | tuple[int, int] | None) -> xr.Dataset:
    """Dask-back ``ds`` with chunks that nest, rechunking only what does not."""
    if chunks is not None:
        return rechunk_nested(ds, chunks)
    if ds["bed"].chunks is None:
        return rechunk_nested(ds, DEFAULT_CHUNKS)
    spec = nested_chunks(*ds["bed"].chunks)
    if all(ds[name].chunks == (spec[y], spec[x]) for name, (y, x, _) in VARIABLES.items()):
        return ds
    return ds.chunk(spec)


def _widen_small_chunks(ds: xr.Dataset, depth: int) -> xr.Dataset:
    """Merge base chunks smaller than the overlap depth into their neighbours.

    ``map_overlap`` can only borrow context from the adjacent chunk, so every
    chunk must hold at least ``depth`` base pixels; finer grids follow nested.
    """
    cy, cx = ds["bed"].chunks
    wide_y, wide_x = ensure_minimum_chunksize(depth, cy), ensure_minimum_chunksize(depth, cx)
    if (wide_y, wide_x) == (cy, cx):
        return ds
    return ds.chunk(nested_chunks(wide_y, wide_x))


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
) -> xr.DataArray:
    """Super-resolve a canonical input Dataset to a 250 m bed.

    Parameters
    ----------
    ds : xarray.Dataset
        Canonical inputs (see :func:`xdeepbedmap.grids.validate_inputs`),
        dask-backed or in memory.
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
        ``float32`` (default), or ``float16``/``bfloat16`` on GPU.
    chunks : int or tuple of int, optional
        Base-grid chunk size; default: keep nested dask chunks, or 256.
    residual_scaling : float
        Residual scaling for Chainer weights (0.2 for the published model).
    resources : dict, optional
        Dask worker resources the network tasks need; default ``{"GPU": 1}``
        on CUDA (they then run only on GPU workers of a distributed cluster)
        and none on CPU.

    Returns
    -------
    xarray.DataArray
        ``bed`` on (``y``, ``x``) at 250 m (``4 ny x 4 nx``), float32, with the
        input's CRS, NaN no-data and attributes naming the model. Lazy (one
        chunk per input chunk) when ``ds`` is dask-backed, in memory otherwise.
    """
    base = validate_inputs(ds)
    spec = resolve_model(model, residual_scaling)
    torch_device = resolve_device(device)
    torch_dtype = _resolve_dtype(dtype, torch_device)
    halo = DEFAULT_HALO if halo is None else int(halo)
    window = DEFAULT_WINDOW if window is None else int(window)
    if halo < 0:
        raise ValueError(f"halo must be >= 0, got {halo}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if batch_size is None:
        batch_size = 4 if torch_device.type == "cuda" else 1
    eager = ds["bed"].chunks is None
    depth = halo + 1
    for dim in ("y", "x"):
        if ds.sizes[dim] < depth:
            raise ValueError(
                f"halo {halo} needs at least {depth} base pixels along {dim!r} "
                f"(mirror padding at the edge); the input has {ds.sizes[dim]}: use a smaller halo"
            )
    work = _widen_small_chunks(_ensure_nested_chunks(ds, chunks), depth)

    arrays = [work[name].data.astype(np.float32) for name in VARIABLES]
    depths = [{0: depth * factor, 1: depth * factor} for (_, _, factor) in VARIABLES.values()]
    cy, cx = work["bed"].chunks
    out_chunks = (
        tuple(OUTPUT_FACTOR * c for c in cy),
        tuple(OUTPUT_FACTOR * c for c in cx),
    )
    if resources is None and torch_device.type == "cuda":
        resources = {"GPU": 1}
    with dask.annotate(**({"resources": resources} if resources else {})):
        result = da.map_overlap(
            superresolve_block,
            *arrays,
            depth=depths,
            boundary="reflect",
            trim=False,
            align_arrays=False,
            chunks=out_chunks,
            dtype=np.float32,
            meta=np.empty((0, 0), dtype=np.float32),
            name="deepbedmap-superresolve",
            spec=spec,
            halo=halo,
            window=window,
            batch_size=batch_size,
            device=str(torch_device),
            compute_dtype=str(torch_dtype).replace("torch.", ""),
        )
    grid = output_grid(base)
    out = xr.DataArray(result, dims=("y", "x"), coords=grid_coords(grid), name="bed")
    out.attrs = _output_attrs(spec, halo, window, torch_dtype)
    out = out.rio.write_crs(str(base.crs)).rio.write_nodata(np.nan, encoded=False)
    if eager:
        out = out.compute()
    return out


def _output_attrs(spec: ModelSpec, halo: int, window: int, dtype: torch.dtype) -> dict[str, Any]:
    if spec.kind == "checkpoint":
        hyper = read_checkpoint_metadata(spec.path)["hyperparameters"]
    else:
        hyper = {"residual_scaling": spec.residual_scaling}
    attrs: dict[str, Any] = {
        "units": "m",
        "long_name": "bed elevation (DeepBedMap super-resolution, 250 m)",
        "model": spec.path.rsplit("/", 1)[-1],
        "model_sha256": spec.digest,
        "model_format": spec.kind,
        "halo_base_px": halo,
        "window_base_px": window,
        "compute_dtype": str(dtype).replace("torch.", ""),
        "xdeepbedmap_version": xdeepbedmap.__version__,
    }
    attrs.update({f"model_{k}": v for k, v in hyper.items()})
    return attrs


def _cubic_weights(t: float) -> np.ndarray:
    """Keys (a = -0.5) cubic convolution weights of the 4 neighbours at offset ``t`` in [0, 1)."""
    a = -0.5
    d = np.array([1 + t, t, 1 - t, 2 - t])
    w = np.where(
        d <= 1,
        (a + 2) * d**3 - (a + 3) * d**2 + 1,
        a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a,
    )
    return w


def _bicubic_block(bed: np.ndarray) -> np.ndarray:
    """4x bicubic upsampling of a block padded by 2 base pixels on each side."""
    core = bed[2:-2, 2:-2]
    filled = fill_nearest(bed.astype(np.float64))
    # output sub-pixel k of base pixel i sits at i + (k + 0.5) / 4 - 0.5
    offsets = (np.arange(OUTPUT_FACTOR) + 0.5) / OUTPUT_FACTOR - 0.5
    weights = []
    for off in offsets:
        base = int(np.floor(off))  # -1 or 0: left neighbour index relative to i
        weights.append((base, _cubic_weights(off - base)))

    def along(a: np.ndarray, axis: int) -> np.ndarray:
        a = np.moveaxis(a, axis, -1)
        n = a.shape[-1] - 4
        out = np.empty(a.shape[:-1] + (n * OUTPUT_FACTOR,))
        for k, (base, w) in enumerate(weights):
            # neighbours i+base-1 .. i+base+2 of core pixel i (padded index i+2)
            acc = sum(w[j] * a[..., 2 + base - 1 + j : 2 + base - 1 + j + n] for j in range(4))
            out[..., k::OUTPUT_FACTOR] = acc
        return np.moveaxis(out, -1, axis)

    up = along(along(filled, 0), 1)
    mask = np.repeat(np.repeat(np.isnan(core), OUTPUT_FACTOR, 0), OUTPUT_FACTOR, 1)
    up = up.astype(np.float32)
    up[mask] = np.nan
    return up


def bicubic(ds: xr.Dataset) -> xr.DataArray:
    """Bicubic (Keys, a = -0.5) interpolation of the 1 km bed onto the 250 m grid.

    The baseline the paper compares DeepBedMap against. Local (4 x 4 base
    pixels), so chunked and one-piece results agree exactly; edges are padded
    by mirroring; NaN where the bed is NaN.
    """
    base = validate_inputs(ds)
    bed = ds["bed"].data
    eager = not isinstance(bed, da.Array)
    arr = da.from_array(bed, chunks=bed.shape) if eager else bed
    cy, cx = arr.chunks
    result = da.map_overlap(
        _bicubic_block,
        arr.astype(np.float32),
        depth=2,
        boundary="reflect",
        trim=False,
        chunks=(tuple(4 * c for c in cy), tuple(4 * c for c in cx)),
        dtype=np.float32,
        meta=np.empty((0, 0), dtype=np.float32),
    )
    out = xr.DataArray(result, dims=("y", "x"), coords=grid_coords(output_grid(base)), name="bed")
    out.attrs = {
        "units": "m",
        "long_name": "bed elevation (bicubic interpolation of the 1 km bed, 250 m)",
        "xdeepbedmap_version": xdeepbedmap.__version__,
    }
    out = out.rio.write_crs(str(base.crs)).rio.write_nodata(np.nan, encoded=False)
    return out.compute() if eager else out
