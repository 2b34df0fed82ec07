"""asv: generator forward and the deformable convolution alone (CPU, and CUDA when present)."""

from __future__ import annotations

import torch

from xdeepbedmap.model import Generator
from xdeepbedmap.model.deform_conv import DeformConv2d


def _inputs(n: int, device: str) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    shapes = [(1, 1, n, n), (1, 1, 10 * n, 10 * n), (1, 2, 2 * n, 2 * n), (1, 1, n, n)]
    return tuple(torch.randn(s, generator=gen).to(device) for s in shapes)


def _devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


class GeneratorForward:
    """12-block generator on one ``WINDOW x WINDOW`` base-px window."""

    WINDOW = 32
    BLOCKS = 12
    params = _devices()
    param_names = ["device"]

    def setup(self, device: str) -> None:
        self.model = Generator(self.BLOCKS).to(device).eval()
        self.inputs = _inputs(self.WINDOW, device)
        self.device = device

    def _run(self) -> None:
        with torch.inference_mode():
            self.model(*self.inputs)
        if self.device == "cuda":
            torch.cuda.synchronize()

    def time_forward(self, device: str) -> None:
        self._run()

    def peakmem_forward(self, device: str) -> None:
        self._run()

    def track_base_px_per_s(self, device: str) -> float:
        import time

        self._run()
        start = time.perf_counter()
        self._run()
        return self.WINDOW**2 / (time.perf_counter() - start)

    track_base_px_per_s.unit = "base px/s"


class DeformConv:
    """The 64 -> 64 and 64 -> 1 deformable convolutions on a 4x-upsampled window."""

    SIZE = 120
    params = (_devices(), [64, 1])
    param_names = ["device", "out_channels"]

    def setup(self, device: str, out_channels: int) -> None:
        self.layer = DeformConv2d(64, out_channels).to(device).eval()
        self.x = torch.randn(1, 64, self.SIZE, self.SIZE, device=device)
        self.device = device

    def time_deform_conv(self, device: str, out_channels: int) -> None:
        with torch.inference_mode():
            self.layer(self.x)
        if self.device == "cuda":
            torch.cuda.synchronize()
