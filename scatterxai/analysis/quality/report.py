"""``quality.md`` and the quality figures from the results of :func:`~.stage.quality`.

Rankings.  The *overall* ranking orders methods by the mean of three ranks: deletion (AOPC above random
orders, the mean of its ranks under every baseline), randomisation sensitivity (Spearman ρ of the absolute
maps averaged over the cascading steps, lower first) and localisation.  The *per-baseline* ranking orders
methods by AOPC above random orders under one baseline.  The ranking **depends on the baseline** when two
methods change order between two baselines and each order is clear: the difference exceeds twice its
standard error, sqrt(se_a² + se_b²), under both (a conservative, unpaired test).
"""

from __future__ import annotations

import itertools
import os
from typing import Dict, List, Mapping, Optional

import numpy as np

from ..._util.fs import atomic_path
from ..._util.markdown import md_table
from ..._util.types import PathLike
from ...explain.base import method_title
from .groundtruth_report import groundtruth_markdown
from .metrics import RANDOMISATION_THRESHOLD, SIMILARITIES, ranks

__all__ = ["quality_markdown", "ranking", "baseline_ranking", "baseline_dependence", "failures", "failure_sentence",
           "ranking_table", "save_figures", "FIGURES", "CHECKS", "MEASURE_TITLES"]

FIGURES = {"fig_curves": "quality_curves.png", "fig_randomisation": "quality_randomisation.png"}
#: check → how a failure reads (deletion and insertion are named with their baseline)
CHECKS = {
    "deletion": "deletion (AOPC not above the strongest control)",
    "insertion": "insertion (AUC not above the strongest control)",
    "model_randomisation": f"model randomisation (abs-map ρ ≥ {RANDOMISATION_THRESHOLD} with every weight random "
                           f"but the input normalisation)",
    "label_randomisation": f"data randomisation (abs-map ρ ≥ {RANDOMISATION_THRESHOLD} with the permuted-label "
                           f"network)",
    "ground_truth": "ground truth (localisation not above chance)",
    "localisation_vs_controls": "localisation vs controls (not above the strongest control map)",
    "tracking": "within-class tracking (peak λ2 does not follow the rate within classes better than the controls)",
}
#: similarity measure → table title
MEASURE_TITLES = {"spearman_abs": "Spearman ρ of abs(map)", "spearman": "Spearman ρ of the signed maps",
                  "ssim": "SSIM of abs(map) on the (λ1, λ2) grid"}


def _title(m: str) -> str:
    return method_title(m)


def _num(v, fmt="{:.2f}", none="–") -> str:
    return none if v is None or not np.isfinite(v) else fmt.format(v)


def _baselines(result: Mapping) -> List[str]:
    first = next(iter(result.values()))
    return list(first.get("baselines") or {first.get("baseline", "training_mean"): first})


def _at_step(entry: Mapping, measure: str = SIMILARITIES[0], step: Optional[str] = None) -> Optional[dict]:
    """{"mean", "ci_low", "ci_high"} of a cascading step (default: the check's step)."""
    r = entry.get("randomisation")
    if not r:
        return None
    i = r["steps"].index(step or r.get("check_step") or r["steps"][-1])
    return {k: r[measure][k][i] for k in ("mean", "ci_low", "ci_high")}


def _cascade_rho(entry: Mapping) -> Optional[float]:
    """Mean abs-map ρ over the cascading steps after "original": low when the maps follow every layer."""
    r = entry.get("randomisation")
    if not r:
        return None
    v = np.array([np.nan if s is None else s for s in r[SIMILARITIES[0]]["mean"][1:]], dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else None


def baseline_ranking(result: Mapping, baseline: str, key: str = "aopc") -> Dict[str, int]:
    """method → rank by ``key`` ("aopc" or "insertion_auc") above random orders under ``baseline`` (1 = best)."""
    methods = list(result)
    return dict(zip(methods, ranks([result[m]["baselines"][baseline][key + "_above_random"] for m in methods])))


def ranking(result: Mapping) -> list:
    """Methods ordered by the mean of their deletion rank (mean over baselines), randomisation rank and
    localisation rank (module docstring); ties by AOPC above random under the first baseline.

    Returns
    -------
    list of (method, mean rank, {criterion: rank})
    """
    methods = list(result)
    nan = float("nan")
    deletion = np.mean([[baseline_ranking(result, b)[m] for m in methods] for b in _baselines(result)], axis=0)
    crit = {
        "aopc": deletion,
        "randomisation": ranks([_cascade_rho(result[m]) if _cascade_rho(result[m]) is not None else nan
                                for m in methods], higher_is_better=False),
        "localisation": ranks([result[m]["localisation"] if result[m]["localisation"] is not None else nan
                               for m in methods]),
    }
    if all(result[m]["localisation"] is None for m in methods):
        del crit["localisation"]
    rows = [(m, float(np.mean([c[i] for c in crit.values()])), {k: float(c[i]) for k, c in crit.items()})
            for i, m in enumerate(methods)]
    return sorted(rows, key=lambda r: (r[1], -result[r[0]]["aopc_above_random"]))


def baseline_dependence(result: Mapping, key: str = "aopc") -> dict:
    """Whether the ranking by ``key`` above random ("aopc" or "insertion_auc") depends on the baseline.

    Returns
    -------
    dict
        ``order`` ({baseline: methods best first}), ``best`` ({baseline: method}), ``reversals`` (list of
        (a, b, baseline where a is clearly above b, baseline where b is clearly above a)), ``depends``.
    """
    methods, baselines = list(result), _baselines(result)
    value = {b: {m: result[m]["baselines"][b][key + "_above_random"] for m in methods} for b in baselines}
    se = {b: {m: result[m]["baselines"][b][key + "_above_random_se"] for m in methods} for b in baselines}
    order = {b: sorted(methods, key=lambda m: -np.nan_to_num(value[b][m], nan=-np.inf)) for b in baselines}

    def clear(b, m1, m2):   # m1 clearly above m2 under b
        d, s = value[b][m1] - value[b][m2], np.hypot(se[b][m1], se[b][m2])
        return bool(np.isfinite(d) and np.isfinite(s) and d > 2 * s)

    reversals = [(a, c, b1, b2) for a, c in itertools.permutations(methods, 2) for b1, b2 in
                 itertools.permutations(baselines, 2) if clear(b1, a, c) and clear(b2, c, a) and a < c]
    return {"order": order, "best": {b: o[0] for b, o in order.items()}, "reversals": reversals,
            "depends": bool(reversals)}


def _failed(entry: Mapping) -> List[str]:
    """The checks ``entry`` fails, deletion and insertion with their baselines."""
    out = []
    for check in CHECKS:
        ok = entry["checks"].get(check)
        if isinstance(ok, Mapping):
            bad = [b for b, v in ok.items() if v is False]
            if bad:
                out.append(f"{check} ({', '.join(bad)})")
        elif ok is False:
            out.append(check)
    return out


def failures(result: Mapping) -> Dict[str, list]:
    """check (deletion and insertion per baseline: "deletion (zero)") → methods that fail it."""
    out: Dict[str, list] = {}
    for check in CHECKS:
        for m, e in result.items():
            ok = e["checks"].get(check)
            items = ok.items() if isinstance(ok, Mapping) else [(None, ok)]
            for b, v in items:
                if v is False:
                    out.setdefault(check if b is None else f"{check} ({b})", []).append(m)
    return out


def failure_sentence(result: Mapping) -> str:
    """Which method fails which check, deletion and insertion with the baselines they fail under."""
    failed = {m: _failed(e) for m, e in result.items()}
    if not any(failed.values()):
        measured = [CHECKS[c].split(" (")[0] for c in CHECKS
                    if any(result[m]["checks"].get(c) is not None for m in result)]
        return (f"Every method passes every check measured here ({', '.join(measured)}; deletion and insertion "
                f"under every baseline: {', '.join(_baselines(result))}).")
    parts = [f"{_title(m)} fails {'; '.join(f.replace('_', ' ') for f in fs)}" for m, fs in failed.items() if fs]
    passing = [_title(m) for m, fs in failed.items() if not fs]
    tail = f".  {', '.join(passing)} pass{'es' if len(passing) == 1 else ''} every check" if passing else ""
    legend = "; ".join(f"{c.replace('_', ' ')}: {CHECKS[c].split(' (', 1)[1].rstrip(')')}" for c in CHECKS)
    return ".  ".join(parts) + tail + f" (baselines in parentheses; fails = {legend})."


def _ci(d: Optional[Mapping], fmt="{:.2f}") -> str:
    if not d:
        return "–"
    return f"{_num(d['mean'], fmt)} [{_num(d['ci_low'], fmt)}, {_num(d['ci_high'], fmt)}]"


def ranking_table(result: Mapping) -> str:
    """The overall ranking: one row per method (module docstring)."""
    baselines = _baselines(result)
    rows = []
    for pos, (m, _, rk) in enumerate(ranking(result), start=1):
        e = result[m]
        lr = e.get("label_randomisation") or {}
        rows.append((pos, _title(m), f"{rk['aopc']:.3g}",
                     f"{_num(_cascade_rho(e))} ({rk['randomisation']:g})", _ci(_at_step(e)),
                     _num((_at_step(e, step=(e.get('randomisation') or {'steps': ['']})['steps'][-1]) or {})
                          .get("mean")),
                     _num((lr.get(SIMILARITIES[0]) or {}).get("mean")), _num((lr.get("ssim") or {}).get("mean")),
                     (f"{_num(e['localisation'], '{:.0%}')} ({rk['localisation']:g})" if "localisation" in rk
                      else "–"),
                     ", ".join(_failed(e)) or "none"))
    header = ("rank", "method", f"deletion rank (mean over {len(baselines)} baselines)",
              "abs-map ρ, mean over cascade (rank)", "abs-map ρ, input normalisation only [95 % CI over seeds]",
              "abs-map ρ, all layers random", "abs-map ρ, permuted labels", "SSIM, permuted labels",
              "localisation (rank)", "fails")
    return md_table(header, rows, align="rl" + "r" * 7 + "l")


def baseline_table(result: Mapping, key: str = "aopc") -> str:
    """Per baseline: each method's score above random orders ± s.e. (rank) and its margin over the strongest
    control [bootstrap 95 % CI]; the controls' own scores above random in the last rows."""
    baselines = _baselines(result)
    mode = "deletion" if key == "aopc" else "insertion"
    rows = []
    for m, e in result.items():
        cells = []
        for b in baselines:
            f = e["baselines"][b]
            vs = f[mode + "_vs_control"]
            cells += [f"{_num(f[key + '_above_random'])} ± {_num(f[key + '_above_random_se'])} "
                      f"({baseline_ranking(result, b, key)[m]})",
                      f"{_ci(vs['margin'])} vs {vs['control']}"]
        rows.append((_title(m), *cells))
    first = next(iter(result.values()))
    for c in first["baselines"][baselines[0]]["controls"]:
        rows.append((f"control: {c}", *itertools.chain.from_iterable(
            (_num(first["baselines"][b]["controls"][c][key] - first["baselines"][b][key + "_random"]), "")
            for b in baselines)))
    header = ["method"] + list(itertools.chain.from_iterable(
        (f"{b}: {'AOPC' if key == 'aopc' else 'insertion AUC'} − random (rank)", f"{b}: margin over strongest control")
        for b in baselines))
    return md_table(header, rows)


def dependence_sentence(result: Mapping) -> str:
    """Says plainly whether the deletion ranking depends on the baseline (module docstring)."""
    dep = baseline_dependence(result, "aopc")
    best = "; ".join(f"{b}: {_title(m)}" for b, m in dep["best"].items())
    if not dep["depends"]:
        return (f"The deletion ranking does not depend on the baseline here: no two methods change order "
                f"beyond twice their standard error between baselines (best AOPC above random — {best}).")
    pairs = "; ".join(f"{_title(a)} above {_title(c)} under {b1} but below it under {b2}"
                      for a, c, b1, b2 in dep["reversals"][:6])
    more = f" (and {len(dep['reversals']) - 6} more)" if len(dep["reversals"]) > 6 else ""
    return (f"**The deletion ranking depends on the baseline**: {pairs}{more} (each order beyond twice its "
            f"standard error; best AOPC above random — {best}).  A deletion verdict holds only for the "
            f"baseline it names.")


def _class_table(result: Mapping, classes) -> str:
    rows = []
    for m, e in result.items():
        pc = e["per_class"]
        cells = [f"{_num(a)} ({_num(r)})" for a, r in zip(pc["aopc"]["mean"], pc["aopc_random"]["mean"])]
        rows.append((_title(m), f"{_num(e['aopc'])} ({_num(e['aopc_random'])})", *cells))
    return md_table(("method", "all", *classes), rows)


def _rho_table(result: Mapping, key: str) -> str:
    methods = [m for m in result if result[m].get(key)]
    if not methods:
        return ""
    steps = result[methods[0]][key]["steps"]
    rows = []
    for m in methods:
        r = result[m][key]
        rows.append((_title(m), *[f"{_num(a)} [{_num(lo)}, {_num(hi)}] / {_num(sg)} / {_num(ss)}" for a, lo, hi, sg, ss
                                  in zip(r["spearman_abs"]["mean"], r["spearman_abs"]["ci_low"],
                                         r["spearman_abs"]["ci_high"], r["spearman"]["mean"], r["ssim"]["mean"])]))
    return md_table(("method", *steps), rows)


def _intro(result: Mapping, settings: Mapping) -> List[str]:
    cfg = settings["config"]
    ks = settings["steps_paths"]
    n_seeds = len(settings.get("randomisation_seeds") or [cfg.get("randomisation_seed", 0)])
    controls = settings.get("controls") or []
    return [f"{settings['n_examples']} notes (subset {cfg['subset']}, {cfg['select']} "
            f"{'all' if cfg['max_examples'] is None else cfg['max_examples']} of those every method explained; "
            f"model randomisation on {settings['n_randomisation']} of them, {n_seeds} seeds per step).  Deletion "
            f"replaces the top paths (all frames) by a baseline in {len(ks) - 1} steps up to {ks[-1]} of "
            f"{settings['n_paths']} paths ({100 * cfg['max_fraction']:.0f} %); insertion puts them back into the "
            f"all-baseline input.  Baselines: **zero** (silence through the same scattering and normalisation), "
            f"**training_mean** (each path's mean training input), **shuffle** (the note's own path, frames in a "
            f"random order: same values, no temporal order), **mu** (the input of each path's mean energy) — "
            f"scored here: {', '.join(settings.get('baselines') or [cfg.get('baseline')])}.  References: "
            f"{cfg['n_random']} seeded random orders per note"
            + (f" and the control maps {', '.join(controls)}" if controls else "") + ".  AOPC = mean drop of the "
            "explained logit over the steps; insertion AUC = mean gain; margins are per note (± standard "
            "error over random orders; [bootstrap 95 % CI] over the strongest control).  Randomisation "
            "(Adebayo et al. 2018) compares a note's local map from the randomised and the trained network by "
            "the Spearman ρ of the absolute maps (the published measure; the checks use it), the ρ of the "
            "signed maps and the SSIM of the absolute maps on the (λ1, λ2) grid; [95 % CI] over seeds.", ""]


def _permuted_line(perm: Optional[Mapping]) -> List[str]:
    if not perm:
        return []
    acc = _num(perm.get("train_accuracy"), "{:.0%}")
    target = (perm.get("settings") or {}).get("target_accuracy")
    reached = perm.get("reached_target")
    status = ("" if target is None else f" (target {target:.0%}: " + ("reached" if reached else
                                                                       "**not reached**") + ")")
    notes = f" {perm['n_training']} training notes," if perm.get("n_training") else ""
    return [f"Data randomisation: a network trained on permuted labels of{notes} {perm['epochs']} epochs, "
            f"training accuracy on its permuted labels {acc}{status}.", ""]


def quality_markdown(result: Mapping, settings: Mapping, figures: Optional[Mapping[str, str]] = None, *,
                     heading: str = "#") -> str:
    """The quality report: settings, the overall ranking and failures, deletion and insertion per baseline
    with controls, per-class AOPC, randomisation tables."""
    h2 = heading + "#"
    first = next(iter(result.values()))
    lines = [f"{heading} Is the explanation right? Quality checks", "", *_intro(result, settings),
             *_permuted_line(settings.get("permuted_model")),
             ranking_table(result), "", failure_sentence(result), "", dependence_sentence(result), "",
             "Rank: mean of the ranks in parentheses.  Deletion and insertion pass under a baseline when the "
             "lower end of the bootstrap interval of the margin over the strongest control is above 0; ground "
             f"truth when localisation exceeds its chance level ({_num(first['rate_band_chance'], '{:.1%}')}) by "
             f"twice its standard error; randomisation when the abs-map ρ stays below {RANDOMISATION_THRESHOLD} "
             f"(model randomisation: at the input-normalisation-only step, every weight random but the trained "
             f"input BatchNorm).", ""]
    if figures:
        for key, alt in (("fig_curves", "deletion and insertion curves against random orders"),
                         ("fig_randomisation", "rank correlation per randomisation step")):
            if key in figures:
                lines += [f"![{alt}]({figures[key]})", ""]
    lines += groundtruth_markdown(result, settings, heading=h2)
    for key, title in (("aopc", "Deletion per baseline"), ("insertion_auc", "Insertion per baseline")):
        lines += [f"{h2} {title}", "", baseline_table(result, key), ""]
    lines += [f"{h2} AOPC per class under {first.get('baseline', 'training_mean')} (method, random in parentheses; "
              f"grouped by {settings['grouped_by']})", "", _class_table(result, settings["classes"]), ""]
    for key, title in (("randomisation", "Cascading randomisation (from the output layer down)"),
                       ("randomisation_independent", "One layer randomised at a time")):
        table = _rho_table(result, key)
        if table:
            lines += [f"{h2} {title}: abs-map ρ [95 % CI over seeds] / signed ρ / SSIM", "", table, ""]
    lines += _notes_lines(result, settings)
    return "\n".join(lines)


def _notes_lines(result: Mapping, settings: Mapping) -> List[str]:
    lines = []
    if settings.get("unregistered_methods"):
        lines += [f"Methods not registered in this installation (no randomisation check): "
                  f"{', '.join(settings['unregistered_methods'])}.", ""]
    if settings.get("per_example_input_methods"):
        lines += [f"Methods that need per-example inputs (no randomisation check): "
                  f"{', '.join(settings['per_example_input_methods'])}.", ""]
    fewer = {m: e["n_randomisation"] for m, e in result.items()
             if e.get("n_randomisation") and e["n_randomisation"] < settings["n_randomisation"]}
    if fewer:
        lines += ["Slow methods were randomised on fewer notes: "
                  + ", ".join(f"{_title(m)} {n}" for m, n in fewer.items()) + ".", ""]
    return lines


def save_figures(result: Mapping, out_dir: PathLike, *, dpi: int = 80) -> Dict[str, str]:
    """Write :data:`FIGURES` into ``out_dir``; returns {key: path}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...viz.quality import perturbation_curves, randomisation_curves

    labels = {m: _title(m) for m in result}
    written = {}
    baselines = _baselines(result)
    fig, axes = plt.subplots(2, len(baselines), figsize=(5.5 * len(baselines), 8.4), layout="constrained",
                             squeeze=False)
    for j, b in enumerate(baselines):
        per = {m: e.get("baselines", {b: e})[b] for m, e in result.items()}
        for i, mode in enumerate(("deletion", "insertion")):
            perturbation_curves(per, mode=mode, labels=labels, ax=axes[i, j])
            axes[i, j].set_title(f"{mode}, baseline {b}")
    written["fig_curves"] = _save(fig, out_dir, FIGURES["fig_curves"], dpi)
    if any(result[m].get("randomisation") for m in result):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
        for ax, kind in zip(axes, ("cascading", "independent")):
            randomisation_curves(result, kind=kind, labels=labels, threshold=RANDOMISATION_THRESHOLD, ax=ax)
        written["fig_randomisation"] = _save(fig, out_dir, FIGURES["fig_randomisation"], dpi)
    plt.close("all")
    return written


def _save(fig, out_dir, name, dpi) -> str:
    path = os.path.join(os.fspath(out_dir), name)
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=dpi)
    return path
