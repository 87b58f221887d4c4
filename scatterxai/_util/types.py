"""Type aliases shared by the annotations of the package (nothing heavy is imported at run time)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["PathLike", "DaskSpec"]

#: A file-system path: a string or an :class:`os.PathLike` (e.g. :class:`pathlib.Path`).
PathLike = Union[str, os.PathLike]

#: A ``dask`` argument: None (serial), ``"local"``, ``"local:N"``, a scheduler address, or a
#: ``distributed.Client``.
DaskSpec = Union[None, str, "Client"]
