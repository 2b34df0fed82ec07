"""Hyperparameters of a training run, with a JSON form stored in checkpoints and run state."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from xdeepbedmap.training.losses import LossWeights

__all__ = ["TrainConfig"]


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

    def __post_init__(self) -> None:
        """Refuse values no run can use, naming the option (before any tile is cut)."""
        minimums = {
            "num_residual_blocks": (self.num_residual_blocks, 1),
            "batch_size": (self.batch_size, 1),
            "epochs": (self.epochs, 1),
            "num_workers": (self.num_workers, 0),
        }
        if self.patience is not None:
            minimums["patience"] = (self.patience, 1)
        for name, (value, minimum) in minimums.items():
            if not value >= minimum:
                raise ValueError(f"TrainConfig.{name} must be >= {minimum}, got {value}")
        for name in ("residual_scaling", "learning_rate", "adam_eps"):
            if not getattr(self, name) > 0:  # also refuses NaN
                raise ValueError(f"TrainConfig.{name} must be > 0, got {getattr(self, name)}")

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
