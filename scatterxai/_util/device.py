"""Torch device selection (the one helper here that imports torch)."""

from __future__ import annotations

from typing import Union

import torch

from ..errors import ParameterError

__all__ = ["resolve_device"]


def resolve_device(device: Union[str, torch.device] = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else is passed to :class:`torch.device`."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<i>', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    return dev
