"""Gradient-based attribution with Zennit's attributors: gradient, gradient × input, Integrated Gradients,
SmoothGrad (definitions and choices: ``docs/analysis.md``, "Attribution methods").

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

Default: 100 steps on the midpoint grid (50 is a common choice; 100 is where completeness is within 1 % on
every note of the demo).  On an earlier demo's S1+S2 network (zero baseline, all 334 test notes), |1 − completeness|
at 100 midpoint steps is ≤ 1 % for every note (median 0.07 %, max 0.5 %); at 50 midpoint steps 2 notes exceed
1 % (max 5.3 %, median 0.16 %).  Zennit's right Riemann sum converges more slowly (20 notes: median 0.95 % at
50 steps, 0.4 % at 128; all within 1 % only at 256).  A ReLU network is piecewise linear along the path, so the
gradient jumps: the right sum's error has a systematic part ~ (g(x) − g(x′)) / 2n that the midpoint rule
cancels.

Integrated Gradients and SmoothGrad batch their steps (:func:`scatterxai.explain.zennit_ext.mean_gradient`:
max(1, 64 // K) steps per network pass for K examples), which gives Zennit's one-pass-per-step result up to
float rounding, the same noise included.

SmoothGrad's noise is drawn from torch's generator seeded with ``seed`` at the start of each session (the
global generator is restored afterwards): results are reproducible for a given seed and batch size.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator, Tuple

from ...errors import ParameterError
from ..base import Explainer, Param, RunFn, register

if TYPE_CHECKING:
    import torch

__all__ = ["GradientExplainer", "GradientXInput", "IntegratedGradientsExplainer", "SmoothGradExplainer",
           "IG_BASELINES", "IG_GRID_NAMES", "DEFAULT_IG_STEPS", "DEFAULT_SMOOTHGRAD_N", "DEFAULT_SMOOTHGRAD_NOISE"]

#: baselines of Integrated Gradients
IG_BASELINES = ("zero", "unmodulated", "given")
#: Riemann grids of Integrated Gradients (:data:`scatterxai.explain.zennit_ext.IG_GRIDS`)
IG_GRID_NAMES = ("midpoint", "right")
#: default number of Riemann steps of Integrated Gradients
DEFAULT_IG_STEPS = 100
#: default number of SmoothGrad passes
DEFAULT_SMOOTHGRAD_N = 32
#: default SmoothGrad noise level σ / (max x − min x) (Zennit's default)
DEFAULT_SMOOTHGRAD_NOISE = 0.1


@register
class GradientExplainer(Explainer):
    """∂f_c/∂x: Zennit's ``Gradient`` attributor without a composite."""

    name = "gradient"
    title = "gradient"
    family = "gradient"
    summary = "gradient ∂f_c/∂x of the explained logit"
    #: multiply the gradient by the input
    times_input = False

    @contextlib.contextmanager
    def session(self, model: torch.nn.Module) -> Iterator[RunFn]:
        from zennit.attribution import Gradient

        from ..zennit_ext import explained_logits, unit_output
        with Gradient(model=model) as attributor:
            def run(x, target=None):
                logits, index = explained_logits(model, x, target)
                output, grad = attributor(x, attr_output=unit_output(logits.shape[1], index, logits))
                return output, grad * x if self.times_input else grad
            yield run


@register
class GradientXInput(GradientExplainer):
    """x ⊙ ∂f_c/∂x."""

    name = "gradient_x_input"
    title = "gradient × input"
    summary = "gradient × input x ⊙ ∂f_c/∂x"
    times_input = True


@register
class IntegratedGradientsExplainer(Explainer):
    """Integrated Gradients (Zennit ``IntegratedGradients``), from a zero, unmodulated or given baseline
    (see the module docstring); ``baseline="unmodulated"`` or ``"given"`` take a per-example ``baseline``
    input (K, C, T)."""

    name = "integrated_gradients"
    title = "Integrated Gradients"
    family = "gradient"
    summary = "Integrated Gradients from a zero (silence) or unmodulated-note baseline"
    slow = True
    parameters = (
        Param("steps", DEFAULT_IG_STEPS, "Riemann steps", low=1, high=10_000, flag="--ig-steps", metavar="N"),
        Param("grid", "midpoint", "α_k = (k − ½)/n, or Zennit's right Riemann sum α_k = k/n", kind="choice",
              choices=IG_GRID_NAMES, flag="--ig-grid"),
        Param("baseline", "zero", "the input of silence, or (synthetic notes only) the same note rendered without "
              "its modulation ('given': a per-example array, Python only)", kind="choice", choices=IG_BASELINES,
              cli_choices=("zero", "unmodulated"), flag="--ig-baseline"),
        Param("synth_seed", 0, "seed of the synthetic corpus, to re-render the notes of --ig-baseline unmodulated",
              kind="seed", flag="--synth-seed", metavar="SEED"),
    )

    def params(self) -> dict:
        p = {"steps": self.steps, "grid": self.grid, "baseline": self.baseline}
        if self.baseline == "unmodulated":
            p["synth_seed"] = self.synth_seed
        return p

    def per_example_inputs(self) -> Tuple[str, ...]:
        return () if self.baseline == "zero" else ("baseline",)

    @contextlib.contextmanager
    def session(self, model: torch.nn.Module) -> Iterator[RunFn]:
        import torch

        from ..zennit_ext import IG_GRIDS, explained_logits, unit_output

        def run(x, target=None, baseline=None):
            if baseline is None:
                baseline = torch.zeros_like(x)
            elif baseline.shape != x.shape:
                raise ParameterError(f"the baseline must have the inputs' shape {tuple(x.shape)}, got "
                                     f"{tuple(baseline.shape)}")
            logits, index = explained_logits(model, x, target)
            attributor = IG_GRIDS[self.grid](model=model, baseline_fn=lambda _: baseline, n_iter=self.steps)
            output, relevance = attributor(x, attr_output=unit_output(logits.shape[1], index, logits))
            with torch.no_grad():
                baseline_logits = model(baseline)
            return output, relevance, {"baseline_logits": baseline_logits}
        yield run


@register
class SmoothGradExplainer(Explainer):
    """SmoothGrad (Zennit ``SmoothGrad``) of the gradient or of gradient × input.

    The noise of a batch is drawn at once from a generator seeded at the start of the session, so the
    result depends on the batch size (:attr:`batch_invariant` is False); it is reproducible for a given
    seed and batch size.
    """

    name = "smoothgrad"
    title = "SmoothGrad"
    family = "gradient"
    summary = "SmoothGrad: gradient averaged over n noisy copies x + N(0, σ²), σ = 0.1·(max − min of x)"
    slow = True
    batch_invariant = False
    parameters = (
        Param("n", DEFAULT_SMOOTHGRAD_N, "passes averaged, the last without noise", low=1, high=10_000,
              flag="--smoothgrad-n", metavar="N"),
        Param("noise_level", DEFAULT_SMOOTHGRAD_NOISE, "noise σ as a fraction of (max − min) of each input",
              kind="float", low=0.0, high=1.0, flag="--smoothgrad-sigma", metavar="LEVEL"),
        Param("base", "gradient", "average the gradient, or multiply the average by the input", kind="choice",
              choices=("gradient", "gradient_x_input"), flag="--smoothgrad-base"),
        Param("seed", 0, "seed of the noise", kind="seed"),
    )

    @contextlib.contextmanager
    def session(self, model: torch.nn.Module) -> Iterator[RunFn]:
        import torch

        from ..zennit_ext import BatchedSmoothGrad, explained_logits, unit_output
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices), \
                BatchedSmoothGrad(model=model, noise_level=self.noise_level, n_iter=self.n) as attributor:
            torch.manual_seed(self.seed)

            def run(x, target=None):
                logits, index = explained_logits(model, x, target)
                output, grad = attributor(x, attr_output=unit_output(logits.shape[1], index, logits))
                return output, grad * x if self.base == "gradient_x_input" else grad
            yield run
