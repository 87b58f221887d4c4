"""The explorer's data: what the page shows, read from a run's files through the package's readers.

Everything is plain JSON, written into JavaScript files that the page loads with ``<script>`` (browsers refuse
``fetch()`` of ``file://`` URLs).  Float maps travel as base64 of little-endian float32 — the relevance file's
own values, bit for bit — and a spectrogram as base64 bytes; frequencies are JSON numbers (float64, exact).

The page's (λ1, λ2) grid is the relevance file's: ``/grid/lambda1_hz`` (rows), ``/grid/lambda2_hz`` (columns,
0 for the S1 column) and each path's cell ``/grid/row``, ``/grid/col``; hovering a cell shows *that path's*
λ1 and λ2 from ``/paths``.
"""

from __future__ import annotations

import base64
import os
import re
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from .._util.log import logger
from .._util.types import PathLike

if TYPE_CHECKING:
    from ..io.relevance import RelevanceFile

__all__ = ["encode_array", "decode_array", "grid_data", "note_rows", "note_detail", "class_view", "methods_view",
           "probabilities", "method_title", "parse_md_tables", "colormap_hex"]

#: example columns shown in the notes table when the data have them (key in the page → column)
NOTE_COLUMNS = {"pitch": "pitch", "f0_hz": "f0_hz", "rate_hz": "modulation_hz", "instrument": "instrument",
                "start_s": "start_s"}


def encode_array(values: np.ndarray, dtype: str = "<f4") -> str:
    """base64 of the array's bytes as ``dtype`` (little-endian: what a browser's typed arrays read)."""
    return base64.b64encode(np.ascontiguousarray(values, dtype=np.dtype(dtype)).tobytes()).decode("ascii")


def decode_array(text: str, dtype: str = "<f4") -> np.ndarray:
    """Inverse of :func:`encode_array` (for tests and readers of the page data)."""
    return np.frombuffer(base64.b64decode(text), dtype=np.dtype(dtype))


def method_title(method: str) -> str:
    """Display name of a method (its registered name when it has none)."""
    from ..explain.base import method_title as title
    return title(method)


def colormap_hex(name: str, n: int = 256) -> str:
    """A matplotlib colour map as ``n`` concatenated ``rrggbb`` strings (the page's lookup table)."""
    from matplotlib import colormaps
    rgb = np.round(255 * colormaps[name](np.linspace(0, 1, n))[:, :3]).astype(int)
    return "".join(f"{r:02x}{g:02x}{b:02x}" for r, g, b in rgb)


def probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax of logits [shape=(K, n_classes)] (float64)."""
    from scipy.special import softmax
    return softmax(np.asarray(logits, dtype=np.float64), axis=-1)


def _finite(value) -> Optional[float]:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def grid_data(rf: RelevanceFile) -> Dict[str, list]:
    """The (λ1, λ2) grid of a relevance file and each path's cell and frequencies (Hz; λ2 null for S1)."""
    lam2 = np.asarray(rf.paths["lambda2_hz"], dtype=float)
    return {"lambda1_hz": [float(v) for v in rf.grid.lambda1_hz],
            "lambda2_hz": [float(v) for v in rf.grid.lambda2_hz],
            "path_row": [int(v) for v in rf.grid.row], "path_col": [int(v) for v in rf.grid.col],
            "path_lambda1_hz": [float(v) for v in rf.paths["lambda1_hz"]],
            "path_lambda2_hz": [float(v) if np.isfinite(v) else None for v in lam2],
            "order": [int(v) for v in rf.paths["order"]]}


def note_rows(rf: RelevanceFile, selection: Sequence[tuple], probs: np.ndarray) -> List[Dict[str, Any]]:
    """One entry per selected note for the notes table: file, class, prediction, confidence, pitch, rate…

    Parameters
    ----------
    rf : RelevanceFile
    selection : sequence of (row, reason)
    probs : np.ndarray [shape=(K, n_classes)]
    """
    ex = rf.examples
    labels = rf.labels
    rows = []
    for i, (k, reason) in enumerate(selection):
        pred = int(ex["pred"][k])
        entry = {"id": i, "row": int(k), "file": os.path.basename(str(ex["file_name"][k])),
                 "file_name": str(ex["file_name"][k]), "pred": pred, "confidence": float(probs[k, pred]),
                 "explained": int(ex["explained"][k]), "reason": reason,
                 "label": None if labels is None else int(labels[k]),
                 "correct": None if labels is None else bool(int(labels[k]) == pred)}
        for key, column in NOTE_COLUMNS.items():
            if column in ex:
                value = ex[column][k]
                entry[key] = str(value) if ex[column].dtype == object else _finite(value)
        rows.append(entry)
    return rows


def note_detail(rf: RelevanceFile, note: Mapping[str, Any], local: Mapping[str, np.ndarray], probs: np.ndarray,
                kurtosis: Mapping[str, np.ndarray]) -> Dict[str, Any]:
    """The data of one note's view (maps per method, class probabilities, kurtosis); the media are added by
    the builder.  ``local`` holds each method's (K, C) local maps, ``kurtosis`` its (K,) kurtosis."""
    k = note["row"]
    maps, kurt = {}, {}
    for m, values in local.items():
        row = np.asarray(values[k], dtype=np.float32)
        maps[m] = encode_array(row) if np.isfinite(row).all() else None
        kurt[m] = _finite(kurtosis[m][k])
    return {"id": note["id"], "row": k, "probs": [float(p) for p in probs[k]], "maps": maps, "kurtosis": kurt}


def class_view(rf: RelevanceFile, methods: Sequence[str]) -> Dict[str, Any]:
    """Per method: the aggregated map of each class (paper eq. 13: how many of the class's notes have the path
    among their top-n local relevance) and the kurtosis of the local maps per class (mean, std, n)."""
    from ..maps.summary import class_summary
    # grouped as the file's aggregate is: by true label, by prediction when the data have no labels
    groups_by = "label" if rf.labels is not None else "pred"
    groups = np.asarray(rf.labels if rf.labels is not None else rf.examples["pred"], dtype=np.int64)
    out = {"top_n": int(rf.attrs.get("top_n", 0)), "grouped_by": groups_by, "aggregate": {}, "kurtosis": {},
           "n_notes": [int(np.sum(groups == c)) for c in range(len(rf.classes))]}
    for m in methods:
        agg = np.asarray(rf.aggregate(m))
        out["aggregate"][m] = [[int(v) for v in row] for row in agg]
        kurt = np.asarray(rf.kurtosis(m), dtype=float)
        ok = np.isfinite(kurt)
        s = class_summary(kurt[ok], groups[ok], len(rf.classes))
        out["kurtosis"][m] = {"mean": [_finite(v) for v in s["per_class"]["mean"]],
                              "std": [_finite(v) for v in s["per_class"]["std"]],
                              "n": [int(np.sum(groups[ok] == c)) for c in range(len(rf.classes))],
                              "all": _finite(s["mean"]), "all_std": _finite(s["std"])}
    return out


# ------------------------------------------------------------------------------------------ methods view

def parse_md_tables(text: str) -> List[Dict[str, list]]:
    """The pipe tables of a Markdown text (as :func:`scatterxai._util.markdown.md_table` writes them): a list
    of ``{"columns": [...], "rows": [[...], ...]}`` (``\\|`` inside a cell is a literal bar)."""
    tables, block = [], []
    for line in text.splitlines() + [""]:
        if line.strip().startswith("|"):
            block.append(line.strip())
            continue
        if len(block) >= 2 and re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", block[1].replace(" ", "")):
            cells = [[_cell_text(c) for c in re.split(r"(?<!\\)\|", row)[1:-1]] for row in block]
            tables.append({"columns": cells[0], "rows": cells[2:]})
        block = []
    return tables


def _cell_text(cell: str) -> str:
    """A Markdown table cell as plain text: escaped bars restored, code marks dropped."""
    text = cell.strip().replace("\\|", "|")
    return text[1:-1] if len(text) > 1 and text[0] == text[-1] == "`" else text


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None


def _read_json(path: str) -> Optional[Any]:
    import json
    text = _read_text(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        logger.warning("explorer: %s is not valid JSON (%s); left out", path, e)
        return None


def _markdown(path: str) -> Optional[Dict[str, list]]:
    """The first table of a Markdown file of the run and its prose paragraphs (no headings, tables, images)."""
    md = _read_text(path)
    if md is None:
        return None
    tables = parse_md_tables(md)
    text = [p.strip() for p in md.split("\n\n")
            if p.strip() and not p.strip().startswith(("|", "#", "![")) and not p.strip().startswith("<")]
    return {"table": tables[0] if tables else None, "text": text}


def _compare(run_dir: str) -> Optional[Dict[str, Any]]:
    """The method table and text of ``compare/compare.md`` and the between-method distances of compare.json."""
    md = _markdown(os.path.join(run_dir, "compare", "compare.md"))
    result = _read_json(os.path.join(run_dir, "compare", "compare.json"))
    if md is None and result is None:
        return None
    between = {}
    if isinstance(result, Mapping) and isinstance(result.get("between_methods"), Mapping):
        methods = list(result.get("methods", []))
        for metric in result.get("metrics", []):
            matrix = [[0.0 if a == b else _pair_mean(result["between_methods"], a, b, metric) for b in methods]
                      for a in methods]
            if any(v is not None for row in matrix for v in row if v != 0.0):
                between[metric] = {"methods": methods, "matrix": matrix}
    return {**(md or {"table": None, "text": []}), "between": between}


def _pair_mean(pairs: Mapping, a: str, b: str, metric: str) -> Optional[float]:
    entry = pairs.get(f"{a}|{b}") or pairs.get(f"{b}|{a}") or {}
    value = entry.get(metric)
    return _finite(value.get("mean")) if isinstance(value, Mapping) else None


def _scalars(entry: Mapping, prefix: str = "", depth: int = 0) -> Dict[str, Any]:
    """The scalar values of a nested dict, keys joined with '.', lists and per-class tables left out."""
    out = {}
    for key, value in entry.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if depth < 2 and key not in ("per_class", "checks"):
                out.update(_scalars(value, name + ".", depth + 1))
        elif isinstance(value, (bool, int, float, str)) or value is None:
            out[name] = value
    return out


def _quality(run_dir: str) -> Optional[Dict[str, Any]]:
    """The verdicts (``checks``) and every scalar score of ``quality/quality.json`` — whatever keys it has —
    and the ranking table and text of ``quality/quality.md``."""
    result = _read_json(os.path.join(run_dir, "quality", "quality.json"))
    if not isinstance(result, Mapping) or not result:
        return None
    methods = [m for m, e in result.items() if isinstance(e, Mapping)]
    checks = list(dict.fromkeys(c for m in methods for c in (result[m].get("checks") or {})))
    verdicts = [[(result[m].get("checks") or {}).get(c) for c in checks] for m in methods]
    scalars = {m: _scalars(result[m]) for m in methods}
    keys = list(dict.fromkeys(k for m in methods for k in scalars[m]))
    scores = [[k] + [scalars[m].get(k) for m in methods] for k in keys]
    md = _markdown(os.path.join(run_dir, "quality", "quality.md")) or {"table": None, "text": []}
    return {"methods": methods, "checks": checks, "verdicts": verdicts, "scores": scores, **md}


def methods_view(run_dir: PathLike) -> Dict[str, Any]:
    """The comparison of the run's methods (``compare/``) and its quality verdicts (``quality/``), each None
    when the run has not made it."""
    run_dir = os.fspath(run_dir)
    return {"compare": _compare(run_dir), "quality": _quality(run_dir)}
