"""How much memory a step may take: a step that would hold more than the machine has is refused with one clear
line before it allocates anything (rather than a ``MemoryError`` traceback, or the system's OOM killer)."""

from __future__ import annotations

import os
from typing import Optional

__all__ = ["available_memory", "check_memory", "MEMORY_SHARE"]

#: the share of the available memory one array may take
MEMORY_SHARE = 0.8


def available_memory() -> Optional[int]:
    """Bytes of memory available to new allocations (``MemAvailable`` on Linux), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(nbytes: int, what: str, hint: str) -> None:
    """Raise :class:`~scatterxai.errors.DataError` if ``nbytes`` exceed :data:`MEMORY_SHARE` of the available
    memory; ``what`` names the array ("the network input of 200,000 notes"), ``hint`` what to do instead."""
    from ..errors import DataError
    avail = available_memory()
    if avail is not None and nbytes > MEMORY_SHARE * avail:
        raise DataError(f"{what} needs {nbytes / 2 ** 30:.1f} GiB of memory and this machine has "
                        f"{avail / 2 ** 30:.1f} GiB available; {hint}")
