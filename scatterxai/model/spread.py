"""The spread of a cross-validated accuracy: per-fold values, their mean, and a bootstrap interval.

:func:`bootstrap_interval` resamples **recordings** (the windows of one file are resampled together: they
are not independent observations) **within each class** (each class keeps its number of recordings, so
the macro accuracy is always defined), computes the pooled out-of-fold accuracy of every resample, and
returns the 2.5 and 97.5 percentiles (a percentile bootstrap; Efron & Tibshirani 1993, ch. 13).  It
measures how much the number would move with other recordings of the same kind; the per-fold values
show how much it moves with the training data.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .._util.validate import check_int, check_seed
from ..errors import ParameterError

__all__ = ["bootstrap_interval", "spread", "N_BOOTSTRAP", "LEVEL"]

#: bootstrap resamples
N_BOOTSTRAP = 2000
#: coverage of the interval
LEVEL = 0.95


def _accuracies(y: np.ndarray, pred: np.ndarray, weight: np.ndarray, n_classes: int) -> np.ndarray:
    """(macro, overall) accuracy of rows weighted by ``weight`` [shape=(B, K)] → [shape=(B, 2)]."""
    correct = (y == pred).astype(np.float64)
    per_class = []
    for c in range(n_classes):
        m = y == c
        if m.any():
            w = weight[:, m]
            per_class.append((w * correct[m]).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-12))
    macro = np.mean(per_class, axis=0)
    overall = (weight * correct).sum(axis=1) / weight.sum(axis=1)
    return np.stack([macro, overall], axis=1)


def bootstrap_interval(y_true: ArrayLike, y_pred: ArrayLike, clusters: ArrayLike, n_classes: int, *,
                       n: int = N_BOOTSTRAP, level: float = LEVEL, seed: int = 0) -> Dict[str, list]:
    """Percentile bootstrap intervals of the macro and overall accuracy of pooled predictions.

    Parameters
    ----------
    y_true, y_pred : array of int [shape=(K,)]
    clusters : array [shape=(K,)]
        Recording of each row: rows of one recording are drawn together.
    n_classes : int
    n : int
        Resamples.
    level : float
        Coverage, in (0, 1).
    seed : int

    Returns
    -------
    dict with ``macro_accuracy`` and ``overall_accuracy`` → [low, high]
    """
    y, p = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    clusters = np.asarray([str(c) for c in np.asarray(clusters).tolist()], dtype=object)
    if not (y.shape == p.shape == clusters.shape) or y.ndim != 1:
        raise ParameterError(f"y_true, y_pred and clusters must be 1-D of one length, got {y.shape}, {p.shape}, "
                             f"{clusters.shape}")
    n = check_int("n", n, low=1)
    if not 0 < level < 1:
        raise ParameterError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(check_seed("seed", seed))
    weight = np.zeros((n, len(y)))
    for c in np.unique(y):   # resample the recordings of each class, with replacement
        keys = sorted(set(clusters[y == c].tolist()))
        rows_of = [np.flatnonzero((clusters == key) & (y == c)) for key in keys]
        draws = rng.integers(0, len(keys), size=(n, len(keys)))
        counts = np.stack([np.bincount(d, minlength=len(keys)) for d in draws])
        for j, rows in enumerate(rows_of):
            weight[:, rows] += counts[:, j:j + 1]
    acc = _accuracies(y, p, weight, n_classes)
    q = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    return {"macro_accuracy": np.percentile(acc[:, 0], q).tolist(),
            "overall_accuracy": np.percentile(acc[:, 1], q).tolist()}


def spread(per_fold: Sequence[dict], pooled: dict, interval: Optional[Dict[str, list]], *,
           n_bootstrap: int = N_BOOTSTRAP, level: float = LEVEL) -> dict:
    """Per-fold values, mean, standard deviation and the bootstrap interval of each accuracy.

    Parameters
    ----------
    per_fold : sequence of dict
        :func:`~scatterxai.model.metrics.classification_metrics` of each fold's test rows.
    pooled : dict
        The metrics of all out-of-fold predictions together.
    interval : dict or None
        :func:`bootstrap_interval` output.
    """
    out = {}
    for key in ("macro_accuracy", "overall_accuracy"):
        values = np.array([m[key] for m in per_fold], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[key] = {"pooled": pooled[key], "per_fold": values.tolist(),
                    "mean": float(finite.mean()) if finite.size else float("nan"),
                    "std": float(finite.std(ddof=1)) if finite.size > 1 else float("nan"),
                    "interval": None if interval is None else interval[key]}
    out["interval"] = {"method": "percentile bootstrap of the pooled out-of-fold accuracy, recordings "
                                 "resampled within each class", "level": level, "n_resamples": n_bootstrap}
    return out
