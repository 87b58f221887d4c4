"""Markdown of the ground-truth scores against controls (:mod:`.groundtruth`): one table of localisation and
rate-band share beside the control maps, and the within-class tracking of the rate and of f0."""

from __future__ import annotations

from typing import List, Mapping, Optional, Sequence

from ..._util.markdown import md_table
from ...explain.base import method_title
from ...maps.controls import CONTROLS
from .groundtruth import ALPHA

__all__ = ["groundtruth_markdown", "CONTROL_TITLES"]

#: control → its name in tables
CONTROL_TITLES = {"constant": "constant map", "class_prior": "class prior", "input": "input",
                  "standardised_input": "standardised input", "random": "random map"}


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def _pts(v) -> str:
    return "–" if v is None else f"{100 * v:+.1f}"


def _rho(v, p=None) -> str:
    if v is None:
        return "–"
    return f"{v:.2f}" if p is None else f"{v:.2f} ({_p(p)})"


def _p(p) -> str:
    return "–" if p is None else (f"{p:.3f}" if p >= 0.001 else f"{p:.0e}")


def _margin(d: Mapping, fmt) -> str:
    lo, hi = d["margin_ci"]
    if d.get("margin") is None:
        return "–"
    best = CONTROL_TITLES.get(d.get("strongest_control"), d.get("strongest_control") or "none")
    return f"{fmt(d['margin'])} [{fmt(lo)}, {fmt(hi)}] ({best})"


def _entries(result: Mapping) -> dict:
    return {m: e["ground_truth"] for m, e in result.items() if e.get("ground_truth")}


def _controls(entries: Mapping) -> List[str]:
    first = next(iter(entries.values()))
    return [c for c in CONTROLS if c in first["localisation"]["controls"]]


def _score_table(entries: Mapping) -> str:
    ctrl = _controls(entries)
    rows = []
    for m, e in entries.items():
        loc, share = e["localisation"], e["rate_band_share"]
        rows.append((method_title(m), loc["n"], _pct(loc["value"]),
                     *[_pct(loc["controls"][c]) for c in ctrl], _margin(loc, _pts),
                     _pct(share["value"]), *[_pct(share["controls"][c]) for c in ctrl], _margin(share, _pts)))
    titles = [CONTROL_TITLES[c] for c in ctrl]
    header = ("method", "notes", "localisation", *titles, "margin, points [95 % CI] (strongest control)",
              "rate-band share", *[f"{t} (share)" for t in titles], "share margin [95 % CI]")
    return md_table(header, rows)


def _tracking_table(entries: Mapping, pointer: str, centroid: str, classes: Sequence[str]) -> Optional[str]:
    have = {m: e for m, e in entries.items() if pointer in e["tracking"]}
    if not have:
        return None
    rows = []
    for m, e in have.items():
        t, c = e["tracking"][pointer], e["tracking"].get(centroid)
        rows.append((method_title(m), *[_rho(r, p) for r, p in zip(t["per_class"]["rho"], t["per_class"]["p"])],
                     _rho(t["rho"], t["p"]), "–" if c is None else _rho(c["rho"], c["p"]), _margin(t, _signed)))
    # the controls on the notes of the method scored on the most notes
    ref = max(have.values(), key=lambda e: e["n_notes"])
    for name, t in ref["tracking"][pointer]["controls"].items():
        c = ref["tracking"].get(centroid, {}).get("controls", {}).get(name)
        rows.append((f"control: {CONTROL_TITLES.get(name, name)}",
                     *[_rho(r, p) for r, p in zip(t["per_class"]["rho"], t["per_class"]["p"])],
                     _rho(t["rho"], t["p"]), "–" if c is None else _rho(c["rho"], c["p"]), ""))
    n = ref["tracking"][pointer]["per_class"]["n"]
    header = ("map", *[f"{k} (n = {v})" for k, v in zip(classes, n)], "pooled ρ̄ (p)", "log-centroid ρ̄ (p)",
              "margin of ρ̄ [95 % CI] (strongest control)")
    return md_table(header, rows)


def _signed(v) -> str:
    return "–" if v is None else f"{v:+.2f}"


def _prior_sentence(prior: Optional[Mapping], classes: Sequence[str]) -> str:
    if not prior:
        return "No training rates: no constant or class-prior control."
    rates = ", ".join(f"{c} {r:.1f} Hz" for c, r in zip(classes, prior["class_rate_hz"]) if r is not None)
    return (f"Constant map: λ2 = {prior['constant_hz']:.1f} Hz, the column within ±{prior['octaves']:g} octave of "
            f"the most training notes' rates ({_pct(prior['constant_training_localisation'])} of "
            f"{prior['n_training']}); class prior: the predicted class's median training rate ({rates}).")


def groundtruth_markdown(result: Mapping, settings: Mapping, *, heading: str = "##") -> List[str]:
    """Markdown lines of the ground-truth section (empty without ground truth)."""
    entries = _entries(result)
    if not entries:
        return []
    classes = settings["classes"]
    gt = settings.get("ground_truth") or {}
    by = "true label" if gt.get("grouped_by", "label") == "label" else "predicted class"
    lines = [f"{heading} Ground truth against controls", "",
             f"Every note of subset {settings['config']['subset']} that a method explained (slow methods: their "
             f"own notes), each score beside the same score of control maps on the same notes: "
             + _prior_sentence(gt.get("prior"), classes)
             + "  The input: the time-averaged network input; standardised: per path with the input "
               "BatchNorm's training statistics; random: normal noise.  Margin: the method's score minus the "
               "strongest control's (the control scoring highest on those notes), 95 % bootstrap interval over "
               "notes.  A peaked control puts all its positive relevance on one λ2 column, so its rate-band "
               "share is 0 or 1.", "", _score_table(entries), ""]
    for pointer, centroid, what in (("rate_peak", "rate_centroid", "modulation rate (λ2 of peak S2 relevance)"),
                                    ("f0_peak", "f0_centroid", "f0 (λ1 of peak relevance)")):
        table = _tracking_table(entries, pointer, centroid, classes)
        if table:
            lines += [f"Within-class tracking of the {what}: Spearman ρ per class ({by}) between each note's "
                      f"true value and the frequency its map points at (one-sided permutation p; floor 1/1000), "
                      f"pooled ρ̄ = note-weighted mean over classes with a stratified permutation p; a map "
                      f"pointing at one λ per class (constant, class prior) cannot track: –.", "", table, ""]
    lines += [f"Checks: *localisation vs controls* passes when the margin's interval lies above 0; *tracking* "
              f"when the pooled rate ρ̄ (peak) has p < {ALPHA} and its margin's interval over the strongest "
              f"tracking control lies above 0.", ""]
    return lines
