"""Controlled variations (ANALYSIS.md section 5): invariance profiles and tracking of physical quantities
(:mod:`.metrics`, pure numpy) and the ``scatterxai sweep`` command (:mod:`.run`)."""

from .metrics import invariance, invariance_profile, log_fit, pair_correlations, peak_lambda1_hz, sweep_pairs

__all__ = ["invariance", "invariance_profile", "log_fit", "pair_correlations", "peak_lambda1_hz", "sweep_pairs"]
