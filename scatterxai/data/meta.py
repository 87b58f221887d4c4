"""The meta CSV: one row per note, read and written with the ``csv`` module; labels from class names.

* :func:`read_meta_csv` / :func:`write_meta_csv` — a column whose every cell parses as an int becomes
  int64, else float64 if every cell parses as a float, else an object array of ``str``.
* :func:`labels_from_values` — class names or indices → int64 labels.

The SOL-PMT meta format of the method's companion code has the columns :data:`META_COLUMNS`; any CSV with
a ``file_name`` column works for extraction.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Dict, List, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .._util.fs import atomic_path
from .._util.types import PathLike
from ..errors import DataError, ParameterError
from ..task import CLASSES

__all__ = ["META_COLUMNS", "SUBSETS", "read_meta_csv", "write_meta_csv", "labels_from_values"]

#: columns of the SOL-PMT meta CSV, in the published order
META_COLUMNS = ("instrument family", "instrument", "technique original", "modulation technique",
                "file_name", "subset", "label")
#: subset names of the split, in the order of the 6:2:2 ratio
SUBSETS = ("training", "validation", "test")


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


def read_meta_csv(path: PathLike) -> Dict[str, np.ndarray]:
    """Read a meta CSV into a dict of columns.

    Parameters
    ----------
    path : str
        CSV with a header row (UTF-8, with or without a byte-order mark; comma-separated, quoted as the
        ``csv`` module writes).

    Returns
    -------
    columns : dict[str, np.ndarray [shape=(K,)]]
        In header order.  A column whose every cell parses as an int is int64; else float64 if every
        non-empty cell parses as a float (empty cells → NaN); else an object array of ``str``.

    Raises
    ------
    DataError
        Missing or empty file, text that is not UTF-8 (the message gives the line), duplicate or empty
        column names, rows of the wrong length.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"meta CSV not found: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise DataError(f"meta CSV {path} is not UTF-8 text: byte 0x{raw[e.start]:02x} on line {line} is not "
                        f"valid UTF-8 (the file looks like Latin-1/Windows-1252).  Save it as UTF-8, e.g. "
                        f"`iconv -f latin1 -t utf-8 in.csv > out.csv` (file names must match the audio files "
                        f"on disk exactly)") from None
    rows = list(csv.reader(io.StringIO(text, newline="")))
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


def write_meta_csv(path: PathLike, columns: Mapping[str, ArrayLike]) -> str:
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
    with atomic_path(path, suffix=f".tmp-{os.getpid()}") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(names)
            for i in range(len(arrays[0])):
                w.writerow([_format_cell(a[i]) for a in arrays])
    return path


def labels_from_values(values: ArrayLike, *, classes: Sequence[str] = CLASSES, what: str = "label") -> np.ndarray:
    """Class names or integer indices → int64 indices into a given class list (default: the paper's five).

    To derive the class list from the data instead, use :func:`scatterxai.data.encode_labels`.

    Raises
    ------
    DataError
        Unknown class names, out-of-range or non-integer numbers (the message lists the valid ones).
    """
    classes = tuple(str(c) for c in classes)
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        bad = sorted({int(v) for v in values if not 0 <= v < len(classes)})
        if bad:
            raise DataError(f"{what} values {bad[:10]} are not class indices 0..{len(classes) - 1} "
                            f"({', '.join(f'{i}={c}' for i, c in enumerate(classes))})")
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            bad = values[~np.isfinite(values) | (values != np.round(values))]
            raise DataError(f"{what} values must be class names or integer indices, got {bad[:5].tolist()}")
        return labels_from_values(values.astype(np.int64), classes=classes, what=what)
    names = [str(v).strip() for v in values]
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({n for n in names if n not in index})
    if unknown:
        raise DataError(f"{what} values {unknown[:10]} are not class names; valid: {list(classes)} "
                        f"or their indices 0..{len(classes) - 1}")
    return np.array([index[n] for n in names], dtype=np.int64)
