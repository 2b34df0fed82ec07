"""The DeepBedMap generator (Leong & Horgan 2020) as a torch module.

Module and parameter names follow the original Chainer links
(``input_block.conv_on_X``, ``residual_network.0.residual_dense_block1.conv_layer1``,
``final_conv_layer1.offset_conv`` ...) so that published weights map onto it
one to one (see :mod:`xdeepbedmap.model.chainer_weights`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from xdeepbedmap.model.deform_conv import DeformConv2d

__all__ = ["Generator", "InputBlock", "ResidualDenseBlock", "ResInResDenseBlock", "he_init_"]

#: Negative slope of every LeakyReLU in DeepBedMap.
LEAKY_SLOPE = 0.2


def _leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LEAKY_SLOPE)


def _conv3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3x3 'same' convolution."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


def he_init_(module: nn.Module, scale: float = 0.1) -> nn.Module:
    """Initialise weights He-normal (fan-in) times ``scale``, biases zero.

    This is the paper's initialisation (Chainer's ``HeNormal(scale=0.1)``):
    small residual branches make deep RRDB stacks start close to identity.
    """
    for sub in module.modules():
        weight = getattr(sub, "weight", None)
        if isinstance(weight, nn.Parameter) and weight.ndim >= 2:
            fan_in = weight[0].numel()
            with torch.no_grad():
                weight.normal_(0.0, scale * (2.0 / fan_in) ** 0.5)
        bias = getattr(sub, "bias", None)
        if isinstance(bias, nn.Parameter):
            with torch.no_grad():
                bias.zero_()
    return module


#: Keys of ``input_scaling``, in generator argument order.
SCALED_INPUTS = ("bed", "surface", "velocity", "accumulation")


def _check_scaling(
    scaling: dict[str, tuple[float, float]] | None,
) -> dict[str, tuple[float, float]] | None:
    if scaling is None:
        return None
    if set(scaling) != set(SCALED_INPUTS):
        raise ValueError(f"input_scaling needs keys {SCALED_INPUTS}, got {sorted(scaling)}")
    checked = {}
    for key in SCALED_INPUTS:
        offset, scale = (float(v) for v in scaling[key])
        if not scale > 0:
            raise ValueError(f"input_scaling[{key!r}]: scale must be > 0, got {scale}")
        checked[key] = (offset, scale)
    return checked


def bilinear_bed(bed: torch.Tensor) -> torch.Tensor:
    """Bilinear 4x upsampling of an n x n bed window onto its 4(n-2) x 4(n-2) output pixels.

    The one-pixel border supplies the neighbours of the edge sub-pixels, so
    the result is the same whether a region is cut into windows or not.
    """
    up = F.interpolate(bed, scale_factor=4, mode="bilinear", align_corners=False)
    return up[..., 4:-4, 4:-4]


class InputBlock(nn.Module):
    """Bring the four inputs onto one 1 km feature grid ('valid' convolutions).

    Each kernel spans 3 x 3 km with a 1 km stride: k3 s1 on the 1 km bed
    (``x``), k30 s10 on the 100 m surface (``w1``), k6 s2 on the 500 m
    velocity (``w2``, two channels vx, vy), k3 s1 on the 1 km accumulation
    (``w3``). An n x n base window becomes (n-2) x (n-2) x 128 features.
    """

    def __init__(self, out_channels: int = 32, velocity_channels: int = 2) -> None:
        super().__init__()
        self.conv_on_X = nn.Conv2d(1, out_channels, 3, stride=1)
        self.conv_on_W1 = nn.Conv2d(1, out_channels, 30, stride=10)
        self.conv_on_W2 = nn.Conv2d(velocity_channels, out_channels, 6, stride=2)
        self.conv_on_W3 = nn.Conv2d(1, out_channels, 3, stride=1)

    def forward(
        self, x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor
    ) -> torch.Tensor:
        """Concatenate the four convolved inputs along channels."""
        return torch.cat(
            (self.conv_on_X(x), self.conv_on_W1(w1), self.conv_on_W2(w2), self.conv_on_W3(w3)),
            dim=1,
        )


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs with a scaled residual connection."""

    def __init__(self, channels: int = 64, growth: int = 32, residual_scaling: float = 0.2):
        super().__init__()
        self.residual_scaling = residual_scaling
        self.conv_layer1 = _conv3(channels, growth)
        self.conv_layer2 = _conv3(channels + growth, growth)
        self.conv_layer3 = _conv3(channels + 2 * growth, growth)
        self.conv_layer4 = _conv3(channels + 3 * growth, growth)
        self.conv_layer5 = _conv3(channels + 4 * growth, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``conv5(dense features) * s + x``."""
        feats = x
        for conv in (self.conv_layer1, self.conv_layer2, self.conv_layer3, self.conv_layer4):
            feats = torch.cat((feats, _leaky(conv(feats))), dim=1)
        return self.conv_layer5(feats) * self.residual_scaling + x


class ResInResDenseBlock(nn.Module):
    """Three residual dense blocks wrapped in another scaled residual."""

    def __init__(self, channels: int = 64, residual_scaling: float = 0.2) -> None:
        super().__init__()
        self.residual_scaling = residual_scaling
        self.residual_dense_block1 = ResidualDenseBlock(channels, residual_scaling=residual_scaling)
        self.residual_dense_block2 = ResidualDenseBlock(channels, residual_scaling=residual_scaling)
        self.residual_dense_block3 = ResidualDenseBlock(channels, residual_scaling=residual_scaling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``block3(block2(block1(x))) * s + x``."""
        out = self.residual_dense_block3(self.residual_dense_block2(self.residual_dense_block1(x)))
        return out * self.residual_scaling + x


class Generator(nn.Module):
    """DeepBedMap generator: 1 km bed + surface, velocity, accumulation -> 250 m bed.

    Parameters
    ----------
    num_residual_blocks : int
        Number of residual-in-residual dense blocks (12 in the published model).
    residual_scaling : float
        Scaling of every residual branch (0.2 in the published model).
    input_scaling : dict, optional
        ``{"bed": (offset, scale), "surface": ..., "velocity": ...,
        "accumulation": ...}``: standardise each input as ``(v - offset) /
        scale`` and map the output back with the bed's pair. Not part of the
        published model (which takes raw units); it lets a model trained from
        scratch start at the right scale. Stored in checkpoints.
    bed_skip : bool
        Add the bilinear upsampling of the 1 km bed to the output, so the
        network learns only the detail the 1 km grid lacks (not in the
        published model).

    Notes
    -----
    An ``n x n`` base-grid window (``x``, ``w3``: n x n; ``w1``: 10n x 10n;
    ``w2``: 2 channels of 2n x 2n) gives a ``4(n-2) x 4(n-2)`` output: the
    'valid' input block drops one base pixel on each side, the rest is 'same'.
    With 12 blocks the model has 8,907,749 parameters.
    """

    #: Base-grid pixels lost on each side of a window by the 'valid' input block.
    border = 1
    #: Output pixels per base pixel along each axis.
    upscale = 4

    def __init__(
        self,
        num_residual_blocks: int = 12,
        residual_scaling: float = 0.2,
        input_scaling: dict[str, tuple[float, float]] | None = None,
        bed_skip: bool = False,
    ) -> None:
        super().__init__()
        if num_residual_blocks < 1:
            raise ValueError(f"num_residual_blocks must be >= 1, got {num_residual_blocks}")
        self.num_residual_blocks = int(num_residual_blocks)
        self.residual_scaling = float(residual_scaling)
        self.input_scaling = _check_scaling(input_scaling)
        self.bed_skip = bool(bed_skip)
        self.input_block = InputBlock()
        self.pre_residual_conv_layer = _conv3(128, 64)
        self.residual_network = nn.Sequential(
            *(ResInResDenseBlock(64, residual_scaling) for _ in range(num_residual_blocks))
        )
        self.post_residual_conv_layer = _conv3(64, 64)
        self.post_upsample_conv_layer_1 = _conv3(64, 64)
        self.post_upsample_conv_layer_2 = _conv3(64, 64)
        self.final_conv_layer1 = DeformConv2d(64, 64)
        self.final_conv_layer2 = DeformConv2d(64, 1)
        he_init_(self, scale=0.1)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The arguments that rebuild this architecture."""
        out: dict[str, Any] = {
            "num_residual_blocks": self.num_residual_blocks,
            "residual_scaling": self.residual_scaling,
        }
        # the published architecture has neither; only record them when used
        if self.input_scaling is not None:
            out["input_scaling"] = {k: list(v) for k, v in self.input_scaling.items()}
        if self.bed_skip:
            out["bed_skip"] = True
        return out

    def forward(
        self, x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor
    ) -> torch.Tensor:
        """Super-resolve one batch of windows.

        Parameters
        ----------
        x : torch.Tensor
            1 km bed, ``(N, 1, n, n)`` (any n x m window works the same way).
        w1 : torch.Tensor
            100 m surface, ``(N, 1, 10n, 10m)``.
        w2 : torch.Tensor
            500 m velocity (vx, vy), ``(N, 2, 2n, 2m)``.
        w3 : torch.Tensor
            1 km accumulation, ``(N, 1, n, m)``.

        Returns
        -------
        torch.Tensor
            250 m bed, ``(N, 1, 4(n-2), 4(m-2))``.
        """
        bed = x
        if self.input_scaling is not None:
            x, w1, w2, w3 = (
                (t - offset) / scale
                for t, (offset, scale) in zip(
                    (x, w1, w2, w3), (self.input_scaling[k] for k in SCALED_INPUTS), strict=True
                )
            )
        a1 = _leaky(self.pre_residual_conv_layer(self.input_block(x, w1, w2, w3)))
        a3 = a1 + self.post_residual_conv_layer(self.residual_network(a1))
        up = F.interpolate(a3, scale_factor=2, mode="nearest")
        up = _leaky(self.post_upsample_conv_layer_1(up))
        up = F.interpolate(up, scale_factor=2, mode="nearest")
        up = _leaky(self.post_upsample_conv_layer_2(up))
        y = self.final_conv_layer2(_leaky(self.final_conv_layer1(up)))
        if self.input_scaling is not None:
            offset, scale = self.input_scaling["bed"]
            y = y * scale + (0.0 if self.bed_skip else offset)
        if self.bed_skip:
            y = y + bilinear_bed(bed)
        return y

    @staticmethod
    def output_shape(height: int, width: int) -> tuple[int, int]:
        """Output size of an ``height x width`` base-grid window."""
        if height < 3 or width < 3:
            raise ValueError(f"a window needs at least 3 x 3 base pixels, got {height} x {width}")
        return 4 * (height - 2), 4 * (width - 2)
