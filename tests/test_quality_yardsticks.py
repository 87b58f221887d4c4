"""The quality checks fail when they should: known-bad explanations fail them, a known-good one passes.

The known-good explanation is the exact attribution of a linear model f_c(x) = Σ_{p,t} W_c[p, t] x[p, t] + b_c
towards a baseline β: R[p, t] = W_c[p, t] (x[p, t] − β[p, t]).  Deleting path p towards β lowers f_c by
exactly Σ_t R[p, t], so ordering paths by R is the best deletion (and insertion) order there is.  The
known-bad ones: a random map (fixed per note, independent of the model), a constant map, the input itself
and the exact attribution of *another* class.  What each check can catch:

* deletion / insertion (margin over the strongest control, under each baseline): the input itself fails
  (it is a control); maps without information about the explained logit (random, constant, another
  class's) fail as often as the one-sided 2.5 % test promises (a few of many may pass by chance).  One
  order shared by every note (a map nearly constant over notes) is a single draw, which a bootstrap over
  notes cannot tell from a real effect: the notes here vary enough that each note's map orders differently;
* model and data randomisation: the maps that do not depend on the model (random, constant, input) fail;
  a map of another class depends on the weights, so randomisation cannot catch it (deletion does).
"""

import contextlib

import numpy as np
import pytest
import torch

from scatterxai.analysis.quality import baseline_input, map_similarity, perturbation_study, randomisation_study
from scatterxai.analysis.quality.metrics import RANDOMISATION_THRESHOLD
from scatterxai.analysis.quality.report import baseline_dependence, failure_sentence
from scatterxai.analysis.quality.stage import CONTROL_PREFIX
from scatterxai.analysis.quality.summary import faithfulness_entry
from scatterxai.explain import Explainer, attribute
from scatterxai.explain.base import REGISTRY
from scatterxai.maps import local_map

C, T, K, N_CLASSES = 48, 4, 40, 3


class _Linear(torch.nn.Module):
    def __init__(self, seed: int):
        super().__init__()
        self.fc = torch.nn.Linear(C * T, N_CLASSES).double()
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(N_CLASSES, C * T, generator=g, dtype=torch.float64))
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(x.flatten(1))

    def weights(self, c: int) -> np.ndarray:
        return self.fc.weight[c].detach().reshape(C, T).numpy()


def _exact(net: _Linear, x: np.ndarray, classes: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """Local maps of the exact attribution towards ``baseline`` ((C,) or (K, C, T)): (K, C)."""
    b = baseline[None, :, None] if baseline.ndim == 1 else baseline
    return (np.stack([net.weights(c) for c in classes]) * (x - b)).mean(axis=2)


def _linear(offset: float):
    rng = np.random.default_rng(0)
    net = _Linear(seed=1).eval()
    train = offset + rng.normal(size=(200, C, T))
    x = offset + rng.normal(size=(K, C, T))
    with torch.no_grad():
        pred = net(torch.as_tensor(x)).argmax(1).numpy()
    return net, x, pred, train.mean(axis=(0, 2))


@pytest.fixture(scope="module")
def linear():
    """A linear model, notes around 0.5 (the zero and training-mean baselines differ; each note's exact map
    has its own order), and the class each note is explained for (its prediction)."""
    return _linear(0.5)


@pytest.fixture(scope="module")
def linear_far():
    """The same model on notes far from zero: the zero and training-mean baselines differ a lot."""
    return _linear(3.0)


def _null_maps(net, x, pred, baseline) -> dict:
    """Maps that carry no information about the explained logit: 20 random maps (fixed per note), a constant
    map (its ties broken in a seeded random order), and the exact attributions of the two other classes."""
    rng = np.random.default_rng(7)
    maps = {f"random_{i}": rng.normal(size=(K, C)) for i in range(20)}
    maps["constant"] = np.zeros((K, C))
    for shift in (1, 2):
        maps[f"other_class_{shift}"] = _exact(net, x, (pred + shift) % N_CLASSES, baseline)
    return maps


@pytest.mark.parametrize("name", ["zero", "training_mean", "shuffle"])
def test_deletion_and_insertion_fail_bad_maps_and_pass_the_exact_attribution(linear, name):
    """The exact attribution passes by far; the input itself (a control) fails by construction; maps without
    information fail at the rate of the one-sided 2.5 % test: at most 3 of 23 may pass by chance."""
    net, x, pred, mean = linear
    base = {"zero": np.zeros(C), "training_mean": mean,
            "shuffle": baseline_input("shuffle", x=x, seed=3)}[name]
    null = _null_maps(net, x, pred, base)
    maps = {"exact": _exact(net, x, pred, base), "input": x.mean(axis=2), **null,
            CONTROL_PREFIX + "input": x.mean(axis=2)}
    pert = perturbation_study(net, x, maps, pred, pred, base, n_steps=20, n_random=5, seed=0)
    controls = {"input": CONTROL_PREFIX + "input"}
    for mode in ("deletion", "insertion"):
        verdict = {m: faithfulness_entry(pert, m, pred, N_CLASSES, controls=controls)[mode + "_vs_control"]
                   for m in ("exact", "input", *null)}
        assert verdict["exact"]["passes"] is True and verdict["exact"]["margin"]["ci_low"] > 1.0, (name, mode)
        assert verdict["input"]["passes"] is False and verdict["input"]["margin"]["mean"] <= 0, (name, mode)
        passed = [m for m in null if verdict[m]["passes"]]
        assert len(passed) <= 3, (name, mode, passed)
    # the exact attribution is the best order: its deletion curve lies below every other order's
    logit = {m: pert["methods"][m]["deletion"]["logit"] for m in maps}
    for m in maps:
        assert np.all(logit["exact"] <= logit[m] + 1e-9)
    assert np.all(logit["exact"][:, None] <= pert["random"]["deletion"]["logit"] + 1e-9)


def test_the_ranking_depends_on_the_baseline_when_the_maps_do(linear_far):
    """Exact attributions towards zero and towards the training mean: each is best under its own baseline,
    and the report says that the ranking depends on the baseline (the issue's LRP-ε ≈ gradient × (x − mean))."""
    net, x, pred, mean = linear_far
    maps = {"towards_zero": _exact(net, x, pred, np.zeros(C)), "towards_mean": _exact(net, x, pred, mean)}
    result = {m: {"baselines": {}, "checks": {}} for m in maps}
    for name, base in (("zero", np.zeros(C)), ("training_mean", mean)):
        pert = perturbation_study(net, x, maps, pred, pred, base, n_steps=20, n_random=5, seed=0)
        for m in maps:
            result[m]["baselines"][name] = faithfulness_entry(pert, m, pred, N_CLASSES)
    dep = baseline_dependence(result)
    assert dep["best"] == {"zero": "towards_zero", "training_mean": "towards_mean"}
    assert dep["depends"] and {r[2:] for r in dep["reversals"]} <= {("zero", "training_mean"),
                                                                    ("training_mean", "zero")}
    # one baseline alone cannot show it
    single = {m: {"baselines": {"zero": e["baselines"]["zero"]}} for m, e in result.items()}
    assert baseline_dependence(single)["depends"] is False


# ------------------------------------------------------------------------------------------ randomisation

class _MapExplainer(Explainer):
    """A test explainer: ``kind`` picks the map (exact attribution towards 0, or a known-bad one)."""
    name, family, summary = "test_yardstick", "gradient", "exact linear attribution or a known-bad map (test)"

    def __init__(self, *, kind: str = "exact"):
        self.kind = kind

    def params(self):
        return {"kind": self.kind}

    @contextlib.contextmanager
    def session(self, model):
        def run(x, target=None):
            with torch.no_grad():
                out = model(x)
            target = out.argmax(1) if target is None else target
            if self.kind == "random":      # fixed per note, independent of the model
                return out, torch.sin(1e3 * x)
            if self.kind == "constant":
                return out, torch.ones_like(x)
            if self.kind == "input":
                return out, x.clone()
            cls = target if self.kind == "exact" else (target + 1) % out.shape[1]
            w = model.fc.weight.detach()[cls].reshape(x.shape)
            return out, w * x
        yield run


@pytest.fixture()
def map_explainer():
    REGISTRY[_MapExplainer.name] = _MapExplainer
    yield
    REGISTRY.pop(_MapExplainer.name, None)


def _fit(x, y, seed):
    torch.manual_seed(seed)
    net = _Linear(seed)
    opt = torch.optim.Adam(net.parameters(), 3e-2)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    for _ in range(40):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval()


def test_randomisation_fails_model_independent_maps_and_passes_the_exact_attribution(linear, map_explainer):
    net, x, pred, _ = linear
    kinds = ("exact", "random", "constant", "input", "other_class")
    explainers = {k: _MapExplainer(kind=k) for k in kinds}
    paths = {"order": np.r_[np.ones(6, int), np.full(42, 2)], "n1": np.r_[np.arange(6), np.repeat(np.arange(6), 7)],
             "n2": np.r_[np.zeros(6, int), np.tile(np.arange(7), 6)],
             "lambda1_hz": 2.0 ** (12 - np.r_[np.arange(6), np.repeat(np.arange(6), 7)]),
             "lambda2_hz": np.r_[np.full(6, np.nan), 2.0 ** (1 + np.tile(np.arange(7), 6))]}
    ref = {k: local_map(attribute(net, x, method=e, target=pred, device="cpu").relevance)
           for k, e in explainers.items()}
    res = randomisation_study(net, x, explainers, ref, pred, seeds=range(5), paths=paths)
    full = {k: np.nanmean(res[k]["cascading"]["spearman_abs"][-1]) for k in kinds}    # fc re-initialised
    assert full["exact"] < RANDOMISATION_THRESHOLD and full["other_class"] < RANDOMISATION_THRESHOLD
    for k in ("random", "constant", "input"):
        assert full[k] >= RANDOMISATION_THRESHOLD, k
        np.testing.assert_allclose(res[k]["cascading"]["ssim"][-1], 1.0)
    # data randomisation: the same linear model fitted to true and to permuted labels
    rng = np.random.default_rng(4)
    y = rng.integers(0, N_CLASSES, 300)
    xs = rng.normal(size=(300, C, T))
    xs[np.arange(300), y * 4] += 2.0
    real, permuted = _fit(xs, y, seed=0), _fit(xs, rng.permutation(y), seed=0)
    target = np.zeros(K, dtype=np.int64)
    for k, e in explainers.items():
        reference = local_map(attribute(real, xs[:K], method=e, target=target, device="cpu").relevance)
        rho = np.nanmean(map_similarity(permuted, xs[:K], e, reference, target, paths=paths)["spearman_abs"])
        assert (rho < RANDOMISATION_THRESHOLD) == (k in ("exact", "other_class")), (k, rho)


def test_failure_sentence_names_the_baseline():
    entry = {"checks": {"deletion": {"zero": False, "training_mean": True}, "insertion": {"zero": True},
                        "model_randomisation": True, "label_randomisation": None, "ground_truth": None}}
    good = {"checks": {"deletion": {"zero": True, "training_mean": True}, "insertion": {"zero": True},
                       "model_randomisation": True, "label_randomisation": None, "ground_truth": None}}
    text = failure_sentence({"a": entry, "b": good})
    assert text.startswith("a fails deletion (zero).") and "b passes every check" in text
