"""What the attribution methods add to Zennit (torch): an exact BatchNorm merge, Integrated Gradients on the
midpoint grid, and the output selections every method starts its backward pass from.

The method modules of :mod:`scatterxai.explain.methods` import this module inside their sessions only, so
that their metadata stay importable without torch.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

import torch
from zennit.attribution import IntegratedGradients
from zennit.canonizers import SequentialMergeBatchNorm

__all__ = ["MergeBatchNormExact", "MidpointIntegratedGradients", "IG_GRIDS", "unit_output", "explained_logits",
           "one_hot_logit", "explained_index", "zero_params"]


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


class MidpointIntegratedGradients(IntegratedGradients):
    """Zennit's ``IntegratedGradients`` with the midpoint rule α_k = (k − ½)/n instead of its right Riemann
    sum α_k = k/n (same number of gradient passes, one more forward pass for the output at x)."""

    def forward(self, input: torch.Tensor, attr_output_fn: Callable) -> Tuple[torch.Tensor, torch.Tensor]:
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
