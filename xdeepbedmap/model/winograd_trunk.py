"""The generator's residual trunk by Winograd F(2x2, 3x3) convolutions, float32.

:class:`WinogradTrunk` runs a :class:`~xdeepbedmap.model.generator.Generator`'s
``residual_network`` (residual-in-residual dense blocks) on the buffers of
:mod:`xdeepbedmap.model.winograd`. In a dense block the input and each
conv's output are transformed once, into their channel slice of one
``(16, C + 4 g, tiles)`` matrix, and conv ``i`` multiplies that matrix's
channel prefix, which BLAS reads in place: where oneDNN copies each
channel-prefix input of a channels-last dense block (a strided slice), here
nothing is copied. Per 62 x 62 dense block, one thread, interleaved with the
prepacked oneDNN form (load 3-4): 13.3-16.1 ms here against 15.7-18.4 ms;
the whole forward in ``docs/precision.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from xdeepbedmap.model.generator import LEAKY_SLOPE, ResInResDenseBlock
from xdeepbedmap.model.scratch import SCRATCH
from xdeepbedmap.model.winograd import (
    Step,
    TileGrid,
    WinogradConv2d,
    input_steps,
    output_steps,
    run,
)

__all__ = ["WinogradTrunk", "dense_block"]


@dataclass
class _DensePlan:
    """A dense block's prepared views for one grid, input and output buffer."""

    grown: torch.Tensor  # the buffer of the growing convs' outputs
    inputs: list[list[Step]]  # x, then each grown output, into its stack slice
    prefixes: list[torch.Tensor]  # each conv's channel prefix of the stack
    products: list[torch.Tensor]  # each conv's products (scratch)
    grow: list[Step]  # 32-channel products -> the grown buffer's pixels
    last: list[Step]  # the last conv's products -> the output buffer's pixels
    borders: list[torch.Tensor]  # the grown buffer's border cells
    out_borders: list[torch.Tensor]  # the output buffer's


def _plan(convs: nn.ModuleList, x: torch.Tensor, grid: TileGrid, out: torch.Tensor) -> _DensePlan:
    """The cached :class:`_DensePlan` of these buffers (scratch buffers: the same objects)."""
    key = ("dense", grid, id(x), id(out), tuple(conv.out_channels for conv in convs))
    plan = SCRATCH.plans.get(key)
    if plan is not None:
        return plan
    c, growth = x.shape[0], convs[0].out_channels
    stack = SCRATCH.get("stack", (16, c + 4 * growth, grid.tiles), x)
    grown = grid.buffer(growth, x, name="grown")
    inputs = [input_steps(x, grid, stack[:, :c])]
    inputs += [
        input_steps(grown, grid, stack[:, c + i * growth : c + (i + 1) * growth]) for i in range(4)
    ]
    shapes = [(16, conv.out_channels, grid.tiles) for conv in convs]
    products = [SCRATCH.get(f"products{shape[1]}", shape, x) for shape in shapes]
    plan = _DensePlan(
        grown=grown,
        inputs=inputs,
        prefixes=[stack[:, : c + i * growth] for i in range(5)],
        products=products,
        grow=output_steps(products[0], grid, grid.pixels(grown)),
        last=output_steps(products[4], grid, grid.pixels(out)),
        borders=grid.border_views(grown),
        out_borders=grid.border_views(out),
    )
    # views keep their tensors alive: keyed by id, they never alias a new tensor
    SCRATCH.keep(key, plan)
    return plan


def dense_block(
    convs: nn.ModuleList, x: torch.Tensor, grid: TileGrid, out: torch.Tensor
) -> torch.Tensor:
    """``x + conv5(dense features)`` of a residual dense block, buffer ``x`` into buffer ``out``.

    ``convs`` are its five :class:`WinogradConv2d`: four growing ones with their
    LeakyReLU, then the one back to ``x``'s width with the block's residual
    scaling folded in. ``x`` and each output are transformed once, into
    their channel slice of one ``(16, C + 4 g, tiles)`` matrix; conv ``i``
    multiplies its channel prefix in place. A dense conv's output exists only
    in one scratch buffer, the input of its own input transform. All views
    are prepared once per buffers (:class:`_DensePlan`).
    """
    plan = _plan(convs, x, grid, out)
    run(plan.inputs[0])
    grown = plan.grown
    for i, conv in enumerate(convs[:4]):
        conv.multiply(plan.prefixes[i], plan.products[i])
        run(plan.grow)
        conv.finish(grown)
        for view in plan.borders:
            view.zero_()
        run(plan.inputs[i + 1])
    last = convs[4]
    last.multiply(plan.prefixes[4], plan.products[4])
    run(plan.last)
    last.finish(out, residual=x)
    for view in plan.out_borders:
        view.zero_()
    return out


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
        c = x.shape[1]
        pair = (grid.buffer(c, x, "dense_a"), grid.buffer(c, x, "dense_b"))
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
