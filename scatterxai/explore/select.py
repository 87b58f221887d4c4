"""Which notes an explorer shows: a few per class, misclassified ones first (pure numpy).

An explorer of every note of a study would be large (each note carries its maps, a spectrogram and several
audio files), so it shows a bounded, stated selection: at most ``per_class`` notes of each class (grouped by
true label, by prediction when the data have no labels), taken in this order —

1. the **misclassified** notes of the class, most confident mistake first (what a researcher asks about);
2. then **correctly classified** notes spread evenly over the class's range of confidence (lowest, highest
   and between), so that both the hesitant and the clear cases are there.

Only notes that every shown method explained are eligible when enough exist (slow methods explain a
class-stratified subset of the notes, see :meth:`scatterxai.io.RelevanceFile.common_rows`); a class short of
them is filled with notes some method left unexplained, whose maps the page says are missing.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from .._util.validate import check_positive_int
from ..errors import ParameterError

__all__ = ["select_notes", "REASONS"]

#: why a note was chosen (the page states it)
REASONS = {"misclassified": "misclassified", "correct": "correctly classified", "unlabelled": "no label"}


def _spread(rows: np.ndarray, confidence: np.ndarray, n: int) -> np.ndarray:
    """``n`` of ``rows`` evenly spread over their confidence ranks (lowest and highest included)."""
    if n <= 0 or rows.size == 0:
        return rows[:0]
    ranked = rows[np.argsort(confidence[rows], kind="stable")]
    if n >= ranked.size:
        return ranked
    picks = np.unique(np.round(np.linspace(0, ranked.size - 1, n)).astype(np.int64))
    return ranked[picks]


def _class_rows(members: np.ndarray, preds: np.ndarray, labels: Optional[np.ndarray], confidence: np.ndarray,
                n: int) -> List[Tuple[int, str]]:
    if labels is None:
        return [(int(r), "unlabelled") for r in _spread(members, confidence, n)]
    wrong = members[preds[members] != labels[members]]
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:n]
    right = _spread(members[preds[members] == labels[members]], confidence, n - wrong.size)
    return [(int(r), "misclassified") for r in wrong] + [(int(r), "correct") for r in right]


def select_notes(preds: np.ndarray, confidence: np.ndarray, *, labels: Optional[np.ndarray] = None,
                 eligible: Optional[np.ndarray] = None, n_classes: Optional[int] = None,
                 per_class: int = 3) -> List[Tuple[int, str]]:
    """Rows to show, with the reason each was chosen (see the module docstring).

    Parameters
    ----------
    preds : np.ndarray [shape=(K,), int]
        Predicted class of each note.
    confidence : np.ndarray [shape=(K,), float]
        Probability of the predicted class.
    labels : np.ndarray [shape=(K,), int], optional
        True classes (None: the notes are grouped by prediction and none is "misclassified").
    eligible : np.ndarray [shape=(K,), bool], optional
        Notes preferred (explained by every shown method); others fill a class that lacks them.
    n_classes : int, optional
        Number of classes (default: from the data).
    per_class : int
        At most this many notes per class.

    Returns
    -------
    list of (row, reason)
        Grouped by class in class order; ``reason`` is a key of :data:`REASONS`.
    """
    per_class = check_positive_int("per_class", per_class)
    preds = np.asarray(preds, dtype=np.int64)
    confidence = np.asarray(confidence, dtype=np.float64)
    K = preds.size
    if preds.ndim != 1 or confidence.shape != (K,):
        raise ParameterError(f"preds and confidence must have one value per note, got shapes {preds.shape} and "
                             f"{confidence.shape}")
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (K,):
            raise ParameterError(f"labels must have shape ({K},), got {labels.shape}")
    eligible = np.ones(K, bool) if eligible is None else np.asarray(eligible, dtype=bool)
    if eligible.shape != (K,):
        raise ParameterError(f"eligible must have shape ({K},), got {eligible.shape}")
    groups = labels if labels is not None else preds
    n_classes = int(n_classes if n_classes is not None else (groups.max() + 1 if K else 0))
    chosen: List[Tuple[int, str]] = []
    for c in range(n_classes):
        members = np.flatnonzero(groups == c)
        first = _class_rows(members[eligible[members]], preds, labels, confidence, per_class)
        rest = _class_rows(members[~eligible[members]], preds, labels, confidence, per_class - len(first))
        chosen += first + rest
    return chosen
