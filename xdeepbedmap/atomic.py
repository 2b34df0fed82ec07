"""Write files and folders so that a reader never sees a half-written one.

Everything xdeepbedmap writes (outputs, checkpoints, tile caches, demo files)
is built under ``<name>.partial`` beside its destination and moved into place
only when complete. An existing destination is replaced only after the new
one is complete: a crash during an overwrite leaves the old one intact.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from os import PathLike
from pathlib import Path

__all__ = ["atomic_path", "partial_path", "publish", "remove"]


def partial_path(path: str | PathLike[str]) -> Path:
    """Where ``path`` is built before it is published: ``<name>.partial`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def remove(path: Path) -> None:
    """Delete a file or folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def publish(
    staged: str | PathLike[str], path: str | PathLike[str], overwrite: bool = False
) -> Path:
    """Move a complete ``staged`` file or folder to ``path``.

    A file replaces ``path`` atomically (``os.replace``). A folder cannot be
    swapped in one step: the old one is first renamed aside, so at every
    moment either the old or the new complete folder exists under a name of
    its own, and the old one is deleted last.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    """
    staged, path = Path(staged), Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if not (staged.is_dir() and path.exists()):
        os.replace(staged, path)
        return path
    aside = path.with_name(f"{path.name}.replaced-{os.getpid()}")
    remove(aside)
    os.replace(path, aside)
    os.replace(staged, path)
    remove(aside)
    return path


@contextmanager
def atomic_path(path: str | PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Build ``path`` aside and publish it only if the block completes.

    Yields the staging path (``<name>.partial``, removed first if a crash
    left one behind). On success it is published with :func:`publish`; on
    any exception it is deleted and ``path`` is left as it was.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false (checked before the
        block runs, so no work is wasted).

    Examples
    --------
    >>> with atomic_path("model.safetensors", overwrite=True) as tmp:  # doctest: +SKIP
    ...     save_file(tensors, tmp)
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    staged = partial_path(path)
    remove(staged)
    staged.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield staged
    except BaseException:
        remove(staged)
        raise
    publish(staged, path, overwrite=overwrite)
