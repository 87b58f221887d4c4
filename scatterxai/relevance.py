"""Layer-wise relevance propagation (Zennit) on the scattering convnet: rule presets and batched attribution.

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

Attribution never touches the caller's network: :func:`attribute` works on a deep copy (put in eval mode,
on the requested device and precision), so canonizers and hooks live and die with that copy.
"""

from __future__ import annotations

import copy
import numbers
from dataclasses import dataclass
from typing import Callable, Dict

import numpy as np
import torch
from zennit.attribution import Gradient
from zennit.canonizers import SequentialMergeBatchNorm
from zennit.composites import EpsilonPlus, LayerMapComposite, layer_map_base
from zennit.core import Composite, Stabilizer
from zennit.rules import Epsilon, ZPlus
from zennit.types import Convolution

from .errors import ParameterError
from .scattering import resolve_device

__all__ = ["RULES", "RulePreset", "MergeBatchNormExact", "Attribution", "attribute", "get_rule",
           "LRP0_CLIP", "DEFAULT_EPSILON"]

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

    def register(self, linears, batch_norm):
        self._eps = batch_norm.eps
        super().register(linears, batch_norm)
        batch_norm.eps = 0.0

    def remove(self):
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


def get_rule(rule) -> RulePreset:
    """The preset named ``rule`` (a :class:`RulePreset` is returned as is)."""
    if isinstance(rule, RulePreset):
        return rule
    if rule not in RULES:
        raise ParameterError(f"unknown LRP rule {rule!r}; valid rules are {sorted(RULES)}")
    return RULES[rule]


@dataclass
class Attribution:
    """Result of :func:`attribute` for K examples.

    Attributes
    ----------
    relevance : np.ndarray [shape=(K, C, T)]
        Input relevance R[path, frame] (float32, or float64 for float64 inputs).
    logits : np.ndarray [shape=(K, n_classes)]
        Network output (the canonized network reproduces the original's logits).
    explained : np.ndarray [shape=(K,), int64]
        Index of the explained class of each example.
    explained_logit : np.ndarray [shape=(K,)]
        Its logit: the relevance that enters the network at the top.
    conservation : np.ndarray [shape=(K,)]
        Sum of input relevance / explained logit (NaN where the logit is 0); below 1 when biases absorb
        relevance.
    rule : str
    epsilon : float
    """

    relevance: np.ndarray
    logits: np.ndarray
    explained: np.ndarray
    explained_logit: np.ndarray
    conservation: np.ndarray
    rule: str
    epsilon: float


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) or value < 1:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _as_input(inputs) -> torch.Tensor:
    if isinstance(inputs, torch.Tensor):
        x = inputs.detach()
    else:
        try:
            x = torch.as_tensor(np.asarray(inputs))
        except (TypeError, ValueError, RuntimeError):
            raise ParameterError(f"inputs must be a numeric array of shape (K, C, T), got "
                                 f"{type(inputs).__name__}") from None
    if x.ndim != 3:
        raise ParameterError(f"inputs must have shape (K, C, T), got {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.to(torch.float32)
    return x


def _targets(target, K: int, n_classes: int):
    """None for "pred", else validated int64 labels (K,)."""
    if isinstance(target, str):
        if target != "pred":
            raise ParameterError(f"target must be 'pred' or an array of K={K} class indices, got {target!r}")
        return None
    labels = np.asarray(target)
    if labels.shape != (K,) or labels.dtype.kind not in "iu":
        raise ParameterError(f"target labels must be an integer array of shape ({K},), got shape "
                             f"{labels.shape} and dtype {labels.dtype}")
    if K and (labels.min() < 0 or labels.max() >= n_classes):
        raise ParameterError(f"target labels must lie in [0, {n_classes}), got values in "
                             f"[{labels.min()}, {labels.max()}]")
    return labels.astype(np.int64)


def _one_hot_logit(output: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Initial relevance: the explained logit at its class, 0 elsewhere."""
    out = output.detach()
    return torch.zeros_like(out).scatter(1, index[:, None], out.gather(1, index[:, None]))


def attribute(net: torch.nn.Module, inputs, *, rule, target="pred", epsilon: float = DEFAULT_EPSILON,
              batch_size: int = 64, device="auto", zero_bias: bool = False,
              progress: bool = False) -> Attribution:
    """LRP relevance of each input coefficient for the explained logit, in batches.

    Parameters
    ----------
    net : torch.nn.Module
        Network (e.g. :class:`scatterxai.model.ConvNet`) mapping (B, C, T) to logits (B, n_classes); modules
        registered in forward order.  It is not modified: a deep copy in eval mode is explained.
    inputs : np.ndarray or torch.Tensor [shape=(K, C, T)]
        Exactly what the network sees (log-normalised features, see ``LoadedModel.prepare``).  float64
        inputs are explained in float64, anything else in float32.
    rule : str or RulePreset
        A key of :data:`RULES`.
    target : "pred" or array of int [shape=(K,)]
        Explain the predicted class (paper), or the given classes (e.g. the true labels).
    epsilon : float
        ε of the ε-rule (ignored by ``lrp0``).
    batch_size : int
        Examples attributed at once.
    device : str or torch.device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``…
    zero_bias : bool
        Leave biases (including merged BatchNorm shifts) out of the rules, so that relevance is conserved.
    progress : bool
        Show a progress bar over batches.

    Returns
    -------
    Attribution
    """
    preset = get_rule(rule)
    batch_size = _check_positive_int("batch_size", batch_size)
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not epsilon > 0:
        raise ParameterError(f"epsilon must be a number > 0, got {epsilon!r}")
    if not isinstance(net, torch.nn.Module):
        raise ParameterError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    x_all = _as_input(inputs)
    K = x_all.shape[0]
    n_channels = getattr(net, "n_channels", None)
    if n_channels is not None and x_all.shape[1] != n_channels:
        raise ParameterError(f"inputs have {x_all.shape[1]} channels but the network expects {n_channels}")
    dev = resolve_device(device)
    dtype = torch.float64 if x_all.dtype == torch.float64 else torch.float32

    # Canonizers rewrite parameters in place and hooks stay on modules: work on a private copy.
    model = copy.deepcopy(net).to(device=dev, dtype=dtype).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    n_classes = getattr(net, "n_classes", None)
    if n_classes is None:
        with torch.no_grad():
            n_classes = model(x_all[:1].to(dev, dtype)).shape[1]
    labels = _targets(target, K, n_classes)

    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    relevance = np.empty(tuple(x_all.shape), dtype=np_dtype)
    logits = np.empty((K, n_classes), dtype=np_dtype)
    explained = np.empty(K, dtype=np.int64)
    starts = range(0, K, batch_size)
    if progress:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc=f"LRP {preset.name}", unit="batch", leave=False)
    composite = preset(epsilon=float(epsilon), zero_bias=zero_bias)
    with Gradient(model=model, composite=composite) as attributor, torch.enable_grad():
        for start in starts:
            xb = x_all[start:start + batch_size].to(device=dev, dtype=dtype).clone()
            if labels is None:
                def init(output):
                    return _one_hot_logit(output, output.detach().argmax(dim=1))
            else:
                index = torch.as_tensor(labels[start:start + batch_size], device=dev)

                def init(output, index=index):
                    return _one_hot_logit(output, index)
            output, rel = attributor(xb, attr_output=init)
            stop = start + xb.shape[0]
            relevance[start:stop] = rel.detach().cpu().numpy()
            logits[start:stop] = output.detach().cpu().numpy()
            explained[start:stop] = (output.detach().argmax(dim=1).cpu().numpy() if labels is None
                                     else labels[start:stop])
    explained_logit = logits[np.arange(K), explained]
    total = relevance.reshape(K, -1).sum(axis=1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        conservation = np.where(explained_logit != 0, total / explained_logit, np.nan)
    return Attribution(relevance=relevance, logits=logits, explained=explained,
                       explained_logit=explained_logit, conservation=conservation.astype(np_dtype),
                       rule=preset.name, epsilon=float(epsilon))
