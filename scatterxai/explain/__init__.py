"""Attribution methods by name (:mod:`.base` registry; LRP presets in :mod:`.lrp`), batched attribution
(:func:`attribute`) and the ``explain`` stage that writes the relevance file (:func:`explain`)."""

from .attribute import Attribution, attribute
from .base import REGISTRY, Explainer, available_methods, get_explainer, register
from .export import ExplainConfig, explain, method_names
from .lrp import DEFAULT_EPSILON, RULES, get_rule

__all__ = ["Explainer", "register", "get_explainer", "available_methods", "REGISTRY", "Attribution",
           "attribute", "ExplainConfig", "explain", "method_names", "RULES", "get_rule", "DEFAULT_EPSILON"]
