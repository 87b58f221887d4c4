"""Gradient-based attribution with Zennit's attributors: gradient, gradient × input, Integrated Gradients,
SmoothGrad (ANALYSIS.md §1).

All of them explain the logit f_c of one class c per example (the predicted class, or a given target), on
the network input x (the log-normalised scattering, before the network's input BatchNorm), in the
network's own arithmetic (no canonizer: BatchNorms stay as they are in eval mode).

==========================  =====================================================================
``gradient``                ∂f_c/∂x (Zennit ``Gradient``, output gradient = one-hot of class c)
``gradient_x_input``        x ⊙ ∂f_c/∂x
``integrated_gradients``    (x − x′) ⊙ (1/n) Σ_{k=1..n} ∂f_c(x′ + α_k(x − x′))/∂x on the midpoint grid
                            α_k = (k − ½)/n (Zennit's ``IntegratedGradients`` with its grid changed;
                            ``grid="right"`` is Zennit's own α_k = k/n); completeness Σ R = f_c(x) − f_c(x′)
                            up to the Riemann error
``smoothgrad``              (1/n) Σ_k ∂f_c(x + ε_k)/∂x, ε_k ~ N(0, σ²), σ = noise_level · (max x − min x)
                            per example (Zennit ``SmoothGrad``: its last of the n passes is noise-free, so
                            n = 1 or σ = 0 is the gradient); ``base="gradient_x_input"`` multiplies the
                            average by x
==========================  =====================================================================

Baselines of Integrated Gradients (``baseline``):

* ``"zero"`` (default): x′ = 0, the model input of silence (log1p(0) = 0);
* ``"unmodulated"``: per example, the model input of the *same synthetic note rendered without its
  modulation* (:func:`scatterxai.data.synth.render_note` with ``modulated=False``); the ``explain`` stage
  renders and scatters it from the features file's ground-truth columns
  (:mod:`scatterxai.explain.baselines`), ``synth_seed`` being the corpus seed;
* ``"given"``: any per-example array, passed as ``attribute(..., per_example={"baseline": x0})``.

Default: 100 steps on the midpoint grid (ANALYSIS.md proposes 50, "raise it if completeness is not within
1 %").  On the demo's S1+S2 network (zero baseline, all 334 test notes), |1 − completeness| at 100 midpoint
steps is ≤ 1 % for every note (median 0.07 %, max 0.5 %); at 50 midpoint steps 2 notes exceed 1 % (max
5.3 %, median 0.16 %).  Zennit's right Riemann sum converges more slowly (20 notes: median 0.95 % at 50
steps, 0.4 % at 128; all within 1 % only at 256).  A ReLU network is piecewise linear along the path, so the
gradient jumps: the right sum's error has a systematic part ~ (g(x) − g(x′)) / 2n that the midpoint rule
cancels.

SmoothGrad's noise is drawn from torch's generator seeded with ``seed`` at the start of each session (the
global generator is restored afterwards): results are reproducible for a given seed and batch size.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional, Tuple

import torch
from zennit.attribution import Gradient, IntegratedGradients, SmoothGrad

from .._util.validate import check_choice, check_float, check_int, check_positive_int
from ..errors import ParameterError
from .base import Explainer, RunFn, register

__all__ = ["GradientExplainer", "GradientXInput", "IntegratedGradientsExplainer", "SmoothGradExplainer",
           "unit_output", "IG_BASELINES", "DEFAULT_IG_STEPS", "DEFAULT_SMOOTHGRAD_N",
           "DEFAULT_SMOOTHGRAD_NOISE"]

#: baselines of Integrated Gradients
IG_BASELINES = ("zero", "unmodulated", "given")
#: default number of Riemann steps of Integrated Gradients
DEFAULT_IG_STEPS = 100
#: default number of SmoothGrad passes (ANALYSIS.md)
DEFAULT_SMOOTHGRAD_N = 32
#: default SmoothGrad noise level σ / (max x − min x) (ANALYSIS.md, Zennit's default)
DEFAULT_SMOOTHGRAD_NOISE = 0.1


def unit_output(n_classes: int, index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Output gradient selecting f_c: one-hot rows (B, n_classes) with 1 at ``index`` (dtype of ``like``)."""
    out = torch.zeros(index.shape[0], n_classes, dtype=like.dtype, device=like.device)
    return out.scatter(1, index[:, None], 1.0)


def _explained(model, x: torch.Tensor, target: Optional[torch.Tensor]):
    """(logits at x, explained class): ``target`` or the argmax, fixed before any perturbed pass."""
    with torch.no_grad():
        logits = model(x)
    return logits, (logits.argmax(dim=1) if target is None else target)


class GradientExplainer(Explainer):
    """∂f_c/∂x: Zennit's ``Gradient`` attributor without a composite."""

    name = "gradient"
    family = "gradient"
    summary = "gradient ∂f_c/∂x of the explained logit"
    #: multiply the gradient by the input
    times_input = False

    @contextlib.contextmanager
    def session(self, model: torch.nn.Module) -> Iterator[RunFn]:
        with Gradient(model=model) as attributor:
            def run(x, target=None):
                logits, index = _explained(model, x, target)
                output, grad = attributor(x, attr_output=unit_output(logits.shape[1], index, logits))
                return output, grad * x if self.times_input else grad
            yield run


register(GradientExplainer)


@register
class GradientXInput(GradientExplainer):
    """x ⊙ ∂f_c/∂x."""

    name = "gradient_x_input"
    summary = "gradient × input x ⊙ ∂f_c/∂x"
    times_input = True


class MidpointIntegratedGradients(IntegratedGradients):
    """Zennit's ``IntegratedGradients`` with the midpoint rule α_k = (k − ½)/n instead of its right Riemann
    sum α_k = k/n (same number of gradient passes, one more forward pass for the output at x)."""

    def forward(self, input, attr_output_fn):
        baseline = self.baseline_fn(input)
        result = torch.zeros_like(input)
        for k in range(self.n_iter):
            alpha = (k + 0.5) / self.n_iter
            _, gradient = self.grad(baseline + alpha * (input - baseline), attr_output_fn)
            result += gradient / self.n_iter
        with torch.no_grad():
            output = self.model(input)
        return output, result * (input - baseline)


#: Riemann grids of Integrated Gradients: attributor class by name
IG_GRIDS = {"midpoint": MidpointIntegratedGradients, "right": IntegratedGradients}


@register
class IntegratedGradientsExplainer(Explainer):
    """Integrated Gradients (Zennit ``IntegratedGradients``), from a zero, unmodulated or given baseline.

    Parameters
    ----------
    steps : int
        Riemann steps n.
    grid : {"midpoint", "right"}
        α_k = (k − ½)/n (midpoint rule) or k/n (Zennit's right Riemann sum), k = 1..n.
    baseline : {"zero", "unmodulated", "given"}
        See the module docstring; the last two take a per-example ``baseline`` input (K, C, T).
    synth_seed : int
        Seed of the synthetic corpus, used by the ``explain`` stage to re-render the unmodulated notes
        (recorded; ignored by the other baselines).
    """

    name = "integrated_gradients"
    family = "gradient"
    summary = "Integrated Gradients from a zero (silence) or unmodulated-note baseline"
    slow = True

    def __init__(self, *, steps: int = DEFAULT_IG_STEPS, grid: str = "midpoint", baseline: str = "zero",
                 synth_seed: int = 0):
        self.steps = check_positive_int("steps", steps)
        self.grid = check_choice("grid", grid, tuple(IG_GRIDS))
        self.baseline = check_choice("baseline", baseline, IG_BASELINES)
        self.synth_seed = check_int("synth_seed", synth_seed, low=0)

    def params(self) -> dict:
        p = {"steps": self.steps, "grid": self.grid, "baseline": self.baseline}
        if self.baseline == "unmodulated":
            p["synth_seed"] = self.synth_seed
        return p

    def per_example_inputs(self) -> Tuple[str, ...]:
        return () if self.baseline == "zero" else ("baseline",)

    @contextlib.contextmanager
    def session(self, model: torch.nn.Module) -> Iterator[RunFn]:
        def run(x, target=None, baseline=None):
            if baseline is None:
                baseline = torch.zeros_like(x)
            elif baseline.shape != x.shape:
                raise ParameterError(f"the baseline must have the inputs' shape {tuple(x.shape)}, got "
                                     f"{tuple(baseline.shape)}")
            logits, index = _explained(model, x, target)
            attributor = IG_GRIDS[self.grid](model=model, baseline_fn=lambda _: baseline, n_iter=self.steps)
            output, relevance = attributor(x, attr_output=unit_output(logits.shape[1], index, logits))
            with torch.no_grad():
                baseline_logits = model(baseline)
            return output, relevance, {"baseline_logits": baseline_logits}
        yield run


@register
class SmoothGradExplainer(Explainer):
    """SmoothGrad (Zennit ``SmoothGrad``) of the gradient or of gradient × input.

    Parameters
    ----------
    n : int
        Passes averaged (the last one noise-free, as in Zennit).
    noise_level : float
        σ / (max x − min x) per example, ≥ 0 (0 gives the base method exactly).
    base : {"gradient", "gradient_x_input"}
    seed : int
        Seed of the noise.
    """

    name = "smoothgrad"
    family = "gradient"
    summary = "SmoothGrad: gradient averaged over n noisy copies x + N(0, σ²), σ = 0.1·(max − min of x)"
    slow = True

    def __init__(self, *, n: int = DEFAULT_SMOOTHGRAD_N, noise_level: float = DEFAULT_SMOOTHGRAD_NOISE,
                 base: str = "gradient", seed: int = 0):
        self.n = check_positive_int("n", n)
        self.noise_level = check_float("noise_level", noise_level, low=0.0)
        self.base = check_choice("base", base, ("gradient", "gradient_x_input"))
        self.seed = check_int("seed", seed, low=0)

    def params(self) -> dict:
        return {"n": self.n, "noise_level": self.noise_level, "base": self.base, "seed": self.seed}

    @contextlib.contextmanager
    def session(self, model: torch.nn.Module) -> Iterator[RunFn]:
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices), \
                SmoothGrad(model=model, noise_level=self.noise_level, n_iter=self.n) as attributor:
            torch.manual_seed(self.seed)

            def run(x, target=None):
                logits, index = _explained(model, x, target)
                output, grad = attributor(x, attr_output=unit_output(logits.shape[1], index, logits))
                return output, grad * x if self.base == "gradient_x_input" else grad
            yield run
