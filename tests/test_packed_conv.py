"""Prepacked, fused convolutions and the cache-blocked deformable gather match plain torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xdeepbedmap.model import deform_conv2d, deform_gather
from xdeepbedmap.model.packed_conv import PackedConv2d, fused_ops_work

CL = torch.channels_last


def _conv_and_input(dtype: torch.dtype, cin: int = 6, cout: int = 5):
    gen = torch.Generator().manual_seed(3)
    conv = nn.Conv2d(cin, cout, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
        conv.bias.copy_(torch.randn(cout, generator=gen))
    x = torch.randn(2, cin + 3, 7, 9, generator=gen)[
        :, :cin
    ]  # a channel prefix, as in dense blocks
    residual = torch.randn(2, cout, 7, 9, generator=gen)
    conv = conv.to(dtype, memory_format=CL)
    return conv, x.to(dtype, memory_format=CL), residual.to(dtype, memory_format=CL)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_conv_equals_conv_then_post_op(fused, dtype):
    if fused and not fused_ops_work(dtype):
        pytest.skip(f"no fused oneDNN convolution for {dtype} here")
    conv, x, residual = _conv_and_input(dtype)
    tol = {"rtol": 1e-5, "atol": 1e-4} if dtype == torch.float32 else {"rtol": 2e-2, "atol": 0.1}
    with torch.inference_mode():
        plain = conv(x).float()
        leaky = PackedConv2d(conv, leaky_slope=0.2, fused=fused)(x)
        scaled = PackedConv2d(conv, scale=0.2, fused=fused)(x, residual=residual)
        bare = PackedConv2d(conv, fused=fused)(x)
    assert leaky.dtype == dtype and leaky.shape == plain.shape
    torch.testing.assert_close(leaky.float(), F.leaky_relu(plain, 0.2), **tol)
    torch.testing.assert_close(scaled.float(), 0.2 * plain + residual.float(), **tol)
    torch.testing.assert_close(bare.float(), plain, **tol)


def test_packed_conv_does_not_change_the_layer():
    conv, x, _ = _conv_and_input(torch.float32)
    before = conv.weight.clone()
    PackedConv2d(conv, scale=0.2, fused=fused_ops_work(torch.float32))
    assert torch.equal(conv.weight, before)


def test_packed_conv_rejects_what_it_cannot_fuse():
    conv, x, residual = _conv_and_input(torch.float32)
    with pytest.raises(ValueError, match="residual and a leaky_slope"):
        PackedConv2d(conv, leaky_slope=0.2)(x, residual=residual)
    with pytest.raises(ValueError, match="groups=2"):
        PackedConv2d(nn.Conv2d(4, 4, 3, padding=1, groups=2))


def test_blocked_gather_equals_one_block(monkeypatch):
    # 64-pixel blocks (the minimum): 99 output pixels are one full block and a partial one
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(1, 4, 9, 11, generator=gen).contiguous(memory_format=CL)
    offset = torch.randn(1, 18, 9, 11, generator=gen) * 3
    weight, bias = torch.randn(6, 4, 3, 3, generator=gen), torch.randn(6, generator=gen)
    whole = deform_gather.deform_conv2d_gather(x, offset, weight, bias)
    monkeypatch.setattr(deform_gather, "SAMPLED_BYTES", 1)
    blocked = deform_gather.deform_conv2d_gather(x, offset, weight, bias)
    torch.testing.assert_close(blocked, whole, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(
        blocked, deform_conv2d(x, offset, weight, bias), rtol=1e-5, atol=1e-5
    )


def test_fast_generator_survives_pickling_and_deepcopy():
    # the oneDNN-packed weights are opaque tensors: they are re-derived after a copy
    import copy
    import pickle

    from xdeepbedmap.model import Generator
    from xdeepbedmap.model.precision import FastGenerator

    torch.manual_seed(0)
    fast = FastGenerator(Generator(num_residual_blocks=1).eval(), "mixed")
    gen = torch.Generator().manual_seed(1)
    shapes = ((1, 1, 6, 6), (1, 1, 60, 60), (1, 2, 12, 12), (1, 1, 6, 6))
    inputs = [torch.randn(s, generator=gen) for s in shapes]
    with torch.inference_mode():
        expected = fast(*inputs)  # packs the weights
        for clone in (copy.deepcopy(fast), pickle.loads(pickle.dumps(fast))):
            assert torch.equal(clone(*inputs), expected)
        conv = fast.fast.final_conv_layer1.offset_conv
        fast.to("cpu")  # _apply: the packed weights are dropped, then re-packed on use
        assert conv._packed is None
        assert torch.equal(fast(*inputs), expected)


def test_missing_fused_ops_fall_back(monkeypatch):
    from xdeepbedmap.model import packed_conv

    monkeypatch.setattr(packed_conv, "_mkldnn_op", lambda name: None)
    packed_conv.fused_ops_work.cache_clear()
    try:
        assert not packed_conv.fused_ops_work(torch.float32)
        conv, x, _ = _conv_and_input(torch.float32)
        layer = PackedConv2d(conv, leaky_slope=0.2, fused=True)  # asks, but the check says no
        with torch.inference_mode():
            torch.testing.assert_close(layer(x), F.leaky_relu(conv(x), 0.2))
        assert layer._packed is None
    finally:
        packed_conv.fused_ops_work.cache_clear()
