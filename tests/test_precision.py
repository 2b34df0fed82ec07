"""The fast inference forms agree with the float32 generator within stated bounds."""

from __future__ import annotations

import pytest
import torch

from xdeepbedmap.model import Generator, deform_conv2d
from xdeepbedmap.model.deform_gather import deform_conv2d_gather
from xdeepbedmap.model.precision import FastGenerator, PrecisionError, resolve_precision


def _inputs(n: int, seed: int = 0, metres: bool = False) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    shapes = ((1, n, n), (1, 10 * n, 10 * n), (2, 2 * n, 2 * n), (1, n, n))
    out = [torch.randn(2, *s, generator=gen) for s in shapes]
    if metres:  # raw units: beds around -500 m, surfaces around 1500 m
        out[0], out[1] = out[0] * 300 - 500, out[1] * 300 + 1500
    return tuple(out)


@pytest.fixture(scope="module")
def small_model() -> Generator:
    torch.manual_seed(0)
    return Generator(num_residual_blocks=2).eval()


@pytest.fixture(scope="module")
def demo_model() -> Generator:
    from benchmarks.mixed_precision import DEMO_MODEL
    from xdeepbedmap.model import load_checkpoint

    return load_checkpoint(DEMO_MODEL).eval()


@pytest.mark.parametrize(("c_in", "c_out"), [(8, 8), (8, 3), (6, 1)])
def test_gather_deform_conv_equals_grid_sample_version(c_in, c_out):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, c_in, 9, 11, generator=gen)
    offset = torch.randn(2, 18, 9, 11, generator=gen) * 4  # many taps fall outside
    weight, bias = torch.randn(c_out, c_in, 3, 3, generator=gen), torch.randn(c_out)
    expected = deform_conv2d(x, offset, weight, bias)
    found = deform_conv2d_gather(
        x.contiguous(memory_format=torch.channels_last), offset, weight, bias
    )
    torch.testing.assert_close(found, expected, rtol=1e-5, atol=1e-5)


def test_gather_deform_conv_rejects_bad_offset_shape():
    with pytest.raises(ValueError, match="offset must have shape"):
        deform_conv2d_gather(
            torch.zeros(1, 4, 5, 5), torch.zeros(1, 18, 4, 4), torch.zeros(4, 4, 3, 3)
        )


def test_channels_last_equals_float32(small_model):
    inputs = _inputs(8)
    with torch.inference_mode():
        expected = small_model(*inputs)
        found = FastGenerator(small_model, "channels_last")(*inputs)
    assert found.dtype == torch.float32 and found.shape == expected.shape
    torch.testing.assert_close(found, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


@pytest.mark.parametrize("phase_upsample", [None, False])
def test_mixed_agrees_with_float32_in_raw_metres(small_model, phase_upsample):
    # the published model takes raw metres: a bfloat16 input block would lose metres
    inputs = _inputs(8, metres=True)
    with torch.inference_mode():
        expected = small_model(*inputs)
        found = FastGenerator(small_model, "mixed", phase_upsample=phase_upsample)(*inputs)
        naive = small_model.bfloat16()(*(t.bfloat16() for t in inputs)).float()
        small_model.float()
    assert found.dtype == torch.float32
    mixed_rms = (found - expected).square().mean().sqrt().item()
    naive_rms = (naive - expected).square().mean().sqrt().item()
    # measured: 1.4% of the output's spread (naive bfloat16: 2.8%)
    assert mixed_rms < 0.05 * expected.std().item()
    assert naive_rms > mixed_rms  # casting the metres too can only lose more


def test_mixed_on_demo_model_within_a_metre(demo_model):
    # a 16 x 16 corner of the demo region; the full region is benchmarks/mixed_precision.py
    from benchmarks.mixed_precision import demo_window

    (x, w1, w2, w3), _ = demo_window()
    window = (x[..., :16, :16], w1[..., :160, :160], w2[..., :32, :32], w3[..., :16, :16])
    with torch.inference_mode():
        expected = demo_model(*window)
        found = FastGenerator(demo_model, "mixed")(*window)
    diff = found - expected
    assert diff.square().mean().sqrt().item() <= 1.0
    assert diff.abs().max().item() <= 10.0


def test_float32_form_is_the_generator_untouched(small_model):
    before = {k: v.clone() for k, v in small_model.state_dict().items()}
    inputs = _inputs(6)
    with torch.inference_mode():
        expected = small_model(*inputs)
        FastGenerator(small_model, "mixed")(*inputs)
        found = FastGenerator(small_model, "float32")(*inputs)
    assert torch.equal(found, expected)
    for key, value in small_model.state_dict().items():
        assert value.dtype == torch.float32 and torch.equal(value, before[key]), key
        assert value.ndim < 4 or value.is_contiguous(), key  # not turned channels-last


@pytest.mark.parametrize(
    ("precision", "options", "copies"),
    [
        ("mixed", {}, 0.6),  # the phase-form upsampling; trunk in bfloat16 (half the bytes)
        ("mixed", {"float32_blocks": 1}, 0.8),
        ("mixed", {"phase_upsample": False}, 0.6),  # the direct upsampling convs instead
        ("channels_last", {"fewer_products": False}, 1.05),  # one float32 copy
        ("channels_last", {}, 1.9),  # the Winograd trunk's 4x4 filters: 16/9 of the 3x3
    ],
)
def test_fast_forms_hold_only_the_layers_they_run(small_model, precision, options, copies):
    # each form once held two packed copies of the whole generator plus the reference
    from benchmarks.mixed_precision import weight_megabytes

    fast = FastGenerator(small_model, precision, **options)
    assert fast.reference is None
    assert weight_megabytes(fast) <= copies * weight_megabytes(small_model)
    inputs = _inputs(6, metres=True)
    with torch.inference_mode():  # and still runs: every layer it uses is there
        assert torch.isfinite(fast(*inputs)).all()


def test_resolve_precision():
    assert resolve_precision("channels_last") == "channels_last"
    assert resolve_precision("auto", "cuda") == "channels_last"  # float16 not measured yet
    assert resolve_precision("auto", "cpu") in {"mixed", "channels_last"}
    with pytest.raises(PrecisionError, match="precision must be"):
        resolve_precision("bfloat16")
    with pytest.raises(PrecisionError, match="float32_blocks"):
        FastGenerator(Generator(1), "mixed", float32_blocks=2)


def test_float32_skip_path_beats_rounding_the_residual_sums(demo_model):
    # demo region, measured: 0.74 m RMS on land with the float32 skip path, 1.5 m without
    from benchmarks.mixed_precision import demo_window

    (x, w1, w2, w3), _ = demo_window()
    window = (x[..., :16, :16], w1[..., :160, :160], w2[..., :32, :32], w3[..., :16, :16])
    with torch.inference_mode():
        expected = demo_model(*window)
        rms = {
            skip: (FastGenerator(demo_model, "mixed", float32_skip=skip)(*window) - expected)
            .square()
            .mean()
            .sqrt()
            .item()
            for skip in (True, False)
        }
    assert rms[True] < rms[False]
