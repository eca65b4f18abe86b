"""Backbones: shapes for digits and faces, raw (unnormalised) embeddings, input handling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from marginlab.training.backbones import build_backbone, eval_forward, state_hash

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("shape", [(28, 28), (64, 64), (62, 47), (32, 32)])
@pytest.mark.parametrize("dim", [2, 3, 128])
def test_embedding_shape_for_digits_and_faces(shape, dim):
    net = build_backbone(shape, dim).eval()
    images = torch.randint(0, 256, (5, *shape), dtype=torch.uint8)
    assert net(images).shape == (5, dim)


def test_uint8_and_unit_float_images_give_the_same_embedding():
    net = build_backbone((28, 28), 2).eval()
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    as_float = (images.float() / 255).unsqueeze(1)  # (B, 1, H, W) in [0, 1]
    torch.testing.assert_close(net(images), net(as_float))


def test_the_embedding_layer_is_plain_linear_so_the_raw_norm_is_visible():
    net = build_backbone((28, 28), 2)
    assert isinstance(net.embedding, nn.Linear)
    features = net.eval()(torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8))
    norms = features.norm(dim=1)
    assert not torch.allclose(norms, torch.ones_like(norms))  # not normalised
    assert norms.std() > 0  # and not a constant either


def test_prelu_activations_as_in_lenet_plus_plus():
    net = build_backbone((28, 28), 2)
    assert any(isinstance(m, nn.PReLU) for m in net.modules())


def test_digit_net_is_small_enough_for_two_cpu_cores():
    net = build_backbone((28, 28), 2)
    assert sum(p.numel() for p in net.parameters()) < 150_000


@pytest.mark.parametrize(
    "shape, dim",
    [((28, 28), 0), ((28, 28), 2.5), ((8, 8), 2), ((28,), 2)],
)
def test_bad_arguments_raise_value_error(shape, dim):
    with pytest.raises(ValueError):
        build_backbone(shape, dim)


def test_state_hash_equal_iff_same_weights():
    torch.manual_seed(0)
    a = build_backbone((28, 28), 2)
    torch.manual_seed(0)
    b = build_backbone((28, 28), 2)
    torch.manual_seed(1)
    c = build_backbone((28, 28), 2)
    assert state_hash(a) == state_hash(b) != state_hash(c)
    with torch.no_grad():
        b.embedding.bias[0] += 1e-6
    assert state_hash(a) != state_hash(b)


@pytest.mark.parametrize(("shape", "dim"), [((28, 28), 2), ((28, 28), 3), ((64, 64), 8)])
def test_the_folded_eval_forward_equals_the_eval_mode_net(shape, dim):
    """eval_forward folds each BatchNorm into the layer before it: the same embeddings as
    the net in eval mode, for trained running statistics, and the net is left as it was."""
    torch.manual_seed(0)
    net = build_backbone(shape, dim)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    for _ in range(3):  # move the weights and the running statistics off their start
        images = torch.randint(0, 256, (16, *shape), dtype=torch.uint8)
        optimizer.zero_grad()
        net(images).square().mean().backward()
        optimizer.step()
    before = state_hash(net)
    images = torch.randint(0, 256, (40, *shape), dtype=torch.uint8)
    with torch.no_grad():
        folded = eval_forward(net, images)
        assert net.training  # untouched
        expected = net.eval()(images)
    assert state_hash(net) == before and torch.isfinite(expected).all()
    torch.testing.assert_close(folded, expected, rtol=1e-4, atol=1e-4 * expected.abs().max())
    assert not torch.equal(folded, net.train()(images).detach())  # batch statistics differ
