"""Training tiles: equal to direct slicing, NaN-free, reproducibly split, cached in Zarr."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from xdeepbedmap.grids import make_grid, output_grid, validate_inputs
from xdeepbedmap.synthetic import make_region
from xdeepbedmap.training.tiles import TileDataset, TileLayout, build_tiles, split_tiles
from xdeepbedmap.truth import align_truth, grid_points


@pytest.fixture(scope="module")
def region():
    return make_region((40, 36), seed=11)


def brute_force_origins(inputs, truth, layout):
    """Every NaN-free tile origin, by looping over all windows."""
    n, t = layout.base_size, layout.tile_size
    step = layout.stride // 4
    found = []
    for r in range(0, inputs.sizes["y"] - n + 1, step):
        for c in range(0, inputs.sizes["x"] - n + 1, step):
            windows = [
                truth.values[4 * r + 4 : 4 * r + 4 + t, 4 * c + 4 : 4 * c + 4 + t],
                inputs.bed.values[r : r + n, c : c + n],
                inputs.surface.values[10 * r : 10 * (r + n), 10 * c : 10 * (c + n)],
                inputs.vx.values[2 * r : 2 * (r + n), 2 * c : 2 * (c + n)],
            ]
            if all(np.isfinite(w).all() for w in windows):
                found.append((r, c))
    return found


@given(
    stride=st.sampled_from([4, 8, 12, 36]),
    block=st.integers(2, 12),
    chunk=st.sampled_from([None, 7, 16]),
    base_size=st.sampled_from([5, 11]),
)
@settings(max_examples=8)
def test_tiles_equal_direct_slices_and_exclude_nan(region, stride, block, chunk, base_size):
    inputs, truth = region
    if chunk is not None:
        inputs = inputs.chunk({"y": chunk, "x": chunk})
    layout = TileLayout(base_size=base_size, stride=stride)
    tiles = build_tiles([(inputs, truth)], layout=layout, block=block)
    origins = [tuple(o) for o in tiles.origin.values]
    assert origins == brute_force_origins(inputs, truth, layout)  # all clean windows, no others
    n, t = base_size, layout.tile_size
    rng = np.random.default_rng(stride * 100 + block)
    for k in rng.choice(len(origins), size=min(5, len(origins)), replace=False):
        r, c = origins[k]
        np.testing.assert_array_equal(tiles.x.values[k, 0], inputs.bed.values[r : r + n, c : c + n])
        np.testing.assert_array_equal(
            tiles.w1.values[k, 0],
            inputs.surface.values[10 * r : 10 * (r + n), 10 * c : 10 * (c + n)],
        )
        vel = (slice(2 * r, 2 * (r + n)), slice(2 * c, 2 * (c + n)))
        np.testing.assert_array_equal(
            tiles.w2.values[k], np.stack([inputs.vx.values[vel], inputs.vy.values[vel]])
        )
        np.testing.assert_array_equal(
            tiles.w3.values[k, 0], inputs.accumulation.values[r : r + n, c : c + n]
        )
        np.testing.assert_array_equal(
            tiles.y.values[k, 0], truth.values[4 * r + 4 : 4 * r + 4 + t, 4 * c + 4 : 4 * c + 4 + t]
        )
    for name in ("x", "w1", "w2", "w3", "y"):
        assert np.isfinite(tiles[name].values).all()


def test_split_is_reproducible_disjoint_and_95_5():
    train, val = split_tiles(1000, seed=3)
    again = split_tiles(1000, seed=3)
    np.testing.assert_array_equal(train, again[0])
    np.testing.assert_array_equal(val, again[1])
    assert len(val) == 50 and len(train) == 950
    assert not set(train) & set(val) and set(train) | set(val) == set(range(1000))
    assert not np.array_equal(val, split_tiles(1000, seed=4)[1])
    with pytest.raises(ValueError, match="validation_fraction"):
        split_tiles(10, validation_fraction=1.5)


def test_zarr_cache_is_built_once_and_checked(region, tmp_path):
    inputs, truth = region
    store = tmp_path / "tiles.zarr"
    first = build_tiles([(inputs, truth)], store=store, layout=TileLayout(stride=8))
    assert store.exists() and not (tmp_path / "tiles.zarr.partial").exists()
    stamp = (store / "zarr.json").stat().st_mtime_ns
    again = build_tiles([(inputs, truth)], store=store, layout=TileLayout(stride=8))
    assert (store / "zarr.json").stat().st_mtime_ns == stamp  # reused, not rebuilt
    np.testing.assert_array_equal(first.y.values, again.y.values)
    with pytest.raises(ValueError, match="another recipe"):
        build_tiles([(inputs, truth)], store=store, layout=TileLayout(stride=12))
    lazy = TileDataset(again, np.array([3, 1]))
    eager = TileDataset(again, np.array([3, 1])).load()
    for a, b in zip(lazy[1], eager[1], strict=True):
        assert torch.equal(a, b)
    # zarr's I/O thread does not survive fork: worker processes are spawned
    loader = torch.utils.data.DataLoader(
        lazy, batch_size=2, num_workers=1, multiprocessing_context="spawn"
    )
    batch = next(iter(loader))
    assert batch[0].shape == (2, 1, 11, 11) and batch[4].shape == (2, 1, 36, 36)


def test_partial_truth_and_scattered_points(region):
    inputs, truth = region
    base = validate_inputs(inputs)
    patch = truth.isel(y=slice(40, 100), x=slice(20, 80))
    aligned = align_truth(patch, base)
    assert aligned.shape == truth.shape
    assert np.isnan(aligned.values[:40]).all()
    np.testing.assert_array_equal(aligned.values[40:100, 20:80], patch.values)
    with pytest.raises(ValueError, match="offset by 100.000 m"):
        align_truth(patch.assign_coords(x=patch.x + 100.0), base)

    grid = output_grid(make_grid(0.0, 0.0, 1000.0, (3, 3), "EPSG:3031"))
    x = np.array([10.0, 20.0, 260.0, 2990.0, 5000.0])
    y = np.array([-10.0, -200.0, -10.0, -2990.0, -10.0])
    z = np.array([100.0, 200.0, 50.0, 7.0, 1e6])
    gridded = grid_points(x, y, z, grid)
    assert gridded.shape == (12, 12)
    assert gridded.values[0, 0] == 150.0 and gridded.values[0, 1] == 50.0
    assert gridded.values[11, 11] == 7.0 and np.isfinite(gridded.values).sum() == 3


def test_cache_of_other_regions_with_the_same_geometry_is_refused(tmp_path):
    store = tmp_path / "tiles.zarr"
    build_tiles([make_region((24, 24), seed=1)], store=store, layout=TileLayout(stride=8))
    with pytest.raises(ValueError, match="another recipe"):
        build_tiles([make_region((24, 24), seed=2)], store=store, layout=TileLayout(stride=8))


def test_dataset_is_lazy_until_loaded(region):
    tiles = build_tiles([region], layout=TileLayout(stride=36))
    dataset = TileDataset(tiles, np.array([2, 0]))
    assert not dataset.loaded and len(dataset) == 2
    with pytest.raises(ValueError, match=r"needs the 2 tiles in memory; call \.load\(\) first"):
        dataset.tensors()
    lazy_item = dataset[1]
    assert dataset.load() is dataset and dataset.loaded
    for a, b in zip(lazy_item, dataset[1], strict=True):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(dataset.tensors()[4].numpy(), tiles.y.values[[2, 0]])
    dataset.tensors()[4][0] = -1.0  # tensors share the loaded memory ...
    assert dataset.load() is dataset and (dataset[0][4] == -1.0).all()  # ... a second load keeps it


def test_regions_without_a_clean_tile_are_refused(region):
    inputs, truth = region
    with pytest.raises(ValueError, match="no NaN-free tile in the given regions"):
        build_tiles([(inputs, truth * np.nan)])
