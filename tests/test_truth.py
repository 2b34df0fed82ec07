"""The truth's base grid, its alignment to a region, and gridded points."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from xdeepbedmap.grids import NestingError, coarsen, grid_of, make_grid, output_grid
from xdeepbedmap.synthetic import make_truth
from xdeepbedmap.truth import align_truth, base_grid_of_truth


def test_base_grid_of_truth_is_the_coarsened_truth_grid():
    truth = make_truth((16, 12), seed=0, origin=(-1.2e6, 3.0e5))
    base = base_grid_of_truth(truth)
    assert base == coarsen(grid_of(truth), 4)
    assert base.shape == (4, 3) and base.resolution.x == 1000.0
    assert str(base.crs) == "EPSG:3031"
    assert output_grid(base) == grid_of(truth)


def test_truth_that_does_not_nest_is_a_nesting_error():
    truth = make_truth((16, 16), seed=0)
    base = base_grid_of_truth(truth)
    coarse = truth.isel(x=slice(None, None, 2), y=slice(None, None, 2))
    for call in (lambda: base_grid_of_truth(coarse), lambda: align_truth(coarse, base)):
        with pytest.raises(NestingError, match="truth: spacing 500 m, expected 250 m"):
            call()
    with pytest.raises(NestingError, match="truth: y pixel edges are offset by 50.000 m"):
        align_truth(truth.assign_coords(y=truth.y + 50.0), base)
    # whole-pixel shifts are fine: the truth just covers another part of the region
    shifted = align_truth(truth.assign_coords(x=truth.x + 500.0), base)
    np.testing.assert_array_equal(shifted.values[:, 2:], truth.values[:, :-2])
    assert np.isnan(shifted.values[:, :2]).all()


def test_grid_points_keep_the_grid_crs_and_coordinates():
    from xdeepbedmap.truth import grid_points

    grid = make_grid(0.0, 0.0, 250.0, (2, 2), "EPSG:3031")
    out = grid_points(np.array([10.0]), np.array([-10.0]), np.array([5.0]), grid)
    assert out.rio.crs.to_epsg() == 3031
    np.testing.assert_array_equal(out.x.values, [125.0, 375.0])
    np.testing.assert_array_equal(out.y.values, [-125.0, -375.0])


def test_evaluation_does_not_import_the_training_package():
    code = (
        "import sys, xdeepbedmap.evaluation; "
        "print(sorted(m for m in sys.modules if m.startswith('xdeepbedmap.training')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
