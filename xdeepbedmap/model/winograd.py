"""3x3 'same' convolutions by Winograd's F(2x2, 3x3) algorithm, float32 channels-last.

A float32 3x3 convolution through oneDNN already runs near this CPU's float32
peak (150-167 GFLOP/s on one core against 145 for a large ``mm``), so the
float32 ``channels_last`` trunk can only get faster by doing fewer
multiplications. F(2x2, 3x3) computes each 2 x 2 block of outputs from the
4 x 4 input patch around it with 16 products per (input, output) channel
pair instead of 36 (2.25x fewer), as 16 matrix products over all tiles:
``Y = A^T [(G w G^T) (B^T d B)] A``, summed over input channels. With the
interpolation points 0, 1, -1 every coefficient is 0, +-1 or +-1/2: the
transforms are float32 additions, the filters are transformed in float64,
and results equal the direct convolution to float32 rounding (about 1e-6
relative, ``tests/test_winograd.py``).

Layout (:class:`TileGrid`). A feature map lives in a zero-bordered buffer
``(n, 2, ty + 1, 2, tx + 1, C)``: padded row ``p`` at ``[1 - p % 2, p // 2]``
(odd rows first), columns alike. Every 4 x 4 patch starts on an even padded
row and column, so the transforms read whole runs of rows and the output
transform writes the four pixels of every tile as one strided view
(:meth:`TileGrid.pixels`), where a plain channels-last map would need
element-wise work over runs of one pixel's channels. The generator's dense blocks run on these in
:mod:`xdeepbedmap.model.winograd_trunk`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "SCRATCH",
    "TileGrid",
    "WinogradConv2d",
    "transform_input",
    "transform_output",
    "winograd_filters",
]

# F(2, 3), points (0, 1, -1): G maps 3 filter taps to 4 Winograd points
_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
# the one point that A^T . A spreads with weight 1 onto all four outputs of a
# tile (row 1, column 1): a bias added to its products is added to every output
_BIAS_POINT = 5


class _Workspace(threading.local):
    """Per-thread scratch tensors, kept between calls, one per name.

    A fresh multi-megabyte tensor is new memory to the kernel: its first
    writer pays a page fault per 4 KiB page, which made the first transform
    into a dense block's 12 MB matrix cost several times the arithmetic.
    Kept per thread, so dask threads sharing one model never share scratch.
    """

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """The scratch tensor ``name`` of ``shape``; zeroed when (re)allocated, else as left.

        Buffers of a :class:`TileGrid` rely on this: their zero border is never
        written, so it stays zero from one use to the next.
        """
        found = self.tensors.get(name)
        if (
            found is None
            or found.shape != shape
            or found.dtype != like.dtype
            or found.device != like.device
        ):
            found = self.tensors[name] = like.new_zeros(shape)
        return found


SCRATCH = _Workspace()


def winograd_filters(weight: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``(C_out, C_in, 3, 3)`` filters -> ``(16, C_in, C_out)`` float32 ``G w G^T``.

    Computed in float64 (``scale`` folded in), rounded once to float32; index
    ``4 a + b`` is Winograd point (row ``a``, column ``b``).
    """
    c_out, c_in, kh, kw = weight.shape
    if (kh, kw) != (3, 3):
        raise ValueError(f"winograd_filters needs 3x3 filters, got {kh}x{kw}")
    g = torch.tensor(_G, dtype=torch.float64, device=weight.device)
    u = torch.einsum("ai,ocij,bj->abco", g, weight.detach().double() * scale, g)
    return u.reshape(16, c_in, c_out).float().contiguous()


@dataclass(frozen=True)
class TileGrid:
    """2 x 2 output tiles of an ``(n, h, w)`` map, and its zero-bordered buffer layout."""

    n: int
    h: int
    w: int

    @classmethod
    def of(cls, x: torch.Tensor) -> TileGrid:
        """The grid of an ``(N, C, H, W)`` tensor."""
        n, _, h, w = x.shape
        return cls(n, h, w)

    @property
    def ty(self) -> int:
        """Tile rows (an odd height gets one extra output row, kept at zero)."""
        return (self.h + 1) // 2

    @property
    def tx(self) -> int:
        """Tile columns."""
        return (self.w + 1) // 2

    @property
    def tiles(self) -> int:
        """Tiles in the batch."""
        return self.n * self.ty * self.tx

    def buffer(self, channels: int, like: torch.Tensor, name: str | None = None) -> torch.Tensor:
        """A ``(n, 2, ty + 1, 2, tx + 1, channels)`` buffer (module docstring), border zero.

        With ``name``, this thread's scratch buffer of that name (its pixels
        hold whatever the last user left); without, a new zeroed one.
        """
        shape = (self.n, 2, self.ty + 1, 2, self.tx + 1, channels)
        return like.new_zeros(shape) if name is None else SCRATCH.get(name, shape, like)

    def pixels(self, buffer: torch.Tensor) -> torch.Tensor:
        """The ``(2, 2, n, ty, tx, C)`` view of a buffer's pixel ``(2 ty + i, 2 tx + j)``.

        Padded row ``2 ty + i + 1`` is slot ``i``, half ``ty + i``; columns alike,
        so ``i`` and ``j`` step by a constant stride.
        """
        s_n, s_rslot, s_rhalf, s_cslot, s_chalf, s_c = buffer.stride()
        c = buffer.shape[-1]
        return buffer.as_strided(
            (2, 2, self.n, self.ty, self.tx, c),
            (s_rslot + s_rhalf, s_cslot + s_chalf, s_n, s_rhalf, s_chalf, s_c),
            buffer.storage_offset(),
        )

    def image(self, pixels: torch.Tensor) -> torch.Tensor:
        """The ``(n, 2 ty, 2 tx, C)`` image view of a :meth:`pixels` view."""
        return pixels.permute(2, 3, 0, 4, 1, 5)

    def clear_overhang(self, buffer: torch.Tensor) -> None:
        """Zero an odd size's extra output row/column (it lies in the zero padding)."""
        if self.h % 2:
            buffer[:, 1, self.ty] = 0
        if self.w % 2:
            buffer[:, :, :, 1, self.tx] = 0

    def to_buffer(self, x: torch.Tensor, name: str | None = None) -> torch.Tensor:
        """``(N, C, H, W)`` -> a zero-bordered buffer (:meth:`buffer`) holding it."""
        c = x.shape[1]
        buffer = self.buffer(c, x, name)
        nhwc = x.permute(0, 2, 3, 1)
        if (self.h, self.w) != (2 * self.ty, 2 * self.tx):
            nhwc = F.pad(nhwc, (0, 0, 0, 2 * self.tx - self.w, 0, 2 * self.ty - self.h))
        tiles = nhwc.reshape(self.n, self.ty, 2, self.tx, 2, c).permute(2, 4, 0, 1, 3, 5)
        self.pixels(buffer).copy_(tiles)
        return buffer

    def from_buffer(self, buffer: torch.Tensor) -> torch.Tensor:
        """A buffer's map as a new ``(N, C, H, W)`` channels-last tensor."""
        image = self.pixels(buffer).permute(2, 3, 0, 4, 1, 5)  # (n, ty, i, tx, j, C)
        out = image.reshape(self.n, 2 * self.ty, 2 * self.tx, -1)[:, : self.h, : self.w]
        return out.contiguous().permute(0, 3, 1, 2)


def transform_input(buffer: torch.Tensor, out: torch.Tensor) -> None:
    """``B^T d B`` of every 4 x 4 patch of a :class:`TileGrid` buffer, into ``out``.

    ``out`` is a ``(4, 4, n, ty, tx, C)`` view (a channel slice of a wider
    matrix is fine), written in place.
    """
    # a patch's rows 2t .. 2t+3 are even[t], odd[t], even[t+1], odd[t+1];
    # B^T's rows are (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
    even, odd = buffer[:, 1], buffer[:, 0]
    rows = SCRATCH.get(f"rows{even.shape[-1]}", (4, *even[:, 1:].shape), buffer)
    torch.sub(even[:, :-1], even[:, 1:], out=rows[0])
    torch.add(odd[:, :-1], even[:, 1:], out=rows[1])
    torch.sub(even[:, 1:], odd[:, :-1], out=rows[2])
    torch.sub(odd[:, :-1], odd[:, 1:], out=rows[3])
    even, odd = rows[:, :, :, 1], rows[:, :, :, 0]  # (4, n, ty, tx + 1, C)
    torch.sub(even[..., :-1, :], even[..., 1:, :], out=out[:, 0])
    torch.add(odd[..., :-1, :], even[..., 1:, :], out=out[:, 1])
    torch.sub(even[..., 1:, :], odd[..., :-1, :], out=out[:, 2])
    torch.sub(odd[..., :-1, :], odd[..., 1:, :], out=out[:, 3])


def transform_output(products: torch.Tensor, grid: TileGrid, pixels: torch.Tensor) -> None:
    """``A^T m A`` of ``(16, tiles, C)`` products into a :meth:`TileGrid.pixels` view."""
    m = products.view(4, 4, grid.n, grid.ty, grid.tx, products.shape[-1])
    # A^T's rows are (m0 + m1 + m2, m1 - m2 - m3): along columns (b) first ...
    cols = SCRATCH.get(f"cols{m.shape[-1]}", (2, *m[:, 0].shape), products)
    torch.add(m[:, 0], m[:, 1], out=cols[0]).add_(m[:, 2])
    torch.sub(m[:, 1], m[:, 2], out=cols[1]).sub_(m[:, 3])
    # ... then along rows (a), both output columns j at once
    torch.add(cols[:, 0], cols[:, 1], out=pixels[0]).add_(cols[:, 2])
    torch.sub(cols[:, 1], cols[:, 2], out=pixels[1]).sub_(cols[:, 3])


class WinogradConv2d(nn.Module):
    """A 3x3, stride-1, padding-1 ``nn.Conv2d`` by F(2x2, 3x3), float32, on buffers.

    Parameters
    ----------
    conv : nn.Conv2d
        The layer; its weights are transformed (copied) once.
    leaky_slope : float, optional
        Apply ``leaky_relu(., leaky_slope)`` to the output.
    scale : float
        Multiply the output by ``scale`` (folded into filters and bias).
    """

    def __init__(
        self, conv: nn.Conv2d, leaky_slope: float | None = None, scale: float = 1.0
    ) -> None:
        super().__init__()
        geometry = (conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups)
        if geometry != ((3, 3), (1, 1), (1, 1), (1, 1), 1) or conv.padding_mode != "zeros":
            raise ValueError(
                "WinogradConv2d needs a 3x3, stride-1, padding-1, dilation-1, groups-1 conv "
                f"with zero padding; got kernel/stride/padding/dilation/groups {geometry}, "
                f"padding_mode={conv.padding_mode!r}"
            )
        self.out_channels = conv.out_channels
        self.leaky_slope = leaky_slope
        self.register_buffer("filters", winograd_filters(conv.weight, scale))
        bias = None if conv.bias is None else (conv.bias.detach().double() * scale).float()
        self.register_buffer("bias", bias)

    def products(self, transformed: torch.Tensor) -> torch.Tensor:
        """``(16, tiles, C_in)`` transformed input (a strided channel prefix is fine) -> products.

        Returned in this thread's scratch: valid until the next call with as
        many output channels.
        """
        shape = (16, transformed.shape[1], self.out_channels)
        out = SCRATCH.get(f"products{self.out_channels}", shape, transformed)
        torch.bmm(transformed, self.filters, out=out)
        if self.bias is not None:
            out[_BIAS_POINT] += self.bias
        return out

    def into(
        self,
        products: torch.Tensor,
        grid: TileGrid,
        out: torch.Tensor,
        residual: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Output transform into the zeroed buffer ``out``, then activation or ``+ residual``."""
        pixels = grid.pixels(out)
        transform_output(products, grid, pixels)
        if residual is not None:
            pixels.add_(grid.pixels(residual))
        elif self.leaky_slope is not None:
            F.leaky_relu_(pixels, self.leaky_slope)
        grid.clear_overhang(out)
        return out

    def forward(self, x: torch.Tensor, grid: TileGrid) -> torch.Tensor:
        """A buffer in (``grid``'s layout), a new buffer out."""
        transformed = x.new_empty(4, 4, grid.n, grid.ty, grid.tx, x.shape[-1])
        transform_input(x, transformed)
        products = self.products(transformed.view(16, grid.tiles, -1))
        return self.into(products, grid, grid.buffer(self.out_channels, x))
