"""The generator's residual trunk by Winograd F(2x2, 3x3) convolutions, float32.

:class:`WinogradTrunk` runs a :class:`~xdeepbedmap.model.generator.Generator`'s
``residual_network`` (residual-in-residual dense blocks) on the buffers of
:mod:`xdeepbedmap.model.winograd`. In a dense block the input and each
conv's output are transformed once, into their channel slice of one
``(16, tiles, C + 4 g)`` matrix, and conv ``i`` multiplies that matrix's
channel prefix, which BLAS reads in place: where oneDNN copies each
channel-prefix input of a channels-last dense block (a strided slice), here
nothing is copied. Measured on one 62 x 62 dense block, one thread: 13.2-13.5
ms with prepacked oneDNN convolutions, 11.5-12.0 ms here.
"""

from __future__ import annotations

import torch
from torch import nn

from xdeepbedmap.model.generator import LEAKY_SLOPE, ResInResDenseBlock
from xdeepbedmap.model.winograd import SCRATCH, TileGrid, WinogradConv2d, transform_input

__all__ = ["WinogradTrunk", "dense_block"]


def dense_block(
    convs: nn.ModuleList, x: torch.Tensor, grid: TileGrid, out: torch.Tensor
) -> torch.Tensor:
    """``x + conv5(dense features)`` of a residual dense block, buffer ``x`` into buffer ``out``.

    ``convs`` are its five :class:`WinogradConv2d`: four growing ones with their
    LeakyReLU, then the one back to ``x``'s width with the block's residual
    scaling folded in. ``x`` and each output are transformed once, into
    their channel slice of one ``(16, tiles, C + 4 g)`` matrix; conv ``i``
    multiplies its channel prefix in place. A dense conv's output exists only
    in one scratch buffer, the input of its own input transform.
    """
    c, growth = x.shape[-1], convs[0].out_channels
    width = c + 4 * growth
    stack = SCRATCH.get("stack", (4, 4, grid.n, grid.ty, grid.tx, width), x)
    flat = stack.view(16, grid.tiles, width)
    transform_input(x, stack[..., :c])
    grown = grid.buffer(growth, x, name="grown")
    for i, conv in enumerate(convs[:4]):
        lo = c + i * growth
        conv.into(conv.products(flat[..., :lo]), grid, grown)
        transform_input(grown, stack[..., lo : lo + growth])
    last = convs[4]
    return last.into(last.products(flat), grid, out, residual=x)


class WinogradTrunk(nn.Module):
    """A generator's ``residual_network`` as Winograd convolutions (float32, inference).

    Parameters
    ----------
    blocks : sequence of ResInResDenseBlock
        The trained blocks; their weights are transformed (copied) once.

    Notes
    -----
    ``forward(x)`` takes and returns ``(N, C, H, W)`` float32 (channels-last
    out) and equals running the blocks one after the other, to float32
    rounding. Scratch memory is kept per thread between calls
    (:data:`xdeepbedmap.model.winograd.SCRATCH`).
    """

    def __init__(self, blocks: nn.ModuleList | list[ResInResDenseBlock]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                _dense_convs(getattr(rrdb, f"residual_dense_block{k}")) for k in (1, 2, 3)
            )
            for rrdb in blocks
        )
        self.scalings = [float(rrdb.residual_scaling) for rrdb in blocks]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x -> x + s * rdb3(rdb2(rdb1(x)))`` for every block, as one float32 tensor."""
        if x.dtype != torch.float32:
            raise TypeError(f"WinogradTrunk runs float32 only, got input of dtype {x.dtype}")
        grid = TileGrid.of(x)
        h = grid.to_buffer(x, name="trunk")
        # dense blocks alternate between two scratch buffers; each block's
        # residual sum accumulates in place (zero borders stay zero: 0 + s * 0)
        pair = (grid.buffer(x.shape[1], x, "dense_a"), grid.buffer(x.shape[1], x, "dense_b"))
        for rdbs, scaling in zip(self.blocks, self.scalings, strict=True):
            y = h
            for i, convs in enumerate(rdbs):
                y = dense_block(convs, y, grid, pair[i % 2])
            h.add_(y, alpha=scaling)
        return grid.from_buffer(h)


def _dense_convs(rdb: nn.Module) -> nn.ModuleList:
    """A ``ResidualDenseBlock``'s five convs: LeakyReLU on four, residual scaling on the last."""
    convs = [WinogradConv2d(getattr(rdb, f"conv_layer{i}"), LEAKY_SLOPE) for i in range(1, 5)]
    return nn.ModuleList([*convs, WinogradConv2d(rdb.conv_layer5, scale=rdb.residual_scaling)])
