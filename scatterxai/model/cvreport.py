"""The metrics of a cross-validation: ``metrics.json`` and ``metrics.md`` of a cross-validated model directory.

``metrics.json`` has the keys of a single evaluation (:func:`scatterxai.model.evaluate_model`: the
per-class, macro and overall accuracy and confusion matrix of the pooled out-of-fold predictions, so that
reports and figures read it unchanged) plus ``per_fold`` (each fold's accuracies and its notes per class
and part), ``spread`` (:func:`scatterxai.model.spread.spread`: per-fold values, mean, std and the bootstrap
interval) and ``crossval`` (folds, grouping).  ``metrics.md`` says how many notes per class and fold each
number rests on.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np

from .. import __version__
from .._util.fs import atomic_path
from .._util.jsonio import write_json
from .._util.markdown import md_table
from .._util.types import PathLike
from .metrics import classification_metrics, metrics_markdown
from .spread import bootstrap_interval, spread

if TYPE_CHECKING:
    from ..features.store import FeatureFile

__all__ = ["crossval_metrics", "crossval_markdown", "write_metrics"]


def crossval_metrics(ff: FeatureFile, plan: Any, results: Sequence[dict], *, input: str, n_params: int) -> dict:
    """Out-of-fold metrics of the folds' test rows (``results`` of the fold trainings)."""
    rows = np.concatenate([r["test_rows"] for r in results])
    logits = np.concatenate([r["logits"] for r in results])
    fold = np.concatenate([np.full(len(r["test_rows"]), r["fold"]) for r in results])
    out = {"input": input, "n_params": int(n_params), "subset": f"out-of-fold ({plan.n_folds} folds)"}
    out.update(oof_metrics(ff, rows, logits, fold, results, seed=plan.seed))
    out["crossval"] = {"folds": plan.n_folds, "seed": plan.seed, "group_by": plan.group_by,
                       "n_groups": len(set(plan.groups.tolist())), "rows_used": plan.rows_text,
                       "n_recordings": out.pop("n_recordings")}
    return out


def oof_metrics(ff: FeatureFile, rows: np.ndarray, logits: np.ndarray, fold: np.ndarray, folds: Sequence[Mapping], *,
                seed: int = 0, labels: Optional[np.ndarray] = None, classes: Optional[Sequence[str]] = None) -> dict:
    """Pooled, per-fold and spread metrics of out-of-fold predictions.

    Parameters
    ----------
    ff : FeatureFile
        Gives the file names (recordings, for the bootstrap).
    rows : array of int [shape=(k,)]
    logits : array [shape=(k, n_classes)]
    fold : array of int [shape=(k,)]
        Fold model of each row (1 … K; 0 for the final model, left out of the per-fold values).
    folds : sequence of mapping
        Per fold: ``fold``, ``counts`` (notes per class and part), ``best_epoch``.
    seed : int
        Seed of the bootstrap.
    labels : array of int [shape=(k,)], optional
        True classes as indices into ``classes`` (default ``ff.labels[rows]``).
    classes : sequence of str, optional
        Default ``ff.classes``.
    """
    from .guidance import recordings
    classes = list(ff.classes if classes is None else classes)
    y = ff.labels[rows] if labels is None else np.asarray(labels, np.int64)
    pred = logits.argmax(axis=1)
    pooled = classification_metrics(y, pred, classes)
    per_fold = []
    for f in folds:
        m = fold == int(f["fold"])
        fm = classification_metrics(y[m], pred[m], classes)
        per_fold.append({"fold": int(f["fold"]), "macro_accuracy": fm["macro_accuracy"],
                         "overall_accuracy": fm["overall_accuracy"], "per_class_accuracy": fm["per_class_accuracy"],
                         "n_examples": fm["n_examples"], "notes_per_class": f["counts"],
                         "best_epoch": f["best_epoch"]})
    clusters = recordings({"file_name": ff.examples["file_name"]}, rows)
    interval = bootstrap_interval(y, pred, clusters, len(classes), seed=seed) if len(y) else None
    out = dict(pooled)
    out.update({"per_fold": per_fold, "spread": spread(per_fold, pooled, interval),
                "n_recordings": len(set(clusters.tolist())), "features_file": os.path.abspath(ff.path),
                "scatterxai_version": __version__,
                "predictions": {"row": rows.tolist(), "file_name": [str(n) for n in ff.examples["file_name"][rows]],
                                "label": y.tolist(), "predicted": pred.tolist(), "fold": fold.tolist(),
                                "logits": logits.astype(np.float64).round(6).tolist()}})
    return out


def _pct(v) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{100 * v:.1f}"


def crossval_markdown(metrics: Mapping) -> str:
    """Markdown of a cross-validation: the pooled table, the spread, per-fold values and note counts."""
    cv, classes = metrics["crossval"], list(metrics["classes"])
    s = metrics["spread"]
    lines = [metrics_markdown(metrics), f"#### Spread over {cv['folds']} folds (grouped by {cv['group_by']}, "
             f"{cv['n_groups']} groups)", ""]
    rows = []
    for key, name in (("macro_accuracy", "macro"), ("overall_accuracy", "overall")):
        v = s[key]
        lo, hi = v["interval"] or (float("nan"), float("nan"))
        rows.append((name, _pct(v["pooled"]), f"{_pct(lo)}–{_pct(hi)}", f"{_pct(v['mean'])} ± {_pct(v['std'])}",
                     ", ".join(_pct(x) for x in v["per_fold"])))
    lines += [md_table(("accuracy (%)", "out-of-fold", f"{100 * s['interval']['level']:.0f} % interval",
                        "fold mean ± std", "per fold"), rows), "",
              f"Interval: {s['interval']['method']} ({s['interval']['n_resamples']} resamples).", "",
              "Test notes per class and fold (each number above rests on these; training notes in brackets):", ""]
    table = []
    for f in metrics["per_fold"]:
        test, train = f["notes_per_class"]["test"], f["notes_per_class"]["training"]
        table.append((str(f["fold"]), *(f"{t} ({n})" for t, n in zip(test, train)), _pct(f["macro_accuracy"])))
    lines += [md_table(("fold", *classes, "macro (%)"), table), ""]
    return "\n".join(lines) + "\n"


def write_metrics(folder: PathLike, metrics: dict) -> None:
    """``folder/metrics.json`` and ``folder/metrics.md``."""
    folder = Path(folder)
    write_json(folder / "metrics.json", metrics)
    with atomic_path(folder / "metrics.md") as tmp:
        Path(tmp).write_text(crossval_markdown(metrics), encoding="utf-8")
