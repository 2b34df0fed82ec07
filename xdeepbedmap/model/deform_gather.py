"""Deformable 3x3 convolution as a row gather on channels-last features.

The same operation as :func:`xdeepbedmap.model.deform_conv.deform_conv2d`
(Chainer's offset layout, bilinear sampling, zeros outside the input),
reorganised for fast low-precision inference:

* sampling positions, corner indices and bilinear weights are always computed
  in float32 from float32 offsets, so a position such as 247.3 px is never
  rounded to bfloat16's 8-bit mantissa (which would move it by up to 1 px);
* in channels-last memory one pixel's channels are one contiguous row, so
  bilinear sampling is a weighted sum of four rows: exactly what
  ``embedding_bag(mode="sum", per_sample_weights=...)`` computes in one pass,
  in the features' own dtype, with no (N, C * taps, H, W) float32 intermediate;
* the sampled taps of one pixel are one row of ``taps * C_in`` values, so the
  filters apply as a ``(pixels, taps * C_in) @ (taps * C_in, C_out)`` matmul
  whose result is already channels-last. Gather and matmul run over blocks of
  pixels whose sampled rows fit in the core's cache (:data:`SAMPLED_BYTES`):
  the whole ``(pixels, taps * C_in)`` matrix is 9x the features' size, and
  writing it to memory and reading it back cost more than both operations
  (64 -> 64 at 248 x 248, one thread: 143 -> 66 ms float32, 64 -> 29 ms
  bfloat16, identical results).

When ``C_out < C_in`` (the final 64 -> 1 layer) the input is projected onto
each tap's filters first, in float32, and only ``taps * C_out`` values per
pixel are sampled; the output of that layer is the bed, so it stays float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "BORDER",
    "SAMPLED_BYTES",
    "bilinear_corners",
    "bordered_rows",
    "deform_conv2d_gather",
]


#: Zero border (px) around the sampled features. Sampling positions are clamped
#: into ``[-BORDER, size]``: every bilinear corner then lies inside the bordered
#: table, and a corner outside the input reads a zero of the border, which is
#: the zero-padding rule without any per-corner range test (a position below
#: -1 or above size has both corners in the border, as it had both outside).
BORDER = 2

#: Bytes of sampled rows gathered per block before the matmul consumes them:
#: about half this CPU's 2 MiB L2 (256 KiB to 2 MiB measured alike).
SAMPLED_BYTES = 1 << 20


def bilinear_corners(
    offset: torch.Tensor, kh: int, kw: int, h: int, w: int, padding: int, tap_rows: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices and weights of the four bilinear corners of every tap.

    Parameters
    ----------
    offset : torch.Tensor
        ``(N, 2 * kh * kw, H_out, W_out)`` offsets (x first, then y), any
        memory format; converted to float32 before use.
    kh, kw : int
        Kernel size.
    h, w : int
        Input size.
    padding : int
        Zero padding of the convolution.
    tap_rows : bool
        Index a table with one row per (pixel, tap), ``pixel * kh * kw + tap``
        (the projected table of a ``C_out < C_in`` layer) instead of one row
        per pixel.

    Returns
    -------
    index : torch.Tensor
        ``(N * H_out * W_out * kh * kw, 4)``, int32 (int64 for tables of
        2**31 rows or more, taps counted): rows of the flattened ``(N, h + 2 BORDER, w + 2 BORDER)``
        zero-bordered input (:func:`bordered_rows`), in (n, y_out, x_out, tap)
        order.
    weight : torch.Tensor
        float32, same shape: the bilinear weights of those corners.
    """
    n, _, h_out, w_out = offset.shape
    taps = kh * kw
    device = offset.device
    hp, wp = h + 2 * BORDER, w + 2 * BORDER
    # (N, H_out, W_out, taps) for each axis, float32 whatever the features' dtype;
    # positions in the bordered table's coordinates, so never negative after the
    # clamp and a truncating cast is the floor
    off = offset.float().permute(0, 2, 3, 1)
    f32 = {"device": device, "dtype": torch.float32}
    base_y = torch.arange(h_out, **f32)[:, None, None] + (BORDER - padding)
    base_x = torch.arange(w_out, **f32)[None, :, None] + (BORDER - padding)
    tap_y = torch.arange(kh, **f32).repeat_interleave(kw)
    tap_x = torch.arange(kw, **f32).repeat(kh)
    pos_x = (off[..., :taps] + (base_x + tap_x)).clamp_(0, w + BORDER)
    pos_y = (off[..., taps:] + (base_y + tap_y)).clamp_(0, h + BORDER)
    # int32 halves the index traffic; the 64 -> 1 layer multiplies rows by taps
    index_type = torch.int32 if n * hp * wp * taps < 2**31 else torch.int64
    x0, y0 = pos_x.to(index_type), pos_y.to(index_type)
    fx, fy = pos_x.sub_(x0), pos_y.sub_(y0)
    corner = y0.mul_(wp).add_(x0)
    if n > 1:
        corner += torch.arange(n, device=device, dtype=index_type)[:, None, None, None] * (hp * wp)
    step = 1
    if tap_rows:
        step = taps
        corner.mul_(taps).add_(torch.arange(taps, device=device, dtype=index_type))
    # the four corners written into their columns (torch.stack along the last
    # axis was half the cost of this function)
    index = corner.new_empty(*corner.shape, 4)
    index[..., 0] = corner
    torch.add(corner, step, out=index[..., 1])
    torch.add(corner, wp * step, out=index[..., 2])
    torch.add(corner, (wp + 1) * step, out=index[..., 3])
    gx, gy = 1 - fx, 1 - fy
    weight = fx.new_empty(*fx.shape, 4)
    torch.mul(gy, gx, out=weight[..., 0])
    torch.mul(gy, fx, out=weight[..., 1])
    torch.mul(fy, gx, out=weight[..., 2])
    torch.mul(fy, fx, out=weight[..., 3])
    return index.reshape(-1, 4), weight.reshape(-1, 4)


def bordered_rows(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N * (H + 2 BORDER) * (W + 2 BORDER), C)`` rows, zero border."""
    n, c, h, w = x.shape
    table = x.new_zeros(n, h + 2 * BORDER, w + 2 * BORDER, c)
    table[:, BORDER:-BORDER, BORDER:-BORDER] = x.permute(0, 2, 3, 1)
    return table.reshape(-1, c)


def deform_conv2d_gather(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    padding: int = 1,
) -> torch.Tensor:
    """Stride-1 deformable convolution by row gathers; output channels-last.

    Parameters
    ----------
    x : torch.Tensor
        ``(N, C_in, H, W)`` features, any dtype; channels-last avoids a copy.
    offset : torch.Tensor
        ``(N, 2 * kh * kw, H_out, W_out)`` offsets; positions use float32.
    weight : torch.Tensor
        ``(C_out, C_in, kh, kw)`` filters. For ``C_out >= C_in`` they are cast
        to ``x.dtype``; for ``C_out < C_in`` the projection runs in float32.
    bias : torch.Tensor, optional
        ``(C_out,)``.
    padding : int
        Zero padding, as for a regular convolution.

    Returns
    -------
    torch.Tensor
        ``(N, C_out, H_out, W_out)`` in channels-last memory: ``x.dtype`` when
        ``C_out >= C_in``, float32 otherwise.
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
    index, corner_weight = bilinear_corners(offset, kh, kw, h, w, padding, tap_rows=c_out < c_in)
    # (C_out, C_in, kh, kw) -> (taps * C_in, C_out), rows in the sampled (tap, channel) order
    filters = weight.permute(2, 3, 1, 0).reshape(taps * c_in, c_out)
    if c_out < c_in:
        # project first (linear per channel), sample taps * c_out float32 values
        per_tap = weight.float().permute(1, 2, 3, 0).reshape(c_in, taps * c_out)
        projected = (x.float().permute(0, 2, 3, 1) @ per_tap).permute(0, 3, 1, 2)
        table = bordered_rows(projected).reshape(-1, c_out)  # row = pixel * taps + tap
        # one bag of taps * 4 rows per output pixel: the tap sum happens in the gather
        out = F.embedding_bag(
            index.reshape(-1, taps * 4),
            table,
            per_sample_weights=corner_weight.reshape(-1, taps * 4),
            mode="sum",
        )
    else:
        out = _gather_matmul(bordered_rows(x), index, corner_weight, filters, taps, bias)
        bias = None  # added by the matmul
    if bias is not None:
        out = out + bias.to(out.dtype)
    return out.reshape(n, h_out, w_out, c_out).permute(0, 3, 1, 2)


def _gather_matmul(
    table: torch.Tensor,
    index: torch.Tensor,
    corner_weight: torch.Tensor,
    filters: torch.Tensor,
    taps: int,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``gather(table) @ filters + bias`` over blocks of pixels that fit in cache.

    Parameters
    ----------
    table : torch.Tensor
        ``(rows, C_in)`` bordered features (:func:`bordered_rows`).
    index, corner_weight : torch.Tensor
        ``(pixels * taps, 4)`` corner rows and float32 weights
        (:func:`bilinear_corners`).
    filters : torch.Tensor
        ``(taps * C_in, C_out)``.
    taps : int
        Taps per pixel.
    bias : torch.Tensor, optional
        ``(C_out,)``, added by the matmul (``addmm``), not in a separate pass.

    Returns
    -------
    torch.Tensor
        ``(pixels, C_out)`` in ``table.dtype``.
    """
    dtype, width = table.dtype, taps * table.shape[1]
    pixels = index.shape[0] // taps
    filters = filters.to(dtype).contiguous()
    corner_weight = corner_weight.to(dtype)
    out = table.new_empty(pixels, filters.shape[1])
    if bias is not None:
        bias = bias.to(dtype)
    block = max(64, SAMPLED_BYTES // (width * table.element_size()))
    for lo in range(0, pixels, block):
        hi = min(pixels, lo + block)
        sampled = F.embedding_bag(
            index[taps * lo : taps * hi],
            table,
            per_sample_weights=corner_weight[taps * lo : taps * hi],
            mode="sum",
        )
        sampled = sampled.reshape(hi - lo, width)
        if bias is None:
            torch.mm(sampled, filters, out=out[lo:hi])
        else:
            torch.addmm(bias, sampled, filters, out=out[lo:hi])
    return out
