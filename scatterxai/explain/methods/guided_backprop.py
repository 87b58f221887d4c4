"""Guided Backpropagation (Springenberg et al., "Striving for simplicity: the all convolutional net", ICLR
workshop 2015) with Zennit's rule.

A backward pass from the explained logit (output signal: the one-hot of the explained class, as for the
gradient) in which every ReLU passes the incoming signal g only where the unit was active *and* g is
positive: g · 1[z > 0] · 1[g > 0] (Zennit's ``GuidedBackprop`` composite: ``ReLUGuidedBackprop`` on every
``torch.nn.ReLU``).  Convolutions, pooling, eval-mode BatchNorm and dense layers pass their transposed linear
map, as in the gradient.  It is the gradient with DeconvNet's positivity added at each ReLU (DeconvNet drops
the forward gate 1[z > 0] instead), so it differs from the gradient exactly where a ReLU receives a negative
signal.

What to expect (``docs/analysis.md``, "Attribution methods"): unlike DeconvNet on this convnet, the maps
depend on the note through the forward gates; Guided Backprop is known to reconstruct input structure
rather than the decision — its maps change little when the upper layers are re-initialised (Adebayo et
al., "Sanity checks for saliency maps", NeurIPS 2018; Nie et al., ICML 2018) — which the quality stage's
randomisation checks measure.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator

from ..base import Explainer, RunFn, register

if TYPE_CHECKING:
    import torch

__all__ = ["GuidedBackpropExplainer"]


@register
class GuidedBackpropExplainer(Explainer):
    """Guided Backprop from the explained logit (Zennit's ``Gradient`` attributor with its ``GuidedBackprop``
    composite)."""

    name = "guided_backprop"
    title = "Guided Backprop"
    family = "gradient"
    summary = ("Guided Backprop: ReLUs pass the incoming signal where the unit was active and the signal is "
               "positive (Zennit)")

    @contextlib.contextmanager
    def session(self, model: torch.nn.Module) -> Iterator[RunFn]:
        from zennit.attribution import Gradient
        from zennit.composites import GuidedBackprop

        from ..zennit_ext import explained_logits, unit_output
        with Gradient(model=model, composite=GuidedBackprop()) as attributor:
            def run(x, target=None):
                logits, index = explained_logits(model, x, target)
                return attributor(x, attr_output=unit_output(logits.shape[1], index, logits))
            yield run
