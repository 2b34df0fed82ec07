"""Dask clusters for super-resolution: one worker per GPU, or CPU workers.

Network tasks built for a CUDA device are annotated with
``resources={"GPU": 1}`` (see :func:`xdeepbedmap.inference.superresolve`), so
on a distributed cluster they only run on workers that declare a GPU; every
worker process loads the model once onto its own device
(:mod:`xdeepbedmap.model_store`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["KEEP_ANNOTATIONS", "connect", "cuda_available", "make_cluster"]

#: Dask configuration under which task annotations reach the scheduler: dask's
#: low-level task fusion merges annotated network tasks with unannotated
#: neighbours and drops the annotation (the GPU tasks would then run anywhere).
#: :func:`connect` sets it; set it yourself around ``compute`` on a cluster
#: you started otherwise: ``with dask.config.set(KEEP_ANNOTATIONS): ...``.
KEEP_ANNOTATIONS = {"optimization.fuse.active": False}


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU and dask-cuda is installed."""
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("dask_cuda") is not None


def make_cluster(gpu: bool | str = "auto", **kwargs: Any) -> Any:
    """A local cluster suited to this machine.

    Parameters
    ----------
    gpu : bool or "auto"
        ``"auto"``: a ``dask_cuda.LocalCUDACluster`` (one worker per GPU, each
        declaring ``resources={"GPU": 1}``) when CUDA GPUs and dask-cuda are
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
    """
    import dask
    from distributed import Client

    dask.config.set(KEEP_ANNOTATIONS)
    if scheduler:
        return Client(scheduler)
    if cluster not in ("local", "cuda"):
        raise ValueError(f"cluster must be 'local' or 'cuda', got {cluster!r}")
    return Client(make_cluster(gpu=cluster == "cuda", **kwargs))
