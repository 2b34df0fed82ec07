"""Tiles as a torch ``Dataset`` (read on demand until loaded) and the train/validation split."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset

from xdeepbedmap.training.layout import TILE_ARRAYS

__all__ = ["TileDataset", "split_tiles"]


def split_tiles(
    count: int, validation_fraction: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Reproducible random train/validation split of ``count`` tiles (95/5 by default).

    Returns sorted index arrays; the same ``seed`` always gives the same split.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if count < 2:
        raise ValueError(f"need at least 2 tiles to split, got {count}")
    order = np.random.default_rng(seed).permutation(count)
    n_val = min(count - 1, max(1, int(round(validation_fraction * count))))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class TileDataset(Dataset):
    """Tiles as torch tensors ``(x, w1, w2, w3, y)`` for a ``DataLoader``.

    Lazy: each item is read from ``tiles`` on demand (from the Zarr store for a
    cache opened with :func:`~xdeepbedmap.training.cache.open_tiles`), which
    holds no tile in memory and works in ``DataLoader`` worker processes.
    :meth:`load` reads the whole subset into memory once, which is much faster
    for tile sets that fit.

    Parameters
    ----------
    tiles : xarray.Dataset
        From :func:`~xdeepbedmap.training.cache.build_tiles` (in memory or Zarr-backed).
    indices : array of int, optional
        The subset to expose (e.g. the training split); all tiles by default.
    """

    def __init__(self, tiles: xr.Dataset, indices: np.ndarray | None = None) -> None:
        self.indices = np.arange(tiles.sizes["tile"]) if indices is None else np.asarray(indices)
        subset = tiles[list(TILE_ARRAYS)].isel(tile=self.indices)
        self._lazy: dict[str, xr.DataArray] = {name: subset[name] for name in TILE_ARRAYS}
        self._memory: dict[str, np.ndarray] | None = None

    @property
    def loaded(self) -> bool:
        """Whether :meth:`load` has brought the tiles into memory."""
        return self._memory is not None

    def load(self) -> TileDataset:
        """Read the tiles into memory (once; later calls do nothing) and return ``self``."""
        if self._memory is None:
            self._memory = {
                name: np.ascontiguousarray(array.values) for name, array in self._lazy.items()
            }
            self._lazy = {}  # workers then receive arrays, not store handles
        return self

    def subset(self, positions: np.ndarray) -> TileDataset:
        """The tiles at ``positions`` of this dataset; repeats allowed (a bootstrap resample).

        Loaded tiles stay in memory (copied rows); lazy ones stay lazy.
        """
        positions = np.asarray(positions, dtype=np.intp)
        if positions.size and not (0 <= positions.min() and positions.max() < len(self)):
            raise IndexError(
                f"TileDataset.subset: positions must lie in [0, {len(self)}), "
                f"got {positions.min()}..{positions.max()}"
            )
        chosen = object.__new__(TileDataset)
        chosen.indices = self.indices[positions]
        chosen._lazy = {name: array.isel(tile=positions) for name, array in self._lazy.items()}
        chosen._memory = (
            None
            if self._memory is None
            else {name: array[positions] for name, array in self._memory.items()}
        )
        return chosen

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, ...]:
        if self._memory is not None:
            return tuple(torch.from_numpy(self._memory[name][item]) for name in TILE_ARRAYS)
        return tuple(
            torch.from_numpy(np.asarray(self._lazy[name][item].values, dtype=np.float32))
            for name in TILE_ARRAYS
        )

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """All tiles as five stacked tensors sharing the dataset's memory.

        Raises
        ------
        ValueError
            If the tiles are not in memory yet (call :meth:`load` first).
        """
        if self._memory is None:
            raise ValueError(
                f"TileDataset.tensors() needs the {len(self)} tiles in memory; call .load() first"
            )
        return tuple(torch.from_numpy(self._memory[name]) for name in TILE_ARRAYS)
