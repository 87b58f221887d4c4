"""``report.md``: data, Table 1, per-model metrics, relevance statistics and figures of a pipeline run.

Analyses added beside the paper contribute their own sections (Markdown strings) through
``write_report(..., sections=[...])``.
"""

from __future__ import annotations

import json
import os
from typing import Mapping, Optional, Sequence

import numpy as np

from .._util.types import PathLike
from ..explain.base import method_title
from ..task import CLASSES
from .figures import FIGURE_FILES, PAPER_KURTOSIS, drawn_methods

__all__ = ["write_report"]


def _data_table(features) -> str:
    from ..features.store import FeatureFile
    with FeatureFile(features) as ff:
        classes, labels = ff.classes, ff.labels
        subsets = np.asarray(ff.examples.get("subset", np.array(["all"] * len(ff), dtype=object))).astype(str)
        n_failed = len(ff.failed)
    names = [s for s in ("training", "validation", "test") if s in set(subsets)] or sorted(set(subsets))
    lines = ["| subset | " + " | ".join(classes) + " | total |", "|---|" + "---:|" * (len(classes) + 1)]
    for s in names:
        counts = [int(np.sum((subsets == s) & (labels == c))) for c in range(len(classes))]
        lines.append(f"| {s} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")
    if n_failed:
        lines.append(f"\n{n_failed} audio files could not be read (see /failed in features.h5).")
    return "\n".join(lines)


def _s1_control(features, metrics_s1: Mapping, paper: bool) -> list:
    """The line under Table 1 that puts S1 beside its control, the instrument prior
    (:func:`scatterxai.model.metrics.instrument_prior`): only for data with an ``instrument`` column and a
    training split whose every class has notes."""
    from ..errors import ParameterError
    from ..features.store import FeatureFile
    from ..model.metrics import instrument_prior, paper_macro
    with FeatureFile(features) as ff:
        if not {"instrument", "subset", "label"} <= set(ff.examples):
            return []
        classes = list(ff.classes)
        real = np.zeros(len(ff), dtype=bool)
        real[ff.indices("all")] = True   # augmented copies are not notes
        technique = np.array(classes, dtype=object)[ff.labels][real]
        instrument, subset = ff.examples["instrument"][real], ff.examples["subset"][real]
    try:
        _, macro = instrument_prior(instrument, technique, subset, classes)
    except ParameterError:
        return []
    text = (f"S1's control, the instrument prior: a rule that knows each test note's instrument and answers the "
            f"technique that instrument plays most in training (classes weighted as in the loss) scores "
            f"{100 * macro:.1f} % macro here, against {100 * metrics_s1['macro_accuracy']:.1f} % for S1")
    if paper:
        from ..data.loaders import SOL_META_CSV
        from ..data.meta import read_meta_csv
        sol = read_meta_csv(SOL_META_CSV)
        _, sol_macro = instrument_prior(sol["instrument"], sol["modulation technique"], sol["subset"], classes)
        text += (f" (on SOL-PMT's published split: {100 * sol_macro:.1f} %, against {paper_macro('s1'):.1f} % for "
                 f"the paper's S1)")
    return [text + ".  Below the prior, S1 gets less than knowing the instrument would give; above it, S1 uses "
            "more than the instrument (`python experiments/s1_prior.py --run RUN_DIR` adds probes of S1).", ""]


def _misses_table(misses: Mapping[str, Optional[dict]]) -> list:
    """Markdown lines: where the top S2 relevance lies for the examples that are not localised."""
    rows = [(r, m) for r, m in misses.items() if m is not None and m["n"]]
    if not rows:
        return []
    lines = ["Examples that are not localised — where their top second-order relevance lies instead:", "",
             "| rule | localised | not localised | at λ2 ≈ F0 (±½ octave) | above the rate | below the rate |",
             "|---|---:|---:|---:|---:|---:|"]
    for rule, m in rows:
        lines.append(f"| {rule} | {m['localised']} / {m['n']} | {m['misses']} | {m['near_f0']} | {m['above']} | "
                     f"{m['below']} |")
    lines += ["", "λ2 ≈ F0 is the beating of neighbouring partials inside one wide λ1 filter (pitch and timbre, "
              "not modulation); above the rate: harmonics of a non-sinusoidal pattern, sharp re-attacks or "
              "noise texture.", ""]
    return lines


def write_report(path: PathLike, *, metrics_paths: Mapping[str, str], relevance: str, features: str, figures_dir: str,
                 settings: Optional[dict] = None, sections: Sequence[str] = (), paper: bool = False) -> str:
    """Write ``report.md``: data, Table 1, per-model metrics, relevance statistics, figures, then
    ``sections`` (Markdown, e.g. from analyses).  Returns ``path``.

    ``paper`` adds the paper's numbers (Table 1 rows and kurtosis, SOL-PMT test split) for comparison: the
    pipeline sets it for SOL-PMT and for the synthetic corpus (which imitates SOL-PMT's profile), never
    for other data; it is ignored unless the classes are the paper's five.
    """
    from ..io.relevance import RelevanceFile, format_summary
    from ..model.cvreport import crossval_markdown
    from ..model.metrics import metrics_markdown, table1

    metrics = {}
    for name, p in metrics_paths.items():
        with open(p) as fh:
            metrics[name] = json.load(fh)
    with RelevanceFile(relevance) as rf:
        # the paper's section covers the LRP rules; other methods are compared in their own section
        rules = [r for r in rf.attrs.get("rules", []) if r in rf.methods] or list(rf.methods)
        summary = rf.summary(rules)
        classes = rf.classes
        target = rf.attrs.get("target", "pred")
        misses = {r: rf.localisation_misses(r) for r in rules}
        localised = any(rf.localisation(r) is not None for r in rules)
        drawn = drawn_methods(rf, None)   # the rows of Fig. 1 (make_figures' default)
        out_of_fold = bool(rf.attrs.get("out_of_fold", False))
    paper = paper and tuple(classes) == CLASSES
    methods_text = " and ".join(method_title(r) for r in drawn)
    rel = os.path.relpath(figures_dir, os.path.dirname(os.path.abspath(path)))
    lines = ["# scatterxai report", ""]
    if settings:
        lines += ["Settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items() if v is not None), ""]
    crossval = next((m["crossval"] for m in metrics.values() if "spread" in m), None)
    lines += ["## Data (examples per subset and class)", "", _data_table(features), ""]
    if crossval:
        lines += [f"Cross-validation: {crossval['folds']} folds grouped by {crossval['group_by']} "
                  f"({crossval['n_groups']} groups, {crossval['n_recordings']} recordings), stratified by class; "
                  f"rows used: {crossval['rows_used']}.  Accuracies below are out-of-fold: every note is "
                  f"predicted by the fold model that neither trained nor early-stopped on it.", ""]
    lines += ["## Table 1 — per-class " + ("out-of-fold" if crossval else "test") + " accuracy (%), S1 only vs "
              "S1+S2", "",
              table1(metrics["s1"], metrics["s1s2"], paper=paper), ""]
    if not crossval:
        lines += _s1_control(features, metrics["s1"], paper)
    lines += [f"![confusion matrices]({rel}/{FIGURE_FILES['confusion']})", ""]
    for name in ("s1", "s1s2"):
        lines += [(crossval_markdown if "spread" in metrics[name] else metrics_markdown)(metrics[name]), ""]
    where = "out of fold: every note by the fold model that did not see it" if out_of_fold else "test split"
    lines += [f"## Relevance (S1+S2 model, {where}, explained output: {target})", "",
              format_summary(summary, classes), "",
              "Kurtosis of the local maps, mean ± std over test examples (Fisher)"
              + ("; the paper reports on SOL-PMT: "
                 + "; ".join(f"{method_title(r)} {m:.2f} ± {s:.2f}" for r, (m, s) in PAPER_KURTOSIS.items())
                 if paper else "") + ".",
              "S1 share: fraction of relevance magnitude on first-order paths.  Conserved share: sum of input "
              "relevance / explained logit (biases, including merged BatchNorm shifts, absorb the rest)."
              + ("  Localised: the second-order path of highest relevance lies within ±1 octave of the note's "
                 "true modulation rate (synthetic ground truth)." if localised else ""), "",
              *_misses_table(misses),
              "## Figures", "",
              "Fig. 1 — one test example per class (pitch nearest A4 when the file names give pitches): "
              "(a) spectrogram, (b) time-averaged model input on the (λ1, λ2) plane (S1 column at \"0\", "
              f"dashed line: F0), then the local relevance maps of {methods_text}.", "",
              f"![Fig. 1]({rel}/{FIGURE_FILES['fig1']})", "",
              f"Fig. 2 — top: class mean of the model input; bottom: top-{summary.get('top_n', 5)} aggregated "
              f"{method_title('epsilon_plus')} relevance per class (paper eq. 13).", "",
              f"![Fig. 2]({rel}/{FIGURE_FILES['fig2']})", "", *sections]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    return path
