"""Feed batches to the device while the previous one runs.

:class:`Prefetcher` takes an iterator of numpy batches (tuples of arrays, one
per network input) and yields them as tensors on the device. A background
thread prepares batch ``k + 1`` (pulls it from the iterator, which may cut
windows and fill no data, copies it into a pinned host buffer and starts a
non-blocking host-to-device copy on its own CUDA stream) while the caller's
network runs on batch ``k``. On the CPU there is nothing to copy: the thread
still overlaps the host work of the next batch with the current one, and the
tensors are the numpy arrays themselves (``torch.from_numpy``) or one cast.

:func:`batch_size_for` picks how many windows fill the device from its free
memory (``torch.cuda.mem_get_info``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

__all__ = ["BYTES_PER_WINDOW_PX", "Prefetcher", "batch_size_for"]

#: Device memory one base pixel of a window needs during a float32 forward of
#: the generator (activations only), a conservative estimate: the deformable
#: layers at 4 x resolution hold 16 output px x 64 channels x (input, 9 sampled
#: taps, output, offsets) x 4 B ~ 50 KB, plus int64 corner indices. gpu_check.sh
#: measures the real figure (``torch.cuda.max_memory_allocated``).
BYTES_PER_WINDOW_PX = 64 * 1024

Batch = tuple[np.ndarray, ...]
_DONE = object()


def batch_size_for(
    window_px: int,
    device: torch.device | str,
    fraction: float = 0.5,
    bytes_per_px: int = BYTES_PER_WINDOW_PX,
    cpu_default: int = 1,
    most: int = 256,
) -> int:
    """Windows per batch that fit in ``fraction`` of the device's free memory.

    Parameters
    ----------
    window_px : int
        Base pixels of one window, context included (e.g. ``146 * 146``).
    device : torch.device or str
        On the CPU, ``cpu_default`` is returned (one window already keeps the
        cores busy).
    fraction : float
        Share of the free memory to plan for (the rest: the model, the
        allocator's slack, other threads' batches).
    bytes_per_px : int
        Memory per base pixel of a window (:data:`BYTES_PER_WINDOW_PX`).
    cpu_default, most : int
        The CPU answer, and an upper bound.
    """
    device = torch.device(device)
    if window_px < 1:
        raise ValueError(f"window_px must be >= 1, got {window_px}")
    if device.type != "cuda":
        return cpu_default
    free, _total = torch.cuda.mem_get_info(device)
    return int(max(1, min(most, fraction * free // (window_px * bytes_per_px))))


class Prefetcher:
    """Iterate over ``batches`` as device tensors, one batch prepared ahead.

    Parameters
    ----------
    batches : iterable of tuple of numpy.ndarray
        Host batches; each item is a tuple of arrays (one per network input).
        The iterator runs in a background thread: its host work overlaps
        with the caller's use of the previous batch.
    device : torch.device or str
        Where the tensors go.
    dtype : torch.dtype
        Type of the yielded tensors.
    pin : bool, optional
        Stage each batch in pinned host memory so the copy to the device is
        asynchronous. Default: ``True`` on CUDA, ``False`` elsewhere (pinning
        needs a CUDA driver).
    depth : int
        Batches prepared ahead (>= 1).

    Notes
    -----
    The yielded tensors are ready to use on the caller's current CUDA stream
    (it waits on the copy stream's event). Pinned buffers are reused per
    shape in a ring of ``depth + 2``; a buffer is overwritten only after the
    copy that read it has finished. Exceptions raised by the iterator are
    re-raised in the caller. Stop early with :meth:`close` (or use it as a
    context manager).
    """

    def __init__(
        self,
        batches: Iterable[Sequence[np.ndarray]],
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        pin: bool | None = None,
        depth: int = 2,
    ) -> None:
        self.device = torch.device(device)
        self.dtype = dtype
        self.pin = self.device.type == "cuda" if pin is None else bool(pin)
        if self.pin and not torch.cuda.is_available():
            raise ValueError("pin=True needs CUDA (pinned host memory); use pin=False on CPU")
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._source = iter(batches)
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._ring_size = depth + 2
        self._rings: dict[tuple, list[tuple[list[torch.Tensor], torch.cuda.Event | None]]] = {}
        self._turn: dict[tuple, int] = {}
        cuda = self.device.type == "cuda"
        self._stream = torch.cuda.Stream(self.device) if cuda else None
        self._thread = threading.Thread(target=self._fill, name="xdeepbedmap-prefetch", daemon=True)
        self._thread.start()

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            tensors, ready = item
            if ready is not None:  # the copy ran on our stream: order the caller after it
                torch.cuda.current_stream(self.device).wait_event(ready)
                for t in tensors:
                    t.record_stream(torch.cuda.current_stream(self.device))
            yield tensors

    def close(self) -> None:
        """Stop the background thread (batches not yet taken are dropped)."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(0.01)

    def _put(self, item: object) -> bool:
        """Queue ``item`` unless closed; ``False`` once closed."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _fill(self) -> None:
        try:
            for batch in self._source:
                if not self._put(self._to_device(tuple(batch))):
                    return
        except BaseException as error:  # handed to the consumer, re-raised there
            self._put(error)
            return
        self._put(_DONE)

    def _to_device(self, batch: Batch) -> tuple[tuple[torch.Tensor, ...], object]:
        if not self.pin:
            tensors = tuple(
                torch.from_numpy(np.ascontiguousarray(a)).to(self.device, self.dtype) for a in batch
            )
            return tensors, None
        staged = self._staging(batch)
        with torch.cuda.stream(self._stream):
            tensors = tuple(h.to(self.device, self.dtype, non_blocking=True) for h in staged)
            ready = torch.cuda.Event()
            ready.record(self._stream)
        key = tuple(a.shape for a in batch)
        ring = self._rings[key]
        ring[self._turn[key]] = (staged, ready)  # this buffer is free again once `ready` fires
        return tensors, ready

    def _staging(self, batch: Batch) -> list[torch.Tensor]:
        """Pinned host buffers holding ``batch`` (reused per shape, never while being read)."""
        key = tuple(a.shape for a in batch)
        ring = self._rings.setdefault(key, [])
        turn = (self._turn.get(key, -1) + 1) % self._ring_size
        self._turn[key] = turn
        if turn == len(ring):
            buffers = [torch.empty(a.shape, dtype=_torch_type(a)).pin_memory() for a in batch]
            ring.append((buffers, None))
        buffers, last_copy = ring[turn]
        if last_copy is not None:
            last_copy.synchronize()
        for buffer, array in zip(buffers, batch, strict=True):
            buffer.numpy()[...] = array
        return buffers


def _torch_type(array: np.ndarray) -> torch.dtype:
    return torch.from_numpy(np.empty(0, dtype=array.dtype)).dtype
