"""Deformable 3x3 convolution in plain torch, with Chainer's conventions.

Chainer's ``deformable_convolution_2d_sampler`` (which the published DeepBedMap
weights were trained with) defines the layout reproduced here:

* the offset tensor has ``2 * kh * kw`` channels; the first ``kh * kw`` are
  horizontal (x) offsets and the last ``kh * kw`` vertical (y) offsets, tap
  ``k`` being kernel row ``k // kw`` and column ``k % kw``;
* tap ``(i, j)`` of output pixel ``(oy, ox)`` samples the zero-padded input at
  ``(oy * stride + i + dy, ox * stride + j + dx)`` with bilinear interpolation,
  and every location outside the padded input reads zero.

Sampling with ``torch.nn.functional.grid_sample`` (``padding_mode="zeros"``)
gives exactly that rule, runs on CPU and CUDA, and is differentiable with
respect to both the input and the offsets.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DeformConv2d", "deform_conv2d"]


def deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: int = 1,
) -> torch.Tensor:
    """Apply a stride-1 deformable convolution with Chainer's offset layout.

    Parameters
    ----------
    x : torch.Tensor
        Input of shape ``(N, C_in, H, W)``.
    offset : torch.Tensor
        Offsets of shape ``(N, 2 * kh * kw, H_out, W_out)``: first all x
        (horizontal) offsets, then all y (vertical) offsets, in input pixels.
    weight : torch.Tensor
        Filters of shape ``(C_out, C_in, kh, kw)``.
    bias : torch.Tensor, optional
        Bias of shape ``(C_out,)``.
    padding : int
        Zero padding on each side of the input, as for a regular convolution.

    Returns
    -------
    torch.Tensor
        Output of shape ``(N, C_out, H_out, W_out)`` where
        ``H_out = H + 2 * padding - kh + 1`` (likewise for W).
    """
    n, c_in, h, w = x.shape
    c_out, c_w, kh, kw = weight.shape
    taps = kh * kw
    h_out, w_out = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    if c_w != c_in:
        raise ValueError(f"weight expects {c_w} input channels, input has {c_in}")
    if offset.shape != (n, 2 * taps, h_out, w_out):
        raise ValueError(
            f"offset must have shape {(n, 2 * taps, h_out, w_out)}, found {tuple(offset.shape)}"
        )

    grid = _sampling_grid(offset, kh, kw, h, w, padding).to(x.dtype)
    if c_out < c_in:
        # Bilinear sampling is linear per channel, so project the input onto
        # each tap's filters first (a 1x1 conv) and sample c_out channels per
        # tap instead of c_in: 25x faster for the final 64 -> 1 layer.
        projected = F.conv2d(x, weight.permute(2, 3, 0, 1).reshape(taps * c_out, c_in, 1, 1))
        sampled = F.grid_sample(
            projected.reshape(n * taps, c_out, h, w),
            grid.reshape(n * taps, h_out, w_out, 2),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        )
        out = sampled.reshape(n, taps, c_out, h_out, w_out).sum(dim=1)
    else:
        # Sample all taps as one image of taps * h_out rows, then contract
        # (C_out, C_in * taps) @ (C_in * taps, pixels): one large matmul.
        sampled = F.grid_sample(
            x,
            grid.reshape(n, taps * h_out, w_out, 2),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=False,
        )
        sampled = sampled.reshape(n, c_in * taps, h_out * w_out)
        out = torch.matmul(weight.reshape(c_out, c_in * taps), sampled)
        out = out.reshape(n, c_out, h_out, w_out)
    if bias is not None:
        out = out + bias[None, :, None, None]
    return out


def _sampling_grid(
    offset: torch.Tensor, kh: int, kw: int, h: int, w: int, padding: int
) -> torch.Tensor:
    """Normalised ``grid_sample`` coordinates, shape ``(N, kh * kw, H_out, W_out, 2)``.

    Positions are taken in the coordinates of the *unpadded* input: the padding
    is zeros, so reading zero outside the unpadded input is the same rule.
    """
    taps = kh * kw
    h_out, w_out = offset.shape[-2:]
    dtype, device = offset.dtype, offset.device
    base_y = torch.arange(h_out, dtype=dtype, device=device) - padding
    base_x = torch.arange(w_out, dtype=dtype, device=device) - padding
    tap_y = torch.arange(kh, dtype=dtype, device=device).repeat_interleave(kw)
    tap_x = torch.arange(kw, dtype=dtype, device=device).repeat(kh)
    pos_x = offset[:, :taps] + (tap_x[:, None, None] + base_x[None, None, :])
    pos_y = offset[:, taps:] + (tap_y[:, None, None] + base_y[None, :, None])
    # align_corners=False puts pixel i's centre at (2 i + 1) / size - 1, which
    # avoids dividing by (size - 1) for one-pixel-wide inputs.
    return torch.stack(((2 * pos_x + 1) / w - 1, (2 * pos_y + 1) / h - 1), dim=-1)


class DeformConv2d(nn.Module):
    """Deformable convolution layer: a plain offset conv plus a deformable conv.

    Mirrors Chainer's ``L.DeformableConvolution2D`` link (stride 1), so that
    its parameters map one to one: ``offset_conv`` predicts ``2 * k * k``
    offset channels from the input, ``deform_conv`` holds the filters applied at
    the displaced sampling locations.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    kernel_size : int
        Square kernel size (DeepBedMap uses 3).
    padding : int
        Zero padding; ``kernel_size // 2`` keeps the spatial size.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1
    ) -> None:
        super().__init__()
        self.padding = padding
        self.offset_conv = nn.Conv2d(
            in_channels, 2 * kernel_size * kernel_size, kernel_size, padding=padding
        )
        self.deform_conv = _DeformWeights(in_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict offsets from ``x`` and convolve ``x`` at the displaced taps."""
        offset = self.offset_conv(x)
        return deform_conv2d(
            x, offset, self.deform_conv.weight, self.deform_conv.bias, padding=self.padding
        )


class _DeformWeights(nn.Module):
    """Parameter holder so state-dict keys read ``deform_conv.weight`` like Chainer's."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
