"""``superresolve(dtype=...)``: the precision reaches the network, plain half casts never run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xdeepbedmap.inference import _resolve_dtype
from xdeepbedmap.model.precision import FastGenerator, resolve_precision
from xdeepbedmap.model_store import ModelSpec, load_model, resolve_model

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture(scope="module")
def demo_corner():
    """A 24 x 24 base-px corner of the demo region (all land)."""
    from xdeepbedmap.catalog import open_inputs

    ds = open_inputs("demo").load()
    return ds.isel(
        y=slice(0, 24), x=slice(0, 24), y_surface=slice(0, 240), x_surface=slice(0, 240),
        y_velocity=slice(0, 48), x_velocity=slice(0, 48),
    )  # fmt: skip


def test_mixed_superresolve_agrees_with_float32_on_the_demo_region(demo_corner):
    exact = demo_corner.deepbedmap.superresolve(device="cpu")
    mixed = demo_corner.deepbedmap.superresolve(device="cpu", dtype="mixed")
    assert exact.attrs["compute_dtype"] == "float32"
    assert mixed.attrs["compute_dtype"] == "mixed-bfloat16"
    land = np.isfinite(exact.values)
    assert land.mean() > 0.2  # the corner has land to compare
    np.testing.assert_array_equal(np.isfinite(mixed.values), land)
    diff = (mixed.values - exact.values)[land].astype(np.float64)
    assert 0 < np.sqrt(np.mean(diff**2)) < 1.0  # really ran in bfloat16, within the bound
    assert np.abs(diff).max() < 10.0


def test_plain_half_names_map_to_the_mixed_path_never_a_cast():
    assert _resolve_dtype(None, CPU) == "float32"
    assert _resolve_dtype(torch.float32, CPU) == "float32"
    assert _resolve_dtype("bfloat16", CPU) == "mixed-bfloat16"
    assert _resolve_dtype(torch.bfloat16, CUDA) == "mixed-bfloat16"
    assert _resolve_dtype("mixed", CPU) == "mixed-bfloat16"
    assert _resolve_dtype("mixed", CUDA) == "mixed-float16"
    assert _resolve_dtype("float16", CUDA) == "mixed-float16"
    assert _resolve_dtype("channels_last", CPU) == "channels_last"
    with pytest.raises(ValueError, match="float16 needs a CUDA device; on CPU use dtype='mixed'"):
        _resolve_dtype(torch.float16, CPU)
    with pytest.raises(ValueError, match="dtype must be one of float32, channels_last, mixed"):
        _resolve_dtype("int8", CPU)


def test_auto_is_mixed_only_where_measured_within_the_bound(monkeypatch):
    import xdeepbedmap.model.precision as precision

    monkeypatch.setattr(precision, "_cpu_has_fast_bfloat16", lambda: True)
    assert _resolve_dtype("auto", CPU) == "mixed-bfloat16"
    monkeypatch.setattr(precision, "_cpu_has_fast_bfloat16", lambda: False)
    assert _resolve_dtype("auto", CPU) == "channels_last"  # float32 numbers
    # float16 on CUDA has not been measured against the bound: float32 numbers there
    assert _resolve_dtype("auto", CUDA) == resolve_precision("auto", CUDA) == "channels_last"


def test_load_model_wraps_one_cached_network_per_precision(tiny_checkpoint):
    spec = resolve_model(tiny_checkpoint)
    exact = load_model(spec, CPU, torch.float32)
    mixed_spec = ModelSpec(spec.path, spec.kind, spec.digest, precision="mixed-bfloat16")
    mixed = load_model(mixed_spec, CPU, torch.float32)
    assert isinstance(mixed, FastGenerator) and mixed.compute_dtype == torch.bfloat16
    assert load_model(mixed_spec, CPU, torch.float32) is mixed
    assert load_model(spec, CPU, torch.float32) is exact and not isinstance(exact, FastGenerator)
    assert mixed_spec != spec and hash(mixed_spec) != hash(spec)  # own tasks, own cache entry
    with pytest.raises(ValueError, match="takes float32 inputs"):
        load_model(mixed_spec, CPU, torch.bfloat16)
    with pytest.raises(ValueError, match="ModelSpec.precision must be"):
        ModelSpec(spec.path, spec.kind, spec.digest, precision="bfloat16")


@pytest.fixture
def tiny_checkpoint(tmp_path):
    from xdeepbedmap.model import Generator, save_checkpoint

    torch.manual_seed(3)
    return save_checkpoint(Generator(num_residual_blocks=1), tmp_path / "tiny.safetensors")


def test_cli_dtype_choices_follow_the_library():
    from xdeepbedmap.cli import build_parser
    from xdeepbedmap.inference import DTYPES

    args = build_parser().parse_args(["superresolve", "--output", "x.zarr", "--dtype", "mixed"])
    assert args.dtype == "mixed"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["superresolve", "--output", "x.zarr", "--dtype", "int8"])
    assert "auto" in DTYPES


@pytest.mark.gpu
def test_mixed_float16_on_cuda_within_the_bound(demo_corner):
    exact = demo_corner.deepbedmap.superresolve(device="cpu")
    for dtype in ("mixed", "bfloat16"):
        found = demo_corner.deepbedmap.superresolve(device="cuda", dtype=dtype)
        land = np.isfinite(exact.values)
        diff = (found.values - exact.values)[land].astype(np.float64)
        assert np.sqrt(np.mean(diff**2)) < 1.0 and np.abs(diff).max() < 10.0, dtype
