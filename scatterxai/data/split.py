"""The 6:2:2 training / validation / test split per class and per group (instrument), as the paper draws it;
bounded subsets spread over classes and groups (for analyses too costly to run on every note)."""

from __future__ import annotations

from typing import Optional

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ParameterError

__all__ = ["split_622", "spread_subset"]

# Subset of each position in a class's shuffled sequence, repeating with period 5 (= 3 training,
# 1 validation, 1 test).  The validation and test slots are spread out, so any run of n consecutive
# positions holds round(0.6 n), round(0.2 n), round(0.2 n) ± 1, and any run of 3 holds all three subsets.
_SPLIT_PATTERN = ("validation", "training", "test", "training", "training")


def split_622(labels: ArrayLike, *, groups: Optional[ArrayLike] = None, seed: int = 0) -> np.ndarray:
    """Training / validation / test split in the ratio 6:2:2 per class (and per group).

    Within each class, the groups (instruments) are visited in a seeded random order and the rows of
    each group in a seeded random order; the resulting sequence is dealt into subsets with the periodic
    pattern validation, training, test, training, training.  Hence every (class, group) cell is split
    6:2:2 within ±1 note per subset, each class as a whole within ±1, and small cells (1–4 notes) take
    their turn in the pattern where the previous cell left off, so that every class with at least 3 notes
    appears in all three subsets.

    Parameters
    ----------
    labels : array-like [shape=(K,)]
        Class of each row (any hashable values).
    groups : array-like [shape=(K,)], optional
        Group of each row (e.g. instrument); ``None`` splits per class only.
    seed : int

    Returns
    -------
    subset : np.ndarray [shape=(K,), object]
        ``"training"``, ``"validation"`` or ``"test"`` per row.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ParameterError(f"labels must be one-dimensional, got shape {labels.shape}")
    groups = np.zeros(len(labels), dtype=np.int64) if groups is None else np.asarray(groups)
    if groups.shape != labels.shape:
        raise ParameterError(f"groups must have the shape of labels {labels.shape}, got {groups.shape}")
    rng = np.random.default_rng(seed)
    out = np.empty(len(labels), dtype=object)
    label_keys = sorted({str(v) for v in labels.tolist()})
    label_str = np.array([str(v) for v in labels.tolist()], dtype=object)
    group_str = np.array([str(v) for v in groups.tolist()], dtype=object)
    for key in label_keys:
        rows = np.flatnonzero(label_str == key)
        cells = sorted(set(group_str[rows]))
        order = []
        for c in rng.permutation(len(cells)):
            cell_rows = rows[group_str[rows] == cells[c]]
            order.extend(cell_rows[rng.permutation(len(cell_rows))].tolist())
        for position, row in enumerate(order):
            out[row] = _SPLIT_PATTERN[position % len(_SPLIT_PATTERN)]
    return out


def spread_subset(labels: ArrayLike, n: int, *, groups: Optional[ArrayLike] = None, seed: int = 0) -> np.ndarray:
    """At most ``n`` rows spread evenly over the classes and, within a class, over the groups.

    Classes take turns (in sorted order), each giving its next row until ``n`` rows are chosen or every
    class is exhausted, so classes are balanced as far as their sizes allow.  Within a class the groups
    (instruments) are visited round-robin in a seeded random order, and each group's rows in a seeded
    random order: the first rows of a class come from as many different groups as possible.

    Parameters
    ----------
    labels : array-like [shape=(K,)]
        Class of each row (any hashable values).
    n : int ≥ 1
        Largest number of rows to keep; all rows if K ≤ n.
    groups : array-like [shape=(K,)], optional
        Group of each row (e.g. instrument); ``None``: one group.
    seed : int

    Returns
    -------
    rows : np.ndarray [shape=(min(n, K),), int64]
        Chosen row indices, increasing.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ParameterError(f"labels must be one-dimensional, got shape {labels.shape}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"n must be a positive integer, got {n!r}")
    groups = np.zeros(len(labels), dtype=np.int64) if groups is None else np.asarray(groups)
    if groups.shape != labels.shape:
        raise ParameterError(f"groups must have the shape of labels {labels.shape}, got {groups.shape}")
    if len(labels) <= n:
        return np.arange(len(labels), dtype=np.int64)
    rng = np.random.default_rng(seed)
    label_str = np.array([str(v) for v in labels.tolist()], dtype=object)
    group_str = np.array([str(v) for v in groups.tolist()], dtype=object)
    queues = []
    for key in sorted(set(label_str)):
        rows = np.flatnonzero(label_str == key)
        cells = sorted(set(group_str[rows]))
        lists = []
        for c in rng.permutation(len(cells)):
            cell_rows = rows[group_str[rows] == cells[c]]
            lists.append(cell_rows[rng.permutation(len(cell_rows))].tolist())
        # round-robin over the groups: the i-th row of every group before the (i+1)-th of any
        queues.append([r for i in range(max(map(len, lists))) for rows_ in lists if i < len(rows_)
                       for r in rows_[i:i + 1]])
    chosen = []
    for i in range(max(map(len, queues))):
        for q in queues:
            if i < len(q) and len(chosen) < n:
                chosen.append(q[i])
    return np.sort(np.array(chosen, dtype=np.int64))
