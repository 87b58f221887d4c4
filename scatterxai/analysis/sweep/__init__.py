"""Controlled variations (``docs/analysis.md``, "Controlled variations"): invariance profiles and tracking of
physical quantities (:mod:`.metrics`, pure numpy) and the ``scatterxai sweep`` command (:mod:`.run`)."""

from .metrics import (
    hit_rate,
    invariance,
    invariance_profile,
    log_fit,
    pair_correlations,
    peak_lambda1_hz,
    peak_lambda2_hz,
    sweep_pairs,
)

__all__ = ["hit_rate", "invariance", "invariance_profile", "log_fit", "pair_correlations", "peak_lambda1_hz",
           "peak_lambda2_hz", "sweep_pairs"]
