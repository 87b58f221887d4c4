"""Layer activations read by hooks equal the layers computed by hand."""

import numpy as np
import pytest
import torch

from scatterxai.errors import ParameterError
from scatterxai.model import ConvNet
from scatterxai.model.activations import layer_activations


@pytest.fixture
def net_and_x():
    torch.manual_seed(0)
    net = ConvNet(40, 3)
    for bn in (net.input_bn, net.bn0, net.bn1, net.bn2):  # non-trivial running statistics
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return net.eval(), torch.randn(5, 40, 16)


@torch.no_grad()
def test_activations_equal_the_layers_by_hand(net_and_x):
    net, x = net_and_x
    acts = layer_activations(net, x, batch_size=2)
    h0 = net.relu0(net.bn0(net.conv0(net.input_bn(x))))
    h1 = net.relu1(net.bn1(net.conv1(net.pool0(h0))))
    h2 = net.relu2(net.bn2(net.conv2(net.pool1(h1))))
    f1 = net.relu3(net.fc1(net.flatten(net.gap(h2))))
    for name, ref in (("conv0", h0), ("conv1", h1), ("conv2", h2)):
        np.testing.assert_allclose(acts[name], ref.mean(-1).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["fc1"], f1.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["logits"], net(x).numpy(), rtol=1e-5, atol=1e-6)
    flat = layer_activations(net, x, layers=["conv1"], pooling="flat")
    np.testing.assert_allclose(flat["conv1"], h1.flatten(1).numpy(), rtol=1e-5, atol=1e-6)
    assert set(flat) == {"conv1", "logits"}


def test_mode_restored_and_errors(net_and_x):
    net, x = net_and_x
    net.train()
    layer_activations(net, x)
    assert net.training
    with pytest.raises(ParameterError, match="unknown layers \\['conv9'\\]"):
        layer_activations(net, x, layers=["conv9"])
    with pytest.raises(ParameterError, match="pooling must be one of"):
        layer_activations(net, x, pooling="max")
