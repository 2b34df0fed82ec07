"""One batch (a discriminator step, then a generator step) and one validation pass."""

from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader

from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.model import Discriminator, Generator
from xdeepbedmap.training.config import TrainConfig
from xdeepbedmap.training.dataset import TileDataset
from xdeepbedmap.training.losses import LossWeights, discriminator_loss, generator_loss

__all__ = ["TrainingDiverged", "evaluate_tiles", "train_step"]


class TrainingDiverged(XDeepBedMapError, RuntimeError):
    """The generator loss became NaN or infinite."""


def train_step(
    generator: Generator,
    discriminator: Discriminator | None,
    g_opt: torch.optim.Optimizer,
    d_opt: torch.optim.Optimizer | None,
    batch: tuple[torch.Tensor, ...],
    config: TrainConfig,
) -> dict[str, float]:
    """One discriminator step then one generator step; returns the losses.

    Without a discriminator the adversarial term is dropped (weight 0).

    Raises
    ------
    TrainingDiverged
        When the generator loss is not finite (nothing is stepped then).
    """
    x, w1, w2, w3, y = batch
    logs: dict[str, float] = {}
    if discriminator is not None and d_opt is not None:
        with torch.no_grad():
            fake = generator(x, w1, w2, w3)
        d_loss = discriminator_loss(discriminator(y), discriminator(fake))
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        logs["discriminator_loss"] = float(d_loss.detach())

    prediction = generator(x, w1, w2, w3)
    if discriminator is not None:
        real_logits = discriminator(y).detach()
        fake_logits = discriminator(prediction)
        weights = config.loss_weights
    else:
        real_logits = fake_logits = torch.zeros(len(y), 1, device=y.device)
        weights = LossWeights(**{**config.loss_weights.as_dict(), "adversarial": 0.0})
    g_loss, terms = generator_loss(prediction, y, x, real_logits, fake_logits, weights)
    if not torch.isfinite(g_loss):
        raise TrainingDiverged(f"generator loss is {float(g_loss.detach())} ({terms})")
    g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    g_opt.step()
    logs["generator_loss"] = float(g_loss.detach())
    logs.update({f"loss_{name}": value for name, value in terms.items()})
    return logs


def evaluate_tiles(
    generator: Generator,
    dataset: TileDataset,
    discriminator: Discriminator | None = None,
    batch_size: int = 64,
    device: torch.device | None = None,
) -> dict[str, float]:
    """Validation metrics over ``dataset``.

    Returns RMSE (m), PSNR (dB, peak = range of the truth tiles) and, with a
    discriminator, its accuracy: the share of real tiles judged more realistic
    than the average fake and fake tiles less realistic than the average real.
    """
    device = device or next(generator.parameters()).device
    generator.eval()
    if discriminator is not None:
        discriminator.eval()
    squared, count, lo, hi = 0.0, 0, math.inf, -math.inf
    correct, judged = 0, 0
    with torch.no_grad():
        for x, w1, w2, w3, y in DataLoader(dataset, batch_size=batch_size):
            x, w1, w2, w3, y = (t.to(device) for t in (x, w1, w2, w3, y))
            prediction = generator(x, w1, w2, w3).float()
            squared += float(((prediction - y) ** 2).sum())
            count += y.numel()
            lo, hi = min(lo, float(y.min())), max(hi, float(y.max()))
            if discriminator is not None:
                real, fake = discriminator(y), discriminator(prediction)
                correct += int((real - fake.mean() > 0).sum() + (fake - real.mean() < 0).sum())
                judged += 2 * len(y)
    rmse = math.sqrt(squared / count)
    metrics = {"val_rmse": rmse, "val_psnr": 20 * math.log10((hi - lo) / max(rmse, 1e-12))}
    if discriminator is not None:
        metrics["val_discriminator_accuracy"] = correct / judged
    return metrics
