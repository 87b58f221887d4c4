"""Layer activations of the convnet (conv0, conv1, conv2 after their ReLU, fc1 after its ReLU).

Used by the representation analyses (probes, CKA, invariance profiles).  Activations are read with forward
hooks on the ReLU that follows each layer, in eval mode (BatchNorm running statistics, no dropout).

* ``"mean"`` (default): convolutional layers averaged over time → (K, channels);
* ``"flat"``: convolutional layers flattened over (channels, frames) → (K, channels · frames).

fc1 is (K, 64) in both modes.
"""

from __future__ import annotations

from typing import Dict, Sequence, Union

import numpy as np
import torch

from .._util.validate import check_choice, check_positive_int
from ..errors import ParameterError
from .net import LAYERS

__all__ = ["layer_activations", "LAYER_OUTPUTS", "POOLING"]

#: module whose output is each layer's activation (after the nonlinearity)
LAYER_OUTPUTS = {"conv0": "relu0", "conv1": "relu1", "conv2": "relu2", "fc1": "relu3"}
#: how convolutional activations are reduced over time
POOLING = ("mean", "flat")


@torch.no_grad()
def layer_activations(net: torch.nn.Module, x: Union[np.ndarray, torch.Tensor], *, layers: Sequence[str] = LAYERS,
                      pooling: str = "mean", batch_size: int = 64) -> Dict[str, np.ndarray]:
    """Activations of ``layers`` for inputs ``x`` (the network input, e.g. ``LoadedModel.prepare(S)``).

    Parameters
    ----------
    net : ConvNet
        Put in eval mode for the call (its mode is restored).
    x : np.ndarray or torch.Tensor [shape=(K, C_in, T)]
    layers : sequence of {"conv0", "conv1", "conv2", "fc1"}
    pooling : {"mean", "flat"}
    batch_size : int

    Returns
    -------
    dict layer → np.ndarray [shape=(K, d)] float32, plus ``"logits"`` (K, n_classes).
    """
    check_choice("pooling", pooling, POOLING)
    batch_size = check_positive_int("batch_size", batch_size)
    unknown = [name for name in layers if name not in LAYER_OUTPUTS]
    if unknown:
        raise ParameterError(f"unknown layers {unknown}; valid layers are {list(LAYER_OUTPUTS)}")
    param = next(net.parameters())
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(param.device, param.dtype)
    if x.ndim != 3:
        raise ParameterError(f"x must have shape (K, C, T), got {tuple(x.shape)}")
    captured: Dict[str, torch.Tensor] = {}
    hooks = []
    for name in layers:
        module = getattr(net, LAYER_OUTPUTS[name])
        hooks.append(module.register_forward_hook(lambda m, i, o, name=name: captured.__setitem__(name, o)))
    out: Dict[str, list] = {name: [] for name in (*layers, "logits")}
    was_training = net.training
    net.eval()
    try:
        for start in range(0, x.shape[0], batch_size):
            out["logits"].append(net(x[start:start + batch_size]).cpu().numpy())
            for name in layers:
                a = captured[name]
                if a.ndim == 3:
                    a = a.mean(dim=-1) if pooling == "mean" else a.flatten(1)
                out[name].append(a.float().cpu().numpy())
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)
    width = {name: 0 for name in out}
    return {name: (np.concatenate(v) if v else np.zeros((0, width[name]), np.float32)) for name, v in out.items()}
