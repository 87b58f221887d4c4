"""Guidance for small studies: when data count as small, and warnings when a class has too few notes.

**Small data** (:func:`is_small`): fewer than :data:`SMALL_STUDY` labelled recordings (distinct files; the
windows of one file and its augmented copies are one recording).  Below it, the test part of one 6:2:2
split holds fewer than 100 recordings: one recording moves the accuracy by more than a point and the 95 %
interval of an accuracy near 90 % is wider than ±6 points, and it is tested once; cross-validation
(``--folds 5``) tests every recording once, with five models, and gives the spread.  The paper's network
(2.07 M parameters on S1+S2) is sized for SOL-PMT's 5,564 notes; below the threshold ``train`` suggests
the ``small`` preset.  The synthetic demo corpus (1,789 notes) and SOL-PMT are not small.

**Too few notes** (:data:`MIN_NOTES`): with n notes of a class in a part, one note moves that class's
accuracy by 100/n points; a class with fewer than 5 validation or test notes (a step of more than 20
points), or fewer than 10 training notes, gets a warning naming the part and the count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Mapping, Optional, Sequence, Union

import numpy as np

from .._util.log import logger

if TYPE_CHECKING:
    from ..features.store import FeatureFile
    from .arch import Arch
    from .finetune import Pretrained

__all__ = ["SMALL_STUDY", "MIN_NOTES", "is_small", "recordings", "n_recordings", "class_counts", "count_warnings",
           "split_guidance"]

#: studies with fewer labelled recordings than this are small (module docstring)
SMALL_STUDY = 500
#: fewest notes of a class per part before a warning
MIN_NOTES = {"training": 10, "validation": 5, "test": 5}


def is_small(n_recordings: int) -> bool:
    """Whether a study of ``n_recordings`` labelled recordings is small (< :data:`SMALL_STUDY`)."""
    return int(n_recordings) < SMALL_STUDY


def recordings(examples: Mapping[str, np.ndarray], rows: Optional[np.ndarray] = None) -> np.ndarray:
    """A recording key per row (its ``file_name``; augmented copies and windows share their file's) of
    ``rows`` (default all), augmented rows left out [shape=(k,), object]."""
    names = np.asarray(examples["file_name"]).astype(str)
    rows = np.arange(len(names)) if rows is None else np.asarray(rows, np.int64)
    if "augmented" in examples:
        rows = rows[np.asarray(examples["augmented"])[rows] == 0]
    return names[rows]


def n_recordings(ff: FeatureFile) -> int:
    """Labelled recordings of a features file (distinct files; augmented copies not counted)."""
    rows = np.arange(len(ff)) if "label" in ff.examples else np.zeros(0, np.int64)
    return len(set(recordings(ff.examples, rows).tolist()))


def class_counts(examples: Mapping[str, np.ndarray], labels: np.ndarray, rows: np.ndarray,
                 n_classes: int) -> np.ndarray:
    """Distinct recordings per class among ``rows`` (augmented copies and extra windows not counted)
    [shape=(n_classes,), int64]."""
    rows = np.asarray(rows, np.int64)
    if "augmented" in examples:
        rows = rows[np.asarray(examples["augmented"])[rows] == 0]
    names = np.asarray(examples["file_name"]).astype(str)[rows]
    out = np.zeros(n_classes, np.int64)
    for c in range(n_classes):
        out[c] = len(set(names[labels[rows] == c].tolist()))
    return out


def count_warnings(counts: Mapping[str, Sequence[int]], classes: Sequence[str], *, where: str = "") -> list:
    """One message naming the classes with fewer notes than :data:`MIN_NOTES` in each part (empty list when
    every class has enough).

    Parameters
    ----------
    counts : mapping part → counts per class
        Parts among "training", "validation", "test".
    classes : sequence of str
    where : str
        What the counts are of (e.g. "fold 2"); default the split.
    """
    parts = []
    for part, n in counts.items():
        low = [f"{c} {int(k)}" for c, k in zip(classes, n) if k < MIN_NOTES.get(part, 0)]
        if low:
            parts.append(f"{part} ({', '.join(low)}; fewer than {MIN_NOTES[part]})")
    if not parts:
        return []
    return [f"{where or 'the split'}: few notes of some classes — " + "; ".join(parts)
            + ": with n notes, one note moves a class's accuracy by 100/n points"]


def split_guidance(ff: FeatureFile, parts: Dict[str, np.ndarray], *, arch: Union[None, str, Arch] = None,
                   init: Optional[Pretrained] = None) -> None:
    """Log warnings for a single split: classes with too few notes per part, and, for a small study,
    the suggestion of cross-validation and of the small network."""
    labels = ff.labels
    counts = {p: class_counts(ff.examples, labels, rows, len(ff.classes)) for p, rows in parts.items()
              if len(rows)}
    for message in count_warnings(counts, ff.classes):
        logger.warning("warning: %s", message)
    n = n_recordings(ff)
    if is_small(n):
        arch_name = getattr(arch, "name", arch) or "paper"
        hint = "; a smaller network fits it better (--arch small)" if arch_name == "paper" and init is None else ""
        logger.warning("warning: %d recordings is a small study (fewer than %d): one 6:2:2 split tests %d of them, "
                       "once; cross-validation (scatterxai train --folds 5) tests every one%s", n, SMALL_STUDY,
                       int(sum(counts.get("test", [0]))), hint)
