"""Scores of the quality checks — pure numpy (no torch).

Definitions (``docs/analysis.md``, "Is the explanation right?"; where the literature leaves room, the choice
below is ours):

relevance order
    Paths sorted by decreasing local relevance (signed: the most positive evidence first); ties are broken
    by a seeded random key, never by path index (which would favour the S1 paths, listed first).
deletion / insertion steps
    k_j = round(j / n_steps · max_fraction · C) paths, j = 0 … n_steps (k_0 = 0).  Deletion replaces the first
    k_j paths of an order (all frames) by the baseline; insertion starts from the all-baseline input and
    puts back the first k_j paths of the note.
AOPC (Samek et al. 2017)
    mean over j = 0 … n_steps of f(x) − f(x_{k_j}), f the explained logit (the j = 0 term is 0).  Higher:
    the order finds what the decision rests on sooner.
insertion AUC
    mean over j = 0 … n_steps of f(x̃_{k_j}) − f(x̃_0), x̃_0 the all-baseline input: the logit gained by
    inserting the top paths (a Riemann sum of the area under the insertion curve over the fraction axis,
    divided by its length, measured from the curve's start).
rank correlation
    Spearman ρ between two maps of the same note (average ranks for ties; NaN for a constant map, 1 for
    two identical maps, constant ones included: an unchanged map has kept everything).
map similarity (randomisation; Adebayo et al. 2018, "Sanity checks for saliency maps")
    Per note, between a map of the randomised (or permuted-label) network and the trained network's map:
    ``spearman_abs`` — Spearman ρ of the absolute local maps |R| (the published measure, the primary one:
    a map that only changes sign keeps its structure); ``spearman`` — ρ of the signed maps; ``ssim`` —
    structural similarity (scikit-image's ``structural_similarity``, 7 × 7 uniform window, or the largest
    odd window that fits) of the absolute local maps laid on the (λ1, λ2) grid (rows λ1, column 0 the S1
    paths, columns 1… λ2), each divided by its maximum (data range 1); cells without a path are 0 in both
    images and left out of the mean of the SSIM image (as are the borders skimage crops).
seed interval
    Randomisation is redrawn with several seeds; a step's value is the mean over seeds and notes, its
    interval the 95 % t-interval of the per-seed means (the spread due to the random draw, for these
    notes); ``seed_min`` / ``seed_max`` are the extreme per-seed means.
margin over a control
    Per note, a method's score minus a control's (random orders: their mean for the note); the control
    reported is the *strongest*, the one with the highest mean score; the interval is a percentile
    bootstrap over notes (2,000 resamples, seeded).
rate-band share
    Σ max(R, 0) over second-order paths with |log2(λ2 / f_m)| ≤ 1 octave, divided by Σ max(R, 0) over all
    second-order paths (local maps); its chance level, for a map spread evenly, is the share of
    second-order paths inside the band (:func:`rate_band_chance`), which is also the chance level of the
    localisation score (the probability that a random second-order path lies in the band).
checks
    A method passes *deletion* (*insertion*) under a baseline when the lower end of the bootstrap interval
    of its per-note margin over the strongest control (random orders and, when given, control maps) is
    above 0; *ground truth* when the per-note margin of localisation over chance has a mean above twice its
    standard error (:func:`margin_passes`, a one-sided test at ≈ 2.5 %); the *randomisation* checks when
    the mean Spearman ρ of the absolute maps of the trained and of the randomised (or permuted-label)
    network stays below :data:`RANDOMISATION_THRESHOLD` (the maps then depend on the weights).
"""

from __future__ import annotations

import warnings
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import scipy.stats
from numpy.typing import ArrayLike

from ...errors import ParameterError
from ...maps.grid import PathsLike, path_columns

__all__ = ["relevance_order", "random_orders", "step_counts", "aopc", "insertion_auc", "spearman_rows",
           "rate_band_share", "rate_band_chance", "margin_passes", "mean_std", "ranks", "RANDOMISATION_THRESHOLD",
           "RATE_BAND_OCTAVES", "SIMILARITIES", "map_similarity", "ssim_rows", "seed_summary", "bootstrap_interval",
           "strongest_control"]

#: mean ρ at or above which a method fails a randomisation check
RANDOMISATION_THRESHOLD = 0.5
#: half-width of the band around the true modulation rate, in octaves
RATE_BAND_OCTAVES = 1.0


def relevance_order(local: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Paths by decreasing relevance: (K, C) local maps → (K, C) path indices; ties in seeded random order.

    Parameters
    ----------
    local : np.ndarray [shape=(K, C)]
        Finite local maps.
    seed : int
        Seed of the tie-breaking keys (note k uses the stream ``(seed, k)``).
    """
    local = np.asarray(local, dtype=float)
    if local.ndim != 2:
        raise ParameterError(f"local must have shape (K, C), got {local.shape}")
    if not np.isfinite(local).all():
        raise ParameterError("local maps contain NaN or inf; select the examples every method explained")
    out = np.empty(local.shape, dtype=np.int64)
    for k, row in enumerate(local):
        tie = np.random.default_rng([seed, k]).random(row.size)
        out[k] = np.lexsort((tie, -row))
    return out


def random_orders(n_notes: int, n_paths: int, n_orders: int, *, seed: int = 0) -> np.ndarray:
    """Seeded random path orders: (n_notes, n_orders, n_paths); note k uses the stream ``(seed, k)``, so a
    note's random orders do not depend on which other notes are scored."""
    out = np.empty((n_notes, n_orders, n_paths), dtype=np.int64)
    for k in range(n_notes):
        rng = np.random.default_rng([seed, k])
        for i in range(n_orders):
            out[k, i] = rng.permutation(n_paths)
    return out


def step_counts(n_paths: int, n_steps: int, max_fraction: float) -> np.ndarray:
    """Numbers of replaced paths k_j = round(j / n_steps · max_fraction · C), j = 0 … n_steps: (n_steps + 1,)."""
    if not 0 < max_fraction <= 1:
        raise ParameterError(f"max_fraction must lie in (0, 1], got {max_fraction!r}")
    ks = np.rint(np.linspace(0.0, max_fraction * n_paths, n_steps + 1)).astype(np.int64)
    if np.any(np.diff(ks) <= 0):
        raise ParameterError(f"{n_steps} steps up to {max_fraction:g} of {n_paths} paths repeat a step; use "
                             f"fewer steps or more paths")
    return ks


def aopc(logits_curve: np.ndarray) -> np.ndarray:
    """AOPC of deletion curves: (..., n_steps + 1) explained logits, step 0 unperturbed → (...,)."""
    c = np.asarray(logits_curve, dtype=float)
    return (c[..., :1] - c).mean(axis=-1)


def insertion_auc(logits_curve: np.ndarray) -> np.ndarray:
    """Insertion AUC: (..., n_steps + 1) explained logits, step 0 all-baseline → mean gain over step 0."""
    c = np.asarray(logits_curve, dtype=float)
    return (c - c[..., :1]).mean(axis=-1)


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman ρ between matching rows of two (K, C) arrays → (K,) (NaN where a row is constant)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2:
        raise ParameterError(f"maps must be two arrays of the same shape (K, C), got {a.shape} and {b.shape}")
    ra = scipy.stats.rankdata(a, axis=1)
    rb = scipy.stats.rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    num = (ra * rb).sum(axis=1)
    den = np.sqrt((ra ** 2).sum(axis=1) * (rb ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return np.where((a == b).all(axis=1), 1.0, rho)


#: per-note similarities of two maps (module docstring), the first one the primary
SIMILARITIES = ("spearman_abs", "spearman", "ssim")


def _ssim_window(shape) -> int:
    """skimage's 7 × 7 window, or the largest odd size that fits both image sides (at least 3)."""
    side = min(7, *shape)
    return side if side % 2 else side - 1


def ssim_rows(a: np.ndarray, b: np.ndarray, table: PathsLike) -> np.ndarray:
    """SSIM of the absolute maps on the (λ1, λ2) grid, per note: (K, C), (K, C) → (K,).

    Each map is |R| divided by its maximum (an all-zero map stays 0), laid on :func:`~scatterxai.maps.grid_layout`'s
    grid with empty cells 0; the SSIM image (data range 1) is averaged over the cells that hold a path,
    without the borders skimage crops.  1 for identical maps; NaN when the grid is smaller than 3 × 3.
    """
    from skimage.metrics import structural_similarity

    from ...maps.grid import grid_layout
    a, b = np.abs(np.asarray(a, dtype=float)), np.abs(np.asarray(b, dtype=float))
    if a.shape != b.shape or a.ndim != 2:
        raise ParameterError(f"maps must be two arrays of the same shape (K, C), got {a.shape} and {b.shape}")
    ga, _, _ = grid_layout(a / np.maximum(a.max(axis=1, keepdims=True), np.finfo(float).tiny), table)
    gb, _, _ = grid_layout(b / np.maximum(b.max(axis=1, keepdims=True), np.finfo(float).tiny), table)
    valid = np.isfinite(ga[0])
    win = _ssim_window(valid.shape)
    out = np.full(a.shape[0], np.nan)
    if win < 3:
        return out
    pad = (win - 1) // 2
    inner = np.zeros_like(valid)
    inner[pad:valid.shape[0] - pad, pad:valid.shape[1] - pad] = True
    keep = valid & inner
    ga, gb = np.nan_to_num(ga), np.nan_to_num(gb)
    for k in range(a.shape[0]):
        if np.array_equal(ga[k], gb[k]):
            out[k] = 1.0
            continue
        _, image = structural_similarity(ga[k], gb[k], win_size=win, data_range=1.0, full=True)
        out[k] = float(image[keep].mean()) if keep.any() else np.nan
    return out


def map_similarity(maps: np.ndarray, reference: np.ndarray, table: Optional[PathsLike] = None) -> Dict[str, np.ndarray]:
    """Every :data:`SIMILARITIES` measure between matching rows of two (K, C) local maps → {name: (K,)}.

    ``table`` (the path table) places the maps on the grid for SSIM; without it SSIM is NaN."""
    maps, reference = np.asarray(maps, dtype=float), np.asarray(reference, dtype=float)
    out = {"spearman_abs": spearman_rows(np.abs(maps), np.abs(reference)),
           "spearman": spearman_rows(maps, reference)}
    out["ssim"] = ssim_rows(maps, reference, table) if table is not None else np.full(maps.shape[0], np.nan)
    return out


def seed_summary(values: np.ndarray, *, bounds: tuple = (-1.0, 1.0)) -> Dict[str, float]:
    """Summary of a statistic redrawn with several seeds: values (n_seeds, K) → ``{"mean", "ci_low",
    "ci_high", "seed_min", "seed_max", "std", "n_seeds", "n"}`` (module docstring: *seed interval*, clipped
    to the statistic's ``bounds``; ``std`` over notes and seeds; NaN values are left out)."""
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ParameterError(f"values must have shape (n_seeds, K), got {v.shape}")
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per_seed = np.nanmean(v, axis=1)
    per_seed = per_seed[np.isfinite(per_seed)]
    finite = v[np.isfinite(v)]
    nan = float("nan")
    if not per_seed.size:
        return {"mean": nan, "ci_low": nan, "ci_high": nan, "seed_min": nan, "seed_max": nan, "std": nan,
                "n_seeds": 0, "n": 0}
    mean = float(per_seed.mean())
    half = (float(scipy.stats.t.ppf(0.975, per_seed.size - 1) * per_seed.std(ddof=1) / np.sqrt(per_seed.size))
            if per_seed.size > 1 else nan)
    return {"mean": mean, "ci_low": max(mean - half, bounds[0]), "ci_high": min(mean + half, bounds[1]),
            "seed_min": float(per_seed.min()),
            "seed_max": float(per_seed.max()), "std": float(finite.std()), "n_seeds": int(per_seed.size),
            "n": int(finite.size)}


def bootstrap_interval(values: ArrayLike, *, n_boot: int = 2000, level: float = 0.95,
                       seed: int = 0) -> Dict[str, float]:
    """Mean of per-note values and its percentile bootstrap interval over notes
    (:func:`scatterxai.maps.tracking.bootstrap_mean_ci`) → ``{"mean", "ci_low", "ci_high", "n"}`` (NaN values
    left out; NaN interval with fewer than 2 values)."""
    from ...maps.tracking import bootstrap_mean_ci
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    nan = float("nan")
    if v.size < 2:
        return {"mean": float(v.mean()) if v.size else nan, "ci_low": nan, "ci_high": nan, "n": int(v.size)}
    lo, hi = bootstrap_mean_ci(v, n_boot=n_boot, level=level, seed=seed)
    return {"mean": float(v.mean()), "ci_low": lo, "ci_high": hi, "n": int(v.size)}


def strongest_control(scores: np.ndarray, controls: Mapping[str, np.ndarray], *, seed: int = 0) -> dict:
    """A method's per-note scores (K,) against per-note control scores {name: (K,)}: the control with the
    highest mean score and the margin over it → ``{"control", "margin": bootstrap_interval(...), "passes"}``
    (``passes``: the interval's lower end is above 0; None without 2 finite margins)."""
    if not controls:
        raise ParameterError("strongest_control needs at least one control")
    means = {name: float(np.nanmean(c)) for name, c in controls.items()}
    name = max(means, key=lambda n: (np.nan_to_num(means[n], nan=-np.inf), n))
    margin = bootstrap_interval(np.asarray(scores, float) - np.asarray(controls[name], float), seed=seed)
    passes = None if not np.isfinite(margin["ci_low"]) else bool(margin["ci_low"] > 0)
    return {"control": name, "control_mean": means[name], "margin": margin, "passes": passes}


def _band(table, modulation_hz, octaves: float):
    cols = path_columns(table)
    s2 = cols["order"] == 2
    if not s2.any():
        raise ParameterError("the path table has no second-order paths: no modulation band to score")
    f_m = np.asarray(modulation_hz, dtype=float)
    valid = np.isfinite(f_m) & (f_m > 0)
    lam2 = cols["lambda2_hz"]
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = np.abs(np.log2(lam2[None, :] / np.where(valid, f_m, 1.0)[:, None]))
    in_band = s2[None, :] & (dist <= octaves + 1e-12)
    return s2, in_band, valid


def rate_band_share(local: np.ndarray, table: PathsLike, modulation_hz: np.ndarray, *,
                    octaves: float = RATE_BAND_OCTAVES) -> np.ndarray:
    """Share of positive second-order relevance within ±``octaves`` of the true modulation rate.

    Parameters
    ----------
    local : np.ndarray [shape=(K, C)]
    table : PathTable or mapping of path columns
    modulation_hz : array [shape=(K,)]
        True rate (Hz); NaN or ≤ 0 marks notes without ground truth.

    Returns
    -------
    np.ndarray [shape=(K,)] in [0, 1]; NaN without ground truth, without a second-order path in the band
    or without positive S2 relevance.
    """
    local = np.asarray(local, dtype=float)
    if local.ndim != 2 or np.shape(modulation_hz) != (local.shape[0],):
        raise ParameterError(f"local must be (K, C) and modulation_hz (K,), got {local.shape} and "
                             f"{np.shape(modulation_hz)}")
    s2, in_band, valid = _band(table, modulation_hz, octaves)
    valid &= in_band.any(axis=1)
    pos = np.clip(local, 0, None)
    total = pos[:, s2].sum(axis=1)
    inside = np.where(in_band, pos, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid & (total > 0), inside / np.where(total > 0, total, 1.0), np.nan)


def rate_band_chance(table: PathsLike, modulation_hz: np.ndarray, *, octaves: float = RATE_BAND_OCTAVES) -> np.ndarray:
    """Share of second-order paths inside each note's band (K,): the rate-band share of an even map and
    the probability that a random second-order path is localised (NaN without ground truth, and where no
    second-order path lies in the band: the scattering cannot resolve that rate)."""
    s2, in_band, valid = _band(table, modulation_hz, octaves)
    n = in_band.sum(axis=1)
    return np.where(valid & (n > 0), n / s2.sum(), np.nan)


def margin_passes(margin: ArrayLike) -> Optional[bool]:
    """Whether per-note margins have a mean above twice their standard error (None without 2 finite
    values)."""
    m = np.asarray(margin, dtype=float)
    m = m[np.isfinite(m)]
    if m.size < 2:
        return None
    return bool(m.mean() > 2 * m.std(ddof=1) / np.sqrt(m.size))


def mean_std(values: ArrayLike) -> Dict[str, float]:
    """``{"mean", "std", "n"}`` of the finite values (std with ddof = 0; NaN when there are none)."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(v.size)}


def ranks(values: Sequence[float], *, higher_is_better: bool = True) -> np.ndarray:
    """Competition ranks (1 = best; NaN values last, sharing the last rank)."""
    v = np.asarray(values, dtype=float)
    key = np.where(np.isfinite(v), -v if higher_is_better else v, np.inf)
    return np.array([1 + int(np.sum(key < x)) for x in key], dtype=np.int64)
