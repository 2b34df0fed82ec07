"""The DeepBedMap GAN training loop: seeded, checkpointed every epoch, resumable.

One epoch alternates a discriminator step and a generator step on every
batch (1:1, as in the paper), then validates: PSNR and RMSE of the generator
on the validation tiles and the discriminator's accuracy. After every epoch
the complete state (both networks, both optimisers, metrics so far) is saved
to ``<run>/state.pt``; :func:`train` resumes from it. Shuffling is drawn from
``(seed, epoch)`` alone, so a resumed run ends with bit-identical weights to
an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.model import Discriminator, Generator
from xdeepbedmap.model.checkpoint import save_checkpoint
from xdeepbedmap.model_store import resolve_device
from xdeepbedmap.plot import plot_loss_curve
from xdeepbedmap.training.losses import LossWeights, discriminator_loss, generator_loss
from xdeepbedmap.training.tiles import TileDataset

__all__ = ["TrainConfig", "TrainResult", "TrainingDiverged", "evaluate_tiles", "train"]

STATE_FILE = "state.pt"
BEST_FILE = "best.safetensors"
METRICS_FILE = "metrics.csv"
CURVE_FILE = "loss_curve.png"


class TrainingDiverged(XDeepBedMapError, RuntimeError):
    """The generator loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of a training run (the paper's values by default).

    Attributes
    ----------
    num_residual_blocks, residual_scaling
        Generator architecture.
    learning_rate, adam_eps, adam_betas
        Adam for both networks.
    batch_size, epochs
        Tiles per step and passes over the training tiles.
    patience
        Stop when validation RMSE has not improved for this many epochs
        (``None``: never stop early).
    seed
        Seeds initialisation and shuffling.
    standardise
        Give the generator ``input_scaling`` from the training tiles' means
        and standard deviations (``False``: raw units, as the published model).
    bed_skip
        Let the generator learn the residual over a bilinear 1 km bed.
    adversarial
        Train against the discriminator (``False``: the adversarial term is
        dropped and no discriminator is trained, a faster content-only
        pre-training).
    num_workers
        ``DataLoader`` worker processes.
    mixed_precision
        bfloat16 autocast on CUDA.
    loss_weights
        Weights of the four generator loss terms.
    """

    num_residual_blocks: int = 12
    residual_scaling: float = 0.2
    learning_rate: float = 1.7e-4
    adam_eps: float = 0.1
    adam_betas: tuple[float, float] = (0.9, 0.99)
    batch_size: int = 128
    epochs: int = 140
    patience: int | None = None
    seed: int = 0
    standardise: bool = True
    bed_skip: bool = False
    adversarial: bool = True
    num_workers: int = 0
    mixed_precision: bool = False
    loss_weights: LossWeights = field(default_factory=LossWeights)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        out = asdict(self)
        out["adam_betas"] = list(self.adam_betas)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown training options {sorted(unknown)}; known: {sorted(known)}")
        values = dict(values)
        if "loss_weights" in values and isinstance(values["loss_weights"], dict):
            values["loss_weights"] = LossWeights(**values["loss_weights"])
        if "adam_betas" in values:
            values["adam_betas"] = tuple(values["adam_betas"])
        return cls(**values)


@dataclass
class TrainResult:
    """What a run produced."""

    generator: Generator
    history: list[dict[str, float]]
    best_checkpoint: Path | None
    stopped_early: bool


def input_scaling(tiles: TileDataset) -> dict[str, tuple[float, float]]:
    """Offsets and scales that standardise the generator's inputs, from training tiles.

    Velocity keeps zero as its offset (its sign is a direction) and shares
    one scale between vx and vy.
    """
    x, w1, w2, w3, _ = tiles.tensors()
    return {
        "bed": (float(x.mean()), float(x.std())),
        "surface": (float(w1.mean()), float(w1.std())),
        "velocity": (0.0, float(w2.pow(2).mean().sqrt())),
        "accumulation": (float(w3.mean()), float(w3.std())),
    }


def _seed_everything(seed: int) -> None:
    # all randomness (init, shuffling) is torch's; numpy is not used for it
    torch.manual_seed(seed)


def _loader(dataset: TileDataset, config: TrainConfig, epoch: int, shuffle: bool) -> DataLoader:
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=shuffle,
        generator=generator if shuffle else None,
        num_workers=config.num_workers,
        # zarr's background I/O loop does not survive fork; spawn workers
        multiprocessing_context="spawn" if config.num_workers > 0 else None,
        persistent_workers=False,
        drop_last=False,
    )


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


def _atomic_torch_save(state: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".partial")
    torch.save(state, tmp)
    tmp.replace(path)


def _write_metrics(history: list[dict[str, float]], run: Path) -> None:
    keys = list(dict.fromkeys(k for row in history for k in row))
    with open(run / METRICS_FILE, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


def train(
    train_tiles: TileDataset,
    val_tiles: TileDataset,
    config: TrainConfig,
    run_dir: str | PathLike[str],
    *,
    device: str | torch.device | None = None,
    resume: bool = True,
    progress: bool = True,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    metadata: dict[str, Any] | None = None,
) -> TrainResult:
    """Train a generator (and discriminator) on tiles, checkpointing every epoch.

    Parameters
    ----------
    train_tiles, val_tiles : TileDataset
        Training and validation tiles.
    config : TrainConfig
        Hyperparameters.
    run_dir : path
        Folder for ``state.pt`` (resume state), ``best.safetensors`` (the
        generator with the lowest validation RMSE, with its config and metrics),
        ``metrics.csv`` and ``loss_curve.png``.
    device : str, optional
        ``auto`` (default: CUDA if present), ``cpu``, ``cuda``.
    resume : bool
        Continue from ``run_dir/state.pt`` when it exists (the config must match).
    progress : bool
        Show a progress bar over batches.
    on_epoch : callable, optional
        Called as ``on_epoch(epoch, metrics)`` after each epoch (e.g. to report
        to an Optuna trial, which may raise to stop the run).
    metadata : dict, optional
        Extra facts stored in the best checkpoint (training data ...).

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingDiverged
        When the generator loss is not finite.
    """
    from tqdm.auto import tqdm

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    torch_device = resolve_device(device)
    _seed_everything(config.seed)
    generator = Generator(
        config.num_residual_blocks,
        config.residual_scaling,
        input_scaling=input_scaling(train_tiles) if config.standardise else None,
        bed_skip=config.bed_skip,
    ).to(torch_device)
    discriminator = Discriminator().to(torch_device) if config.adversarial else None
    adam = {"lr": config.learning_rate, "eps": config.adam_eps, "betas": config.adam_betas}
    g_opt = torch.optim.Adam(generator.parameters(), **adam)
    d_opt = torch.optim.Adam(discriminator.parameters(), **adam) if discriminator else None

    history: list[dict[str, float]] = []
    best_rmse, since_best, start_epoch = math.inf, 0, 0
    state_path = run / STATE_FILE
    if resume and state_path.exists():
        state = torch.load(state_path, map_location=torch_device, weights_only=True)
        saved = json.loads(state["config"])
        if saved != config.to_dict():
            raise ValueError(
                f"{state_path} was written with another configuration {saved}; "
                "pass resume=False (or another run folder) to start over"
            )
        generator.load_state_dict(state["generator"])
        g_opt.load_state_dict(state["generator_optimizer"])
        if discriminator is not None and d_opt is not None:
            discriminator.load_state_dict(state["discriminator"])
            d_opt.load_state_dict(state["discriminator_optimizer"])
        history = json.loads(state["history"])
        best_rmse, since_best = float(state["best_rmse"]), int(state["since_best"])
        start_epoch = int(state["epoch"]) + 1

    autocast = config.mixed_precision and torch_device.type == "cuda"
    stopped_early = False
    for epoch in range(start_epoch, config.epochs):
        if config.patience is not None and since_best >= config.patience:
            stopped_early = True
            break
        generator.train()
        if discriminator is not None:
            discriminator.train()
        sums: dict[str, float] = {}
        batches = 0
        started = time.perf_counter()
        loader = _loader(train_tiles, config, epoch, shuffle=True)
        bar = tqdm(
            loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, disable=not progress
        )
        for x, w1, w2, w3, y in bar:
            x, w1, w2, w3, y = (t.to(torch_device) for t in (x, w1, w2, w3, y))
            with torch.autocast(torch_device.type, dtype=torch.bfloat16, enabled=autocast):
                logs = _step(generator, discriminator, g_opt, d_opt, (x, w1, w2, w3, y), config)
            for key, value in logs.items():
                sums[key] = sums.get(key, 0.0) + value
            batches += 1
            bar.set_postfix(loss=f"{logs['generator_loss']:.4g}")
        elapsed = time.perf_counter() - started
        row: dict[str, float] = {"epoch": epoch + 1}
        row.update({key: value / batches for key, value in sums.items()})
        row["tiles_per_s"] = len(train_tiles) / elapsed
        row.update(evaluate_tiles(generator, val_tiles, discriminator, device=torch_device))
        history.append(row)
        if row["val_rmse"] < best_rmse:
            best_rmse, since_best = row["val_rmse"], 0
            save_checkpoint(
                generator,
                run / BEST_FILE,
                training=config.to_dict(),
                epoch=epoch + 1,
                metrics=row,
                **(metadata or {}),
            )
        else:
            since_best += 1
        state = {
            "config": json.dumps(config.to_dict()),
            "epoch": epoch,
            "generator": generator.state_dict(),
            "generator_optimizer": g_opt.state_dict(),
            "history": json.dumps(history),
            "best_rmse": best_rmse,
            "since_best": since_best,
        }
        if discriminator is not None and d_opt is not None:
            state["discriminator"] = discriminator.state_dict()
            state["discriminator_optimizer"] = d_opt.state_dict()
        _atomic_torch_save(state, state_path)
        _write_metrics(history, run)
        if progress:
            print(
                f"epoch {epoch + 1}: loss {row['generator_loss']:.4g}, "
                f"val RMSE {row['val_rmse']:.2f} m, PSNR {row['val_psnr']:.2f} dB, "
                f"{row['tiles_per_s']:.0f} tiles/s"
            )
        if on_epoch is not None:
            on_epoch(epoch + 1, row)
    if history:
        plot_loss_curve(history, run / CURVE_FILE)
    generator.eval()
    best = run / BEST_FILE
    return TrainResult(generator, history, best if best.exists() else None, stopped_early)


def _step(
    generator: Generator,
    discriminator: Discriminator | None,
    g_opt: torch.optim.Optimizer,
    d_opt: torch.optim.Optimizer | None,
    batch: tuple[torch.Tensor, ...],
    config: TrainConfig,
) -> dict[str, float]:
    """One discriminator step then one generator step; returns the losses."""
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
