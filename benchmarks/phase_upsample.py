"""Mixed path with and without the phase-form upsampling, side by side in one process.

    python benchmarks/phase_upsample.py [--blocks 12] [--window 64] [--repeats 6]

One torch thread, a random generator, paths interleaved, best process CPU
time per forward of each; prints the ratios to float32 NCHW.
"""

from __future__ import annotations

import argparse
import time

import torch

from xdeepbedmap.model import Generator
from xdeepbedmap.model.precision import FastGenerator


def main() -> None:
    """Time float32, mixed with direct upsampling convs and mixed with the phase form."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    generator = Generator(num_residual_blocks=args.blocks).eval()
    n = args.window + 2
    x, w3 = torch.randn(1, 1, n, n) * 300, torch.randn(1, 1, n, n)
    w1, w2 = torch.randn(1, 1, 10 * n, 10 * n) * 300, torch.randn(1, 2, 2 * n, 2 * n)
    # the previous form: interpolate, then 3x3 conv
    direct = FastGenerator(generator, "mixed", "cpu", phase_upsample=False)
    paths = {"float32": generator, "mixed, direct": direct}
    paths["mixed, phase form"] = FastGenerator(generator, "mixed", "cpu")
    best = dict.fromkeys(paths, float("inf"))
    with torch.inference_mode():
        for model in paths.values():
            model(x, w1, w2, w3)
        for _ in range(args.repeats):
            for name, model in paths.items():
                start = time.process_time()
                model(x, w1, w2, w3)
                best[name] = min(best[name], time.process_time() - start)
    for name, seconds in best.items():
        print(f"{name:18s} {seconds:8.4f} CPU-s  {best['float32'] / seconds:5.2f}x float32")


if __name__ == "__main__":
    main()
