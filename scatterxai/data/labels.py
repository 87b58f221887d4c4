"""Class labels and the training split of a meta CSV, decided in one place.

:func:`prepare_labels` is the only place where a meta CSV's ``label`` column becomes int64 indices into a
class list, and where the 6:2:2 split is drawn when the CSV has no ``subset`` column.  ``scatterxai
extract`` calls it and records the outcome in the features file (root attributes ``classes``, ``split``,
``split_seed``, ``split_groups``; columns ``/examples/label`` and ``/examples/subset``); ``scatterxai run``
calls it on its data stage to fail early.  Training, evaluation, explanation and the reports read the
classes and the split from the features file and never derive them again.

Class names come from the data (:func:`encode_labels`):

* **text labels** (``am``, ``fm``, ``plain``): the classes are the distinct labels, sorted alphabetically,
  or in the paper's order when they are all among :data:`scatterxai.task.CLASSES`; an explicit
  ``classes`` list fixes the order (it may also name classes without examples);
* **integer labels** (0, 1, …): indices into ``classes`` when it is given; otherwise named by a name
  column when the CSV has one (SOL-PMT's ``modulation technique``, checked consistent with the labels:
  the paper's five when they match, which keeps SOL-PMT and the synthetic corpus on the paper's
  classes); otherwise the indices themselves, as text ("0", "1", …);
* numbers that are not integers (1.5), empty cells and negative indices are errors, and a classifier
  needs at least two classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import ArrayLike

from .._util.log import logger
from ..errors import DataError, ParameterError
from ..task import CLASSES
from .meta import SUBSETS
from .split import split_622

__all__ = ["encode_labels", "prepare_labels", "check_duplicates", "LabelInfo", "NAME_COLUMNS",
           "SPLIT_GROUP_COLUMN"]

#: columns that name integer labels (SOL-PMT's meta CSV names each label in "modulation technique")
NAME_COLUMNS = ("modulation technique",)
#: the 6:2:2 split is drawn per class and per value of this column when the CSV has it (the paper splits
#: per class and per instrument)
SPLIT_GROUP_COLUMN = "instrument"


#: integer labels are class indices below this (a larger value is a data error, not a class)
MAX_CLASSES = 10_000


def _rows(mask, limit=5) -> str:
    rows = (np.flatnonzero(mask) + 1).tolist()
    return ", ".join(map(str, rows[:limit])) + (", …" if len(rows) > limit else "")


def _check_classes(classes) -> Tuple[str, ...]:
    if isinstance(classes, str):
        classes = [c for c in classes.split(",")]
    classes = tuple(str(c).strip() for c in classes)
    if any(not c for c in classes):
        raise ParameterError(f"classes must be non-empty names, got {list(classes)}")
    dupes = sorted({c for c in classes if classes.count(c) > 1})
    if dupes:
        raise ParameterError(f"classes lists {dupes} more than once: {list(classes)}")
    return classes


def encode_labels(values: ArrayLike, classes: Optional[Sequence[str]] = None, *, names: Optional[ArrayLike] = None,
                  what: str = "label") -> Tuple[np.ndarray, Tuple[str, ...]]:
    """Labels of any kind → (int64 indices, class names).

    Parameters
    ----------
    values : array-like [shape=(K,)]
        Text class names, integer indices, or floats that are integers (a CSV column with empty cells).
    classes : sequence of str, optional
        The class list (label = index into it).  Default: derived from the data (module docstring).
    names : array-like [shape=(K,)], optional
        A name for each row's integer label (e.g. the ``modulation technique`` column).
    what : str
        How messages name the labels (e.g. the CSV and column).

    Returns
    -------
    labels : np.ndarray [shape=(K,), int64]
    classes : tuple of str
        At least two names; ``labels`` index it.

    Raises
    ------
    DataError
        Empty cells, non-integer numbers (1.5 is not silently class 1), negative or out-of-range indices,
        names missing from ``classes``, inconsistent ``names``, fewer than two classes.
    """
    given = None if classes is None else _check_classes(classes)
    values = np.asarray(values)
    if values.ndim != 1:
        raise ParameterError(f"{what} must be one-dimensional, got shape {values.shape}")
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values)
        if bad.any():
            raise DataError(f"{what} is empty or not a number in row(s) {_rows(bad)} (rows counted from 1 "
                            f"after the header); every example needs a label")
        frac = values != np.round(values)
        if frac.any():
            raise DataError(f"{what} values must be class names or integer class indices; row(s) "
                            f"{_rows(frac)} hold {values[frac][:5].tolist()}")
    if values.dtype.kind in "iuf":
        huge = np.abs(values) >= MAX_CLASSES   # before any cast: 1e20 does not fit an int64
        if huge.any():
            raise DataError(f"{what} values must be class indices below {MAX_CLASSES:,} (or class names); row(s) "
                            f"{_rows(huge)} hold {[v.item() for v in values[huge][:5]]}")
        labels = values.astype(np.int64)
        if labels.size and labels.min() < 0:
            raise DataError(f"{what} values must be class indices >= 0; row(s) {_rows(labels < 0)} hold "
                            f"{labels[labels < 0][:5].tolist()}")
        if given is not None:
            if labels.size and labels.max() >= len(given):
                bad = labels >= len(given)
                raise DataError(f"{what} values {sorted(set(labels[bad].tolist()))[:10]} (row(s) {_rows(bad)}) "
                                f"are not indices into the {len(given)} classes {list(given)}")
            out = given
        else:
            out = _names_of_indices(labels, names, what)
    else:
        text = np.array([str(v).strip() for v in values], dtype=object)
        empty = text == ""
        if empty.any():
            raise DataError(f"{what} is empty in row(s) {_rows(empty)} (rows counted from 1 after the "
                            f"header); every example needs a label")
        present = sorted(set(text.tolist()))
        if given is not None:
            unknown = [c for c in present if c not in given]
            if unknown:
                raise DataError(f"{what} values {unknown[:10]} are not among the given classes {list(given)}")
            out = given
        elif set(present) <= set(CLASSES):
            out = tuple(c for c in CLASSES if c in present)
        else:
            out = tuple(present)
        index = {c: i for i, c in enumerate(out)}
        labels = np.array([index[c] for c in text], dtype=np.int64)
    if len(out) < 2:
        raise DataError(f"{what} names only one class {list(out)}; a classifier needs at least two classes")
    return labels, out


def _names_of_indices(labels: np.ndarray, names, what: str) -> Tuple[str, ...]:
    """Class names of integer labels without a class list: from a name column, else the indices."""
    n = int(labels.max()) + 1 if labels.size else 0
    if names is None:
        return tuple(str(i) for i in range(n))
    names = np.array([str(v).strip() for v in np.asarray(names)], dtype=object)
    mapping: Dict[int, str] = {}
    for i in range(n):
        seen = sorted(set(names[labels == i].tolist()))
        if len(seen) > 1:
            raise DataError(f"{what}: label {i} is named {seen[:5]} in different rows; each label needs one name")
        if seen:
            mapping[i] = seen[0]
    taken = sorted(mapping.values())
    dupes = sorted({c for c in taken if taken.count(c) > 1})
    if dupes:
        raise DataError(f"{what}: the names {dupes} are given to several labels "
                        f"({ {i: c for i, c in mapping.items() if c in dupes} })")
    if mapping and all(i < len(CLASSES) and CLASSES[i] == c for i, c in mapping.items()):
        return CLASSES
    return tuple(mapping.get(i, str(i)) for i in range(n))


@dataclass(frozen=True)
class LabelInfo:
    """The outcome of :func:`prepare_labels`.

    Attributes
    ----------
    labels : np.ndarray [shape=(K,), int64] or None
        Class index of each row; None when the CSV has no label column (the data can still be explained
        with a trained model's classes).
    classes : tuple of str
        Class names (empty without labels).
    subset : np.ndarray [shape=(K,), object] or None
        "training" / "validation" / "test" per row; None when there is neither a subset column nor labels.
    split : {"given", "drawn", "none"}
        Whether the subsets came from the CSV, were drawn here, or do not exist.
    split_seed : int or None
        Seed of a drawn split.
    split_groups : str
        Column the drawn split is stratified by besides the class ("" for per class only).
    """

    labels: Optional[np.ndarray]
    classes: Tuple[str, ...]
    subset: Optional[np.ndarray]
    split: str
    split_seed: Optional[int] = None
    split_groups: str = ""

    def attrs(self) -> dict:
        """Root attributes recording the classes and the split (features and relevance files)."""
        out = {"split": self.split, "split_ratio": "6:2:2" if self.split == "drawn" else ""}
        if self.classes:
            out["classes"] = np.array(self.classes, dtype=object)
        if self.split == "drawn":
            out.update(split_seed=int(self.split_seed), split_groups=self.split_groups)
        return out

    def apply(self, columns: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """``columns`` with ``label`` replaced by the class indices and ``subset`` by the (drawn) split."""
        out = dict(columns)
        if self.labels is not None:
            out["label"] = self.labels
        if self.subset is not None:
            out["subset"] = self.subset
        return out


def check_duplicates(columns: Mapping[str, np.ndarray], *, what: str = "meta CSV") -> None:
    """Log a warning for rows that repeat an earlier row exactly and for files listed more than once
    (each copy becomes a separate example, and across subsets a leak from training into test)."""
    if not columns:
        return
    n = len(next(iter(columns.values())))
    keys = [tuple(str(columns[c][i]) for c in columns) for i in range(n)]
    first: Dict[tuple, int] = {}
    repeats = []
    for i, k in enumerate(keys):
        if k in first:
            repeats.append((i + 1, first[k] + 1))
        else:
            first[k] = i
    if repeats:
        shown = ", ".join(f"row {i} = row {j}" for i, j in repeats[:5]) + (", …" if len(repeats) > 5 else "")
        logger.warning("warning: %s: %d row(s) repeat an earlier row exactly (%s; rows counted from 1 after the "
                       "header): each copy becomes a separate example", what, len(repeats), shown)
    if "file_name" in columns:
        rows_by_name: Dict[str, list] = {}
        for i in range(n):
            rows_by_name.setdefault(str(columns["file_name"][i]), []).append(i)
        differ = [name for name, rows in rows_by_name.items() if len({keys[i] for i in rows}) > 1]
        if differ:
            rows = rows_by_name[differ[0]]
            logger.warning("warning: %s lists %d file(s) more than once with different values (e.g. %r in rows "
                           "%s); each listing becomes a separate example", what, len(differ), differ[0],
                           ", ".join(str(r + 1) for r in rows[:5]))


def prepare_labels(columns: Mapping[str, np.ndarray], *, classes: Optional[Sequence[str]] = None, seed: int = 0,
                   group_column: Optional[str] = SPLIT_GROUP_COLUMN, what: str = "meta CSV") -> LabelInfo:
    """Validate a meta table's labels and subsets; draw the 6:2:2 split when there is no subset column.

    Parameters
    ----------
    columns : mapping str → np.ndarray [shape=(K,)]
        A meta table (:func:`scatterxai.data.read_meta_csv`): ``label`` (optional), ``subset``
        (optional), a name column (:data:`NAME_COLUMNS`, optional), ``instrument`` (optional).
    classes : sequence of str, optional
        The class list (see :func:`encode_labels`).
    seed : int
        Seed of a drawn split.
    group_column : str or None
        Stratify a drawn split by this column too when the table has it (default ``"instrument"``).
    what : str
        How messages name the table (e.g. its path).

    Returns
    -------
    LabelInfo

    Raises
    ------
    DataError
        Bad labels (see :func:`encode_labels`), subset values other than "training", "validation",
        "test".
    """
    check_duplicates(columns, what=what)
    subset = None
    if "subset" in columns:
        subset = np.array([str(v).strip() for v in columns["subset"]], dtype=object)
        bad = ~np.isin(subset, SUBSETS)
        if bad.any():
            raise DataError(f"{what}: subset values {sorted(set(subset[bad].tolist()))[:10]} (row(s) "
                            f"{_rows(bad)}) are not among {list(SUBSETS)}; fix them, or drop the subset "
                            f"column to draw the 6:2:2 split")
    if "label" not in columns:
        if classes is not None:
            raise ParameterError(f"classes {list(classes)} were given but {what} has no label column")
        return LabelInfo(None, (), subset, "given" if subset is not None else "none")
    name_column = next((c for c in NAME_COLUMNS if c in columns), None)
    labels, names = encode_labels(columns["label"], classes,
                                  names=None if name_column is None else columns[name_column],
                                  what=f"{what}: column 'label'")
    counts = np.bincount(labels, minlength=len(names))
    empty = [c for c, n in zip(names, counts) if n == 0]
    if empty:
        logger.warning("warning: %s: classes %s have no example", what, empty)
    if subset is not None:
        return LabelInfo(labels, names, subset, "given")
    groups = columns[group_column] if group_column and group_column in columns else None
    few = [c for c, n in zip(names, counts) if 0 < n < 3]
    if few:
        logger.warning("warning: %s: classes %s have fewer than 3 examples and cannot appear in all three "
                       "subsets of the 6:2:2 split", what, few)
    subset = split_622(labels, groups=groups, seed=int(seed))
    return LabelInfo(labels, names, subset, "drawn", int(seed), group_column if groups is not None else "")
