"""LRP-[ε,α2β1] against a case done by hand (float64): a 1×1 convolution (2 → 2 channels, with biases) on 2 frames,
a ReLU and a dense layer; and conservation where the αβ rule conserves."""

import numpy as np
import pytest
import torch

from scatterxai.explain import attribute, available_methods, lrp_presets

# x (1, C=2, T=2): channel 0 = [1, 2], channel 1 = [−1, 3]
X = np.array([[[1.0, 2.0], [-1.0, 3.0]]])
W = [[2.0, 1.0], [-1.0, 1.0]]       # conv: z[o, t] = Σ_i W[o, i] x[i, t] + b[o]
B = [0.5, 0.5]
V = [[1.0, -0.5, 2.0, 2.0],         # dense, on h flattened as [h00, h01, h10, h11]
     [-1.0, 1.0, 0.0, 1.0]]
D = [0.25, -0.5]
EPS = 1e-12


def network():
    conv = torch.nn.Conv1d(2, 2, kernel_size=1)
    dense = torch.nn.Linear(4, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(W)[:, :, None])
        conv.bias.copy_(torch.tensor(B))
        dense.weight.copy_(torch.tensor(V))
        dense.bias.copy_(torch.tensor(D))
    return torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.Flatten(), dense).double().eval()


def test_registered_as_an_lrp_preset():
    assert "epsilon_alpha2_beta1" in available_methods("lrp")
    cls = lrp_presets()["epsilon_alpha2_beta1"]
    assert (cls.conv, cls.dense) == ("alpha2beta1", "epsilon")


def test_hand_computed_case():
    """z = [[2 − 1 + ½, 4 + 3 + ½], [−1 − 1 + ½, −2 + 3 + ½]] = [[1.5, 7.5], [−1.5, 1.5]]; h = [1.5, 7.5, 0, 1.5];
    logit 0 = 1.5 − 3.75 + 0 + 3 + ¼ = 1.
    Dense layer, ε-rule from R = 1 (logit 0): R_h = h ⊙ V[0] = [1.5, −3.75, 0, 3] (the bias keeps ¼).
    Convolution, αβ with α = 2, β = 1, contributions x_i W[o, i] of each output:
    (o=0, t=0) contributions (2, −1), z⁺ = 2 + b⁺ = 2.5, z⁻ = −1: R = 1.5 · (2·2/2.5, −1·(−1)/(−1)) = (2.4, −1.5);
    (o=0, t=1) contributions (4, 3), z⁺ = 7.5, z⁻ = 0 (β-term 0): R = −3.75 · 2 · (4, 3)/7.5 = (−4, −3);
    (o=1, t=0) off: 0;
    (o=1, t=1) contributions (−2, 3), z⁺ = 3.5, z⁻ = −2: R = 3 · (−1·(−2)/(−2), 2·3/3.5) = (−3, 36/7).
    Input: x[0] = [2.4, −4 − 3], x[1] = [−1.5, −3 + 36/7]."""
    res = attribute(network(), X, method="epsilon_alpha2_beta1", target=np.array([0]), epsilon=EPS)
    assert res.relevance.dtype == np.float64
    np.testing.assert_allclose(res.logits, [[1.0, 7.0]], rtol=1e-14)
    np.testing.assert_array_equal(res.explained, [0])
    np.testing.assert_allclose(res.relevance[0], [[2.4, -7.0], [-1.5, 15 / 7]], rtol=1e-9)
    assert res.params == {"epsilon": EPS, "stabilizer": EPS, "zero_bias": False}


def test_positive_contributions_get_alpha_and_negative_ones_beta():
    """On a one-unit network, for an output with contributions of both signs and no bias, the αβ
    rule conserves its relevance; an output with only positive contributions passes α = 2 times it."""
    torch.manual_seed(0)
    conv = torch.nn.Conv1d(3, 1, kernel_size=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[1.0], [-2.0], [0.5]]]))
    net = torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(2, 1, bias=False)).double()
    with torch.no_grad():
        net[3].weight.fill_(1.0)
    mixed = np.array([[[3.0, 3.0], [1.0, 1.0], [1.0, 1.0]]])      # z = 3 − 2 + 0.5 = 1.5 > 0, both signs
    positive = np.array([[[3.0, 3.0], [-1.0, -1.0], [1.0, 1.0]]])  # z = 3 + 2 + 0.5 = 5.5, all positive
    zero = np.zeros(1, dtype=np.int64)
    m = attribute(net.eval(), mixed, method="epsilon_alpha2_beta1", target=zero, epsilon=EPS, zero_bias=True)
    np.testing.assert_allclose(m.conservation, 1.0, rtol=1e-9)
    p = attribute(net.eval(), positive, method="epsilon_alpha2_beta1", target=zero, epsilon=EPS, zero_bias=True)
    np.testing.assert_allclose(p.conservation, 2.0, rtol=1e-9)


@pytest.mark.parametrize("zero_bias", [False, True])
def test_composite_is_zennits_with_exact_batchnorm_merge(zero_bias):
    from zennit.composites import EpsilonAlpha2Beta1

    from scatterxai.explain import get_explainer
    composite = get_explainer("epsilon_alpha2_beta1", zero_bias=zero_bias).composite()
    assert isinstance(composite, EpsilonAlpha2Beta1)
    assert [type(c).__name__ for c in composite.canonizers] == ["MergeBatchNormExact"]
