"""Where training tiles sit on a region: the tile geometry and its origins.

A tile is one generator training example: an ``n x n`` base-grid window of
``bed`` and ``accumulation`` (default 11 x 11), the matching ``10n`` surface and
``2n`` velocity windows, and the ``4(n-2)`` ground-truth window the generator
predicts (default 36 x 36 at 250 m, the paper's 9 km tiles). Tiles are laid
out on a sliding window over the base grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xdeepbedmap.grids import OUTPUT_FACTOR

__all__ = ["TILE_ARRAYS", "TileLayout"]

#: Arrays of a tile, in generator argument order, then the target.
TILE_ARRAYS = ("x", "w1", "w2", "w3", "y")


@dataclass(frozen=True)
class TileLayout:
    """Where tiles sit on a region.

    Attributes
    ----------
    base_size : int
        Base-grid window size ``n`` (the output tile is ``4(n-2)`` px).
    stride : int
        Step between tiles in 250 m output pixels (a multiple of 4, so every
        tile stays nested in the base grid).
    min_coverage : float
        Smallest fraction of a tile's truth pixels that must be valid for the
        tile to be kept (1.0, the default: NaN-free tiles only). Below 1, the
        missing truth pixels of a kept tile are filled with the nearest valid
        truth pixel of the tile (the losses need finite targets).
    """

    base_size: int = 11
    stride: int = 36
    min_coverage: float = 1.0

    def __post_init__(self) -> None:
        if self.base_size < 3:
            raise ValueError(f"base_size must be >= 3, got {self.base_size}")
        if self.stride < OUTPUT_FACTOR or self.stride % OUTPUT_FACTOR:
            raise ValueError(
                f"stride must be a positive multiple of 4 output px, got {self.stride}"
            )
        if not 0.0 < self.min_coverage <= 1.0:
            raise ValueError(f"min_coverage must be in (0, 1], got {self.min_coverage}")

    @property
    def tile_size(self) -> int:
        """Output tile size in 250 m pixels."""
        return OUTPUT_FACTOR * (self.base_size - 2)

    def origins(self, base_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Base-grid rows and columns of the tiles' top-left input pixels."""
        step = self.stride // OUTPUT_FACTOR
        rows = np.arange(0, base_shape[0] - self.base_size + 1, step)
        cols = np.arange(0, base_shape[1] - self.base_size + 1, step)
        return rows, cols
