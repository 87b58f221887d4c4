"""BatchNorm running statistics recomputed on the whole training split (``TrainConfig.bn_recalibrate``).

During training a BatchNorm normalises each batch by that batch's statistics and keeps an exponential
average (momentum 0.1) of them for evaluation.  On a small study that average is built from the last few
batches of each epoch (42 training notes: two batches per epoch, the second of 10 notes), so the network
evaluated on validation and test notes normalises with statistics of a handful of notes, taken while the
weights were still changing.  :func:`recalibrate` replaces them, after the epoch's last step, by the
statistics of the whole training split under the epoch's final weights (the "precise BatchNorm" of Wu &
Johnson, 2021, *Rethinking "Batch" in BatchNorm*), computed by :func:`torch.optim.swa_utils.update_bn`:
every BatchNorm's running mean and variance are reset and re-estimated in one forward pass in train mode
(exactly the training split's statistics up to :data:`RECALIBRATION_BATCH` notes; beyond, the average over
batches of that size).  Weights, γ and β are unchanged; BatchNorms of a frozen pretrained part keep
their statistics.
"""

from __future__ import annotations

from typing import Sequence

import torch

from .untrained import recalibrate_batchnorm

__all__ = ["recalibrate", "RECALIBRATION_BATCH"]

#: notes per forward pass of the recalibration (the statistics are exact for training splits up to this size)
RECALIBRATION_BATCH = 256


@torch.no_grad()
def recalibrate(net: torch.nn.Module, x: torch.Tensor, frozen: Sequence[str] = ()) -> torch.nn.Module:
    """Recompute the running statistics of ``net``'s BatchNorms on the inputs ``x``, except in ``frozen``.

    Parameters
    ----------
    net : torch.nn.Module
        The network (a :class:`~scatterxai.model.ConvNet`); left in eval mode.
    x : torch.Tensor [shape=(K, C_in, T)]
        Training inputs, on the network's device.
    frozen : sequence of str
        Names of child modules whose BatchNorm statistics must stay as they are.

    Returns
    -------
    The same ``net``.
    """
    kept = {f"{name}.{k}": v.clone() for name in frozen for k, v in getattr(net, name).state_dict().items()}
    recalibrate_batchnorm(net, x, batch_size=RECALIBRATION_BATCH)
    if kept:
        net.load_state_dict(kept, strict=False)
    return net
