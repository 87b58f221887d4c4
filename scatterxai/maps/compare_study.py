"""The map-comparison study of a relevance file: pairs of local maps within a class, between classes and
between methods (same note), summarised per metric — pure numpy, no torch.

Pairs are sampled by :func:`within_class_pairs` and :func:`between_class_pairs`; at most ``max_pairs`` per
class, per between-class reference and per method pair bound the number of 2-D EMDs (≈ 0.05–0.3 s each on
the paper's 1,200 paths).  Metrics: :mod:`scatterxai.maps.compare`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._util.log import logger
from ..errors import ParameterError
from .compare import _compare_distributions, _metric_names, _path_columns, to_distribution
from .grid import PathsLike

__all__ = ["Pairs", "within_class_pairs", "between_class_pairs", "summarise", "study_values", "summarise_study",
           "compare_study", "PARTS"]


# --------------------------------------------------------------------------- pairs and summaries

@dataclass(frozen=True)
class Pairs:
    """A sample of unordered pairs of rows.

    Attributes
    ----------
    index : np.ndarray [shape=(M, 2), int64]
        Row indices (i < j), sorted.
    n_available : int
        Number of pairs the sample was drawn from (M = n_available when nothing was dropped).
    """

    index: np.ndarray
    n_available: int


def _check_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu") or (labels.size and labels.min() < 0):
        raise ParameterError(f"labels must be a 1-D array of non-negative integers, got shape {labels.shape}, "
                             f"dtype {labels.dtype}")
    return labels.astype(np.int64)


def _check_max_pairs(max_pairs):
    if max_pairs is not None and (isinstance(max_pairs, bool) or not isinstance(max_pairs, (int, np.integer))
                                  or max_pairs < 0):
        raise ParameterError(f"max_pairs must be None (all pairs) or an integer >= 0, got {max_pairs!r}")


def _sample(n_available: int, max_pairs, seed: int, key: tuple) -> np.ndarray:
    """Sorted linear indices: all of range(n_available), or a seeded sample of max_pairs of them."""
    if max_pairs is None or n_available <= max_pairs:
        return np.arange(n_available, dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))
    return np.sort(rng.choice(n_available, size=max_pairs, replace=False)).astype(np.int64)


def _triangle_pairs(members: np.ndarray, linear: np.ndarray) -> np.ndarray:
    """Unrank linear indices of the pairs (a < b) of ``members`` in lexicographic order."""
    n = len(members)
    starts = np.concatenate([[0], np.cumsum(np.arange(n - 1, 0, -1))]).astype(np.int64)
    a = np.searchsorted(starts, linear, side="right") - 1
    b = linear - starts[a] + a + 1
    return np.stack([members[a], members[b]], axis=1)


def within_class_pairs(labels: np.ndarray, *, max_pairs: int | None = None, seed: int = 0) -> dict[int, Pairs]:
    """All unordered pairs of rows with the same label, or a seeded sample of at most ``max_pairs`` per class.

    Each class draws from its own seed stream (``SeedSequence(seed, spawn_key=(0, label))``), so a class's
    sample does not depend on which other classes are present.

    Returns
    -------
    dict
        label → :class:`Pairs`, for every label present.
    """
    labels = _check_labels(labels)
    _check_max_pairs(max_pairs)
    out = {}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        n = len(members)
        linear = _sample(n * (n - 1) // 2, max_pairs, seed, (0, int(c)))
        out[int(c)] = Pairs(_triangle_pairs(members, linear), n * (n - 1) // 2)
    return out


def between_class_pairs(labels: np.ndarray, *, max_pairs: int | None = None, seed: int = 0) -> Pairs:
    """All unordered pairs of rows with different labels, or a seeded sample of at most ``max_pairs``."""
    labels = _check_labels(labels)
    _check_max_pairs(max_pairs)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    blocks = [(ga, gb) for i, ga in enumerate(groups) for gb in groups[i + 1:]]
    sizes = np.array([len(ga) * len(gb) for ga, gb in blocks], dtype=np.int64)
    n_available = int(sizes.sum())
    linear = _sample(n_available, max_pairs, seed, (1,))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    index = np.empty((len(linear), 2), np.int64)
    block = np.searchsorted(starts, linear, side="right") - 1
    for k in np.unique(block):
        ga, gb = blocks[k]
        r, s = np.divmod(linear[block == k] - starts[k], len(gb))
        index[block == k] = np.stack([ga[r], gb[s]], axis=1)
    index.sort(axis=1)
    index = index[np.lexsort((index[:, 1], index[:, 0]))]
    return Pairs(index, n_available)


def summarise(values: np.ndarray) -> dict:
    """``{"mean", "std", "n_pairs"}`` of finite values (std with ddof = 0; NaN and 0 when none)."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        return {"mean": float("nan"), "std": float("nan"), "n_pairs": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "n_pairs": int(v.size)}


# --------------------------------------------------------------------------- the study

#: the parts of the study
PARTS = ("within_class", "between_class", "between_methods")


def study_values(local_maps: Mapping[str, np.ndarray], labels: np.ndarray, classes: Sequence[str], paths: PathsLike, *,
                 metrics: Sequence[str] | None = None, reference_method: str | None = None,
                 max_pairs: int | None = 100, seed: int = 0, mode: str = "positive",
                 parts: Sequence[str] = PARTS) -> dict:
    """Per-pair metric values of the comparison study (the layout of :func:`compare_study`, arrays as leaves).

    Parameters
    ----------
    local_maps : dict
        Method name → local maps [shape=(K, C)] of the same K notes (no ``"|"`` in names).
    labels : array of int [shape=(K,)]
        Class index of each note, in [0, len(classes)).
    classes : sequence of str
        Class names.
    paths : mapping or PathTable
        Path table of the C paths.
    metrics : sequence of str, optional
        Names from :data:`METRICS` (default: all).
    reference_method : str, optional
        If given, methods are compared only with it (keys ``"reference|other"``); else every unordered pair
        of methods, in the dict's order (``"a|b"`` with a before b; KL is KL(a‖b)).
    max_pairs : int or None
        Sampling bound (seeded, None = all): pairs per class within classes, pairs between classes, and
        notes per method pair.  The same pairs serve every method.
    seed : int
    mode : {"positive", "abs", "shift"}
    parts : sequence of {"within_class", "between_class", "between_methods"}
        The parts to compute (default all; the pairs of a part do not depend on the others).

    Returns
    -------
    dict
        ``{"metrics": [...], "normalisation": mode, "within_class": {method: {class: {metric: (M,)}}},
        "between_class": {method: {metric: (M,)}}, "between_methods": {"a|b": {metric: (M,)}}}`` (only the
        requested parts).
    """
    names = _metric_names(metrics)
    parts = [parts] if isinstance(parts, str) else list(parts)
    if not parts or any(p not in PARTS for p in parts):
        raise ParameterError(f"parts must be a non-empty subset of {list(PARTS)}, got {parts!r}")
    if not isinstance(local_maps, Mapping) or not local_maps:
        raise ParameterError("local_maps must be a non-empty dict method → (K, C) array")
    methods = list(local_maps)
    if any("|" in str(m) for m in methods):
        raise ParameterError(f"method names must not contain '|', got {methods}")
    C = len(_path_columns(paths)[0])
    labels = _check_labels(labels)
    K = len(labels)
    classes = list(classes)
    if K and labels.max() >= len(classes):
        raise ParameterError(f"labels must lie in [0, {len(classes)}) (one per class name), got max {labels.max()}")
    dists = {}
    for m in methods:
        arr = np.asarray(local_maps[m])
        if arr.shape != (K, C):
            raise ParameterError(f"local_maps[{m!r}] must have shape (K, C) = ({K}, {C}), got {arr.shape}")
        dists[m] = to_distribution(arr, mode=mode)
    if reference_method is None:
        method_pairs = [(a, b) for i, a in enumerate(methods) for b in methods[i + 1:]]
    elif reference_method in local_maps:
        method_pairs = [(reference_method, b) for b in methods if b != reference_method]
    else:
        raise ParameterError(f"reference_method must be one of {methods} or None, got {reference_method!r}")

    within = within_class_pairs(labels, max_pairs=max_pairs, seed=seed)
    between = between_class_pairs(labels, max_pairs=max_pairs, seed=seed)
    notes = _sample(K, max_pairs, seed, (2,))
    empty = np.zeros((0, 2), np.int64)
    n_within = sum(len(within[c].index) if c in within else 0 for c in range(len(classes)))
    logger.info("compare_study: %d methods; %d within-class pairs (of %d), %d between-class pairs (of %d), "
                "%d notes for each of %d method pairs", len(methods), n_within,
                sum(w.n_available for w in within.values()), len(between.index), between.n_available,
                len(notes), len(method_pairs))

    def values(a, b, index):
        return _compare_distributions(dists[a][index[:, 0]], dists[b][index[:, 1]], paths, names)

    out = {"metrics": names, "normalisation": mode}
    if "within_class" in parts:
        out["within_class"] = {m: {name: values(m, m, within[c].index if c in within else empty)
                                   for c, name in enumerate(classes)} for m in methods}
    if "between_class" in parts:
        out["between_class"] = {m: values(m, m, between.index) for m in methods}
    if "between_methods" in parts:
        out["between_methods"] = {f"{a}|{b}": values(a, b, np.stack([notes, notes], axis=1))
                                  for a, b in method_pairs}
    return out


def summarise_study(values: dict) -> dict:
    """Replace every array leaf of :func:`study_values` output by :func:`summarise` of it."""
    def walk(node):
        if isinstance(node, Mapping):
            return {k: walk(v) for k, v in node.items()}
        return summarise(node)

    out = {"metrics": list(values["metrics"]), "normalisation": values["normalisation"]}
    for part in PARTS:
        if part in values:
            out[part] = walk(values[part])
    return out


def compare_study(local_maps: Mapping[str, np.ndarray], labels: np.ndarray, classes: Sequence[str],
                  paths: PathsLike, *,
                  metrics: Sequence[str] | None = None, reference_method: str | None = None,
                  max_pairs: int | None = 100, seed: int = 0, mode: str = "positive") -> dict:
    """The comparison study, summarised: :func:`study_values` with ``{"mean", "std", "n_pairs"}`` leaves.

    ``n_pairs`` counts the sampled pairs whose metric is defined (maps with no mass are skipped).  Cost: the
    2-D EMD dominates, one ``ot.emd2`` per pair; with M methods, n classes and P method pairs at most
    ``max_pairs · (M · (n + 1) + P)`` of them.
    """
    return summarise_study(study_values(local_maps, labels, classes, paths, metrics=metrics,
                                        reference_method=reference_method, max_pairs=max_pairs, seed=seed,
                                        mode=mode))
