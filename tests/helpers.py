"""Small helpers shared by the tests."""

from __future__ import annotations

import torch


def random_inputs(batch: int, height: int, width: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random generator inputs for a ``height x width`` base window."""
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, 1, height, width, generator=gen),
        torch.randn(batch, 1, 10 * height, 10 * width, generator=gen),
        torch.randn(batch, 2, 2 * height, 2 * width, generator=gen),
        torch.randn(batch, 1, height, width, generator=gen),
    )
