"""Type aliases shared by the annotations of the package (nothing heavy is imported at run time)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence, Union

import numpy as np

if TYPE_CHECKING:
    import torch
    from distributed import Client

__all__ = ["PathLike", "DaskSpec", "Device", "Indices"]

#: A file-system path: a string or an :class:`os.PathLike` (e.g. :class:`pathlib.Path`).
PathLike = Union[str, os.PathLike]

#: A ``dask`` argument: None (serial), ``"local"``, ``"local:N"``, a scheduler address, or a
#: ``distributed.Client``.
DaskSpec = Union[None, str, "Client"]

#: A torch device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``… or a
#: :class:`torch.device`.
Device = Union[str, "torch.device"]

#: Row indices: a sequence or an integer array.
Indices = Union[Sequence[int], np.ndarray]
