"""A network that returns NaN, inf or absurd elevations stops the run; nothing is written."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xdeepbedmap  # noqa: F401 - registers the accessor
from xdeepbedmap.chunking import rechunk_nested
from xdeepbedmap.errors import XDeepBedMapError
from xdeepbedmap.io import write_outputs
from xdeepbedmap.model import Generator
from xdeepbedmap.output_checks import OUTPUT_LIMIT, NetworkOutputError, check_window_output
from xdeepbedmap.synthetic import make_region


class _Broken(Generator):
    """The generator's output with ``value`` written into one 250 m pixel of each window."""

    value = float("nan")

    def forward(self, x, w1, w2, w3):  # noqa: D102 - same contract as Generator.forward
        y = super().forward(x, w1, w2, w3)
        y[:, :, y.shape[2] // 2, y.shape[3] // 2] = self.value
        return y


@pytest.fixture(scope="module")
def region():
    return make_region((24, 24), seed=3)[0]


@pytest.mark.parametrize(("value", "says"), [(float("nan"), "NaN"), (3e38, r"up to 3e\+38 m")])
def test_a_broken_network_output_stops_the_run_naming_what_it_returned(region, value, says):
    torch.manual_seed(len(says))  # other weights per case: models are cached by their weights
    model = _Broken(num_residual_blocks=1).eval()
    model.value = value
    with pytest.raises(NetworkOutputError, match=says) as caught:
        region.deepbedmap.superresolve(model, halo=4, chunks=12)  # numpy inputs: computed
    assert isinstance(caught.value, XDeepBedMapError)
    message = str(caught.value)
    assert "precision float32" in message and "check the weights" in message
    assert "the block starts at base px (" in message  # which block, in the region


def test_nothing_is_presented_as_written_after_a_broken_output(region, tmp_path):
    torch.manual_seed(1)
    model = _Broken(num_residual_blocks=1).eval()
    result = rechunk_nested(region, 12).deepbedmap.superresolve(model, halo=4)  # lazy
    with pytest.raises(NetworkOutputError):
        write_outputs(result, [tmp_path / "bed.tif"])
    assert not (tmp_path / "bed.tif").exists()


def test_a_sound_output_passes_and_the_limit_is_inclusive():
    check_window_output(np.full((8, 8), -OUTPUT_LIMIT, np.float32), (0, 0), "m", torch.float32)
    check_window_output(np.empty((0, 8), np.float32), (0, 0), "m", torch.float32)
    tile = np.zeros((8, 8), np.float32)
    tile[3, 5] = np.inf
    with pytest.raises(NetworkOutputError, match=r"window at base px \(2, 7\)") as caught:
        check_window_output(tile, (2, 7), "m", "mixed-bfloat16")
    assert "precision mixed-bfloat16" in str(caught.value)
    assert "rerun with dtype='float32'" in str(caught.value)


def test_the_model_handed_in_runs_not_an_earlier_one_with_the_same_weights(region):
    torch.manual_seed(7)
    plain = Generator(num_residual_blocks=1).eval()
    assert np.isfinite(region.deepbedmap.superresolve(plain, halo=4).values).any()
    broken = _Broken(num_residual_blocks=1).eval()
    broken.load_state_dict(plain.state_dict())  # same weights, same saved file
    with pytest.raises(NetworkOutputError):
        region.deepbedmap.superresolve(broken, halo=4)
    # and a lazy result of the first still runs the first, not the last registered
    work = rechunk_nested(region, 12)
    lazy_plain = work.deepbedmap.superresolve(plain, halo=4)
    lazy_broken = work.deepbedmap.superresolve(broken, halo=4)
    assert lazy_plain.data.name != lazy_broken.data.name
    assert np.isfinite(lazy_plain.values).any()
