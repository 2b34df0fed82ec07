"""Clusters: CPU fallback, GPU-only routing of network tasks, continent-scale graphs."""

from __future__ import annotations

import time

import dask
import dask.array as da
import numpy as np
import pytest
import torch
import xarray as xr

import xdeepbedmap  # noqa: F401 - accessor
from xdeepbedmap.cluster import connect, keep_annotations, make_cluster
from xdeepbedmap.grids import VARIABLES, grid_coords, make_grid, zoom_in
from xdeepbedmap.model import Generator
from xdeepbedmap.synthetic import make_region


def test_make_cluster_falls_back_to_cpu_without_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with make_cluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
        assert type(cluster).__name__ == "LocalCluster"
        assert all(not w.state.total_resources for w in cluster.workers.values())
    with pytest.raises(RuntimeError, match="dask-cuda"):
        make_cluster(gpu=True)
    with pytest.raises(ValueError, match="'local' or 'cuda'"):
        connect("kubernetes")


def fake_gpu_cluster():
    """A cluster with one worker declaring a GPU resource (a CPU really) and one CPU worker."""
    from distributed import Scheduler, SpecCluster, Worker

    workers = {
        "gpu": {"cls": Worker, "options": {"nthreads": 1, "resources": {"GPU": 1}}},
        "cpu": {"cls": Worker, "options": {"nthreads": 2}},
    }
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": ":0"}}
    return SpecCluster(workers=workers, scheduler=scheduler)


def fake_gpu_region():
    """A small region and a 1-block generator for the routing tests."""
    ds, _ = make_region((24, 24), seed=2)
    torch.manual_seed(0)
    return ds, Generator(num_residual_blocks=1)


def test_network_tasks_run_only_on_gpu_resource_workers():
    from distributed import Client, get_task_stream

    ds, model = fake_gpu_region()
    with fake_gpu_cluster() as cluster, Client(cluster) as client:
        gpu_address = cluster.workers["gpu"].address
        # the fake GPU is a CPU: the annotation, not the device, routes the tasks
        out = ds.chunk({"y": 8, "x": 8}).deepbedmap.superresolve(
            model, halo=2, device="cpu", resources={"GPU": 1}
        )
        # low-level fusion would merge the network tasks with unannotated ones
        with keep_annotations(), get_task_stream(client) as stream:
            values = out.compute()
        network = [t for t in stream.data if t["key"][0].startswith("deepbedmap-superresolve-")]
        assert len(network) == 9
        assert {t["worker"] for t in network} == {gpu_address}
        assert {t["worker"] for t in stream.data} > {gpu_address}  # the rest may go anywhere
    assert values.shape == (96, 96)


@pytest.mark.parametrize(
    ("name", "layer"),
    [
        ("bed.tif", "store-map"),  # dask fuses the network tasks into the COG writer's
        pytest.param(
            "bed.zarr",
            "blocks-xdeepbedmap-write",
            marks=pytest.mark.xfail(
                reason="known bug, also on main: the network tasks are fused into the Zarr "
                "writer's per-chunk block selections and some reach CPU workers",
                strict=False,
            ),
        ),
    ],
)
def test_writers_route_network_tasks_to_gpu_workers_without_global_config(tmp_path, name, layer):
    from distributed import Client, get_task_stream

    from xdeepbedmap.io import open_output, write_outputs

    ds, model = fake_gpu_region()
    with fake_gpu_cluster() as cluster, Client(cluster) as client:
        assert dask.config.get("optimization.fuse.active", None) is not False  # fusion is on
        out = ds.chunk({"y": 8, "x": 8}).deepbedmap.superresolve(
            model, halo=2, device="cpu", resources={"GPU": 1}
        )
        with get_task_stream(client) as stream:
            (path,) = write_outputs(out, [tmp_path / name])
        network = [t for t in stream.data if layer in str(t["key"])]
        assert len(network) == 9
        assert {t["worker"] for t in network} == {cluster.workers["gpu"].address}
        assert open_output(path).shape == (96, 96)


def continental_inputs(base_shape=(6667, 6667), chunks=256) -> xr.Dataset:
    """Lazy inputs of BEDMAP2's size (surface 66,670 x 66,670), nothing materialised."""
    base = make_grid(-3_333_500.0, 3_333_500.0, 1000.0, base_shape, "EPSG:3031")
    variables = {}
    for name, (ydim, xdim, factor) in VARIABLES.items():
        grid = zoom_in(base, factor)
        data = da.zeros(tuple(grid.shape), dtype=np.float32, chunks=factor * chunks)
        variables[name] = xr.DataArray(
            data, dims=(ydim, xdim), coords=grid_coords(grid, ydim, xdim)
        )
    return xr.Dataset(variables).rio.write_crs("EPSG:3031")


def test_continent_graph_is_lazy_with_tasks_proportional_to_chunks():
    counts = {}
    for size in (1667, 6667):
        start = time.perf_counter()
        out = continental_inputs((size, size)).deepbedmap.superresolve(
            Generator(num_residual_blocks=1), halo=8
        )
        elapsed = time.perf_counter() - start
        assert elapsed < 30, f"building the graph took {elapsed:.1f} s"
        chunks = len(out.chunks[0]) * len(out.chunks[1])
        counts[size] = (len(out.data.__dask_graph__()), chunks)
    assert out.shape == (4 * 6667, 4 * 6667) and counts[6667][1] == 27 * 27
    per_chunk = {size: tasks / chunks for size, (tasks, chunks) in counts.items()}
    # a bounded number of tasks per chunk (inputs, overlaps, network), the same at both sizes;
    # 16.6 at 6667 with the fused graph (one edge task per neighbour for all inputs, one
    # kernel task); 92 with the general one (fill tasks, then map_overlap)
    assert per_chunk[6667] < 120
    assert per_chunk[6667] == pytest.approx(per_chunk[1667], rel=0.25)


def test_cli_runs_on_a_local_cluster_like_on_threads(tmp_path, capsys):
    from xdeepbedmap.cli import main
    from xdeepbedmap.io import open_zarr_output

    common = ["superresolve", "--chunks", "40", "--halo", "4"]
    assert main([*common, "--output", str(tmp_path / "threads.zarr")]) == 0
    assert main([*common, "--cluster", "local", "--output", str(tmp_path / "cluster.zarr")]) == 0
    assert "dask cluster:" in capsys.readouterr().out
    a = open_zarr_output(tmp_path / "threads.zarr")["bed"].values
    b = open_zarr_output(tmp_path / "cluster.zarr")["bed"].values
    np.testing.assert_array_equal(a, b)


@pytest.mark.gpu
def test_superresolve_on_cuda_matches_cpu_and_routes_to_gpu_workers():
    ds, _ = make_region((24, 24), seed=4)
    torch.manual_seed(0)
    model = Generator(num_residual_blocks=1)
    cpu = ds.deepbedmap.superresolve(model, halo=4, device="cpu")
    gpu = ds.deepbedmap.superresolve(model, halo=4, device="cuda")
    scale = float(np.nanstd(cpu))
    assert float(np.nanmax(np.abs(gpu - cpu))) / scale < 1e-3
    half = ds.deepbedmap.superresolve(model, halo=4, device="cuda", dtype="bfloat16")
    assert float(np.nanmax(np.abs(half - cpu))) / scale < 5e-2
    lazy = ds.chunk({"y": 12, "x": 12}).deepbedmap.superresolve(model, halo=4, device="cuda")
    layers = lazy.data.__dask_graph__().layers
    assert any(
        (layer.annotations or {}).get("resources") == {"GPU": 1} for layer in layers.values()
    )
    pytest.importorskip("dask_cuda")
    with connect("cuda") as client:
        np.testing.assert_allclose(lazy.compute().values, gpu.values, rtol=0, atol=1e-3 * scale)
        assert client.scheduler_info()["workers"]
