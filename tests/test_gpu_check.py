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
