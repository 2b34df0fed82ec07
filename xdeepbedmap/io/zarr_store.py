"""Resumable Zarr output: written chunk by chunk, complete or visibly not.

An output is built under ``<name>.partial`` and published
(:func:`xdeepbedmap.atomic.publish`) only when every chunk is written. An
interrupted write is resumed by calling :func:`to_zarr` again: chunks
recorded as done are neither recomputed nor rewritten, which is why the
``.partial`` folder survives an interruption on purpose. It records what
started it (:func:`xdeepbedmap.io.identity.write_identity`), and a resume by a
different computation is refused (or started over with ``restart=True``).
One process writes a store at a time (:func:`xdeepbedmap.io.lock.output_lock`).
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from xdeepbedmap.atomic import partial_path, publish, remove
from xdeepbedmap.cluster import current_client, keep_annotations
from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.io.identity import ResumeMismatchError, differences, write_identity
from xdeepbedmap.io.lock import output_lock

__all__ = ["IncompleteOutputError", "open_zarr_output", "to_zarr"]

_DONE_DIR = ".xdeepbedmap-done"
_COMPLETE_ATTR = "xdeepbedmap_complete"
_WRITE_PREFIX = "xdeepbedmap-write-"
_SPEC = "spec.json"


class IncompleteOutputError(XDeepBedMapError, RuntimeError):
    """A Zarr output exists but its write did not finish."""


def _as_dask(array: xr.DataArray) -> da.Array:
    """The array's dask data with regular chunks (all equal but the last).

    Zarr chunks are regular; a dask chunk straddling two of them (e.g. after
    subsetting a region) would be written by two tasks at once, so such
    arrays are rechunked to their largest chunk size first.
    """
    data = array.data
    if not isinstance(data, da.Array):
        return da.from_array(data, chunks=data.shape)
    regular = all(len(set(c[:-1])) <= 1 and c[-1] <= c[0] for c in data.chunks)
    return data if regular else data.rechunk(tuple(max(c) for c in data.chunks))


def _done_marker(store: Path, index: tuple[int, ...]) -> Path:
    return store / _DONE_DIR / ".".join(map(str, index))


def _initialise_store(layers: xr.Dataset, store: Path, identity: dict[str, Any]) -> None:
    ds = layers.copy()
    crs = ds[next(iter(ds.data_vars))].rio.crs
    if crs is not None:
        # CF grid mapping as an attribute, so readers (decode_coords="all") find the CRS
        ds = ds.rio.write_crs(crs)
    encoding = {}
    for name in ds.data_vars:
        if crs is not None:
            ds[name].attrs["grid_mapping"] = "spatial_ref"
            ds[name].encoding.pop("grid_mapping", None)
        fill = ds[name].attrs.pop("_FillValue", np.nan)  # rioxarray's nodata -> Zarr fill value
        chunks = tuple(c[0] for c in _as_dask(ds[name]).chunks)
        encoding[name] = {"chunks": chunks, "_FillValue": fill}
    ds.attrs[_COMPLETE_ATTR] = False
    # metadata and coordinates only; data chunks are written one by one
    ds.to_zarr(store, mode="w", compute=False, encoding=encoding, consolidated=False)
    (store / _DONE_DIR).mkdir()
    # written last: a store without it was interrupted before any chunk was written
    (store / _DONE_DIR / _SPEC).write_text(json.dumps({"identity": identity}))


def _layers(array: xr.DataArray | xr.Dataset, name: str | None) -> xr.Dataset:
    """The variables to write, each with regular dask chunks."""
    if isinstance(array, xr.DataArray):
        name = name or (str(array.name) if array.name is not None else "bed")
        array = array.to_dataset(name=name)
    work = array.copy()
    for var in work.data_vars:
        work[var] = work[var].copy(data=_as_dask(work[var]))
    return work


def _identity(layers: xr.Dataset, inputs: xr.Dataset | None) -> dict[str, Any]:
    """The first variable's identity, and each further variable's under its name."""
    first, *others = list(layers.data_vars)
    identity = write_identity(layers[first], inputs)
    for name in others:
        identity.update({f"{name} {k}": v for k, v in write_identity(layers[name]).items()})
    return identity


def to_zarr(
    array: xr.DataArray | xr.Dataset,
    store: str | PathLike[str],
    name: str | None = None,
    progress: Callable[[int, int], Any] | None = None,
    overwrite: bool = False,
    *,
    inputs: xr.Dataset | None = None,
    restart: bool = False,
) -> Path:
    """Write a (lazy) DataArray, or Dataset of 2-D variables, to a Zarr store chunk by chunk.

    The store is built at ``<store>.partial``; each output chunk is computed,
    written into its region and then recorded as done. When every chunk is
    done, the store is marked complete (attribute ``xdeepbedmap_complete``),
    its metadata consolidated and it is renamed to ``store``. Calling again
    after an interruption resumes: recorded chunks are skipped (not
    recomputed), provided it is the same computation: same grid, chunks,
    attributes (model digest, halo, window, dtype, version ...) and, when
    ``inputs`` is given, the same inputs. Otherwise it is refused, naming what
    differs. Only one process writes a store at a time (a ``<store>.lock``
    file; a crashed writer's lock is released by the system).

    Parameters
    ----------
    array : xarray.DataArray or xarray.Dataset
        2-D result, dask-backed (numpy works as one chunk); or a Dataset of
        such variables on one grid and chunking (an ensemble's ``bed`` and
        ``bed_std``): chunk ``(i, j)`` of every variable is computed in one
        task and written before it is recorded as done, so variables that
        share their inputs are computed once.
    store : str or path-like
        Destination directory (``.zarr``).
    name : str, optional
        Variable name of a DataArray in the store (default: its name or ``bed``).
    progress : callable, optional
        Called as ``progress(done, total)`` after each chunk.
    overwrite : bool
        Replace an existing complete store (it is kept until the new one is complete).
    inputs : xarray.Dataset, optional
        The inputs ``array`` is computed from; recorded so that a resume from
        other inputs (files, region) is refused.
    restart : bool
        Discard an interrupted write of ``store`` and start over.

    Returns
    -------
    pathlib.Path
        The complete store.

    Raises
    ------
    FileExistsError
        If ``store`` exists and ``overwrite`` is false.
    ResumeMismatchError
        If an interrupted write of another computation exists (and not ``restart``).
    OutputLockedError
        If another process is writing ``store``.
    """
    store = Path(store)
    if store.exists() and not overwrite:
        raise FileExistsError(f"{store} exists; pass overwrite=True to replace it")
    tmp = partial_path(store)
    layers = _layers(array, name)
    names = [str(n) for n in layers.data_vars]
    stacked = [layers[n].data for n in names]
    # several variables: one (n, cy, cx) block per chunk, so one task writes them all
    data = stacked[0] if len(names) == 1 else da.stack(stacked).rechunk({0: len(names)})
    with output_lock(store):
        if restart:
            remove(tmp)
        _resume_or_initialise(layers, tmp, _identity(layers, inputs))
        _write_chunks(data, tmp, names, progress)
        _mark_complete(tmp)
        return publish(tmp, store, overwrite=overwrite)


def _write_chunks(
    data: da.Array, tmp: Path, names: list[str], progress: Callable[[int, int], Any] | None
) -> None:
    """Compute and write every chunk not yet recorded as done in ``tmp``.

    ``data`` is the one variable, or the variables stacked along a first axis.
    """
    import zarr

    targets = [zarr.open_array(str(tmp), path=name, mode="r+") for name in names]
    indices = list(np.ndindex(*data.numblocks))
    todo = [i for i in indices if not _done_marker(tmp, i).exists()]
    done = len(indices) - len(todo)

    def write(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        info = block_info[0]  # type: ignore[index]
        index = tuple(info["chunk-location"])
        region = tuple(slice(a, b) for a, b in info["array-location"][-2:])
        for target, layer in zip(targets, block if len(targets) > 1 else [block], strict=True):
            target[region] = layer
        _done_marker(tmp, index).touch()  # only after the data is written
        return np.ones((1,) * block.ndim, dtype=bool)

    # one tiny result per chunk, selected as array blocks: wrapping each chunk
    # in its own delayed call let dask inline shared tasks and recompute them
    written = data.map_blocks(
        write,
        chunks=tuple((1,) * n for n in data.numblocks),
        dtype=bool,
        meta=np.empty((0,) * data.ndim, dtype=bool),
        name=f"{_WRITE_PREFIX}{dask.base.tokenize(data, str(tmp))}",
    )
    _compute_with_progress([written.blocks[i] for i in todo], done, len(indices), progress)


def _resume_or_initialise(layers: xr.Dataset, tmp: Path, identity: dict[str, Any]) -> None:
    """Check that an interrupted write at ``tmp`` is of the same computation, or start one."""
    spec_file = tmp / _DONE_DIR / _SPEC
    if tmp.exists() and not spec_file.exists():
        remove(tmp)  # interrupted while being set up: no chunk was written yet
    if not tmp.exists():
        tmp.parent.mkdir(parents=True, exist_ok=True)
        _initialise_store(layers, tmp, identity)
        return
    recorded = json.loads(spec_file.read_text()).get("identity", {})
    changed = differences(recorded, identity)
    if changed:
        raise ResumeMismatchError(
            f"{tmp} holds an interrupted write that does not match this one:\n  "
            + "\n  ".join(changed)
            + "\nRerun with the same model, inputs and options to resume it, or pass "
            "restart=True (command line: --restart) to discard it and start over."
        )


def _mark_complete(tmp: Path) -> None:
    """Drop the chunk records, mark the store complete and consolidate its metadata."""
    import zarr

    shutil.rmtree(tmp / _DONE_DIR)
    group = zarr.open_group(str(tmp), mode="r+")
    group.attrs[_COMPLETE_ATTR] = True
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        zarr.consolidate_metadata(str(tmp))


def _compute_with_progress(
    writes: list[Any], done: int, total: int, progress: Callable[[int, int], Any] | None
) -> None:
    """Compute all writes in one graph (full parallelism), reporting each finished chunk."""
    if not writes:
        return
    client = current_client()
    if client is not None:
        from distributed import as_completed

        with keep_annotations():  # GPU tasks stay on GPU workers
            futures = client.compute(writes)
        for future in as_completed(futures):
            future.result()  # re-raise a failed chunk here
            done += 1
            if progress:
                progress(done, total)
        return

    from dask.callbacks import Callback

    class _Chunks(Callback):
        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            nonlocal done
            name = key[0] if isinstance(key, tuple) else key
            # the write task may be fused with its block selection: match inside the name
            if _WRITE_PREFIX.rstrip("-") in str(name):
                done += 1
                if progress:
                    progress(done, total)

    with _Chunks():
        dask.compute(*writes)


def open_zarr_output(store: str | PathLike[str]) -> xr.Dataset:
    """Open a store written by :func:`to_zarr`, refusing incomplete ones."""
    store = Path(store)
    if not store.exists() and partial_path(store).exists():
        raise IncompleteOutputError(
            f"{store}: only an interrupted write exists ({partial_path(store)}); "
            "run the write again"
        )
    ds = xr.open_zarr(store, decode_coords="all")
    if not ds.attrs.get(_COMPLETE_ATTR, False):
        raise IncompleteOutputError(f"{store}: the store is not marked complete")
    return ds
