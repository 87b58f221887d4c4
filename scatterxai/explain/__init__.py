"""Attribution methods by name (:mod:`.base` registry): LRP presets (:mod:`.lrp`), gradient, gradient × input,
Integrated Gradients, SmoothGrad (:mod:`.gradient`), DeconvNet (:mod:`.deconvnet`), occlusion of path groups
(:mod:`.perturbation`); batched attribution (:func:`attribute`) and the ``explain`` stage that writes the
relevance file from a features file (:func:`explain`) or directly from audio files (:func:`explain_files`)."""

from .attribute import Attribution, attribute
from .base import REGISTRY, Explainer, available_methods, get_explainer, register
from .deconvnet import DECONV_LAYERS
from .export import ExplainConfig, explain, method_names, stratified_rows, write_relevance
from .files import FilesResult, explain_files, is_features_file
from .gradient import DEFAULT_IG_STEPS, IG_BASELINES
from .lrp import DEFAULT_EPSILON, RULES, get_rule
from .perturbation import OCCLUSION_FILLS, OCCLUSION_GROUPS, occlusion_groups

__all__ = ["Explainer", "register", "get_explainer", "available_methods", "REGISTRY", "Attribution",
           "attribute", "ExplainConfig", "explain", "explain_files", "FilesResult", "is_features_file",
           "write_relevance", "method_names", "stratified_rows", "RULES", "get_rule", "DEFAULT_EPSILON",
           "DEFAULT_IG_STEPS", "IG_BASELINES", "DECONV_LAYERS", "OCCLUSION_GROUPS", "OCCLUSION_FILLS",
           "occlusion_groups"]
