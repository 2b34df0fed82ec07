"""The prefetcher yields exactly the batches of the plain path, in order, on CPU and CUDA."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from xdeepbedmap.device_feed import Prefetcher, batch_size_for
from xdeepbedmap.model import Generator


def _batches(count: int, n: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield (
            rng.normal(size=(2, 1, n, n)).astype(np.float32),
            rng.normal(size=(2, 1, 10 * n, 10 * n)).astype(np.float32),
            rng.normal(size=(2, 2, 2 * n, 2 * n)).astype(np.float32),
            rng.normal(size=(2, 1, n, n)).astype(np.float32),
        )


@pytest.fixture(scope="module")
def model() -> Generator:
    torch.manual_seed(0)
    return Generator(num_residual_blocks=1).eval()


def test_prefetched_batches_give_identical_outputs(model):
    with torch.inference_mode():
        plain = [model(*(torch.from_numpy(a) for a in batch)) for batch in _batches(5)]
        with Prefetcher(_batches(5), "cpu", pin=False, depth=2) as feed:
            fed = [model(*batch) for batch in feed]
    assert len(fed) == len(plain) == 5
    for a, b in zip(fed, plain, strict=True):
        assert torch.equal(a, b)


def test_host_work_runs_in_the_background_thread():
    seen = []

    def source():
        for batch in _batches(3):
            seen.append(threading.current_thread().name)
            yield batch

    assert len(list(Prefetcher(source(), pin=False))) == 3
    assert set(seen) == {"xdeepbedmap-prefetch"}


def test_prefetcher_casts_reraises_and_closes_early():
    halves = list(Prefetcher(_batches(2), dtype=torch.float64))
    assert all(t.dtype == torch.float64 for batch in halves for t in batch)

    def failing():
        yield next(_batches(1))
        raise KeyError("window (3, 4)")

    feed = iter(Prefetcher(failing()))
    next(feed)
    with pytest.raises(KeyError, match=r"window \(3, 4\)"):
        next(feed)
    endless = Prefetcher(_batches(10**6), depth=1)
    next(iter(endless))
    endless.close()  # returns: the thread stops although the source is endless
    assert not endless._thread.is_alive()


def test_bad_options_are_refused():
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="pin=True needs CUDA"):
            Prefetcher(_batches(1), pin=True)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        Prefetcher(_batches(1), depth=0)
    assert batch_size_for(146 * 146, "cpu") == 1
    with pytest.raises(ValueError, match="window_px must be >= 1"):
        batch_size_for(0, "cpu")


@pytest.mark.gpu
def test_pinned_prefetch_on_cuda_equals_cpu(model):
    gpu_model = Generator(**model.hyperparameters)
    gpu_model.load_state_dict(model.state_dict())
    gpu_model = gpu_model.cuda().eval()
    with torch.inference_mode():
        plain = [model(*(torch.from_numpy(a) for a in b)) for b in _batches(7)]
        with Prefetcher(_batches(7), "cuda", depth=2) as feed:  # ring reuse: 7 > depth + 2
            fed = [gpu_model(*batch).cpu() for batch in feed]
    for a, b in zip(fed, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())
    size = batch_size_for(146 * 146, "cuda")
    assert 1 <= size <= 256


def test_gpu_workers_get_several_threads_for_host_work(monkeypatch):
    import sys
    import types

    from xdeepbedmap import cluster

    made = {}
    fake = types.ModuleType("dask_cuda")
    fake.LocalCUDACluster = lambda **kwargs: made.update(kwargs) or "cluster"
    monkeypatch.setitem(sys.modules, "dask_cuda", fake)
    monkeypatch.setattr(cluster, "cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert cluster.make_cluster(gpu=True) == "cluster"
    assert made["threads_per_worker"] == 4 and made["resources"] == {"GPU": 1}
    cluster.make_cluster(gpu=True, threads_per_worker=2)
    assert made["threads_per_worker"] == 2  # the caller's choice wins
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    assert cluster.gpu_worker_threads() == 2
