"""Guided Backprop against a case done by hand (float64): a 4-3-2-2 ReLU network whose units are on and off
and whose backward signals are positive and negative, so that gradient, DeconvNet and Guided Backprop all
differ."""

import numpy as np
import torch

from scatterxai.explain import attribute, available_methods

# x (1, C=2, T=2) flattened: [x00, x01, x10, x11]
X = np.array([[[1.0, 2.0], [-1.0, 0.5]]])
W1 = [[1.0, 1.0, 0.0, 0.0],     # z1 = [1 + 2, −1 − 1, 1 − 2 + 2] = [3, −2, 1]: unit 1 off
      [0.0, 0.0, 1.0, -2.0],
      [1.0, -1.0, 0.0, 4.0]]
W2 = [[1.0, -1.0, -2.0],        # h1 = [3, 0, 1]; z2 = [3 − 2, −3 + 1] = [1, −2]: unit 1 off
      [-1.0, 1.0, 1.0]]
W3 = [[2.0, 1.0],               # h2 = [1, 0]; logits = [2, −1]: class 0 predicted
      [-1.0, 3.0]]


def network():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3, bias=False), torch.nn.ReLU(),
                              torch.nn.Linear(3, 2, bias=False), torch.nn.ReLU(), torch.nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        for layer, w in ((net[1], W1), (net[3], W2), (net[5], W3)):
            layer.weight.copy_(torch.tensor(w))
    return net.double().eval()


def test_registered():
    assert "guided_backprop" in available_methods("gradient")


def test_hand_computed_case():
    """Class 0, signal W3[0] = [2, 1] at h2.
    ReLU2 (z2 = [1, −2]): gradient and Guided Backprop keep [2, 0] (unit 1 off); DeconvNet keeps max(g, 0) = [2, 1].
    At h1: W2ᵀ[2, 0] = [2, −2, −4] (Guided Backprop, gradient); W2ᵀ[2, 1] = [1, −1, −3] (DeconvNet).
    ReLU1 (z1 = [3, −2, 1]): gradient [2, 0, −4]; Guided Backprop [2, 0, 0] (unit 1 off, unit 2's signal
    negative); DeconvNet max(g, 0) = [1, 0, 0].
    Input, W1ᵀv = [v0 + v2, v0 − v2, v1, −2 v1 + 4 v2]: gradient [−2, 6, 0, −16], Guided Backprop [2, 2, 0, 0],
    DeconvNet [1, 1, 0, 0].
    Class 1, signal [−1, 3]: Guided Backprop keeps nothing at ReLU2 (−1 < 0; unit 1 off): the map is 0."""
    net = network()
    res = attribute(net, X, method="guided_backprop", target=np.array([0]))
    assert res.relevance.dtype == np.float64 and res.relevance.shape == X.shape
    np.testing.assert_array_equal(res.explained, [0])
    np.testing.assert_allclose(res.logits, [[2.0, -1.0]])
    np.testing.assert_allclose(res.relevance.ravel(), [2.0, 2.0, 0.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(attribute(net, X, method="gradient", target=np.array([0])).relevance.ravel(),
                               [-2.0, 6.0, 0.0, -16.0], rtol=1e-15)
    np.testing.assert_allclose(attribute(net, X, method="deconvnet", target=np.array([0])).relevance.ravel(),
                               [1.0, 1.0, 0.0, 0.0], rtol=1e-15)
    np.testing.assert_array_equal(attribute(net, X, method="guided_backprop", target=np.array([1])).relevance, 0.0)
    # the predicted class is class 0
    np.testing.assert_array_equal(attribute(net, X, method="guided_backprop").relevance, res.relevance)


def test_only_positive_signals_pass_active_units():
    """On random inputs of the same network, with all-positive weights after the first layer every backward
    signal is positive: Guided Backprop is then the gradient."""
    net = network()
    with torch.no_grad():
        net[3].weight.abs_()
        net[5].weight.abs_()
    x = np.random.default_rng(0).normal(size=(8, 2, 2))
    target = np.zeros(8, dtype=np.int64)
    np.testing.assert_allclose(attribute(net, x, method="guided_backprop", target=target).relevance,
                               attribute(net, x, method="gradient", target=target).relevance, rtol=1e-14)
