"""Layer-wise relevance propagation (Zennit) on the scattering convnet: the rule presets, one explainer each.

A prediction f_c(x) is decomposed onto the input coefficients x[path, frame] with Zennit: a *composite*
assigns one LRP rule per layer type, a *canonizer* first merges each BatchNorm into the convolution or dense
layer registered just before it, and the :class:`zennit.attribution.Gradient` attributor runs the modified
backward pass from the explained logit.

Rule presets (one registered :class:`LRPExplainer` subclass each, whose :meth:`~LRPExplainer.composite`
builds the Zennit composite from ``(epsilon, zero_bias)``; :func:`lrp_presets` lists every registered LRP
method, including those of other modules).  This module's presets:

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
(:class:`~scatterxai.explain.zennit_ext.MergeBatchNormExact`, a
:class:`zennit.canonizers.SequentialMergeBatchNorm` that, like Zennit
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
from typing import TYPE_CHECKING, ClassVar, Dict, Iterator, Type

from ..base import REGISTRY, Explainer, Param, RunFn, available_methods, register

if TYPE_CHECKING:
    import torch
    from zennit.core import Composite

__all__ = ["LRPExplainer", "LRP0", "LRPEpsilon", "LRPEpsilonPlus", "LRPEpsilonConvZPlusDense", "lrp_presets",
           "stabilizer", "LRP0_CLIP", "DEFAULT_EPSILON", "ZENNIT_STABILIZER"]

#: default ε of the ε-rule (companion code)
DEFAULT_EPSILON = 1e-6
#: |z| below which LRP-0 clips its denominators (sign kept), only to turn 0/0 into 0
LRP0_CLIP = 1e-30
#: Zennit's default stabiliser of the rules other than ε (z+, Norm); min(ε, this) is used
ZENNIT_STABILIZER = 1e-6


def stabilizer(epsilon: float) -> float:
    """Stabiliser of the rules other than ε (z+, αβ, Norm): Zennit's default, shrinking with ε so that ε → 0
    is the conserving limit of every rule."""
    return min(float(epsilon), ZENNIT_STABILIZER)


class LRPExplainer(Explainer):
    """LRP with one rule per layer type (Zennit's ``Gradient`` attributor + a composite).

    Subclasses name the rules of convolutions, dense layers and average pooling (:attr:`conv`, :attr:`dense`,
    :attr:`pool`: ``"z"``, ``"epsilon"``, ``"zplus"``, …) and build the Zennit composite in :meth:`composite`
    (importing Zennit there).
    """

    family = "lrp"
    parameters = (
        Param("epsilon", DEFAULT_EPSILON, "ε of the ε-rule (ignored by lrp0)", kind="float", low=0.0, low_open=True),
        Param("zero_bias", False, "leave biases (including merged BatchNorm shifts) out of the rules' denominators, "
              "so that relevance is conserved", kind="bool"),
    )
    #: rule of convolutions, dense layers and average pooling
    conv: ClassVar[str] = ""
    dense: ClassVar[str] = ""
    pool: ClassVar[str] = ""

    def params(self) -> dict:
        return {"epsilon": self.epsilon, "stabilizer": stabilizer(self.epsilon), "zero_bias": self.zero_bias}

    @classmethod
    def describe(cls) -> str:
        """The rule mapping in words (the HDF5 ``description`` of the method's relevance)."""
        return (f"conv: {cls.conv}, dense: {cls.dense}, avgpool: {cls.pool}, activations and BatchNorm: "
                f"pass, BatchNorm after conv/dense merged")

    def attrs(self) -> dict:
        return {**super().attrs(), "conv": self.conv, "dense": self.dense, "pool": self.pool,
                "description": self.describe()}

    def composite(self) -> Composite:
        """A new Zennit composite of this preset (one composite may only be registered to one network at a
        time), with :class:`~scatterxai.explain.zennit_ext.MergeBatchNormExact` as canonizer."""
        raise NotImplementedError

    @contextlib.contextmanager
    def session(self, model: torch.nn.Module) -> Iterator[RunFn]:
        from zennit.attribution import Gradient

        from ..zennit_ext import explained_index, one_hot_logit
        with Gradient(model=model, composite=self.composite()) as attributor:
            def run(x, target=None):
                return attributor(x, attr_output=lambda output: one_hot_logit(output, explained_index(output, target)))
            yield run


def _z_or_epsilon_composite(epsilon, zero_bias: bool, *, pool_stabilizer) -> Composite:
    """ε-rule (a clipping stabiliser for LRP-0) on convolutions and dense layers; pooling by Zennit's base map."""
    import torch
    from zennit.composites import LayerMapComposite, layer_map_base
    from zennit.rules import Epsilon
    from zennit.types import Convolution

    from ..zennit_ext import MergeBatchNormExact, zero_params
    layer_map = layer_map_base(pool_stabilizer) + [
        (Convolution, Epsilon(epsilon=epsilon, zero_params=zero_params(zero_bias))),
        ((torch.nn.Linear,), Epsilon(epsilon=epsilon, zero_params=zero_params(zero_bias))),
    ]
    return LayerMapComposite(layer_map=layer_map, canonizers=[MergeBatchNormExact()])


@register
class LRP0(LRPExplainer):
    name = "lrp0"
    title = "LRP-0"
    summary = "LRP-0: z-rule everywhere"
    conv = dense = pool = "z"

    def composite(self) -> Composite:
        from zennit.core import Stabilizer
        # ``epsilon`` is not used: LRP-0 has no ε; denominators are only clipped away from 0.
        z = Stabilizer(epsilon=LRP0_CLIP, clip=True)
        return _z_or_epsilon_composite(z, self.zero_bias, pool_stabilizer=z)


@register
class LRPEpsilon(LRPExplainer):
    name = "epsilon"
    title = "LRP-ε"
    summary = "LRP-ε: ε-rule for convolutions, dense layers and pooling (ε = 1e-6)"
    conv = dense = pool = "epsilon"

    def composite(self) -> Composite:
        # layer_map_base(ε) makes average pooling Norm(stabilizer=ε), i.e. the ε-rule without parameters.
        return _z_or_epsilon_composite(self.epsilon, self.zero_bias, pool_stabilizer=self.epsilon)


@register
class LRPEpsilonPlus(LRPExplainer):
    name = "epsilon_plus"
    title = "LRP-[ε,z+]"
    summary = "LRP-[ε,z+]: z+ for convolutions, ε for dense layers (Zennit's EpsilonPlus; the paper's figures)"
    conv, dense, pool = "zplus", "epsilon", "z"

    def composite(self) -> Composite:
        from zennit.composites import EpsilonPlus

        from ..zennit_ext import MergeBatchNormExact, zero_params
        return EpsilonPlus(epsilon=self.epsilon, stabilizer=stabilizer(self.epsilon),
                           zero_params=zero_params(self.zero_bias), canonizers=[MergeBatchNormExact()])


@register
class LRPEpsilonConvZPlusDense(LRPExplainer):
    name = "epsilon_conv_zplus_dense"
    title = "LRP-[z+,ε]"
    summary = "LRP-[z+,ε]: ε for convolutions, z+ for dense layers (the mapping the paper's text describes)"
    conv, dense, pool = "epsilon", "zplus", "z"

    def composite(self) -> Composite:
        import torch
        from zennit.composites import LayerMapComposite, layer_map_base
        from zennit.rules import Epsilon, ZPlus
        from zennit.types import Convolution

        from ..zennit_ext import MergeBatchNormExact, zero_params
        s = stabilizer(self.epsilon)
        layer_map = layer_map_base(s) + [
            (Convolution, Epsilon(epsilon=self.epsilon, zero_params=zero_params(self.zero_bias))),
            ((torch.nn.Linear,), ZPlus(stabilizer=s, zero_params=zero_params(self.zero_bias))),
        ]
        return LayerMapComposite(layer_map=layer_map, canonizers=[MergeBatchNormExact()])


def lrp_presets() -> Dict[str, Type[LRPExplainer]]:
    """Every registered LRP method with a rule mapping (name → class), in :func:`available_methods` order."""
    return {n: REGISTRY[n] for n in available_methods("lrp") if issubclass(REGISTRY[n], LRPExplainer)}
