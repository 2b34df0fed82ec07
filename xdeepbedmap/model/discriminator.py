"""The DeepBedMap discriminator: a VGG-style critic for 250 m bed tiles."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xdeepbedmap.model.generator import LEAKY_SLOPE, he_init_

__all__ = ["Discriminator"]

# (out_channels, kernel, stride) of conv layers 1..9; each is followed by
# batch norm and LeakyReLU. Layer 0 (k3 s1, 64, with bias) has no batch norm.
_BLOCKS: tuple[tuple[int, int, int], ...] = (
    (64, 4, 2),
    (128, 3, 1),
    (128, 4, 2),
    (128, 3, 1),
    (256, 4, 2),
    (256, 3, 1),
    (512, 4, 2),
    (512, 3, 1),
    (512, 4, 2),
)


def _leaky() -> nn.LeakyReLU:
    return nn.LeakyReLU(LEAKY_SLOPE)


def _conv_out(size: int, kernel: int, stride: int, padding: int = 1) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class Discriminator(nn.Module):
    """10 Conv-BatchNorm-LeakyReLU blocks, FC 100, FC 1, no sigmoid.

    Follows the original DeepBedMap critic: the first convolution has a bias
    and no batch norm; the other nine alternate k4 s2 and k3 s1 without bias,
    each followed by batch norm (eps 1e-5) and LeakyReLU(0.2). The logits are
    meant for a relativistic-average BCE-with-logits loss.

    Parameters
    ----------
    tile_size : int
        Height and width of the 250 m tiles it judges (36 in the paper), used to
        size the first fully connected layer.
    """

    def __init__(self, tile_size: int = 36) -> None:
        super().__init__()
        self.tile_size = int(tile_size)
        layers: list[nn.Module] = [nn.Conv2d(1, 64, 3, stride=1, padding=1), _leaky()]
        channels, size = 64, self.tile_size
        for out_channels, kernel, stride in _BLOCKS:
            layers.append(nn.Conv2d(channels, out_channels, kernel, stride, padding=1, bias=False))
            layers.append(nn.BatchNorm2d(out_channels, eps=1e-5))
            layers.append(_leaky())
            channels, size = out_channels, _conv_out(size, kernel, stride)
        if size < 1:
            raise ValueError(f"tile_size {tile_size} is too small for the discriminator")
        self.features = nn.Sequential(*layers)
        self.linear_1 = nn.Linear(channels * size * size, 100)
        self.linear_2 = nn.Linear(100, 1)
        he_init_(self, scale=0.1)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Return one raw logit per tile, shape ``(N, 1)``."""
        if y.shape[-2:] != (self.tile_size, self.tile_size):
            raise ValueError(
                f"discriminator built for {self.tile_size} x {self.tile_size} tiles, "
                f"got {tuple(y.shape[-2:])}"
            )
        a = F.leaky_relu(self.linear_1(self.features(y).flatten(1)), LEAKY_SLOPE)
        return self.linear_2(a)
