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
from typing import TYPE_CHECKING, Any, Iterator

from ...errors import ParameterError
from ...task import LAYERS
from ..base import Explainer, Param, RunFn, register

if TYPE_CHECKING:
    import torch

__all__ = ["DeconvNetExplainer", "DECONV_LAYERS"]

#: where the DeconvNet pass can start
DECONV_LAYERS = ("logit",) + LAYERS


@register
class DeconvNetExplainer(Explainer):
    """DeconvNet from the explained logit or from one channel of a layer (``channel`` is required unless
    ``layer="logit"``)."""

    name = "deconvnet"
    title = "DeconvNet"
    family = "gradient"
    summary = "DeconvNet: ReLUs pass the positive part of the incoming signal (Zennit), from the logit or a channel"
    parameters = (
        Param("layer", "logit", "start from the explained logit or from a channel of this layer", kind="choice",
              choices=DECONV_LAYERS, flag="--deconvnet-layer"),
        Param("channel", None, "the channel of --deconvnet-layer", low=0, high=4096, optional=True,
              flag="--deconvnet-channel", metavar="K"),
    )

    def setup(self, **context: Any) -> None:
        if self.layer == "logit" and self.channel is not None:
            raise ParameterError(f"channel={self.channel!r} needs a layer (one of {list(LAYERS)}); the logit pass "
                                 f"explains the explained class")
        if self.layer != "logit" and self.channel is None:
            raise ParameterError(f"layer={self.layer!r} needs a channel (an integer >= 0)")

    @contextlib.contextmanager
    def session(self, model: torch.nn.Module) -> Iterator[RunFn]:
        from zennit.attribution import Gradient
        from zennit.composites import DeconvNet

        from ..zennit_ext import explained_logits, unit_output
        with Gradient(model=model, composite=DeconvNet()) as attributor:
            if self.layer == "logit":
                def run(x, target=None):
                    logits, index = explained_logits(model, x, target)
                    return attributor(x, attr_output=unit_output(logits.shape[1], index, logits))
                yield run
                return
            with _from_channel(model, self.layer, self.channel) as run:
                yield run


@contextlib.contextmanager
def _from_channel(model, layer: str, channel: int) -> Iterator[RunFn]:
    """``run`` of a DeconvNet pass that starts at ``channel`` of ``layer``'s activation (a hook captures it)."""
    import torch

    from ...model.activations import LAYER_OUTPUTS
    module = getattr(model, LAYER_OUTPUTS[layer], None)
    if not isinstance(module, torch.nn.Module):
        raise ParameterError(f"the network has no module {LAYER_OUTPUTS[layer]!r} (the output of layer "
                             f"{layer!r}); use layer='logit'")
    captured = {}
    handle = module.register_forward_hook(lambda m, i, o: captured.__setitem__("a", o))
    try:
        def run(x, target=None):
            x = x.detach().requires_grad_(True)
            output = model(x)
            a = captured["a"]
            if channel >= a.shape[1]:
                raise ParameterError(f"channel must lie in [0, {a.shape[1]}) for layer {layer!r}, got {channel}")
            signal = torch.zeros_like(a)
            signal[:, channel] = a[:, channel].detach()
            relevance, = torch.autograd.grad(a, x, grad_outputs=signal)
            return output.detach(), relevance
        yield run
    finally:
        handle.remove()
