"""Ground truth against controls: localisation, rate-band share and within-class tracking of every method,
each beside the same score of control maps, as a margin over the strongest control with a bootstrap interval.

Why.  A class's modulation rates often span less than the ±1-octave tolerance of localisation, so a map
that knows only the class localises as well as (or better than) any explanation.  Each score is therefore
computed, on the same notes, for the control maps of :mod:`scatterxai.maps.controls` — ``constant`` (the
λ2 column that localises most training notes), ``class_prior`` (the predicted class's median training
rate), ``input`` and ``standardised_input`` (the network input itself) and ``random`` — and reported as
the method's **margin over the strongest control** (the control with the highest score on those notes),
with a 95 % percentile bootstrap interval over notes.

Scores (per note, then the mean over notes):

localisation
    1 when the second-order path of highest relevance has λ2 within ±1 octave of the true rate, else 0
    (:func:`scatterxai.maps.summary.localisation`; notes whose rate no second-order path resolves are left
    out).  Margin interval: paired bootstrap of the per-note differences.
rate_band_share
    Share of positive second-order relevance within ±1 octave of the true rate
    (:func:`.metrics.rate_band_share`); margin interval as for localisation.
tracking (:mod:`scatterxai.maps.tracking`)
    Per class (true label) on the scored notes: Spearman ρ between each note's true value and the frequency
    its map points at, with a one-sided permutation p-value; pooled over classes as the note-weighted mean
    ρ̄ with a stratified permutation p-value.  Four pointers: ``rate_peak`` (λ2 of the top second-order
    path), ``rate_centroid`` (relevance-weighted log-centroid of λ2), ``f0_peak`` (λ1 of the top path),
    ``f0_centroid``.  Margin: ρ̄ − ρ̄ of the strongest control with a finite ρ̄ (constant and class-prior
    maps point at one λ per class and cannot track within it: their ρ is undefined), interval by a
    stratified bootstrap (notes resampled within each class).

Checks (added to each method's ``checks``):

``localisation_vs_controls``
    passes when the lower end of the margin's interval is above 0 (localisation beats every control).
``tracking``
    passes when the pooled rate tracking (``rate_peak``) is positive at p < :data:`ALPHA` and the lower end
    of its margin's interval over the strongest tracking control is above 0.

Notes scored: every note of the quality stage's subset that the method explained (not only the notes of
the deletion study: these scores cost no network pass), so slow methods explained on a subset are scored
on their own notes, each beside the controls on the same notes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..._util.types import PathLike
from ...errors import ParameterError
from ...maps import controls as ctl
from ...maps.grid import PathsLike
from ...maps.summary import localisation
from ...maps.tracking import (
                              N_BOOTSTRAP,
                              N_PERMUTATIONS,
                              bootstrap_mean_ci,
                              pointed_hz,
                              tracking_margin_ci,
                              within_class_tracking,
)
from . import metrics

if TYPE_CHECKING:
    import torch

    from ...features.store import FeatureFile
    from ...io.relevance import RelevanceFile
    from ...model.directory import LoadedModel

__all__ = ["SCORES", "POINTERS", "ALPHA", "note_scores", "map_tracking", "score_maps", "ground_truth_checks",
           "training_prior", "input_statistics", "ground_truth_study", "subset_rows", "stage_ground_truth"]

#: per-note scores compared with the controls
SCORES = ("localisation", "rate_band_share")
#: tracking pointer → (axis, how, ground-truth column)
POINTERS = {"rate_peak": ("lambda2", "peak", "modulation_hz"),
            "rate_centroid": ("lambda2", "centroid", "modulation_hz"),
            "f0_peak": ("lambda1", "peak", "f0_hz"), "f0_centroid": ("lambda1", "centroid", "f0_hz")}
#: significance level of the tracking check
ALPHA = 0.05


def _f(v) -> Optional[float]:
    """JSON-ready float (None for NaN)."""
    return None if v is None or not np.isfinite(v) else float(v)


def note_scores(local: np.ndarray, table: PathsLike, modulation_hz: np.ndarray) -> Dict[str, np.ndarray]:
    """Per-note localisation (1/0) and rate-band share: (K, C) → {score: (K,)}; NaN for notes without a
    rate or whose rate no second-order path resolves."""
    chance = metrics.rate_band_chance(table, modulation_hz)
    ok = np.isfinite(chance)
    return {"localisation": np.where(ok, localisation(local, table, modulation_hz), np.nan),
            "rate_band_share": np.where(ok, metrics.rate_band_share(local, table, modulation_hz), np.nan)}


def map_tracking(local: np.ndarray, table: PathsLike, truth: Mapping[str, np.ndarray], groups: np.ndarray,
                 n_classes: int, *, n_perm: int = N_PERMUTATIONS, seed: int = 0) -> Dict[str, dict]:
    """Within-class tracking of one set of maps for every pointer whose ground truth is given.

    Returns
    -------
    dict
        pointer → :func:`scatterxai.maps.tracking.within_class_tracking` result plus ``pointed_hz`` (K,).
    """
    out = {}
    for name, (axis, how, column) in POINTERS.items():
        if truth.get(column) is None:
            continue
        pointed = pointed_hz(local, table, axis=axis, how=how)
        out[name] = {**within_class_tracking(truth[column], pointed, groups, n_classes, n_perm=n_perm,
                                             seed=seed), "pointed_hz": pointed}
    return out


def _score_summary(values: np.ndarray, controls: Mapping[str, np.ndarray], *, n_boot: int, seed: int) -> dict:
    means = {c: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for c, v in controls.items()}
    finite = {c: m for c, m in means.items() if np.isfinite(m)}
    best = max(finite, key=finite.get) if finite else None
    lo, hi = bootstrap_mean_ci(values, n_boot=n_boot, seed=seed)
    out = {"value": _f(np.nanmean(values)) if np.isfinite(values).any() else None, "ci": [_f(lo), _f(hi)],
           "n": int(np.isfinite(values).sum()), "controls": {c: _f(m) for c, m in means.items()},
           "strongest_control": best, "margin": None, "margin_ci": [None, None]}
    if best is not None and out["value"] is not None:
        d = values - controls[best]
        mlo, mhi = bootstrap_mean_ci(d, n_boot=n_boot, seed=seed)
        out.update(margin=_f(np.nanmean(d)), margin_ci=[_f(mlo), _f(mhi)])
    return out


def _tracking_summary(mine: dict, ctrl: Mapping[str, dict], truth: np.ndarray, groups, n_classes, *,
                      n_boot: int, seed: int) -> dict:
    finite = {c: t["rho"] for c, t in ctrl.items() if np.isfinite(t["rho"])}
    best = max(finite, key=finite.get) if finite else None
    out = {"rho": _f(mine["rho"]), "p": _f(mine["p"]), "n": mine["n"],
           "per_class": {k: [_f(v) if k != "n" else int(v) for v in vals] for k, vals in mine["per_class"].items()},
           "controls": {c: {"rho": _f(t["rho"]), "p": _f(t["p"]),
                            "per_class": {k: [_f(v) if k != "n" else int(v) for v in vals]
                                          for k, vals in t["per_class"].items()}} for c, t in ctrl.items()},
           "strongest_control": best}
    if out["rho"] is None:
        out.update(margin=None, margin_ci=[None, None])
        return out
    other = None if best is None else ctrl[best]["pointed_hz"]
    ci = tracking_margin_ci(truth, mine["pointed_hz"], other, groups, n_classes, n_boot=n_boot, seed=seed)
    out.update(margin=_f(mine["rho"] - (finite[best] if best else 0.0)), margin_ci=[_f(ci["low"]), _f(ci["high"])])
    return out


def score_maps(maps: Mapping[str, np.ndarray], control_maps: Mapping[str, np.ndarray], table: PathsLike,
               truth: Mapping[str, Optional[np.ndarray]], groups: np.ndarray, n_classes: int, *,
               n_perm: int = N_PERMUTATIONS, n_boot: int = N_BOOTSTRAP, seed: int = 0) -> Dict[str, dict]:
    """Score maps of the same notes against control maps of those notes.

    Parameters
    ----------
    maps, control_maps : dict of str → np.ndarray [shape=(K, C)]
        Methods' and controls' local maps.
    table : PathTable or mapping of path columns
    truth : dict
        ``modulation_hz`` (K,) and optionally ``f0_hz`` (K,) (Hz; NaN: unknown).
    groups : array of int [shape=(K,)]
        Class of each note (true label) for tracking.
    n_classes : int
    n_perm, n_boot, seed : int
        Permutations per tracking test, bootstrap resamples, seed of both.

    Returns
    -------
    dict
        name → ``{"n_notes", "chance", "localisation", "rate_band_share", "tracking": {pointer: ...}}`` (see
        the module docstring; every value JSON-ready), for every map of ``maps``.
    """
    mod = np.asarray(truth["modulation_hz"], dtype=float)
    K = mod.shape[0]
    for name, m in {**maps, **control_maps}.items():
        if np.shape(m) != (K, np.shape(m)[-1]) or not np.isfinite(m).all():
            raise ParameterError(f"map {name!r} must be finite with shape ({K}, C), got {np.shape(m)}")
    c_scores = {c: note_scores(v, table, mod) for c, v in control_maps.items()}
    c_track = {c: map_tracking(v, table, truth, groups, n_classes, n_perm=n_perm, seed=seed)
               for c, v in control_maps.items()}
    chance = metrics.rate_band_chance(table, mod)
    out = {}
    for name, local in maps.items():
        s = note_scores(local, table, mod)
        t = map_tracking(local, table, truth, groups, n_classes, n_perm=n_perm, seed=seed)
        entry = {"n_notes": int(K), "chance": _f(np.nanmean(chance)) if np.isfinite(chance).any() else None}
        for score in SCORES:
            entry[score] = _score_summary(s[score], {c: v[score] for c, v in c_scores.items()}, n_boot=n_boot,
                                          seed=seed)
        entry["tracking"] = {p: _tracking_summary(t[p], {c: v[p] for c, v in c_track.items()},
                                                  np.asarray(truth[POINTERS[p][2]], dtype=float), groups,
                                                  n_classes, n_boot=n_boot, seed=seed) for p in t}
        out[name] = entry
    return out


def ground_truth_checks(entry: Optional[Mapping]) -> Dict[str, Optional[bool]]:
    """``localisation_vs_controls`` and ``tracking`` of one method's :func:`score_maps` entry (None: not
    measured — no ground truth, or rates constant within every class)."""
    if not entry:
        return {"localisation_vs_controls": None, "tracking": None}
    lo = entry["localisation"]["margin_ci"][0]
    track = entry["tracking"].get("rate_peak")
    ok_track = None
    # measurable when some map has a rank correlation (the random control has one unless the true rates are
    # constant within every class)
    if track is not None and (track["rho"] is not None or any(c["rho"] is not None
                                                              for c in track["controls"].values())):
        ok_track = bool(track["p"] is not None and track["p"] < ALPHA and track["margin_ci"][0] is not None
                        and track["margin_ci"][0] > 0)
    return {"localisation_vs_controls": None if lo is None else bool(lo > 0), "tracking": ok_track}


# ------------------------------------------------------------------------------------------- from files

def training_prior(features: Union[PathLike, FeatureFile], classes: Sequence[str],
                   table: PathsLike) -> Optional[ctl.ControlPrior]:
    """:func:`scatterxai.maps.controls.fit_prior` on the training rows of a features file (None when it has
    no ``modulation_hz``, no labels or no training rows).  ``classes``: the model's, in its order."""
    from ...model.train import open_features
    with open_features(features) as ff:
        if "modulation_hz" not in ff.examples or not ff.classes:
            return None
        sub = np.asarray(ff.examples.get("subset", np.array(["training"] * len(ff)))).astype(str)
        train = sub == "training"
        if not train.any():
            return None
        index = {c: i for i, c in enumerate(classes)}
        names = np.asarray(ff.classes)[ff.labels[train]]
        known = np.array([n in index for n in names])
        labels = np.array([index[n] for n in names[known]], dtype=np.int64)
        rates = np.asarray(ff.examples["modulation_hz"], dtype=float)[train][known]
    if not (np.isfinite(rates) & (rates > 0)).any():
        return None
    return ctl.fit_prior(rates, labels, len(classes), table)


def input_statistics(net: torch.nn.Module) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """Running mean and √(variance + eps) of a network's input BatchNorm (``net.input_bn``), as float64
    arrays; (None, None) for a network without one."""
    bn = getattr(net, "input_bn", None)
    if bn is None or getattr(bn, "running_mean", None) is None:
        return None, None
    mean = bn.running_mean.detach().cpu().numpy().astype(np.float64)
    std = np.sqrt(bn.running_var.detach().cpu().numpy().astype(np.float64) + float(bn.eps))
    return mean, std


def _mean_input(rf: RelevanceFile, rows: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Time-averaged network input of ``rows`` (sorted), read in chunks: (k, C) float64."""
    return np.concatenate([rf.features(rows[i:i + chunk]).astype(np.float64).mean(axis=-1)
                           for i in range(0, rows.size, chunk)] or [np.zeros((0, len(rf.paths["order"])))])


def ground_truth_study(rf: RelevanceFile, rows: np.ndarray, *, prior: Optional[ctl.ControlPrior],
                       input_mean: Optional[np.ndarray] = None, input_std: Optional[np.ndarray] = None,
                       n_perm: int = N_PERMUTATIONS, n_boot: int = N_BOOTSTRAP, seed: int = 0) -> Optional[dict]:
    """Every method of an open relevance file against the controls, on the ``rows`` each method explained.

    Parameters
    ----------
    rf : RelevanceFile
    rows : array of int
        Candidate rows (e.g. the test subset); each method is scored on those of them it explained.
    prior : ControlPrior or None
        Training prior of the constant and class-prior maps (:func:`training_prior`).
    input_mean, input_std : array [shape=(C,)], optional
        For the standardised-input control (:func:`input_statistics`).
    n_perm, n_boot, seed : int

    Returns
    -------
    dict or None
        ``{"methods": {method: score_maps entry}, "prior": prior fields, "rows": {method: [rows]}}``; None
        when the file has no ``modulation_hz`` (or no finite positive one in ``rows``) or no second-order path.
    """
    mod_all = rf.examples.get("modulation_hz")
    if mod_all is None or not (np.asarray(rf.paths["order"]) == 2).any():
        return None
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    rates = np.asarray(mod_all, dtype=float)[rows]
    if not (np.isfinite(rates) & (rates > 0)).any():      # e.g. real recordings: the column, but no values
        return None
    f0_all = rf.examples.get("f0_hz")
    groups_all = np.asarray(rf.labels if rf.labels is not None else rf.examples["pred"], dtype=np.int64)
    pred_all = np.asarray(rf.examples["pred"], dtype=np.int64)
    xbar = dict(zip(rows.tolist(), _mean_input(rf, rows)))
    out = {"methods": {}, "prior": None if prior is None else prior.as_dict(), "rows": {},
           "grouped_by": "label" if rf.labels is not None else "pred"}
    local = {m: rf.local(m) for m in rf.methods}
    by_rows: Dict[tuple, list] = {}
    for m in rf.methods:                        # methods explained on the same rows share their controls
        by_rows.setdefault(tuple(rows[np.isfinite(local[m][rows]).all(axis=1)].tolist()), []).append(m)
    for key, methods in by_rows.items():
        mine = np.array(key, dtype=np.int64)
        if mine.size == 0:
            continue
        truth = {"modulation_hz": np.asarray(mod_all, dtype=float)[mine],
                 "f0_hz": None if f0_all is None else np.asarray(f0_all, dtype=float)[mine]}
        cmaps = ctl.control_maps(np.stack([xbar[r] for r in key]), pred_all[mine], prior, rf.paths,
                                 input_mean=input_mean, input_std=input_std, seed=seed)
        scores = score_maps({m: local[m][mine].astype(np.float64) for m in methods}, cmaps, rf.paths, truth,
                            groups_all[mine], len(rf.classes), n_perm=n_perm, n_boot=n_boot, seed=seed)
        for m in methods:
            out["methods"][m] = scores[m]
            out["rows"][m] = list(key)
    out["methods"] = {m: out["methods"][m] for m in rf.methods if m in out["methods"]}
    return out


def subset_rows(rf: RelevanceFile, subset: Optional[str]) -> np.ndarray:
    """Rows of ``subset`` in a relevance file (all rows for None or "all", or when the file explains that
    subset only)."""
    if subset in (None, "all") or ("subset" not in rf.examples and rf.attrs.get("subset") == subset):
        return np.arange(len(rf), dtype=np.int64)
    if "subset" not in rf.examples:
        raise ParameterError(f"{rf.path} has no /examples/subset column and explains subset "
                             f"{rf.attrs.get('subset')!r}, not {subset!r}; use subset='all'")
    return np.flatnonzero(np.asarray(rf.examples["subset"]).astype(str) == subset).astype(np.int64)


def stage_ground_truth(relevance: PathLike, features: Union[PathLike, FeatureFile], model: LoadedModel, *,
                       subset: Optional[str] = "test", seed: int = 0,
                       n_perm: int = N_PERMUTATIONS, n_boot: int = N_BOOTSTRAP) -> Optional[dict]:
    """:func:`ground_truth_study` of the quality stage: every note of ``subset`` in the relevance file, the
    training prior of ``features``, the input statistics of ``model`` (a LoadedModel)."""
    from ...io.relevance import RelevanceFile
    with RelevanceFile(relevance) as rf:
        if rf.examples.get("modulation_hz") is None:
            return None
        prior = training_prior(features, rf.classes, rf.paths)
        mean, std = input_statistics(model.net)
        return ground_truth_study(rf, subset_rows(rf, subset), prior=prior, input_mean=mean, input_std=std,
                                  n_perm=n_perm, n_boot=n_boot, seed=seed)
