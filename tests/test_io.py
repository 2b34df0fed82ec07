"""Writers: Cloud-Optimised GeoTIFF and resumable, never-falsely-complete Zarr."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr

from xdeepbedmap.grids import grid_coords, make_grid
from xdeepbedmap.io import (
    IncompleteOutputError,
    check_outputs,
    open_output,
    open_zarr_output,
    to_cog,
    to_zarr,
    write_outputs,
)

GRID = make_grid(-1.2e6, 4.0e5, 250.0, (96, 80), "EPSG:3031")


def lazy_field(calls: list | None = None) -> xr.DataArray:
    """A deterministic lazy 250 m field with NaN, counting computed chunks in ``calls``."""

    def block(block_id=None):
        i, j = block_id
        if calls is not None:
            calls.append(block_id)
        y, x = np.meshgrid(np.arange(32) + 32 * i, np.arange(16) + 16 * j, indexing="ij")
        values = np.sin(x / 7.0) * 100 + y.astype(np.float32)
        values[(x + y) % 17 == 0] = np.nan
        return values.astype(np.float32)

    data = da.map_blocks(
        block, chunks=((32,) * 3, (16,) * 5), dtype=np.float32, meta=np.empty((0, 0), np.float32)
    )
    out = xr.DataArray(data, dims=("y", "x"), coords=grid_coords(GRID), name="bed")
    out.attrs["units"] = "m"
    return out.rio.write_crs("EPSG:3031").rio.write_nodata(np.nan, encoded=False)


def test_cog_is_tiled_compressed_georeferenced(tmp_path):
    field = lazy_field()
    path = to_cog(field, tmp_path / "bed.tif", blocksize=32)
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 3031
        assert np.isnan(src.nodata)
        assert src.profile["tiled"] and src.block_shapes[0] == (32, 32)
        assert src.compression is not None
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.transform.a == 250.0 and src.transform.c == GRID.boundingbox.left
    back = rioxarray.open_rasterio(path, masked=True).squeeze("band", drop=True)
    np.testing.assert_array_equal(back.values, field.values)
    assert not list(tmp_path.glob("*.partial*"))


def test_existing_outputs_are_not_overwritten_silently(tmp_path):
    field = lazy_field()
    to_cog(field, tmp_path / "bed.tif")
    to_zarr(field, tmp_path / "bed.zarr")
    with pytest.raises(FileExistsError, match="bed.tif"):
        to_cog(field, tmp_path / "bed.tif")
    with pytest.raises(FileExistsError, match="bed.zarr"):
        to_zarr(field, tmp_path / "bed.zarr")
    to_zarr(field, tmp_path / "bed.zarr", overwrite=True)


def test_zarr_round_trip_keeps_crs_nodata_and_attrs(tmp_path):
    field = lazy_field()
    seen = []
    store = to_zarr(field, tmp_path / "bed.zarr", progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (15, 15) and len(seen) == 15
    back = open_zarr_output(store)["bed"]
    assert back.rio.crs.to_epsg() == 3031
    assert back.attrs["units"] == "m"
    assert back.chunks == field.chunks
    xr.testing.assert_equal(
        back.compute().drop_vars("spatial_ref"), field.compute().drop_vars("spatial_ref")
    )


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import dask
    sys.path.insert(0, {tests!r})
    from test_io import lazy_field
    from xdeepbedmap.io import to_zarr

    class Slow(list):
        def append(self, item):
            time.sleep(0.4)  # slow enough to be killed mid-way
            super().append(item)

    with dask.config.set(scheduler="synchronous"):
        to_zarr(lazy_field(Slow()), {store!r})
    """
)


def test_killed_zarr_write_resumes_without_recomputing(tmp_path):
    store = tmp_path / "bed.zarr"
    partial = tmp_path / "bed.zarr.partial"
    script = KILLED_WRITER.format(tests=str(Path(__file__).parent), store=str(store))
    proc = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
    markers = partial / ".xdeepbedmap-done"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if markers.exists() and len([p for p in markers.iterdir() if p.name != "spec.json"]) >= 3:
            break
        assert proc.poll() is None, "the writer finished before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    done = {p.name for p in markers.iterdir() if p.name != "spec.json"}
    assert 3 <= len(done) < 15
    assert not store.exists()  # nothing that looks complete
    with pytest.raises(IncompleteOutputError, match="interrupted"):
        open_zarr_output(store)

    calls: list = []
    to_zarr(lazy_field(calls), store)
    recomputed = {".".join(map(str, c)) for c in calls}
    assert len(calls) == 15 - len(done) and not recomputed & done
    resumed = open_zarr_output(store)["bed"].compute()

    fresh = open_zarr_output(to_zarr(lazy_field(), tmp_path / "fresh.zarr"))["bed"].compute()
    np.testing.assert_array_equal(resumed.values, fresh.values)
    assert not partial.exists()


def test_resume_refuses_a_different_array(tmp_path):
    field = lazy_field()
    partial = tmp_path / "bed.zarr.partial"

    def stop(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        to_zarr(field, tmp_path / "bed.zarr", progress=stop)
    assert partial.exists()
    with pytest.raises(ValueError, match="does not match"):
        to_zarr(field.chunk({"y": 48}), tmp_path / "bed.zarr")


def test_irregular_chunks_are_made_regular_for_zarr(tmp_path):
    field = lazy_field()
    irregular = field.isel(y=slice(5, None), x=slice(3, None))  # chunks (27, 32, 32), (13, 16 ...)
    assert irregular.chunks[0][0] != irregular.chunks[0][1]
    back = open_zarr_output(to_zarr(irregular, tmp_path / "bed.zarr"))["bed"]
    np.testing.assert_array_equal(back.values, irregular.values)


def test_each_chunk_is_computed_once_even_when_rechunked(tmp_path):
    calls: list = []
    irregular = lazy_field(calls).isel(y=slice(5, None), x=slice(3, None))
    to_zarr(irregular, tmp_path / "bed.zarr")
    assert len(calls) == 15  # the source chunks, each once


def test_write_outputs_computes_once_and_copies_from_the_zarr_store(tmp_path):
    calls: list = []
    field = lazy_field(calls)
    paths = [tmp_path / "bed.tif", tmp_path / "bed.zarr"]
    written = write_outputs(field, paths)
    assert written == [tmp_path / "bed.zarr", tmp_path / "bed.tif"]  # the resumable store first
    assert len(calls) == 15  # every chunk computed once, for the store; the COG is a copy
    np.testing.assert_array_equal(open_output(written[1]).values, field.values)
    np.testing.assert_array_equal(open_output(written[0]).values, field.values)
    assert open_output(written[0]).name == "bed"


def test_write_outputs_refuses_before_computing(tmp_path):
    calls: list = []
    with pytest.raises(ValueError, match=r"bed\.png: expected a \.tif, \.tiff or \.zarr"):
        write_outputs(lazy_field(calls), [tmp_path / "bed.zarr", tmp_path / "bed.png"])
    (tmp_path / "old.tif").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="old.tif"):
        write_outputs(lazy_field(calls), [tmp_path / "new.zarr", tmp_path / "old.tif"])
    with pytest.raises(ValueError, match="no output path"):
        check_outputs([])
    assert calls == [] and sorted(p.name for p in tmp_path.iterdir()) == ["old.tif"]
    assert check_outputs([tmp_path / "a.TIF", tmp_path / "b.zarr"]) == [
        tmp_path / "b.zarr",
        tmp_path / "a.TIF",
    ]


def test_zarr_overwrite_keeps_the_old_store_until_the_new_one_is_complete(tmp_path):
    store = to_zarr(lazy_field(), tmp_path / "bed.zarr")

    def stop(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        to_zarr(lazy_field() + 1, store, overwrite=True, progress=stop)
    np.testing.assert_array_equal(open_output(store).values, lazy_field().values)
    to_zarr(lazy_field() + 1, store, overwrite=True)  # resumes, then replaces
    np.testing.assert_array_equal(open_output(store).values, lazy_field().values + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bed.zarr"]
