"""Global gap filling, input checks, the quality layer and the ice mask."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import xarray as xr
from scipy import ndimage

import xdeepbedmap  # noqa: F401 - registers the accessor
from xdeepbedmap.chunking import rechunk_nested
from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.gapfill import (
    GapFillWarning,
    InputRangeWarning,
    fill_inputs,
    plan_fill,
)
from xdeepbedmap.kernel import superresolve_block
from xdeepbedmap.model import Generator
from xdeepbedmap.model_store import resolve_model
from xdeepbedmap.nodata import pull_push
from xdeepbedmap.quality import filled_fraction
from xdeepbedmap.synthetic import make_region

HALO = 12  # the tiny model's seams are below 1e-4 of the std at this halo (test_inference)


@pytest.fixture(scope="module")
def tiny_model() -> Generator:
    torch.manual_seed(0)
    return Generator(num_residual_blocks=1).eval()


@pytest.fixture(scope="module")
def gappy() -> xr.Dataset:
    """A 56 x 56 km region whose surface has a 40 x 40 km gap (and an ocean corner)."""
    ds, _ = make_region((56, 56), seed=5)
    ds = ds.copy()
    inside = (slice(80, 480), slice(100, 500))  # surface px: 40 x 40 base px
    surface = ds.surface.values.copy()
    surface[inside] = np.nan
    ds["surface"] = ds.surface.copy(data=surface)
    return ds


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GapFillWarning)
        return fn(*args, **kwargs)


def test_pull_push_keeps_data_and_fills_the_rest_smoothly():
    mean = np.arange(64.0).reshape(8, 8)
    weight = np.ones((8, 8))
    weight[2:6, 2:6] = 0
    filled = pull_push(np.where(weight > 0, mean, 0.0), weight)
    np.testing.assert_array_equal(filled[weight > 0], mean[weight > 0])
    assert np.isfinite(filled).all()
    # a hole in a plane is filled between the surrounding values, not with zeros
    assert mean.min() < filled[2:6, 2:6].min() and filled[2:6, 2:6].max() < mean.max()
    np.testing.assert_array_equal(pull_push(mean, np.zeros((8, 8))), np.zeros((8, 8)))


def test_fill_does_not_depend_on_chunks(gappy):
    filled = []
    for chunks in (7, 16, 56):
        work = rechunk_nested(gappy, chunks)
        source = _quiet(plan_fill, work)
        filled.append({k: v.compute() for k, v in fill_inputs(work, source).items()})
    for other in filled[1:]:
        for name, values in filled[0].items():
            np.testing.assert_array_equal(values, other[name])
    surface = filled[0]["surface"][0]
    assert np.isfinite(surface).all()
    known = np.isfinite(gappy.surface.values)
    np.testing.assert_array_equal(surface[known], gappy.surface.values[known])
    np.testing.assert_array_equal(filled[0]["base"][2], np.isfinite(gappy.bed.values))


def test_chunked_matches_one_window_with_a_large_surface_gap(gappy, tiny_model):
    one = _quiet(gappy.deepbedmap.superresolve, tiny_model, halo=55, chunks=56, window=56)
    scale = float(np.nanstd(one))
    for chunks in (10, 16, 28):
        out = _quiet(gappy.deepbedmap.superresolve, tiny_model, halo=HALO, chunks=chunks)
        assert np.nanmax(np.abs(out - one)) / scale < 1e-4, chunks
        xr.testing.assert_equal(np.isnan(out), np.isnan(one))


def test_large_gap_warns_once(gappy, tiny_model):
    with pytest.warns(GapFillWarning, match="surface, velocity and accumulation") as record:
        gappy.deepbedmap.superresolve(tiny_model, halo=2, chunks=28)
    assert sum(issubclass(w.category, GapFillWarning) for w in record) == 1


def _cells_with_nodata(ds: xr.Dataset) -> np.ndarray:
    """Base cells where any channel has a non-finite pixel."""
    out = np.zeros(ds.bed.shape, bool)
    for name in ("bed", "accumulation", "surface", "vx", "vy"):
        bad = ~np.isfinite(ds[name].values)
        f = bad.shape[0] // out.shape[0]
        out |= bad.reshape(out.shape[0], f, out.shape[1], f).any(axis=(1, 3))
    return out


def test_quality_layer_is_zero_away_from_gaps_positive_over_them_and_chunk_free(gappy):
    layers = [filled_fraction(rechunk_nested(gappy, c), halo=4) for c in (8, 20, 56)]
    for other in layers[1:]:
        np.testing.assert_array_equal(layers[0].values, other.values)
    q = layers[0]
    assert q.shape == (4 * 56, 4 * 56) and q.name == "filled_fraction"
    cells = q.values[::4, ::4]
    nodata = _cells_with_nodata(gappy)
    within_reach = ndimage.binary_dilation(nodata, np.ones((11, 11), bool))  # reach 5
    assert (~within_reach).sum() > 50  # the region has land away from gaps and ocean
    assert (cells[~within_reach] == 0).all()
    assert (cells[nodata] > 0).all()
    assert cells[30, 30] > 0.1  # inside the surface gap


def test_quality_option_returns_a_dataset_through_the_accessor(gappy, tiny_model):
    out = _quiet(gappy.deepbedmap.superresolve, tiny_model, halo=2, chunks=28, quality=True)
    assert isinstance(out, xr.Dataset) and set(out.data_vars) == {"bed", "filled_fraction"}
    expected = filled_fraction(gappy, halo=2)
    np.testing.assert_array_equal(out.filled_fraction.values, expected.values)
    plain = _quiet(gappy.deepbedmap.superresolve, tiny_model, halo=2, chunks=28)
    assert isinstance(plain, xr.DataArray)
    xr.testing.assert_identical(out.bed, plain)


def test_infinity_is_no_data_like_nan(tiny_model):
    ds, _ = make_region((36, 36), seed=3)
    with_inf, with_nan = ds.copy(), ds.copy()
    bed = ds.bed.values.copy()
    bed[20, 20] = np.inf
    with_inf["bed"] = ds.bed.copy(data=bed)
    bed[20, 20] = np.nan
    with_nan["bed"] = ds.bed.copy(data=bed)
    surface = ds.surface.values.copy()
    surface[150, 150] = -np.inf
    with_inf["surface"] = ds.surface.copy(data=surface)
    surface[150, 150] = np.nan
    with_nan["surface"] = ds.surface.copy(data=surface)
    a = with_inf.deepbedmap.superresolve(tiny_model, halo=4, chunks=18)
    b = with_nan.deepbedmap.superresolve(tiny_model, halo=4, chunks=18)
    xr.testing.assert_identical(a, b)
    blank = np.isnan(a.values)
    expected = np.kron(~np.isfinite(with_inf.bed.values), np.ones((4, 4))).astype(bool)
    np.testing.assert_array_equal(blank, expected)  # only the inf cell (and the ocean)


def test_values_outside_physical_ranges_warn_with_variable_and_count(tiny_model):
    ds, _ = make_region((20, 20), seed=1)
    ds = ds.copy()
    bed = ds.bed.values.copy()
    bed[5, 5:8] = 1e30
    ds["bed"] = ds.bed.copy(data=bed)
    ds["vx"] = ds.vx.copy(data=np.where(np.arange(40) == 3, 3e4, ds.vx.values))
    ds["accumulation"] = ds.accumulation.copy(data=ds.accumulation.values - 1e6)
    with pytest.warns(InputRangeWarning) as record:
        ds.deepbedmap.superresolve(tiny_model, halo=2)
    messages = " | ".join(str(w.message) for w in record)
    assert "bed: 3 value(s) outside [-9000, 5000]" in messages
    assert "velocity: 40 value(s) speed > 20000 m/yr" in messages
    assert f"accumulation: {int(np.isfinite(ds.accumulation.values).sum())} value(s)" in messages


def test_ice_mask_is_applied_by_default_and_switchable(tiny_model):
    ds, _ = make_region((36, 36), seed=3)
    ice = np.ones((36, 36), np.float32)
    ice[:10, :] = 0.3  # under the 0.5 threshold: not ice
    with_mask = ds.assign(ice_mask=(("y", "x"), ice))
    masked = with_mask.deepbedmap.superresolve(tiny_model, halo=4)
    unmasked = with_mask.deepbedmap.superresolve(tiny_model, halo=4, ice_mask=False)
    plain = ds.deepbedmap.superresolve(tiny_model, halo=4)
    assert np.isnan(masked.values[:40]).all()
    np.testing.assert_array_equal(masked.values[40:], plain.values[40:])
    xr.testing.assert_equal(unmasked, plain)
    assert masked.attrs["ice_mask_applied"] == 1 and unmasked.attrs["ice_mask_applied"] == 0
    with pytest.raises(XDeepBedMapError, match="no 'ice_mask' variable"):
        ds.deepbedmap.superresolve(tiny_model, ice_mask=True)


_NAMES = ("bed", "accumulation", "surface", "vx", "vy")


def _block(seed: int) -> list[np.ndarray]:
    """Base (bed, accumulation, mask), surface and velocity (vx, vy) groups of a region."""
    ds, _ = make_region((20, 20), seed=seed)
    a = {k: np.nan_to_num(ds[k].values).astype(np.float32) for k in _NAMES}
    mask = np.ones((20, 20), np.float32)
    return [
        np.stack([a["bed"], a["accumulation"], mask]),
        a["surface"][None],
        np.stack([a["vx"], a["vy"]]),
    ]


def test_kernel_buffers_give_the_plain_network_result(tiny_model):
    """The preallocated (unpinned, CPU) batch path equals calling the network by hand."""
    arrays = _block(2)
    options = dict(spec=resolve_model(tiny_model), halo=3, device=torch.device("cpu"))
    options.update(compute_dtype=torch.float32, pin_memory=False)
    x, acc, surface = (torch.from_numpy(a) for a in (arrays[0][0], arrays[0][1], arrays[1][0]))
    vx, vy = (torch.from_numpy(a) for a in arrays[2])

    def by_hand(r0: int, c0: int, n: int) -> np.ndarray:  # window of n + 2 depth base px
        s = slice(r0, r0 + n), slice(c0, c0 + n)
        s2 = tuple(slice(2 * t.start, 2 * t.stop) for t in s)
        s10 = tuple(slice(10 * t.start, 10 * t.stop) for t in s)
        with torch.inference_mode():
            y = tiny_model(
                x[s][None, None], surface[s10][None, None],
                torch.stack([vx[s2], vy[s2]])[None], acc[s][None, None],
            )  # fmt: skip
        return y.numpy()[0, 0, 12:-12, 12:-12]

    one = superresolve_block(*arrays, window=12, batch_size=1, **options)
    np.testing.assert_array_equal(one, by_hand(0, 0, 20))
    many = superresolve_block(*arrays, window=6, batch_size=3, **options)  # 4 windows
    for r0 in (0, 6):
        for c0 in (0, 6):
            tile = many[4 * r0 : 4 * r0 + 24, 4 * c0 : 4 * c0 + 24]
            np.testing.assert_allclose(tile, by_hand(r0, c0, 14), rtol=0, atol=1e-5)


@pytest.mark.gpu
def test_pinned_buffers_on_cuda_match_unpinned(tiny_model):
    arrays = _block(2)
    options = dict(spec=resolve_model(tiny_model), halo=3, window=6, batch_size=3)
    options.update(device=torch.device("cuda"), compute_dtype=torch.float32)
    pinned = superresolve_block(*arrays, pin_memory=True, **options)
    plain = superresolve_block(*arrays, pin_memory=False, **options)
    np.testing.assert_array_equal(pinned, plain)


def test_quality_layer_is_written_beside_each_output(gappy, tiny_model, tmp_path):
    from xdeepbedmap.io import open_output, quality_path, write_outputs

    out = _quiet(gappy.deepbedmap.superresolve, tiny_model, halo=2, chunks=28, quality=True)
    written = write_outputs(out, [tmp_path / "bed.zarr", tmp_path / "bed.tif"])
    assert written == [
        tmp_path / "bed.zarr",
        tmp_path / "bed.tif",
        tmp_path / "bed_quality.zarr",
        tmp_path / "bed_quality.tif",
    ]
    assert quality_path(tmp_path / "bed.tif") == tmp_path / "bed_quality.tif"
    for path in written[2:]:
        np.testing.assert_array_equal(open_output(path).values, out.filled_fraction.values)
    np.testing.assert_array_equal(open_output(written[1]).values, out.bed.values)


def test_fill_reads_its_own_copy_of_rechunked_inputs():
    """The fill source reads the inputs through keys of its own, rechunked inputs included.

    (dask's ``clone`` drops rechunk layers' dependencies; the copy renames
    every key instead, so no input block is shared with the network's tasks
    and held until the fill source is complete.)
    """
    import dask.array as da

    from xdeepbedmap.gapfill import _reading_copy

    rechunked = da.arange(144.0, chunks=5).reshape(12, 12).rechunk((4, 3))
    plain = da.random.default_rng(0).random((12, 12), chunks=4)
    for array in (rechunked, plain):
        copy = _reading_copy(array)
        assert copy.name != array.name
        assert not set(dict(copy.__dask_graph__())) & set(dict(array.__dask_graph__()))
        np.testing.assert_array_equal(copy.compute(), array.compute())


def _base_window(ds: xr.Dataset, r0: int, c0: int, n: int) -> xr.Dataset:
    """Base pixels ``r0 : r0 + n`` x ``c0 : c0 + n`` of every input."""
    cut = {"y": slice(r0, r0 + n), "x": slice(c0, c0 + n)}
    for f, suffix in ((10, "_surface"), (2, "_velocity")):
        cut[f"y{suffix}"] = slice(f * r0, f * (r0 + n))
        cut[f"x{suffix}"] = slice(f * c0, f * (c0 + n))
    return ds.isel(cut)


def test_fill_inside_a_gap_does_not_depend_on_where_the_region_starts():
    """Fill cells and pyramid levels sit on the global grid, not on the region's first pixel."""
    ds, _ = make_region((48, 48), seed=7)
    gap = np.zeros((48, 48), bool)
    gap[18:28, 20:30] = True  # 10 x 10 km, well inside both windows
    ds = ds.assign(surface=ds.surface.where(~np.kron(gap, np.ones((10, 10), bool))))
    fills = {}
    for r0, c0 in ((0, 0), (1, 2), (3, 3)):  # odd and even offsets on both axes
        win = rechunk_nested(_base_window(ds, r0, c0, 44), 11)
        surface = _quiet(lambda w=win: fill_inputs(w, plan_fill(w))["surface"][0].compute())
        fills[r0, c0] = surface[10 * (18 - r0) : 10 * (28 - r0), 10 * (20 - c0) : 10 * (30 - c0)]
    assert np.isfinite(fills[0, 0]).all()
    for other in ((1, 2), (3, 3)):
        np.testing.assert_array_equal(fills[other], fills[0, 0])


def test_pull_push_levels_follow_the_global_origin():
    mean = np.random.default_rng(0).normal(size=(40, 40))
    weight = np.ones((40, 40))
    weight[14:26, 15:27] = 0  # a 12 x 12 hole
    full = pull_push(np.where(weight > 0, mean, 0.0), weight, origin=(100, -7))
    for dr, dc in ((1, 0), (0, 3), (5, 1)):
        part = pull_push(
            np.where(weight > 0, mean, 0.0)[dr:, dc:], weight[dr:, dc:], origin=(100 + dr, -7 + dc)
        )
        np.testing.assert_allclose(part[14 - dr : 26 - dr, 15 - dc : 27 - dc],
                                   full[14:26, 15:27], rtol=0, atol=1e-9)  # fmt: skip
    # anchored at the array's first pixel instead, the hole fills differently
    shifted = pull_push(np.where(weight > 0, mean, 0.0)[1:, :], weight[1:, :], origin=(0, 0))
    assert np.abs(shifted[13:25, 15:27] - full[14:26, 15:27]).max() > 1e-3


def test_relaxation_in_place_gives_the_whole_array_sweeps_bytes():
    from xdeepbedmap.nodata import _relax

    rng = np.random.default_rng(4)
    for h, w in ((1, 7), (9, 1), (23, 31), (40, 12)):
        values = rng.normal(size=(h, w))
        free = rng.random((h, w)) < 0.4
        free[:, : w // 2] |= h > 20  # free cells on the array's edge too
        expected = values
        for _ in range(4):  # the sweeps as first written: pad, average, where
            p = np.pad(expected, 1, mode="edge")
            mean = 0.25 * (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:])
            expected = np.where(free, mean, expected)
        got = _relax(values.copy(), free, 4)
        np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))


def test_upsampling_in_place_gives_the_concatenating_form_bytes():
    from xdeepbedmap.nodata import _upsample2

    rng = np.random.default_rng(5)
    for h, w in ((1, 1), (1, 6), (7, 1), (13, 9)):
        values = rng.normal(size=(h, w)) * 1e3
        expected = values
        for axis in (0, 1):  # the form as first written
            v = np.moveaxis(expected, axis, 0)
            before = np.concatenate([v[:1], v[:-1]])
            after = np.concatenate([v[1:], v[-1:]])
            out = np.empty((2 * v.shape[0], *v.shape[1:]))
            out[0::2] = 0.75 * v + 0.25 * before
            out[1::2] = 0.75 * v + 0.25 * after
            expected = np.moveaxis(out, 0, axis)
        got, expected = (np.ascontiguousarray(a) for a in (_upsample2(values), expected))
        np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))


def test_pull_push_ends_on_a_region_across_the_grid_origin():
    """Cells either side of global index 0 pair into two again at origin -1: no endless pyramid."""
    mean = np.random.default_rng(1).normal(size=(6, 64))
    weight = np.ones((6, 64))
    weight[:, 5:] = 0  # data only west of global column 0 (the region starts at -5)
    filled = pull_push(np.where(weight > 0, mean, 0.0), weight, origin=(-3, -5))
    assert np.isfinite(filled).all()
    np.testing.assert_array_equal(filled[:, :5], mean[:, :5])
    far = filled[:, -8:]  # far from the data: near the data's mean, no blow-up
    assert np.abs(far - mean[:, :5].mean()).max() < 3 * mean[:, :5].std()


def test_fill_meets_the_data_at_a_gap_edge_and_is_the_smooth_field_beyond_reach(gappy):
    """The nearest valid pixel's residual carries the texture in, and fades out at EDGE_REACH."""
    from xdeepbedmap.gapfill import EDGE_REACH, _field_at

    truth = make_region((56, 56), seed=5)[0].surface.values  # the fixture before the gap
    work = rechunk_nested(gappy, 16)
    source = _quiet(lambda: plan_fill(work).compute())
    filled = fill_inputs(work, source)["surface"][0].compute()
    smooth = _field_at(source, "surface", 10, (0, 0), filled.shape)
    nodata = ~np.isfinite(gappy.surface.values)
    distance = ndimage.distance_transform_edt(nodata)  # surface px to the nearest data
    edge = nodata & (distance <= 5) & np.isfinite(truth)  # within 0.5 km inside the gap
    assert edge.sum() > 1000

    def rms(values):
        return float(np.sqrt(np.mean((values[edge] - truth[edge]) ** 2)))

    assert rms(filled) < 0.5 * rms(smooth)  # measured 9.0 m against 31.7 m
    beyond = distance > 10 * EDGE_REACH
    assert beyond.sum() > 1000
    np.testing.assert_array_equal(filled[beyond], smooth[beyond])
