"""DeconvNet (Zeiler & Fergus 2014; the auralisation study of Choi et al. 2016) with Zennit's rule.

A backward pass in which every ReLU passes the positive part of the *incoming* signal, max(g, 0), instead
of the gradient's g · 1[z > 0] (Zennit's ``DeconvNet`` composite: ``ReLUDeconvNet`` on every ReLU;
convolutions, pooling, BatchNorm and dense layers pass their transposed linear map, as in the gradient).
It therefore differs from the gradient exactly where a ReLU is inactive (or where the incoming signal is
negative).

Consequence for this convnet (tested, and seen on the demo): its backward pass reads the input only
through the ReLU gates (convolutions, pooling, eval-mode BatchNorm and dense layers are fixed linear maps),
so DeconvNet from the logit gives **the same map for every note explained for the same class** — it
shows what the class's weights favour, not what a note contains (cf. Adebayo et al. 2018, Nie et al.
2018).  Within-class distances between DeconvNet maps are 0.

Start of the pass (``layer``, ``channel``):

* ``layer="logit"`` (default): the output signal is the one-hot of the explained class (as for the
  gradient), so ``channel`` is unused;
* ``layer`` one of ``conv0, conv1, conv2, fc1``: the signal starts at that layer's activation (after its
  ReLU, :data:`scatterxai.model.activations.LAYER_OUTPUTS`), keeping only channel ``channel`` — its
  activation map over time for a convolution, its value for fc1 — and zero elsewhere, as Zeiler & Fergus
  project one feature map back to the input.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch
from zennit.attribution import Gradient
from zennit.composites import DeconvNet

from .._util.validate import check_choice, check_int
from ..errors import ParameterError
from ..model.activations import LAYER_OUTPUTS
from .base import Explainer, RunFn, register
from .gradient import _explained, unit_output

__all__ = ["DeconvNetExplainer", "DECONV_LAYERS"]

#: where the DeconvNet pass can start
DECONV_LAYERS = ("logit",) + tuple(LAYER_OUTPUTS)


@register
class DeconvNetExplainer(Explainer):
    """DeconvNet from the explained logit or from one channel of a layer.

    Parameters
    ----------
    layer : {"logit", "conv0", "conv1", "conv2", "fc1"}
    channel : int, optional
        Channel of ``layer`` to project back (required unless ``layer="logit"``).
    """

    name = "deconvnet"
    family = "gradient"
    summary = "DeconvNet: ReLUs pass the positive part of the incoming signal (Zennit), from the logit or a channel"

    def __init__(self, *, layer: str = "logit", channel: Optional[int] = None):
        self.layer = check_choice("layer", layer, DECONV_LAYERS)
        if layer == "logit":
            if channel is not None:
                raise ParameterError(f"channel={channel!r} needs a layer (one of {list(LAYER_OUTPUTS)}); the "
                                     f"logit pass explains the explained class")
            self.channel = None
        else:
            if channel is None:
                raise ParameterError(f"layer={layer!r} needs a channel (an integer >= 0)")
            self.channel = check_int("channel", channel, low=0)

    def params(self) -> dict:
        return {"layer": self.layer} if self.channel is None else {"layer": self.layer, "channel": self.channel}

    @contextlib.contextmanager
    def session(self, model: torch.nn.Module) -> Iterator[RunFn]:
        with Gradient(model=model, composite=DeconvNet()) as attributor:
            if self.layer == "logit":
                def run(x, target=None):
                    logits, index = _explained(model, x, target)
                    return attributor(x, attr_output=unit_output(logits.shape[1], index, logits))
                yield run
                return
            module = getattr(model, LAYER_OUTPUTS[self.layer], None)
            if not isinstance(module, torch.nn.Module):
                raise ParameterError(f"the network has no module {LAYER_OUTPUTS[self.layer]!r} (the output of "
                                     f"layer {self.layer!r}); use layer='logit'")
            captured = {}
            handle = module.register_forward_hook(lambda m, i, o: captured.__setitem__("a", o))
            try:
                def run(x, target=None):
                    x = x.detach().requires_grad_(True)
                    output = model(x)
                    a = captured["a"]
                    if self.channel >= a.shape[1]:
                        raise ParameterError(f"channel must lie in [0, {a.shape[1]}) for layer {self.layer!r}, "
                                             f"got {self.channel}")
                    signal = torch.zeros_like(a)
                    signal[:, self.channel] = a[:, self.channel].detach()
                    relevance, = torch.autograd.grad(a, x, grad_outputs=signal)
                    return output.detach(), relevance
                yield run
            finally:
                handle.remove()
