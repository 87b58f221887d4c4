"""Untrained networks: the trained architecture with random weights, the baseline of representation studies.

An untrained network is :class:`ConvNet` initialised by PyTorch's default initialisation under
``torch.manual_seed(seed)`` (the caller's random state is left untouched).  Its BatchNorm layers can be
left as initialised or recalibrated (:data:`BATCHNORM_MODES`):

* ``"init"`` — running mean 0 and variance 1, γ = 1, β = 0: in eval mode every BatchNorm is the identity
  (up to ε), so activations keep whatever scale the random weights give them;
* ``"recalibrate"`` (default) — running statistics re-estimated on the given inputs, without gradients:
  every BatchNorm's statistics are reset, its momentum set to None (a cumulative average over batches
  instead of an exponential one), the network run forward in train mode over the inputs, then put back
  in eval mode (:func:`torch.optim.swa_utils.update_bn`).  Weights, γ and β do not change.  With a single
  batch the running mean is that batch's mean exactly (the variance is the unbiased one), so each layer
  sees standardised inputs, as the trained network does on its training data.  Dropout sits after the last
  BatchNorm and does not affect the statistics.
"""

from __future__ import annotations

import torch

from .._util.types import Device
from .._util.validate import check_choice, check_int, check_positive_int
from .arch import Arch
from .net import ConvNet

__all__ = ["untrained_net", "recalibrate_batchnorm", "BATCHNORM_MODES"]

#: what happens to the BatchNorm statistics of an untrained network
BATCHNORM_MODES = ("recalibrate", "init")


def recalibrate_batchnorm(net: torch.nn.Module, x: torch.Tensor, *, batch_size: int = 256) -> torch.nn.Module:
    """Re-estimate every BatchNorm's running statistics on ``x`` (no gradients, weights untouched).

    Parameters
    ----------
    net : torch.nn.Module
    x : torch.Tensor [shape=(K, C_in, T)]
        Network inputs, on the network's device.
    batch_size : int
        Examples per forward pass (the statistics are the average over batches of the batch statistics).

    Returns
    -------
    The same ``net``, in eval mode.
    """
    from torch.optim.swa_utils import update_bn

    batch_size = check_positive_int("batch_size", batch_size)
    update_bn((x[i:i + batch_size] for i in range(0, x.shape[0], batch_size)), net)
    return net.eval()


def untrained_net(n_channels: int, n_classes: int, *, seed: int, x: torch.Tensor | None = None,
                  batchnorm: str = "recalibrate", device: Device = "cpu", batch_size: int = 256,
                  arch: Arch | str | None = None) -> ConvNet:
    """A randomly initialised :class:`ConvNet` in eval mode.

    Parameters
    ----------
    n_channels, n_classes : int
        The architecture (those of the trained model it is compared with).
    seed : int
        Seeds the initialisation (the global random state is restored afterwards).
    x : torch.Tensor [shape=(K, n_channels, T)], optional
        Inputs for ``batchnorm="recalibrate"`` (required then).
    batchnorm : {"recalibrate", "init"}
        See the module docstring.
    device : str or torch.device
    batch_size : int
        Examples per forward pass of the recalibration.
    arch : str or Arch, optional
        Architecture preset (:mod:`scatterxai.model.arch`; that of the trained model, ``model.net.arch``);
        default the paper's.
    """
    seed = check_int("seed", seed, low=0)
    check_choice("batchnorm", batchnorm, BATCHNORM_MODES)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ConvNet(n_channels, n_classes, arch=arch)
    net = net.to(device).eval()
    if batchnorm == "recalibrate":
        if x is None:
            from ..errors import ParameterError
            raise ParameterError("batchnorm='recalibrate' needs the inputs x to estimate the statistics on")
        recalibrate_batchnorm(net, x.to(device), batch_size=batch_size)
    return net
