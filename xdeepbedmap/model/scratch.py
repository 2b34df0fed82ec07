"""Per-thread scratch tensors and the views prepared on them, kept between calls.

A fresh multi-megabyte tensor is new memory to the kernel: its first writer
pays a page fault per 4 KiB page, which made the first Winograd transform
into a dense block's 12 MB matrix cost several times its arithmetic. The
tensors here are kept per thread (dask threads sharing one model never share
scratch) and per name, reallocated only when their shape, dtype or device
changes.
"""

from __future__ import annotations

import threading
from typing import Any

import torch

__all__ = ["SCRATCH", "release"]


class _Workspace(threading.local):
    """Per-thread scratch tensors by name, and prepared views of them (see the module)."""

    #: Prepared views kept at most (plans of buffers passed in by callers
    #: would otherwise accumulate).
    MAX_PLANS = 64

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.plans: dict[tuple, Any] = {}

    def keep(self, key: tuple, plan: Any) -> None:
        """Keep ``plan`` (views of scratch tensors) under ``key``, at most :attr:`MAX_PLANS`."""
        if len(self.plans) >= self.MAX_PLANS:
            self.plans.clear()
        self.plans[key] = plan

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """The scratch tensor ``name`` of ``shape``; zeroed when (re)allocated, else as left.

        The buffers of :class:`~xdeepbedmap.model.winograd.TileGrid` rely on
        this: their zero border is restored after every write, so it stays
        zero from one use to the next.
        """
        found = self.tensors.get(name)
        if (
            found is None
            or found.shape != shape
            or found.dtype != like.dtype
            or found.device != like.device
        ):
            # a normal tensor, not an inference tensor: usable in and out of inference_mode
            with torch.inference_mode(False):
                found = self.tensors[name] = like.new_zeros(shape)
            self.plans.clear()  # their views may be of the tensor just replaced
        return found


#: This process's scratch, one per thread.
SCRATCH = _Workspace()


def release() -> None:
    """Free the calling thread's scratch (it is otherwise kept for the thread's life).

    Sized by window and batch (about 166 MiB per thread for a 158 px window),
    not by chunk; call it in each worker thread after a large run to give it back.
    """
    SCRATCH.tensors.clear()
    SCRATCH.plans.clear()
