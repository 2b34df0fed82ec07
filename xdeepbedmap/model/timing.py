"""How fast a generator runs: one timed forward pass on an empty window."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from xdeepbedmap.grids import VARIABLES
from xdeepbedmap.model.generator import Generator

__all__ = ["ForwardTiming", "time_forward"]


@dataclass(frozen=True)
class ForwardTiming:
    """One forward pass of a generator on a ``window`` x ``window`` base-pixel window."""

    window: int
    output_shape: tuple[int, int]
    seconds: float
    threads: int

    @property
    def base_px_per_s(self) -> float:
        """Base (1 km) pixels super-resolved per second."""
        return self.window**2 / self.seconds


def time_forward(model: Generator, window: int = 32) -> ForwardTiming:
    """Time one CPU forward pass of ``model`` on zero inputs of a ``window``-pixel base window.

    The inputs nest like real ones (:data:`xdeepbedmap.grids.VARIABLES`):
    the surface has ``factor`` times the base pixels, the two velocity
    components are stacked as channels.
    """
    if window < 1:
        raise ValueError(f"window must be a positive number of base pixels, got {window}")

    def zeros(name: str, channels: int = 1) -> torch.Tensor:
        n = VARIABLES[name][2] * window
        return torch.zeros(1, channels, n, n)

    inputs = (zeros("bed"), zeros("surface"), zeros("vx", channels=2), zeros("accumulation"))
    with torch.inference_mode():
        start = time.perf_counter()
        out = model.eval()(*inputs)
        elapsed = time.perf_counter() - start
    shape = (int(out.shape[-2]), int(out.shape[-1]))
    return ForwardTiming(window, shape, elapsed, torch.get_num_threads())
