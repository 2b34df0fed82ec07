"""The pieces of the per-block kernel: no-data filling, window cutting and planning."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdeepbedmap.grids import VARIABLES
from xdeepbedmap.kernel import plan_windows
from xdeepbedmap.nodata import fill_nearest
from xdeepbedmap.windows import GENERATOR_INPUTS, cut_nested


def test_fill_nearest_takes_the_nearest_valid_value():
    values = np.array([[1.0, np.nan, np.nan, np.nan, 5.0]], dtype=np.float32)
    filled = fill_nearest(values)
    np.testing.assert_array_equal(filled, [[1.0, 1.0, 1.0, 5.0, 5.0]])  # ties go to the first
    assert filled.dtype == np.float32
    assert np.isnan(values).sum() == 3  # the input is left alone


def test_fill_nearest_treats_infinity_as_no_data_and_all_invalid_as_zeros():
    np.testing.assert_array_equal(fill_nearest(np.array([2.0, np.inf, -np.inf])), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(fill_nearest(np.full((2, 3), np.nan)), np.zeros((2, 3)))
    valid = np.arange(6.0).reshape(2, 3)
    assert fill_nearest(valid) is valid  # nothing to fill: no copy


def _nested(ny: int, nx: int) -> dict[str, np.ndarray]:
    """Arrays whose values encode (variable, row, column), on the nested grids."""
    out = {}
    for k, (name, (_, _, factor)) in enumerate(VARIABLES.items()):
        rows, cols = np.mgrid[: factor * ny, : factor * nx]
        out[name] = (k * 1e6 + rows * 1e3 + cols).astype(np.float64)
    return out


@given(
    r0=st.integers(0, 4), c0=st.integers(0, 4), n=st.integers(1, 5), m=st.integers(1, 5)
)  # fmt: skip
@settings(max_examples=25)
def test_cut_nested_cuts_the_same_ground_from_every_input(r0, c0, n, m):
    arrays = _nested(10, 10)
    cut = cut_nested(arrays, slice(r0, r0 + n), slice(c0, c0 + m))
    assert list(cut) == ["x", "w1", "w2", "w3"]  # the generator's argument order
    assert cut["x"].shape == cut["w3"].shape == (1, n, m)
    assert cut["w1"].shape == (1, 10 * n, 10 * m)
    assert cut["w2"].shape == (2, 2 * n, 2 * m)
    np.testing.assert_array_equal(cut["x"][0], arrays["bed"][r0 : r0 + n, c0 : c0 + m])
    np.testing.assert_array_equal(
        cut["w1"][0], arrays["surface"][10 * r0 : 10 * (r0 + n), 10 * c0 : 10 * (c0 + m)]
    )
    for channel, name in enumerate(GENERATOR_INPUTS["w2"]):
        np.testing.assert_array_equal(
            cut["w2"][channel], arrays[name][2 * r0 : 2 * (r0 + n), 2 * c0 : 2 * (c0 + m)]
        )
    np.testing.assert_array_equal(cut["w3"][0], arrays["accumulation"][r0 : r0 + n, c0 : c0 + m])


def test_cut_nested_names_a_missing_variable():
    arrays = _nested(4, 4)
    del arrays["vy"]
    with pytest.raises(KeyError, match="vy"):
        cut_nested(arrays, slice(0, 2), slice(0, 2))


@given(ny=st.integers(1, 300), nx=st.integers(1, 300), window=st.integers(1, 130))
@settings(max_examples=50)
def test_window_plan_tiles_the_core_with_near_equal_windows(ny, nx, window):
    plan = plan_windows(ny, nx, window)
    covered = np.zeros((ny, nx), dtype=int)
    for (wy, wx), origins in plan.items():
        assert 1 <= wy <= window and 1 <= wx <= window
        for r0, c0 in origins:
            covered[r0 : r0 + wy, c0 : c0 + wx] += 1
    assert (covered == 1).all()  # every core pixel in exactly one window
    heights = {wy for wy, _ in plan}
    widths = {wx for _, wx in plan}
    assert max(heights) - min(heights) <= 1 and max(widths) - min(widths) <= 1
    assert len(plan) <= 4  # so at most four batch shapes per block
