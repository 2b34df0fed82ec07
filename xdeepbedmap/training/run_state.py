"""Everything a training run needs to continue where it stopped, saved after every epoch.

Shuffling is drawn from ``(seed, epoch)`` alone (no random generator state to
keep), so networks, optimisers and the epoch count are the whole state: a run
resumed from a saved :class:`RunState` ends with bit-identical weights to an
uninterrupted one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import torch

from xdeepbedmap.atomic import atomic_path
from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.model import Discriminator, Generator
from xdeepbedmap.training.config import TrainConfig

__all__ = ["RunState", "RunStateError"]

_KEYS = ("config", "epoch", "generator", "generator_optimizer", "history", "best_rmse")


class RunStateError(XDeepBedMapError, ValueError):
    """A saved training state is truncated, damaged or not an xdeepbedmap run state."""


def _read(path: str | PathLike[str], device: torch.device) -> dict[str, Any]:
    """The saved dict at ``path``, or a :class:`RunStateError` saying how to start over."""
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
        complete = isinstance(saved, dict) and all(key in saved for key in _KEYS)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a damaged file
        # torch's own text suggests weights_only=False, which would run pickled code
        reason = f"unreadable ({type(err).__name__})"
    else:
        if complete:
            return saved
        reason = "not an xdeepbedmap training state"
    raise RunStateError(
        f"training state {path} is corrupt or {reason}; rerun with --restart "
        "(Python: train(..., resume=False)) to start the run over, or remove the file"
    )


@dataclass
class RunState:
    """Networks, optimisers and progress of one training run.

    Attributes
    ----------
    config : TrainConfig
        The run's hyperparameters (a saved state only resumes the same ones).
    generator, generator_optimizer
        The generator and its Adam.
    discriminator, discriminator_optimizer
        The discriminator and its Adam (``None`` without adversarial training).
    epochs_done : int
        Epochs completed; the next epoch to run has this 0-based index.
    history : list of dict
        One row of losses and validation metrics per completed epoch.
    best_rmse : float
        Lowest validation RMSE so far (m).
    since_best : int
        Epochs since ``best_rmse`` last improved (for ``patience``).
    """

    config: TrainConfig
    generator: Generator
    generator_optimizer: torch.optim.Optimizer
    discriminator: Discriminator | None = None
    discriminator_optimizer: torch.optim.Optimizer | None = None
    epochs_done: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_rmse: float = math.inf
    since_best: int = 0

    @classmethod
    def start(
        cls,
        config: TrainConfig,
        device: torch.device,
        input_scaling: dict[str, tuple[float, float]] | None = None,
    ) -> RunState:
        """Fresh networks initialised from ``config.seed``, and their optimisers."""
        # all randomness (init, shuffling) is torch's; numpy is not used for it
        torch.manual_seed(config.seed)
        generator = Generator(
            config.num_residual_blocks,
            config.residual_scaling,
            input_scaling=input_scaling,
            bed_skip=config.bed_skip,
        ).to(device)
        discriminator = Discriminator().to(device) if config.adversarial else None
        adam = {"lr": config.learning_rate, "eps": config.adam_eps, "betas": config.adam_betas}
        return cls(
            config,
            generator,
            torch.optim.Adam(generator.parameters(), **adam),
            discriminator,
            torch.optim.Adam(discriminator.parameters(), **adam) if discriminator else None,
        )

    @classmethod
    def load(
        cls,
        path: str | PathLike[str],
        config: TrainConfig,
        device: torch.device,
        input_scaling: dict[str, tuple[float, float]] | None = None,
    ) -> RunState:
        """The state saved at ``path`` by :meth:`save`, on ``device``.

        ``input_scaling`` is the generator's (not part of the saved weights).

        Raises
        ------
        RunStateError
            If ``path`` is truncated, damaged or not a run state.
        ValueError
            If ``path`` was written with another configuration than ``config``.
        """
        saved = _read(path, device)
        saved_config = json.loads(saved["config"])
        if saved_config != config.to_dict():
            raise ValueError(
                f"{path} was written with another configuration {saved_config}; "
                "pass resume=False (or another run folder) to start over"
            )
        # built exactly as a fresh run is, so the global random stream matches too
        state = cls.start(config, device, input_scaling)
        state.generator.load_state_dict(saved["generator"])
        state.generator_optimizer.load_state_dict(saved["generator_optimizer"])
        if state.discriminator is not None and state.discriminator_optimizer is not None:
            state.discriminator.load_state_dict(saved["discriminator"])
            state.discriminator_optimizer.load_state_dict(saved["discriminator_optimizer"])
        state.history = json.loads(saved["history"])
        state.best_rmse, state.since_best = float(saved["best_rmse"]), int(saved["since_best"])
        state.epochs_done = int(saved["epoch"]) + 1
        return state

    def save(self, path: str | PathLike[str]) -> Path:
        """Write the state to ``path`` atomically (a crash leaves the previous one)."""
        with atomic_path(path, overwrite=True) as staged:
            torch.save(self._as_dict(), staged)
        return Path(path)

    def _as_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "config": json.dumps(self.config.to_dict()),
            # the file keeps the 0-based index of the last finished epoch
            "epoch": self.epochs_done - 1,
            "generator": self.generator.state_dict(),
            "generator_optimizer": self.generator_optimizer.state_dict(),
            "history": json.dumps(self.history),
            "best_rmse": self.best_rmse,
            "since_best": self.since_best,
        }
        if self.discriminator is not None and self.discriminator_optimizer is not None:
            state["discriminator"] = self.discriminator.state_dict()
            state["discriminator_optimizer"] = self.discriminator_optimizer.state_dict()
        return state
