"""``scatterxai compare``: how far apart are the explanations of a relevance file — per class, between
classes, between methods (``docs/analysis.md``, "Comparing maps", after Chen et al. 2024) — and the method
table of the report.

Reads RELEVANCE.h5 (:mod:`scatterxai.io.relevance`), runs the study of :mod:`scatterxai.maps.compare_study`
on the local maps of the notes **every compared method explained** (:meth:`RelevanceFile.common_rows`),
grouped by true class (by prediction without labels), and writes:

* ``DIR/compare.json`` — ``{"metrics", "normalisation", "within_class": {method: {class: {metric:
  {"mean", "std", "n_pairs"}}}}, "between_class": {method: {metric: {...}}}, "between_methods": {"a|b":
  {metric: {...}}}}`` plus ``rows`` (notes compared), ``methods``, ``reference``, ``seed``, ``max_pairs``,
  ``emd_max_pairs`` and ``n_available`` (pairs that existed before sampling);
* ``DIR/compare.md`` — the method table (:func:`method_table`), its caption and what was compared;
* ``DIR/compare_boxplots.png`` (per metric: a group of boxes per class, one box per method, and the
  between-class reference) and ``DIR/compare_agreement.png`` (method × method mean JS and EMD).

Sampling.  Within each class, between classes and between methods (notes), at most ``max_pairs`` pairs are
drawn (seeded; the same pairs for every method).  The 2-D EMD costs one exact optimal-transport solve per pair
(~0.02–0.3 s with 1,200 paths), so it gets its own, smaller bound ``emd_max_pairs``; its ``n_pairs`` says how
many pairs each value rests on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence, Tuple

import numpy as np

from .._util.fs import atomic_path
from .._util.jsonio import write_json
from .._util.log import logger
from .._util.markdown import md_table
from .._util.outputs import claims_output
from .._util.types import PathLike
from .._util.validate import check_choice, check_int, check_positive_int
from ..errors import ParameterError
from ..explain.base import method_title
from ..io.together import relevance_study
from ..maps.compare import DISTRIBUTION_MODES, METRICS
from ..maps.compare_study import PARTS, between_class_pairs, study_values, summarise_study, within_class_pairs

if TYPE_CHECKING:
    from .context import AnalysisContext

__all__ = ["CompareConfig", "compare_relevance", "method_table", "COMPARE_FILES"]

#: first line of compare.md
MARKDOWN_TITLE = "# Comparison of explanations"
#: what the method table shows
TABLE_CAPTION = ("Notes: how many notes the method explained; kurtosis of its local maps (mean ± std), "
                 "localisation (the top S2 path lies within ±1 octave of the true modulation rate) and S1 share "
                 "over those notes; IG completeness Σ R / (f_c(x) − f_c(x′)) (1 = exact).  The distances to the "
                 "reference compare the two maps of the same note, as distributions of positive relevance, on the "
                 "notes every method explained (mean ± std over the sampled notes; JS in nats, EMD in octaves).")
#: files written by :func:`compare_relevance` (besides compare.json)
COMPARE_FILES = {"json": "compare.json", "markdown": "compare.md", "boxplots": "compare_boxplots.png",
                 "agreement": "compare_agreement.png"}


@dataclass(frozen=True)
class CompareConfig:
    """Settings of :func:`compare_relevance`.

    Parameters
    ----------
    metrics : tuple of str
        Names of :data:`scatterxai.maps.compare.METRICS` (default: all).
    methods : tuple of str, optional
        Methods to compare (default: all in the file).
    reference : str, optional
        Compare every other method with this one only (default: every pair of methods).
    max_pairs : int or None
        Pairs sampled per class, between classes and notes per method pair (None: all).
    emd_max_pairs : int or None
        The same bound for the 2-D ``emd`` (None: as ``max_pairs``).
    emd_scope : {"all", "between_methods"}
        Where the 2-D ``emd`` is computed: every part of the study, or only between methods (the other
        parts then lack the ``emd`` key; the 1-D EMDs are cheap and stay everywhere).
    emd_reference : str, optional
        Compute the 2-D ``emd`` between methods only for the pairs with this method (the other pairs lack
        the ``emd`` key).
    seed : int
    mode : {"positive", "abs", "shift"}
        How a local map becomes a distribution.
    """

    metrics: Tuple[str, ...] = tuple(METRICS)
    methods: Optional[Tuple[str, ...]] = None
    reference: Optional[str] = None
    max_pairs: Optional[int] = 100
    emd_max_pairs: Optional[int] = 20
    emd_scope: str = "all"
    emd_reference: Optional[str] = None
    seed: int = 0
    mode: str = "positive"

    def __post_init__(self):
        metrics = (self.metrics,) if isinstance(self.metrics, str) else tuple(self.metrics)
        bad = [m for m in metrics if m not in METRICS]
        if bad or not metrics:
            raise ParameterError(f"metrics must be a non-empty subset of {list(METRICS)}, got {list(metrics)}")
        object.__setattr__(self, "metrics", tuple(dict.fromkeys(metrics)))
        if self.methods is not None:
            object.__setattr__(self, "methods", tuple(self.methods))
        for name in ("max_pairs", "emd_max_pairs"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        check_int("seed", self.seed, low=0)
        check_choice("mode", self.mode, DISTRIBUTION_MODES)
        check_choice("emd_scope", self.emd_scope, ("all", "between_methods"))


def _merge(cheap: Optional[dict], emd: Optional[dict], metrics: Sequence[str]) -> dict:
    """One summarised study from a study of the cheap metrics and one of the EMD, metrics in ``metrics`` order."""
    def walk(a: dict, b: dict) -> dict:
        keys = list(dict.fromkeys([*a, *b]))
        if keys and all(k in METRICS for k in keys):   # the metric level: {metric: {"mean", "std", "n_pairs"}}
            merged = {**a, **b}
            return {m: merged[m] for m in metrics if m in merged}
        return {k: walk(a.get(k, {}), b.get(k, {})) for k in keys}

    cheap, emd = cheap or {}, emd or {}
    out = {"metrics": list(metrics), "normalisation": (cheap or emd)["normalisation"]}
    for part in ("within_class", "between_class", "between_methods"):
        out[part] = walk(cheap.get(part, {}), emd.get(part, {}))
    return out


def _n_available(groups, classes, n_methods_pairs: int, K: int) -> dict:
    within = within_class_pairs(groups, max_pairs=1)
    return {"within_class": {classes[c]: int(p.n_available) for c, p in within.items()},
            "between_class": int(between_class_pairs(groups, max_pairs=1).n_available),
            "between_methods": {"notes": int(K), "method_pairs": int(n_methods_pairs)}}


@claims_output("out_dir", kind="compare", inputs={"relevance": "relevance input"},
               study=lambda ba: relevance_study(ba.arguments["relevance"]))
def compare_relevance(relevance: PathLike, out_dir: PathLike, config: Optional[CompareConfig] = None, *,
                      figures: bool = True, dpi: int = 80, overwrite: bool = False) -> dict:
    """Run the comparison study on a relevance file and write its files (see the module docstring).

    Parameters
    ----------
    relevance : str or Path
        RELEVANCE.h5 from ``scatterxai explain``.
    out_dir : str or Path
        Written as a whole under the output rule (:mod:`scatterxai._util.outputs`).
    config : CompareConfig, optional
    figures : bool
        Also draw the PNG figures.
    dpi : int
    overwrite : bool
        Replace an output of another kind or study.

    Returns
    -------
    dict
        The contents of compare.json.

    Examples
    --------
    The two methods of ``toy.relevance`` (see ``tests/test_examples.py``), Jensen–Shannon divergence only, at
    most 5 pairs per part of the study:

    >>> from scatterxai.analysis.compare import CompareConfig, compare_relevance
    >>> result = compare_relevance(toy.relevance, tmp / "compare", CompareConfig(metrics=("js",), max_pairs=5))
    >>> result["methods"], list(result["between_methods"])
    (['epsilon', 'epsilon_plus'], ['epsilon|epsilon_plus'])
    >>> js = result["between_methods"]["epsilon|epsilon_plus"]["js"]
    >>> js["n_pairs"], bool(0 <= js["mean"] <= np.log(2))     # JS in nats lies in [0, ln 2]
    (5, True)
    >>> sorted(p.name for p in (tmp / "compare").glob("compare*"))
    ['compare.json', 'compare.md', 'compare_agreement.png', 'compare_boxplots.png']
    """
    from ..io.relevance import RelevanceFile

    config = config or CompareConfig()
    os.makedirs(out_dir, exist_ok=True)
    with RelevanceFile(relevance) as rf:
        methods = list(config.methods or rf.methods)
        missing = [m for m in methods if m not in rf.methods]
        if missing or not methods:
            raise ParameterError(f"methods {missing or methods} are not in {rf.path}; it holds {list(rf.methods)}")
        for name in ("reference", "emd_reference"):
            value = getattr(config, name)
            if value is not None and value not in methods:
                raise ParameterError(f"{name} must be one of the compared methods {methods}, got {value!r}")
        rows = rf.common_rows(methods)
        grouped_by = "label" if rf.labels is not None else "pred"
        groups = np.asarray(rf.labels if rf.labels is not None else rf.examples["pred"], dtype=np.int64)[rows]
        local = {m: rf.local(m)[rows] for m in methods}
        paths, classes = rf.paths, list(rf.classes)
    if len(rows) < 2:
        raise ParameterError(f"only {len(rows)} notes were explained by every method {methods}: nothing to compare")

    cheap = [m for m in config.metrics if m != "emd"]
    kwargs = dict(reference_method=config.reference, seed=config.seed, mode=config.mode)
    values_cheap = values_emd = None
    if cheap:
        values_cheap = study_values(local, groups, classes, paths, metrics=cheap, max_pairs=config.max_pairs,
                                    **kwargs)
    if "emd" in config.metrics:
        bound = config.emd_max_pairs if config.emd_max_pairs is not None else config.max_pairs
        parts = PARTS if config.emd_scope == "all" else ("between_methods",)
        emd_kwargs = {**kwargs, "reference_method": config.emd_reference or config.reference}
        values_emd = study_values(local, groups, classes, paths, metrics=["emd"], max_pairs=bound, parts=parts,
                                  **emd_kwargs)
        if values_cheap is not None:   # name the EMD's method pairs as the other metrics do (EMD is symmetric)
            keys = values_cheap["between_methods"]
            values_emd["between_methods"] = {
                (k if k in keys else "|".join(reversed(k.split("|")))): v
                for k, v in values_emd["between_methods"].items()}
    summary = _merge(values_cheap and summarise_study(values_cheap), values_emd and summarise_study(values_emd),
                     config.metrics)
    n_pairs = len(summary["between_methods"])
    result = {**summary, "rows": int(len(rows)), "methods": methods, "reference": config.reference,
              "seed": config.seed, "max_pairs": config.max_pairs,
              "emd_max_pairs": config.emd_max_pairs if "emd" in config.metrics else None,
              "emd_scope": config.emd_scope if "emd" in config.metrics else None,
              "emd_reference": config.emd_reference if "emd" in config.metrics else None,
              "n_available": _n_available(groups, classes, n_pairs, len(rows)),
              "grouped_by": grouped_by}
    write_json(os.path.join(out_dir, COMPARE_FILES["json"]), result)
    table = method_table(relevance, result)
    with atomic_path(os.path.join(out_dir, COMPARE_FILES["markdown"])) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write("\n\n".join([MARKDOWN_TITLE, table, TABLE_CAPTION, describe(result)]) + "\n")
    if figures:
        _figures(values_cheap, values_emd, result, out_dir, dpi)
    logger.info("compare: %d notes, %d methods, metrics %s → %s", len(rows), len(methods), list(config.metrics),
                out_dir)
    return result


def _figures(values_cheap, values_emd, result: dict, out_dir, dpi: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..viz.compare import agreement_matrix

    metrics = [m for m in result["metrics"] if m != "emd" or (values_emd and "within_class" in values_emd)]
    if metrics:
        _boxplots(values_cheap, values_emd, metrics, result, os.path.join(out_dir, COMPARE_FILES["boxplots"]), dpi)
    shown = [m for m in ("js", "emd") if m in result["metrics"]] or result["metrics"][:1]
    fig, axes = plt.subplots(1, len(shown), figsize=(5.5 * len(shown), 5), layout="constrained", squeeze=False)
    for ax, metric in zip(axes[0], shown):
        pairs = {k: v for k, v in result["between_methods"].items() if metric in v}
        agreement_matrix(pairs, metric, methods=result["methods"], ax=ax)
    fig.savefig(os.path.join(out_dir, COMPARE_FILES["agreement"]), dpi=dpi)
    plt.close(fig)


def _boxplots(values_cheap, values_emd, metrics, result: dict, path: str, dpi: int) -> None:
    """One panel per metric: a group of boxes per class (one per method) and the between-class reference."""
    import matplotlib.pyplot as plt

    from ..viz.compare import metric_boxplot

    fig, axes = plt.subplots(len(metrics), 1, figsize=(11, 2.6 * len(metrics)), layout="constrained",
                             squeeze=False)
    handles = labels = None
    for ax, metric in zip(axes[:, 0], metrics):
        v = values_emd if metric == "emd" else values_cheap
        metric_boxplot(v["within_class"], metric, between=v["between_class"], ax=ax)
        ax.set_title(f"{metric}: pairs of notes of one class (and of two classes), per method", fontsize=9)
        legend = ax.get_legend()
        if legend is not None:   # one legend for the figure, outside the panels
            handles, labels = legend.legend_handles, [t.get_text() for t in legend.get_texts()]
            legend.remove()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def describe(result: dict) -> str:
    """A paragraph saying what was compared and on how many pairs."""
    n_av = result["n_available"]
    within = ", ".join(f"{c} {n}" for c, n in n_av["within_class"].items())
    emd = ""
    if "emd" in result["metrics"]:
        where = " only between methods," if result.get("emd_scope") == "between_methods" else ""
        if result.get("emd_reference"):
            where += f" only for the pairs with {result['emd_reference']},"
        bound = result.get("emd_max_pairs")
        emd = f"; the 2-D EMD{where} " + (f"on at most {bound} pairs (notes) per group" if bound else "on every pair")
    ref = (f"each method against {result['reference']}" if result.get("reference")
           else "every pair of methods")
    return (f"{result['rows']} notes explained by every method ({', '.join(result['methods'])}); maps turned into "
            f"distributions by {DISTRIBUTION_MODES[result['normalisation']]}.  Pairs available: within classes "
            f"{within}; between classes {n_av['between_class']}.  Sampled (seed {result['seed']}): at most "
            f"{result['max_pairs']} pairs per class, between classes, and notes per method pair ({ref}){emd}.  "
            f"JS is the Jensen–Shannon divergence in nats (≤ ln 2 = 0.693, not SciPy's distance); EMD in octaves "
            f"on the (log2 λ1, log2 λ2) plane.")


def _cell(summary, pct=False, digits=2) -> str:
    if summary is None or not np.isfinite(summary.get("mean", np.nan)):
        return "–"
    if pct:
        return f"{100 * summary['mean']:.1f} %"
    return f"{summary['mean']:.{digits}f} ± {summary['std']:.{digits}f}"


def _between(result: dict, a: str, b: str, metric: str):
    pair = result["between_methods"].get(f"{a}|{b}") or result["between_methods"].get(f"{b}|{a}")
    return None if pair is None else pair.get(metric)


def method_table(relevance: PathLike, result: Optional[dict] = None, *, reference: Optional[str] = None) -> str:
    """Markdown: per method — notes explained, kurtosis, localisation, S1 share, IG completeness and the
    mean between-method JS and EMD to ``reference`` (default: the study's reference, else
    ``epsilon_plus`` when present)."""
    from ..io.relevance import RelevanceFile

    with RelevanceFile(relevance) as rf:
        methods = list(result["methods"]) if result else list(rf.methods)
        summary = rf.summary(methods)
    if reference is None:
        reference = ((result or {}).get("reference") or (result or {}).get("emd_reference")
                     or ("epsilon_plus" if "epsilon_plus" in methods else None))
    rows = []
    for m in methods:
        s = summary["rules"][m]
        comp = s["completeness"]
        to_ref = ["–", "–", "–"]
        if result and reference and m != reference:
            to_ref = [_cell(_between(result, reference, m, k), digits=3) for k in ("js", "emd", "emd_lambda2")]
        elif m == reference:
            to_ref = ["0", "0", "0"]
        rows.append((method_title(m), f"`{m}`", s["n_explained"], _cell(s["kurtosis"], digits=1),
                     _cell(s["localisation"], pct=True), _cell(s["s1_share"], pct=True),
                     "–" if comp is None else _comp(comp), *to_ref))
    ref = method_title(reference) if reference else "reference"
    return md_table(("method", "name", "notes", "kurtosis", "localised (±1 oct.)", "S1 share of abs(R)",
                     "IG completeness", f"JS to {ref} (nats)", f"EMD to {ref} (oct.)",
                     f"λ2-EMD to {ref} (oct.)"), rows, align="llrrrrrrrr")


def _comp(summary) -> str:
    return f"{summary['mean']:.3f} ± {summary['std']:.3f}" if np.isfinite(summary["mean"]) else "–"


#: sampling bounds of the pipeline's compare stage (the demo's time budget)
PIPELINE_MAX_PAIRS = 100
PIPELINE_EMD_MAX_PAIRS = 5


def pipeline_section(ctx: AnalysisContext) -> str:
    """The ``compare`` stage of ``scatterxai run`` (:data:`scatterxai.pipeline.ANALYSES`): the study on the
    run's relevance file → ``OUT/compare/`` (2-D EMD only between LRP-[ε,z+] and each other method, on
    :data:`PIPELINE_EMD_MAX_PAIRS` notes), and the report section with the method table."""
    from ..io.relevance import RelevanceFile

    out_dir = os.path.join(ctx.out, "compare")
    with RelevanceFile(ctx.relevance) as rf:
        methods = rf.methods
        n_common = len(rf.common_rows())
    if n_common < 2:
        return ("## Attribution methods compared\n\nFewer than two notes were explained by every method: "
                "nothing to compare.\n")
    reference = "epsilon_plus" if "epsilon_plus" in methods else None
    config = CompareConfig(max_pairs=PIPELINE_MAX_PAIRS, emd_max_pairs=PIPELINE_EMD_MAX_PAIRS,
                           emd_scope="between_methods", emd_reference=reference, seed=ctx.config.seed)
    outputs = [os.path.join(out_dir, name) for name in COMPARE_FILES.values()]
    key = {"explain": ctx.digest("explain"), "config": {k: getattr(config, k) for k in config.__dataclass_fields__}}
    ctx.stage("compare", key, outputs, lambda: compare_relevance(ctx.relevance, out_dir, config, overwrite=True))
    with open(outputs[1], encoding="utf-8") as fh:   # compare.md: title, table, caption, what was compared
        body = fh.read().split("\n", 1)[1].strip()
    rel = os.path.relpath(out_dir, ctx.out)
    slow = _subset_note(ctx.relevance, getattr(ctx.config, "slow_per_class", None))
    return "\n".join([
        "## Attribution methods compared", "",
        "Every method explains the predicted class of the S1+S2 model on the test split (Fig. 1 and Fig. 2 use "
        "LRP-ε and LRP-[ε,z+]; Integrated Gradients starts from the zero baseline, the input of silence).  "
        + slow, "", body, "",
        f"![distances within and between classes]({rel}/{COMPARE_FILES['boxplots']})", "",
        f"![distances between methods]({rel}/{COMPARE_FILES['agreement']})", ""])


def _subset_note(relevance, per_class) -> str:
    from ..io.relevance import RelevanceFile

    with RelevanceFile(relevance) as rf:
        partial = {m: len(rf.explained_rows(m)) for m in rf.methods if len(rf.explained_rows(m)) < len(rf)}
        K = len(rf)
    if not partial:
        return f"All methods explain all {K} notes."
    names = ", ".join(f"{method_title(m)} ({n})" for m, n in partial.items())
    bound = f" (at most {per_class} per class, spread evenly through each class)" if per_class else ""
    return (f"The slow methods explain a class-stratified subset of the {K} notes{bound}: {names}; comparisons "
            f"use the notes every method explained.")
