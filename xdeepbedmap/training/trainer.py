"""The DeepBedMap GAN training loop: seeded, checkpointed every epoch, resumable.

One epoch alternates a discriminator step and a generator step on every
batch (1:1, as in the paper; :func:`~xdeepbedmap.training.steps.train_step`),
then validates: PSNR and RMSE of the generator on the validation tiles and the
discriminator's accuracy. After every epoch the complete
:class:`~xdeepbedmap.training.run_state.RunState` is saved to
``<run>/state.pt``; :func:`train` resumes from it. The library prints nothing:
per-epoch reporting goes through the ``on_epoch`` callback (the CLI passes
:func:`print_epoch`).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from xdeepbedmap.model import Generator
from xdeepbedmap.model.checkpoint import save_checkpoint
from xdeepbedmap.model_store import resolve_device
from xdeepbedmap.plot import plot_loss_curve
from xdeepbedmap.training.config import TrainConfig
from xdeepbedmap.training.dataset import TileDataset
from xdeepbedmap.training.run_state import RunState
from xdeepbedmap.training.steps import TrainingDiverged, evaluate_tiles, train_step

__all__ = [
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "evaluate_tiles",
    "format_epoch",
    "input_scaling",
    "print_epoch",
    "snapshot_path",
    "train",
]

STATE_FILE = "state.pt"
BEST_FILE = "best.safetensors"
METRICS_FILE = "metrics.csv"
CURVE_FILE = "loss_curve.png"


def snapshot_path(run_dir: str | PathLike[str], epoch: int) -> Path:
    """Where ``train(..., snapshots=True)`` keeps the generator of ``epoch`` (1-based)."""
    return Path(run_dir) / f"epoch_{epoch:03d}.safetensors"


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
    one scale between vx and vy. ``tiles`` must be loaded (:meth:`TileDataset.load`).
    """
    x, w1, w2, w3, _ = tiles.tensors()

    def spread(value: float) -> float:
        # a constant input (blind conditioning, bed-only model) has no spread:
        # scale 1 standardises it to 0 instead of dividing by zero
        return value if value > 0 else 1.0

    return {
        "bed": (float(x.mean()), spread(float(x.std()))),
        "surface": (float(w1.mean()), spread(float(w1.std()))),
        "velocity": (0.0, spread(float(w2.pow(2).mean().sqrt()))),
        "accumulation": (float(w3.mean()), spread(float(w3.std()))),
    }


def format_epoch(epoch: int, row: dict[str, float]) -> str:
    """One line summing up an epoch's metrics row (what the CLI prints)."""
    return (
        f"epoch {epoch}: loss {row['generator_loss']:.4g}, "
        f"val RMSE {row['val_rmse']:.2f} m, PSNR {row['val_psnr']:.2f} dB, "
        f"{row['tiles_per_s']:.0f} tiles/s"
    )


def print_epoch(epoch: int, row: dict[str, float]) -> None:
    """An ``on_epoch`` callback for :func:`train` that prints :func:`format_epoch`."""
    print(format_epoch(epoch, row))


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
    snapshots: bool = False,
) -> TrainResult:
    """Train a generator (and discriminator) on tiles, checkpointing every epoch.

    Parameters
    ----------
    train_tiles, val_tiles : TileDataset
        Training and validation tiles; both are loaded into memory first
        (:meth:`TileDataset.load`).
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
        Called as ``on_epoch(epoch, metrics)`` after each epoch (e.g.
        :func:`print_epoch`, or a report to an Optuna trial, which may raise
        to stop the run).
    metadata : dict, optional
        Extra facts stored in the best checkpoint (training data ...).
    snapshots : bool
        Also keep every epoch's generator as :func:`snapshot_path` (the
        members of a snapshot ensemble, Huang et al. 2017).

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingDiverged
        When the generator loss is not finite.
    ValueError
        When resuming a ``state.pt`` written with another configuration.
    """
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    torch_device = resolve_device(device)
    # shuffled batches and the input statistics are read from memory
    train_tiles.load()
    val_tiles.load()
    scaling = input_scaling(train_tiles) if config.standardise else None
    state_path = run / STATE_FILE
    if resume and state_path.exists():
        state = RunState.load(state_path, config, torch_device, scaling)
    else:
        state = RunState.start(config, torch_device, scaling)
        for stale in run.glob("epoch_*.safetensors"):  # another run's snapshots
            stale.unlink()
    stopped_early = False
    for epoch in range(state.epochs_done, config.epochs):
        if config.patience is not None and state.since_best >= config.patience:
            stopped_early = True
            break
        row = _train_epoch(state, train_tiles, torch_device, progress)
        row.update(
            evaluate_tiles(state.generator, val_tiles, state.discriminator, device=torch_device)
        )
        _record_epoch(state, row, run, metadata, snapshots)
        if on_epoch is not None:
            on_epoch(epoch + 1, row)
    if state.history:
        plot_loss_curve(state.history, run / CURVE_FILE)
    state.generator.eval()
    best = run / BEST_FILE
    return TrainResult(
        state.generator, state.history, best if best.exists() else None, stopped_early
    )


def _train_epoch(
    state: RunState, tiles: TileDataset, device: torch.device, progress: bool
) -> dict[str, float]:
    """One pass over the shuffled training tiles; the epoch's mean losses and throughput."""
    from tqdm.auto import tqdm

    config, epoch = state.config, state.epochs_done
    state.generator.train()
    if state.discriminator is not None:
        state.discriminator.train()
    autocast = config.mixed_precision and device.type == "cuda"
    sums: dict[str, float] = {}
    batches = 0
    started = time.perf_counter()
    loader = _loader(tiles, config, epoch, shuffle=True)
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, disable=not progress)
    for batch in bar:
        batch = tuple(t.to(device) for t in batch)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logs = train_step(
                state.generator,
                state.discriminator,
                state.generator_optimizer,
                state.discriminator_optimizer,
                batch,
                config,
            )
        for key, value in logs.items():
            sums[key] = sums.get(key, 0.0) + value
        batches += 1
        bar.set_postfix(loss=f"{logs['generator_loss']:.4g}")
    elapsed = time.perf_counter() - started
    row: dict[str, float] = {"epoch": epoch + 1}
    row.update({key: value / batches for key, value in sums.items()})
    row["tiles_per_s"] = len(tiles) / elapsed
    return row


def _record_epoch(
    state: RunState,
    row: dict[str, float],
    run: Path,
    metadata: dict[str, Any] | None,
    snapshots: bool = False,
) -> None:
    """Add ``row`` to the history, keep the best generator, save the state and metrics.

    The snapshot is written before the state, so a resumed run never lacks
    the snapshot of an epoch its state counts as done.
    """
    state.history.append(row)
    state.epochs_done += 1
    facts = dict(
        training=state.config.to_dict(), epoch=state.epochs_done, metrics=row, **(metadata or {})
    )
    if snapshots:
        save_checkpoint(state.generator, snapshot_path(run, state.epochs_done), **facts)
    if row["val_rmse"] < state.best_rmse:
        state.best_rmse, state.since_best = row["val_rmse"], 0
        save_checkpoint(state.generator, run / BEST_FILE, **facts)
    else:
        state.since_best += 1
    state.save(run / STATE_FILE)
    _write_metrics(state.history, run)
