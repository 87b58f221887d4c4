"""Attribution methods by name: the registry (:mod:`.base`) and the methods (:mod:`.methods`: LRP presets,
gradient, gradient × input, Integrated Gradients, SmoothGrad, DeconvNet, occlusion of path groups, …);
batched attribution (:func:`attribute`) and the ``explain`` stage that writes the relevance file from a
features file (:func:`explain`) or directly from audio files (:func:`explain_files`).

Importing this package registers the methods and loads no torch; the names that need torch (``attribute``,
``explain``, …) are loaded on first access (PEP 562).
"""

import importlib

from . import methods  # noqa: F401  (registers the methods)
from .base import (
    FAMILIES,
    REGISTRY,
    Explainer,
    Param,
    available_methods,
    get_explainer,
    method_title,
    register,
    registered,
    unregistered,
)

#: public name → module that defines it (loaded on first access)
_LAZY = {
    "Attribution": "attribution", "attribute": "attribution",
    "ExplainConfig": "export", "explain": "export", "method_names": "export", "stratified_rows": "export",
    "write_relevance": "export",
    "FilesResult": "files", "explain_files": "files", "is_features_file": "files",
    "DEFAULT_EPSILON": "methods.lrp", "lrp_presets": "methods.lrp",
    "DEFAULT_IG_STEPS": "methods.gradient", "IG_BASELINES": "methods.gradient",
    "DECONV_LAYERS": "methods.deconvnet",
    "OCCLUSION_GROUPS": "methods.occlusion", "OCCLUSION_FILLS": "methods.occlusion",
    "occlusion_groups": "methods.occlusion",
}

__all__ = ["Explainer", "Param", "register", "registered", "unregistered", "get_explainer", "available_methods",
           "method_title", "REGISTRY", "FAMILIES", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
