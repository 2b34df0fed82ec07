"""A nearest 2x upsampling + 3x3 conv equals its 2x2 phase convolution to float32 rounding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from xdeepbedmap.model.packed_conv import fused_ops_work
from xdeepbedmap.model.upsample_conv import UpsampleConv2d, phase_filters


@pytest.mark.parametrize(("h", "w"), [(1, 1), (3, 5), (8, 6)])
@pytest.mark.parametrize("slope", [None, 0.2])
@pytest.mark.parametrize("fused", [False, True])
def test_equals_upsample_then_conv(h, w, slope, fused):
    if fused and not fused_ops_work(torch.float32):
        pytest.skip("no fused oneDNN convolutions here")
    gen = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(6, 5, 3, padding=1)
    with torch.no_grad():
        conv.bias.normal_(generator=gen)
    x = torch.randn(2, 6, h, w, generator=gen)
    up = F.interpolate(x.double(), scale_factor=2, mode="nearest")
    expected = F.conv2d(up, conv.weight.double(), conv.bias.double(), padding=1)
    if slope is not None:
        expected = F.leaky_relu(expected, slope)
    with torch.inference_mode():
        found = UpsampleConv2d(conv, slope, fused=fused)(x)
    assert found.shape == (2, 5, 2 * h, 2 * w) and found.dtype == torch.float32
    assert found.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(found.double(), expected, rtol=1e-5, atol=1e-5)


def test_phase_filters_sum_the_taps_and_refuse_other_sizes():
    weight = torch.arange(9.0).reshape(1, 1, 3, 3)  # rows (0 1 2), (3 4 5), (6 7 8)
    phases = phase_filters(weight)
    # phase (0, 0) sees rows/columns (y - 1, y): taps (0 | 1 + 2) on both axes
    assert phases[0, 0].tolist() == [[0.0, 3.0], [9.0, 24.0]]
    assert phases.sum().item() == 4 * weight.sum().item()  # every tap in every phase
    with pytest.raises(ValueError, match="needs 3x3 filters, got 1x1"):
        phase_filters(torch.zeros(1, 1, 1, 1))
    with pytest.raises(ValueError, match="stride-1, padding-1"):
        UpsampleConv2d(nn.Conv2d(2, 2, 3))


def test_bfloat16_phase_form_matches_bfloat16_upsample_then_conv():
    """The mixed path's form: filters summed in float64, rounded to bfloat16 once."""
    if not fused_ops_work(torch.bfloat16):
        pytest.skip("no bfloat16 oneDNN convolutions on this CPU")
    torch.manual_seed(5)
    conv = nn.Conv2d(16, 8, 3, padding=1)
    x = torch.randn(1, 16, 9, 7)
    up = F.interpolate(x, scale_factor=2, mode="nearest")
    expected = F.conv2d(up, conv.weight, conv.bias, padding=1)
    with torch.inference_mode():
        found = UpsampleConv2d(conv, dtype=torch.bfloat16)(x.to(torch.bfloat16))
    assert found.dtype == torch.bfloat16 and found.shape == expected.shape
    # bfloat16 keeps 8 bits: within a few parts in a hundred of the float32 result
    error = (found.float() - expected).abs().max() / expected.abs().max()
    assert error < 0.03


def test_mixed_generator_uses_the_phase_form_on_cpu():
    from xdeepbedmap.model import Generator
    from xdeepbedmap.model.precision import FastGenerator

    if not fused_ops_work(torch.bfloat16):
        pytest.skip("no bfloat16 oneDNN convolutions on this CPU")
    generator = Generator(num_residual_blocks=1).eval()
    fast = FastGenerator(generator, "mixed", "cpu")
    assert fast.phase_upsample and not fast.fewer_products
    assert {p.dtype for p in fast.upsample.parameters()} <= {torch.bfloat16}


def test_only_a_plain_3x3_conv_is_taken():
    from xdeepbedmap.model.winograd import WinogradConv2d

    strided = nn.Conv2d(4, 4, 3, stride=2, padding=1)
    for cls in (UpsampleConv2d, WinogradConv2d):
        with pytest.raises(ValueError, match=f"{cls.__name__} needs a 3x3, stride-1"):
            cls(strided)
