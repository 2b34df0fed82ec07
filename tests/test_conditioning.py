"""The ablation perturbations of the conditioning inputs, and bed-only training's blind inputs."""

from __future__ import annotations

import numpy as np
import pytest

from xdeepbedmap.conditioning import BLIND_VALUES, blind, flatten, shuffle, smooth
from xdeepbedmap.grids import validate_inputs
from xdeepbedmap.synthetic import make_region


@pytest.fixture(scope="module")
def inputs():
    return make_region((24, 24), seed=4)[0]


def _roughness(a: np.ndarray) -> float:
    return float(np.nanstd(np.diff(a, n=2, axis=1)))  # curvature: the short wavelengths


def test_smooth_removes_short_wavelengths_of_one_group_only(inputs):
    out = smooth(inputs, "surface", 3.0)
    validate_inputs(out)
    assert _roughness(out["surface"].values) < 0.2 * _roughness(inputs["surface"].values)
    for name in ("bed", "vx", "vy", "accumulation"):
        np.testing.assert_array_equal(out[name].values, inputs[name].values)
    # no-data where it was
    np.testing.assert_array_equal(np.isnan(out["surface"]), np.isnan(inputs["surface"]))


def test_shuffle_keeps_values_but_moves_them(inputs):
    out = shuffle(inputs, "velocity", block_km=4.0, seed=1)
    for name in ("vx", "vy"):
        a, b = inputs[name].values, out[name].values
        valid = np.isfinite(a) & np.isfinite(b)
        assert np.mean(a[valid] == b[valid]) < 0.5  # most pixels changed
        # the values are those of the (nearest-filled) original field
        assert np.isin(b[valid], np.concatenate([a[np.isfinite(a)]])).mean() > 0.99
    np.testing.assert_array_equal(np.isnan(out["vx"]), np.isnan(inputs["vx"]))


def test_flatten_and_blind(inputs):
    flat = flatten(inputs, "accumulation")["accumulation"].values
    valid = np.isfinite(flat)
    assert np.ptp(flat[valid]) == 0
    np.testing.assert_allclose(flat[valid][0], np.nanmean(inputs["accumulation"].values), rtol=1e-6)
    b = blind(inputs)
    validate_inputs(b)
    for name, value in BLIND_VALUES.items():
        values = b[name].values
        assert (values[np.isfinite(values)] == value).all()
    np.testing.assert_array_equal(b["bed"].values, inputs["bed"].values)
    with pytest.raises(ValueError, match="group must be one of"):
        flatten(inputs, "bed")


def test_input_scaling_of_blind_tiles_is_usable(inputs):
    from xdeepbedmap.model import Generator
    from xdeepbedmap.training.tiles import TileDataset, TileLayout, build_tiles
    from xdeepbedmap.training.trainer import input_scaling

    tiles = build_tiles(
        [(blind(inputs), make_region((24, 24), seed=4)[1])], layout=TileLayout(stride=8)
    )
    scaling = input_scaling(TileDataset(tiles).load())
    assert scaling["surface"] == (BLIND_VALUES["surface"], 1.0)
    assert scaling["velocity"] == (0.0, 1.0)
    Generator(num_residual_blocks=1, input_scaling=scaling)  # accepted: scales > 0
