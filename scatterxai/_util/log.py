"""Logging and progress bars.

Library code never prints: it logs to ``logging.getLogger("scatterxai")`` (the CLI attaches a handler and
sets its level with ``-v`` / ``-q``) and shows tqdm progress bars only when that logger is enabled for INFO
(so ``-q`` hides them) and the caller asked for progress.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, Iterable, Optional, TextIO

if TYPE_CHECKING:
    from tqdm.auto import tqdm

__all__ = ["logger", "progress", "configure"]

logger = logging.getLogger("scatterxai")


def progress(iterable: Optional[Iterable] = None, *, enabled: bool = True, **tqdm_kwargs: Any) -> tqdm:
    """A tqdm progress bar, disabled unless ``enabled`` and the package logger shows INFO messages."""
    from tqdm.auto import tqdm
    show = enabled and logger.isEnabledFor(logging.INFO)
    return tqdm(iterable, disable=not show, **tqdm_kwargs)


def configure(verbosity: int = 0, stream: Optional[TextIO] = None) -> logging.Handler:
    """Attach a stderr handler to the package logger (CLI only): -1 quiet (warnings), 0 info, 1 debug."""
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if verbosity <= 0 else
                                           "%(asctime)s %(name)s %(levelname)s: %(message)s"))
    for old in [h for h in logger.handlers if getattr(h, "_scatterxai_cli", False)]:
        logger.removeHandler(old)
    handler._scatterxai_cli = True
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler
