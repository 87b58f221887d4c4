"""The study's figures from a pipeline run's files: the paper's Fig. 1 and Fig. 2, confusion matrices.

PNG by default; PDF and SVG are vector files (text and axes as vectors, the map cells rasterised at
``dpi``, which keeps them small).

Reads a relevance file (:mod:`scatterxai.io.relevance`) and metrics files (:mod:`scatterxai.model.evaluate`);
draws with :mod:`scatterxai.viz.plots`.  Used by ``scatterxai run`` and the experiments/ scripts.
"""

from __future__ import annotations

import json
import os
from typing import Dict, Mapping

import numpy as np

from .._util.validate import check_choice, check_positive_int
from ..data.notes import pitch_hz_from_name
from ..errors import AudioError
from ..task import INPUT_LABELS
from ..viz.plots import confusion, figure1, figure2

__all__ = ["make_figures", "choose_examples", "figure_files", "FIGURE_FILES", "FIGURE_FORMATS", "RULE_TITLES",
           "PAPER_KURTOSIS"]

#: formats of :func:`make_figures` (matplotlib backends that need no display)
FIGURE_FORMATS = ("png", "pdf", "svg")
_STEMS = {"fig1": "fig1_examples", "fig2": "fig2_class_maps", "confusion": "confusion"}
#: file names of the figures in the default format (PNG)
FIGURE_FILES = {k: f"{v}.png" for k, v in _STEMS.items()}
RULE_TITLES = {"lrp0": "LRP-0", "epsilon": "LRP-ε", "epsilon_plus": "LRP-[ε,z+]",
               "epsilon_conv_zplus_dense": "LRP-[z+,ε] (paper text)"}
#: kurtosis of local maps on the SOL-PMT test split (paper)
PAPER_KURTOSIS = {"epsilon": (13.82, 8.81), "epsilon_plus": (19.22, 13.72)}


def figure_files(fmt: str = "png") -> Dict[str, str]:
    """File name of each figure in format ``fmt`` (see :data:`FIGURE_FORMATS`)."""
    check_choice("fmt", fmt, FIGURE_FORMATS)
    return {k: f"{v}.{fmt}" for k, v in _STEMS.items()}


def _save(fig, path: str, fmt: str, dpi: int) -> None:
    # no creation date in vector files, so that the same inputs give the same bytes
    metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt)
    fig.savefig(path, dpi=dpi, format=fmt, metadata=metadata)


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
                 rules=("epsilon", "epsilon_plus"), aggregate_rule: str = "epsilon_plus", dpi: int = 80,
                 fmt: str = "png") -> dict:
    """Write Fig. 1, Fig. 2 and the confusion matrices in ``out_dir``.

    Parameters
    ----------
    relevance : str
        Relevance file (``scatterxai explain``) with ``rules`` and labels.
    metrics_paths : mapping {"s1": path, "s1s2": path}
        metrics.json files of the models (empty: no confusion figure).  The confusion figure has one
        column per model: counts on top, the row-normalised shares (%) below — each true class's row sums
        to 100 %, so the diagonal is the per-class accuracy, whatever the class sizes.
    audio_root : str
        Where the examples' audio files are (for the spectrograms of Fig. 1).
    out_dir : str
    dpi : int
        Resolution of PNG files and of the rasterised map cells of PDF/SVG files.
    fmt : {"png", "pdf", "svg"}
        File format (:func:`figure_files` gives the names).

    Returns
    -------
    dict figure name → path
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..audio import load_prepared
    from ..data.paths import AudioResolver
    from ..io.relevance import RelevanceFile
    from ..scattering.config import ScatteringConfig

    names = figure_files(fmt)
    dpi = check_positive_int("dpi", dpi)
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    with RelevanceFile(relevance) as rf:
        config = ScatteringConfig.from_dict(rf.attrs)
        labels = np.asarray(rf.labels if rf.labels is not None else rf.examples["pred"], dtype=np.int64)
        preds = np.asarray(rf.examples["pred"], dtype=np.int64)
        f0 = _f0_column(rf.examples)
        lam1, lam2 = rf.grid.lambda1_hz, rf.grid.lambda2_hz
        S_mean = rf.features().mean(axis=-1)  # (K, C) time-averaged model input
        resolve = AudioResolver(audio_root)
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
        written["fig1"] = os.path.join(out_dir, names["fig1"])
        _save(fig, written["fig1"], fmt, dpi)
        plt.close(fig)

        present = [c for c in range(len(rf.classes)) if np.any(labels == c)]
        mean_S = np.stack([rf.to_grid(S_mean[labels == c].mean(axis=0)) for c in present])
        agg = rf.to_grid(rf.aggregate(aggregate_rule).astype(float))[present]
        fig = figure2(mean_S, agg, lam1, lam2, [rf.classes[c] for c in present],
                      top_n=int(rf.attrs.get("top_n", 5)), rule_title=RULE_TITLES.get(aggregate_rule,
                                                                                      aggregate_rule))
        written["fig2"] = os.path.join(out_dir, names["fig2"])
        _save(fig, written["fig2"], fmt, dpi)
        plt.close(fig)

    if not metrics_paths:
        return written
    fig, axes = plt.subplots(2, len(metrics_paths), figsize=(4.6 * len(metrics_paths), 8.4),
                             layout="constrained", squeeze=False)
    for j, (name, path) in enumerate(metrics_paths.items()):
        with open(path) as fh:
            m = json.load(fh)
        label = INPUT_LABELS.get(name, name)
        confusion(m["confusion_matrix"], m["classes"], ax=axes[0, j],
                  title=f"{label}: macro accuracy {100 * m['macro_accuracy']:.1f} %\n(counts)")
        im = confusion(m["confusion_matrix"], m["classes"], ax=axes[1, j], normalize=True,
                       title=f"{label}: % of each true class\n(row-normalised; diagonal = per-class accuracy)")
    fig.colorbar(im, ax=axes, shrink=0.5, label="share of the true class")
    written["confusion"] = os.path.join(out_dir, names["confusion"])
    _save(fig, written["confusion"], fmt, dpi)
    plt.close(fig)
    return written
