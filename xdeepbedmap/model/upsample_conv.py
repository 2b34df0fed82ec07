"""A nearest-neighbour 2x upsampling followed by a 3x3 convolution, as one 2x2 convolution.

After a nearest 2x upsampling every output pixel's 3x3 window covers only
2 x 2 distinct input pixels, which depend on the pixel's phase (its row and
column parity): output ``(2y + py, 2x + px)`` sees input rows
``y - 1 + py, y + py`` (columns alike), with the 3x3 taps that fall on the
same input pixel summed. So the pair is one 2x2 convolution with four
filters per output channel, one per phase, on the input (zero-padded by
one), followed by interleaving the phases: 16 products per output pixel
and input channel instead of 36, and no upsampled tensor. Filters are
summed in float64 and rounded once; results equal upsampling then
convolving to float32 rounding.
"""

from __future__ import annotations

import torch
from torch import nn

from xdeepbedmap.model.packed_conv import PackedConv2d, require_plain_3x3

__all__ = ["UpsampleConv2d", "phase_filters"]

# the 3 taps of one axis onto the 2 input pixels each phase sees
_TAPS = (
    ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)),  # even output rows: rows y - 1, y
    ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0)),  # odd output rows: rows y, y + 1
)


def phase_filters(weight: torch.Tensor) -> torch.Tensor:
    """``(C_out, C_in, 3, 3)`` -> ``(4 C_out, C_in, 2, 2)``: phase ``2 py + px`` major.

    Summed in float64, returned in ``weight``'s dtype.
    """
    c_out, c_in, kh, kw = weight.shape
    if (kh, kw) != (3, 3):
        raise ValueError(f"phase_filters needs 3x3 filters, got {kh}x{kw}")
    taps = torch.tensor(_TAPS, dtype=torch.float64, device=weight.device)  # (phase, 2, 3)
    out = torch.einsum("yai,ocij,xbj->yxocab", taps, weight.detach().double(), taps)
    return out.reshape(4 * c_out, c_in, 2, 2).to(weight.dtype)


class UpsampleConv2d(nn.Module):
    """``conv(interpolate(x, scale_factor=2, mode="nearest"))`` [+ LeakyReLU], for inference.

    Parameters
    ----------
    conv : nn.Conv2d
        A 3x3, stride-1, padding-1 convolution (weights copied).
    leaky_slope : float, optional
        Apply ``leaky_relu(., leaky_slope)`` (fused into the 2x2 convolution).
    fused : bool
        Passed to :class:`~xdeepbedmap.model.packed_conv.PackedConv2d`.
    dtype : torch.dtype, optional
        Run in this type (e.g. bfloat16 for the mixed path): the phase
        filters are summed from ``conv``'s weights first and rounded once.
    """

    def __init__(
        self,
        conv: nn.Conv2d,
        leaky_slope: float | None = None,
        fused: bool = False,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        require_plain_3x3(conv, "UpsampleConv2d")
        self.out_channels = conv.out_channels
        phases = nn.Conv2d(conv.in_channels, 4 * conv.out_channels, 2, padding=1)
        phases = phases.to(device=conv.weight.device, dtype=conv.weight.dtype)
        with torch.no_grad():
            phases.weight.copy_(phase_filters(conv.weight))
            if conv.bias is not None:
                phases.bias.copy_(conv.bias.detach().repeat(4))
            else:
                phases.bias.zero_()
        if dtype is not None:
            phases = phases.to(dtype)
        self.phases = PackedConv2d(phases, leaky_slope=leaky_slope, fused=fused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C_in, H, W)`` -> ``(N, C_out, 2H, 2W)``, channels-last."""
        n, _, h, w = x.shape
        c = self.out_channels
        z = self.phases(x.contiguous(memory_format=torch.channels_last))  # (n, 4c, h+1, w+1)
        s_n, s_c, s_h, s_w = z.stride()  # channels-last: s_c == 1
        # output (y, py, x, px) is phase 2 py + px at (y + py, x + px): one strided view
        phased = z.as_strided(
            (n, h, 2, w, 2, c),
            (s_n, s_h, s_h + 2 * c * s_c, s_w, s_w + c * s_c, s_c),
            z.storage_offset(),
        )
        out = torch.empty(n, 2 * h, 2 * w, c, dtype=z.dtype, device=z.device)
        out.view(n, h, 2, w, 2, c).copy_(phased)
        return out.permute(0, 3, 1, 2)
