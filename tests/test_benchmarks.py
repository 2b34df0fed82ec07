"""Run every asv benchmark body once at a tiny size, so the suite cannot rot."""

from __future__ import annotations

import inspect
import itertools

import pytest

from benchmarks import bench_model, bench_workflow

TINY = {"WINDOW": 6, "BLOCKS": 1, "SIZE": 24, "CHUNKS": 12, "BATCH": 2, "HALO": 2}
# (GeneratorForward.WINDOW is its window; Superresolve.WINDOW the bare windows)

CLASSES = [
    cls
    for module in (bench_model, bench_workflow)
    for _, cls in inspect.getmembers(module, inspect.isclass)
    if cls.__module__ == module.__name__
]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_benchmark_bodies_run(cls, monkeypatch):
    for name, value in TINY.items():
        if hasattr(cls, name):
            monkeypatch.setattr(cls, name, value)
    params = getattr(cls, "params", None)
    grid = [()] if params is None else (
        itertools.product(*params) if isinstance(params, tuple) else [(p,) for p in params]
    )  # fmt: skip
    methods = [m for m in dir(cls) if m.split("_")[0] in {"time", "peakmem", "track"}]
    assert methods
    for args in grid:
        bench = cls()
        bench.setup(*args)
        for name in methods:
            result = getattr(bench, name)(*args)
            if name.startswith("track"):
                assert result > 0
