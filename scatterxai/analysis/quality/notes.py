"""The notes :func:`~.stage.quality` scores: which rows of a relevance file, and what every step reads of them.

Which notes.  The examples of the relevance file that every method explained (finite local maps), in the
``subset`` (default "test"), then the first ``max_examples`` of them in file order (``select="spread"``:
evenly spaced over them instead, which covers every class and instrument of a file sorted by them).  The
randomisation checks use ``randomisation_examples`` of those notes (the first ones, or with ``select="spread"``
evenly spaced over them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Optional

import h5py
import numpy as np

from ..._util.types import PathLike
from ...errors import ModelError, ParameterError
from ...io.relevance import RelevanceFile

if TYPE_CHECKING:
    from ...model.directory import LoadedModel

__all__ = ["select_examples", "Notes", "read_notes"]


def select_examples(rf: RelevanceFile, *, subset: Optional[str] = "test", max_examples: Optional[int] = None,
                    select: str = "first") -> np.ndarray:
    """Rows of a relevance file to score: finite local maps for every method, in ``subset``, then
    ``max_examples`` of them (first, or ``select="spread"``: evenly spaced)."""
    finite = np.ones(len(rf), dtype=bool)
    for m in rf.methods:
        finite &= np.isfinite(rf.local(m)).all(axis=1)
    if subset not in (None, "all"):
        if "subset" in rf.examples:
            finite &= np.asarray(rf.examples["subset"]).astype(str) == subset
        elif rf.attrs.get("subset") != subset:
            raise ParameterError(f"{rf.path} has no /examples/subset column and explains subset "
                                 f"{rf.attrs.get('subset')!r}, not {subset!r}; use subset='all'")
    rows = np.flatnonzero(finite)
    if rows.size == 0:
        raise ParameterError(f"no example of subset {subset!r} in {rf.path} was explained by every method "
                             f"{list(rf.methods)}")
    if max_examples is not None and max_examples < rows.size:
        if select == "first":
            rows = rows[:max_examples]
        else:
            rows = rows[np.unique(np.rint(np.linspace(0, rows.size - 1, max_examples)).astype(np.int64))]
    return rows


def _method_attrs(path, method) -> dict:
    with h5py.File(path, "r") as f:
        return dict(f["relevance"][method].attrs)


@dataclass
class Notes:
    """The scored notes of a relevance file: what every step reads."""

    rows: np.ndarray                 # rows of the relevance file (K,)
    x: np.ndarray                    # network inputs (K, C, T)
    local: Dict[str, np.ndarray]     # method → local maps (K, C)
    explained: np.ndarray            # explained class (K,)
    pred: np.ndarray                 # predicted class (K,)
    groups: np.ndarray               # label (or prediction) per note, for the per-class tables (K,)
    grouped_by: str
    file_names: list
    modulation: Optional[np.ndarray]  # true rate (Hz) or None without ground truth
    paths: Any                       # path table of the input channels
    methods: list
    classes: list
    attrs: Dict[str, dict]           # method → attributes of /relevance/<method>
    sub: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))   # randomisation notes (indices)


def read_notes(relevance: PathLike, model: LoadedModel, model_dir: PathLike, *, subset: Optional[str] = "test",
               max_examples: Optional[int] = None, select: str = "first",
               randomisation_examples: Optional[int] = None) -> Notes:
    """The scored notes (module docstring) of ``relevance``, checked to explain ``model`` (read from
    ``model_dir``); the settings are :class:`~.stage.QualityConfig`'s."""
    with RelevanceFile(relevance) as rf:
        if rf.attrs.get("model_checksum") not in (None, model.checksum):
            raise ModelError(f"{relevance} explains the model with checksum {rf.attrs['model_checksum'][:12]}…, "
                             f"not {model_dir} ({model.checksum[:12]}…); explain this model first")
        if rf.attrs.get("out_of_fold"):
            raise ModelError(f"{relevance} holds out-of-fold relevance (each note from its own fold model), which "
                             f"one network cannot be checked against; explain one model (a fold model, "
                             f"{model_dir}/folds/<k>, on its test notes) and check that")
        rows = select_examples(rf, subset=subset, max_examples=max_examples, select=select)
        methods, paths = list(rf.methods), rf.paths
        labels = rf.labels
        modulation = rf.examples.get("modulation_hz")
        modulation = (np.asarray(modulation, dtype=float)[rows]
                      if modulation is not None and (np.asarray(paths["order"]) == 2).any() else None)
        notes = Notes(
            rows=rows, x=rf.features(rows), local={m: rf.local(m)[rows].astype(np.float64) for m in methods},
            explained=np.asarray(rf.examples["explained"], dtype=np.int64)[rows],
            pred=np.asarray(rf.examples["pred"], dtype=np.int64)[rows],
            groups=np.asarray(labels if labels is not None else rf.examples["pred"], dtype=np.int64)[rows],
            grouped_by="label" if labels is not None else "pred",
            file_names=[str(v) for v in np.asarray(rf.examples.get("file_name", rows))[rows]],
            modulation=modulation, paths=paths, methods=methods, classes=list(rf.classes),
            attrs={m: _method_attrs(relevance, m) for m in methods})
    K = rows.size
    R = min(K, randomisation_examples or K)
    # the randomisation notes: the first R scored notes, or R spread over them like the notes themselves
    notes.sub = (np.arange(R) if select == "first"
                 else np.unique(np.rint(np.linspace(0, K - 1, R)).astype(np.int64)))
    return notes
