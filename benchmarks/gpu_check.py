"""The Python stages of ``benchmarks/gpu_check.sh``; each writes one JSON file.

    python benchmarks/gpu_check.py parity  --out DIR [--cpu]
    python benchmarks/gpu_check.py flops   --out DIR [--cpu]
    python benchmarks/gpu_check.py cluster --out DIR [--cpu]
    python benchmarks/gpu_check.py merge   --out DIR     # DIR/parts/*.json -> DIR/gpu_report.json

``--cpu`` runs the same code on the CPU at tiny sizes (a check of the script,
not a measurement). The continent stage is ``benchmarks/continent.py --json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xdeepbedmap.model import Generator, load_checkpoint
from xdeepbedmap.model.precision import FastGenerator

try:
    from benchmarks.mixed_precision import DEMO_MODEL, demo_window
except ImportError:  # run as a script from benchmarks/
    from mixed_precision import DEMO_MODEL, demo_window  # type: ignore[no-redef]


def _device(cpu: bool) -> torch.device:
    if cpu:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SystemExit("torch sees no CUDA device (run with --cpu to check the script)")
    return torch.device("cuda")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _forms(model: Generator, device: torch.device) -> dict[str, Callable[..., torch.Tensor]]:
    """Every dtype path to compare, as callables taking float32 inputs on ``device``."""
    exact = _copy(model).to(device)
    forms: dict[str, Callable[..., torch.Tensor]] = {"float32": exact}
    forms["channels_last"] = FastGenerator(model, "channels_last", device)
    forms["mixed-bfloat16"] = FastGenerator(model, "mixed", device, half_dtype=torch.bfloat16)
    if device.type == "cuda":
        forms["mixed-float16"] = FastGenerator(model, "mixed", device, half_dtype=torch.float16)
    for half in (torch.bfloat16, torch.float16) if device.type == "cuda" else (torch.bfloat16,):
        cast = _copy(model).to(device, half)
        name = str(half).replace("torch.", "")
        forms[f"plain {name} cast"] = lambda *t, c=cast, h=half: c(*(a.to(h) for a in t)).float()
    return forms


def _copy(model: Generator) -> Generator:
    clone = Generator(**model.hyperparameters)
    clone.load_state_dict(model.state_dict())
    return clone.eval()


def parity(device: torch.device, cpu: bool) -> dict[str, Any]:
    """Device vs CPU float32 on the demo region (bundled model); errors in metres."""
    model = load_checkpoint(DEMO_MODEL).eval()
    inputs, land = demo_window()
    torch.backends.cudnn.allow_tf32 = False  # the float32 parity check means float32
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.inference_mode():
        reference = model(*inputs)[0, 0].double()
        on_device = tuple(t.to(device) for t in inputs)
        out: dict[str, Any] = {}
        for name, forward in _forms(model, device).items():
            found = forward(*on_device)[0, 0].double().cpu()
            out[name] = _errors(found - reference, reference, land)
        if device.type == "cuda":  # cuDNN's default for convolutions
            torch.backends.cudnn.allow_tf32 = True
            found = _copy(model).to(device)(*on_device)[0, 0].double().cpu()
            out["float32 with TF32 convs (torch default)"] = _errors(
                found - reference, reference, land
            )
    out["float32_relative_error_ok"] = out["float32"]["relative_max"] < 1e-4
    return out


def _errors(diff: torch.Tensor, reference: torch.Tensor, land: torch.Tensor) -> dict[str, float]:
    finite = torch.isfinite(diff)
    return {
        "land_rms_m": float(diff[land].square().mean().sqrt()),
        "land_max_m": float(diff[land].abs().max()),
        "all_rms_m": float(diff.square().mean().sqrt()),
        "all_max_m": float(diff.abs().max()),
        "relative_max": float(diff.abs().max() / reference.abs().max()),
        "finite": bool(finite.all()),
    }


def flops(device: torch.device, cpu: bool) -> dict[str, Any]:
    """Generator FLOP/s per path and batch vs a plain large conv2d, same device, same run."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    blocks, windows, batches = (2, (16,), (1, 2)) if cpu else (12, (64, 128), (1, 16))
    model = Generator(num_residual_blocks=blocks).eval()
    forms = _forms(model, device)
    forms = {k: v for k, v in forms.items() if not k.startswith("plain")}
    out: dict[str, Any] = {"blocks": blocks, "conv2d": _conv_rates(device, cpu), "generator": []}
    with torch.inference_mode():
        for n in windows:
            for batch in batches:
                inputs = _random_inputs(n, batch, device)
                with FlopCounterMode(display=False) as counter:
                    forms["float32"](*inputs)
                total = counter.get_total_flops()
                for name, forward in forms.items():
                    if device.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(device)
                    seconds = _best(lambda f=forward, t=inputs: f(*t), device)
                    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
                    out["generator"].append(
                        {"path": name, "window": n, "batch": batch, "seconds": seconds,
                         "gflop_per_s": total / seconds / 1e9,
                         "base_px_per_s": batch * (n - 2) ** 2 / seconds,
                         "peak_bytes_per_window_px": peak / (batch * n * n)}
                    )  # fmt: skip
    return out


def _conv_rates(device: torch.device, cpu: bool) -> dict[str, float]:
    """GFLOP/s of a 64 -> 64 3x3 conv2d on a large batch, float32 and half, channels-last."""
    size, batch = (64, 1) if cpu else (256, 32)
    x = torch.randn(batch, 64, size, size, device=device).contiguous(
        memory_format=torch.channels_last
    )
    weight = torch.randn(64, 64, 3, 3, device=device).contiguous(memory_format=torch.channels_last)
    flop = 2 * batch * 64 * 64 * 9 * size * size
    rates = {}
    halves = (torch.bfloat16,) if cpu else (torch.float16, torch.bfloat16)
    with torch.inference_mode():
        for dtype in (torch.float32, *halves):
            a, w = x.to(dtype), weight.to(dtype)
            seconds = _best(lambda a=a, w=w: torch.nn.functional.conv2d(a, w, padding=1), device)
            rates[str(dtype).replace("torch.", "")] = flop / seconds / 1e9
    return rates


def _random_inputs(n: int, batch: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    shapes = ((1, n, n), (1, 10 * n, 10 * n), (2, 2 * n, 2 * n), (1, n, n))
    return tuple(torch.randn(batch, *s, generator=gen).to(device) for s in shapes)


def _best(fn: Callable[[], Any], device: torch.device, repeats: int = 3) -> float:
    fn()  # warm-up: cuDNN algorithm choice, oneDNN primitives
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def cluster(device: torch.device, cpu: bool) -> dict[str, Any]:
    """``make_cluster`` on every GPU (``LocalCUDACluster``): same bed as one process."""
    from xdeepbedmap.cluster import keep_annotations, make_cluster
    from xdeepbedmap.synthetic import make_region

    ds, _ = make_region((96, 96), seed=3)
    torch.manual_seed(0)
    model = Generator(num_residual_blocks=2)
    local = ds.deepbedmap.superresolve(model, halo=4, device=device.type)
    lazy = ds.chunk({"y": 32, "x": 32}).deepbedmap.superresolve(model, halo=4, device=device.type)
    options = {"n_workers": 1, "processes": False} if cpu else {}
    start = time.perf_counter()
    from distributed import Client

    with make_cluster(gpu=not cpu, dashboard_address=":0", **options) as made, Client(made) as c:
        info = c.scheduler_info()["workers"]
        with keep_annotations():  # the GPU-annotated tasks stay on GPU workers
            found = lazy.compute()
    return {
        "gpus": torch.cuda.device_count(),
        "workers": len(info),
        "threads_per_worker": sorted({w["nthreads"] for w in info.values()}),
        "seconds": time.perf_counter() - start,
        "max_diff_vs_one_process_m": float(np.nanmax(np.abs(found.values - local.values))),
    }


def merge(out: Path) -> dict[str, Any]:
    """Every stage's JSON (and the shell's stage log) into one report."""
    report: dict[str, Any] = {"host": platform.node(), "torch": torch.__version__}
    if torch.cuda.is_available():
        report["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    for part in sorted((out / "parts").glob("*.json")):
        report[part.stem] = json.loads(part.read_text())
    stages = out / "parts" / "stages.tsv"
    if stages.exists():
        rows = [line.split("\t") for line in stages.read_text().splitlines() if line]
        report["stages"] = {name: {"rc": int(rc), "seconds": float(s)} for name, rc, s in rows}
    (out / "gpu_report.json").write_text(json.dumps(report, indent=2, default=str))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["parity", "flops", "cluster", "merge"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cpu", action="store_true", help="tiny sizes on the CPU")
    args = parser.parse_args()
    if args.stage == "merge":
        print(json.dumps(merge(args.out), indent=1, default=str)[:4000])
        return
    stage = {"parity": parity, "flops": flops, "cluster": cluster}[args.stage]
    result = stage(_device(args.cpu), args.cpu)
    (args.out / "parts").mkdir(parents=True, exist_ok=True)
    (args.out / "parts" / f"{args.stage}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=1)[:3000])


if __name__ == "__main__":
    main()
