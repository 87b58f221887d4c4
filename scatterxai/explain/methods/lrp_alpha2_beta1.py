"""LRP-α2β1 on the convolutions, ε on the dense layers: Zennit's ``EpsilonAlpha2Beta1`` composite.

The αβ rule (Bach et al., "On pixel-wise explanations for non-linear classifier decisions by layer-wise
relevance propagation", PLoS ONE 2015) splits each output's relevance R_k between the positive and the
negative contributions of its inputs:

    R_i = R_k · [ α (x_i w_ik)⁺ / (Σ_j (x_j w_jk)⁺ + b_k⁺) − β (x_i w_ik)⁻ / (Σ_j (x_j w_jk)⁻ + b_k⁻) ]

with α = 2, β = 1 (α − β = 1: when both denominators are non-zero and the biases are zero, Σ_i R_i = R_k).
It is Zennit's ``AlphaBeta(alpha=2, beta=1)``, whose positive part is x⁺w⁺ + x⁻w⁻ and negative part
x⁺w⁻ + x⁻w⁺, i.e. (x w)⁺ and (x w)⁻ for inputs of either sign.  An output with no negative contribution
(Σ (x w)⁻ + b⁻ = 0) passes α R_k through its positive part alone, so relevance is not conserved there.

Where the rules go, as in the presets of :mod:`.lrp`: αβ on the convolutions (after merging the BatchNorm
that follows each, :class:`~scatterxai.explain.zennit_ext.MergeBatchNormExact`), ε on the dense layers,
Zennit's ``Norm`` on average pooling, activations and BatchNorm passed.  This is the composite of Zennit
(and of Kohlbrenner et al., "Towards best practice in explaining neural network decisions with LRP", IJCNN
2020) that the LRP literature calls LRP-α2β1 when applied to a convnet; its title here, LRP-[ε,α2β1],
names both rules as LRP-[ε,z+] does.  The input BatchNorm passes relevance unchanged (see :mod:`.lrp`).
``epsilon`` is the dense layers' ε; αβ and ``Norm`` are stabilised by min(ε, 1e-6) (Zennit's default 1e-6
at the default ε).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base import register
from .lrp import LRPExplainer, stabilizer

if TYPE_CHECKING:
    from zennit.core import Composite

__all__ = ["LRPEpsilonAlpha2Beta1"]


@register
class LRPEpsilonAlpha2Beta1(LRPExplainer):
    """αβ (α = 2, β = 1) for convolutions, ε for dense layers: Zennit's ``EpsilonAlpha2Beta1``."""

    name = "epsilon_alpha2_beta1"
    title = "LRP-[ε,α2β1]"
    summary = "LRP-α2β1: αβ rule (α = 2, β = 1) for convolutions, ε for dense layers (Zennit's EpsilonAlpha2Beta1)"
    conv, dense, pool = "alpha2beta1", "epsilon", "z"

    def composite(self) -> Composite:
        from zennit.composites import EpsilonAlpha2Beta1

        from ..zennit_ext import MergeBatchNormExact, zero_params
        return EpsilonAlpha2Beta1(epsilon=self.epsilon, stabilizer=stabilizer(self.epsilon),
                                  zero_params=zero_params(self.zero_bias), canonizers=[MergeBatchNormExact()])
