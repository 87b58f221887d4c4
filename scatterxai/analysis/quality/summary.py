"""The per-method entries of ``quality.json`` from the raw results of the quality study — pure numpy.

* :func:`faithfulness_entry` — deletion / insertion under one baseline: curves, AOPC and insertion AUC of
  the method, of the random orders and of each control map, the margins over the random orders and over
  the strongest control (:func:`~.metrics.strongest_control`), per class;
* :func:`randomisation_entry` — model randomisation: each similarity measure per step, summarised over
  seeds and notes (:func:`~.metrics.seed_summary`);
* :func:`similarity_entry` — data randomisation: each similarity measure over notes.
"""

from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

from ...maps.summary import class_summary
from . import metrics

__all__ = ["faithfulness_entry", "randomisation_entry", "similarity_entry", "per_note_scores"]


def _curve(c: Mapping, holds_key: str = "holds") -> dict:
    logit = c["logit"].reshape(-1, c["logit"].shape[-1])
    return {"logit": logit.mean(axis=0), "prob": c["prob"].reshape(logit.shape).mean(axis=0),
            "accuracy": c[holds_key].reshape(logit.shape).mean(axis=0), "logit_std": logit.std(axis=0)}


def _per_class(values: Mapping, groups, n_classes) -> dict:
    out = {}
    for key, v in values.items():
        s = class_summary(v, groups, n_classes)["per_class"]
        out[key] = {"mean": s["mean"], "std": s["std"], "n": s["n"]}
    return out


def _se(d: np.ndarray) -> float:
    return float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan")


def per_note_scores(curves: Mapping) -> dict:
    """AOPC and insertion AUC per note of one order's curves ({"deletion", "insertion"} → logit (K, S)),
    averaged over the orders of a random reference ((K, n_random, S))."""
    aopc = metrics.aopc(curves["deletion"]["logit"])
    ins = metrics.insertion_auc(curves["insertion"]["logit"])
    if aopc.ndim == 2:
        aopc, ins = aopc.mean(axis=1), ins.mean(axis=1)
    return {"aopc": aopc, "insertion_auc": ins}


def faithfulness_entry(pert: Mapping, method: str, groups: np.ndarray, n_classes: int, *,
                       controls: Optional[Mapping[str, str]] = None, seed: int = 0) -> dict:
    """Deletion / insertion of ``method`` under one baseline (:func:`~.perturb.perturbation_study` results
    ``pert``, whose ``methods`` also hold the control maps: ``controls`` maps a control's name to its key
    there).

    Returns
    -------
    dict
        ``deletion``, ``deletion_random``, ``insertion``, ``insertion_random`` (mean curves), ``aopc``,
        ``aopc_random``, ``insertion_auc``, ``insertion_auc_random`` (and ``*_std``), ``aopc_above_random``
        (mean per-note margin; ``_se`` its standard error) and ``insertion_auc_above_random``, ``controls``
        ({name: {"aopc", "insertion_auc"}}: the controls' means), ``deletion_vs_control`` and
        ``insertion_vs_control`` (:func:`~.metrics.strongest_control` over the random orders and the
        controls), ``per_class``.
    """
    fraction = pert["fraction"]
    mine, rnd = per_note_scores(pert["methods"][method]), per_note_scores(pert["random"])
    ctrl = {c: per_note_scores(pert["methods"][key]) for c, key in (controls or {}).items()}
    out = {}
    for mode in ("deletion", "insertion"):
        out[mode] = {"fraction": fraction, **_curve(pert["methods"][method][mode])}
        out[mode + "_random"] = {"fraction": fraction, **_curve(pert["random"][mode])}
    for key, name in (("aopc", "aopc"), ("insertion_auc", "insertion_auc")):
        d = mine[key] - rnd[key]
        out.update({name: float(mine[key].mean()), name + "_std": float(mine[key].std()),
                    name + "_random": float(rnd[key].mean()), name + "_random_std": float(rnd[key].std()),
                    name + "_above_random": float(d.mean()), name + "_above_random_se": _se(d)})
    out["controls"] = {c: {k: float(v[k].mean()) for k in ("aopc", "insertion_auc")} for c, v in ctrl.items()}
    for mode, key in (("deletion", "aopc"), ("insertion", "insertion_auc")):
        refs = {"random": rnd[key], **{c: v[key] for c, v in ctrl.items()}}
        out[mode + "_vs_control"] = metrics.strongest_control(mine[key], refs, seed=seed)
    out["per_class"] = _per_class({"aopc": mine["aopc"], "aopc_random": rnd["aopc"],
                                   "insertion_auc": mine["insertion_auc"],
                                   "insertion_auc_random": rnd["insertion_auc"]}, groups, n_classes)
    return out


def randomisation_entry(res: Optional[Mapping], *, check_step: Optional[str] = None) -> Optional[dict]:
    """One kind of model randomisation (:func:`~.randomise.randomisation_study`'s ``cascading`` or
    ``independent`` part) → ``{"steps", "n_seeds", <measure>: {"mean", "ci_low", "ci_high", "seed_min",
    "seed_max", "std"} → one value per step}`` (None when ``res`` is None); ``check_step`` is recorded."""
    if res is None:
        return None
    out = {"steps": list(res["steps"]), "n_seeds": int(res[metrics.SIMILARITIES[0]].shape[1])}
    if check_step is not None:
        out["check_step"] = check_step
    for name in metrics.SIMILARITIES:
        per_step = [metrics.seed_summary(v) for v in res[name]]
        out[name] = {k: [s[k] for s in per_step] for k in ("mean", "ci_low", "ci_high", "seed_min", "seed_max",
                                                           "std")}
    return out


def similarity_entry(sim: Optional[Mapping]) -> Optional[dict]:
    """Data randomisation: {measure: (K,)} → {measure: {"mean", "std", "n"}} (None when not measured)."""
    if sim is None:
        return None
    return {name: metrics.mean_std(sim[name]) for name in metrics.SIMILARITIES}
