"""Gridding survey picks: nesting, block median, count/distance layers, mask, accuracy, files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xdeepbedmap.survey import (
    SurveyError,
    block_median,
    grid_points,
    open_truth_layers,
    output_geobox,
    write_geotiff,
    write_zarr,
)
from xdeepbedmap.survey.gridding import MAX_SPLINE_POINTS
from xdeepbedmap.survey.writers import layer_paths


def test_output_grid_nests_in_the_base_grid():
    gbox = output_geobox((-10_500.0, -3_200.0, 5_200.0, 7_100.0))
    left, bottom, right, top = gbox.boundingbox
    assert (left, bottom, right, top) == (-11_000.0, -4_000.0, 6_000.0, 8_000.0)
    assert gbox.resolution.x == 250 and gbox.resolution.y == -250
    coords = gbox.coords
    assert coords["x"].values[0] == -10_875.0 and np.all(np.diff(coords["x"].values) == 250)
    assert coords["y"].values[0] == 7_875.0 and np.all(np.diff(coords["y"].values) == -250)
    with pytest.raises(SurveyError, match="min < max"):
        output_geobox((0.0, 0.0, -1.0, 1.0))


# a hand-checkable case on a 1 km box: 4 x 4 cells of 250 m, centres 125, 375, 625, 875
TINY = pd.DataFrame(
    {
        "x": [100.0, 130.0, 150.0, 875.0, 125.0],
        "y": [880.0, 870.0, 860.0, 875.0, 125.0],
        "bed": [1.0, 10.0, 2.0, 5.0, 7.0],
    }
)


def test_block_median_per_cell():
    cells, index = block_median(TINY, 0.0, 1000.0, 250.0)
    first = cells[(cells.row == 0) & (cells.col == 0)].iloc[0]
    assert first["bed"] == 2.0 and first["count"] == 3 and first["x"] == 130.0
    assert index[:, 3].tolist() == [0, 3] and index[:, 4].tolist() == [3, 0]
    assert len(cells) == 3


def test_count_and_distance_layers_by_hand():
    ds = grid_points(TINY, (0.0, 0.0, 1000.0, 1000.0), mask_radius=300.0, method="kneighbors")
    assert ds.sizes == {"y": 4, "x": 4}
    expected_count = np.zeros((4, 4), dtype=int)
    expected_count[0, 0], expected_count[0, 3], expected_count[3, 0] = 3, 1, 1
    np.testing.assert_array_equal(ds["count"].values, expected_count)
    assert ds["count"].dtype == np.int32
    # distances brute force: every cell centre against every pick
    xx, yy = np.meshgrid(ds.x.values, ds.y.values)
    brute = np.min(
        np.hypot(xx[..., None] - TINY.x.to_numpy(), yy[..., None] - TINY.y.to_numpy()), axis=-1
    )
    np.testing.assert_allclose(ds["distance"].values, brute, rtol=1e-6)
    assert ds["distance"].values[0, 3] == 0.0  # the pick at (875, 875) is at the centre
    np.testing.assert_allclose(ds["distance"].values[1, 3], 250.0)
    # cells farther than 300 m from every pick stay NaN, the others have a value
    far = brute > 300.0
    assert np.isnan(ds["bed"].values[far]).all()
    assert np.isfinite(ds["bed"].values[~far]).all()
    assert ds.rio.crs.to_epsg() == 3031
    # cubic/linear leave cells outside the picks' convex hull NaN too, never the picks' own
    hull = grid_points(TINY, (0.0, 0.0, 1000.0, 1000.0), mask_radius=300.0, method="linear")
    assert np.isnan(hull["bed"].values[far]).all()
    assert np.isfinite(hull["bed"].values[ds["count"].values > 0]).all()


def smooth_surface(x, y):
    return (
        500.0
        + 0.01 * (x + 1_500_000.0)
        + 80.0 * np.sin(2 * np.pi * x / 30e3) * np.cos(2 * np.pi * y / 40e3)
    )


def flight_lines(
    spacing=2000.0, step=50.0, extent=(-1_520_000.0, -320_000.0, -1_496_000.0, -296_000.0)
):
    xmin, ymin, xmax, ymax = extent
    along = np.arange(xmin, xmax, step)
    ys = np.arange(ymin + 500.0, ymax, spacing)
    x = np.tile(along, ys.size)
    y = np.repeat(ys, along.size)
    ties = np.arange(xmin + 700.0, xmax, 3 * spacing)
    tx = np.repeat(ties, np.arange(ymin, ymax, step).size)
    ty = np.tile(np.arange(ymin, ymax, step), ties.size)
    x, y = np.concatenate([x, tx]), np.concatenate([y, ty])
    return pd.DataFrame({"x": x, "y": y, "bed": smooth_surface(x, y)})


def test_recovers_a_smooth_surface_and_masks_far_cells():
    picks = flight_lines()
    bbox = (-1_516_000.0, -316_000.0, -1_500_000.0, -300_000.0)
    ds = grid_points(picks, bbox, mask_radius=1200.0)
    xx, yy = np.meshgrid(ds.x.values, ds.y.values)
    error = ds["bed"].values - smooth_surface(xx, yy)
    inside = np.isfinite(ds["bed"].values)
    # stated accuracy: 2 km lines over a 30 km x 40 km wave of 80 m amplitude
    assert inside.mean() > 0.95
    assert np.sqrt(np.mean(error[inside] ** 2)) < 1.0
    assert np.max(np.abs(error[inside])) < 5.0
    assert np.isnan(ds["bed"].values[ds["distance"].values > 1200.0]).all()
    # a gap in the survey: a hole of cells farther than the radius stays NaN
    hole = (picks.x - -1_508_000.0) ** 2 + (picks.y - -308_000.0) ** 2 < 3000.0**2
    holed = grid_points(picks[~hole], bbox, mask_radius=1200.0, method="linear")
    centre = holed["bed"].sel(x=-1_508_125.0, y=-308_125.0)
    assert np.isnan(centre) and float(holed["distance"].sel(x=-1_508_125.0, y=-308_125.0)) > 2500


def test_streamed_chunks_give_the_same_grid():
    picks = flight_lines(spacing=4000.0, step=100.0)
    bbox = (-1_510_000.0, -310_000.0, -1_502_000.0, -302_000.0)
    whole = grid_points(picks, bbox, mask_radius=2000.0)
    streamed = grid_points(
        (picks.iloc[i : i + 997] for i in range(0, len(picks), 997)), bbox, mask_radius=2000.0
    )
    np.testing.assert_array_equal(whole["bed"].values, streamed["bed"].values)
    np.testing.assert_array_equal(whole["count"].values, streamed["count"].values)


def test_gridding_refuses_what_it_cannot_do():
    picks = flight_lines(spacing=250.0, step=100.0)  # > MAX_SPLINE_POINTS cells per window
    with pytest.raises(SurveyError, match="no survey pick"):
        grid_points(picks, (0.0, 0.0, 1000.0, 1000.0))
    with pytest.raises(SurveyError, match="MAX_SPLINE_POINTS"):
        grid_points(picks, (-1_520_000.0, -320_000.0, -1_496_000.0, -296_000.0), method="spline")
    assert len(picks) > MAX_SPLINE_POINTS
    with pytest.raises(SurveyError, match="method must be"):
        grid_points(picks, (-1_510_000.0, -310_000.0, -1_502_000.0, -302_000.0), method="kriging")
    with pytest.raises(SurveyError, match="mask_radius"):
        grid_points(picks, (-1_510_000.0, -310_000.0, -1_502_000.0, -302_000.0), mask_radius=0)


def test_spline_on_a_small_area():
    picks = flight_lines(spacing=2000.0, step=250.0)
    bbox = (-1_510_000.0, -310_000.0, -1_506_000.0, -306_000.0)
    ds = grid_points(picks, bbox, method="spline", mask_radius=1200.0)
    xx, yy = np.meshgrid(ds.x.values, ds.y.values)
    error = ds["bed"].values - smooth_surface(xx, yy)
    assert np.nanmax(np.abs(error)) < 5.0


@pytest.mark.parametrize("kind", ["tif", "zarr"])
def test_truth_files_round_trip(tmp_path, kind):
    ds = grid_points(TINY, (0.0, 0.0, 1000.0, 1000.0), mask_radius=300.0, method="linear")
    if kind == "tif":
        paths = write_geotiff(ds, tmp_path / "truth.tif")
        assert paths == layer_paths(tmp_path / "truth.tif")
        assert paths["count"].name == "truth_count.tif" and paths["distance"].exists()
        target = tmp_path / "truth.tif"
    else:
        target = write_zarr(ds, tmp_path / "truth.zarr")
    assert not list(tmp_path.glob("*.partial"))
    back = open_truth_layers(target)
    for name in ("bed", "count", "distance"):
        np.testing.assert_allclose(back[name].values, ds[name].values, equal_nan=True)
    np.testing.assert_allclose(back.x.values, ds.x.values)
    np.testing.assert_allclose(back.y.values, ds.y.values)
    assert back.rio.crs.to_epsg() == 3031
    with pytest.raises(FileExistsError):
        (write_geotiff if kind == "tif" else write_zarr)(ds, target)


def test_a_window_with_a_single_straight_line_is_left_to_the_cell_medians():
    x = np.arange(0.0, 40_000.0, 50.0)
    picks = pd.DataFrame({"x": x, "y": 10_000.0, "bed": x / 100})
    ds = grid_points(picks, (0.0, 0.0, 40_000.0, 20_000.0), mask_radius=500.0)
    on_line = ds["count"].values > 0
    assert on_line.sum() == 160 and np.isfinite(ds["bed"].values[on_line]).all()
    assert np.isnan(ds["bed"].values[~on_line]).all()
