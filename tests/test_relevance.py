"""LRP presets against an independent textbook implementation (float64, dense matrices, no hooks); properties
every registered LRP preset has (exact BatchNorm merge, the input BatchNorm passes relevance)."""

import copy

import numpy as np
import pytest
import torch
from zennit.canonizers import SequentialMergeBatchNorm

from scatterxai.errors import ParameterError
from scatterxai.explain import attribute, get_explainer, lrp_presets
from scatterxai.explain.methods.lrp import LRP0_CLIP
from scatterxai.model import ConvNet

C_IN, T, K = 16, 16, 5
#: the presets whose rules (z, ε, z+) the independent implementation below knows
RULES = ("lrp0", "epsilon", "epsilon_plus", "epsilon_conv_zplus_dense")


def make_net(seed=0, *, zero_biases=False):
    """The package's ConvNet (16 input paths) with non-trivial BatchNorm statistics and biases."""
    torch.manual_seed(seed)
    net = ConvNet(C_IN, n_classes=5).double()
    g = torch.Generator().manual_seed(seed + 1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g, dtype=torch.float64) - 0.5)
            m.running_var.copy_(0.5 + torch.rand(n, generator=g, dtype=torch.float64))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=g, dtype=torch.float64))
            m.bias.data.copy_(0.2 * (torch.rand(n, generator=g, dtype=torch.float64) - 0.5))
    if zero_biases:
        # every bias the rules see: BatchNorm shifts after conv layers and the dense biases
        for m in (net.bn0, net.bn1, net.bn2):
            m.running_mean.zero_()
            m.bias.data.zero_()
        net.fc1.bias.data.zero_()
        net.fc2.bias.data.zero_()
    return net.eval()


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    # log-normalised scattering is >= 0; the input BatchNorm makes it signed
    return np.abs(rng.normal(1.0, 1.0, size=(K, C_IN, T)))


# ------------------------------------------------------------------------------------------------------
# independent reference: every layer as a dense matrix, LRP rules on explicit contributions z_ij


def conv_matrix(w, n_t):
    """Dense (C_out·T, C_in·T) matrix of a 'same' Conv1d (cross-correlation, zero padding)."""
    c_out, c_in, k = w.shape
    pad = (k - 1) // 2
    M = np.zeros((c_out * n_t, c_in * n_t))
    for o in range(c_out):
        for i in range(c_in):
            for j in range(k):
                for t in range(n_t):
                    s = t + j - pad
                    if 0 <= s < n_t:
                        M[o * n_t + t, i * n_t + s] = w[o, i, j]
    return M


def pool_matrix(n_c, n_t, size):
    """Dense matrix of an average pool over ``size`` frames (size = n_t: the global average)."""
    n_out = n_t // size
    P = np.zeros((n_c * n_out, n_c * n_t))
    for c in range(n_c):
        for t in range(n_out):
            P[c * n_out + t, c * n_t + t * size:c * n_t + (t + 1) * size] = 1.0 / size
    return P


def bn_affine(bn):
    scale = bn.weight.detach().numpy() / np.sqrt(bn.running_var.numpy() + bn.eps)
    return scale, bn.bias.detach().numpy() - bn.running_mean.numpy() * scale


def reference_layers(net):
    """[(kind, W, b)] of the network with each BatchNorm after a conv merged by hand."""
    layers, n_t = [], T
    for conv, bn, pool in ((net.conv0, net.bn0, True), (net.conv1, net.bn1, True), (net.conv2, net.bn2, False)):
        scale, shift = bn_affine(bn)
        M = conv_matrix(conv.weight.detach().numpy(), n_t)
        layers.append(("conv", M * np.repeat(scale, n_t)[:, None], np.repeat(shift, n_t)))
        layers.append(("relu", None, None))
        n_c = conv.out_channels
        if pool:
            layers.append(("pool", pool_matrix(n_c, n_t, 2), np.zeros(n_c * n_t // 2)))
            n_t //= 2
    layers.append(("pool", pool_matrix(n_c, n_t, n_t), np.zeros(n_c)))
    layers.append(("dense", net.fc1.weight.detach().numpy(), net.fc1.bias.detach().numpy()))
    layers.append(("relu", None, None))
    layers.append(("dense", net.fc2.weight.detach().numpy(), net.fc2.bias.detach().numpy()))
    return layers


def stab(z, eps):
    """Zennit's stabiliser: z + ε·sign(z), sign(0) = +1."""
    return z + eps * np.where(z >= 0, 1.0, -1.0)


def rule_z(a, W, b, R, eps, clip=False):
    """ε-rule (z-rule when ``clip``: denominators only kept away from 0): R_i = Σ_j z_ij / z_j · R_j."""
    zij = W * a[None, :]
    z = zij.sum(axis=1) + b
    den = np.where(z >= 0, 1.0, -1.0) * np.maximum(np.abs(z), eps) if clip else stab(z, eps)
    return (zij / den[:, None] * R[:, None]).sum(axis=0)


def rule_zplus(a, W, b, R, eps):
    """Generalised z+: only positive contributions x⁺w⁺ + x⁻w⁻ (and a positive bias)."""
    zij = np.maximum(a, 0)[None, :] * np.maximum(W, 0) + np.minimum(a, 0)[None, :] * np.minimum(W, 0)
    den = stab(zij.sum(axis=1) + np.maximum(b, 0), eps)
    return (zij / den[:, None] * R[:, None]).sum(axis=0)


def reference_lrp(net, x, rule, *, eps, zero_bias=False, target=None):
    """Relevance (C_in, T) of one example x (C_in, T), and the explained logit."""
    scale, shift = bn_affine(net.input_bn)
    a = (x * scale[:, None] + shift[:, None]).ravel()  # the input BatchNorm (relevance passes through)
    acts, layers = [], reference_layers(net)
    for kind, W, b in layers:
        acts.append(a)
        a = np.maximum(a, 0) if kind == "relu" else W @ a + b
    c = int(np.argmax(a)) if target is None else target
    R = np.zeros_like(a)
    R[c] = a[c]
    conv_rule, dense_rule = {"lrp0": ("z", "z"), "epsilon": ("eps", "eps"), "epsilon_plus": ("zplus", "eps"),
                             "epsilon_conv_zplus_dense": ("eps", "zplus")}[rule]
    stabilizer = min(eps, 1e-6)
    for (kind, W, b), a_in in zip(layers[::-1], acts[::-1]):
        if kind == "relu":
            continue
        if zero_bias:
            b = np.zeros_like(b)
        name = {"conv": conv_rule, "dense": dense_rule, "pool": "pool"}[kind]
        if rule == "lrp0":
            R = rule_z(a_in, W, b, R, LRP0_CLIP, clip=True)
        elif name == "eps":
            R = rule_z(a_in, W, b, R, eps)
        elif name == "zplus":
            R = rule_zplus(a_in, W, b, R, stabilizer)
        else:  # average pooling: ε-rule in the ε preset, Zennit's Norm (z-rule, small stabiliser) otherwise
            R = rule_z(a_in, W, b, R, eps if rule == "epsilon" else stabilizer)
    return R.reshape(x.shape), a[c]


# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", sorted(RULES))
@pytest.mark.parametrize("zero_bias", [False, True])
def test_rules_match_independent_implementation(rule, zero_bias):
    net, x = make_net(), inputs()
    eps = 0.05  # large enough that a wrong ε placement shows
    res = attribute(net, x, method=rule, epsilon=eps, zero_bias=zero_bias, batch_size=2)
    assert res.relevance.dtype == np.float64 and res.relevance.shape == x.shape
    for k in range(K):
        R, logit = reference_lrp(net, x[k], rule, eps=eps, zero_bias=zero_bias)
        np.testing.assert_allclose(res.explained_logit[k], logit, rtol=1e-10)
        np.testing.assert_allclose(res.relevance[k], R, rtol=1e-8, atol=1e-12 * np.abs(R).max())


def test_true_class_target_matches_reference():
    net, x = make_net(1), inputs(1)
    labels = np.array([4, 3, 2, 1, 0])
    res = attribute(net, x, method="epsilon_plus", target=labels)
    np.testing.assert_array_equal(res.explained, labels)
    np.testing.assert_allclose(res.explained_logit, res.logits[np.arange(K), labels])
    for k in range(K):
        R, _ = reference_lrp(net, x[k], "epsilon_plus", eps=1e-6, target=labels[k])
        np.testing.assert_allclose(res.relevance[k], R, rtol=1e-8, atol=1e-12 * np.abs(R).max())


@pytest.mark.parametrize("rule", sorted(RULES))
def test_conservation_without_biases(rule):
    """ε → 0 and no bias anywhere (the input BatchNorm keeps its shift): input relevance = explained logit."""
    net, x = make_net(2, zero_biases=True), inputs(2)
    assert net.input_bn.running_mean.abs().min() > 0  # the input BN is not trivial
    res = attribute(net, x, method=rule, epsilon=1e-12)
    np.testing.assert_allclose(res.relevance.sum(axis=(1, 2)), res.explained_logit, rtol=1e-4)
    np.testing.assert_allclose(res.conservation, 1.0, rtol=1e-4)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_zero_bias_option_and_biases_absorb(rule):
    net, x = make_net(3), inputs(3)
    exact = attribute(net, x, method=rule, epsilon=1e-12, zero_bias=True)
    if "plus" not in rule:
        # z/ε rules without biases in the denominators conserve exactly (z+ may drop the relevance of a
        # unit that only its bias switched on: it has no positive contribution to pass it down)
        np.testing.assert_allclose(exact.conservation, 1.0, rtol=1e-4)
    absorbed = attribute(net, x, method=rule, epsilon=1e-12)
    assert np.all(np.abs(absorbed.conservation - 1) > 1e-3)  # the merged BatchNorm shifts take a share
    assert not np.allclose(exact.relevance, absorbed.relevance)


def test_input_batchnorm_passes_relevance_like_moving_it_out():
    """Relevance with the input BN equals relevance of the network without it, applied to BN(x)."""
    net, x = make_net(4), inputs(4)
    scale, shift = bn_affine(net.input_bn)
    x_bn = x * scale[:, None] + shift[:, None]
    without = copy.deepcopy(net)
    without.input_bn = torch.nn.Identity()
    for rule in lrp_presets():
        a = attribute(net, x, method=rule)
        b = attribute(without, x_bn, method=rule)
        np.testing.assert_allclose(a.logits, b.logits, rtol=1e-10)
        np.testing.assert_allclose(a.relevance, b.relevance, rtol=1e-8, atol=1e-14)


def test_logits_match_the_network_and_batching_does_not_matter():
    net, x = make_net(5), inputs(5)
    with torch.no_grad():
        logits = net(torch.as_tensor(x)).numpy()
    one = attribute(net, x, method="epsilon_plus", batch_size=1)
    many = attribute(net, x, method="epsilon_plus", batch_size=64)
    np.testing.assert_allclose(one.logits, logits, rtol=1e-10)  # exact BatchNorm merge: same outputs
    np.testing.assert_array_equal(one.explained, logits.argmax(axis=1))
    np.testing.assert_allclose(one.relevance, many.relevance, rtol=1e-10, atol=1e-15)


def test_float32_inputs_give_float32_close_to_float64():
    net, x = make_net(6), inputs(6)
    r64 = attribute(net, x, method="epsilon_plus").relevance
    r32 = attribute(net.float(), x.astype(np.float32), method="epsilon_plus").relevance
    assert r32.dtype == np.float32
    np.testing.assert_allclose(r32, r64, atol=1e-4 * np.abs(r64).max())


def test_caller_network_is_left_untouched():
    net, x = make_net(7), inputs(7)
    net.train()  # attribution must use eval mode on its own copy, and leave this flag alone
    before = {k: v.clone() for k, v in net.state_dict().items()}
    params = {k: id(v) for k, v in net.named_parameters()}
    x_t = torch.as_tensor(x)
    attribute(net, x_t, method="epsilon_plus")
    assert net.training
    assert net.conv0.bias is None and net.bn0.eps == 1e-5
    assert {k: id(v) for k, v in net.named_parameters()} == params
    after = net.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    for m in net.modules():
        assert not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks)
    assert all(p.requires_grad for p in net.parameters()) and not x_t.requires_grad
    # eval-mode attribution of the training-mode network equals that of an eval copy
    np.testing.assert_allclose(attribute(net, x, method="epsilon").relevance,
                               attribute(copy.deepcopy(net).eval(), x, method="epsilon").relevance)


def test_presets_are_zennit_composites_with_exact_batchnorm_merge():
    net, x = make_net(8), torch.as_tensor(inputs(8))
    with torch.no_grad():
        ref = net(x)
    assert set(RULES) <= set(lrp_presets())
    for name in lrp_presets():
        composite = get_explainer(name).composite()
        assert any(isinstance(c, SequentialMergeBatchNorm) for c in composite.canonizers), name
        with composite.context(net) as modified, torch.no_grad():
            assert net.conv0.bias is not None and net.bn0.eps == 0.0  # merged while registered
            torch.testing.assert_close(modified(x), ref, rtol=1e-12, atol=1e-12)
        assert net.conv0.bias is None and net.bn0.eps == 1e-5  # restored
    assert lrp_presets()["epsilon_plus"].conv == "zplus" and lrp_presets()["epsilon_conv_zplus_dense"].dense == "zplus"


def test_errors():
    net, x = make_net(), inputs()
    with pytest.raises(ParameterError, match="unknown attribution method 'zplus'.*epsilon_plus"):
        attribute(net, x, method="zplus")
    with pytest.raises(ParameterError, match="target must be 'pred'"):
        attribute(net, x, method="epsilon", target="true")
    with pytest.raises(ParameterError, match=r"shape \(5,\)"):
        attribute(net, x, method="epsilon", target=np.array([0, 1]))
    with pytest.raises(ParameterError, match=r"lie in \[0, 5\)"):
        attribute(net, x, method="epsilon", target=np.array([0, 1, 2, 3, 5]))
    with pytest.raises(ParameterError, match="expects 16"):
        attribute(net, x[:, :8], method="epsilon")
    with pytest.raises(ParameterError, match=r"shape \(K, C, T\)"):
        attribute(net, x[0], method="epsilon")
    with pytest.raises(ParameterError, match="epsilon must be a positive finite number"):
        attribute(net, x, method="epsilon", epsilon=0.0)
    with pytest.raises(ParameterError, match="batch_size"):
        attribute(net, x, method="epsilon", batch_size=0)
