"""Attribution methods beside LRP against cases done by hand (float64): gradient, gradient × input,
Integrated Gradients, SmoothGrad, DeconvNet, occlusion."""

import numpy as np
import pytest
import torch

from scatterxai.errors import ParameterError
from scatterxai.explain import DEFAULT_IG_STEPS, attribute, get_explainer, occlusion_groups
from scatterxai.model import ConvNet
from scatterxai.model.activations import layer_activations

C, T, K, N_CLASSES = 16, 8, 6, 3


def linear_net(seed=0):
    """x (B, C, T) → W vec(x) + b: every gradient method has a closed form."""
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(C * T, N_CLASSES)).double()
    return net.eval()


def conv_net(seed=0, n_channels=C):
    torch.manual_seed(seed)
    net = ConvNet(n_channels, n_classes=5).double()
    g = torch.Generator().manual_seed(seed + 1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g, dtype=torch.float64) - 0.5)
            m.running_var.copy_(0.5 + torch.rand(n, generator=g, dtype=torch.float64))
    return net.eval()


def inputs(seed=0, n_channels=C, n_frames=T):
    return np.abs(np.random.default_rng(seed).normal(1.0, 1.0, size=(K, n_channels, n_frames)))


def tiny_paths():
    """16 paths: 4 S1 (λ1 = 100, 200, 400, 800 Hz) and 12 S2 (3 λ2 bands under each λ1)."""
    order, lam1, lam2, n1, n2 = [], [], [], [], []
    for i, f1 in enumerate((100.0, 200.0, 400.0, 800.0)):
        order.append(1), lam1.append(f1), lam2.append(np.nan), n1.append(i), n2.append(-1)
        for j, f2 in enumerate((4.0, 8.0, 16.0)):
            order.append(2), lam1.append(f1), lam2.append(f2), n1.append(i), n2.append(j)
    return {"order": np.array(order), "lambda1_hz": np.array(lam1), "lambda2_hz": np.array(lam2),
            "n1": np.array(n1), "n2": np.array(n2)}


def test_linear_network_integrated_gradients_and_gradient_x_input():
    net, x = linear_net(), inputs()
    W = net[1].weight.detach().numpy().reshape(N_CLASSES, C, T)
    target = np.array([0, 1, 2, 0, 1, 2])
    grad = attribute(net, x, method="gradient", target=target).relevance
    np.testing.assert_allclose(grad, W[target], rtol=1e-12)
    ig = attribute(net, x, method="integrated_gradients", target=target, steps=7)
    np.testing.assert_allclose(ig.relevance, W[target] * x, rtol=1e-12, atol=1e-14)   # exact at any steps
    gxi = attribute(net, x, method="gradient_x_input", target=target).relevance
    np.testing.assert_allclose(gxi, ig.relevance, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ig.completeness, 1.0, rtol=1e-10)
    # a given per-example baseline x': IG = w ⊙ (x − x')
    x0 = np.random.default_rng(5).normal(size=x.shape)
    res = attribute(net, x, method="integrated_gradients", target=target, baseline="given",
                    per_example={"baseline": x0})
    np.testing.assert_allclose(res.relevance, W[target] * (x - x0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.extras["baseline_logits"], net(torch.as_tensor(x0)).detach().numpy())
    np.testing.assert_allclose(res.completeness, 1.0, rtol=1e-10)


def test_integrated_gradients_completeness_on_the_convnet():
    """Σ IG = f_c(x) − f_c(0) within 1 % (median over notes) at the default steps on either grid; two steps are
    visibly incomplete (the test can fail)."""
    net, x = conv_net(n_channels=64), inputs(n_channels=64, n_frames=32)
    res = attribute(net, x, method="integrated_gradients")
    assert res.params == {"steps": DEFAULT_IG_STEPS, "grid": "midpoint", "baseline": "zero"}
    error = np.abs(res.completeness - 1)
    assert np.median(error) <= 0.01 and error.max() < 0.02
    right = np.abs(attribute(net, x, method="integrated_gradients", grid="right").completeness - 1)
    assert np.median(right) <= 0.01
    coarse = np.abs(attribute(net, x, method="integrated_gradients", steps=2).completeness - 1)
    assert np.median(coarse) > 0.05


@pytest.mark.parametrize("n_examples", [1, 3, 40])
def test_batched_steps_equal_zennits_one_pass_per_step(n_examples, monkeypatch):
    """Integrated Gradients (both grids) and SmoothGrad batch their steps (``zennit_ext.mean_gradient``): the
    result is Zennit's one-pass-per-step loop — the same noise too — with 1, several or one step per pass
    (40 examples ≥ STEP_ROWS // 2), and with the steps of the last pass fewer than the others."""
    from zennit.attribution import IntegratedGradients, SmoothGrad

    from scatterxai.explain import zennit_ext as ze
    monkeypatch.setattr(ze, "STEP_ROWS", 16)   # 7 steps: passes of 7 (1 note), 5 + 2 (3 notes), 1 (40 notes)
    net = conv_net()
    x = torch.as_tensor(np.abs(np.random.default_rng(3).normal(1.0, 1.0, size=(n_examples, C, T))))
    logits, index = ze.explained_logits(net, x, None)
    attr = ze.unit_output(logits.shape[1], index, logits)
    pairs = [(ze.RightIntegratedGradients(model=net, n_iter=7), IntegratedGradients(model=net, n_iter=7)),
             (ze.BatchedSmoothGrad(model=net, n_iter=7, noise_level=0.2),
              SmoothGrad(model=net, n_iter=7, noise_level=0.2))]
    for batched, zennit in pairs:
        torch.manual_seed(0)
        out_b, rel_b = batched(x, attr_output=attr)
        torch.manual_seed(0)
        out_z, rel_z = zennit(x, attr_output=attr)
        np.testing.assert_allclose(rel_b.numpy(), rel_z.detach().numpy(), rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(out_b.numpy(), out_z.detach().numpy(), rtol=1e-12)
    # the midpoint grid: Zennit's loop with α_k = (k − ½)/n, written out
    ig = ze.MidpointIntegratedGradients(model=net, n_iter=7)
    _, rel = ig(x, attr_output=attr)
    expected = torch.zeros_like(x)
    for k in range(7):
        _, g = ig.grad(((k + 0.5) / 7 * x).detach(), lambda _: attr)
        expected += g / 7
    np.testing.assert_allclose(rel.numpy(), (expected * x).detach().numpy(), rtol=1e-10, atol=1e-14)


def test_smoothgrad_without_noise_is_its_base_method():
    net, x = conv_net(), inputs()
    grad = attribute(net, x, method="gradient").relevance
    np.testing.assert_allclose(attribute(net, x, method="smoothgrad", n=4, noise_level=0.0).relevance, grad,
                               rtol=1e-12, atol=1e-15)
    gxi = attribute(net, x, method="gradient_x_input").relevance
    np.testing.assert_allclose(attribute(net, x, method="smoothgrad", n=3, noise_level=0.0,
                                         base="gradient_x_input").relevance, gxi, rtol=1e-12, atol=1e-15)
    noisy = attribute(net, x, method="smoothgrad", n=4).relevance
    assert not np.allclose(noisy, grad)
    # reproducible with the seed, and the caller's random stream is left alone
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    np.testing.assert_array_equal(attribute(net, x, method="smoothgrad", n=4).relevance, noisy)
    assert torch.rand(1) == expected
    assert not np.allclose(attribute(net, x, method="smoothgrad", n=4, seed=1).relevance, noisy)


def test_deconvnet_differs_from_gradient_exactly_where_relu_is_inactive():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(C * T, 2)).double().eval()
    with torch.no_grad():
        net[2].weight.abs_()   # positive incoming signal: DeconvNet keeps it where the ReLU is off
    x = np.random.default_rng(1).normal(size=(K, C, T))
    target = np.zeros(K, dtype=np.int64)
    grad = attribute(net, x, method="gradient", target=target).relevance
    deconv = attribute(net, x, method="deconvnet", target=target).relevance
    w = net[2].weight.detach().numpy()[0].reshape(C, T)
    np.testing.assert_allclose(deconv, np.broadcast_to(w, x.shape), rtol=1e-12)
    np.testing.assert_array_equal(deconv != grad, x <= 0)


def test_deconvnet_from_the_logit_does_not_read_the_input():
    """The convnet's only input-dependent backward factors are its ReLU gates, which DeconvNet replaces: every
    note explained for the same class gets the same map (the demo shows exactly this)."""
    net = conv_net()
    target = np.full(K, 2)
    R = attribute(net, inputs(0), method="deconvnet", target=target).relevance
    R2 = attribute(net, inputs(1) * 3.0, method="deconvnet", target=target).relevance
    np.testing.assert_allclose(R, np.broadcast_to(R[0], R.shape), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(R2, R, rtol=1e-12, atol=1e-15)
    assert not np.allclose(attribute(net, inputs(0), method="gradient", target=target).relevance[0],
                           attribute(net, inputs(1), method="gradient", target=target).relevance[0])


def test_deconvnet_from_a_channel_of_fc1():
    """From fc1 channel k: the logit pass of a network whose explained logit reads only fc1 unit k, times
    that unit's activation."""
    net, x, k = conv_net(), inputs(), 5
    res = attribute(net, x, method="deconvnet", layer="fc1", channel=k)
    assert res.params == {"layer": "fc1", "channel": k}
    probe = conv_net()
    with torch.no_grad():
        probe.fc2.weight.zero_()
        probe.fc2.weight[0, k] = 1.0
    act = layer_activations(probe, x, layers=("fc1",))["fc1"][:, k]   # float32
    expected = attribute(probe, x, method="deconvnet", target=np.zeros(K, dtype=np.int64)).relevance
    np.testing.assert_allclose(res.relevance, act[:, None, None] * expected, rtol=1e-6, atol=1e-12)
    with pytest.raises(ParameterError, match="channel must lie in"):
        attribute(net, x, method="deconvnet", layer="conv0", channel=999)


def test_occlusion_groups_partition_the_paths():
    paths = tiny_paths()
    bands = occlusion_groups(paths, "lambda2")
    assert [list(g) for g in bands] == [[0, 4, 8, 12], [1, 5, 9, 13], [2, 6, 10, 14], [3, 7, 11, 15]]
    cells = occlusion_groups(paths, "cell")
    assert len(cells) == 16 and sorted(np.concatenate(cells)) == list(range(16))


@pytest.mark.parametrize("groups", ["lambda2", "cell"])
def test_occlusion_is_the_logit_drop_and_zero_where_the_network_is_blind(groups):
    paths = tiny_paths()
    net, x = conv_net(), inputs()
    blind = occlusion_groups(paths, "lambda2")[2]      # the 8 Hz band: the network ignores it
    with torch.no_grad():
        net.conv0.weight[:, blind] = 0.0
    mean_input = np.full(C, 2.4)
    res = attribute(net, x, method="occlusion", groups=groups, paths=paths, mean_input=mean_input)
    assert np.all(res.relevance[:, blind] == 0.0)
    assert res.params["groups"] == groups and res.params["fill"] == "training_mean"
    # by hand: Δ of one group, spread evenly over its cells
    group = occlusion_groups(paths, groups)[1]
    xo = x.copy()
    xo[:, group] = 2.4
    with torch.no_grad():
        f = net(torch.as_tensor(x)).numpy()
        fo = net(torch.as_tensor(xo)).numpy()
    c = f.argmax(axis=1)
    drop = f[np.arange(K), c] - fo[np.arange(K), c]
    np.testing.assert_allclose(res.relevance[:, group], np.broadcast_to((drop / (len(group) * T))[:, None, None],
                                                                        (K, len(group), T)), rtol=1e-10)
    zero = attribute(net, x, method="occlusion", groups=groups, fill="zero", paths=paths)
    assert not np.allclose(zero.relevance, res.relevance)


def test_errors():
    with pytest.raises(ParameterError, match="occlusion needs the path table"):
        get_explainer("occlusion")
    with pytest.raises(ParameterError, match="needs mean_input"):
        get_explainer("occlusion", paths=tiny_paths())
    with pytest.raises(ParameterError, match=r"baseline must be one of \['zero', 'unmodulated', 'given'\]"):
        get_explainer("integrated_gradients", baseline="noise")
    with pytest.raises(ParameterError, match="layer='conv1' needs a channel"):
        get_explainer("deconvnet", layer="conv1")
    with pytest.raises(ParameterError, match="noise_level must be >= 0.0"):
        get_explainer("smoothgrad", noise_level=-1)
    net, x = linear_net(), inputs()
    with pytest.raises(ParameterError, match=r"needs the per-example inputs \['baseline'\], got \[\]"):
        attribute(net, x, method="integrated_gradients", baseline="given")
    with pytest.raises(ParameterError, match=r"needs the per-example inputs \[\], got \['baseline'\]"):
        attribute(net, x, method="gradient", per_example={"baseline": x})
