"""Statistics of relevance maps on the (λ1, λ2) plane — pure numpy (no torch).

Every function takes arrays with leading batch axes and a path table: a
:class:`scatterxai.scattering.PathTable`, or any mapping with the columns ``order, lambda1_hz, lambda2_hz,
n1, n2`` (e.g. the ``/paths`` group of an exported HDF5 file, or ``LoadedModel.paths``).

Definitions
-----------
top-n aggregation (paper eq. 13)
    For each example, the indices of the n largest values of its local map (over all paths) are marked 1;
    the indicator maps are summed over the examples of each class.
kurtosis
    ``scipy.stats.kurtosis`` (Fisher, biased estimator, as in the companion code) of the values of each
    local map; summaries report mean ± standard deviation (ddof = 0) overall and per class.
localisation
    Ground truth check: an example is localised when the second-order path of highest local relevance has
    λ2 within ±``octaves`` of the true modulation rate, |log2(λ2 / f_m)| ≤ octaves.  Examples without a
    (finite, positive) modulation rate are excluded (NaN).
misses
    Where the top second-order relevance of a non-localised example lies instead
    (:func:`localisation_misses`): at λ2 ≈ the note's F0 (within ±½ octave: the beating of neighbouring
    partials inside one wide λ1 filter, a pitch/timbre cue rather than a modulation), more than
    ``octaves`` above the true rate (harmonics of a non-sinusoidal pattern, sharp re-attacks, noise
    texture), or more than ``octaves`` below it.
S1 share
    Share of relevance magnitude on first-order paths: Σ_{S1, t}|R| / Σ_{all, t}|R| per example
    (``mode="abs"``); ``mode="positive"`` uses the positive part max(R, 0) instead.
"""

from __future__ import annotations

import warnings
from typing import Dict, Optional

import numpy as np
import scipy.stats

from .._util.validate import check_int, check_positive_int
from ..errors import ParameterError
from .grid import PathsLike, _check_last_axis, path_columns

__all__ = ["topn_aggregate", "map_kurtosis", "peak_modulation_hz", "localisation", "localisation_misses",
           "s1_share", "class_summary", "LOCALISATION_OCTAVES"]

#: tolerance of the ground-truth localisation check, in octaves on each side
LOCALISATION_OCTAVES = 1.0


def _labels(labels, K: int, n_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (K,) or (K and labels.dtype.kind not in "iu"):
        raise ParameterError(f"labels must be an integer array of shape ({K},), got shape {labels.shape} "
                             f"and dtype {labels.dtype}")
    n_classes = check_positive_int("n_classes", n_classes)
    if K and (labels.min() < 0 or labels.max() >= n_classes):
        raise ParameterError(f"labels must lie in [0, {n_classes}), got values in "
                             f"[{labels.min()}, {labels.max()}]")
    return labels.astype(np.int64)


def topn_aggregate(local: np.ndarray, labels: np.ndarray, n_classes: int, n: int = 5) -> np.ndarray:
    """Class-wise top-n indicator sum (paper eq. 13).

    Parameters
    ----------
    local : np.ndarray [shape=(K, C)]
        Local maps.
    labels : array of int [shape=(K,)]
        Class of each example.
    n_classes : int
    n : int
        Number of largest values marked per example (ties: the lower path index first).

    Returns
    -------
    np.ndarray [shape=(n_classes, C), int64]
        How many examples of each class have each path among their n largest values.
    """
    local = np.asarray(local, dtype=float)
    if local.ndim != 2:
        raise ParameterError(f"local must have shape (K, C), got {local.shape}")
    K, C = local.shape
    labels = _labels(labels, K, n_classes)
    n = check_int("n", n, low=1, high=C)
    if np.isnan(local).any():
        raise ParameterError("local maps contain NaN")
    top = np.argsort(-local, axis=1, kind="stable")[:, :n]
    indicator = np.zeros((K, C), np.int64)
    np.put_along_axis(indicator, top, 1, axis=1)
    out = np.zeros((n_classes, C), np.int64)
    np.add.at(out, labels, indicator)
    return out


def map_kurtosis(local: np.ndarray) -> np.ndarray:
    """Fisher kurtosis of each local map's values: (..., C) → (...,) (NaN for a constant map)."""
    local = np.asarray(local, dtype=float)
    if local.ndim < 1 or local.shape[-1] < 2:
        raise ParameterError(f"local must have shape (..., C) with C >= 2, got {local.shape}")
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        # a constant map has no kurtosis (NaN); scipy also warns about it
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.asarray(scipy.stats.kurtosis(local, axis=-1, fisher=True, bias=True), dtype=float)


def peak_modulation_hz(local: np.ndarray, table: PathsLike) -> np.ndarray:
    """λ2 (Hz) of the second-order path with the highest local relevance: (K, C) → (K,)."""
    local = np.asarray(local, dtype=float)
    cols = path_columns(table)
    _check_last_axis(local, len(cols["order"]), "local")
    s2 = np.flatnonzero(cols["order"] == 2)
    if s2.size == 0:
        raise ParameterError("the path table has no second-order paths: no modulation rate to locate")
    return cols["lambda2_hz"][s2][np.argmax(local[..., s2], axis=-1)].astype(float)


def localisation(local: np.ndarray, table: PathsLike, modulation_hz: np.ndarray, *, octaves: float = 1.0) -> np.ndarray:
    """Whether the top second-order relevance lies within ±``octaves`` of the true modulation rate.

    Parameters
    ----------
    local : np.ndarray [shape=(K, C)]
    table : PathTable or mapping of path columns
    modulation_hz : array [shape=(K,)]
        True modulation rate (Hz); NaN, non-positive or infinite values mark examples without ground truth.
    octaves : float
        Tolerance in octaves on each side.

    Returns
    -------
    np.ndarray [shape=(K,), float64]
        1.0 (localised), 0.0 (not), NaN (no ground truth: excluded from scores, see :func:`class_summary`).
    """
    local = np.asarray(local, dtype=float)
    if local.ndim != 2:
        raise ParameterError(f"local must have shape (K, C), got {local.shape}")
    f_m = np.asarray(modulation_hz, dtype=float)
    if f_m.shape != (local.shape[0],):
        raise ParameterError(f"modulation_hz must have shape ({local.shape[0]},), got {f_m.shape}")
    if not (isinstance(octaves, (int, float, np.floating)) and octaves > 0):
        raise ParameterError(f"octaves must be a positive number, got {octaves!r}")
    peak = peak_modulation_hz(local, table)
    valid = np.isfinite(f_m) & (f_m > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        hit = np.abs(np.log2(peak / np.where(valid, f_m, 1.0))) <= octaves + 1e-12
    return np.where(valid, hit.astype(float), np.nan)


def localisation_misses(local: np.ndarray, table: PathsLike, modulation_hz: np.ndarray,
                        f0_hz: Optional[np.ndarray] = None, *, octaves: float = 1.0) -> Dict[str, int]:
    """Where the top second-order relevance lies for the examples that :func:`localisation` misses.

    Parameters
    ----------
    local : np.ndarray [shape=(K, C)]
    table : PathTable or mapping of path columns
    modulation_hz : array [shape=(K,)]
        True modulation rate (Hz); examples without one (NaN, ≤ 0) are left out.
    f0_hz : array [shape=(K,)], optional
        Fundamental frequency of each note (Hz), for the ``near_f0`` count.
    octaves : float
        The localisation tolerance.

    Returns
    -------
    dict
        ``n`` (examples with ground truth), ``localised``, ``misses``, and among the misses:
        ``near_f0`` (λ2 within ±½ octave of F0; 0 without ``f0_hz``), then, of the others, ``above``
        (more than ``octaves`` above the rate) and ``below``.
    """
    local = np.asarray(local, dtype=float)
    hit = localisation(local, table, modulation_hz, octaves=octaves)   # validates the arguments
    valid = np.isfinite(hit)
    miss = valid & (hit == 0)
    peak = peak_modulation_hz(local, table)
    near_f0 = np.zeros(len(hit), dtype=bool)
    if f0_hz is not None:
        f0 = np.asarray(f0_hz, dtype=float)
        if f0.shape != hit.shape:
            raise ParameterError(f"f0_hz must have shape {hit.shape}, got {f0.shape}")
        with np.errstate(divide="ignore", invalid="ignore"):
            near_f0 = np.isfinite(f0) & (f0 > 0) & (np.abs(np.log2(peak / np.where(f0 > 0, f0, 1.0))) <= 0.5)
    other = miss & ~near_f0
    above = peak > np.asarray(modulation_hz, dtype=float)   # a miss is more than `octaves` off either way
    return {"n": int(valid.sum()), "localised": int((hit == 1).sum()), "misses": int(miss.sum()),
            "near_f0": int((miss & near_f0).sum()), "above": int((other & above).sum()),
            "below": int((other & ~above).sum())}


def s1_share(R: np.ndarray, table: PathsLike, *, mode: str = "abs") -> np.ndarray:
    """Share of relevance on first-order paths, per example.

    Parameters
    ----------
    R : np.ndarray [shape=(..., C, T)]
        Relevance (a local map can be passed as ``local[..., None]``).
    table : PathTable or mapping of path columns
    mode : {"abs", "positive"}
        Sum |R| (default) or the positive part max(R, 0).

    Returns
    -------
    np.ndarray [shape=(...,)]
        Σ_{S1, t} / Σ_{all, t} (NaN where the total is 0); the S2 share is 1 minus this.
    """
    R = np.asarray(R, dtype=float)
    cols = path_columns(table)
    if R.ndim < 2 or R.shape[-2] != len(cols["order"]):
        raise ParameterError(f"R must have shape (..., C, T) with C = {len(cols['order'])}, got {R.shape}")
    if mode == "abs":
        mag = np.abs(R)
    elif mode == "positive":
        mag = np.clip(R, 0, None)
    else:
        raise ParameterError(f"mode must be 'abs' or 'positive', got {mode!r}")
    per_path = mag.sum(axis=-1)
    total = per_path.sum(axis=-1)
    s1 = per_path[..., cols["order"] == 1].sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, s1 / total, np.nan)


def class_summary(values: np.ndarray, labels: np.ndarray, n_classes: int) -> dict:
    """Mean ± standard deviation (ddof = 0) of per-example values, overall and per class; NaN excluded.

    Parameters
    ----------
    values : array [shape=(K,)]
        E.g. kurtosis, localisation (1/0/NaN: the mean is the localisation score) or S1 share.
    labels : array of int [shape=(K,)]
    n_classes : int

    Returns
    -------
    dict
        ``mean``, ``std``, ``n`` (counted examples) overall, and ``per_class``: a dict of arrays
        [shape=(n_classes,)] with the same keys (NaN where a class has no counted example).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ParameterError(f"values must have shape (K,), got {values.shape}")
    labels = _labels(labels, len(values), n_classes)

    def stats(v):
        v = v[np.isfinite(v)]
        return (float(v.mean()), float(v.std()), int(v.size)) if v.size else (np.nan, np.nan, 0)

    mean, std, n = stats(values)
    per = np.array([stats(values[labels == c]) for c in range(n_classes)], dtype=float).reshape(n_classes, 3)
    return {"mean": mean, "std": std, "n": n,
            "per_class": {"mean": per[:, 0], "std": per[:, 1], "n": per[:, 2].astype(np.int64)}}
