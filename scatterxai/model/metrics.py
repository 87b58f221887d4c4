"""Evaluation metrics as pure functions of label arrays, and the paper's Table 1 layout.

* :func:`classification_metrics` — per-class, macro and overall accuracy, confusion matrix;
* :func:`metrics_markdown` — one evaluation as Markdown;
* :func:`table1` — two evaluations (S1, S1+S2) in the layout of the paper's Table 1;
* :func:`instrument_prior` — the control of the S1 score: what knowing each note's instrument gives.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike

from .._util.types import PathLike
from ..errors import ParameterError
from ..task import INPUT_LABELS

__all__ = ["confusion_matrix", "classification_metrics", "metrics_markdown", "table1", "PAPER_TABLE1",
           "class_weights", "instrument_prior", "paper_macro"]

#: the paper's Table 1 (SOL-PMT test split), per-class accuracy in %
PAPER_TABLE1 = {
    "s1": {"vibrato": 72.50, "trill": 70.33, "tremolo": 92.23, "bisbigliando": 88.33, "flatterzunge": 79.61},
    "s1s2": {"vibrato": 97.50, "trill": 98.56, "tremolo": 99.80, "bisbigliando": 98.33, "flatterzunge": 100.0},
}


def paper_macro(input: str) -> float:
    """The paper's macro accuracy (%) on SOL-PMT for ``input`` ("s1" or "s1s2"): the mean of its five classes
    in :data:`PAPER_TABLE1`."""
    return float(np.mean(list(PAPER_TABLE1[input].values())))


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> np.ndarray:
    """Counts [shape=(n_classes, n_classes), int64]: rows true class, columns predicted class."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ParameterError(f"y_true and y_pred must be 1-D of equal length, got {y_true.shape} and "
                             f"{y_pred.shape}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ParameterError(f"{name} holds labels in [{y.min()}, {y.max()}], expected [0, {n_classes})")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def classification_metrics(y_true: ArrayLike, y_pred: ArrayLike, classes: Sequence[str]) -> dict:
    """Per-class, macro and overall accuracy and the confusion matrix.

    Parameters
    ----------
    y_true, y_pred : array of int [shape=(K,)]
    classes : sequence of str
        Class names, label = index.

    Returns
    -------
    dict with ``classes``, ``per_class_accuracy`` (name → fraction; NaN for a class absent from
    ``y_true``), ``macro_accuracy`` (mean over present classes), ``overall_accuracy``,
    ``confusion_matrix`` (list of lists of int, rows true), ``class_counts``, ``absent_classes``,
    ``n_examples``.
    """
    classes = [str(c) for c in classes]
    cm = confusion_matrix(y_true, y_pred, len(classes))
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)
    present = support > 0
    total = int(cm.sum())
    return {
        "classes": classes,
        "per_class_accuracy": {c: float(a) for c, a in zip(classes, acc)},
        "macro_accuracy": float(acc[present].mean()) if present.any() else float("nan"),
        "overall_accuracy": float(np.trace(cm) / total) if total else float("nan"),
        "confusion_matrix": cm.tolist(),
        "class_counts": {c: int(n) for c, n in zip(classes, support)},
        "absent_classes": [c for c, p in zip(classes, present) if not p],
        "n_examples": total,
    }


def _pct(value) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{100 * value:.2f}"


def metrics_markdown(metrics: Mapping) -> str:
    """Markdown report of one evaluation: per-class accuracy table and confusion matrix."""
    classes = list(metrics["classes"])
    label = INPUT_LABELS.get(metrics.get("input"), str(metrics.get("input", "?")))
    lines = [f"### {label} — subset {metrics.get('subset', '?')} ({metrics['n_examples']} examples"
             + (f", {metrics['n_params']:,} parameters" if "n_params" in metrics else "") + ")", "",
             "| class | examples | accuracy (%) |", "|---|---:|---:|"]
    counts = metrics.get("class_counts", {})
    for c in classes:
        lines.append(f"| {c} | {counts.get(c, '?')} | {_pct(metrics['per_class_accuracy'][c])} |")
    lines += [f"| **macro** | | **{_pct(metrics['macro_accuracy'])}** |",
              f"| overall | {metrics['n_examples']} | {_pct(metrics['overall_accuracy'])} |", ""]
    absent = metrics.get("absent_classes") or []
    if absent:
        lines += [f"Classes absent from this subset (accuracy undefined, shown as —; macro over the other "
                  f"classes): {', '.join(absent)}.", ""]
    lines += ["Confusion matrix (rows: true class, columns: predicted):", "",
              "| true \\ predicted | " + " | ".join(classes) + " |",
              "|---|" + "---:|" * len(classes)]
    for c, row in zip(classes, metrics["confusion_matrix"]):
        lines.append(f"| {c} | " + " | ".join(str(int(v)) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _read_metrics(m) -> dict:
    if isinstance(m, Mapping):
        return dict(m)
    path = Path(m)
    if path.is_dir():
        path = path / "metrics.json"
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ParameterError(f"cannot read metrics from {path}: {e}") from None


def _acc(value) -> float:
    return float("nan") if value is None else float(value)


def table1(metrics_s1: Union[Mapping[str, Any], PathLike], metrics_s1s2: Union[Mapping[str, Any], PathLike], *,
           paper: bool = False) -> str:
    """The paper's Table 1 layout: rows S1 and S1+S2, columns the classes and the macro average (in %).

    Parameters
    ----------
    metrics_s1, metrics_s1s2 : dict, or path to metrics.json (or to the directory holding it)
        Outputs of :func:`evaluate_model` for the two inputs (same classes).
    paper : bool
        Also list the paper's numbers (SOL-PMT test split) for comparison.

    Returns
    -------
    str — a Markdown table; classes absent from the evaluated subset show "—".
    """
    rows = []
    for expected, m in (("s1", metrics_s1), ("s1s2", metrics_s1s2)):
        m = _read_metrics(m)
        if m.get("input", expected) != expected:
            raise ParameterError(f"table1 expects the {expected!r} metrics in this position, got metrics of "
                                 f"input {m.get('input')!r}")
        rows.append((INPUT_LABELS[expected], m))
    classes = list(rows[0][1]["classes"])
    if list(rows[1][1]["classes"]) != classes:
        raise ParameterError(f"the two metrics have different classes: {classes} vs {rows[1][1]['classes']}")
    lines = ["| input | " + " | ".join(classes) + " | macro |", "|---|" + "---:|" * (len(classes) + 1)]
    for name, m in rows:
        accs = [_acc(m["per_class_accuracy"][c]) for c in classes]
        lines.append(f"| {name} | " + " | ".join(_pct(a) for a in accs)
                     + f" | {_pct(_acc(m['macro_accuracy']))} |")
    if paper:
        for key in ("s1", "s1s2"):
            ref = PAPER_TABLE1[key]
            vals = [ref.get(c) for c in classes]
            known = [v for v in vals if v is not None]
            lines.append(f"| {INPUT_LABELS[key]} (paper, SOL-PMT) | "
                         + " | ".join("—" if v is None else f"{v:.2f}" for v in vals)
                         + f" | {np.mean(known):.2f} |")
    absent = sorted({c for _, m in rows for c in m.get("absent_classes", [])})
    if absent:
        lines += ["", f"— : class absent from the evaluated subset ({', '.join(absent)}); macro averages the "
                      f"present classes."]
    return "\n".join(lines) + "\n"


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Loss weights w_c = max_k n_k / n_c [shape=(n_classes,)]; 0 for classes with no example."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    with np.errstate(divide="ignore"):
        w = np.where(counts > 0, counts.max() / counts, 0.0)
    return w


def instrument_prior(instrument: ArrayLike, technique: ArrayLike, subset: ArrayLike,
                     classes: Sequence[str]) -> tuple:
    """The control of the S1 score: per-class test accuracy (dict) and macro accuracy of a rule that knows
    each test note's instrument and answers the technique that instrument plays most in the training split.

    Each class is weighted as the networks' loss weights it (w_c = max_k n_k / n_c,
    :func:`class_weights`), so that a rare class is not always outvoted; an instrument
    without training notes gets the class with the largest weighted count overall.  An S1 network below this
    score does not even tell the instruments apart; above it, S1 uses more than the instrument.

    Parameters
    ----------
    instrument, technique, subset : array-like [shape=(K,)]
        One entry per note: instrument name, class name, "training" / "validation" / "test".
    classes : sequence of str
        The classes, in order; classes without test notes are left out of the macro.

    Raises
    ------
    ParameterError
        A class has no training note.
    """
    classes = list(classes)
    instrument, technique, subset = (np.asarray(a, dtype=object) for a in (instrument, technique, subset))
    train = (subset == "training") & np.isin(technique, classes)
    index = {c: i for i, c in enumerate(classes)}
    label = np.array([index.get(t, -1) for t in technique], dtype=np.int64)
    weight = class_weights(label[train], len(classes))
    if not np.all(weight > 0):
        missing = [c for c, w in zip(classes, weight) if w == 0]
        raise ParameterError(f"no training notes of {missing}: the instrument prior needs every class in training")

    def answer(rows):
        return classes[int(np.argmax(np.bincount(label[rows], minlength=len(classes)) * weight))]

    fallback = answer(train)
    rule = {i: answer(train & (instrument == i)) for i in np.unique(instrument[train])}
    test = subset == "test"
    per_class = {}
    for c in classes:
        rows = test & (technique == c)
        if rows.any():
            per_class[c] = float(np.mean([rule.get(i, fallback) == c for i in instrument[rows]]))
    return per_class, float(np.mean(list(per_class.values())))
