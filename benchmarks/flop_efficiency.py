"""Generator FLOP/s against a plain large 3x3 conv2d's FLOP/s, measured in the same run.

FLOPs are counted with ``torch.utils.flop_counter`` (convolutions and matrix
products; the bilinear sampling of the deformable convs is not counted, so
time spent there lowers the generator's rate, which is the point).

    python benchmarks/flop_efficiency.py [--window 48] [--blocks 12] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from xdeepbedmap.model import Generator


def rate(fn, flops: float, device: str, repeats: int) -> float:
    """FLOP/s of ``fn`` (best of ``repeats``)."""
    best = float("inf")
    for _ in range(repeats + 1):  # the first call warms up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return flops / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=48, help="base px")
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, device = args.window, args.device
    model = Generator(args.blocks).to(device).eval()
    gen = torch.Generator().manual_seed(0)
    inputs = [
        torch.randn(1, c, f * n, f * n, generator=gen).to(device)
        for c, f in ((1, 1), (1, 10), (2, 2), (1, 1))
    ]
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            model(*inputs)
        generator_flops = counter.get_total_flops()
        side = 4 * (n - 2)  # the same spatial size as the generator's upsampled layers
        x = torch.randn(1, 64, side, side, device=device)
        w = torch.randn(64, 64, 3, 3, device=device)
        conv_flops = 2 * 64 * 64 * 9 * side * side
        generator_rate = rate(lambda: model(*inputs), generator_flops, device, args.repeats)
        conv_rate = rate(lambda: F.conv2d(x, w, padding=1), conv_flops, device, args.repeats)
    print(f"device {device}, {torch.get_num_threads()} threads, window {n} base px, "
          f"{args.blocks} blocks: {generator_flops / 1e9:.1f} GFLOP per forward")  # fmt: skip
    print(f"generator      : {generator_rate / 1e9:8.1f} GFLOP/s")
    print(f"plain conv2d   : {conv_rate / 1e9:8.1f} GFLOP/s (64->64, 3x3, {side} x {side})")
    print(f"efficiency     : {generator_rate / conv_rate:.2f}")


if __name__ == "__main__":
    main()
