"""Speed and accuracy of the generator's inference forms, in one run.

Speed: a randomly initialised ``--blocks``-block generator on one
``--window`` x ``--window`` base window; each path is timed ``--repeats``
times, interleaved (path A, B, C, D, A, B, ...), best kept, so a shared,
loaded machine penalises every path alike. Each forward is timed by the
process CPU time (``time.process_time``) as well as by the wall clock: on a
loaded machine the wall time counts the time other processes held the core,
the CPU time does not, so with one thread (the default) the ratios in CPU
time are the figures that count. Accuracy: the bundled demo model
on the whole demo region as one window (no-data filled with the nearest
valid value, then mirror-padded by one base pixel so the output covers the
region), difference from float32 in metres, over the land pixels (where the
bed has data; the rest is masked in products) and over every pixel.

    python benchmarks/mixed_precision.py [--window 64] [--blocks 12] [--repeats 5]
        [--threads 1] [--mode both|speed|accuracy] [--paths NAME ...]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage

import xdeepbedmap
from xdeepbedmap.model import Generator, load_checkpoint
from xdeepbedmap.model.precision import FastGenerator

DEMO_MODEL = os.path.join(os.path.dirname(xdeepbedmap.__file__), "data", "demo_model.safetensors")
#: 14.8 M land base pixels in the continent (issue 16).
CONTINENT_PX = 14.8e6

Forward = Callable[..., torch.Tensor]


def paths(model: Generator) -> dict[str, Forward]:
    """The compared forms of ``model``: name -> callable taking float32 NCHW inputs."""
    cl_model = Generator(**model.hyperparameters)
    cl_model.load_state_dict(model.state_dict())
    cl_model = cl_model.eval().to(memory_format=torch.channels_last)

    def autocast_bf16(*inputs: torch.Tensor) -> torch.Tensor:
        inputs = tuple(t.contiguous(memory_format=torch.channels_last) for t in inputs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return cl_model(*inputs).float()

    return {
        "float32 (today)": model,
        # the previous channels_last form: direct convolutions throughout
        "channels_last direct": FastGenerator(model, "channels_last", fewer_products=False),
        "float32 channels_last": FastGenerator(model, "channels_last"),
        "bfloat16 autocast": autocast_bf16,
        "mixed": FastGenerator(model, "mixed"),
    }


def random_inputs(n: int) -> tuple[torch.Tensor, ...]:
    """One ``n x n`` base window of random inputs (as generator_throughput.py)."""
    gen = torch.Generator().manual_seed(0)
    shapes = ((1, n, n), (1, 10 * n, 10 * n), (2, 2 * n, 2 * n), (1, n, n))
    return tuple(torch.randn(1, *shape, generator=gen) for shape in shapes)


def best_times(
    forwards: dict[str, Forward], inputs: tuple, repeats: int
) -> dict[str, tuple[float, float]]:
    """Best (CPU seconds, wall seconds) per path, the paths interleaved within each repeat.

    The two minima are taken independently: the forward with the least CPU
    time need not be the one with the least wall time.
    """
    best = {name: (float("inf"), float("inf")) for name in forwards}
    with torch.inference_mode():
        for forward in forwards.values():  # warm-up (oneDNN primitive creation)
            forward(*inputs)
        for _ in range(repeats):
            for name, forward in forwards.items():
                cpu, wall = time.process_time(), time.perf_counter()
                forward(*inputs)
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                best[name] = (min(best[name][0], cpu), min(best[name][1], wall))
    return best


def _filled(values: np.ndarray, pad: int) -> np.ndarray:
    """Nearest-valid-value fill of NaN, then mirror padding of ``pad`` px."""
    nearest = ndimage.distance_transform_edt(
        np.isnan(values), return_distances=False, return_indices=True
    )
    return np.pad(values[tuple(nearest)], pad, mode="reflect").astype(np.float32)


def demo_window() -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """The demo region as one padded window, and its output land mask."""
    ds = xdeepbedmap.open_inputs("demo").load()
    bed = _filled(ds["bed"].values, 1)
    surface = _filled(ds["surface"].values, 10)
    velocity = np.stack([_filled(ds[v].values, 2) for v in ("vx", "vy")])
    accumulation = _filled(ds["accumulation"].values, 1)
    inputs = tuple(
        torch.from_numpy(a).reshape(1, -1, *a.shape[-2:])
        for a in (bed, surface, velocity, accumulation)
    )
    land = ~np.isnan(ds["bed"].values)
    land = np.repeat(np.repeat(land, Generator.upscale, 0), Generator.upscale, 1)
    return inputs, torch.from_numpy(land)


def demo_errors(model: Generator) -> dict[str, tuple[float, float, float, float]]:
    """(land RMS, land max, all RMS, all max) difference from float32, metres, per path."""
    inputs, land = demo_window()
    forwards = paths(model)
    bf16_model = Generator(**model.hyperparameters)
    bf16_model.load_state_dict(model.state_dict())
    bf16_model = bf16_model.eval().to(torch.bfloat16)
    # today's dtype="bfloat16": model and inputs cast to bfloat16 as a whole
    forwards["plain bfloat16"] = lambda *t: bf16_model(*(a.bfloat16() for a in t)).float()
    out = {}
    with torch.inference_mode():
        reference = model(*inputs)[0, 0]
        for name, forward in forwards.items():
            diff = (forward(*inputs)[0, 0] - reference).double()
            out[name] = tuple(
                float(f(d))
                for d in (diff[land], diff.flatten())
                for f in (lambda d: d.square().mean().sqrt(), lambda d: d.abs().max())
            )  # type: ignore[assignment]
    return out


def weight_megabytes(forward: Forward) -> float:
    """MB of parameters and buffers a path holds (NaN for a plain function)."""
    if not isinstance(forward, torch.nn.Module):
        return float("nan")
    tensors = [*forward.parameters(), *forward.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors) / 1e6


def print_speed(times: dict[str, tuple[float, float]], n: int, megabytes: dict[str, float]) -> None:
    """The speed table: base px per CPU-second and per wall-second, ratios to float32 NCHW."""
    base_cpu, base_wall = times["float32 (today)"]
    print(f"{'path':<22} {'px/CPU-s':>9} {'x f32 CPU':>9} {'px/wall-s':>9} {'x f32 wall':>10}"
          f" {'continent':>10} {'weights':>8}")  # fmt: skip
    for name, (cpu, wall) in times.items():
        # continent: 14.8 M land base px on 2 cores at this rate per CPU-second, ideal scaling
        continent = CONTINENT_PX / (2 * n * n / cpu)
        mb = megabytes[name]
        print(f"{name:<22} {n * n / cpu:>9,.0f} {base_cpu / cpu:>9.2f} {n * n / wall:>9,.0f}"
              f" {base_wall / wall:>10.2f} {continent:>9,.0f}s {mb:>6.1f}MB")  # fmt: skip


def main() -> None:
    """Print the speed table, then the accuracy table (or one of them, ``--mode``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--mode", choices=("both", "speed", "accuracy"), default="both")
    parser.add_argument("--paths", nargs="+", help="time only these paths (float32 always)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n = args.window
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")  # fmt: skip
    if args.mode != "accuracy":
        model = Generator(num_residual_blocks=args.blocks).eval()
        forwards = paths(model)
        if args.paths:
            unknown = set(args.paths) - set(forwards)
            if unknown:
                parser.error(f"--paths: unknown {sorted(unknown)}; known {list(forwards)}")
            forwards = {k: v for k, v in forwards.items() if k in args.paths or "today" in k}
        print(f"{args.blocks}-block generator, {n} x {n} base window, best of {args.repeats}")
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        times = best_times(forwards, random_inputs(n), args.repeats)
        cpu_used, wall_used = time.process_time() - cpu_start, time.perf_counter() - wall_start
        print_speed(times, n, {name: weight_megabytes(f) for name, f in forwards.items()})
        print(f"load average after timing: {os.getloadavg()[0]:.1f}; this process got "
              f"{cpu_used:.0f} CPU-s in {wall_used:.0f} wall-s")  # fmt: skip
    if args.mode != "speed":
        print("\ndemo region (bundled model), difference from float32 in metres")
        print(f"{'path':<22} {'land RMS':>9} {'land max':>9} {'all RMS':>9} {'all max':>9}")
        for name, errs in demo_errors(load_checkpoint(DEMO_MODEL).eval()).items():
            print(f"{name:<22} " + " ".join(f"{e:>9.3g}" for e in errs))


if __name__ == "__main__":
    main()
