"""Dask clusters for super-resolution: one worker per GPU, or CPU workers.

Network tasks built for a CUDA device are annotated with
``resources={"GPU": 1}`` (see :func:`xdeepbedmap.inference.superresolve`), so
on a distributed cluster they only run on workers that declare a GPU; every
worker process loads the model once onto its own device
(:mod:`xdeepbedmap.model_store`).

Nothing here changes dask's global configuration: the writers of
:mod:`xdeepbedmap.io` compute under :func:`keep_annotations`; wrap your own
``compute`` calls on a cluster in it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "KEEP_ANNOTATIONS",
    "connect",
    "cuda_available",
    "current_client",
    "gpu_worker_threads",
    "keep_annotations",
    "make_cluster",
]

#: Dask configuration under which task annotations reach the scheduler: dask's
#: low-level task fusion merges annotated network tasks with unannotated
#: neighbours and drops the annotation (the GPU tasks would then run anywhere).
#: :func:`keep_annotations` applies it for the duration of a ``with`` block.
KEEP_ANNOTATIONS = {"optimization.fuse.active": False}


@contextmanager
def keep_annotations() -> Iterator[None]:
    """Let task annotations (``resources={"GPU": 1}``) reach the scheduler inside the block.

    Low-level task fusion is switched off inside the block only; dask's
    configuration is restored on exit, so the rest of the process is unaffected.

    Examples
    --------
    >>> with keep_annotations():  # doctest: +SKIP
    ...     bed = ds.deepbedmap.superresolve(device="cuda").compute()
    """
    import dask

    with dask.config.set(KEEP_ANNOTATIONS):
        yield


def current_client() -> Any:
    """The active ``distributed.Client``, or ``None`` (no client, or distributed not installed)."""
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU and dask-cuda is installed."""
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("dask_cuda") is not None


def gpu_worker_threads(most: int = 4) -> int:
    """Threads per GPU worker: the CPU cores shared among the GPUs, at most ``most``."""
    import os

    import torch

    gpus = max(1, torch.cuda.device_count())
    return max(1, min(most, (os.cpu_count() or 1) // gpus))


def make_cluster(gpu: bool | str = "auto", **kwargs: Any) -> Any:
    """A local cluster suited to this machine.

    Parameters
    ----------
    gpu : bool or "auto"
        ``"auto"``: a ``dask_cuda.LocalCUDACluster`` (one worker per GPU, each
        declaring ``resources={"GPU": 1}``, with :func:`gpu_worker_threads`
        threads so host work overlaps the GPU's) when CUDA GPUs and dask-cuda are
        present, else a ``distributed.LocalCluster``. ``True`` insists on GPUs;
        ``False`` always gives a CPU cluster.
    **kwargs
        Passed to the cluster (``n_workers``, ``threads_per_worker``,
        ``memory_limit``, ``dashboard_address`` ...).

    Raises
    ------
    RuntimeError
        If ``gpu=True`` but torch sees no GPU or dask-cuda is not installed
        (``pip install xdeepbedmap[gpu]``).
    """
    if gpu not in (True, False, "auto"):
        raise ValueError(f"gpu must be True, False or 'auto', got {gpu!r}")
    use_gpu = cuda_available() if gpu == "auto" else bool(gpu)
    if use_gpu:
        if not cuda_available():
            raise RuntimeError(
                "gpu=True needs CUDA GPUs visible to torch and dask-cuda "
                "(pip install 'xdeepbedmap[gpu]')"
            )
        from dask_cuda import LocalCUDACluster

        resources = {"GPU": 1, **kwargs.pop("resources", {})}
        # dask-cuda's default of one thread per worker serialises the host work
        # (window cutting, no-data fill) with the GPU's: several threads overlap them
        kwargs.setdefault("threads_per_worker", gpu_worker_threads())
        return LocalCUDACluster(resources=resources, **kwargs)
    from distributed import LocalCluster

    # torch parallelises inside each block: one thread per worker by default
    kwargs.setdefault("threads_per_worker", 1)
    return LocalCluster(**kwargs)


def connect(cluster: str | None = None, scheduler: str | None = None, **kwargs: Any) -> Any:
    """A ``distributed.Client``: attach to ``scheduler`` or start a local cluster.

    Parameters
    ----------
    cluster : {"local", "cuda"}, optional
        Kind of local cluster to start (``"local"``: CPU workers, ``"cuda"``:
        one worker per GPU). Ignored when ``scheduler`` is given.
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``), e.g. one started
        by dask-jobqueue or dask-kubernetes.
    **kwargs
        Passed to :func:`make_cluster`.

    Notes
    -----
    Dask's configuration is left as it is; compute GPU-annotated graphs under
    :func:`keep_annotations` (the writers of :mod:`xdeepbedmap.io` do).
    """
    from distributed import Client

    if scheduler:
        return Client(scheduler)
    if cluster not in ("local", "cuda"):
        raise ValueError(f"cluster must be 'local' or 'cuda', got {cluster!r}")
    return Client(make_cluster(gpu=cluster == "cuda", **kwargs))
