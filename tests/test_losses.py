"""The paper's four loss terms on cases whose answer is known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from xdeepbedmap.training.losses import (
    LossWeights,
    content_loss,
    discriminator_loss,
    generator_adversarial_loss,
    generator_loss,
    ssim,
    structural_loss,
    topographic_loss,
)


def test_content_loss_is_mean_absolute_error():
    a = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    b = torch.tensor([[[[2.0, 2.0], [1.0, 8.0]]]])
    assert content_loss(a, b).item() == pytest.approx((1 + 0 + 2 + 4) / 4)


@given(seed=st.integers(0, 1000), shift=st.floats(-500, 500))
def test_ssim_of_identical_images_is_one(seed, shift):
    image = torch.randn(2, 1, 20, 20, generator=torch.Generator().manual_seed(seed)) * 50 + shift
    assert ssim(image, image).item() == pytest.approx(1.0, abs=1e-5)
    assert structural_loss(image, image).item() == pytest.approx(0.0, abs=1e-5)


def test_ssim_of_uncorrelated_or_inverted_images():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(1, 1, 64, 64, generator=gen)
    assert abs(ssim(a, torch.randn(1, 1, 64, 64, generator=gen)).item()) < 0.1
    assert ssim(10 + a, 10 - a).item() < -0.9  # same means, inverted structure
    # one window of a 9 x 9 tile: the hand formula
    x, y = torch.rand(1, 1, 9, 9, generator=gen), torch.rand(1, 1, 9, 9, generator=gen)
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(unbiased=False), y.var(unbiased=False)
    cov = ((x - mx) * (y - my)).mean()
    c1, c2 = 0.01**2, 0.03**2
    hand = (2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    assert ssim(x, y).item() == pytest.approx(hand.item(), rel=1e-4)


@given(seed=st.integers(0, 1000))
def test_topographic_loss_is_zero_when_block_means_match(seed):
    gen = torch.Generator().manual_seed(seed)
    bed = torch.randn(3, 1, 11, 11, generator=gen) * 300
    detail = torch.randn(3, 1, 36, 36, generator=gen) * 40
    detail = detail - F.interpolate(F.avg_pool2d(detail, 4), scale_factor=4)  # zero block means
    prediction = F.interpolate(bed[..., 1:-1, 1:-1], scale_factor=4) + detail
    assert topographic_loss(prediction, bed).item() == pytest.approx(0.0, abs=1e-3)
    assert topographic_loss(prediction + 5.0, bed).item() == pytest.approx(5.0, rel=1e-4)
    with pytest.raises(ValueError, match="footprint"):
        topographic_loss(prediction, bed[..., :5, :5])


def test_relativistic_losses_by_hand():
    real, fake = torch.tensor([[2.0], [4.0]]), torch.tensor([[1.0], [-1.0]])

    def bce(logit, label):
        p = 1 / (1 + math.exp(-logit))
        return -(label * math.log(p) + (1 - label) * math.log(1 - p))

    # real - mean(fake) = [2, 4]; fake - mean(real) = [-2, -4]
    d = (bce(2, 1) + bce(4, 1)) / 2 + (bce(-2, 0) + bce(-4, 0)) / 2
    g = (bce(2, 0) + bce(4, 0)) / 2 + (bce(-2, 1) + bce(-4, 1)) / 2
    assert discriminator_loss(real, fake).item() == pytest.approx(d, rel=1e-5)
    assert generator_adversarial_loss(real, fake).item() == pytest.approx(g, rel=1e-5)
    # a confused discriminator (equal logits) gives 2 log 2 to both
    same = torch.zeros(4, 1)
    assert discriminator_loss(same, same).item() == pytest.approx(2 * math.log(2), rel=1e-6)


def test_generator_loss_weights_the_terms():
    gen = torch.Generator().manual_seed(1)
    y = torch.randn(2, 1, 36, 36, generator=gen) * 10
    pred = y + torch.randn(2, 1, 36, 36, generator=gen)
    bed = torch.randn(2, 1, 11, 11, generator=gen)
    real, fake = torch.randn(2, 1, generator=gen), torch.randn(2, 1, generator=gen)
    total, terms = generator_loss(pred, y, bed, real, fake)
    w = LossWeights()
    expected = sum(getattr(w, k) * v for k, v in terms.items())
    assert total.item() == pytest.approx(expected, rel=1e-5)
    assert w.as_dict() == {"content": 1e-2, "adversarial": 2e-2, "topographic": 2e-3,
                           "structural": 5.25}  # fmt: skip
    assert np.isfinite(list(terms.values())).all()
