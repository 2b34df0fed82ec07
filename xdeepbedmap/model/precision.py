"""Fast inference forms of a :class:`Generator`: channels-last and mixed precision.

``Generator.forward`` is the float32 reference (the Chainer parity tests run
it). :class:`FastGenerator` wraps a trained generator for inference without
changing it:

* ``"float32"``: the generator itself, unchanged;
* ``"channels_last"``: float32 throughout, weights and features channels-last
  (oneDNN's fast layout), convolutions with prepacked weights and fused
  LeakyReLU / residual sums (:mod:`xdeepbedmap.model.packed_conv`), on CPU
  the residual trunk by Winograd F(2x2, 3x3) convolutions
  (:mod:`xdeepbedmap.model.winograd_trunk`) and each upsampling + conv as
  one 2x2 convolution per phase (:mod:`xdeepbedmap.model.upsample_conv`),
  deformable convs by row gathers;
  equal to float32 up to rounding (~1e-6 relative);
* ``"mixed"``: the convolutions in ``bfloat16`` (CPU, AMX) or ``float16``
  (CUDA tensor cores), channels-last. Everything that carries metres or pixel
  positions stays float32: the input standardisation and the input block
  (inputs in raw metres would lose up to 16 m to an 8-bit mantissa), the
  deformable sampling positions and bilinear weights (a position of 247.3 px
  would move by up to 1 px), the final 64 -> 1 layer's projection and
  sampling, the output scaling and the bilinear bed skip.

:func:`resolve_precision` turns ``"auto"`` into the fastest form whose
measured error is inside the documented bound (``docs/precision.md``).
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.model.forms import default_forms
from xdeepbedmap.model.generator import (
    LEAKY_SLOPE,
    SCALED_INPUTS,
    Generator,
    bilinear_bed,
)
from xdeepbedmap.model.packed_conv import fused_ops_work, pack_generator
from xdeepbedmap.model.packed_forward import deform_forward, drop_unused, rrdb_forward
from xdeepbedmap.model.upsample_conv import UpsampleConv2d
from xdeepbedmap.model.winograd_trunk import WinogradTrunk

__all__ = [
    "PRECISIONS",
    "FastGenerator",
    "PrecisionError",
    "resolve_precision",
]

Precision = Literal["float32", "channels_last", "mixed"]
#: Inference forms, slowest and most exact first.
PRECISIONS: tuple[str, ...] = ("float32", "channels_last", "mixed")

_CL = torch.channels_last


class PrecisionError(XDeepBedMapError, ValueError):
    """An unknown precision, or one the device cannot run."""


def _mixed_dtype(device: torch.device) -> torch.dtype:
    """Half-precision type of the ``mixed`` form: float16 on CUDA, bfloat16 elsewhere."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def _half_dtype(half_dtype: torch.dtype | None, device: torch.device) -> torch.dtype:
    """The mixed form's convolution type: ``half_dtype`` checked, or the device's default."""
    if half_dtype is None:
        return _mixed_dtype(device)
    if half_dtype not in (torch.bfloat16, torch.float16):
        raise PrecisionError(
            f"half_dtype must be torch.bfloat16 or torch.float16, got {half_dtype}"
        )
    if half_dtype == torch.float16 and device.type != "cuda":
        raise PrecisionError(
            f"half_dtype float16 needs a CUDA device, got {device}; use torch.bfloat16 on CPU"
        )
    return half_dtype


def _cpu_has_fast_bfloat16() -> bool:
    """Whether oneDNN runs bfloat16 convolutions natively (AVX512-BF16 or AMX)."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(torch.backends.mkldnn.is_available() and check is not None and check())


def resolve_precision(precision: str, device: str | torch.device = "cpu") -> Precision:
    """Validate ``precision``; turn ``"auto"`` into the form to use on ``device``.

    ``"auto"`` picks ``"mixed"`` only where its error against float32 was
    measured inside the bound of ``docs/precision.md`` (RMS <= 1 m, max <= 10 m
    on the demo region): CPUs with native bfloat16. Elsewhere it picks
    ``"channels_last"`` (same numbers as float32, faster). CUDA float16 has
    not been measured yet, so CUDA gets ``"channels_last"`` too.
    """
    device = torch.device(device)
    if precision == "auto":
        if device.type == "cpu" and _cpu_has_fast_bfloat16():
            return "mixed"
        return "channels_last"
    if precision not in PRECISIONS:
        raise PrecisionError(f"precision must be 'auto' or one of {PRECISIONS}, got {precision!r}")
    return precision  # type: ignore[return-value]


class FastGenerator(nn.Module):
    """Inference-only wrapper running a :class:`Generator` in a faster form.

    Parameters
    ----------
    generator : Generator
        A trained generator; it is copied, never modified.
    precision : {"auto", "float32", "channels_last", "mixed"}
        See the module docstring and :func:`resolve_precision`.
    device : str or torch.device, optional
        Device to run on (default: the generator's).
    float32_blocks : int
        ``"mixed"`` only: how many leading residual blocks run wholly in
        float32 (convolutions included). Their rounding errors pass through
        every later block. With the float32 skip path, 0 is within the bound
        on the demo region (land: 0.74 m RMS, 3.8 m max; 1 block: 0.43 m,
        2.4 m, ~8% slower); without it, block 1 needs float32 (0 blocks: 1.5 m
        RMS).
    half_dtype : torch.dtype, optional
        ``"mixed"`` only: the convolutions' type, ``torch.bfloat16`` or
        ``torch.float16`` (default: float16 on CUDA, bfloat16 elsewhere).
        float16 needs CUDA (CPUs have no fast float16 convolutions).
    float32_skip : bool
        ``"mixed"`` only: keep the residual trunk (each dense block's input and
        the scaled residual sums) in float32 and round only the convolutions'
        inputs and outputs to the half type. A residual sum adds a small
        update to a large feature; rounded to bfloat16 the feature loses the
        update's low bits (``False`` is the previous form).
    fewer_products : bool, optional
        ``"channels_last"`` only: the residual trunk by Winograd F(2x2, 3x3)
        convolutions and each upsampling + conv pair as one 2x2 convolution
        per output phase (2.25x fewer products each, float32 rounding).
        Default: on CPU, where float32 oneDNN convolutions already run at the
        core's peak; ``False`` is the previous form (direct convolutions).
    phase_upsample : bool, optional
        Each nearest 2x upsampling + 3x3 conv as one 2x2 convolution per
        output phase (:mod:`xdeepbedmap.model.upsample_conv`). Default: with
        ``fewer_products``, and for ``"mixed"`` on CPU; ``False`` upsamples,
        then convolves. Fixed at construction: the layers a form does not run
        are not kept.

    Notes
    -----
    Call it like the generator: float32 NCHW tensors in, a float32
    ``(N, 1, 4(n-2), 4(m-2))`` tensor out. It is meant for
    ``torch.inference_mode()``; it does not train.
    """

    def __init__(
        self,
        generator: Generator,
        precision: str = "auto",
        device: str | torch.device | None = None,
        float32_blocks: int = 0,
        half_dtype: torch.dtype | None = None,
        float32_skip: bool = True,
        fewer_products: bool | None = None,
        phase_upsample: bool | None = None,
    ) -> None:
        super().__init__()
        if device is None:
            device = next(generator.parameters()).device
        device = torch.device(device)
        if not 0 <= float32_blocks <= generator.num_residual_blocks:
            raise PrecisionError(
                f"float32_blocks must be in [0, {generator.num_residual_blocks}], "
                f"got {float32_blocks}"
            )
        self.float32_blocks = int(float32_blocks)
        self.float32_skip = bool(float32_skip)
        self.precision: Precision = resolve_precision(precision, device)
        self.compute_dtype = torch.float32
        if self.precision == "mixed":
            self.compute_dtype = _half_dtype(half_dtype, device)
        default_fewer, default_phase = default_forms(self.precision, device)
        if fewer_products is None:
            fewer_products = default_fewer
        if fewer_products and self.precision != "channels_last":
            raise PrecisionError(
                f"fewer_products=True needs precision 'channels_last', got {self.precision!r}"
            )
        self.fewer_products = bool(fewer_products)
        # the phase form of the upsampling convs also pays in bfloat16 on CPU (mixed)
        if phase_upsample is None:
            phase_upsample = self.fewer_products or default_phase
        self.phase_upsample = bool(phase_upsample)
        reference = copy.deepcopy(generator).to(device).eval().requires_grad_(False)
        # only the float32 form runs it; the others keep its weights in the forms below
        self.reference = reference if self.precision == "float32" else None
        if self.precision == "float32":
            return
        # float32 copy, channels-last, for the parts that carry metres/positions
        self.exact = pack_generator(copy.deepcopy(reference).to(memory_format=_CL))
        # compute-dtype copy for the convolutions (shares nothing with the above)
        self.fast = pack_generator(
            copy.deepcopy(reference).to(self.compute_dtype, memory_format=_CL)
        )
        if self.fewer_products:
            self.trunk = WinogradTrunk(reference.residual_network)
        if self.phase_upsample:
            fused = device.type == "cpu" and fused_ops_work(self.compute_dtype)
            layers = (reference.post_upsample_conv_layer_1, reference.post_upsample_conv_layer_2)
            self.upsample = nn.ModuleList(
                UpsampleConv2d(c, LEAKY_SLOPE, fused, dtype=self.compute_dtype) for c in layers
            )
        drop_unused(self.exact, self.fast, self._trunk_blocks(), self.phase_upsample)

    def extra_repr(self) -> str:
        """Show the form and compute dtype in ``repr``."""
        return (
            f"precision={self.precision!r}, compute_dtype={self.compute_dtype}, "
            f"fewer_products={self.fewer_products}"
        )

    def forward(
        self, x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor
    ) -> torch.Tensor:
        """Super-resolve one batch of windows (as :meth:`Generator.forward`)."""
        if self.precision == "float32":
            return self.reference(x, w1, w2, w3)
        exact, fast, dtype = self.exact, self.fast, self.compute_dtype
        bed = x
        inputs = [t.float().contiguous(memory_format=_CL) for t in (x, w1, w2, w3)]
        if exact.input_scaling is not None:
            scaling = (exact.input_scaling[k] for k in SCALED_INPUTS)
            inputs = [(t - off) / scale for t, (off, scale) in zip(inputs, scaling, strict=True)]
        # float32 up to a1: the input block sees metres, and a1 is a small sum of
        # large input-block features (rounding them to bfloat16 alone cost 1.4 m RMS)
        a1 = exact.pre_residual_conv_layer(exact.input_block(*inputs))  # LeakyReLU fused
        h = self.trunk(a1) if self.fewer_products else self._trunk(a1)
        a3 = exact.post_residual_conv_layer(h.float(), residual=a1)
        if self.phase_upsample:
            up = self.upsample[1](self.upsample[0](a3.to(dtype)))
        else:
            up = F.interpolate(a3.to(dtype), scale_factor=2, mode="nearest")
            up = fast.post_upsample_conv_layer_1(up)  # LeakyReLU fused, as below
            up = F.interpolate(up, scale_factor=2, mode="nearest")
            up = fast.post_upsample_conv_layer_2(up)
        up = F.leaky_relu_(deform_forward(fast.final_conv_layer1, up), LEAKY_SLOPE)
        y = deform_forward(exact.final_conv_layer2, up, offset_layer=fast.final_conv_layer2)
        y = y.float().contiguous()
        if exact.input_scaling is not None:
            offset, scale = exact.input_scaling["bed"]
            y = y * scale + (0.0 if exact.bed_skip else offset)
        if exact.bed_skip:
            y = y + bilinear_bed(bed.float())
        return y

    def _trunk_blocks(self) -> tuple[range, range]:
        """The residual blocks :meth:`_trunk` runs from the float32 and the compute-dtype copy."""
        n = len(self.exact.residual_network)
        if self.fewer_products:  # the Winograd trunk replaces every direct-convolution block
            return range(0), range(0)
        return range(self.float32_blocks), range(self.float32_blocks, n)

    def _trunk(self, a1: torch.Tensor) -> torch.Tensor:
        """The residual trunk by (prepacked, fused) direct convolutions."""
        h = a1
        for i, block in enumerate(self.exact.residual_network):
            # the first blocks' rounding errors are amplified most downstream
            if i >= self.float32_blocks:
                block = self.fast.residual_network[i]
                h = h if self.float32_skip else h.to(self.compute_dtype)
            h = rrdb_forward(block, h)
        return h
