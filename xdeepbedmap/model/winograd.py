"""3x3 'same' convolutions by Winograd's F(2x2, 3x3) algorithm, float32, on tile buffers.

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

The transforms are element-wise torch operations, whose cost is set by how
long their contiguous runs are (a run of one pixel's 32 channels costs as
much per run as 1,000 values). So a feature map lives channel-major in a
zero-bordered buffer ``(C, 2, n, 2, ty + 2, tx + 1)`` (:class:`TileGrid`):
padded column ``q`` at column slot ``1 - q % 2``, half ``q // 2``, rows
alike (odd rows and columns first), one spare row half per row slot. Every
4 x 4 patch starts on an even row and column, so with one spare tile per
tile row (whose results are discarded) both transforms run over whole
planes, ``n * ty * (tx + 1)`` values at a time, and the transformed
features are a ``(16, C, tiles)`` matrix whose channel prefixes are
contiguous.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xdeepbedmap.model.packed_conv import require_plain_3x3
from xdeepbedmap.model.scratch import SCRATCH

__all__ = [
    "TileGrid",
    "Step",
    "WinogradConv2d",
    "input_steps",
    "output_steps",
    "run",
    "transform_input",
    "transform_output",
    "winograd_filters",
]

# F(2, 3), points (0, 1, -1): G maps 3 filter taps to 4 Winograd points
_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
# Winograd point (row 1, column 1)
_BIAS_POINT = 5


def winograd_filters(weight: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``(C_out, C_in, 3, 3)`` filters -> ``(16, C_out, C_in)`` float32 ``G w G^T``.

    Computed in float64 (``scale`` folded in), rounded once to float32; index
    ``4 a + b`` is Winograd point (row ``a``, column ``b``).
    """
    c_out, c_in, kh, kw = weight.shape
    if (kh, kw) != (3, 3):
        raise ValueError(f"winograd_filters needs 3x3 filters, got {kh}x{kw}")
    g = torch.tensor(_G, dtype=torch.float64, device=weight.device)
    u = torch.einsum("ai,ocij,bj->aboc", g, weight.detach().double() * scale, g)
    return u.reshape(16, c_out, c_in).float().contiguous()


@dataclass(frozen=True)
class TileGrid:
    """2 x 2 output tiles of an ``(n, h, w)`` map, and its buffer layout (module docstring)."""

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
        """Tile columns with pixels."""
        return (self.w + 1) // 2

    @property
    def tiles(self) -> int:
        """Tiles computed: ``n * ty * (tx + 1)``, one spare per tile row."""
        return self.n * self.ty * (self.tx + 1)

    def buffer(self, channels: int, like: torch.Tensor, name: str | None = None) -> torch.Tensor:
        """A ``(C, 2, n, 2, ty + 2, tx + 1)`` buffer with a zero border.

        With ``name``, this thread's scratch buffer of that name (its pixels
        hold whatever the last user left); without, a new zeroed one.
        """
        shape = (channels, 2, self.n, 2, self.ty + 2, self.tx + 1)
        return like.new_zeros(shape) if name is None else SCRATCH.get(name, shape, like)

    def pixels(self, buffer: torch.Tensor, spare: bool = True) -> torch.Tensor:
        """The ``(2, 2, C, n, ty, tx [+ 1])`` view of pixel ``(2 ty + i, 2 tx + j)``.

        Padded row ``2 ty + i + 1`` is row slot ``i``, half ``ty + i``; columns
        alike, so ``i`` and ``j`` step by a constant stride. With ``spare``,
        the spare tile column too: its values land in the border and the
        next row's first cell, which :meth:`clear` zeroes again.
        """
        s_c, s_cslot, s_n, s_rslot, s_rhalf, s_chalf = buffer.stride()
        return buffer.as_strided(
            (2, 2, buffer.shape[0], self.n, self.ty, self.tx + int(spare)),
            (s_rslot + s_rhalf, s_cslot + s_chalf, s_c, s_n, s_rhalf, s_chalf),
            buffer.storage_offset(),
        )

    def border_views(self, buffer: torch.Tensor) -> list[torch.Tensor]:
        """The border cells the spare tiles write, and an odd size's overhang (:meth:`clear`)."""
        views = [buffer[:, 0, :, :, :, self.tx], buffer[:, 1, :, :, :, 0]]  # right, left
        if self.w % 2:
            views.append(buffer[:, 1, :, :, :, self.tx])
        if self.h % 2:
            views.append(buffer[:, :, :, 1, self.ty])
        return views

    def clear(self, buffer: torch.Tensor) -> None:
        """Zero the border cells the spare tiles wrote, and an odd size's overhang."""
        for view in self.border_views(buffer):
            view.zero_()

    def to_buffer(self, x: torch.Tensor, name: str | None = None) -> torch.Tensor:
        """``(N, C, H, W)`` -> a buffer (:meth:`buffer`) holding it."""
        c = x.shape[1]
        buffer = self.buffer(c, x, name)
        nhwc = x.permute(0, 2, 3, 1)
        if (self.h, self.w) != (2 * self.ty, 2 * self.tx):
            nhwc = F.pad(nhwc, (0, 0, 0, 2 * self.tx - self.w, 0, 2 * self.ty - self.h))
        tiles = nhwc.reshape(self.n, self.ty, 2, self.tx, 2, c).permute(2, 4, 5, 0, 1, 3)
        self.pixels(buffer, spare=False).copy_(tiles)
        return buffer

    def from_buffer(self, buffer: torch.Tensor) -> torch.Tensor:
        """A buffer's map as a new ``(N, C, H, W)`` channels-last tensor."""
        image = self.pixels(buffer, spare=False).permute(3, 4, 0, 5, 1, 2)  # n, ty, i, tx, j, C
        out = image.reshape(self.n, 2 * self.ty, 2 * self.tx, -1)[:, : self.h, : self.w]
        return out.contiguous().permute(0, 3, 1, 2)


#: One element-wise operation: ``fn(a, b, out=out)``.
Step = tuple[Callable[..., torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]


def run(steps: list[Step]) -> None:
    """Run prepared :data:`Step` s in order."""
    for fn, a, b, out in steps:
        fn(a, b, out=out)


def input_steps(buffer: torch.Tensor, grid: TileGrid, out: torch.Tensor) -> list[Step]:
    """The steps of ``B^T d B`` of every 4 x 4 patch of a buffer, into ``out``.

    ``out`` is a ``(16, C, tiles)`` view (a channel slice of a wider matrix
    is fine), written but for the last tile (a spare). Built once per
    buffer, the steps are 8 operations on prepared views: the transforms
    are short enough that Python's indexing cost as much as the arithmetic.
    """
    # a patch's rows 2t .. 2t+3 are even[t], odd[t], even[t+1], odd[t+1];
    # B^T's rows are (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
    even, odd = buffer[:, :, :, 1, : grid.ty + 1], buffer[:, :, :, 0, : grid.ty + 1]
    rows = SCRATCH.get(f"rows{buffer.shape[0]}", (4, *even[..., 1:, :].shape), buffer)
    e0, e1, o0, o1 = even[..., :-1, :], even[..., 1:, :], odd[..., :-1, :], odd[..., 1:, :]
    steps: list[Step] = [
        (torch.sub, e0, e1, rows[0]),
        (torch.add, o0, e1, rows[1]),
        (torch.sub, e1, o0, rows[2]),
        (torch.sub, o0, o1, rows[3]),
    ]
    # columns alike, over whole planes: a tile row's spare reads the next row
    even, odd = rows[:, :, 1].flatten(2), rows[:, :, 0].flatten(2)  # (4, C, tiles)
    cols = out.view(4, 4, *out.shape[1:])[..., : even.shape[-1] - 1]
    e0, e1, o0, o1 = even[..., :-1], even[..., 1:], odd[..., :-1], odd[..., 1:]
    return steps + [
        (torch.sub, e0, e1, cols[:, 0]),
        (torch.add, o0, e1, cols[:, 1]),
        (torch.sub, e1, o0, cols[:, 2]),
        (torch.sub, o0, o1, cols[:, 3]),
    ]


def output_steps(products: torch.Tensor, grid: TileGrid, pixels: torch.Tensor) -> list[Step]:
    """The steps of ``A^T m A`` of ``(16, C, tiles)`` products into a ``TileGrid.pixels`` view."""
    c = products.shape[1]
    m = products.view(4, 4, c, grid.n, grid.ty, grid.tx + 1)
    # A^T's rows are (m0 + m1 + m2, m1 - m2 - m3): along columns (b) first ...
    cols = SCRATCH.get(f"cols{c}", (2, *m[:, 0].shape), products)
    m0, m1, m2, m3 = m.unbind(1)
    # ... then along rows (a), both output columns j at once
    c0, c1, c2, c3 = cols.unbind(1)
    return [
        (torch.add, m0, m1, cols[0]),
        (torch.add, cols[0], m2, cols[0]),
        (torch.sub, m1, m2, cols[1]),
        (torch.sub, cols[1], m3, cols[1]),
        (torch.add, c0, c1, pixels[0]),
        (torch.add, pixels[0], c2, pixels[0]),
        (torch.sub, c1, c2, pixels[1]),
        (torch.sub, pixels[1], c3, pixels[1]),
    ]


def transform_input(buffer: torch.Tensor, grid: TileGrid, out: torch.Tensor) -> None:
    """``B^T d B`` of every 4 x 4 patch of a buffer into ``out`` (:func:`input_steps`)."""
    run(input_steps(buffer, grid, out))


def transform_output(products: torch.Tensor, grid: TileGrid, pixels: torch.Tensor) -> None:
    """``A^T m A`` of products into a pixels view (:func:`output_steps`)."""
    run(output_steps(products, grid, pixels))


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
        require_plain_3x3(conv, "WinogradConv2d")
        self.out_channels = conv.out_channels
        self.leaky_slope = leaky_slope
        self.register_buffer("filters", winograd_filters(conv.weight, scale))
        bias = None if conv.bias is None else (conv.bias.detach().double() * scale).float()
        bias = None if bias is None else bias[:, None]  # one column: broadcast over tiles
        self.register_buffer("bias", bias)

    def multiply(self, transformed: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``(16, C_in, tiles)`` transformed input (a channel prefix) -> ``(16, C_out, tiles)``."""
        torch.bmm(self.filters, transformed, out=out)
        if self.bias is not None:
            # the one point that A^T . A spreads with weight 1 onto all four
            # outputs of a tile: its bias is added to every output
            out[_BIAS_POINT].add_(self.bias)
        return out

    def products(self, transformed: torch.Tensor) -> torch.Tensor:
        """:meth:`multiply` into this thread's scratch (valid until the next such call)."""
        shape = (16, self.out_channels, transformed.shape[-1])
        return self.multiply(transformed, SCRATCH.get(f"products{shape[1]}", shape, transformed))

    def finish(self, out: torch.Tensor, residual: torch.Tensor | None = None) -> None:
        """Activation or ``+ residual`` (a buffer), over whole buffers.

        Borders are 0 (+ 0) and LeakyReLU(0) = 0; the spare row halves hold
        leftovers that nothing reads. The spare tiles' border cells are not
        cleared here (:meth:`TileGrid.clear`).
        """
        if residual is not None:
            out.add_(residual)
        elif self.leaky_slope is not None:
            F.leaky_relu_(out, self.leaky_slope)

    def into(
        self,
        products: torch.Tensor,
        grid: TileGrid,
        out: torch.Tensor,
        residual: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Output transform into buffer ``out``, activation or ``+ residual``, border cleared."""
        transform_output(products, grid, grid.pixels(out))
        self.finish(out, residual)
        grid.clear(out)
        return out

    def forward(self, x: torch.Tensor, grid: TileGrid) -> torch.Tensor:
        """A buffer in (``grid``'s layout), a new buffer out."""
        transformed = x.new_zeros(16, x.shape[0], grid.tiles)
        transform_input(x, grid, transformed)
        return self.into(self.products(transformed), grid, grid.buffer(self.out_channels, x))
