"""The paper's 1-D convnet on scattering coefficients (companion code; parameter counts match the paper)."""

from __future__ import annotations

from typing import Union

import torch
from torch import nn

from .._util.validate import check_int
from ..task import LAYERS
from .arch import Arch, get_arch

__all__ = ["ConvNet", "count_parameters", "LAYERS", "MIN_FRAMES"]

#: fewest time frames the network accepts: it average-pools twice by 2
MIN_FRAMES = 4


class ConvNet(nn.Module):
    """The paper's convnet (companion code): three 'same' convolutions, global average, two dense layers.

    With c_ref = C_in // 4 the convolutions have C0, C1, C2 = c_ref // 2, c_ref, 2·c_ref output channels.
    C_in = 1,200 (S1+S2) → 2,068,289 parameters; C_in = 74 (S1) → 10,383.

    Modules are registered in forward order and each is used once (no shared ReLU), so that LRP
    canonizers that merge a BatchNorm into the layer registered just before it, and per-layer rule
    assignment, see the network as it runs.

    Parameters
    ----------
    n_channels : int
        Number of input channels C_in (scattering paths).
    n_classes : int
        Number of output logits.
    arch : str, Arch or dict, optional
        Widths, kernels, hidden units and dropout (:mod:`scatterxai.model.arch`); default the paper's
        (``"paper"``).  Every preset keeps the module names and order above.

    Notes
    -----
    Input: float tensor [shape=(batch, C_in, T)], T ≥ 4 frames (32 for the paper configuration);
    output: logits [shape=(batch, n_classes)] (softmax is in the loss).
    """

    def __init__(self, n_channels: int, n_classes: int = 5, *, arch: Union[None, str, Arch, dict] = None):
        super().__init__()
        n_channels = check_int("n_channels", n_channels, low=8)
        n_classes = check_int("n_classes", n_classes, low=2)
        self.arch = get_arch(arch)
        c0, c1, c2 = self.arch.conv_widths(n_channels)
        k0, k1, k2 = self.arch.kernels
        self.n_channels, self.n_classes = n_channels, n_classes
        self.input_bn = nn.BatchNorm1d(n_channels)
        self.conv0 = nn.Conv1d(n_channels, c0, kernel_size=k0, padding="same", bias=False)
        self.bn0 = nn.BatchNorm1d(c0)
        self.relu0 = nn.ReLU()
        self.pool0 = nn.AvgPool1d(2)
        self.conv1 = nn.Conv1d(c0, c1, kernel_size=k1, padding="same", bias=False)
        self.bn1 = nn.BatchNorm1d(c1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.AvgPool1d(2)
        self.conv2 = nn.Conv1d(c1, c2, kernel_size=k2, padding="same", bias=False)
        self.bn2 = nn.BatchNorm1d(c2)
        self.relu2 = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(self.arch.dropout)
        self.fc1 = nn.Linear(c2, self.arch.hidden)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(self.arch.hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != self.n_channels or x.shape[2] < MIN_FRAMES:
            from ..errors import ParameterError
            raise ParameterError(f"ConvNet expects input of shape (batch, {self.n_channels}, T) with T >= "
                                 f"{MIN_FRAMES} frames (it pools twice by 2), got {tuple(x.shape)}")
        # registration order == call order: iterate instead of repeating the module list
        for module in self.children():
            x = module(x)
        return x


def count_parameters(net: nn.Module) -> int:
    """Number of trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
