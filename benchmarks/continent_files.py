"""Input files and phase timers for ``continent.py --inputs zarr|geotiff``.

The synthetic continent inputs are written once into a cache folder (one Zarr
store with every variable, or one tiled, DEFLATE-compressed GeoTIFF per
variable) and read back lazily, so a run's timing includes opening,
decompressing and reading. :class:`PhaseTimer` splits the time spent inside
dask tasks into read (Zarr or GeoTIFF decoding), host work (the per-block
kernel minus the network), network (the generator's forward calls) and write
(Zarr chunk writes), by timing those functions in every thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from xdeepbedmap.grids import VARIABLES

#: Phases reported by :class:`PhaseTimer`, in pipeline order.
PHASES = ("read", "host", "network", "write")


def cached_inputs(part: xr.Dataset, cache: Path, kind: str, chunks: int) -> xr.Dataset:
    """``part`` written once under ``cache`` as ``kind`` files, then opened lazily from them."""
    tag = f"{part.sizes['y']}x{part.sizes['x']}-{int(part.x[0])}-{int(part.y[0])}-c{chunks}"
    if kind == "zarr":
        store = cache / f"inputs-{tag}.zarr"
        if not any((store / marker).exists() for marker in ("zarr.json", ".zgroup")):
            encoding = {
                name: {"chunks": (factor * chunks, factor * chunks)}
                for name, (_, _, factor) in VARIABLES.items()
            }
            part.chunk({d: c for d, c in _dim_chunks(chunks).items() if d in part.dims}).to_zarr(
                store, mode="w", encoding=encoding, consolidated=False
            )
        return xr.open_zarr(store, consolidated=False).rio.write_crs(part.rio.crs)
    if kind != "geotiff":
        raise ValueError(f"inputs must be 'zarr' or 'geotiff', got {kind!r}")
    folder = cache / f"inputs-{tag}-tif"
    folder.mkdir(parents=True, exist_ok=True)
    variables = {}
    for name, (ydim, xdim, factor) in VARIABLES.items():
        path = folder / f"{name}.tif"
        if not path.exists():
            _write_tiled_tif(part[name], path)
        variables[name] = _open_tif(path, ydim, xdim, factor * chunks)
    return xr.Dataset(variables).rio.write_crs(part.rio.crs)


def _dim_chunks(chunks: int) -> dict[str, int]:
    out = {}
    for ydim, xdim, factor in VARIABLES.values():
        out[ydim] = out[xdim] = factor * chunks
    return out


def _write_tiled_tif(array: xr.DataArray, path: Path) -> None:
    """One variable as a tiled (256 px), DEFLATE-compressed float32 GeoTIFF."""
    ydim, xdim = array.dims
    out = array.rename({ydim: "y", xdim: "x"}).rio.set_spatial_dims(x_dim="x", y_dim="y")
    tmp = path.with_suffix(".partial.tif")
    out.rio.write_nodata(np.nan, encoded=False).rio.to_raster(
        tmp, driver="GTiff", tiled=True, blockxsize=256, blockysize=256, compress="DEFLATE",
        predictor=3, lock=threading.Lock(), compute=True,
    )  # fmt: skip
    tmp.rename(path)


def _open_tif(path: Path, ydim: str, xdim: str, chunk: int) -> xr.DataArray:
    import rioxarray

    array = rioxarray.open_rasterio(path, chunks={"y": chunk, "x": chunk}, masked=True)
    array = array.squeeze("band", drop=True).drop_vars("spatial_ref", errors="ignore")
    return array.rename({"y": ydim, "x": xdim}).astype(np.float32)


class PhaseTimer:
    """Seconds spent in each phase, summed over the threads that ran tasks."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.calls = dict.fromkeys(PHASES, 0)
        self._lock = threading.Lock()
        self._local = threading.local()

    def add(self, phase: str, seconds: float) -> None:
        with self._lock:
            self.seconds[phase] += seconds
            self.calls[phase] += 1

    def wrap(self, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` timed into ``phase``; nested timed calls are not counted twice."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            if getattr(self._local, "inside", False):
                return function(*args, **kwargs)
            self._local.inside = True
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self._local.inside = False
                self.add(phase, time.perf_counter() - start)

        return timed

    @contextmanager
    def installed(self, model: Any) -> Iterator[PhaseTimer]:
        """Time reads, the kernel, ``model``'s forward calls and Zarr writes inside the block.

        Build the graph inside the block (it captures the timed kernel). The
        kernel's time is recorded as ``host``; the network's time is then
        subtracted from it (the network runs inside the kernel). The fused
        kernel (``block_graph.superresolve_pieces``) also fills the inputs'
        gaps, so ``host`` includes the fill; the general graph's kernel
        (``run_plan.superresolve_block``, narrow chunks) does not.
        """
        import rioxarray._io
        import xarray.backends.zarr
        import zarr

        import xdeepbedmap.block_graph
        import xdeepbedmap.run_plan

        targets = [
            (xarray.backends.zarr.ZarrArrayWrapper, "__getitem__", "read"),
            (rioxarray._io.RasterioArrayWrapper, "_getitem", "read"),
            (zarr.Array, "__setitem__", "write"),
            (xdeepbedmap.block_graph, "superresolve_pieces", "host"),
            (xdeepbedmap.run_plan, "superresolve_block", "host"),
        ]
        with ExitStack() as stack:
            for owner, name, phase in targets:
                original = getattr(owner, name)
                setattr(owner, name, self.wrap(phase, original))
                stack.callback(setattr, owner, name, original)
            starts: dict[int, float] = {}

            def before(module: Any, args: Any) -> None:
                starts[threading.get_ident()] = time.perf_counter()

            def after(module: Any, args: Any, output: Any) -> None:
                self.add("network", time.perf_counter() - starts.pop(threading.get_ident()))

            for handle in (
                model.register_forward_pre_hook(before),
                model.register_forward_hook(after),
            ):
                stack.callback(handle.remove)
            yield self
        self.seconds["host"] -= self.seconds["network"]

    def report(self, wall: float, threads: int) -> str:
        """One line per phase: seconds (summed over threads) and share of ``threads x wall``."""
        budget = wall * threads
        rest = budget - sum(self.seconds.values())
        lines = [f"time split over {threads} thread(s) x {wall:.1f} s wall = {budget:.1f} s:"]
        for phase in PHASES:
            seconds = self.seconds[phase]
            lines.append(f"  {phase:<8} {seconds:8.1f} s {seconds / budget:6.1%}")
        lines.append(
            f"  {'other':<8} {rest:8.1f} s {rest / budget:6.1%}  (scheduling, overlap, idle)"
        )
        return "\n".join(lines)
