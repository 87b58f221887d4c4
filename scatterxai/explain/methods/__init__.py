"""The attribution methods, one module per method or family; importing this package registers them all.

Every module of this package is imported (:func:`load_methods`): a new method is a new module here holding
a registered :class:`~scatterxai.explain.base.Explainer` subclass, and nothing else changes — the command
line, the pipeline, the comparison, the quality checks and the reports list it from the registry.  Modules
import torch and Zennit inside their sessions only, so that the registry is readable without torch.

:func:`~scatterxai.explain.base.available_methods` lists methods by family, then in registration order:
the modules of :data:`FIRST` are imported first, in that order (the order of the study's tables), then every
other module in alphabetical order.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import List

__all__ = ["load_methods", "FIRST"]

#: modules imported first, in this order (the built-in methods as the study lists them)
FIRST = ("lrp", "gradient", "deconvnet", "occlusion")


def load_methods() -> List[str]:
    """Import every method module of this package (registering its methods); returns the module names."""
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    names = [m for m in FIRST if m in found] + [m for m in found if m not in FIRST]
    for name in names:
        importlib.import_module(f"{__name__}.{name}")
    return names


load_methods()
