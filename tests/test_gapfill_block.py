"""The per-block gap fill, tile by tile: bit-identical to the whole-block form, cheaper."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from xdeepbedmap.gapfill import GROUPS, _pieces_block
from xdeepbedmap.gapfill_block import EDGE_REACH, _tile_size, field_at, filled
from xdeepbedmap.gapfill_source import FillSource


def _whole_block(ext, core, origin, source, name, factor):
    """The fill as first written: one interpolation and one feature transform over ``ext``."""
    block = ext[core]
    valid = np.isfinite(ext)
    if valid[core].all():
        return block
    field, cell = source.fields[name], source.cell

    def axis(n, start, size, shift):
        pos = ((np.arange(start, start + size) + 0.5) / factor + shift) / cell - 0.5
        i0 = np.clip(np.floor(pos).astype(int), 0, n - 1)
        return i0, np.minimum(i0 + 1, n - 1), np.clip(pos - i0, 0.0, 1.0).astype(np.float32)

    y0, y1, wy = axis(field.shape[0], origin[0], ext.shape[0], source.shift[0])
    x0, x1, wx = axis(field.shape[1], origin[1], ext.shape[1], source.shift[1])
    wy, wx = wy[:, None], wx[None, :]
    smooth = (field[np.ix_(y0, x0)] * (1 - wx) + field[np.ix_(y0, x1)] * wx) * (1 - wy)
    smooth += (field[np.ix_(y1, x0)] * (1 - wx) + field[np.ix_(y1, x1)] * wx) * wy
    values = smooth[core]
    if valid.any():
        distance, (iy, ix) = ndimage.distance_transform_edt(~valid, return_indices=True)
        taper = np.clip(1.0 - distance[core] / (EDGE_REACH * factor), 0.0, 1.0)
        nearest = (iy[core], ix[core])
        values = values + (ext[nearest] - smooth[nearest]) * taper.astype(np.float32)
    out = block.copy()
    np.copyto(out, values, where=~valid[core])
    return out


def _case(seed: int, factor: int, dtype, kind: str):
    rng = np.random.default_rng(seed)
    reach = EDGE_REACH * factor
    n = int(rng.integers(30, 70)) * factor  # several tiles at factor 10
    if kind == "shore":  # long enough for a tile to start below the shore
        n = max(n, _tile_size(reach) + 2 * reach)
    ext = rng.normal(500, 100, (n + 2 * reach, n + factor + 2 * reach)).astype(dtype)
    if kind == "blobs":
        noise = ndimage.gaussian_filter(rng.normal(size=ext.shape), 2.0 * factor)
        ext[noise > np.quantile(noise, rng.uniform(0.3, 0.9))] = np.nan
    elif kind == "sparse":  # isolated data pixels: many equidistant nearest pixels (ties)
        ext[rng.random(ext.shape) < 0.999] = np.nan
    elif kind == "coast":
        ext[:, ext.shape[1] // 3 :] = np.nan
    elif kind == "shore":  # a tile starts reach - 1 rows into the gap: its data is just in reach
        ext[reach + _tile_size(reach) - (reach - 2) :, :] = np.nan
    else:  # "ocean": no data anywhere
        ext[:] = np.nan
    fields = {"surface": (100 * rng.normal(size=(60, 60))).astype(np.float32)}
    source = FillSource(fields, cell=2, land_filled_fraction=0.0, shift=(1, 0))
    core = (slice(reach, ext.shape[0] - reach), slice(reach, ext.shape[1] - reach))
    origin = (int(rng.integers(0, 30)), int(rng.integers(0, 30)))
    return ext, core, origin, source, "surface", factor


@pytest.mark.parametrize("kind", ["blobs", "sparse", "coast", "shore", "ocean"])
@pytest.mark.parametrize("factor", [1, 2, 10])
def test_tiled_fill_is_bit_identical_to_the_whole_block_fill(kind, factor):
    for seed, dtype in [(factor, np.float32), (factor + 100, np.float64)]:
        args = _case(seed, factor, dtype, kind)
        expected = _whole_block(*args)
        got = filled(*args)
        assert got.dtype == expected.dtype
        assert np.isfinite(got).all()
        np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))


@pytest.mark.parametrize("kind", ["blobs", "sparse", "coast", "shore", "ocean"])
@pytest.mark.parametrize("factor", [1, 10])
def test_in_place_fill_gives_the_same_bytes(kind, factor):
    for seed, dtype in [(factor + 7, np.float32), (factor + 107, np.float64)]:
        ext, *rest = _case(seed, factor, dtype, kind)
        expected = filled(ext, *rest)
        scratch = ext.copy()
        got = filled(scratch, *rest, in_place=True)
        assert np.shares_memory(got, scratch)
        np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))


def test_field_at_is_the_elementwise_bilinear_interpolation():
    ext, _, origin, source, name, factor = _case(3, 10, np.float32, "ocean")
    values = field_at(source, name, factor, origin, ext.shape)
    whole = _whole_block(ext, (slice(None), slice(None)), origin, source, name, factor)
    np.testing.assert_array_equal(values, whole)


def test_a_block_without_no_data_is_passed_on_without_a_copy():
    rng = np.random.default_rng(0)
    depth = EDGE_REACH * 10
    grid = [
        [rng.normal(size=(s, t)).astype(np.float32) for t in (depth, 300)] for s in (300, depth)
    ]
    source = FillSource({"surface": np.zeros((4, 4), np.float32)}, 2, 0.0)
    core = (slice(0, 300), slice(depth, depth + 300))
    options = {"names": GROUPS["surface"], "keep": False, "core": core, "origin": (0, 0)}
    out = _pieces_block([grid], [], source, **options, centre=(0, 1))
    assert out.shape == (1, 300, 300)
    assert np.shares_memory(out, grid[0][1])  # the block itself, no overlap assembled
    grid[0][0][5, 5] = np.nan  # a gap in a neighbour's edge alone changes nothing
    out = _pieces_block([grid], [], source, **options, centre=(0, 1))
    assert np.shares_memory(out, grid[0][1])
    grid[0][1][5, 5] = np.nan  # a gap in the block: assembled with its overlap and filled
    out = _pieces_block([grid], [], source, **options, centre=(0, 1))
    assert not np.shares_memory(out, grid[0][1]) and np.isfinite(out).all()
    expected = _whole_block(np.block(grid), core, (0, 0), source, "surface", 10)
    np.testing.assert_array_equal(out[0], expected)
