"""The prepared GPU check parses, and its report and phase timers work (no GPU needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_script_parses():
    subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / "gpu_check.sh")], check=True)


def test_merge_collects_every_stage_and_its_status(tmp_path):
    from benchmarks.gpu_check import merge

    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "parity.json").write_text(json.dumps({"float32": {"relative_max": 1e-7}}))
    (parts / "stages.tsv").write_text("parity\t0\t12\nflops\t124\t60\n")
    merge(tmp_path)
    report = json.loads((tmp_path / "gpu_report.json").read_text())
    assert report["parity"]["float32"]["relative_max"] == 1e-7
    assert report["stages"]["flops"] == {"rc": 124, "seconds": 60.0}  # a timed-out stage shows


def test_phase_timer_sums_threads_and_does_not_count_nested_calls():
    from benchmarks.continent_files import PhaseTimer

    timer = PhaseTimer()
    inner = timer.wrap("read", lambda: time.sleep(0.01))
    outer = timer.wrap("write", lambda: (inner(), time.sleep(0.01)))
    threads = [threading.Thread(target=outer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert timer.calls == {"read": 0, "host": 0, "network": 0, "write": 3}
    assert 0.06 <= timer.seconds["write"] < 1.0
    assert "write" in timer.report(wall=0.1, threads=3)


@pytest.mark.parametrize("kind", ["zarr", "geotiff"])
def test_continent_inputs_from_files_read_back_the_same_values(tmp_path, kind):
    import numpy as np

    from benchmarks.continent import continent_inputs, window_of
    from benchmarks.continent_files import cached_inputs
    from xdeepbedmap.grids import validate_inputs

    part = window_of(continent_inputs(256), 32)  # coast: land and no data
    read = cached_inputs(part, tmp_path, kind, 16)
    again = cached_inputs(part, tmp_path, kind, 16)  # written once, then only opened
    validate_inputs(read)
    for name in ("bed", "surface", "vx"):
        assert read[name].chunks is not None  # lazy: reading happens in the tasks
        np.testing.assert_array_equal(read[name].values, part[name].values)
        np.testing.assert_array_equal(again[name].values, part[name].values)
    assert np.isnan(read["bed"].values).any() and np.isfinite(read["bed"].values).any()
