"""Attribution methods by name (:mod:`.base` registry; LRP presets in :mod:`.lrp`), batched attribution
(:func:`attribute`), the ``explain`` stage that writes the relevance file from a features file
(:func:`explain`) or directly from audio files (:func:`explain_files`)."""

from .attribute import Attribution, attribute
from .base import REGISTRY, Explainer, available_methods, get_explainer, register
from .export import ExplainConfig, explain, method_names, write_relevance
from .files import FilesResult, explain_files, is_features_file
from .lrp import DEFAULT_EPSILON, RULES, get_rule

__all__ = ["Explainer", "register", "get_explainer", "available_methods", "REGISTRY", "Attribution",
           "attribute", "ExplainConfig", "explain", "explain_files", "FilesResult", "is_features_file",
           "write_relevance", "method_names", "RULES", "get_rule", "DEFAULT_EPSILON"]
