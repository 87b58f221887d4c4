"""Datasets: the SOL-PMT meta format, the 6:2:2 split, and loaders for real SOL and any CSV.

A dataset is a table with one row per note (a meta CSV) plus the audio file of each row.  The table's
columns follow the SOL-PMT meta format of the method's companion code (:data:`META_COLUMNS`); the label is
the index of the technique in :data:`CLASSES`.

* :func:`read_meta_csv` / :func:`write_meta_csv` — the CSV in and out with the ``csv`` module: a column
  whose every cell parses as an int becomes int64, else float64 if every cell parses as a float, else an
  object array of ``str``.
* :func:`split_622` — shuffle, then training / validation / test in the ratio 6:2:2 per class per group
  (per instrument, as the paper does).
* :func:`load_sol` — a SOL 0.9HQ directory and a meta CSV (by default the published SOL-PMT split) →
  :class:`Dataset` with resolved audio paths.
* :func:`load_csv` — any CSV with a file-path column and a label column (class names or indices); without a
  subset column the 6:2:2 split is drawn.

:class:`Dataset` holds ``columns`` (dict of equal-length arrays, always ``file_name``, ``label`` (int64) and
``subset``) and ``audio_paths`` (absolute path of each row); :meth:`Dataset.to_meta_csv` writes a meta CSV
that ``scatterxai extract`` consumes.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from .errors import DataError, ParameterError

__all__ = ["CLASSES", "META_COLUMNS", "SUBSETS", "SOL_META_CSV", "Dataset", "read_meta_csv",
           "write_meta_csv", "split_622", "load_sol", "load_csv", "labels_from_values"]

#: technique classes; a note's label is the index of its class here (companion code's convention)
CLASSES = ("vibrato", "trill", "tremolo", "bisbigliando", "flatterzunge")
#: columns of the SOL-PMT meta CSV, in the published order
META_COLUMNS = ("instrument family", "instrument", "technique original", "modulation technique",
                "file_name", "subset", "label")
#: subset names of the split, in the order of the 6:2:2 ratio
SUBSETS = ("training", "validation", "test")
#: the published SOL-PMT split (Wang, Lostanlen & Lagrange, ICASSP 2023; companion repository
#: changhongw/examod), shipped as package data
SOL_META_CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "SOL-0.9HQ-PMT_meta.csv")

# Subset of each position in a class's shuffled sequence, repeating with period 5 (= 3 training,
# 1 validation, 1 test).  The validation and test slots are spread out, so any run of n consecutive
# positions holds round(0.6 n), round(0.2 n), round(0.2 n) ± 1, and any run of 3 holds all three subsets.
_SPLIT_PATTERN = ("validation", "training", "test", "training", "training")


# ----------------------------------------------------------------------------------------------------
# CSV in and out


def _parse_column(cells: List[str]) -> np.ndarray:
    """int64 if every cell is an int, float64 if every cell is a float (empty → NaN), else str objects."""
    if any("_" in c for c in cells):  # int("1_2") == 12 in Python: such cells are text, not numbers
        out = np.empty(len(cells), dtype=object)
        out[:] = cells
        return out
    try:
        return np.array([int(c) for c in cells], dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    if any(c.strip() for c in cells):
        try:
            return np.array([float(c) if c.strip() else np.nan for c in cells], dtype=np.float64)
        except ValueError:
            pass
    out = np.empty(len(cells), dtype=object)
    out[:] = cells
    return out


def read_meta_csv(path) -> Dict[str, np.ndarray]:
    """Read a meta CSV into a dict of columns.

    Parameters
    ----------
    path : str
        CSV with a header row (UTF-8, comma-separated, quoted as the ``csv`` module writes).

    Returns
    -------
    columns : dict[str, np.ndarray [shape=(K,)]]
        In header order.  A column whose every cell parses as an int is int64; else float64 if every
        non-empty cell parses as a float (empty cells → NaN); else an object array of ``str``.

    Raises
    ------
    DataError
        Missing or empty file, duplicate or empty column names, rows of the wrong length.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"meta CSV not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise DataError(f"meta CSV {path} is empty (expected a header row, e.g. {','.join(META_COLUMNS)})")
    header = [h.strip() for h in rows[0]]
    if "" in header:
        raise DataError(f"meta CSV {path} has an empty column name in its header {header}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataError(f"meta CSV {path} has duplicate column names {dupes}")
    body = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    for i, r in enumerate(rows[1:], start=2):
        if any(cell.strip() for cell in r) and len(r) != len(header):
            raise DataError(f"meta CSV {path}, line {i}: {len(r)} fields, header has {len(header)}")
    return {h: _parse_column([r[j] for r in body]) for j, h in enumerate(header)}


def _format_cell(v) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else repr(float(v))  # repr: shortest text that reads back exactly
    if isinstance(v, (np.integer,)):
        return str(int(v))
    return str(v)


def write_meta_csv(path, columns) -> str:
    """Write a dict of equal-length columns as a CSV (atomically: temporary file, then rename).

    Parameters
    ----------
    path : str
    columns : mapping str → array-like [shape=(K,)]
        Written in the mapping's order; floats with ``repr`` precision (they read back exactly).

    Returns
    -------
    path : str
    """
    path = os.fspath(path)
    names = list(columns)
    if not names:
        raise ParameterError("columns is empty; give at least one column (e.g. file_name)")
    arrays = [np.asarray(columns[n], dtype=object) if not isinstance(columns[n], np.ndarray)
              else columns[n] for n in names]
    lengths = {n: len(a) for n, a in zip(names, arrays)}
    if len(set(lengths.values())) != 1:
        raise ParameterError(f"columns must all have the same length, got {lengths}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(names)
        for i in range(len(arrays[0])):
            w.writerow([_format_cell(a[i]) for a in arrays])
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------------------------------
# labels and split


def labels_from_values(values, *, what="label") -> np.ndarray:
    """Class names or integer indices → int64 labels (indices into :data:`CLASSES`).

    Raises
    ------
    DataError
        Unknown class names or out-of-range integers (the message lists the valid ones).
    """
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        bad = sorted({int(v) for v in values if not 0 <= v < len(CLASSES)})
        if bad:
            raise DataError(f"{what} values {bad[:10]} are not class indices 0..{len(CLASSES) - 1} "
                            f"({', '.join(f'{i}={c}' for i, c in enumerate(CLASSES))})")
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise DataError(f"{what} values must be class names or integer indices, got non-integer numbers")
        return labels_from_values(values.astype(np.int64), what=what)
    names = [str(v).strip() for v in values]
    index = {c: i for i, c in enumerate(CLASSES)}
    unknown = sorted({n for n in names if n not in index})
    if unknown:
        raise DataError(f"{what} values {unknown[:10]} are not class names; valid: {list(CLASSES)} "
                        f"or their indices 0..{len(CLASSES) - 1}")
    return np.array([index[n] for n in names], dtype=np.int64)


def split_622(labels, *, groups=None, seed=0) -> np.ndarray:
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


# ----------------------------------------------------------------------------------------------------
# datasets


@dataclass
class Dataset:
    """Rows of a meta table with the resolved audio file of each row.

    Attributes
    ----------
    columns : dict[str, np.ndarray [shape=(K,)]]
        Meta columns; always ``file_name`` (as given in the source CSV), ``label`` (int64 index into
        :data:`CLASSES`) and ``subset`` (``"training"``, ``"validation"``, ``"test"``).
    audio_paths : list of str [length K]
        Absolute path of each row's audio file.
    source : str
        The CSV the rows came from.
    """

    columns: Dict[str, np.ndarray]
    audio_paths: List[str]
    source: str = ""
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
        """(K,) int64 class indices."""
        return self.columns["label"]

    def indices(self, subset=None) -> np.ndarray:
        """Row indices (int64) of a subset; all rows if ``subset`` is None."""
        if subset is None:
            return np.arange(len(self), dtype=np.int64)
        if subset not in SUBSETS:
            raise ParameterError(f"subset must be one of {SUBSETS} or None, got {subset!r}")
        return np.flatnonzero(self.columns["subset"] == subset).astype(np.int64)

    def to_meta_csv(self, path, *, relative_to=None) -> str:
        """Write the rows as a meta CSV whose ``file_name`` locates each audio file.

        ``file_name`` becomes the path relative to ``relative_to`` (then pass that directory as
        ``scatterxai extract --audio-root``) or, by default, the absolute path (then any ``--audio-root``
        works).  The other columns are written unchanged, SOL-PMT columns first.
        """
        if relative_to is None:
            names = list(self.audio_paths)
        else:
            names = [os.path.relpath(p, os.path.abspath(relative_to)) for p in self.audio_paths]
        cols = {k: self.columns[k] for k in META_COLUMNS if k in self.columns}
        cols.update({k: v for k, v in self.columns.items() if k not in cols})
        cols["file_name"] = np.array(names, dtype=object)
        return write_meta_csv(path, cols)


def _require_columns(columns, names, path):
    missing = [n for n in names if n not in columns]
    if missing:
        raise DataError(f"{path} lacks the column(s) {missing}; it has {list(columns)}")


def _missing_error(missing, total, root):
    shown = ", ".join(missing[:10]) + (", …" if len(missing) > 10 else "")
    return DataError(f"{len(missing)} of {total} audio files were not found under {root}: {shown}")


def _base_name_index(root):
    """Base name → list of paths of every file under ``root`` (recursive)."""
    index = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            index.setdefault(name, []).append(os.path.join(dirpath, name))
    return index


def _resolve_paths(names, root):
    """Audio path of each name: ``root/name`` if it exists, else a unique file with that base name
    anywhere under ``root``.  Raises DataError listing missing or ambiguous names."""
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise DataError(f"audio directory not found: {root}")
    paths, missing, ambiguous, index = [], [], [], None
    for name in names:
        name = str(name)
        direct = os.path.join(root, name)
        if os.path.isfile(direct):
            paths.append(os.path.abspath(direct))
            continue
        if index is None:
            index = _base_name_index(root)
        found = index.get(os.path.basename(name), [])
        if len(found) == 1:
            paths.append(os.path.abspath(found[0]))
        elif found:
            ambiguous.append(f"{name} ({len(found)} copies, e.g. {found[0]}, {found[1]})")
        else:
            missing.append(name)
    if missing:
        raise _missing_error(missing, len(names), root)
    if ambiguous:
        raise DataError(f"{len(ambiguous)} file names match several files under {root} "
                        f"(point the root at one copy of the tree): {'; '.join(ambiguous[:10])}")
    return paths


def load_sol(sol_root, meta_csv=None) -> Dataset:
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
    return Dataset(columns, _resolve_paths(columns["file_name"], sol_root), source=os.path.abspath(meta_csv))


def _check_subsets(values, path):
    bad = sorted({str(v) for v in values} - set(SUBSETS))
    if bad:
        raise DataError(f"{path}: subset values {bad[:10]} are not among {list(SUBSETS)}")


def load_csv(csv_path, *, audio_root=None, path_column="file_name", label_column="label",
             subset_column="subset", instrument_column=None, seed=0) -> Dataset:
    """Any CSV with a file-path column and a label column → :class:`Dataset`.

    Parameters
    ----------
    csv_path : str
    audio_root : str, optional
        Directory the paths are relative to (searched recursively by base name when a path is not found
        there); default: the CSV's directory.  Absolute paths are used as they are.
    path_column, label_column : str
        Columns holding the audio path and the label (class names of :data:`CLASSES` or their indices).
    subset_column : str or None
        Column holding "training" / "validation" / "test".  If the CSV has no such column (or None is
        given), the 6:2:2 split of :func:`split_622` is drawn per class and per ``instrument_column``.
    instrument_column : str, optional
        Grouping column for the split (e.g. "instrument"); default: split per class only.
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
    labels = labels_from_values(columns[label_column], what=f"{csv_path}: column {label_column!r}")
    if label_column != "label" and "label" in columns:
        raise DataError(f"{csv_path} has both a 'label' column and label_column={label_column!r}; "
                        f"rename one of them")
    columns["label"] = labels
    if subset_column is not None and subset_column in columns:
        columns[subset_column] = np.array([str(v).strip() for v in columns[subset_column]], dtype=object)
        _check_subsets(columns[subset_column], csv_path)
        columns["subset"] = columns[subset_column]
    else:
        groups = None if instrument_column is None else columns[instrument_column]
        columns["subset"] = split_622(labels, groups=groups, seed=seed)
    names = [str(v) for v in columns[path_column]]
    columns["file_name"] = np.array(names, dtype=object)
    root = os.path.dirname(os.path.abspath(csv_path)) if audio_root is None else audio_root
    return Dataset(columns, _resolve_paths(names, root), source=os.path.abspath(csv_path))
