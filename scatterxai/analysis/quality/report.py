"""``quality.md`` and the quality figures from the results of :func:`~.stage.quality`."""

from __future__ import annotations

import os
from typing import Dict, Mapping, Optional

import numpy as np

from ..._util.fs import atomic_path
from ..._util.markdown import md_table
from ..._util.types import PathLike
from ...report.figures import RULE_TITLES
from .groundtruth_report import groundtruth_markdown
from .metrics import RANDOMISATION_THRESHOLD, ranks

__all__ = ["quality_markdown", "ranking", "failures", "save_figures", "FIGURES", "CHECKS"]

FIGURES = {"fig_curves": "quality_curves.png", "fig_randomisation": "quality_randomisation.png"}
#: check → how a failure reads
CHECKS = {
    "deletion": "deletion (AOPC not above random orders)",
    "insertion": "insertion (AUC not above random orders)",
    "model_randomisation": f"model randomisation (|ρ| ≥ {RANDOMISATION_THRESHOLD} after re-initialising every "
                           f"layer)",
    "label_randomisation": f"data randomisation (|ρ| ≥ {RANDOMISATION_THRESHOLD} with the permuted-label network)",
    "ground_truth": "ground truth (localisation not above chance)",
    "localisation_vs_controls": "localisation vs controls (not above the strongest control map)",
    "tracking": "within-class tracking (peak λ2 does not follow the rate within classes better than the controls)",
}


def _title(m: str) -> str:
    return RULE_TITLES.get(m, m)


def _num(v, fmt="{:.2f}", none="–") -> str:
    return none if v is None or not np.isfinite(v) else fmt.format(v)


def _full_rho(entry: Mapping) -> Optional[float]:
    r = entry.get("randomisation")
    return None if not r else r["abs_spearman_mean"][-1]


def _cascade_rho(entry: Mapping) -> Optional[float]:
    """Mean |ρ| over the cascading steps after "original": low when the maps follow every layer."""
    r = entry.get("randomisation")
    if not r:
        return None
    v = np.array([np.nan if s is None else s for s in r["abs_spearman_mean"][1:]], dtype=float)
    return float(np.nanmean(v)) if np.isfinite(v).any() else None


def ranking(result: Mapping) -> list:
    """Methods ordered by their mean rank over AOPC above random (higher first), randomisation
    sensitivity (mean |ρ| over the cascading steps, lower first: a method whose maps survive randomising the
    top layers ranks low even if they decorrelate at the end) and localisation (higher first); ties by AOPC
    above random.

    Returns
    -------
    list of (method, mean rank, {criterion: rank})
    """
    methods = list(result)
    nan = float("nan")
    crit = {
        "aopc": (ranks([result[m]["aopc_above_random"] for m in methods])),
        "randomisation": ranks([_cascade_rho(result[m]) if _cascade_rho(result[m]) is not None else nan
                                for m in methods], higher_is_better=False),
        "localisation": ranks([result[m]["localisation"] if result[m]["localisation"] is not None else nan
                               for m in methods]),
    }
    if all(result[m]["localisation"] is None for m in methods):
        del crit["localisation"]
    rows = [(m, float(np.mean([c[i] for c in crit.values()])), {k: int(c[i]) for k, c in crit.items()})
            for i, m in enumerate(methods)]
    return sorted(rows, key=lambda r: (r[1], -result[r[0]]["aopc_above_random"]))


def failures(result: Mapping) -> Dict[str, list]:
    """check → methods that fail it (checks that were not measured are left out)."""
    return {check: [m for m in result if result[m]["checks"].get(check) is False] for check in CHECKS}


def failure_sentence(result: Mapping) -> str:
    fails = {c: ms for c, ms in failures(result).items() if ms}
    if not fails:
        measured = [CHECKS[c].split(" (")[0] for c in CHECKS
                    if any(result[m]["checks"].get(c) is not None for m in result)]
        return f"Every method passes every check measured here ({', '.join(measured)})."
    parts = [f"{', '.join(_title(m) for m in ms)} fail{'s' if len(ms) == 1 else ''} {CHECKS[c]}"
             for c, ms in fails.items()]
    passing = [m for m in result if not any(m in ms for ms in fails.values())]
    tail = (f"; {', '.join(_title(m) for m in passing)} pass{'es' if len(passing) == 1 else ''} every check"
            if passing else "")
    return "; ".join(parts) + tail + "."


def ranking_table(result: Mapping) -> str:
    rows = []
    for pos, (m, _, rk) in enumerate(ranking(result), start=1):
        e = result[m]
        fails = [c.replace("_", " ") for c, ok in e["checks"].items() if ok is False]
        rows.append((pos, _title(m),
                     f"{_num(e['aopc_above_random'])} ± {_num(e['aopc_above_random_se'])} ({rk['aopc']})",
                     f"{_num(e['insertion_auc_above_random'])} ± {_num(e['insertion_auc_above_random_se'])}",
                     f"{_num(_cascade_rho(e))} ({rk['randomisation']})", _num(_full_rho(e)),
                     _num(e["label_randomisation_abs_spearman"]),
                     (f"{_num(e['localisation'], '{:.0%}')} ({rk['localisation']})" if "localisation" in rk
                      else "–"),
                     _num(e["rate_band_share"], "{:.0%}"),
                     ", ".join(fails) or "none"))
    header = ("rank", "method", "AOPC − random (rank)", "insertion AUC − random",
              "abs(ρ), mean over cascade (rank)", "abs(ρ), all layers random", "abs(ρ), permuted labels",
              "localisation (rank)", "rate-band share", "fails")
    return md_table(header, rows, align="rl" + "r" * 7 + "l")


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
    r = {m: result[m][key] for m in methods}
    rows = [(_title(m), *[f"{_num(a)} ± {_num(s)} ({_num(sg)})" for a, s, sg in
                          zip(r[m]["abs_spearman_mean"], r[m]["abs_spearman_std"], r[m]["spearman_mean"])])
            for m in methods]
    return md_table(("method", *steps), rows)


def quality_markdown(result: Mapping, settings: Mapping, figures: Optional[Mapping[str, str]] = None, *,
                     heading: str = "#") -> str:
    """The quality report: settings, ranking table and failures, per-class AOPC, randomisation tables."""
    cfg = settings["config"]
    classes = settings["classes"]
    ks = settings["steps_paths"]
    perm = settings.get("permuted_model")
    h2 = heading + "#"
    lines = [f"{heading} Is the explanation right? Quality checks", "",
             f"{settings['n_examples']} notes (subset {cfg['subset']}, {cfg['select']} "
             f"{'all' if cfg['max_examples'] is None else cfg['max_examples']} of those every method explained; "
             f"randomisation on {settings['n_randomisation']} of them).  Deletion replaces the top paths "
             f"(all frames) by the baseline \"{cfg['baseline']}\" in {len(ks) - 1} steps up to "
             f"{ks[-1]} of {settings['n_paths']} paths ({100 * cfg['max_fraction']:.0f} %); insertion puts them "
             f"back into the all-baseline input; reference: {cfg['n_random']} seeded random orders per note.  "
             f"AOPC = mean drop of the explained logit over the steps; insertion AUC = mean gain; both are "
             f"given as the mean per-note margin over the random orders ± its standard error.  ρ: Spearman rank "
             f"correlation of a note's local maps from the randomised and the trained network; |ρ| per note "
             f"(a map that only changes sign keeps its structure).", ""]
    if perm:
        lines += [f"Data randomisation: a network trained {perm['epochs']} epochs on permuted labels (same data, "
                  f"seed and settings; training accuracy {_num(perm['train_accuracy'], '{:.0%}')}).", ""]
    lines += [ranking_table(result), "", failure_sentence(result), "",
              "Rank: mean of the ranks in parentheses (AOPC above random; randomisation sensitivity = low mean "
              "|ρ| over the cascading steps fc2 … input_bn; ground-truth localisation).  A check passes when the mean "
              "per-note margin exceeds twice its standard error (deletion, insertion, ground truth: "
              "localisation above the chance level "
              f"{_num(next(iter(result.values()))['rate_band_chance'], '{:.1%}')}), or when |ρ| stays below "
              f"{RANDOMISATION_THRESHOLD} (randomisation).", ""]
    if figures:
        for key, alt in (("fig_curves", "deletion and insertion curves against random orders"),
                         ("fig_randomisation", "rank correlation per randomisation step")):
            if key in figures:
                lines += [f"![{alt}]({figures[key]})", ""]
    lines += groundtruth_markdown(result, settings, heading=h2)
    lines += [f"{h2} AOPC per class (method, random in parentheses; grouped by {settings['grouped_by']})", "",
              _class_table(result, classes), ""]
    for key, title in (("randomisation", "Cascading randomisation (from the output layer down), |ρ| mean ± std "
                                         "(signed ρ mean)"),
                       ("randomisation_independent", "One layer randomised at a time, |ρ| mean ± std (signed ρ mean)")):
        table = _rho_table(result, key)
        if table:
            lines += [f"{h2} {title}", "", table, ""]
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
    return "\n".join(lines)


def save_figures(result: Mapping, out_dir: PathLike, *, dpi: int = 80) -> Dict[str, str]:
    """Write :data:`FIGURES` into ``out_dir``; returns {key: path}."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...viz.quality import perturbation_curves, randomisation_curves

    labels = {m: _title(m) for m in result}
    written = {}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for ax, mode in zip(axes, ("deletion", "insertion")):
        perturbation_curves(result, mode=mode, labels=labels, ax=ax)
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
