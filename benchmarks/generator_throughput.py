"""Generator forward throughput and the share of time spent in the deformable convs.

Run ``python benchmarks/generator_throughput.py [--window 64] [--batches 1 8]``.
Prints base-grid pixels per second for each batch size, and the fraction of
forward time spent inside the two deformable convolution layers (timed with
forward hooks around ``final_conv_layer1`` and ``final_conv_layer2``).
"""

from __future__ import annotations

import argparse
import time

import torch

from xdeepbedmap.model import Generator


def make_inputs(batch: int, n: int) -> tuple[torch.Tensor, ...]:
    """Random inputs for ``batch`` windows of ``n x n`` base pixels."""
    gen = torch.Generator().manual_seed(0)
    return (
        torch.randn(batch, 1, n, n, generator=gen),
        torch.randn(batch, 1, 10 * n, 10 * n, generator=gen),
        torch.randn(batch, 2, 2 * n, 2 * n, generator=gen),
        torch.randn(batch, 1, n, n, generator=gen),
    )


class LayerTimer:
    """Accumulate wall time spent inside chosen submodules via forward hooks."""

    def __init__(self, modules: list[torch.nn.Module]) -> None:
        self.total = 0.0
        self._start = 0.0
        for module in modules:
            module.register_forward_pre_hook(self._pre)
            module.register_forward_hook(self._post)

    def _pre(self, *_: object) -> None:
        self._start = time.perf_counter()

    def _post(self, *_: object) -> None:
        self.total += time.perf_counter() - self._start


def measure(model: Generator, batch: int, n: int, repeats: int) -> tuple[float, float]:
    """Return (base px/s, share of time in the deformable convs) for one batch size."""
    inputs = make_inputs(batch, n)
    timer = LayerTimer([model.final_conv_layer1, model.final_conv_layer2])
    with torch.inference_mode():
        model(*inputs)  # warm-up
        timer.total = 0.0
        start = time.perf_counter()
        for _ in range(repeats):
            model(*inputs)
        elapsed = time.perf_counter() - start
    return batch * n * n * repeats / elapsed, timer.total / elapsed


def main() -> None:
    """Print the throughput table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{args.blocks}-block generator, {args.window} x {args.window} base window"
    )
    print(f"{'batch':>5} {'base px/s':>10} {'deform share':>12}")
    for batch in args.batches:
        model = Generator(num_residual_blocks=args.blocks).eval()
        rate, share = measure(model, batch, args.window, args.repeats)
        print(f"{batch:>5} {rate:>10,.0f} {share:>12.1%}")


if __name__ == "__main__":
    main()
