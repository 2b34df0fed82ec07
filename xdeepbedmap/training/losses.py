"""The DeepBedMap losses (Leong & Horgan 2020, section 3.3).

The generator minimises a weighted sum of four terms, each on NCHW tensors in
metres:

* content: mean absolute error between prediction and truth;
* adversarial: relativistic-average GAN loss (ESRGAN), the discriminator
  judging whether a real tile looks more realistic than the average fake;
* topographic: mean absolute error between the prediction's 4 x 4 block means
  and the 1 km input bed under it, so the output stays faithful to BEDMAP2;
* structural: ``1 - SSIM`` with a 9 x 9 uniform window and the stabilising
  constants c1 = 0.01^2, c2 = 0.03^2 (the paper's values).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from xdeepbedmap.grids import OUTPUT_FACTOR

__all__ = [
    "LossWeights",
    "content_loss",
    "discriminator_loss",
    "generator_adversarial_loss",
    "generator_loss",
    "ssim",
    "structural_loss",
    "topographic_loss",
]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator's four loss terms (the paper's values by default)."""

    content: float = 1e-2
    adversarial: float = 2e-2
    topographic: float = 2e-3
    structural: float = 5.25

    def as_dict(self) -> dict[str, float]:
        """The weights by term name."""
        return asdict(self)


def content_loss(prediction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (L1)."""
    return F.l1_loss(prediction, truth)


def _relativistic(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of 'real is more realistic than the average fake' and vice versa."""
    return real - fake.mean(), fake - real.mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Relativistic-average discriminator loss: real above average fake, fake below average real."""
    real_vs_fake, fake_vs_real = _relativistic(real_logits, fake_logits)
    return F.binary_cross_entropy_with_logits(
        real_vs_fake, torch.ones_like(real_vs_fake)
    ) + F.binary_cross_entropy_with_logits(fake_vs_real, torch.zeros_like(fake_vs_real))


def generator_adversarial_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor
) -> torch.Tensor:
    """Relativistic-average generator loss: the discriminator loss with the labels swapped."""
    real_vs_fake, fake_vs_real = _relativistic(real_logits, fake_logits)
    return F.binary_cross_entropy_with_logits(
        real_vs_fake, torch.zeros_like(real_vs_fake)
    ) + F.binary_cross_entropy_with_logits(fake_vs_real, torch.ones_like(fake_vs_real))


def topographic_loss(prediction: torch.Tensor, bed: torch.Tensor) -> torch.Tensor:
    """L1 between the prediction's 4 x 4 means and the 1 km bed under it.

    ``bed`` may be the generator's whole input window (n x n); its centre
    (n-2) x (n-2), the pixels the output covers, is compared.
    """
    pooled = F.avg_pool2d(prediction, OUTPUT_FACTOR)
    dy = (bed.shape[-2] - pooled.shape[-2]) // 2
    dx = (bed.shape[-1] - pooled.shape[-1]) // 2
    core = bed[..., dy : dy + pooled.shape[-2], dx : dx + pooled.shape[-1]]
    if core.shape != pooled.shape:
        raise ValueError(
            f"bed window {tuple(bed.shape)} does not contain the prediction's "
            f"1 km footprint {tuple(pooled.shape)}"
        )
    return F.l1_loss(pooled, core)


def ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    window: int = 9,
    c1: float = 0.01**2,
    c2: float = 0.03**2,
) -> torch.Tensor:
    """Mean structural similarity of ``a`` and ``b`` over uniform ``window`` x ``window`` windows.

    Only windows inside the tile are used ('valid'). 1 for identical inputs.
    """
    mu_a = F.avg_pool2d(a, window, stride=1)
    mu_b = F.avg_pool2d(b, window, stride=1)
    var_a = F.avg_pool2d(a * a, window, stride=1) - mu_a**2
    var_b = F.avg_pool2d(b * b, window, stride=1) - mu_b**2
    cov = F.avg_pool2d(a * b, window, stride=1) - mu_a * mu_b
    numerator = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    denominator = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (numerator / denominator).mean()


def structural_loss(prediction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """``1 - SSIM`` (9 x 9 window, c1 = 0.01^2, c2 = 0.03^2)."""
    return 1.0 - ssim(prediction, truth)


def generator_loss(
    prediction: torch.Tensor,
    truth: torch.Tensor,
    bed: torch.Tensor,
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    weights: LossWeights | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted generator loss and its unweighted terms (for logging)."""
    weights = weights or LossWeights()
    terms = {
        "content": content_loss(prediction, truth),
        "adversarial": generator_adversarial_loss(real_logits, fake_logits),
        "topographic": topographic_loss(prediction, bed),
        "structural": structural_loss(prediction, truth),
    }
    total = sum(getattr(weights, name) * value for name, value in terms.items())
    return total, {name: float(value.detach()) for name, value in terms.items()}
