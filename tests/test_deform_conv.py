"""The plain-torch deformable convolution against an independent numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from xdeepbedmap.model.deform_conv import DeformConv2d, deform_conv2d


def numpy_reference(x, offset, weight, bias, pad=1):
    """Chainer's rule, pixel by pixel: bilinear on the zero-padded input, zero outside."""
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    taps = kh * kw
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    hp, wp = xp.shape[-2:]
    h_out, w_out = offset.shape[-2:]

    def read(b, yy, xx):
        if 0 <= yy < hp and 0 <= xx < wp:
            return xp[b, :, yy, xx]
        return np.zeros(c_in)

    out = np.zeros((n, c_out, h_out, w_out))
    for b in range(n):
        for oy in range(h_out):
            for ox in range(w_out):
                cols = np.zeros((c_in, taps))
                for k in range(taps):
                    i, j = divmod(k, kw)
                    px = ox + j + offset[b, k, oy, ox]
                    py = oy + i + offset[b, taps + k, oy, ox]
                    x0, y0 = int(np.floor(px)), int(np.floor(py))
                    fx, fy = px - x0, py - y0
                    cols[:, k] = (
                        (1 - fy) * (1 - fx) * read(b, y0, x0)
                        + (1 - fy) * fx * read(b, y0, x0 + 1)
                        + fy * (1 - fx) * read(b, y0 + 1, x0)
                        + fy * fx * read(b, y0 + 1, x0 + 1)
                    )
                out[b, :, oy, ox] = weight.reshape(c_out, c_in, taps).reshape(
                    c_out, -1
                ) @ cols.reshape(-1) + (bias if bias is not None else 0)
    return out


@given(
    c_in=st.integers(1, 4),
    c_out=st.integers(1, 4),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    scale=st.sampled_from([0.0, 0.7, 3.0]),
    seed=st.integers(0, 2**16),
)
def test_matches_pixelwise_reference(c_in, c_out, h, w, scale, seed):
    # Covers both code paths (c_out < c_in projects first) and offsets that
    # leave the image (scale 3 moves taps several pixels outside).
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, c_in, h, w))
    offset = rng.normal(scale=scale, size=(2, 18, h, w))
    weight = rng.normal(size=(c_out, c_in, 3, 3))
    bias = rng.normal(size=c_out)
    expected = numpy_reference(x, offset, weight, bias)
    got = deform_conv2d(*(torch.from_numpy(a) for a in (x, offset, weight, bias)), padding=1)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("c_out", [1, 8])
def test_zero_offsets_is_a_plain_convolution(c_out):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 8, 9, 7, generator=gen, dtype=torch.float64)
    weight = torch.randn(c_out, 8, 3, 3, generator=gen, dtype=torch.float64)
    bias = torch.randn(c_out, generator=gen, dtype=torch.float64)
    offset = torch.zeros(2, 18, 9, 7, dtype=torch.float64)
    expected = F.conv2d(x, weight, bias, padding=1)
    torch.testing.assert_close(deform_conv2d(x, offset, weight, bias), expected)


def test_integer_offset_shifts_the_sampling_point():
    # dx = +1 on every tap reads one pixel to the right: the same as a plain
    # convolution of the image shifted left by one, with a zero column entering.
    x = torch.arange(1.0, 26.0, dtype=torch.float64).reshape(1, 1, 5, 5)
    weight = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    weight[0, 0, 1, 1] = 1.0  # centre tap only: output = sampled value
    offset = torch.zeros(1, 18, 5, 5, dtype=torch.float64)
    offset[:, :9] = 1.0  # x offsets come first
    out = deform_conv2d(x, offset, weight)
    expected = torch.cat([x[..., 1:], torch.zeros(1, 1, 5, 1, dtype=torch.float64)], dim=-1)
    torch.testing.assert_close(out, expected)
    # and a y offset moves along rows, not columns
    offset = torch.zeros(1, 18, 5, 5, dtype=torch.float64)
    offset[:, 9:] = 1.0
    out = deform_conv2d(x, offset, weight)
    expected = torch.cat([x[..., 1:, :], torch.zeros(1, 1, 1, 5, dtype=torch.float64)], dim=-2)
    torch.testing.assert_close(out, expected)


def test_gradients_through_input_and_offsets():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 3, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    # keep offsets away from integer positions, where bilinear is not differentiable
    offset = (
        torch.rand(1, 18, 4, 4, generator=gen, dtype=torch.float64) * 0.8 + 0.1
    ).requires_grad_()
    for c_out in (1, 5):
        weight = torch.randn(c_out, 3, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda a, o, w: deform_conv2d(a, o, w), (x, offset, weight))


def test_layer_shapes_and_bad_offset_shape():
    layer = DeformConv2d(4, 6)
    assert layer(torch.randn(2, 4, 7, 5)).shape == (2, 6, 7, 5)
    with pytest.raises(ValueError, match="offset must have shape"):
        deform_conv2d(torch.randn(1, 4, 5, 5), torch.zeros(1, 18, 4, 5), torch.randn(6, 4, 3, 3))
    with pytest.raises(ValueError, match="input channels"):
        deform_conv2d(torch.randn(1, 3, 5, 5), torch.zeros(1, 18, 5, 5), torch.randn(6, 4, 3, 3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 16, 12, 12, generator=gen)
    offset = torch.randn(2, 18, 12, 12, generator=gen)
    for c_out in (1, 16):
        weight = torch.randn(c_out, 16, 3, 3, generator=gen)
        cpu = deform_conv2d(x, offset, weight)
        gpu = deform_conv2d(x.cuda(), offset.cuda(), weight.cuda()).cpu()
        torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=1e-4)
