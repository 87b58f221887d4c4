"""Does a map follow the note?  Within-class tracking, permutation p-values, bootstrap intervals — pure numpy.

Localisation asks whether a map points near a note's true modulation rate; when a class's rates span less
than the tolerance, knowing the class is enough.  Tracking asks whether, **among notes of one class**, the
map points higher when the note's rate (or f0) is higher — which a map that knows only the class cannot do.

pointed frequency (:func:`pointed_hz`)
    What a map points at, per note: ``"lambda2"`` over the second-order paths, ``"lambda1"`` over all
    paths; ``how="peak"``: the λ of the path of highest local relevance; ``how="centroid"``: the
    relevance-weighted log-centroid 2^(Σ w_p log2 λ_p / Σ w_p) with w = max(R, 0) (NaN without positive
    relevance).
within-class tracking (:func:`within_class_tracking`)
    Per class: Spearman ρ between the notes' true values and their pointed frequencies (average ranks for
    ties; notes with a non-finite or non-positive value left out; NaN with fewer than
    :data:`MIN_NOTES` notes or when either side is constant — a map that points at one λ for a whole
    class cannot track, by construction).  p-value: one-sided permutation test of ρ > 0 (the true values
    permuted among the class's notes), p = (1 + #{ρ_perm ≥ ρ}) / (1 + n_perm), so its floor is
    1 / (1 + n_perm).  Pooled over classes: ρ̄ = Σ_c n_c ρ_c / Σ_c n_c over the classes with a finite ρ,
    with a stratified permutation test (values permuted within each class).
bootstrap intervals
    :func:`bootstrap_mean_ci`: percentile interval of a mean over notes (notes resampled with replacement);
    for a margin, pass the per-note differences (a paired bootstrap).  :func:`tracking_margin_ci`: the
    percentile interval of ρ̄(a) − ρ̄(b) for two maps of the same notes, notes resampled within each class.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.stats

from .._util.validate import check_choice, check_float, check_int
from ..errors import ParameterError
from .grid import PathsLike, _check_last_axis, path_columns

__all__ = ["pointed_hz", "spearman", "within_class_tracking", "bootstrap_mean_ci", "tracking_margin_ci",
           "MIN_NOTES", "N_PERMUTATIONS", "N_BOOTSTRAP"]

#: fewest notes of a class for a rank correlation
MIN_NOTES = 4
#: default permutations of a tracking p-value (floor 1/1000)
N_PERMUTATIONS = 999
#: default bootstrap resamples
N_BOOTSTRAP = 1000


def pointed_hz(local: np.ndarray, table: PathsLike, *, axis: str = "lambda2", how: str = "peak") -> np.ndarray:
    """The frequency each map points at: (K, C) → (K,) Hz (see the module docstring).

    Parameters
    ----------
    local : np.ndarray [shape=(K, C)]
    table : PathTable or mapping of path columns
    axis : {"lambda2", "lambda1"}
        λ2 over the second-order paths, or λ1 over all paths.
    how : {"peak", "centroid"}
    """
    check_choice("axis", axis, ("lambda2", "lambda1"))
    check_choice("how", how, ("peak", "centroid"))
    local = np.asarray(local, dtype=float)
    if local.ndim != 2:
        raise ParameterError(f"local must have shape (K, C), got {local.shape}")
    cols = path_columns(table)
    _check_last_axis(local, len(cols["order"]), "local")
    keep = cols["order"] == 2 if axis == "lambda2" else np.ones(len(cols["order"]), dtype=bool)
    if not keep.any():
        raise ParameterError("the path table has no second-order paths: no λ2 to point at")
    lam = cols[axis + "_hz"][keep].astype(float)
    m = local[:, keep]
    if how == "peak":
        return lam[np.argmax(m, axis=1)]
    w = np.clip(m, 0, None)
    total = w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2.0 ** ((w @ np.log2(lam)) / np.where(total > 0, total, 1.0)), np.nan)


def _valid(true, pointed):
    t, p = np.asarray(true, dtype=float), np.asarray(pointed, dtype=float)
    if t.shape != p.shape or t.ndim != 1:
        raise ParameterError(f"true and pointed must be 1-D of equal length, got {t.shape} and {p.shape}")
    return np.isfinite(t) & np.isfinite(p) & (t > 0) & (p > 0)


def _centred_ranks(v: np.ndarray) -> np.ndarray:
    r = scipy.stats.rankdata(v, axis=-1)
    return r - r.mean(axis=-1, keepdims=True)


def _rho(ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """ρ between centred rank rows (broadcast over leading axes); NaN where a side is constant."""
    num = (ra * rb).sum(axis=-1)
    den = np.sqrt((ra ** 2).sum(axis=-1) * (rb ** 2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def spearman(true: np.ndarray, pointed: np.ndarray, *, n_perm: int = N_PERMUTATIONS,
             seed: Union[int, Sequence[int]] = 0) -> dict:
    """Spearman ρ of one group of notes with its one-sided permutation p-value (permutations drawn from
    ``default_rng(seed)``).

    Returns
    -------
    dict
        ``rho``, ``p`` (NaN when ρ is), ``n`` (notes with finite positive values on both sides).
    """
    n_perm = check_int("n_perm", n_perm, low=1)
    ok = _valid(true, pointed)
    t, p = np.asarray(true, dtype=float)[ok], np.asarray(pointed, dtype=float)[ok]
    nan = float("nan")
    if t.size < MIN_NOTES:
        return {"rho": nan, "p": nan, "n": int(t.size)}
    rt, rp = _centred_ranks(t), _centred_ranks(p)
    rho = float(_rho(rt, rp))
    if not np.isfinite(rho):
        return {"rho": nan, "p": nan, "n": int(t.size)}
    perms = np.random.default_rng(seed).permuted(np.tile(np.arange(t.size), (n_perm, 1)), axis=1)
    null = _rho(rt[perms], rp[None, :])
    return {"rho": rho, "p": float((1 + np.sum(null >= rho - 1e-12)) / (1 + n_perm)), "n": int(t.size)}


def within_class_tracking(true: np.ndarray, pointed: np.ndarray, groups: np.ndarray, n_classes: int, *,
                          n_perm: int = N_PERMUTATIONS, seed: int = 0) -> dict:
    """Per-class and pooled Spearman ρ between true and pointed frequencies, with permutation p-values.

    Parameters
    ----------
    true, pointed : array [shape=(K,)]
        True frequency (Hz; e.g. the modulation rate or f0) and the frequency the map points at.
    groups : array of int [shape=(K,)]
        Class of each note (the true label), in [0, n_classes).
    n_classes : int
    n_perm : int
        Permutations per test.
    seed : int
        Class c permutes with the stream ``(seed, c)``; the pooled test with ``(seed, n_classes)``.

    Returns
    -------
    dict
        ``per_class``: ``{"rho", "p", "n"}`` lists over the classes; ``rho`` (pooled ρ̄), ``p`` (its stratified
        permutation p-value), ``n`` (notes in the classes with a finite ρ).
    """
    groups = np.asarray(groups)
    ok = _valid(true, pointed)
    if groups.shape != ok.shape or (groups.size and (groups.min() < 0 or groups.max() >= n_classes)):
        raise ParameterError(f"groups must have shape {ok.shape} with classes in [0, {n_classes}), got "
                             f"shape {groups.shape}")
    n_perm = check_int("n_perm", n_perm, low=1)
    t, p = np.asarray(true, dtype=float), np.asarray(pointed, dtype=float)
    per = [spearman(t[(groups == c) & ok], p[(groups == c) & ok], n_perm=n_perm, seed=[int(seed), c])
           for c in range(n_classes)]
    used = [c for c in range(n_classes) if np.isfinite(per[c]["rho"])]
    out = {"per_class": {k: [d[k] for d in per] for k in ("rho", "p", "n")}, "rho": float("nan"),
           "p": float("nan"), "n": int(sum(per[c]["n"] for c in used))}
    if not used:
        return out
    weights = np.array([per[c]["n"] for c in used], dtype=float)
    rho = float(np.dot(weights, [per[c]["rho"] for c in used]) / weights.sum())
    rng = np.random.default_rng([int(seed), n_classes])
    null = np.zeros(n_perm)
    for w, c in zip(weights, used):
        sel = (groups == c) & ok
        rt, rp = _centred_ranks(t[sel]), _centred_ranks(p[sel])
        perms = rng.permuted(np.tile(np.arange(rt.size), (n_perm, 1)), axis=1)
        null += w * _rho(rt[perms], rp[None, :])
    null /= weights.sum()
    out.update(rho=rho, p=float((1 + np.sum(null >= rho - 1e-12)) / (1 + n_perm)))
    return out


def _check_level(level) -> float:
    level = check_float("level", level, low=0, high=1, low_open=True)
    if level >= 1:
        raise ParameterError(f"level must lie in (0, 1), got {level}")
    return level


def bootstrap_mean_ci(values: np.ndarray, *, n_boot: int = N_BOOTSTRAP, level: float = 0.95,
                      seed: int = 0) -> Tuple[float, float]:
    """Percentile bootstrap interval of the mean of the finite values (notes resampled with replacement).

    Returns (NaN, NaN) without finite values, (v, v) when every value is v.
    """
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    _check_level(level)
    n_boot = check_int("n_boot", n_boot, low=1)
    if v.size == 0:
        return (float("nan"), float("nan"))
    if np.ptp(v) == 0:
        return (float(v[0]), float(v[0]))
    res = scipy.stats.bootstrap((v,), np.mean, n_resamples=n_boot, confidence_level=level, method="percentile",
                                vectorized=True, random_state=np.random.default_rng(seed))
    return (float(res.confidence_interval.low), float(res.confidence_interval.high))


def _pooled_rho(t: np.ndarray, p: np.ndarray, idx_by_class) -> np.ndarray:
    """ρ̄ of each bootstrap resample: idx_by_class = [(B, n_c) index arrays] → (B,)."""
    num, den = 0.0, 0.0
    for idx in idx_by_class:
        r = _rho(_centred_ranks(t[idx]), _centred_ranks(p[idx]))      # (B,)
        ok = np.isfinite(r)
        num = num + np.where(ok, r * idx.shape[1], 0.0)
        den = den + np.where(ok, idx.shape[1], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def tracking_margin_ci(true: np.ndarray, pointed_a: np.ndarray, pointed_b: Optional[np.ndarray],
                       groups: np.ndarray, n_classes: int, *, n_boot: int = N_BOOTSTRAP, level: float = 0.95,
                       seed: int = 0) -> Dict[str, float]:
    """Stratified bootstrap interval of ρ̄(a) (or of ρ̄(a) − ρ̄(b)) over the same notes.

    Notes with a valid value for ``a`` (and ``b``) are resampled with replacement within each class with at
    least :data:`MIN_NOTES` of them; a resample whose ρ̄ is undefined (a side constant in every class: e.g. a
    constant map) counts as ρ̄ = 0, the value of a map that does not track.

    Returns
    -------
    dict
        ``low``, ``high`` (NaN when no class qualifies).
    """
    groups = np.asarray(groups)
    t = np.asarray(true, dtype=float)
    ok = _valid(t, pointed_a) & (True if pointed_b is None else _valid(t, pointed_b))
    n_boot = check_int("n_boot", n_boot, low=1)
    _check_level(level)
    rng = np.random.default_rng(seed)
    idx = []
    for c in range(n_classes):
        members = np.flatnonzero((groups == c) & ok)
        if members.size >= MIN_NOTES:
            idx.append(members[rng.integers(members.size, size=(n_boot, members.size))])
    if not idx:
        return {"low": float("nan"), "high": float("nan")}
    diff = np.nan_to_num(_pooled_rho(t, np.asarray(pointed_a, dtype=float), idx), nan=0.0)
    if pointed_b is not None:
        diff = diff - np.nan_to_num(_pooled_rho(t, np.asarray(pointed_b, dtype=float), idx), nan=0.0)
    lo, hi = np.quantile(diff, [(1 - level) / 2, (1 + level) / 2])
    return {"low": float(lo), "high": float(hi)}
