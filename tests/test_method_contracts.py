"""Contracts every registered attribution method keeps (run over ``available_methods()``, so a new method is
checked without touching this file): metadata, shape and dtype, determinism, the explained class, batch
invariance, finite relevance on valid input — on the package's convnet in float64."""

import contextlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from scatterxai.errors import ParameterError
from scatterxai.explain import (
    FAMILIES,
    REGISTRY,
    Explainer,
    Param,
    attribute,
    available_methods,
    get_explainer,
    method_title,
    register,
    registered,
    unregistered,
)
from scatterxai.model import ConvNet

C, T, K, N_CLASSES = 32, 8, 6, 5
METHODS = available_methods()
#: the built-in methods, in the order the study lists them
BUILTIN = ["lrp0", "epsilon", "epsilon_plus", "epsilon_conv_zplus_dense", "gradient", "gradient_x_input",
           "integrated_gradients", "smoothgrad", "deconvnet", "occlusion"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def net64(seed=0):
    """The convnet with random BatchNorm statistics, in float64."""
    torch.manual_seed(seed)
    net = ConvNet(C, n_classes=N_CLASSES).double()
    g = torch.Generator().manual_seed(seed + 1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g, dtype=torch.float64) - 0.5)
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g, dtype=torch.float64))
    return net.eval()


def valid_inputs(seed=0):
    """K network inputs: log-scattering-like positive values, and one note of silence (all zeros)."""
    x = np.log1p(np.abs(np.random.default_rng(seed).normal(1.0, 1.0, size=(K, C, T))))
    x[-1] = 0.0
    return x


def paths():
    """32 paths: 8 S1 (λ1 = 100 Hz … 12.8 kHz) and 24 S2 (λ2 = 4, 8, 16 Hz under each λ1)."""
    rows = [(o, f1, f2, i, j) for i, f1 in enumerate(100.0 * 2.0 ** np.arange(8))
            for o, f2, j in ((1, np.nan, -1), (2, 4.0, 0), (2, 8.0, 1), (2, 16.0, 2))]
    cols = list(zip(*rows))
    return {k: np.array(v) for k, v in zip(("order", "lambda1_hz", "lambda2_hz", "n1", "n2"), cols)}


def explainer(name):
    """The method with its default parameters and the context the ``explain`` stage would give it."""
    context = {"paths": paths(), "mean_input": np.full(C, 0.7)}
    return get_explainer(name, **{k: context[k] for k in REGISTRY[name].context})


@pytest.fixture(scope="module")
def net():
    """A network whose every layer is active on every input of these tests (else maps could be 0 by chance)."""
    from scatterxai.model.activations import layer_activations
    net = net64()
    for seed in range(4):
        for layer, a in layer_activations(net, valid_inputs(seed)).items():
            assert (a.reshape(K, -1) > 0).any(axis=1).all(), layer
    return net


# ------------------------------------------------------------------------------------------------ registry

def test_registry_lists_the_builtin_methods_by_family():
    assert [m for m in METHODS if m in BUILTIN] == BUILTIN
    families = [REGISTRY[m].family for m in METHODS]
    assert families == sorted(families, key=lambda f: FAMILIES.index(f) if f in FAMILIES else len(FAMILIES))
    assert available_methods("perturbation") == [m for m in METHODS if REGISTRY[m].family == "perturbation"]


@pytest.mark.parametrize("name", METHODS)
def test_metadata(name):
    cls = REGISTRY[name]
    assert cls.name == name and cls.family in FAMILIES and cls.title and cls.summary
    assert method_title(name) == cls.title
    e = explainer(name)
    params = e.params()
    assert set(params) - set(cls.parameter_names()) <= {"stabilizer", "n_groups"}   # derived, recorded
    json.dumps(params)                                   # HDF5/JSON-friendly scalars and strings
    assert all(isinstance(v, (bool, int, float, str)) for v in params.values())
    assert e.attrs()["family"] == cls.family and e.attrs()["description"]
    for p in cls.parameters:                             # defaults are valid; unknown keywords are not
        assert p.check(p.default) == p.default
    with pytest.raises(ParameterError, match="unknown parameters"):
        get_explainer(name, not_a_parameter=1)


def test_command_line_options_are_unique_and_valid():
    flags = [p.flag for m in METHODS for p in REGISTRY[m].parameters if p.flag]
    assert len(flags) == len(set(flags)) and all(f.startswith("--") for f in flags)


def test_the_registry_loads_without_torch():
    code = ("import sys\nfrom scatterxai.explain import available_methods, REGISTRY\n"
            "assert len(available_methods()) >= 10 and all(REGISTRY[m].title for m in available_methods())\n"
            "print('torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split()[-1] == "False"


class _Planted(Explainer):
    """Relevance = the input times a parameter: a method defined in a test."""

    name, title, family, summary = "test_planted", "planted (test)", "gradient", "x · scale (test)"
    parameters = (Param("scale", 2.0, "factor", kind="float", low=0.0, flag="--test-planted-scale"),)

    @contextlib.contextmanager
    def session(self, model):
        def run(x, target=None):
            with torch.no_grad():
                return model(x), self.scale * x
        yield run


def test_a_temporary_method_joins_every_list_and_leaves(net):
    from scatterxai.cli import build_parser, method_options
    from scatterxai.pipeline import RunConfig
    with registered(_Planted):
        assert "test_planted" in available_methods() and method_title("test_planted") == "planted (test)"
        assert "test_planted" in RunConfig().methods
        assert method_options()["test_planted_scale"] == ("test_planted", _Planted.parameters[0])
        args = build_parser().parse_args(["explain", "F", "--model", "M", "--out", "O", "--methods", "all",
                                          "--test-planted-scale", "3"])
        assert args.test_planted_scale == 3.0
        x = valid_inputs()
        np.testing.assert_array_equal(attribute(net, x, method="test_planted", scale=3.0).relevance, 3 * x)
        with pytest.raises(ParameterError, match="scale must be >= 0.0"):
            get_explainer("test_planted", scale=-1.0)
        with unregistered("test_planted"):
            assert "test_planted" not in available_methods()
        assert "test_planted" in available_methods()
    assert "test_planted" not in available_methods() and "test_planted" not in RunConfig().methods
    with pytest.raises(RuntimeError), registered(_Planted):   # removed whatever happens in the block
        raise RuntimeError
    assert "test_planted" not in REGISTRY


def test_register_refuses_incomplete_or_clashing_methods():
    class NoTitle(_Planted):
        name, title = "test_no_title", ""

    class SameFlag(_Planted):
        name = "test_same_flag"
        parameters = (Param("scale", 1.0, "factor", kind="float", flag="--test-planted-scale"),)

    with pytest.raises(ParameterError, match="needs the class attributes"):
        register(NoTitle)
    with pytest.raises(ParameterError, match="already registered"):
        register(REGISTRY["epsilon"])
    with registered(_Planted), pytest.raises(ParameterError, match="options .*--test-planted-scale.* are taken"):
        register(SameFlag)
    with pytest.raises(ParameterError, match="kind must be one of"):
        Param("x", 1, "bad", kind="complex")
    assert "test_same_flag" not in REGISTRY and "test_no_title" not in REGISTRY


# ------------------------------------------------------------------------------------------------ numerics

@pytest.mark.parametrize("name", METHODS)
def test_shape_dtype_logits_and_finite_on_valid_input(name, net):
    x = valid_inputs()
    res = attribute(net, x, method=explainer(name))
    assert res.relevance.shape == (K, C, T) and res.relevance.dtype == np.float64
    assert np.isfinite(res.relevance).all()                   # silence (the last note) included
    with torch.no_grad():
        logits = net(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(res.logits, logits, rtol=1e-10, atol=1e-12)
    r32 = attribute(net.float(), x.astype(np.float32), method=explainer(name)).relevance
    net.double()
    assert r32.dtype == np.float32 and r32.shape == (K, C, T) and np.isfinite(r32).all()


@pytest.mark.parametrize("name", METHODS)
def test_deterministic(name, net):
    x = valid_inputs(1)
    first = attribute(net, x, method=explainer(name)).relevance
    np.testing.assert_array_equal(attribute(net, x, method=explainer(name)).relevance, first)


@pytest.mark.parametrize("name", METHODS)
def test_explains_the_requested_class(name, net):
    """``target="pred"`` explains the argmax exactly as giving it does; another class gives another map."""
    x = valid_inputs(2)
    pred = attribute(net, x, method=explainer(name))
    with torch.no_grad():
        argmax = net(torch.as_tensor(x)).argmax(1).numpy()
    np.testing.assert_array_equal(pred.explained, argmax)
    given = attribute(net, x, method=explainer(name), target=argmax)
    np.testing.assert_allclose(given.relevance, pred.relevance, rtol=1e-12, atol=0)
    other = (argmax + 1) % N_CLASSES
    res = attribute(net, x, method=explainer(name), target=other)
    np.testing.assert_array_equal(res.explained, other)
    np.testing.assert_allclose(res.explained_logit, res.logits[np.arange(K), other])
    assert not np.allclose(res.relevance[:-1], pred.relevance[:-1])


@pytest.mark.parametrize("name", [m for m in METHODS if REGISTRY[m].batch_invariant])
def test_batch_invariant(name, net):
    x = valid_inputs(3)
    one = attribute(net, x, method=explainer(name), batch_size=1).relevance
    all_ = attribute(net, x, method=explainer(name), batch_size=K).relevance
    np.testing.assert_allclose(one, all_, rtol=1e-10, atol=1e-14 * max(1.0, np.abs(all_).max()))
