"""Winograd F(2x2, 3x3) convolutions and trunk equal the direct float32 ones to rounding."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xdeepbedmap.model import Generator
from xdeepbedmap.model.generator import ResInResDenseBlock, he_init_
from xdeepbedmap.model.precision import FastGenerator, PrecisionError
from xdeepbedmap.model.winograd import TileGrid, WinogradConv2d, transform_input, winograd_filters
from xdeepbedmap.model.winograd_trunk import WinogradTrunk

SIZES = [(1, 1), (2, 3), (7, 9), (10, 8)]


def _random(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _blocks(count: int) -> nn.ModuleList:
    torch.manual_seed(3)
    blocks = nn.ModuleList(he_init_(ResInResDenseBlock(), scale=1.0) for _ in range(count))
    with torch.no_grad():  # non-zero biases: the bias enters through one Winograd point
        for name, p in blocks.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    return blocks.eval()


@pytest.mark.parametrize(("h", "w"), SIZES)
@pytest.mark.parametrize("post", ["none", "leaky", "residual"])
def test_conv_equals_conv2d(h, w, post):
    conv = nn.Conv2d(5, 4, 3, padding=1)
    with torch.no_grad():
        conv.bias.normal_()
    x, residual = _random(2, 5, h, w), _random(2, 4, h, w, seed=1)
    expected = F.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=1)
    if post == "leaky":
        expected = F.leaky_relu(expected, 0.2)
    if post == "residual":
        expected = expected + residual.double()
    grid = TileGrid.of(x)
    layer = WinogradConv2d(conv, leaky_slope=0.2 if post == "leaky" else None)
    with torch.inference_mode():
        transformed = torch.zeros(16, 5, grid.tiles)
        transform_input(grid.to_buffer(x), grid, transformed)
        out = grid.buffer(4, x)
        extra = grid.to_buffer(residual) if post == "residual" else None
        layer.into(layer.products(transformed), grid, out, residual=extra)
        found = grid.from_buffer(out)
    assert found.shape == (2, 4, h, w)
    assert found.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(found.double(), expected, rtol=1e-5, atol=1e-5)
    # the border and an odd size's overhang are zero again (the next conv's
    # padding); only the pixels and the spare row halves hold values
    rest = out.clone()
    grid.pixels(rest, spare=False).zero_()
    rest[:, :, :, :, grid.ty + 1] = 0
    assert not rest.any()


def test_conv_forward_and_refusals():
    conv = nn.Conv2d(3, 2, 3, padding=1)
    x = _random(1, 3, 6, 5)
    grid = TileGrid.of(x)
    with torch.inference_mode():
        found = grid.from_buffer(WinogradConv2d(conv)(grid.to_buffer(x), grid))
        torch.testing.assert_close(found, conv(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="stride-1, padding-1.*got kernel/stride"):
        WinogradConv2d(nn.Conv2d(3, 2, 3, stride=2, padding=1))
    with pytest.raises(ValueError, match="needs 3x3 filters, got 5x5"):
        winograd_filters(torch.zeros(2, 3, 5, 5))


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_trunk_equals_blocks(h, w):
    blocks = _blocks(2)
    x = _random(2, 64, h, w)
    with torch.inference_mode():
        expected = x.double()
        for block in blocks.double():
            expected = block(expected)
        trunk = WinogradTrunk(blocks.float())
        found = trunk(x)
        again = trunk(x)  # scratch buffers reused: same numbers
        direct = x
        for block in blocks:
            direct = block(direct)
    assert found.shape == x.shape and found.dtype == torch.float32
    assert found.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(found, again)
    scale = expected.abs().max().item()
    direct_error = (direct.double() - expected).abs().max().item()
    winograd_error = (found.double() - expected).abs().max().item()
    assert winograd_error < 1e-6 * scale
    # measured: the same order as the direct float32 convolutions' rounding
    assert winograd_error < 10 * direct_error + 1e-7 * scale


def test_trunk_threads_keep_their_own_scratch():
    blocks = _blocks(1)
    trunk = WinogradTrunk(blocks)
    inputs = [_random(1, 64, 6 + k, 9 - k, seed=k) for k in range(4)]
    with torch.inference_mode():
        expected = [trunk(x) for x in inputs]
    found: dict[int, torch.Tensor] = {}

    def run(k: int) -> None:
        with torch.inference_mode():
            for _ in range(3):
                found[k] = trunk(inputs[k])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for k in range(4):
        assert torch.equal(found[k], expected[k])


def test_trunk_refuses_other_dtypes():
    with pytest.raises(TypeError, match="float32 only, got input of dtype torch.float64"):
        WinogradTrunk(_blocks(1))(torch.zeros(1, 64, 4, 4, dtype=torch.float64))


def test_fast_generator_fewer_products_option():
    torch.manual_seed(0)
    model = Generator(num_residual_blocks=2).eval()
    inputs = (
        _random(1, 1, 9, 9),
        _random(1, 1, 90, 90),
        _random(1, 2, 18, 18),
        _random(1, 1, 9, 9),
    )
    with torch.inference_mode():
        expected = model(*inputs)
        default = FastGenerator(model, "channels_last")
        direct = FastGenerator(model, "channels_last", fewer_products=False)
        found, found_direct = default(*inputs), direct(*inputs)
    assert default.fewer_products and not direct.fewer_products
    assert not FastGenerator(model, "mixed").fewer_products
    tol = 1e-5 * expected.abs().max().item()
    torch.testing.assert_close(found, expected, rtol=1e-5, atol=tol)
    torch.testing.assert_close(found_direct, expected, rtol=1e-5, atol=tol)
    with pytest.raises(PrecisionError, match="fewer_products=True needs precision 'channels_last'"):
        FastGenerator(model, "mixed", fewer_products=True)


def test_scratch_made_under_inference_mode_serves_later_calls_outside_it():
    """The kernel runs the model under inference_mode; a notebook may then use no_grad."""
    from xdeepbedmap.model import Generator
    from xdeepbedmap.model.precision import FastGenerator
    from xdeepbedmap.model.scratch import release

    torch.manual_seed(3)
    fast = FastGenerator(Generator(num_residual_blocks=1).eval(), "channels_last", "cpu")
    inputs = (
        torch.randn(1, 1, 10, 10),
        torch.randn(1, 1, 100, 100),
        torch.randn(1, 2, 20, 20),
        torch.randn(1, 1, 10, 10),
    )
    release()  # this thread's scratch is made fresh, under inference_mode
    with torch.inference_mode():
        first = fast(*inputs).clone()
    with torch.no_grad():
        again = fast(*inputs)
    torch.testing.assert_close(again, first, rtol=0, atol=0)


def test_resume_identity_tells_the_compute_forms_apart():
    from xdeepbedmap.io.identity import differences, write_identity
    from xdeepbedmap.synthetic import make_region

    inputs, _ = make_region((12, 12), seed=2)
    out = inputs.deepbedmap.superresolve(dtype="channels_last", halo=2)
    assert out.attrs["compute_form"] == "channels_last, Winograd trunk, phase-form upsampling"
    older = out.copy()
    older.attrs["compute_form"] = "channels_last"  # written before the Winograd trunk
    assert (
        "compute_form" in differences(write_identity(out, inputs), write_identity(older, inputs))[0]
    )
