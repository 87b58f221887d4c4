"""Grouped, class-stratified folds for cross-validation (pure functions of label and group arrays).

* :func:`group_keys` — the group of each row: a grouping column of the meta CSV when the features have one
  (:data:`GROUP_COLUMNS`, or the one named), else the recording (``file_name``), so that the windows of
  one file (``--segments``) and its augmented copies never sit on both sides of a fold;
* :func:`assign_folds` — K folds from scikit-learn's :class:`~sklearn.model_selection.StratifiedGroupKFold`
  (each group in one fold; class proportions as equal across folds as the groups allow; its
  :class:`~sklearn.model_selection.GroupKFold` when no class has K recordings), seeded;
* :func:`fold_parts` — the rotation: fold k tests on part k, early-stops on part k+1 (mod K) and trains on
  the K−2 others.  With K = 5 every model sees the 6:2:2 ratio of a single split, and every row is tested
  exactly once (by the one model that neither trained nor early-stopped on it).  Augmented rows are used
  for training only.
"""

from __future__ import annotations

import warnings
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import ArrayLike

from .._util.validate import check_int, check_seed
from ..errors import DataError, ParameterError

__all__ = ["GROUP_COLUMNS", "FILE_GROUP", "MIN_FOLDS", "group_keys", "assign_folds", "fold_parts"]

#: columns taken as groups when the data have them, in this order (the first present wins)
GROUP_COLUMNS = ("group", "player", "performer", "source", "instrument")
#: what :func:`group_keys` reports when it groups by recording
FILE_GROUP = "file_name"
#: fewest folds of the rotation (one for testing, one for early stopping, at least one for training)
MIN_FOLDS = 3


def group_keys(examples: Mapping[str, np.ndarray], group_by: Optional[str] = None) -> Tuple[np.ndarray, str]:
    """The group of each row and the column it comes from.

    Parameters
    ----------
    examples : mapping str → array [shape=(K,)]
        Example columns of a features file (``file_name`` at least).
    group_by : str, optional
        Column to group by; default the first of :data:`GROUP_COLUMNS` the examples have, else
        ``file_name`` (each recording its own group).  Empty cells of a grouping column fall back to the
        row's recording.

    Returns
    -------
    groups : np.ndarray [shape=(K,), object]
    column : str
    """
    if "file_name" not in examples:
        raise DataError(f"the examples have no file_name column (columns: {sorted(examples)})")
    files = np.array([f"{FILE_GROUP}:{v}" for v in np.asarray(examples["file_name"]).astype(str)], dtype=object)
    if group_by is None:
        group_by = next((c for c in GROUP_COLUMNS if c in examples), FILE_GROUP)
    elif group_by not in examples:
        raise ParameterError(f"group column {group_by!r} is not among the features' example columns "
                             f"{sorted(examples)}; give one of them (or omit it to group by "
                             f"{', '.join(GROUP_COLUMNS)} when present, else by file)")
    if group_by == FILE_GROUP:
        return files, FILE_GROUP
    values = np.array([str(v).strip() for v in np.asarray(examples[group_by])], dtype=object)
    empty = (values == "") | (values == "nan")
    return np.where(empty, files, np.array([f"{group_by}:{v}" for v in values], dtype=object)), group_by


def assign_folds(labels: ArrayLike, groups: ArrayLike, n_folds: int, *, seed: int = 0,
                 augmented: Optional[ArrayLike] = None) -> np.ndarray:
    """Fold (0 … K−1) of every row: grouped, stratified by class, seeded.

    Parameters
    ----------
    labels : array of int [shape=(K_rows,)]
    groups : array [shape=(K_rows,)]
        Rows of one group always share a fold.
    n_folds : int ≥ 3
    seed : int
        Shuffles the groups before they are dealt (scikit-learn's ``random_state``).
    augmented : array of bool or int [shape=(K_rows,)], optional
        Augmented copies: left out of the stratification, they follow their group.

    Returns
    -------
    np.ndarray [shape=(K_rows,), int64]

    Raises
    ------
    DataError
        Fewer groups than folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    n_folds = check_int("folds", n_folds, low=MIN_FOLDS)
    seed = check_seed("seed", seed)
    labels = np.asarray(labels, dtype=np.int64)
    groups = np.asarray([str(g) for g in np.asarray(groups).tolist()], dtype=object)
    if groups.shape != labels.shape:
        raise ParameterError(f"groups must have the shape of labels {labels.shape}, got {groups.shape}")
    real = np.ones(len(labels), bool) if augmented is None else np.asarray(augmented).astype(int) == 0
    n_groups = len(set(groups[real].tolist()))
    if n_groups < n_folds:
        raise DataError(f"{n_folds} folds need at least {n_folds} groups; the data have {n_groups} "
                        f"(group each recording on its own, or use fewer folds)")
    rows = np.flatnonzero(real)
    counts = np.bincount(labels[rows])
    if (counts[counts > 0] < n_folds).all():   # no class fills every fold: stratification is moot
        from sklearn.model_selection import GroupKFold
        splitter = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    else:
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold_of_group: Dict[str, int] = {}
    with warnings.catch_warnings():   # "least populated class has fewer members than n_splits": we warn per fold
        warnings.simplefilter("ignore", UserWarning)
        for k, (_, test) in enumerate(splitter.split(np.zeros(len(rows)), labels[rows], groups[rows])):
            fold_of_group.update({g: k for g in groups[rows[test]]})
    missing = sorted(set(groups.tolist()) - set(fold_of_group))
    if missing:
        raise DataError(f"augmented rows of groups {missing[:3]} have no original recording in the data")
    return np.array([fold_of_group[g] for g in groups], dtype=np.int64)


def fold_parts(folds: ArrayLike, k: int, n_folds: int, *, augmented: Optional[ArrayLike] = None,
               rows: Optional[Sequence[int]] = None) -> Dict[str, np.ndarray]:
    """Training, validation and test rows of fold ``k`` (rotation: test part k, validation part k+1 mod K).

    Parameters
    ----------
    folds : array of int [shape=(K_rows,)]
        Fold of each row (:func:`assign_folds`).
    k : int
        The fold, in [0, K).
    n_folds : int
    augmented : array [shape=(K_rows,)], optional
        Augmented copies are kept in the training part only.
    rows : array of int [shape=(K_rows,)], optional
        Row numbers to return (e.g. the features file's rows); default 0 … K_rows−1.

    Returns
    -------
    dict with "training", "validation", "test" → np.ndarray of int64 rows
    """
    folds = np.asarray(folds, dtype=np.int64)
    k = check_int("k", k, low=0, high=n_folds - 1)
    rows = np.arange(len(folds)) if rows is None else np.asarray(rows, dtype=np.int64)
    real = np.ones(len(folds), bool) if augmented is None else np.asarray(augmented).astype(int) == 0
    val = (k + 1) % n_folds
    return {"training": rows[(folds != k) & (folds != val)],
            "validation": rows[(folds == val) & real],
            "test": rows[(folds == k) & real]}
