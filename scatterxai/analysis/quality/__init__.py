"""Is the explanation right?  Faithfulness and sanity checks for every registered attribution method.

* :mod:`.metrics` (pure numpy) — path orders, deletion steps, AOPC, insertion AUC, Spearman ρ per note,
  the share of relevance at the true modulation rate, the pass/fail rules;
* :mod:`.perturb` — deletion and insertion of whole paths (all frames) against a baseline, for each method's
  order and for seeded random orders (a fast path for the convnet, tested equal to perturbing the input);
* :mod:`.randomise` — model-parameter randomisation (cascading from the output, and one layer at a time)
  and the comparison with a network trained on permuted labels;
* :mod:`.stage` — ``scatterxai quality``: all of it on a relevance file → quality.json, quality.md,
  figures (:mod:`.report`), and the ``quality`` stages of ``scatterxai run`` (:func:`.stage.pipeline_section`).

Definitions and decisions are in each module's docstring (ANALYSIS.md section 3).
"""

from .metrics import (
                      RANDOMISATION_THRESHOLD,
                      aopc,
                      insertion_auc,
                      random_orders,
                      rate_band_chance,
                      rate_band_share,
                      relevance_order,
                      spearman_rows,
                      step_counts,
)
from .perturb import BASELINES, baseline_input, perturbation_logits, perturbation_study, training_mean_input
from .randomise import (
                      CONVNET_BLOCKS,
                      default_blocks,
                      explainer_from_attrs,
                      map_correlation,
                      randomisation_study,
                      randomised_network,
                      reinitialised_state,
)
from .stage import QualityConfig, quality, select_examples, train_permuted

__all__ = ["QualityConfig", "quality", "select_examples", "train_permuted", "perturbation_logits",
           "perturbation_study", "training_mean_input", "baseline_input", "BASELINES", "randomisation_study",
           "randomised_network", "reinitialised_state", "map_correlation", "explainer_from_attrs", "default_blocks",
           "CONVNET_BLOCKS", "relevance_order", "random_orders", "step_counts", "aopc", "insertion_auc",
           "spearman_rows", "rate_band_share", "rate_band_chance", "RANDOMISATION_THRESHOLD"]
