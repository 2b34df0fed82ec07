"""The torch generator reproduces the original Chainer DeepBedMap generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import random_inputs
from xdeepbedmap.model import Discriminator, Generator, load_chainer_weights
from xdeepbedmap.model.chainer_weights import read_chainer_archive

TOLERANCE = 2e-4  # max |y - y_ref| / max |y_ref|, from the reference README


def relative_error(model: Generator, io: dict[str, np.ndarray], k: int) -> float:
    inputs = [torch.from_numpy(io[f"{name}_{k}"]) for name in ("x", "w1", "w2", "w3")]
    with torch.inference_mode():
        y = model(*inputs).numpy()
    ref = io[f"y_{k}"]
    assert y.shape == ref.shape
    return float(np.abs(y - ref).max() / np.abs(ref).max())


@pytest.fixture(scope="module")
def reference_model(reference_weights) -> Generator:
    return load_chainer_weights(reference_weights, residual_scaling=0.2)


@pytest.mark.parametrize("k", [0, 1], ids=["11x11", "20x16"])
def test_reproduces_chainer_reference(reference_model, reference_io, k):
    assert int(reference_io["num_residual_blocks"]) == reference_model.num_residual_blocks == 3
    assert relative_error(reference_model, reference_io, k) < TOLERANCE


def _swap_offset_axes(model: Generator) -> Generator:
    """Same weights, but x and y offset channels exchanged in both deformable layers."""
    clone = Generator(model.num_residual_blocks, model.residual_scaling)
    clone.load_state_dict(model.state_dict())
    for layer in (clone.final_conv_layer1, clone.final_conv_layer2):
        order = torch.cat([torch.arange(9, 18), torch.arange(0, 9)])
        with torch.no_grad():
            layer.offset_conv.weight.copy_(layer.offset_conv.weight[order])
            layer.offset_conv.bias.copy_(layer.offset_conv.bias[order])
    return clone.eval()


def test_reference_catches_swapped_offset_order(reference_model, reference_io):
    # The check above would fail loudly if x and y offsets were exchanged.
    assert relative_error(_swap_offset_axes(reference_model), reference_io, 0) > 50 * TOLERANCE


def test_reference_catches_naive_block_order(reference_weights, reference_io):
    # Loading residual_network/K into position K (ignoring Chainer's naming
    # quirk) gives a different network: the reference must reject it.
    arrays = read_chainer_archive(reference_weights)
    model = Generator(num_residual_blocks=3, residual_scaling=0.2)
    state = {}
    for key in model.state_dict():
        *path, leaf = key.split(".")
        state[key] = torch.from_numpy(
            arrays["/".join(path) + "/" + {"weight": "W", "bias": "b"}[leaf]]
        )
    model.load_state_dict(state)
    assert relative_error(model.eval(), reference_io, 0) > 50 * TOLERANCE


def test_parameter_counts():
    assert sum(p.numel() for p in Generator(12).parameters()) == 8_907_749
    # the original critic for 36 x 36 tiles
    assert sum(p.numel() for p in Discriminator(36).parameters()) == 10_370_761


@given(
    height=st.integers(3, 9),
    width=st.integers(3, 9),
    batch=st.integers(1, 2),
)
def test_output_shape_rule(tiny_generator, height, width, batch):
    with torch.inference_mode():
        y = tiny_generator(*random_inputs(batch, height, width))
    assert tuple(y.shape) == (batch, 1, 4 * (height - 2), 4 * (width - 2))
    assert Generator.output_shape(height, width) == (4 * (height - 2), 4 * (width - 2))


@pytest.fixture(scope="module")
def tiny_generator() -> Generator:
    torch.manual_seed(0)
    return Generator(num_residual_blocks=1).eval()


def test_output_shape_rejects_tiny_windows():
    with pytest.raises(ValueError, match="at least 3 x 3"):
        Generator.output_shape(2, 5)


def test_he_init_scale():
    torch.manual_seed(0)
    model = Generator(num_residual_blocks=2)
    w = model.residual_network[0].residual_dense_block1.conv_layer5.weight
    expected_std = 0.1 * (2.0 / w[0].numel()) ** 0.5
    assert abs(w.std().item() / expected_std - 1) < 0.05
    assert all(
        torch.count_nonzero(b) == 0 for name, b in model.named_parameters() if name.endswith("bias")
    )


def test_generator_trains_one_step(tiny_generator):
    model = Generator(num_residual_blocks=1)
    x = random_inputs(2, 5, 5)
    target = torch.randn(2, 1, 12, 12)
    loss = torch.nn.functional.l1_loss(model(*x), target)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # offsets of the deformable layers receive gradient too
    assert model.final_conv_layer2.offset_conv.weight.grad.abs().sum() > 0


def test_discriminator_shapes():
    disc = Discriminator(36).eval()
    assert disc(torch.randn(3, 1, 36, 36)).shape == (3, 1)
    with pytest.raises(ValueError, match="36 x 36"):
        disc(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="too small"):
        Discriminator(2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_reference_on_cuda(reference_weights, reference_io):
    model = load_chainer_weights(reference_weights).cuda()
    inputs = [torch.from_numpy(reference_io[f"{n}_1"]).cuda() for n in ("x", "w1", "w2", "w3")]
    with torch.inference_mode():
        y = model(*inputs).cpu().numpy()
    ref = reference_io["y_1"]
    assert np.abs(y - ref).max() / np.abs(ref).max() < TOLERANCE
