"""asv: chunked superresolve vs the bare generator, tile extraction, one training step."""

from __future__ import annotations

import time

import dask
import torch

import xdeepbedmap  # noqa: F401 - accessor
from xdeepbedmap.model import Generator
from xdeepbedmap.synthetic import make_region
from xdeepbedmap.training.tiles import TileDataset, TileLayout, build_tiles
from xdeepbedmap.training.trainer import TrainConfig, _step


class Superresolve:
    """The same region through ``superresolve`` (chunked, halo) and the bare generator."""

    SIZE = 96
    CHUNKS = 48
    BLOCKS = 4
    HALO = 8

    def setup(self) -> None:
        torch.manual_seed(0)
        self.ds, _ = make_region((self.SIZE, self.SIZE), seed=7, ocean=False)
        self.model = Generator(self.BLOCKS).eval()
        self.lazy = self.ds.chunk({"y": self.CHUNKS, "x": self.CHUNKS})
        n = self.SIZE + 2
        gen = torch.Generator().manual_seed(0)
        self.bare_inputs = [
            torch.randn(1, c, f * n, f * n, generator=gen)
            for c, f in ((1, 1), (1, 10), (2, 2), (1, 1))
        ]

    def _superresolve(self) -> None:
        with dask.config.set(scheduler="threads", num_workers=1):
            self.lazy.deepbedmap.superresolve(self.model, halo=self.HALO).compute()

    def _bare(self) -> None:
        with torch.inference_mode():
            self.model(*self.bare_inputs)

    def time_superresolve(self) -> None:
        self._superresolve()

    def time_bare_generator(self) -> None:
        self._bare()

    def peakmem_superresolve(self) -> None:
        self._superresolve()

    def track_overhead_ratio(self) -> float:
        """Superresolve's base px/s over the bare generator's, measured back to back."""
        self._bare()
        start = time.perf_counter()
        self._bare()
        bare = time.perf_counter() - start
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
        x, w1, w2, w3, y = TileDataset(tiles).tensors()
        self.batch = tuple(t[: self.BATCH] for t in (x, w1, w2, w3, y))
        torch.manual_seed(0)
        from xdeepbedmap.model import Discriminator

        self.config = TrainConfig(num_residual_blocks=self.BLOCKS, batch_size=self.BATCH)
        self.generator = Generator(self.BLOCKS)
        self.discriminator = Discriminator()
        self.g_opt = torch.optim.Adam(self.generator.parameters(), lr=1.7e-4)
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=1.7e-4)

    def time_training_step(self) -> None:
        _step(self.generator, self.discriminator, self.g_opt, self.d_opt, self.batch, self.config)

    def track_tiles_per_s(self) -> float:
        start = time.perf_counter()
        self.time_training_step()
        return self.BATCH / (time.perf_counter() - start)

    track_tiles_per_s.unit = "tiles/s"
