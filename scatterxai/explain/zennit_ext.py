"""What the attribution methods add to Zennit (torch): an exact BatchNorm merge, Integrated Gradients on the
midpoint grid, Integrated Gradients and SmoothGrad with their steps batched, and the output selections every
method starts its backward pass from.

The method modules of :mod:`scatterxai.explain.methods` import this module inside their sessions only, so
that their metadata stay importable without torch.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import torch
from zennit.attribution import IntegratedGradients, SmoothGrad
from zennit.canonizers import SequentialMergeBatchNorm

__all__ = ["MergeBatchNormExact", "MidpointIntegratedGradients", "RightIntegratedGradients", "BatchedSmoothGrad",
           "IG_GRIDS", "STEP_ROWS", "mean_gradient", "unit_output", "explained_logits", "one_hot_logit",
           "explained_index", "zero_params"]

#: rows per network pass when the steps of Integrated Gradients or SmoothGrad are batched: a batch of K
#: examples takes max(1, STEP_ROWS // K) steps per pass.  Measured on 2 cores (the demo's network, 100 IG
#: steps): one note 0.35 s one step at a time, 0.14 s batched; 8 notes 1.33 → 0.94 s; 64 notes 7.35 → 6.92 s
#: with 128 rows, but slower with 512.  From 33 examples on a pass holds one step, as in Zennit.
STEP_ROWS = 64


class MergeBatchNormExact(SequentialMergeBatchNorm):
    """``SequentialMergeBatchNorm`` that also sets the merged BatchNorm's ``eps`` to 0 (restored on removal).

    Zennit 0.5.1 turns a merged BatchNorm into x / sqrt(1 + eps) rather than the identity; Zennit 1.0 sets
    eps to 0.  With this canonizer the canonized network reproduces the original logits.
    """

    def register(self, linears: Sequence[torch.nn.Module], batch_norm: torch.nn.Module) -> None:
        self._eps = batch_norm.eps
        super().register(linears, batch_norm)
        batch_norm.eps = 0.0

    def remove(self) -> None:
        super().remove()
        self.batch_norm.eps = self._eps


def mean_gradient(model: torch.nn.Module, step_input: Callable[[int], torch.Tensor], n_steps: int,
                  attr_output_fn: Callable) -> Tuple[torch.Tensor, torch.Tensor]:
    """(1/n) Σ_k of the gradients of the steps k = 0 … n − 1, summed in step order, and the output of the
    last step; several steps per network pass.

    ``step_input(k)`` is the input of step k (K examples), called in the order k = 0, 1, … (so inputs that
    draw random numbers draw them as a one-step-at-a-time loop would).  The steps of a pass are stacked into
    one batch (:data:`STEP_ROWS`); each step's output gradient is ``attr_output_fn`` of its own rows of the
    output.  The network must treat examples independently (eval mode: no batch statistics), as every
    attribution here does; the gradients are then those of one pass per step, up to float rounding (a
    kernel may sum in another order for another batch size).
    """
    result, last, k = None, None, 0
    while k < n_steps:
        inputs = [step_input(k)]
        per = max(1, STEP_ROWS // max(1, inputs[0].shape[0]))
        inputs += [step_input(j) for j in range(k + 1, min(n_steps, k + per))]
        sizes = [len(x) for x in inputs]
        batch = (torch.cat(inputs) if len(inputs) > 1 else inputs[0]).detach().requires_grad_(True)
        output = model(batch)
        outputs = output.split(sizes)
        gradient, = torch.autograd.grad((output,), (batch,),
                                        grad_outputs=(torch.cat([attr_output_fn(o) for o in outputs]),))
        if result is None:
            result = torch.zeros_like(inputs[0])
        for g in gradient.split(sizes):
            result += g / n_steps
        last, k = outputs[-1].detach(), k + len(inputs)
    return result, last


class MidpointIntegratedGradients(IntegratedGradients):
    """Zennit's ``IntegratedGradients`` with the midpoint rule α_k = (k − ½)/n instead of its right Riemann
    sum α_k = k/n (same number of gradient passes, one more forward pass for the output at x), its steps
    batched (:func:`mean_gradient`)."""

    def forward(self, input: torch.Tensor, attr_output_fn: Callable) -> Tuple[torch.Tensor, torch.Tensor]:
        baseline = self.baseline_fn(input)
        result, _ = mean_gradient(self.model, lambda k: baseline + (k + 0.5) / self.n_iter * (input - baseline),
                                  self.n_iter, attr_output_fn)
        with torch.no_grad():
            output = self.model(input)
        return output, result * (input - baseline)


class RightIntegratedGradients(IntegratedGradients):
    """Zennit's ``IntegratedGradients`` (right Riemann sum: α_k from ``torch.linspace(1/n, 1, n)``, the output
    that of the last step, at x), its steps batched (:func:`mean_gradient`)."""

    def forward(self, input: torch.Tensor, attr_output_fn: Callable) -> Tuple[torch.Tensor, torch.Tensor]:
        baseline = self.baseline_fn(input)
        alphas = torch.linspace(1. / self.n_iter, 1., self.n_iter)
        result, output = mean_gradient(self.model, lambda k: baseline + alphas[k] * (input - baseline),
                                       self.n_iter, attr_output_fn)
        return output, result * (input - baseline)


class BatchedSmoothGrad(SmoothGrad):
    """Zennit's ``SmoothGrad`` with its passes batched (:func:`mean_gradient`): the same noise, drawn with
    ``torch.randn_like`` pass after pass in the same order, the last pass noise-free."""

    def forward(self, input: torch.Tensor, attr_output_fn: Callable) -> Tuple[torch.Tensor, torch.Tensor]:
        dims = tuple(range(1, input.ndim))
        std = self.noise_level * (input.amax(dims, keepdim=True) - input.amin(dims, keepdim=True))

        def noisy(k):
            return input if k == self.n_iter - 1 else input + torch.randn_like(input) * std

        result, output = mean_gradient(self.model, noisy, self.n_iter, attr_output_fn)
        return output, result


#: Riemann grids of Integrated Gradients: attributor class by name
IG_GRIDS = {"midpoint": MidpointIntegratedGradients, "right": RightIntegratedGradients}


def zero_params(zero_bias: bool) -> Optional[list]:
    """Zennit's ``zero_params`` argument: leave the biases out of a rule's denominators, or not."""
    return ["bias"] if zero_bias else None


def unit_output(n_classes: int, index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Output gradient selecting f_c: one-hot rows (B, n_classes) with 1 at ``index`` (dtype of ``like``)."""
    out = torch.zeros(index.shape[0], n_classes, dtype=like.dtype, device=like.device)
    return out.scatter(1, index[:, None], 1.0)


def explained_logits(model: torch.nn.Module, x: torch.Tensor,
                     target: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(logits at x, explained class): ``target`` or the argmax, fixed before any perturbed pass."""
    with torch.no_grad():
        logits = model(x)
    return logits, (logits.argmax(dim=1) if target is None else target)


def one_hot_logit(output: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Initial relevance of LRP: the explained logit at its class, 0 elsewhere."""
    out = output.detach()
    return torch.zeros_like(out).scatter(1, index[:, None], out.gather(1, index[:, None]))


def explained_index(output: torch.Tensor, target: Optional[torch.Tensor]) -> torch.Tensor:
    """The explained class per example: ``target``, or the argmax of ``output`` when it is None."""
    return output.detach().argmax(dim=1) if target is None else target
