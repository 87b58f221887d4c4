"""Numbers of a sweep (pure numpy): invariance profiles and the tracking of a physical quantity.

* **Invariance** of a representation to a factor: the Pearson correlation r between the representations
  of two notes that differ in that factor only, summarised as mean ± std over all such pairs
  (:func:`sweep_pairs`: every pair of notes of the same repeat).  r = 1: the representation does not see
  the factor (up to a gain); r ≈ 0: it sees nothing but the factor.
* **Tracking**: least-squares fit of log2(measured) on log2(true) over the notes of a sweep (e.g. the λ2
  of peak second-order relevance against the true modulation rate): slope 1 and r² 1 mean the measured
  quantity follows the physical one in octaves.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from ...errors import ParameterError
from ...maps.grid import PathsLike, _check_last_axis, path_columns

__all__ = ["sweep_pairs", "pair_correlations", "invariance", "invariance_profile", "log_fit",
           "peak_lambda1_hz", "peak_lambda2_hz", "hit_rate"]


def sweep_pairs(repeat: np.ndarray) -> np.ndarray:
    """Every pair (i, j), i < j, of notes with the same repeat number.

    Parameters
    ----------
    repeat : array of int [shape=(K,)]

    Returns
    -------
    pairs : np.ndarray [shape=(n_pairs, 2), int64]
    """
    repeat = np.asarray(repeat)
    if repeat.ndim != 1:
        raise ParameterError(f"repeat must have shape (K,), got {repeat.shape}")
    i, j = np.triu_indices(repeat.size, k=1)
    same = repeat[i] == repeat[j]
    return np.stack([i[same], j[same]], axis=1).astype(np.int64)


def pair_correlations(X: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Pearson r between the (flattened) representations of each pair of notes.

    Parameters
    ----------
    X : np.ndarray [shape=(K, ...)]
        One representation per note (flattened over the remaining axes).
    pairs : np.ndarray [shape=(n_pairs, 2)]

    Returns
    -------
    r : np.ndarray [shape=(n_pairs,), float64]
        NaN where either representation is constant.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim < 2:
        raise ParameterError(f"X must have shape (K, d, ...), got {X.shape}")
    X = X.reshape(X.shape[0], -1)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs.max() >= X.shape[0]):
        raise ParameterError(f"pairs index notes in [0, {X.shape[0]}), got values in "
                             f"[{pairs.min()}, {pairs.max()}]")
    Z = X - X.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(Z, axis=1)
    a, b = pairs[:, 0], pairs[:, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.einsum("kd,kd->k", Z[a], Z[b]) / (norm[a] * norm[b])
    return np.where((norm[a] > 0) & (norm[b] > 0), np.clip(r, -1.0, 1.0), np.nan)


def invariance(X: np.ndarray, pairs: np.ndarray) -> dict:
    """Mean and standard deviation (population) of :func:`pair_correlations`, and the number of pairs
    that entered them (pairs with a constant representation are left out)."""
    r = pair_correlations(X, pairs)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n_pairs": 0}
    return {"mean": float(r.mean()), "std": float(r.std()), "n_pairs": int(r.size)}


def invariance_profile(layers: Mapping[str, np.ndarray], repeat: np.ndarray) -> Dict[str, dict]:
    """:func:`invariance` of every layer over the pairs of :func:`sweep_pairs` (layer order kept)."""
    pairs = sweep_pairs(repeat)
    out = {}
    for name, X in layers.items():
        if np.shape(X)[0] != len(repeat):
            raise ParameterError(f"layer {name!r} has {np.shape(X)[0]} notes, repeat has {len(repeat)}")
        out[name] = invariance(X, pairs)
    return out


def log_fit(true: np.ndarray, measured: np.ndarray) -> dict:
    """Least-squares line log2(measured) = slope · log2(true) + intercept.

    Parameters
    ----------
    true, measured : array [shape=(K,)]
        Positive values (Hz); pairs with a non-finite or non-positive value are left out.

    Returns
    -------
    dict with ``slope``, ``intercept`` and ``r2`` (coefficient of determination; NaN when fewer than two
    distinct true values — slope NaN too — or when every measured value is the same — slope 0) and ``n``.
    """
    x, y = np.asarray(true, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ParameterError(f"true and measured must be 1-D of the same length, got {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    lx, ly = np.log2(x[ok]), np.log2(y[ok])
    nan = float("nan")
    if lx.size < 2 or np.ptp(lx) == 0:
        return {"slope": nan, "intercept": nan, "r2": nan, "n": int(lx.size)}
    slope, intercept = np.polyfit(lx, ly, 1)
    ss_tot = float(np.sum((ly - ly.mean()) ** 2))
    ss_res = float(np.sum((ly - (slope * lx + intercept)) ** 2))
    # measured values equal up to rounding (e.g. one λ2 centre computed two ways) explain nothing
    constant = np.ptp(ly) <= 1e-9
    return {"slope": 0.0 if constant else float(slope), "intercept": float(intercept),
            "r2": nan if constant else 1.0 - ss_res / ss_tot, "n": int(lx.size)}


def peak_lambda1_hz(local: np.ndarray, table: PathsLike) -> np.ndarray:
    """λ1 (Hz) of the path with the highest local relevance (first or second order): (K, C) → (K,)."""
    local = np.asarray(local, dtype=float)
    cols = path_columns(table)
    _check_last_axis(local, len(cols["order"]), "local")
    return cols["lambda1_hz"][np.argmax(local, axis=-1)].astype(float)


def peak_lambda2_hz(local: np.ndarray, table: PathsLike, *,
                    band_hz: Optional[Tuple[float, float]] = None) -> np.ndarray:
    """λ2 (Hz) of the second-order path with the highest local relevance: (K, C) → (K,).

    Parameters
    ----------
    local : np.ndarray [shape=(K, C)]
    table : PathTable or mapping of path columns
    band_hz : (float, float), optional
        Only the S2 paths with lo ≤ λ2 ≤ hi compete (default: all of them).
    """
    local = np.asarray(local, dtype=float)
    cols = path_columns(table)
    _check_last_axis(local, len(cols["order"]), "local")
    keep = cols["order"] == 2
    if band_hz is not None:
        lo, hi = (float(b) for b in band_hz)
        if not 0 <= lo < hi:
            raise ParameterError(f"band_hz must be (lo, hi) with 0 <= lo < hi, got {band_hz!r}")
        with np.errstate(invalid="ignore"):
            keep &= (cols["lambda2_hz"] >= lo) & (cols["lambda2_hz"] <= hi)
    s2 = np.flatnonzero(keep)
    if s2.size == 0:
        raise ParameterError(f"no second-order path has λ2 in {band_hz}: no modulation rate to locate")
    return cols["lambda2_hz"][s2][np.argmax(local[..., s2], axis=-1)].astype(float)


def hit_rate(true: np.ndarray, measured: np.ndarray, *, octaves: float = 0.5) -> float:
    """Share of notes whose measured frequency lies within ±``octaves`` of the true one."""
    x, y = np.asarray(true, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    if x.shape != y.shape or x.size == 0:
        raise ParameterError(f"true and measured must be non-empty and of the same shape, got {x.shape}, {y.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.mean(np.abs(np.log2(y / x)) <= octaves + 1e-12))
