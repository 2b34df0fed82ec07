"""The fused inference graph: the same bytes as fill + map_overlap, from far fewer tasks."""

from __future__ import annotations

import warnings

import dask
import numpy as np
import pytest
import torch
import xarray as xr

import xdeepbedmap  # noqa: F401 - registers the accessor
import xdeepbedmap.run_plan as run_plan
from xdeepbedmap.block_graph import _reads, fused_depth
from xdeepbedmap.block_windows import Pieces, _mirror, copy_rect
from xdeepbedmap.ensemble import superresolve_ensemble
from xdeepbedmap.gapfill import GapFillWarning, InputRangeWarning, plan_fill
from xdeepbedmap.gapfill_source import _cell_sums
from xdeepbedmap.grids import VARIABLES
from xdeepbedmap.input_checks import extremes, out_of_range
from xdeepbedmap.kernel import live_windows, plan_windows
from xdeepbedmap.model import Generator
from xdeepbedmap.synthetic import make_region

HALO = 4


@pytest.fixture(scope="module")
def tiny_model() -> Generator:
    torch.manual_seed(0)
    return Generator(num_residual_blocks=1).eval()


@pytest.fixture(scope="module")
def coast() -> xr.Dataset:
    """48 x 52 km with ocean, a surface gap reaching the domain's edge, and an ice mask."""
    ds, _ = make_region((48, 52), seed=7)
    surface = ds.surface.values.copy()
    surface[150:330, 300:520] = np.nan  # 18 x 22 km, up to the east edge
    vx = ds.vx.values.copy()
    vx[:20, :30] = np.nan  # a corner gap in one velocity component only
    ice = np.ones(ds.bed.shape, np.float32)
    ice[30:, :6] = 0.0
    return ds.assign(
        surface=ds.surface.copy(data=surface),
        vx=ds.vx.copy(data=vx),
        ice_mask=(("y", "x"), ice),
    )


def _general(monkeypatch):
    """Force map_kernel's general graph (fill, then map_overlap)."""
    monkeypatch.setattr(run_plan, "FUSED_GRAPH", False)


def _run(ds, model, chunks, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GapFillWarning)
        warnings.simplefilter("ignore", InputRangeWarning)
        out = ds.deepbedmap.superresolve(model, halo=HALO, chunks=chunks, **options)
        return out.values if hasattr(out, "values") else out


@pytest.mark.parametrize("chunks", [(16, 20), (13, 52), 48, (7, 9)])
def test_fused_graph_gives_the_bytes_of_the_general_graph(coast, tiny_model, chunks, monkeypatch):
    """(7, 9): chunks narrower than context + fill reach: edges read from several blocks."""
    fused = _run(coast, tiny_model, chunks, window=7)
    _general(monkeypatch)
    general = _run(coast, tiny_model, chunks, window=7)
    assert np.isnan(fused).any() and np.isfinite(fused).any()
    np.testing.assert_array_equal(fused.view(np.uint32), general.view(np.uint32))


def test_fused_graph_matches_for_an_ensemble_and_without_the_ice_mask(
    coast, tiny_model, monkeypatch
):
    torch.manual_seed(1)
    other = Generator(num_residual_blocks=1).eval()
    options = dict(halo=HALO, chunks=(16, 26), window=9, batch_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fused = superresolve_ensemble(coast, [tiny_model, other], **options)
        plain = _run(coast, tiny_model, (16, 26), window=9, ice_mask=False)
        _general(monkeypatch)
        general = superresolve_ensemble(coast, [tiny_model, other], **options)
        plain_general = _run(coast, tiny_model, (16, 26), window=9, ice_mask=False)
    for name in fused.data_vars:
        np.testing.assert_array_equal(fused[name].values, general[name].values)
    np.testing.assert_array_equal(plain.view(np.uint32), plain_general.view(np.uint32))


def test_fused_graph_has_few_tasks_and_annotates_only_the_network_tasks(
    coast, tiny_model, monkeypatch
):
    def lazy():
        return coast.chunk({"y": 16, "x": 26}).deepbedmap.superresolve(
            tiny_model, halo=HALO, chunks=(16, 26), resources={"GPU": 1}
        )

    graph = lazy().data.__dask_graph__()
    _general(monkeypatch)
    general = len(dict(lazy().data.__dask_graph__()))
    inputs = len(dict(coast.chunk({"y": 16, "x": 26}).bed.data.__dask_graph__()))
    # 3 x 2 blocks; the fill source's pyramids are one task per variable, whatever the blocks
    per_block = (len(dict(graph)) - 5 * inputs - len(VARIABLES)) / 6
    assert per_block < 20 and (general - 5 * inputs) / 6 > 3 * per_block
    annotated = [
        name for name, layer in graph.layers.items() if (layer.annotations or {}).get("resources")
    ]
    assert annotated and all("deepbedmap-superresolve" in name for name in annotated)
    assert not any(name.startswith("edges-") for name in annotated)


def test_edges_narrower_than_the_read_come_from_several_blocks():
    reads = _reads((10, 3, 3, 12), 7)
    assert reads[0] == {
        -1: [],
        0: [(0, slice(0, 10))],
        1: [(1, slice(0, 3)), (2, slice(0, 3)), (3, slice(0, 1))],
    }
    assert reads[3][-1] == [(0, slice(9, 10)), (1, slice(0, 3)), (2, slice(0, 3))]
    assert reads[3][1] == []
    assert fused_depth(HALO) == HALO + 1 + 8


def test_dead_windows_are_not_run():
    keep = np.zeros((20, 30), bool)
    keep[3, 25] = True
    plan = live_windows(keep, 10)
    assert plan == {(10, 10): [(0, 20)]}
    assert live_windows(np.ones((20, 30), bool), 10) == plan_windows(20, 30, 10)
    assert live_windows(np.zeros((20, 30), bool), 10) == {}


def test_mirror_is_numpy_symmetric_padding():
    rng = np.random.default_rng(0)
    inside = rng.normal(size=(9, 7)).astype(np.float32)
    for pad in [((3, 0), (0, 2)), ((0, 4), (5, 0)), ((2, 2), (3, 3)), ((9, 9), (7, 7))]:
        dest = np.full((9 + sum(pad[0]), 7 + sum(pad[1])), np.nan, np.float32)
        dest[pad[0][0] : pad[0][0] + 9, pad[1][0] : pad[1][0] + 7] = inside
        _mirror(dest, *pad)
        np.testing.assert_array_equal(dest, np.pad(inside, pad, mode="symmetric"))


def test_copy_rect_reads_the_assembled_overlap():
    rng = np.random.default_rng(1)
    whole = rng.normal(size=(40, 50)).astype(np.float32)
    rows, cols = (0, 8, 30, 40), (0, 10, 35, 50)  # pieces of a block at (8:30, 10:35)
    grid = [
        [whole[rows[a] : rows[a + 1], cols[b] : cols[b + 1]] for b in range(3)] for a in range(3)
    ]
    pieces = Pieces(grid, (0, 0), (40, 50), "bed", 1)
    for r, c in [
        ((-8, 32), (-10, 40)),
        ((-3, 5), (20, 30)),
        ((0, 22), (0, 25)),
        ((15, 32), (-10, 2)),
    ]:
        dest = np.empty((r[1] - r[0], c[1] - c[0]), np.float32)
        copy_rect(pieces, r, c, dest)
        np.testing.assert_array_equal(dest, whole[r[0] + 8 : r[1] + 8, c[0] + 10 : c[1] + 10])


def _cell_sums_reshaped(samples, b0, c0, cell):
    """The cell sums as first written: pad, then ``reshape(...).sum(axis=(1, 3))``."""
    valid = np.isfinite(samples)
    pad = (
        (b0 % cell, -(b0 + samples.shape[0]) % cell),
        (c0 % cell, -(c0 + samples.shape[1]) % cell),
    )
    values = np.pad(np.where(valid, samples, 0.0).astype(np.float64), pad)
    counts = np.pad(valid.astype(np.float64), pad)
    ny, nx = values.shape[0] // cell, values.shape[1] // cell
    return (
        values.reshape(ny, cell, nx, cell).sum(axis=(1, 3)),
        counts.reshape(ny, cell, nx, cell).sum(axis=(1, 3)),
    )


def test_cell_sums_are_the_bytes_of_the_reshaped_sums():
    rng = np.random.default_rng(2)
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        dtype = np.float32 if rng.random() < 0.5 else np.float64
        samples = (rng.normal(500, 300, (h, w)) * 10.0 ** rng.integers(-3, 4, (h, w))).astype(dtype)
        samples[rng.random((h, w)) < 0.3] = np.nan
        samples[rng.random((h, w)) < 0.02] = -np.inf
        args = (int(rng.integers(0, 7)), int(rng.integers(0, 7)), int(rng.choice([1, 2, 3])))
        pairs = zip(_cell_sums(samples, *args), _cell_sums_reshaped(samples, *args), strict=True)
        for got, expected in pairs:
            assert got.dtype == expected.dtype == np.float64
            np.testing.assert_array_equal(got, expected)


def test_known_extremes_give_the_same_range_counts():
    rng = np.random.default_rng(3)
    surface = rng.normal(500, 3000, (50, 60)).astype(np.float32)
    vx, vy = (rng.normal(0, 12000, (50, 60)).astype(np.float32) for _ in range(2))
    for gap in (False, True):
        if gap:
            surface[3:9, 4:7] = np.nan
            vy[0, 0] = np.inf
        lo_hi = extremes(surface)
        assert np.isfinite(lo_hi).all() != gap
        assert out_of_range(surface, check="surface", known=[lo_hi]) == out_of_range(
            surface, check="surface"
        )
        known = [extremes(vx), extremes(vy)]
        assert out_of_range(vx, vy, check="velocity", known=known) == out_of_range(
            vx, vy, check="velocity"
        )


def test_fill_source_names_the_complete_blocks(coast):
    work = coast.chunk({"y": 16, "x": 26, "y_surface": 160, "x_surface": 260})
    work = work.chunk({"y_velocity": 32, "x_velocity": 52})
    with warnings.catch_warnings(), dask.config.set(scheduler="synchronous"):
        warnings.simplefilter("ignore")
        source = plan_fill(work).compute()
    for name in ("bed", "surface", "vx", "vy", "accumulation"):
        array = work[name].data
        for i, j in np.ndindex(*array.numblocks):
            finite = bool(np.isfinite(array.blocks[i, j].compute()).all())
            assert ((name, i, j) in source.complete) == finite, (name, i, j)
