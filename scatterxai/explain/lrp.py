"""Layer-wise relevance propagation (Zennit) on the scattering convnet: the rule presets, one explainer each.

A prediction f_c(x) is decomposed onto the input coefficients x[path, frame] with Zennit: a *composite*
assigns one LRP rule per layer type, a *canonizer* first merges each BatchNorm into the convolution or dense
layer registered just before it, and the :class:`zennit.attribution.Gradient` attributor runs the modified
backward pass from the explained logit.

Rule presets (:data:`RULES`; each maps ``(epsilon, zero_bias)`` to a Zennit composite):

============================  ============  ============  ===================  ======================
name                          convolutions  dense layers  average pooling      activations, BatchNorm
============================  ============  ============  ===================  ======================
``lrp0``                      z             z             z                    pass
``epsilon``                   ε             ε             ε                    pass
``epsilon_plus``              z+            ε             z (Zennit ``Norm``)  pass
``epsilon_conv_zplus_dense``  ε             z+            z (Zennit ``Norm``)  pass
============================  ============  ============  ===================  ======================

ε (``epsilon``, default 1e-6 as in the companion code) is the ε-rule's ε; z+ and ``Norm`` are stabilised
by min(ε, 1e-6): Zennit's default 1e-6 at the default ε (so ``epsilon_plus`` is exactly Zennit's
``EpsilonPlus()``), and smaller when ε is, so that ε → 0 is the conserving limit of every preset.

``epsilon_plus`` is Zennit's own ``EpsilonPlus`` composite, which produced the paper's figures and kurtosis
values (LRP-[ε,z+]).  The paper's *text* describes the reverse mapping (ε for convolutions, z+ for dense
layers); it is offered as ``epsilon_conv_zplus_dense`` so that both can be compared.  ``lrp0`` divides by the
plain pre-activation z; denominators are only clipped away from zero (|z| ≥ 1e-30, sign kept) so that the
0/0 of silent units gives 0 instead of NaN — no denominator that is not already ~0 is altered.  z+ is
Zennit's generalised z+ (α=1, β=0): positive contributions x⁺w⁺ + x⁻w⁻ of inputs of either sign.  The
global average pool (``AdaptiveAvgPool1d``) is an average pool for Zennit (``zennit.types.AvgPool``).

BatchNorm merging.  BatchNorms that follow a convolution or dense layer are merged into it
(:class:`MergeBatchNormExact`, a :class:`zennit.canonizers.SequentialMergeBatchNorm` that, like Zennit
1.0, also sets the emptied BatchNorm's ``eps`` to 0 while merged, so the canonized network computes the
same logits as the original; Zennit 0.5.1 leaves a factor 1/sqrt(1 + eps) per merged BatchNorm).  The
merged biases absorb relevance: :attr:`Attribution.conservation` reports the share that reaches the input.
``zero_bias=True`` (Zennit's ``zero_params='bias'``) leaves biases out of the rules' denominators: the z
and ε rules then conserve relevance exactly (as ε → 0); z+ still drops the relevance of a unit that only
its bias switched on, since it has no positive contribution to pass it down.

The input BatchNorm (``ConvNet.input_bn``, decision).  It standardises each input coefficient
(x' = γ (x − μ)/σ + β, per path) and precedes ``conv0``, so there is nothing to merge it into.  Relevance is
**passed through it unchanged** (Zennit's ``Pass`` rule, which every preset applies to BatchNorm): the
first convolution's rule distributes relevance over the standardised values x', and each x'[path, frame]
hands its relevance to x[path, frame].  Why:

* it conserves relevance (nothing is absorbed: the sum over the input equals the sum entering ``conv0``);
* the map is per path and per frame exactly as if x' were the network's input ("moving the BatchNorm out
  of the network" gives the same numbers, tested);
* folding it into ``conv0`` instead is not exact: with 'same' zero padding, the shift (β − γμ/σ) would
  become a bias that differs at the first and last frames, and that bias would absorb relevance that
  belongs to the input.

Consequence: the first layer's rule weighs contributions by x', the standardised value the network actually
works with, not by the raw log-scattering x (a path near its training mean has x' ≈ β).

Attribution never touches the caller's network: :func:`scatterxai.explain.attribute` works on a deep copy
(put in eval mode, on the requested device and precision), so canonizers and hooks live and die with that
copy.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, Sequence, Union

import torch
from zennit.attribution import Gradient
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import EpsilonPlus, LayerMapComposite, layer_map_base
from zennit.core import Composite, Stabilizer
from zennit.rules import Epsilon, ZPlus
from zennit.types import Convolution

from .._util.validate import check_positive_float
from ..errors import ParameterError
from .base import Explainer, RunFn, register

__all__ = ["RULES", "RulePreset", "MergeBatchNormExact", "get_rule", "LRPExplainer", "one_hot_logit",
           "LRP0_CLIP", "DEFAULT_EPSILON", "ZENNIT_STABILIZER"]

#: default ε of the ε-rule (companion code)
DEFAULT_EPSILON = 1e-6
#: |z| below which LRP-0 clips its denominators (sign kept), only to turn 0/0 into 0
LRP0_CLIP = 1e-30
#: Zennit's default stabiliser of the rules other than ε (z+, Norm); min(ε, this) is used
ZENNIT_STABILIZER = 1e-6


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


def _zero_params(zero_bias: bool):
    return ["bias"] if zero_bias else None


def _dense_types():
    return (torch.nn.Linear,)


def _lrp0(epsilon=DEFAULT_EPSILON, zero_bias=False) -> Composite:
    # ``epsilon`` is accepted for a uniform factory signature; LRP-0 has no ε.
    z = Stabilizer(epsilon=LRP0_CLIP, clip=True)
    layer_map = layer_map_base(z) + [
        (Convolution, Epsilon(epsilon=z, zero_params=_zero_params(zero_bias))),
        (_dense_types(), Epsilon(epsilon=z, zero_params=_zero_params(zero_bias))),
    ]
    return LayerMapComposite(layer_map=layer_map, canonizers=[MergeBatchNormExact()])


def _epsilon(epsilon=DEFAULT_EPSILON, zero_bias=False) -> Composite:
    # layer_map_base(ε) makes average pooling Norm(stabilizer=ε), i.e. the ε-rule without parameters.
    layer_map = layer_map_base(epsilon) + [
        (Convolution, Epsilon(epsilon=epsilon, zero_params=_zero_params(zero_bias))),
        (_dense_types(), Epsilon(epsilon=epsilon, zero_params=_zero_params(zero_bias))),
    ]
    return LayerMapComposite(layer_map=layer_map, canonizers=[MergeBatchNormExact()])


def _stabilizer(epsilon: float) -> float:
    # Zennit's default for z+ and Norm, shrinking with ε so that ε → 0 is the conserving limit of every rule.
    return min(float(epsilon), ZENNIT_STABILIZER)


def _epsilon_plus(epsilon=DEFAULT_EPSILON, zero_bias=False) -> Composite:
    return EpsilonPlus(epsilon=epsilon, stabilizer=_stabilizer(epsilon), zero_params=_zero_params(zero_bias),
                       canonizers=[MergeBatchNormExact()])


def _epsilon_conv_zplus_dense(epsilon=DEFAULT_EPSILON, zero_bias=False) -> Composite:
    layer_map = layer_map_base(_stabilizer(epsilon)) + [
        (Convolution, Epsilon(epsilon=epsilon, zero_params=_zero_params(zero_bias))),
        (_dense_types(), ZPlus(stabilizer=_stabilizer(epsilon), zero_params=_zero_params(zero_bias))),
    ]
    return LayerMapComposite(layer_map=layer_map, canonizers=[MergeBatchNormExact()])


@dataclass(frozen=True)
class RulePreset:
    """A named LRP rule mapping; calling it builds a fresh Zennit composite.

    Attributes
    ----------
    conv, dense, pool : str
        Rule of convolutions, dense layers and average pooling (``"z"``, ``"epsilon"``, ``"zplus"``).
    build : callable ``(epsilon, zero_bias) -> zennit.core.Composite``
    """

    name: str
    conv: str
    dense: str
    pool: str
    build: Callable[..., Composite]

    def __call__(self, epsilon: float = DEFAULT_EPSILON, zero_bias: bool = False) -> Composite:
        """A new composite (one composite may only be registered to one network at a time)."""
        return self.build(epsilon=epsilon, zero_bias=zero_bias)

    def describe(self) -> str:
        return (f"conv: {self.conv}, dense: {self.dense}, avgpool: {self.pool}, activations and BatchNorm: "
                f"pass, BatchNorm after conv/dense merged")


#: rule presets by name (see the module docstring)
RULES: Dict[str, RulePreset] = {p.name: p for p in (
    RulePreset("lrp0", "z", "z", "z", _lrp0),
    RulePreset("epsilon", "epsilon", "epsilon", "epsilon", _epsilon),
    RulePreset("epsilon_plus", "zplus", "epsilon", "z", _epsilon_plus),
    RulePreset("epsilon_conv_zplus_dense", "epsilon", "zplus", "z", _epsilon_conv_zplus_dense),
)}


def get_rule(rule: Union[str, RulePreset]) -> RulePreset:
    """The preset named ``rule`` (a :class:`RulePreset` is returned as is)."""
    if isinstance(rule, RulePreset):
        return rule
    if rule not in RULES:
        raise ParameterError(f"unknown LRP rule {rule!r}; valid rules are {sorted(RULES)}")
    return RULES[rule]


def one_hot_logit(output: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Initial relevance: the explained logit at its class, 0 elsewhere."""
    out = output.detach()
    return torch.zeros_like(out).scatter(1, index[:, None], out.gather(1, index[:, None]))


def explained_index(output: torch.Tensor, target) -> torch.Tensor:
    """The explained class per example: ``target``, or the argmax of ``output`` when it is None."""
    return output.detach().argmax(dim=1) if target is None else target


class LRPExplainer(Explainer):
    """LRP with one of the rule presets of :data:`RULES` (Zennit's ``Gradient`` attributor + composite).

    Parameters
    ----------
    epsilon : float
        ε of the ε-rule (default 1e-6; ignored by ``lrp0``).
    zero_bias : bool
        Leave biases (including merged BatchNorm shifts) out of the rules, so that relevance is conserved.
    """

    family = "lrp"

    def __init__(self, *, epsilon: float = DEFAULT_EPSILON, zero_bias: bool = False):
        self.epsilon = check_positive_float("epsilon", epsilon)
        self.zero_bias = bool(zero_bias)
        self.preset = RULES[self.name]

    def params(self) -> dict:
        return {"epsilon": self.epsilon, "stabilizer": _stabilizer(self.epsilon), "zero_bias": self.zero_bias}

    def attrs(self) -> dict:
        p = self.preset
        return {**super().attrs(), "conv": p.conv, "dense": p.dense, "pool": p.pool, "description": p.describe()}

    @contextlib.contextmanager
    def session(self, model: torch.nn.Module) -> Iterator[RunFn]:
        composite = self.preset(epsilon=self.epsilon, zero_bias=self.zero_bias)
        with Gradient(model=model, composite=composite) as attributor:
            def run(x, target=None):
                return attributor(x, attr_output=lambda output: one_hot_logit(output, explained_index(output, target)))
            yield run


@register
class LRP0(LRPExplainer):
    name = "lrp0"
    summary = "LRP-0: z-rule everywhere"


@register
class LRPEpsilon(LRPExplainer):
    name = "epsilon"
    summary = "LRP-ε: ε-rule for convolutions, dense layers and pooling (ε = 1e-6)"


@register
class LRPEpsilonPlus(LRPExplainer):
    name = "epsilon_plus"
    summary = "LRP-[ε,z+]: z+ for convolutions, ε for dense layers (Zennit's EpsilonPlus; the paper's figures)"


@register
class LRPEpsilonConvZPlusDense(LRPExplainer):
    name = "epsilon_conv_zplus_dense"
    summary = "LRP-[z+,ε]: ε for convolutions, z+ for dense layers (the mapping the paper's text describes)"
