"""Training tiles: one import for the layout, extraction, Zarr cache and torch dataset.

Each job lives in a module of its own: :mod:`~xdeepbedmap.training.layout`
(where tiles sit), :mod:`~xdeepbedmap.training.extract` (cutting them from a
region), :mod:`~xdeepbedmap.training.cache` (the Zarr tile cache) and
:mod:`~xdeepbedmap.training.dataset` (the torch ``Dataset`` and the split).
"""

from xdeepbedmap.training.cache import build_tiles, open_tiles
from xdeepbedmap.training.dataset import TileDataset, split_tiles
from xdeepbedmap.training.extract import extract_tiles
from xdeepbedmap.training.layout import TILE_ARRAYS, TileLayout
from xdeepbedmap.truth import align_truth, grid_points

__all__ = [
    "TILE_ARRAYS",
    "TileDataset",
    "TileLayout",
    "align_truth",
    "build_tiles",
    "extract_tiles",
    "grid_points",
    "open_tiles",
    "split_tiles",
]
