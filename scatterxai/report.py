"""The study's outputs: the paper's figures (PNG) and ``report.md`` from a pipeline run's files.

Reads a relevance file (:mod:`scatterxai.export`), the two metrics files (:mod:`scatterxai.train`) and the
features file; draws with :mod:`scatterxai.plots`.  Used by ``scatterxai run`` and experiments/ scripts.
"""

from __future__ import annotations

import json
import os
import re
from typing import Dict, Mapping, Optional

import numpy as np

from .errors import AudioError
from .plots import confusion, figure1, figure2

__all__ = ["make_figures", "write_report", "choose_examples", "pitch_hz_from_name", "FIGURE_FILES"]

FIGURE_FILES = {"fig1": "fig1_examples.png", "fig2": "fig2_class_maps.png", "confusion": "confusion.png"}
RULE_TITLES = {"lrp0": "LRP-0", "epsilon": "LRP-ε", "epsilon_plus": "LRP-[ε,z+]",
               "epsilon_conv_zplus_dense": "LRP-[z+,ε] (paper text)"}
#: kurtosis of local maps on the SOL-PMT test split (paper)
PAPER_KURTOSIS = {"epsilon": (13.82, 8.81), "epsilon_plus": (19.22, 13.72)}
_NOTE = {"C": -9, "D": -7, "E": -5, "F": -4, "G": -2, "A": 0, "B": 2}


def pitch_hz_from_name(name: str) -> float:
    """Fundamental frequency (Hz, A4 = 440) of the pitch written in a SOL file name (``Vn-trem-A#4-mf.wav``).

    NaN if the name holds no pitch.
    """
    m = re.search(r"(?:^|[-_])([A-G])(#|b)?(-?\d)(?=[-_.]|$)", os.path.basename(str(name)))
    if not m:
        return float("nan")
    semis = _NOTE[m.group(1)] + {"#": 1, "b": -1, None: 0}[m.group(2)] + 12 * (int(m.group(3)) - 4)
    return 440.0 * 2 ** (semis / 12)


def _f0_column(examples: Mapping[str, np.ndarray]) -> np.ndarray:
    if "f0_hz" in examples:
        return np.asarray(examples["f0_hz"], dtype=float)
    return np.array([pitch_hz_from_name(n) for n in examples["file_name"]])


def choose_examples(labels, preds, f0_hz, n_classes: int, *, target_hz: float = 440.0) -> Dict[int, int]:
    """One example per class for Fig. 1: correctly classified if possible, pitch nearest ``target_hz`` (A4).

    Returns
    -------
    dict class index → row index (classes without examples are absent)
    """
    labels, preds, f0 = np.asarray(labels), np.asarray(preds), np.asarray(f0_hz, float)
    dist = np.where(np.isfinite(f0) & (f0 > 0), np.abs(np.log2(np.where(f0 > 0, f0, 1) / target_hz)), np.inf)
    chosen = {}
    for c in range(n_classes):
        rows = np.flatnonzero(labels == c)
        if rows.size == 0:
            continue
        correct = rows[preds[rows] == c]
        pool = correct if correct.size else rows
        chosen[c] = int(pool[np.argmin(dist[pool])])
    return chosen


def make_figures(relevance, metrics_paths: Mapping[str, str], *, audio_root: str, out_dir: str,
                 rules=("epsilon", "epsilon_plus"), aggregate_rule: str = "epsilon_plus", dpi: int = 80) -> dict:
    """Write Fig. 1, Fig. 2 and the confusion matrices as PNG files in ``out_dir``.

    Parameters
    ----------
    relevance : str
        Relevance file (``scatterxai explain``) with ``rules`` and labels.
    metrics_paths : mapping {"s1": path, "s1s2": path}
        metrics.json files of the two models.
    audio_root : str
        Where the examples' audio files are (for the spectrograms of Fig. 1).
    out_dir : str

    Returns
    -------
    dict figure name → path
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .audio import load_prepared
    from .export import RelevanceFile
    from .scattering import ScatteringConfig
    from .store import audio_resolver

    os.makedirs(out_dir, exist_ok=True)
    written = {}
    with RelevanceFile(relevance) as rf:
        config = ScatteringConfig.from_dict(rf.attrs)
        labels = np.asarray(rf.labels if rf.labels is not None else rf.examples["pred"], dtype=np.int64)
        preds = np.asarray(rf.examples["pred"], dtype=np.int64)
        f0 = _f0_column(rf.examples)
        lam1, lam2 = rf.grid.lambda1_hz, rf.grid.lambda2_hz
        S_mean = rf.features().mean(axis=-1)  # (K, C) time-averaged model input
        resolve = audio_resolver(audio_root)
        columns = []
        for c, k in choose_examples(labels, preds, f0, len(rf.classes)).items():
            try:
                audio = load_prepared(resolve(str(rf.examples["file_name"][k])), config)
            except AudioError:
                audio = np.zeros(config.N)  # audio moved since extraction: draw the other panels anyway
            ok = "" if preds[k] == labels[k] else f" (predicted {rf.classes[preds[k]]})"
            f0_text = f", {f0[k]:.0f} Hz" if np.isfinite(f0[k]) else ""
            columns.append(dict(title=f"{rf.classes[c]}{ok}\n{os.path.basename(str(rf.examples['file_name'][k]))}"
                                f"{f0_text}", audio=audio, sr=config.sr, f0_hz=f0[k],
                                S=rf.to_grid(S_mean[k]), lambda1_hz=lam1, lambda2_hz=lam2,
                                maps=[rf.to_grid(rf.local(r)[k]) for r in rules]))
        fig = figure1(columns, rule_titles=[RULE_TITLES.get(r, r) for r in rules])
        written["fig1"] = os.path.join(out_dir, FIGURE_FILES["fig1"])
        fig.savefig(written["fig1"], dpi=dpi)
        plt.close(fig)

        present = [c for c in range(len(rf.classes)) if np.any(labels == c)]
        mean_S = np.stack([rf.to_grid(S_mean[labels == c].mean(axis=0)) for c in present])
        agg = rf.to_grid(rf.aggregate(aggregate_rule).astype(float))[present]
        fig = figure2(mean_S, agg, lam1, lam2, [rf.classes[c] for c in present],
                      top_n=int(rf.attrs.get("top_n", 5)), rule_title=RULE_TITLES.get(aggregate_rule,
                                                                                      aggregate_rule))
        written["fig2"] = os.path.join(out_dir, FIGURE_FILES["fig2"])
        fig.savefig(written["fig2"], dpi=dpi)
        plt.close(fig)

    fig, axes = plt.subplots(1, len(metrics_paths), figsize=(4.6 * len(metrics_paths), 4.2),
                             layout="constrained", squeeze=False)
    for ax, (name, path) in zip(axes[0], metrics_paths.items()):
        with open(path) as fh:
            m = json.load(fh)
        confusion(m["confusion_matrix"], m["classes"], ax=ax,
                  title=f"{ {'s1': 'S1', 's1s2': 'S1+S2'}.get(name, name)}: macro accuracy "
                        f"{100 * m['macro_accuracy']:.1f} %")
    written["confusion"] = os.path.join(out_dir, FIGURE_FILES["confusion"])
    fig.savefig(written["confusion"], dpi=dpi)
    plt.close(fig)
    return written


def _data_table(features) -> str:
    from .store import FeatureFile
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


def write_report(path, *, metrics_paths: Mapping[str, str], relevance: str, features: str, figures_dir: str,
                 settings: Optional[dict] = None) -> str:
    """Write ``report.md``: data, Table 1, per-model metrics, LRP statistics, figures.  Returns ``path``."""
    from .export import RelevanceFile, format_summary
    from .train import metrics_markdown, table1

    metrics = {}
    for name, p in metrics_paths.items():
        with open(p) as fh:
            metrics[name] = json.load(fh)
    with RelevanceFile(relevance) as rf:
        summary = rf.summary()
        classes = rf.classes
        target = rf.attrs.get("target", "pred")
        misses = {r: rf.localisation_misses(r) for r in rf.rules}
    rel = os.path.relpath(figures_dir, os.path.dirname(os.path.abspath(path)))
    lines = ["# scatterxai report", ""]
    if settings:
        lines += ["Settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items() if v is not None), ""]
    lines += ["## Data (examples per subset and class)", "", _data_table(features), "",
              "## Table 1 — per-class test accuracy (%), S1 only vs S1+S2", "",
              table1(metrics["s1"], metrics["s1s2"], paper=True),
              f"![confusion matrices]({rel}/{FIGURE_FILES['confusion']})", ""]
    for name in ("s1", "s1s2"):
        lines += [metrics_markdown(metrics[name]), ""]
    lines += [f"## Relevance (S1+S2 model, test split, explained output: {target})", "",
              format_summary(summary, classes), "",
              "Kurtosis of the local maps, mean ± std over test examples (Fisher); the paper reports on SOL-PMT: "
              + "; ".join(f"{RULE_TITLES[r]} {m:.2f} ± {s:.2f}" for r, (m, s) in PAPER_KURTOSIS.items()) + ".",
              "S1 share: fraction of relevance magnitude on first-order paths.  Conserved share: sum of input "
              "relevance / explained logit (biases, including merged BatchNorm shifts, absorb the rest).  "
              "Localised: the second-order path of highest relevance lies within ±1 octave of the note's "
              "true modulation rate (synthetic ground truth).", "",
              *_misses_table(misses),
              "## Figures", "",
              "Fig. 1 — one test example per class (pitch nearest A4): (a) spectrogram, (b) time-averaged "
              "model input on the (λ1, λ2) plane (S1 column at \"0\", dashed line: F0), (c) LRP-ε and "
              "(d) LRP-[ε,z+] local relevance maps.", "",
              f"![Fig. 1]({rel}/{FIGURE_FILES['fig1']})", "",
              f"Fig. 2 — top: class mean of the model input; bottom: top-{summary.get('top_n', 5)} aggregated "
              f"LRP-[ε,z+] relevance per class (paper eq. 13).", "",
              f"![Fig. 2]({rel}/{FIGURE_FILES['fig2']})", ""]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    return path
