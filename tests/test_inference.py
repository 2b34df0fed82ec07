"""Chunked super-resolution: grids, seams, no data, lazy graphs and the bicubic baseline."""

from __future__ import annotations

import copy
import pickle

import dask
import dask.array as da
import numpy as np
import pytest
import torch
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import xdeepbedmap  # noqa: F401 - registers the accessor
from xdeepbedmap.grids import NestingError, make_grid, output_grid, pixel_centres
from xdeepbedmap.model import Generator
from xdeepbedmap.model.checkpoint import save_checkpoint
from xdeepbedmap.model_store import load_model, resolve_model
from xdeepbedmap.synthetic import make_region

from .strategies import base_grids, dataset_on


@pytest.fixture(scope="module")
def tiny_model() -> Generator:
    torch.manual_seed(0)
    return Generator(num_residual_blocks=1).eval()


class CountingGenerator(Generator):
    """A generator that counts its network calls and the windows it ran on."""

    def __init__(self, **hyperparameters) -> None:
        super().__init__(**hyperparameters)
        self.calls = 0
        self.windows = 0

    def forward(self, x, w1, w2, w3):
        self.calls += 1
        self.windows += x.shape[0]
        return super().forward(x, w1, w2, w3)


@pytest.fixture(scope="module")
def region() -> tuple[xr.Dataset, xr.DataArray]:
    return make_region((36, 36), seed=3)


@pytest.fixture(scope="module")
def one_window(region, tiny_model) -> xr.DataArray:
    """The whole region in one network window: the seam-free reference."""
    ds, _ = region
    return ds.deepbedmap.superresolve(tiny_model, halo=35, chunks=36, window=36)


@st.composite
def chunkings(draw, size: int) -> tuple[int, ...]:
    """A random partition of ``size`` into chunks (like flox's test strategies)."""
    cuts = draw(st.sets(st.integers(1, size - 1), max_size=5))
    edges = [0, *sorted(cuts), size]
    return tuple(b - a for a, b in zip(edges[:-1], edges[1:], strict=True))


@given(base=base_grids(max_size=5))
@settings(max_examples=10)
def test_output_is_nested_in_the_base_grid(base, tiny_model):
    ds = dataset_on(base)
    out = ds.deepbedmap.superresolve(tiny_model, halo=1)
    ny, nx = base.shape
    assert out.dims == ("y", "x") and out.shape == (4 * ny, 4 * nx)
    assert out.dtype == np.float32 and out.name == "bed"
    expected_y, expected_x = pixel_centres(output_grid(base))
    np.testing.assert_allclose(out.x, expected_x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out.y, expected_y, rtol=0, atol=1e-6)
    # the 4 x 4 sub-pixel centres of base pixel (0, 0), 250 m apart
    np.testing.assert_allclose(out.x[:4] - ds.x[0].item(), [-375, -125, 125, 375], atol=1e-6)
    np.testing.assert_allclose(out.y[:4] - ds.y[0].item(), [375, 125, -125, -375], atol=1e-6)
    assert out.rio.crs.to_epsg() == 3031
    assert np.isnan(out.rio.nodata)
    assert out.attrs["model_num_residual_blocks"] == 1
    assert out.attrs["xdeepbedmap_version"] == xdeepbedmap.__version__


@given(cy=chunkings(36), cx=chunkings(36))
@settings(max_examples=8)
def test_chunked_matches_one_window(cy, cx, region, tiny_model, one_window):
    ds, _ = region
    lazy = ds.chunk({"y": cy, "x": cx})  # other dims are rechunked to nest by superresolve
    out = lazy.deepbedmap.superresolve(tiny_model, halo=12)
    assert isinstance(out.data, da.Array)
    # one output chunk per (widened) input chunk
    widened = [da.overlap.ensure_minimum_chunksize(13, c) for c in (cy, cx)]
    assert out.chunks == tuple(tuple(4 * c for c in w) for w in widened)
    result = out.compute()
    scale = float(np.nanstd(one_window))
    assert np.nanmax(np.abs(result - one_window)) / scale < 1e-4
    xr.testing.assert_equal(np.isnan(result), np.isnan(one_window))


def test_numpy_and_dask_paths_agree(region, tiny_model):
    ds, _ = region
    eager = ds.deepbedmap.superresolve(tiny_model, halo=4, chunks=18)
    lazy = ds.chunk({"y": 18, "x": 18}).deepbedmap.superresolve(tiny_model, halo=4)
    assert isinstance(eager.data, np.ndarray) and isinstance(lazy.data, da.Array)
    xr.testing.assert_allclose(eager, lazy.compute(), rtol=0, atol=1e-4)


def test_output_is_masked_where_the_bed_has_no_data(region, one_window):
    ds, _ = region
    assert ds.bed.isnull().any()  # the region has an ocean corner
    expected = np.kron(np.isnan(ds.bed.values), np.ones((4, 4))).astype(bool)
    np.testing.assert_array_equal(np.isnan(one_window.values), expected)


def test_nodata_in_other_inputs_does_not_leak(region, tiny_model):
    """No data in the surface is filled (globally): it never turns output pixels NaN."""
    ds, _ = region
    holes = ds.copy()
    holes["surface"] = ds.surface.where(ds.surface.x_surface > ds.x[4].item() + 500)
    out = holes.deepbedmap.superresolve(tiny_model, halo=4)
    assert np.isfinite(out.values[~np.isnan(np.kron(ds.bed.values, np.ones((4, 4))))]).all()


def test_all_nan_chunks_skip_the_network(region, tiny_model):
    ds, _ = region
    ds = ds.copy()
    ds["bed"] = ds.bed.where((ds.y > ds.y[18].item() + 1) | (ds.x > ds.x[17].item() + 1))
    lazy = ds.chunk({"y": 18, "x": 18})
    torch.manual_seed(11)  # weights of its own: no other test's model is cached under them
    counting = CountingGenerator(num_residual_blocks=1).eval()
    out = lazy.deepbedmap.superresolve(counting, halo=4, window=18)
    # the tasks of this process run the caller's model itself, so it sees every call
    assert load_model(resolve_model(counting), torch.device("cpu"), torch.float32) is counting
    out.compute(scheduler="synchronous")
    windows = counting.windows
    skipped = out.data.npartitions - counting.calls  # one 18 x 18 window per 18 x 18 chunk
    assert skipped == 1 and windows == 3  # the all-NaN lower-left chunk did no network call
    assert np.isnan(out.values[72:, :72]).all()


def test_graph_refers_to_the_model_instead_of_embedding_it(region, tiny_model, tmp_path):
    ds, _ = region
    big = Generator(num_residual_blocks=12)
    checkpoint = save_checkpoint(big, tmp_path / "big.safetensors")
    lazy = ds.chunk({"y": 12, "x": 12})
    graphs = {}
    for name, model in {"tiny": tiny_model, "big": checkpoint}.items():
        out = lazy.deepbedmap.superresolve(model, halo=4)
        graphs[name] = len(pickle.dumps(dict(out.data.__dask_graph__())))
    weights_bytes = checkpoint.stat().st_size
    assert weights_bytes > 30e6
    # the same graph for a 1-block and a 12-block model, and far smaller than the weights
    assert abs(graphs["big"] - graphs["tiny"]) < 1000
    assert graphs["big"] < 0.05 * weights_bytes  # (the in-memory inputs are most of it)


def test_model_is_loaded_once_per_process(region, tmp_path):
    from xdeepbedmap import model_store

    ds, _ = region
    path = save_checkpoint(Generator(num_residual_blocks=1), tmp_path / "m.safetensors")
    loads = []
    original = model_store.load_checkpoint

    def counting(p):
        loads.append(p)
        return original(p)

    model_store.load_checkpoint, saved = counting, model_store.load_checkpoint
    try:
        out = ds.chunk({"y": 12, "x": 12}).deepbedmap.superresolve(path, halo=2)
        with dask.config.set(scheduler="threads", num_workers=2):
            out.compute()
    finally:
        model_store.load_checkpoint = saved
    assert len(loads) == 1


def test_bad_inputs_raise_clear_errors(region, tiny_model, tmp_path):
    ds, _ = region
    with pytest.raises(ValueError, match="accumulation"):
        ds.drop_vars("accumulation").deepbedmap.superresolve(tiny_model)
    shifted = ds.assign_coords(x_surface=ds.x_surface + 30.0)
    with pytest.raises(NestingError, match="surface"):
        shifted.deepbedmap.superresolve(tiny_model)
    with pytest.raises(ValueError, match="EPSG:3413"):
        ds.rio.write_crs("EPSG:3413").deepbedmap.superresolve(tiny_model)
    garbage = tmp_path / "model.safetensors"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="model.safetensors"):
        ds.deepbedmap.superresolve(garbage)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        ds.deepbedmap.superresolve(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="halo 40 needs at least 41"):
        ds.deepbedmap.superresolve(tiny_model, halo=40)
    with pytest.raises(ValueError, match="float16 needs a CUDA"):
        ds.deepbedmap.superresolve(tiny_model, device="cpu", dtype="float16")


def test_bicubic_reproduces_quadratic_surfaces():
    """Keys' cubic convolution (a = -0.5) is exact for quadratics away from the edge."""
    ds = dataset_on(make_grid(-1.0e6, 5.0e5, 1000.0, (12, 12), "EPSG:3031"))
    yy, xx = np.meshgrid(np.arange(12.0), np.arange(12.0), indexing="ij")
    ds["bed"] = (("y", "x"), (3 * xx**2 - 2 * xx * yy + yy**2 + 5 * xx).astype(np.float32))
    out = ds.deepbedmap.bicubic()
    sub = (np.arange(48) + 0.5) / 4 - 0.5
    sy, sx = np.meshgrid(sub, sub, indexing="ij")
    exact = 3 * sx**2 - 2 * sx * sy + sy**2 + 5 * sx
    inner = slice(8, -8)  # two base pixels of mirror padding reach this far
    np.testing.assert_allclose(out.values[inner, inner], exact[inner, inner], atol=2e-3)
    assert out.rio.crs.to_epsg() == 3031


def test_bicubic_chunked_equals_one_piece_and_keeps_nodata(region):
    ds, _ = region
    whole = ds.deepbedmap.bicubic()
    chunked = ds.chunk({"y": 7, "x": 10}).deepbedmap.bicubic()
    assert chunked.chunks == ((28,) * 5 + (4,), (40,) * 3 + (24,))
    # NaN neighbours are filled from the nearest valid pixel *in the block*, so only
    # output within 2 base px of no data may depend on the chunking
    from scipy import ndimage

    near_nodata = ndimage.binary_dilation(np.isnan(ds.bed.values), iterations=2)
    away = ~np.kron(near_nodata, np.ones((4, 4))).astype(bool)
    np.testing.assert_allclose(whole.values[away], chunked.values[away], rtol=0, atol=1e-3)
    expected = np.kron(np.isnan(ds.bed.values), np.ones((4, 4))).astype(bool)
    np.testing.assert_array_equal(np.isnan(whole.values), expected)


def test_in_memory_model_is_cached_under_its_own_device_and_dtype(region):
    """A float64 (or CUDA) model must not be handed to tasks asking for CPU float32."""
    torch.manual_seed(12)
    model = Generator(num_residual_blocks=1).double().eval()
    spec = resolve_model(model)
    cpu = torch.device("cpu")
    assert load_model(spec, cpu, torch.float64) is model
    as_float32 = load_model(spec, cpu, torch.float32)
    assert as_float32 is not model
    assert {p.dtype for p in as_float32.parameters()} == {torch.float32}
    # and it runs: a float64 model handed to superresolve computes in float32
    ds, _ = region
    out = ds.deepbedmap.superresolve(model, halo=2, chunks=18)
    as_float32 = ds.deepbedmap.superresolve(copy.deepcopy(model).float(), halo=2, chunks=18)
    assert out.attrs["model_sha256"] == spec.digest
    assert np.isfinite(out.values).any()
    np.testing.assert_array_equal(out.values, as_float32.values)


def test_output_attributes_come_from_the_resolved_spec(region, tmp_path):
    """The hyperparameters travel in the ModelSpec: the checkpoint is not read again."""
    ds, _ = region
    path = save_checkpoint(Generator(num_residual_blocks=1), tmp_path / "m.safetensors")
    spec = resolve_model(path)
    assert spec.hyperparameters == {"num_residual_blocks": 1, "residual_scaling": 0.2}
    hash(spec)  # a dask task argument and a cache key
    bare = type(spec)(spec.path, spec.kind, spec.digest)
    assert bare == spec and hash(bare) == hash(spec)  # derived facts are not its identity
    assert resolve_model(bare).hyperparameters == spec.hyperparameters  # filled when resolved
    path.unlink()  # whatever reads the checkpoint from now on fails
    out = ds.chunk({"y": 18, "x": 18}).deepbedmap.superresolve(spec, halo=2)  # lazy
    assert out.attrs["model_num_residual_blocks"] == 1
    assert out.attrs["model_residual_scaling"] == 0.2
    assert out.attrs["compute_dtype"] == "float32"


def test_results_computed_together_keep_their_own_tasks(region, tiny_model):
    """Task names hash the inputs and options: two results in one graph never share keys."""
    ds, _ = region
    lazy = ds.chunk({"y": 18, "x": 18})
    small = lazy.deepbedmap.superresolve(tiny_model, halo=2)
    large = lazy.deepbedmap.superresolve(tiny_model, halo=6)
    assert small.data.name != large.data.name
    # deterministic, so an interrupted to_zarr resumes on the same graph
    assert small.data.name == lazy.deepbedmap.superresolve(tiny_model, halo=2).data.name
    both = dask.compute(small, large)
    xr.testing.assert_identical(both[0], small.compute())
    xr.testing.assert_identical(both[1], large.compute())
    assert not np.allclose(both[0], both[1], equal_nan=True)  # the halo matters here
