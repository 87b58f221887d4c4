"""Is the explanation right?  Faithfulness and sanity checks for every registered attribution method.

* :mod:`.metrics` (pure numpy) — path orders, deletion steps, AOPC, insertion AUC, map similarity (Spearman ρ
  of absolute and of signed maps, SSIM), seed intervals, bootstrap margins over controls, the share of
  relevance at the true modulation rate, the pass/fail rules;
* :mod:`.perturb` — deletion and insertion of whole paths (all frames) under named baselines (zero,
  training mean, a per-path time shuffle), for each method's order, control maps and seeded random orders
  (a fast path for the convnet, tested equal to perturbing the input);
* :mod:`.randomise` — model-parameter randomisation (cascading from the output, and one layer at a time),
  redrawn with several seeds, and the comparison with a network trained on permuted labels;
* :mod:`.permuted` — that network, trained until it memorises its permuted labels;
* :mod:`.notes`, :mod:`.summary` — the scored notes, and the per-method entries of quality.json;
* :mod:`.stage` — ``scatterxai quality``: all of it on a relevance file → quality.json, quality.md,
  figures (:mod:`.report`), and the ``quality`` stages of ``scatterxai run`` (:func:`.stage.pipeline_section`).

Definitions and the choices made where the literature leaves room: ``docs/analysis.md`` ("Is the explanation
right?") and each module's docstring.

Examples
--------
:func:`quality` on the methods of ``toy.relevance`` (see ``tests/test_examples.py``), on 4 notes, without
the permuted-label network (``permuted_epochs=0``: the data-randomisation check is then not measured):

>>> from scatterxai.analysis.quality import quality
>>> res = quality(toy.features, model_dir=toy.model_dir, relevance=toy.relevance, out=tmp / "quality",
...               max_examples=4, permuted_epochs=0, device="cpu", progress=False)
>>> sorted(res["quality"])
['epsilon', 'epsilon_plus']
>>> q = res["quality"]["epsilon_plus"]
>>> sorted(q["checks"])
['deletion', 'ground_truth', 'insertion', 'label_randomisation', 'localisation_vs_controls',
 'model_randomisation', 'tracking']
>>> q["checks"]["label_randomisation"] is None
True
>>> q["randomisation"]["steps"]           # cascading: the original network, then from the output down
['original', 'fc2', 'fc1', 'conv2', 'conv1', 'conv0', 'input_bn']
"""

from .metrics import (
                      RANDOMISATION_THRESHOLD,
                      SIMILARITIES,
                      aopc,
                      bootstrap_interval,
                      insertion_auc,
                      random_orders,
                      rate_band_chance,
                      rate_band_share,
                      relevance_order,
                      seed_summary,
                      spearman_rows,
                      ssim_rows,
                      step_counts,
                      strongest_control,
)
from .permuted import PermutedConfig, train_permuted
from .perturb import (
                      BASELINES,
                      baseline_input,
                      perturbation_logits,
                      perturbation_study,
                      shuffled_input,
                      training_mean_input,
)
from .randomise import (
                      CONVNET_BLOCKS,
                      INPUT_NORMALISATION_STEP,
                      default_blocks,
                      explainer_from_attrs,
                      map_similarity,
                      randomisation_study,
                      randomised_network,
                      reinitialised_state,
)
from .stage import DEFAULT_BASELINES, QualityConfig, quality, select_examples

__all__ = ["QualityConfig", "quality", "select_examples", "train_permuted", "PermutedConfig", "perturbation_logits",
           "perturbation_study", "training_mean_input", "shuffled_input", "baseline_input", "BASELINES",
           "DEFAULT_BASELINES", "randomisation_study", "randomised_network", "reinitialised_state", "map_similarity",
           "explainer_from_attrs", "default_blocks", "CONVNET_BLOCKS", "INPUT_NORMALISATION_STEP", "relevance_order",
           "random_orders", "step_counts", "aopc", "insertion_auc", "spearman_rows", "ssim_rows", "seed_summary",
           "bootstrap_interval", "strongest_control", "SIMILARITIES", "rate_band_share", "rate_band_chance",
           "RANDOMISATION_THRESHOLD"]
