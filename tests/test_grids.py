"""The grid-nesting contract: valid nests pass, every violation names the variable."""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import base_grids, dataset_on, nested_names, sharing_dims
from xdeepbedmap.grids import (
    VARIABLES,
    NestingError,
    coarsen,
    grid_coords,
    grid_of,
    make_grid,
    output_grid,
    pixel_centres,
    validate_inputs,
    window,
    zoom_in,
)
from xdeepbedmap.inputs import resample_to


def edges(grid):
    """``(left, top, pixel size)`` of a north-up grid."""
    return grid.boundingbox.left, grid.boundingbox.top, grid.resolution.x


@given(base=base_grids())
def test_valid_nests_pass(base):
    found = validate_inputs(dataset_on(base))
    assert found.shape == base.shape and found.crs == base.crs
    assert edges(found) == pytest.approx(edges(base), abs=1e-6)


@given(base=base_grids(), noise=st.floats(-1e-7, 1e-7))
def test_float_noise_is_tolerated(base, noise):
    ds = dataset_on(base)
    ds = ds.assign_coords(x_surface=ds.x_surface * (1 + noise), y_velocity=ds.y_velocity + noise)
    validate_inputs(ds)


@given(
    base=base_grids(),
    name=nested_names,
    axis=st.sampled_from(["x", "y"]),
    fraction=st.floats(0.02, 0.98),
)
def test_shifted_origin_names_variable(base, name, axis, fraction):
    factor = VARIABLES[name][2]
    grid = zoom_in(base, factor)
    left, top, pixel = edges(grid)
    shift = fraction * pixel
    moved = make_grid(
        left + (shift if axis == "x" else 0.0),
        top + (shift if axis == "y" else 0.0),
        pixel,
        grid.shape,
        grid.crs,
    )
    with pytest.raises(NestingError, match=rf"^{name}: {axis} origin .* offset by [+-]\d"):
        validate_inputs(dataset_on(base, dict.fromkeys(sharing_dims(name), moved)))


@given(base=base_grids(), name=nested_names, ratio=st.sampled_from([0.9, 0.9 * 0.999, 1.1, 2.0]))
def test_wrong_spacing_names_variable(base, name, ratio):
    grid = zoom_in(base, VARIABLES[name][2])
    left, top, pixel = edges(grid)
    wrong = make_grid(left, top, pixel * ratio, grid.shape, grid.crs)
    with pytest.raises(NestingError, match=rf"^{name}: spacing .* expected {pixel:g} m"):
        validate_inputs(dataset_on(base, dict.fromkeys(sharing_dims(name), wrong)))


@given(base=base_grids(), name=nested_names, extra=st.sampled_from([(1, 0), (0, 1), (-1, 0)]))
def test_wrong_shape_names_variable(base, name, extra):
    grid = zoom_in(base, VARIABLES[name][2])
    shape = (grid.shape[0] + extra[0], grid.shape[1] + extra[1])
    wrong = make_grid(*edges(grid), shape, grid.crs)
    expected = re.escape(f"{name}: shape {shape}, expected {tuple(grid.shape)}")
    with pytest.raises(NestingError, match=f"^{expected}"):
        validate_inputs(dataset_on(base, dict.fromkeys(sharing_dims(name), wrong)))


@given(base=base_grids(), name=st.sampled_from(list(VARIABLES)))
def test_other_crs_names_variable(base, name):
    with pytest.raises(NestingError, match=rf"^{name}: CRS EPSG:3413, expected EPSG:3031"):
        validate_inputs(dataset_on(base, crs={name: "EPSG:3413"}))


def test_wrong_base_spacing_missing_variable_and_dims():
    base = make_grid(0.0, 0.0, 500.0, (4, 4))
    with pytest.raises(NestingError, match="bed: spacing 500 m, expected 1000 m"):
        validate_inputs(dataset_on(base))
    ds = dataset_on(make_grid(0.0, 0.0, 1000.0, (4, 4))).drop_vars("vy")
    with pytest.raises(NestingError, match=r"lacks variable\(s\) \['vy'\]"):
        validate_inputs(ds)
    ds = dataset_on(make_grid(0.0, 0.0, 1000.0, (4, 4)))
    ds["accumulation"] = ds["accumulation"].T
    with pytest.raises(NestingError, match=r"accumulation: dims \('x', 'y'\)"):
        validate_inputs(ds)


def test_missing_crs_and_south_up():
    ds = dataset_on(make_grid(0.0, 0.0, 1000.0, (4, 4)))
    with pytest.raises(NestingError, match="bed: no CRS recorded"):
        validate_inputs(ds.drop_vars("spatial_ref"))
    with pytest.raises(NestingError, match="bed: y coordinates must decrease"):
        validate_inputs(ds.sortby("y"))


@given(base=base_grids())
def test_output_grid_centres_are_sub_pixel_centres(base):
    out = output_grid(base)
    assert out.shape == (4 * base.shape[0], 4 * base.shape[1])
    (out_y, out_x), (base_y, base_x) = pixel_centres(out), pixel_centres(base)
    # the mean of each 4 x 4 block of output centres is the base centre
    np.testing.assert_allclose(out_x.reshape(-1, 4).mean(axis=1), base_x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out_y.reshape(-1, 4).mean(axis=1), base_y, rtol=0, atol=1e-6)
    assert out.boundingbox.bbox == pytest.approx(base.boundingbox.bbox)
    assert coarsen(out, 4) == base


@given(ny=st.integers(1, 30), nx=st.integers(1, 30))
def test_odd_output_size_is_rejected(ny, nx):
    grid = make_grid(0.0, 0.0, 250.0, (ny, nx))
    if ny % 4 or nx % 4:
        with pytest.raises(NestingError, match=f"a {ny} x {nx} grid does not divide into 4 x 4"):
            coarsen(grid, 4)
    else:
        assert coarsen(grid, 4).shape == (ny // 4, nx // 4)


def test_grid_of_rejects_irregular_and_non_square():
    x = np.array([0.5, 1.5, 2.7]) * 1000
    da = xr.DataArray(np.zeros((2, 3)), dims=("y", "x"), coords={"y": [1500.0, 500.0], "x": x})
    with pytest.raises(NestingError, match="x coordinates are not regularly spaced"):
        grid_of(da, "bed")
    da = xr.DataArray(
        np.zeros((2, 2)), dims=("y", "x"), coords={"y": [1000.0, 0.0], "x": [0.0, 500.0]}
    )
    with pytest.raises(NestingError, match="pixels must be square"):
        grid_of(da, "bed")


def test_resample_to_bilinear_reproduces_a_plane():
    # 450 m "velocity" holding a linear ramp, brought onto a 500 m nest: bilinear
    # resampling is exact for a plane away from the edges.
    src = make_grid(-1_000_000.0, 200_000.0, 450.0, (60, 60))
    src_y, src_x = pixel_centres(src)
    xx, yy = np.meshgrid(src_x, src_y)
    da = xr.DataArray(
        (0.01 * xx + 0.02 * yy).astype(np.float32),
        dims=("y", "x"),
        coords=grid_coords(src),
        name="vx",
    ).rio.write_crs("EPSG:3031")
    target = make_grid(-995_000.0, 195_000.0, 500.0, (40, 40))
    out = resample_to(da.chunk(20), target, "y_velocity", "x_velocity")
    assert out.dims == ("y_velocity", "x_velocity")
    assert hasattr(out.data, "dask")  # stays lazy
    target_y, target_x = pixel_centres(target)
    tx, ty = np.meshgrid(target_x, target_y)
    np.testing.assert_allclose(out.values, 0.01 * tx + 0.02 * ty, rtol=1e-5)


@given(base=base_grids(), factor=st.sampled_from([1, 2, 4, 10]))
def test_coordinates_are_exact_float64_pixel_centres(base, factor):
    grid = zoom_in(base, factor)
    left, top, pixel = edges(grid)
    assert pixel == 1000.0 / factor  # divided, not multiplied by a rounded 1/factor
    odd = zoom_in(make_grid(0.0, 0.0, 333.3, (2, 2)), 10)
    assert odd.resolution.x == 33.33  # GeoBox.zoom_out(1 / 10) gives 33.330000000000005
    y, x = pixel_centres(grid)
    assert x.dtype == y.dtype == np.float64
    np.testing.assert_array_equal(x, left + (np.arange(grid.shape[1]) + 0.5) * pixel)
    np.testing.assert_array_equal(y, top - (np.arange(grid.shape[0]) + 0.5) * pixel)
    assert (np.diff(y) < 0).all() and (np.diff(x) > 0).all()
    coords = grid_coords(grid, "y_surface", "x_surface")
    assert coords["y_surface"][0] == "y_surface"
    np.testing.assert_array_equal(coords["x_surface"][1], x)


@given(base=base_grids())
def test_grid_of_agrees_with_odc_geobox(base):
    import odc.geo.xr  # noqa: F401

    ds = dataset_on(base)
    for name, (ydim, xdim, _) in VARIABLES.items():
        found = grid_of(ds[name], name, ydim, xdim)
        theirs = ds[name].rename({ydim: "y", xdim: "x"}).odc.geobox
        assert found.shape == theirs.shape and found.crs == theirs.crs == base.crs
        np.testing.assert_allclose(found.affine[:6], theirs.affine[:6], rtol=1e-12, atol=1e-6)


def test_zoom_in_needs_a_positive_integer():
    grid = make_grid(0.0, 0.0, 1000.0, (2, 2))
    for factor in (0, -2, 2.5):
        with pytest.raises(
            ValueError, match=f"zoom factor must be a positive integer, got {factor}"
        ):
            zoom_in(grid, factor)


def test_window_keeps_pixels_whose_centres_are_inside():
    grid = make_grid(0.0, 4000.0, 1000.0, (4, 5))  # centres x 500..4500, y 3500..500
    # bbox edges on centres keep those pixels; a bbox edge 1 m short of a centre drops it
    assert window(grid, (500.0, 1500.0, 2500.0, 3500.0)) == (slice(0, 3), slice(0, 3))
    assert window(grid, (501.0, 1501.0, 2499.0, 3499.0)) == (slice(1, 2), slice(1, 2))
    assert window(grid, (-1e6, -1e6, 1e6, 1e6)) == (slice(0, 4), slice(0, 5))
    cropped = grid[window(grid, (1200.0, 900.0, 2600.0, 2100.0))]
    assert edges(cropped) == (1000.0, 2000.0, 1000.0) and cropped.shape == (1, 2)
    with pytest.raises(ValueError, match=r"with min < max, got \(3.0, 0.0, 1.0, 1.0\)"):
        window(grid, (3.0, 0.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"holds no pixel centre of the grid with bounds"):
        window(grid, (600.0, 600.0, 1400.0, 1400.0))
