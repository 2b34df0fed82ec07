"""asv: chunked superresolve vs the bare generator, tile extraction, one training step."""

from __future__ import annotations

import time

import dask
import numpy as np
import torch

import xdeepbedmap  # noqa: F401 - accessor
from xdeepbedmap.inference import DEFAULT_CHUNKS, DEFAULT_HALO, DEFAULT_WINDOW
from xdeepbedmap.model import Generator
from xdeepbedmap.synthetic import make_region
from xdeepbedmap.training.steps import train_step
from xdeepbedmap.training.tiles import TileDataset, TileLayout, build_tiles
from xdeepbedmap.training.trainer import TrainConfig


def bare_generator(ds, model, chunks: int) -> float:
    """Seconds to run the region's chunks as windows with a 1 px border."""
    factors = {"bed": 1, "surface": 10, "vx": 2, "vy": 2, "accumulation": 1}
    padded = {
        name: np.pad(ds[name].values.astype(np.float32), f, mode="reflect")
        for name, f in factors.items()
    }

    def cut(name: str, r: int, c: int, h: int, w: int) -> np.ndarray:
        f = factors[name]
        return padded[name][f * r : f * (r + h + 2), f * c : f * (c + w + 2)]

    ny, nx = ds.sizes["y"], ds.sizes["x"]
    windows = []
    for r in range(0, ny, chunks):
        for c in range(0, nx, chunks):
            h, w = min(chunks, ny - r), min(chunks, nx - c)
            arrays = (
                cut("bed", r, c, h, w)[None],
                cut("surface", r, c, h, w)[None],
                np.stack([cut("vx", r, c, h, w), cut("vy", r, c, h, w)]),
                cut("accumulation", r, c, h, w)[None],
            )
            windows.append(tuple(torch.from_numpy(np.ascontiguousarray(a[None])) for a in arrays))
    start = time.perf_counter()
    with torch.inference_mode():
        for inputs in windows:
            model(*inputs)
    return time.perf_counter() - start


class Superresolve:
    """The same region through ``superresolve`` (chunked, halo) and the bare generator."""

    SIZE = 256
    CHUNKS = DEFAULT_CHUNKS
    WINDOW = DEFAULT_WINDOW
    BLOCKS = 4
    HALO = DEFAULT_HALO

    def setup(self) -> None:
        torch.manual_seed(0)
        self.ds, _ = make_region((self.SIZE, self.SIZE), seed=7, ocean=False)
        self.model = Generator(self.BLOCKS).eval()
        self.lazy = self.ds.chunk({"y": self.CHUNKS, "x": self.CHUNKS})

    def _superresolve(self) -> None:
        # one dask thread: torch already uses every core inside each block
        with dask.config.set(scheduler="threads", num_workers=1):
            self.lazy.deepbedmap.superresolve(self.model, halo=self.HALO).compute()

    def time_superresolve(self) -> None:
        self._superresolve()

    def time_bare_generator(self) -> None:
        bare_generator(self.ds, self.model, self.WINDOW)

    def peakmem_superresolve(self) -> None:
        self._superresolve()

    def track_overhead_ratio(self) -> float:
        """Base px/s of superresolve over the bare generator's, measured back to back."""
        bare = bare_generator(self.ds, self.model, self.WINDOW)
        start = time.perf_counter()
        self._superresolve()
        return bare / (time.perf_counter() - start)

    track_overhead_ratio.unit = "ratio"


class Tiles:
    """Tile extraction from a lazy region."""

    SIZE = 96

    def setup(self) -> None:
        ds, self.truth = make_region((self.SIZE, self.SIZE), seed=8)
        self.ds = ds.chunk({"y": 32, "x": 32})

    def time_extract_tiles(self) -> None:
        build_tiles([(self.ds, self.truth)], layout=TileLayout(stride=12))


class TrainingStep:
    """One discriminator + generator step on a batch of tiles."""

    BATCH = 16
    BLOCKS = 4

    def setup(self) -> None:
        tiles = build_tiles([make_region((48, 48), seed=9)], layout=TileLayout(stride=8))
        x, w1, w2, w3, y = TileDataset(tiles).load().tensors()
        self.batch = tuple(t[: self.BATCH] for t in (x, w1, w2, w3, y))
        torch.manual_seed(0)
        from xdeepbedmap.model import Discriminator

        self.config = TrainConfig(num_residual_blocks=self.BLOCKS, batch_size=self.BATCH)
        self.generator = Generator(self.BLOCKS)
        self.discriminator = Discriminator()
        self.g_opt = torch.optim.Adam(self.generator.parameters(), lr=1.7e-4)
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=1.7e-4)

    def time_training_step(self) -> None:
        train_step(
            self.generator, self.discriminator, self.g_opt, self.d_opt, self.batch, self.config
        )

    def track_tiles_per_s(self) -> float:
        start = time.perf_counter()
        self.time_training_step()
        return self.BATCH / (time.perf_counter() - start)

    track_tiles_per_s.unit = "tiles/s"
