"""One writer per output: a lock file beside the output, released by the kernel on a crash.

The lock is ``<name>.lock`` beside the output, held with ``flock`` and
holding the writer's PID and host (for the message a second writer gets).
``flock`` rather than a PID check: the kernel drops the lock when its process
dies however it dies, so a run after a crash recovers without any cleanup,
and a reused PID can never keep a dead writer's lock alive.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path

from xdeepbedmap.errors import XDeepBedMapError

__all__ = ["OutputLockedError", "lock_path", "output_lock"]

# locks this process holds, by lock path: (owning thread, depth, file descriptor)
_HELD: dict[str, tuple[int, int, int]] = {}
_HELD_GUARD = threading.Lock()


class OutputLockedError(XDeepBedMapError, RuntimeError):
    """Another process (or thread) is writing the same output."""


def lock_path(path: str | PathLike[str]) -> Path:
    """The lock file of output ``path``: ``<name>.lock`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def _holder(lock: Path) -> str:
    try:
        text = lock.read_text().strip()
    except OSError:
        return "another process"
    return f"process {text}" if text else "another process"


def _acquire(lock: Path, output: Path, wait: bool) -> int:
    """Open and ``flock`` the lock file; refuse (or wait) if a live process holds it."""
    import fcntl

    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            raise OutputLockedError(
                f"{output} is being written by {_holder(lock)} (lock {lock}); wait for it "
                "to finish or write elsewhere. A lock left by a crashed run is released "
                "automatically."
            ) from None
        # the file may have been unlinked by its previous holder after we opened it
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} on {socket.gethostname()}".encode())
    return fd


@contextmanager
def output_lock(path: str | PathLike[str], wait: bool = False) -> Iterator[Path]:
    """Hold the write lock of output ``path`` for the block (re-entrant in one thread).

    Yields the lock file's path. The lock file is removed on release. With
    ``wait``, block until another process releases it instead of refusing.

    Raises
    ------
    OutputLockedError
        If another process, or another thread of this one, holds it.
    """
    output = Path(path)
    lock = lock_path(os.path.abspath(output))
    key, me = str(lock), threading.get_ident()
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None and held[0] != me:
            raise OutputLockedError(f"{output} is being written by another thread (lock {lock})")
        if held is None:
            fd = _acquire(lock, output, wait)
            _HELD[key] = (me, 1, fd)
        else:
            _HELD[key] = (me, held[1] + 1, held[2])
    try:
        yield lock
    finally:
        with _HELD_GUARD:
            owner, depth, fd = _HELD[key]
            if depth > 1:
                _HELD[key] = (owner, depth - 1, fd)
            else:
                del _HELD[key]
                lock.unlink(missing_ok=True)  # while still held: no one can hold this inode
                os.close(fd)
