"""Datasets on disk: real SOL (with the published SOL-PMT split) and any CSV of audio files and labels.

* :func:`load_sol` — a SOL 0.9HQ directory and a meta CSV (by default the published SOL-PMT split) →
  :class:`Dataset` with resolved audio paths.
* :func:`load_csv` — any CSV with a file-path column and a label column (class names or indices, any
  number of classes); without a subset column the 6:2:2 split is drawn (:func:`scatterxai.data.prepare_labels`,
  the same function ``scatterxai extract`` uses).

:class:`Dataset` holds ``columns`` (dict of equal-length arrays, always ``file_name``, ``label`` (int64) and
``subset``), ``classes`` and ``audio_paths`` (absolute path of each row); :meth:`Dataset.to_meta_csv` writes
a meta CSV that ``scatterxai extract`` consumes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._util.types import PathLike
from ..errors import DataError, ParameterError
from ..task import CLASSES
from .labels import NAME_COLUMNS, prepare_labels
from .meta import META_COLUMNS, SUBSETS, labels_from_values, read_meta_csv, write_meta_csv
from .paths import resolve_all

__all__ = ["SOL_META_CSV", "Dataset", "load_sol", "load_csv"]

#: the published SOL-PMT split (Wang, Lostanlen & Lagrange, ICASSP 2023; companion repository
#: changhongw/examod), shipped as package data
SOL_META_CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "SOL-0.9HQ-PMT_meta.csv")


@dataclass
class Dataset:
    """Rows of a meta table with the resolved audio file of each row.

    Attributes
    ----------
    columns : dict[str, np.ndarray [shape=(K,)]]
        Meta columns; always ``file_name`` (as given in the source CSV), ``label`` (int64 index into
        ``classes``) and ``subset`` (``"training"``, ``"validation"``, ``"test"``).
    audio_paths : list of str [length K]
        Absolute path of each row's audio file.
    source : str
        The CSV the rows came from.
    classes : tuple of str
        Class names (default: the paper's five, :data:`scatterxai.task.CLASSES`).
    """

    columns: Dict[str, np.ndarray]
    audio_paths: List[str]
    source: str = ""
    classes: Tuple[str, ...] = CLASSES
    _n: int = field(init=False, repr=False, default=0)

    def __post_init__(self):
        lengths = {k: len(v) for k, v in self.columns.items()}
        lengths["audio_paths"] = len(self.audio_paths)
        if len(set(lengths.values())) != 1:
            raise ParameterError(f"Dataset columns must have equal lengths, got {lengths}")
        self._n = len(self.audio_paths)

    def __len__(self) -> int:
        return self._n

    @property
    def labels(self) -> np.ndarray:
        """(K,) int64 class indices into :attr:`classes`."""
        return self.columns["label"]

    def indices(self, subset: Optional[str] = None) -> np.ndarray:
        """Row indices (int64) of a subset; all rows if ``subset`` is None."""
        if subset is None:
            return np.arange(len(self), dtype=np.int64)
        if subset not in SUBSETS:
            raise ParameterError(f"subset must be one of {SUBSETS} or None, got {subset!r}")
        return np.flatnonzero(self.columns["subset"] == subset).astype(np.int64)

    def to_meta_csv(self, path: PathLike, *, relative_to: Optional[PathLike] = None) -> str:
        """Write the rows as a meta CSV whose ``file_name`` locates each audio file.

        ``file_name`` becomes the path relative to ``relative_to`` (then pass that directory as
        ``scatterxai extract --audio-root``) or, by default, the absolute path (then any ``--audio-root``
        works).  The other columns are written unchanged, SOL-PMT columns first; ``label`` is written
        as the class name, so that ``scatterxai extract`` finds the same classes again (it stays an index
        in the SOL-PMT format, whose ``modulation technique`` column names it).
        """
        if relative_to is None:
            names = list(self.audio_paths)
        else:
            names = [os.path.relpath(p, os.path.abspath(relative_to)) for p in self.audio_paths]
        cols = {k: self.columns[k] for k in META_COLUMNS if k in self.columns}
        cols.update({k: v for k, v in self.columns.items() if k not in cols})
        cols["file_name"] = np.array(names, dtype=object)
        if tuple(self.classes) != CLASSES or not any(c in self.columns for c in NAME_COLUMNS):
            cols["label"] = np.array([self.classes[i] for i in self.labels], dtype=object)
        return write_meta_csv(path, cols)


def _require_columns(columns, names, path):
    missing = [n for n in names if n not in columns]
    if missing:
        raise DataError(f"{path} lacks the column(s) {missing}; it has {list(columns)}")


def load_sol(sol_root: PathLike, meta_csv: Optional[PathLike] = None) -> Dataset:
    """The SOL-PMT notes of a SOL 0.9HQ directory.

    SOL trees nest files in family/instrument/technique folders while the meta CSV holds base names:
    each ``file_name`` is looked up as ``sol_root/file_name`` and otherwise by base name anywhere under
    ``sol_root``.

    Parameters
    ----------
    sol_root : str
        Directory holding the SOL 0.9HQ audio (any nesting).
    meta_csv : str, optional
        Meta CSV with the columns :data:`META_COLUMNS`; default :data:`SOL_META_CSV`, the published split
        (5,564 notes).

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Missing columns, labels inconsistent with ``modulation technique``, unknown subsets, audio files
        not found (the message gives their count and the first 10 names).
    """
    meta_csv = SOL_META_CSV if meta_csv is None else os.fspath(meta_csv)
    columns = read_meta_csv(meta_csv)
    _require_columns(columns, META_COLUMNS, meta_csv)
    labels = labels_from_values(columns["label"], what=f"{meta_csv}: label")
    named = labels_from_values(columns["modulation technique"], what=f"{meta_csv}: modulation technique")
    bad = np.flatnonzero(labels != named)
    if bad.size:
        raise DataError(f"{meta_csv}: {bad.size} rows have a label that disagrees with their modulation "
                        f"technique, e.g. row {bad[0] + 2} (label {labels[bad[0]]}, technique "
                        f"{columns['modulation technique'][bad[0]]!r}); labels index {list(CLASSES)}")
    columns["label"] = labels
    _check_subsets(columns["subset"], meta_csv)
    return Dataset(columns, resolve_all(columns["file_name"], sol_root), source=os.path.abspath(meta_csv))


def _check_subsets(values, path):
    bad = sorted({str(v) for v in values} - set(SUBSETS))
    if bad:
        raise DataError(f"{path}: subset values {bad[:10]} are not among {list(SUBSETS)}")


def load_csv(csv_path: PathLike, *, audio_root: Optional[PathLike] = None, path_column: str = "file_name",
             label_column: str = "label", subset_column: Optional[str] = "subset",
             instrument_column: Optional[str] = None, classes: Optional[Sequence[str]] = None,
             seed: int = 0) -> Dataset:
    """Any CSV with a file-path column and a label column → :class:`Dataset`.

    Parameters
    ----------
    csv_path : str
    audio_root : str, optional
        Directory the paths are relative to (searched recursively by base name when a path is not found
        there); default: the CSV's directory.  Absolute paths are used as they are.
    path_column, label_column : str
        Columns holding the audio path and the label: class names (any text) or integer indices (see
        :func:`scatterxai.data.encode_labels` for how the class list is found).
    subset_column : str or None
        Column holding "training" / "validation" / "test".  If the CSV has no such column (or None is
        given), the 6:2:2 split of :func:`split_622` is drawn per class and per ``instrument_column``.
    instrument_column : str, optional
        Grouping column for the split (e.g. "instrument"); default: split per class only.
    classes : sequence of str, optional
        The class list (names of integer labels, or the order of text labels).
    seed : int
        Seed of the split.

    Returns
    -------
    Dataset
        Columns: every CSV column, plus ``file_name`` (the path column's values), ``label`` (int64) and
        ``subset``.
    """
    csv_path = os.fspath(csv_path)
    columns = read_meta_csv(csv_path)
    _require_columns(columns, [path_column, label_column], csv_path)
    if instrument_column is not None:
        _require_columns(columns, [instrument_column], csv_path)
    if label_column != "label" and "label" in columns:
        raise DataError(f"{csv_path} has both a 'label' column and label_column={label_column!r}; "
                        f"rename one of them")
    table = dict(columns)
    table["label"] = columns[label_column]
    table.pop("subset", None)
    if subset_column is not None and subset_column in columns:
        table["subset"] = columns[subset_column]
    info = prepare_labels(table, classes=classes, seed=seed, group_column=instrument_column, what=csv_path)
    columns = info.apply(columns)
    names = [str(v) for v in columns[path_column]]
    columns["file_name"] = np.array(names, dtype=object)
    root = os.path.dirname(os.path.abspath(csv_path)) if audio_root is None else audio_root
    return Dataset(columns, resolve_all(names, root), source=os.path.abspath(csv_path), classes=info.classes)
