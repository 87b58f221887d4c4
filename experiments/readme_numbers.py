#!/usr/bin/env python
"""Every number the README quotes from one run, computed from that run's files — and the README checked against it.

Usage::

    python experiments/readme_numbers.py --run results/demo                     # each number, labelled
    python experiments/readme_numbers.py --run results/demo --check README.md   # README numbers that differ
    python experiments/readme_numbers.py --run results/demo --json numbers.json
    python experiments/readme_numbers.py --run results/demo --check README.md --update   # write them in

The script is a table, :data:`NUMBERS`: for each number the README quotes from the run ``make demo``
writes, *where* it is in the README (a :class:`Cell` of a table, or a :class:`Prose` pattern) and *how* to
compute it from the run's files (a function of :class:`Run` returning the text the README prints).
Numbers the README takes from other runs (seed ranges, the full-size run, sweeps, benchmarks) are listed
in :data:`OTHER_RUNS` with the command that produces them; ``--check`` verifies that the README names that
command in the same section.  To cover a new number, add a
row to one of the two tables.

``--check`` prints, for each number: ``ok``, ``DIFFERS`` (README text, run text), ``timing differs`` (a
wall-clock number: the README's comes from a timed run on idle cores, yours depends on your machine and its
load, so it never fails the check), ``not in README`` (the locator finds nothing: the README does not quote
it, or moved it) or ``not in this run`` (the run lacks the file, e.g. a run without the probe stage); it
exits with status 1 when a number differs or an other-run number's command is missing, else 0.  Texts are
compared after normalising spaces and the minus sign.
"""

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from functools import partial
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

# --------------------------------------------------------------------------------------------- run files


class Missing(Exception):
    """The run lacks what a number needs."""


class Run:
    """Lazy, cached readers of one run directory (``scatterxai run --out DIR``)."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self._cache = {}

    def file(self, rel: str) -> str:
        p = os.path.join(self.path, rel)
        if not os.path.exists(p):
            raise Missing(rel)
        return p

    def json(self, rel: str) -> dict:
        if rel not in self._cache:
            with open(self.file(rel), encoding="utf-8") as fh:
                self._cache[rel] = json.load(fh)
        return self._cache[rel]

    def summary(self) -> dict:
        """:meth:`RelevanceFile.summary` of every method of relevance.h5."""
        if "summary" not in self._cache:
            from scatterxai.io.relevance import RelevanceFile
            with RelevanceFile(self.file("relevance.h5")) as rf:
                self._cache["summary"] = rf.summary()
        return self._cache["summary"]

    def n_notes(self) -> int:
        import h5py
        with h5py.File(self.file("features.h5"), "r") as f:
            return int(f["features"].shape[0])

    def quality(self, method: str) -> dict:
        q = self.json("quality/quality.json")
        if method not in q:
            raise Missing(f"quality/quality.json[{method}]")
        return q[method]

    def settings(self) -> dict:
        """``quality/quality_settings.json``: the quality study's settings, notes and permuted-label network."""
        return self.json("quality/quality_settings.json")

    def ground_truth(self, method: str) -> dict:
        g = self.quality(method).get("ground_truth")
        if not g:
            raise Missing(f"quality/quality.json[{method}][ground_truth]")
        return g


# --------------------------------------------------------------------------------------------- formats

def pct(v: float, digits: int = 1) -> str:
    if v is None or not np.isfinite(v):
        raise Missing("value")
    return f"{100 * v:.{digits}f} %"


def pm(mean: float, std: float, digits: int = 2) -> str:
    return f"{fmt(mean, digits)} ± {std:.{digits}f}"


def fmt(v: float, digits: int = 2) -> str:
    if v is None or not np.isfinite(v):
        raise Missing("value")
    text = f"{v:.{digits}f}"
    if float(text) == 0:
        text = text.lstrip("-")          # no "−0.00"
    return text.replace("-", "−")


def pts(v: float, digits: int = 1) -> str:
    """Percentage points with a sign: +1.2, −3.4."""
    return f"{100 * v:+.{digits}f}".replace("-", "−")


def minutes(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s} s"


def thousands(n: int) -> str:
    return f"{n:,}"


# --------------------------------------------------------------------------------------------- README locators

def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("−", "-").replace("\u2009", " ").replace("\u00a0", " ")).strip()


@dataclass(frozen=True)
class Prose:
    """A number in running text: ``pattern`` (a regular expression with one group) searched in the README
    with its line breaks turned into spaces; the group is the quoted text."""
    pattern: str

    def find(self, readme: str) -> Optional[str]:
        m = re.search(self.pattern, re.sub(r"\s*\n\s*", " ", readme))
        return None if m is None else m.group(1)

    def span(self, readme: str) -> Optional[Tuple[int, int]]:
        """(start, end) of the quoted text in ``readme`` itself (a space of the pattern matches any run of
        white space, line breaks included)."""
        m = re.search(self.pattern.replace(" ", r"\s+"), readme)
        return None if m is None else m.span(1)

    def __str__(self):
        return f"text /{self.pattern}/"


def _tables(readme: str):
    """Markdown tables: (start offset, header cells, body rows as cell lists)."""
    out, lines, offset, i = [], readme.split("\n"), 0, 0
    starts = np.cumsum([0] + [len(line) + 1 for line in lines])
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s:|-]+\|$", lines[i + 1]):
            cells = [_split_row(lines[i])]
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                cells.append(_split_row(lines[j]))
                j += 1
            out.append((int(starts[i]), cells[0], cells[1:]))
            i = j
        else:
            i += 1
    del offset
    return out


def _split_row(line: str) -> List[str]:
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _pick(cells: Sequence[str], key: str) -> Optional[int]:
    """Index of the cell equal to ``key`` (normalised), else of the first that starts with it."""
    norm = [_norm(c) for c in cells]
    k = _norm(key)
    if k in norm:
        return norm.index(k)
    return next((i for i, c in enumerate(norm) if c.startswith(k)), None)


@dataclass(frozen=True)
class Cell:
    """A table cell: the first table after the text ``after``, the row whose first cell is (or starts with)
    ``row``, the column whose header is (or starts with) ``col``; ``part``: the i-th of " / "-separated
    values in the cell."""
    after: str
    row: str
    col: str
    part: Optional[int] = None

    def find(self, readme: str) -> Optional[str]:
        at = readme.find(self.after)
        if at < 0:
            return None
        table = next((t for t in _tables(readme) if t[0] > at), None)
        if table is None:
            return None
        _, header, rows = table
        c = _pick(header, self.col)
        r = _pick([row[0] for row in rows], self.row)
        if c is None or r is None or c >= len(rows[r]):
            return None
        text = rows[r][c]
        if self.part is not None:
            parts = [p.strip() for p in text.split(" / ")]
            return parts[self.part] if self.part < len(parts) else None
        return text

    def span(self, readme: str) -> Optional[Tuple[int, int]]:
        """(start, end) of the quoted text in ``readme``: found inside its cell of its row's line."""
        text = self.find(readme)
        at = readme.find(self.after)
        if text is None or at < 0:
            return None
        start, header, rows = next(t for t in _tables(readme) if t[0] > at)
        r, c = _pick([row[0] for row in rows], self.row), _pick(header, self.col)
        lines = readme[start:].split("\n")
        line_at = start + sum(len(line) + 1 for line in lines[:r + 2])     # header and rule lines first
        line = lines[r + 2]
        bars = [i for i, ch in enumerate(line) if ch == "|" and (i == 0 or line[i - 1] != "\\")]
        lo, hi = bars[c], bars[c + 1]
        k = line.find(text, lo, hi)
        return None if k < 0 else (line_at + k, line_at + k + len(text))

    def __str__(self):
        return f"table after {self.after!r}, row {self.row!r}, column {self.col!r}" + (
            f", part {self.part}" if self.part is not None else "")


@dataclass(frozen=True)
class Number:
    """One README number: its label, where the README quotes it, how to compute it from a run.
    ``timing``: a wall-clock number, which depends on the machine and its load — ``--check`` reports it
    when it differs but does not fail on it."""
    label: str
    where: object
    compute: Callable[[Run], str]
    timing: bool = False


@dataclass(frozen=True)
class OtherRun:
    """README numbers from another run: the section holding ``anchor`` (spaces match any white space) must
    name ``command``."""
    label: str
    anchor: str
    command: str


# --------------------------------------------------------------------------------------------- computations

def _timing(r: Run, *stages) -> float:
    t = r.json("timings.json")["stages"]
    if not all(t.get(s) is not None for s in stages):
        raise Missing(f"timings.json stages {stages}")
    return sum(t[s] for s in stages)


def _wall_time(r: Run) -> float:
    t = r.json("timings.json")
    if t.get("reused"):   # the last run reused some stages: its total is not the whole run's
        raise Missing(f"total (stages reused: {', '.join(t['reused'])})")
    return t["total"]


def _after_training(r: Run) -> float:
    t = r.json("timings.json")
    return sum(v for k, v in t["stages"].items()
               if k not in t["core_stages"] and not k.startswith("evaluate_") and v is not None)


def _after_over_core(r: Run) -> str:
    ratio = r.json("timings.json")["after_training_over_core"]
    if ratio is None:
        raise Missing("after_training_over_core (stages reused)")
    return f"{100 * ratio:.0f}"


def _counts(r: Run) -> dict:
    return r.json("metrics_s1s2.json")["class_counts"]


def _one_note(r: Run) -> str:
    vals = [f"{100 / n:.1f}" for n in _counts(r).values()]
    return ", ".join(vals[:-1]) + " and " + vals[-1]


def _accuracy(r: Run, model: str, cls: Optional[str]) -> str:
    m = r.json(f"metrics_{model}.json")
    v = m["macro_accuracy"] if cls is None else m["per_class_accuracy"].get(cls)
    if v is None:
        raise Missing(f"metrics_{model}.json accuracy of {cls}")
    return f"{100 * v:.2f}"


def _method_stat(r: Run, method: str, key: str) -> dict:
    s = r.summary()["rules"].get(method)
    if s is None or s.get(key) is None:
        raise Missing(f"relevance summary {method}/{key}")
    return s[key]


def _to_reference(r: Run, m: str, metric: str, digits: int) -> str:
    comp = r.json("compare/compare.json")
    ref = comp.get("reference") or comp.get("emd_reference") or "epsilon_plus"
    if m == ref:
        return "0"
    pair = comp["between_methods"].get(f"{ref}|{m}") or comp["between_methods"].get(f"{m}|{ref}")
    if pair is None or pair.get(metric) is None or pair[metric]["mean"] is None:
        raise Missing(f"compare.json {ref}|{m} {metric}")
    return pm(pair[metric]["mean"], pair[metric]["std"], digits)


def _interval(mean: float, lo: float, hi: float, f: Callable[[float], str] = fmt) -> str:
    return f"{f(mean)} [{f(lo)}, {f(hi)}]"


def _gt_score(r: Run, method: str, score: str, control: Optional[str] = None) -> str:
    s = r.ground_truth(method)[score]
    return pct(s["value"] if control is None else s["controls"].get(control))


def _gt_margin(r: Run, method: str, score: str) -> str:
    s = r.ground_truth(method)[score]
    if s["margin"] is None:
        raise Missing("margin")
    return _interval(s["margin"], *s["margin_ci"], f=pts)


def _tracking(r: Run, method: str, pointer: str, control: Optional[str]) -> dict:
    t = r.ground_truth(method)["tracking"].get(pointer)
    if t is None:
        raise Missing(pointer)
    return t if control is None else (t["controls"].get(control) or {})


def _gt_track(r: Run, method: str, pointer: str = "rate_peak", control: Optional[str] = None) -> str:
    t = _tracking(r, method, pointer, control)
    return "–" if t.get("rho") is None else f"{fmt(t['rho'])} (p {t['p']:.3f})"


def _gt_track_class(r: Run, method: str, cls: str, control: Optional[str] = None) -> str:
    t = _tracking(r, method, "rate_peak", control)["per_class"]
    classes = r.settings()["classes"]
    if cls not in classes:
        raise Missing(f"class {cls}")
    rho, p = t["rho"][classes.index(cls)], t["p"][classes.index(cls)]
    return "–" if rho is None else f"{fmt(rho)} ({p:.3f})"


def _gt_track_margin(r: Run, method: str, pointer: str = "rate_peak") -> str:
    t = r.ground_truth(method)["tracking"][pointer]
    return "–" if t["margin"] is None else _interval(t["margin"], *t["margin_ci"])


def _prior(r: Run, key: str) -> str:
    prior = (r.settings().get("ground_truth") or {}).get("prior")
    if not prior:
        raise Missing("ground-truth prior")
    return f"{prior[key]:.1f} Hz" if key == "constant_hz" else pct(prior[key])


def _baseline(r: Run, m: str, b: str) -> dict:
    e = r.quality(m).get("baselines", {}).get(b)
    if e is None:
        raise Missing(f"baseline {b} of {m}")
    return e


def _deletion(r: Run, m: str, b: str) -> str:
    e = _baseline(r, m, b)
    return pm(e["aopc_above_random"], e["aopc_above_random_se"])


def _deletion_margin(r: Run, m: str, b: str) -> str:
    g = _baseline(r, m, b)["deletion_vs_control"]["margin"]
    return _interval(g["mean"], g["ci_low"], g["ci_high"])


def _passes_under(r: Run, m: str) -> str:
    checks = r.quality(m)["checks"]
    names = [[BASELINE_NAMES.get(b, b) for b, ok in checks[mode].items() if ok] for mode in ("deletion", "insertion")]
    return " / ".join(", ".join(n) or "none" for n in names)


def _randomisation(r: Run, m: str) -> dict:
    q = r.quality(m).get("randomisation")
    if not q or "spearman_abs" not in q:
        raise Missing(f"randomisation of {m}")
    return q


def _rand_step(r: Run, m: str, step: str, measure: str = "spearman_abs", ci: bool = False) -> str:
    q = _randomisation(r, m)
    step = q["check_step"] if step == "check" else step
    if step not in q["steps"]:
        raise Missing(f"randomisation step {step}")
    s, i = q[measure], q["steps"].index(step)
    return _interval(s["mean"][i], s["ci_low"][i], s["ci_high"][i]) if ci else fmt(s["mean"][i])


def _rand_cascade(r: Run, m: str) -> str:
    v = [np.nan if x is None else x for x in _randomisation(r, m)["spearman_abs"]["mean"][1:]]
    return fmt(float(np.nanmean(v)))


def _permuted_maps(r: Run, m: str) -> str:
    q = r.quality(m).get("label_randomisation")
    if not q:
        raise Missing(f"label randomisation of {m}")
    return " / ".join(fmt(q[k]["mean"]) for k in ("spearman_abs", "spearman", "ssim"))


def _permuted_model(r: Run, key: str) -> str:
    p = r.settings().get("permuted_model")
    if not p or p.get(key) is None:
        raise Missing(f"permuted_model {key}")
    return pct(p[key]) if key == "train_accuracy" else str(p[key])


def _stat_pm(r: Run, m: str, key: str, digits: int) -> str:
    s = _method_stat(r, m, key)
    return pm(s["mean"], s["std"], 0 if key == "kurtosis" and abs(s["mean"]) >= 100 else digits)


def _stat_pct(r: Run, m: str, key: str) -> str:
    return pct(_method_stat(r, m, key)["mean"])


def _completeness(r: Run, m: str) -> str:
    return _stat_pm(r, m, "completeness", 3) if m == "integrated_gradients" else "–"


def _probe_cell(r: Run, layer: str, what: str) -> str:
    p = r.json("probe/probe.json")
    if layer not in p["probe"]:
        raise Missing(f"probe layer {layer}")
    if what == "technique":
        t = p["technique_probe"][layer]
        return f"{fmt(t['trained'])} / {fmt(t['untrained_mean'])}"
    d = p["probe"][layer][what]
    return f"{fmt(d['trained_r2'])} / {fmt(d['untrained_r2_mean'])}"


def _probe_input(r: Run, what: str) -> str:
    import h5py
    key = "technique/input/balanced_accuracy" if what == "technique" else f"probe/input/{what}/r2"
    with h5py.File(r.file("probe/probe.h5"), "r") as f:
        if key not in f:
            raise Missing(f"probe.h5 {key}")
        return fmt(float(f[key][0]))


def _probe_untrained_f0(r: Run) -> str:
    p = r.json("probe/probe.json")["probe"]
    v = [p[layer]["log2_f0"]["untrained_r2_mean"] for layer in ("conv0", "conv1", "conv2")]
    return f"{fmt(min(v))}–{fmt(max(v))}"


def _probe_level(r: Run) -> str:
    p = r.json("probe/probe.json")
    return fmt(max(p["probe"][layer]["rms_db"]["trained_r2"] for layer in p["layers"]))


# --------------------------------------------------------------------------------------------- the tables

#: README row title of each method in the methods table
METHOD_ROWS = {"epsilon": "LRP-0 / LRP-ε", "epsilon_plus": "LRP-[ε,z+]", "epsilon_conv_zplus_dense": "LRP-[z+,ε]",
               "epsilon_alpha2_beta1": "LRP-[ε,α2β1]", "gradient": "gradient", "gradient_x_input": "gradient × input",
               "integrated_gradients": "Integrated Gradients", "smoothgrad": "SmoothGrad", "deconvnet": "DeconvNet",
               "guided_backprop": "Guided Backprop", "occlusion": "occlusion"}
#: README column titles of LRP-ε and LRP-[ε,z+] (this run) in the relevance table
LRP = {"epsilon": "LRP-ε, `make demo`", "epsilon_plus": "LRP-[ε,z+], `make demo`"}
#: README row title of each map of the ground-truth table (methods, then controls)
GT_ROWS = {"epsilon": "LRP-ε", "epsilon_plus": "LRP-[ε,z+]", "epsilon_alpha2_beta1": "LRP-[ε,α2β1]",
           "gradient_x_input": "gradient × input", "integrated_gradients": "Integrated Gradients",
           "constant": "control: constant map", "class_prior": "control: class prior", "input": "control: input",
           "standardised_input": "control: standardised input", "random": "control: random map"}
#: rows of the per-class tracking table
TRACK_ROWS = {"epsilon": "LRP-ε", "epsilon_plus": "LRP-[ε,z+]", "gradient_x_input": "gradient × input",
              "input": "control: input", "standardised_input": "control: standardised input"}
#: rows of the deletion table and of the randomisation table
DELETION_ROWS = {"epsilon": "LRP-ε", "epsilon_plus": "LRP-[ε,z+]", "gradient": "gradient",
                 "gradient_x_input": "gradient × input", "integrated_gradients": "Integrated Gradients",
                 "occlusion": "occlusion"}
RANDOMISATION_ROWS = {"epsilon": "LRP-ε", "epsilon_plus": "LRP-[ε,z+]", "epsilon_conv_zplus_dense": "LRP-[z+,ε]",
                      "gradient": "gradient", "gradient_x_input": "gradient × input"}
#: the README's name of each deletion baseline
BASELINE_NAMES = {"training_mean": "training mean", "zero": "zero", "shuffle": "shuffle"}
#: the classes the README's tables name (the demo's corpus)
CLASSES = ("vibrato", "trill", "tremolo", "bisbigliando", "flatterzunge")

TABLE1 = "Table 1, per-class accuracy"
RELEVANCE = "Relevance of the S1+S2 model"
GROUND_TRUTH = "Localisation against controls"
TRACKING = "(ρ, one-sided permutation p)"
DELETION = "Deletion (40 test notes"
RANDOMISATION = "Randomisation as published"
METHODS = "Other attribution methods on the same model"
PROBE = "The `probe` stage of `make demo`"


#: the sentence of the intro that gives the quoted run's stage times (other runs' times are quoted nearby)
QUOTED_RUN = r"The quoted run: "
_QUOTED_TIMES = QUOTED_RUN + r"synthesis {} s, extraction {} s, training {} s, and {} s for"


def _quoted_time(i: int) -> Prose:
    """The i-th time (synthesis, extraction, training, after training) of the quoted run's sentence."""
    return Prose(_QUOTED_TIMES.format(*(r"(\d+)" if j == i else r"\d+" for j in range(4))))


def _intro() -> List[Number]:
    return [
        Number("notes synthesised", Prose(r"`make demo` synthesises ([\d,]+) (?:studio )?notes"),
               lambda r: thousands(r.n_notes())),
        Number("demo wall time", Prose(r"`results/demo/report.md`: (\d+ min \d+ s)"),
               lambda r: minutes(_wall_time(r)), timing=True),
        Number("synthesis seconds", _quoted_time(0), lambda r: f"{_timing(r, 'data'):.0f}", timing=True),
        Number("extraction seconds", _quoted_time(1), lambda r: f"{_timing(r, 'extract'):.0f}", timing=True),
        Number("training seconds", _quoted_time(2), lambda r: f"{_timing(r, 'train_s1', 'train_s1s2'):.0f}",
               timing=True),
        Number("seconds after training", _quoted_time(3), lambda r: f"{_after_training(r):.0f}", timing=True),
        Number("after training / before (%)", Prose(r"— (\d+) % of the time of the stages before them"),
               _after_over_core, timing=True),
    ]


def _results() -> List[Number]:
    out = [
        Number("test notes", Prose(r"The test split has (\d+) notes"), lambda r: str(sum(_counts(r).values()))),
        Number("test notes per class", Prose(r"The test split has \d+ notes \(([^:]+):"),
               lambda r: ", ".join(f"{n} {c}" for c, n in _counts(r).items())),
        Number("one note in points of per-class accuracy", Prose(r"one note is ([\d., and]+) points"), _one_note),
    ]
    for model, row in (("s1", "S1, `make demo`"), ("s1s2", "S1+S2, `make demo`")):
        for cls in (*CLASSES, None):
            out.append(Number(f"Table 1: {row}, {cls or 'macro'}", Cell(TABLE1, row, cls or "macro"),
                              partial(_accuracy, model=model, cls=cls)))
    rows = (("kurtosis of local maps", lambda r, m: fmt(_method_stat(r, m, "kurtosis")["mean"], 1)),
            ("… and its standard deviation", lambda r, m: fmt(_method_stat(r, m, "kurtosis")["std"], 1)),
            ("relevance on S1", partial(_stat_pct, key="s1_share")),
            ("top S2 relevance within ±1 octave", partial(_stat_pct, key="localisation")))
    for row, f in rows:
        for m, col in LRP.items():
            out.append(Number(f"relevance table: {row}, {col}", Cell(RELEVANCE, row, col), partial(f, m=m)))
    return out


def _ground_truth() -> List[Number]:
    out = [Number("constant map's λ2", Prose(r"constant map \(λ2 = ([\d.]+ Hz)"), partial(_prior, key="constant_hz")),
           Number("class prior's localisation (prose)", Prose(r"true rate for ([\d.]+ %) of the notes"),
                  partial(_gt_score, method="epsilon_plus", score="localisation", control="class_prior"))]
    for m, row in GT_ROWS.items():
        # methods read their own entry; controls are read from LRP-[ε,z+]'s (every test note)
        who = {"method": m} if m in METHOD_ROWS else {"method": "epsilon_plus", "control": m}
        for col, score in (("localisation", "localisation"), ("rate-band share", "rate_band_share")):
            out.append(Number(f"ground truth: {col}, {row}", Cell(GROUND_TRUTH, row, col),
                              partial(_gt_score, score=score, **who)))
        out.append(Number(f"ground truth: within-class rate tracking, {row}", Cell(GROUND_TRUTH, row, "within-class"),
                          partial(_gt_track, **who)))
        if "control" not in who:
            out.append(Number(f"ground truth: localisation margin over the strongest control, {row}",
                              Cell(GROUND_TRUTH, row, "localisation margin"),
                              partial(_gt_margin, method=m, score="localisation")))
            out.append(Number(f"ground truth: tracking margin over the strongest control, {row}",
                              Cell(GROUND_TRUTH, row, "tracking margin"), partial(_gt_track_margin, method=m)))
    for m, row in TRACK_ROWS.items():
        who = {"method": m} if m in METHOD_ROWS else {"method": "epsilon_plus", "control": m}
        for cls in CLASSES:
            out.append(Number(f"tracking per class: {row}, {cls}", Cell(TRACKING, row, cls),
                              partial(_gt_track_class, cls=cls, **who)))
    out += [Number("f0 tracking of LRP-ε (pooled ρ̄)", Prose(r"LRP-ε's peak follows it with ρ̄ ([\d.]+)"),
                   lambda r: fmt(_tracking(r, "epsilon", "f0_peak", None)["rho"])),
            Number("f0 tracking of the standardised input (pooled ρ̄)",
                   Prose(r"standardised input's own peak \(([\d.]+)\)"),
                   lambda r: fmt(_tracking(r, "epsilon", "f0_peak", "standardised_input")["rho"]))]
    return out


def _deletion_numbers() -> List[Number]:
    out = [Number("deletion: notes scored", Prose(r"Deletion \((\d+) test notes"),
                  lambda r: str(r.settings()["n_examples"]))]
    for m, row in DELETION_ROWS.items():
        for b, name in BASELINE_NAMES.items():
            out.append(Number(f"deletion table: {name} AOPC above random, {row}",
                              Cell(DELETION, row, f"{name}: AOPC − random"), partial(_deletion, m=m, b=b)))
            out.append(Number(f"deletion table: {name} margin over the strongest control, {row}",
                              Cell(DELETION, row, f"{name}: margin"), partial(_deletion_margin, m=m, b=b)))
        out.append(Number(f"deletion table: baselines it passes under, {row}",
                          Cell(DELETION, row, "passes deletion / insertion under"), partial(_passes_under, m=m)))
    return out


def _randomisation_numbers() -> List[Number]:
    out = [Number("randomisation: notes", Prose(r"mean over (\d+) notes and \d+ seeds per step"),
                  lambda r: str(r.settings()["n_randomisation"])),
           Number("randomisation: seeds per step", Prose(r"mean over \d+ notes and (\d+) seeds per step"),
                  lambda r: str(_randomisation(r, "epsilon")["n_seeds"])),
           Number("randomisation: notes of the slow methods", Prose(r"spread likewise; (\d+) for the slow methods"),
                  lambda r: str(r.settings()["config"]["randomisation_examples_slow"]))]
    for key, pattern in (("n_training", r"permuted labels of (\d+) training notes"),
                         ("epochs", r"training notes for (\d+) epochs"),
                         ("train_accuracy", r"epochs, to ([\d.]+ %) training accuracy")):
        out.append(Number(f"permuted-label network: {key}", Prose(pattern), partial(_permuted_model, key=key)))
    out.append(Number("permuted-label network: target", Prose(r"training accuracy on them \(target ([\d.]+ %)\)"),
                      lambda r: pct(r.settings()["permuted_model"]["settings"]["target_accuracy"], 0)))
    cols = {"abs ρ, fc2 re-initialised": partial(_rand_step, step="fc2", ci=True),
            "abs ρ, mean over the cascade": _rand_cascade,
            "input normalisation only: abs ρ": partial(_rand_step, step="check", ci=True),
            "… signed ρ": partial(_rand_step, step="check", measure="spearman"),
            "… SSIM": partial(_rand_step, step="check", measure="ssim"),
            "every layer random: abs ρ": partial(_rand_step, step="input_bn"),
            "permuted labels": _permuted_maps}
    for m, row in RANDOMISATION_ROWS.items():
        for col, f in cols.items():
            out.append(Number(f"randomisation table: {col}, {row}", Cell(RANDOMISATION, row, col), partial(f, m=m)))
    return out


def _methods() -> List[Number]:
    cols = {"notes": lambda r, m: str(_method_stat(r, m, "n_explained")),
            "kurtosis": partial(_stat_pm, key="kurtosis", digits=1),
            "localised": partial(_stat_pct, key="localisation"), "S1 share": partial(_stat_pct, key="s1_share"),
            "IG completeness": _completeness,
            "JS to LRP-[ε,z+]": partial(_to_reference, metric="js", digits=2),
            "EMD to LRP-[ε,z+]": partial(_to_reference, metric="emd", digits=2)}
    out = [Number(f"methods table: {col}, {row}", Cell(METHODS, row, col), partial(f, m=m))
           for m, row in METHOD_ROWS.items() for col, f in cols.items()]
    out.append(Number("methods: notes explained by the slow methods",
                      Prose(r"on up to \d+ test notes per class, (\d+) in all"),
                      partial(lambda r, m: str(_method_stat(r, m, "n_explained")), m="integrated_gradients")))
    return out


def _probe() -> List[Number]:
    out = []
    for col, what in (("R² log2 f0", "log2_f0"), ("R² log2 rate", "log2_rate"), ("technique", "technique")):
        out.append(Number(f"probe table: {col}, model input", Cell(PROBE, "model input", col),
                          partial(_probe_input, what=what)))
        for layer in ("conv0", "conv1", "conv2", "fc1"):
            out.append(Number(f"probe table: {col}, {layer}", Cell(PROBE, layer, col),
                              partial(_probe_cell, layer=layer, what=what)))
    out += [Number("probe: untrained networks' R² of log2 f0 up to conv2",
                   Prose(r"Random networks pass pitch through \(R² ([\d.–]+) up to conv2\)"), _probe_untrained_f0),
            Number("probe: largest R² of the level", Prose(r"barely decodable \(R² ≤ ([\d.]+) in every layer\)"),
                   _probe_level)]
    return out


#: every README number computed from one run's files
NUMBERS: List[Number] = [*_intro(), *_results(), *_ground_truth(), *_deletion_numbers(), *_randomisation_numbers(),
                         *_methods(), *_probe()]

#: README numbers from other runs, and the command whose output they are
OTHER_RUNS: List[OtherRun] = [
    OtherRun("Table 1 (ranges over seeds and threads)", "Table 1, per-class accuracy", "experiments/seed_ranges.py"),
    OtherRun("relevance table (ranges over the same ten models)", "top S2 relevance within ±1 octave of the true rate",
             "experiments/seed_ranges.py"),
    OtherRun("full-size synthetic run", "5,564 notes, about 20 minutes", "scatterxai run --out results/full --scale 1"),
    OtherRun("rate sweeps table", "| rate sweep 4–32 Hz |", "experiments/sweeps_and_auralisation.py"),
    OtherRun("benchmarks table", "| benchmark | last line |", "bench_scattering.py"),
    OtherRun("distributed extraction numbers", "speedup=0.63", "benchmarks/bench_distributed.py"),
    OtherRun("small-study table (72 tones)", "| features | training | macro accuracy (%) |",
             "experiments/small_study.py"),
    OtherRun("BatchNorm recalibration numbers (72 tones)", "out-of-fold macro accuracy 52.8 % without",
             "experiments/small_study.py"),
    OtherRun("real-recordings cross-validation table", "| model | macro (%) | 95 % interval |",
             "experiments/real_cv.py"),
    OtherRun("--init-mu measurement", "Measured on real recordings (the table below", "experiments/real_cv.py"),
    OtherRun("S1 family probe on the studio corpus", "55.7 % over its 11 families",
             "experiments/s1_prior.py --features"),
    OtherRun("S1 with other dropout, weight decay and learning rate", "43.4–51.6 %", "--dropout 0.1"),
    OtherRun("the default corpus at SOL-PMT's size", "S1 53.5–62.2 %", "scatterxai synth DIR --scale 1"),
    OtherRun("S1 networks told the instrument", "reach 62.3–65.3 % over", "--given-instrument 0 1 2 3 4"),
    OtherRun("S1 told the instrument, SOL-PMT's pairing", "S1 told the instrument reaches 66.8–73.6 %",
             "noise+mic+articulation`, `scatterxai extract DIR/meta.csv"),
]


# --------------------------------------------------------------------------------------------- main

def compute(run: Run, numbers: Sequence[Number] = NUMBERS) -> List[dict]:
    """Each number's label, README locator and value (None when the run lacks it, with the reason)."""
    out = []
    for n in numbers:
        try:
            value, why = n.compute(run), None
        except (Missing, KeyError, TypeError, IndexError) as e:
            value, why = None, f"not in this run ({type(e).__name__}: {e})"
        out.append({"label": n.label, "where": str(n.where), "value": value, "missing": why})
    return out


def _section(readme: str, at: int) -> str:
    """The README section (between headings) around offset ``at``."""
    heads = [m.start() for m in re.finditer(r"^#{1,6} ", readme, flags=re.M)]
    start = max([h for h in heads if h <= at], default=0)
    end = min([h for h in heads if h > at], default=len(readme))
    return readme[start:end]


def check(readme: str, values: Sequence[dict], numbers: Sequence[Number] = NUMBERS,
          other_runs: Sequence[OtherRun] = OTHER_RUNS) -> dict:
    """Compare the README's text with the run's values.

    Returns
    -------
    dict
        ``ok``, ``differs`` and ``timing_differs`` (label, README text, run text), ``not_in_readme``,
        ``not_in_run`` (labels), and
        ``commands_missing`` (other-run labels whose section does not name their command, or whose anchor
        is gone).
    """
    res = {"ok": [], "differs": [], "timing_differs": [], "not_in_readme": [], "not_in_run": [],
           "commands_missing": []}
    for n, v in zip(numbers, values):
        quoted = n.where.find(readme)
        if quoted is None:
            res["not_in_readme"].append(n.label)
        elif v["value"] is None:
            res["not_in_run"].append(n.label)
        elif _norm(quoted) == _norm(v["value"]):
            res["ok"].append(n.label)
        else:
            res["timing_differs" if n.timing else "differs"].append((n.label, quoted, v["value"]))
    for o in other_runs:
        m = re.search(r"\s+".join(map(re.escape, o.anchor.split())), readme)
        if m is None or o.command not in _section(readme, m.start()):
            res["commands_missing"].append(f"{o.label} (anchor {o.anchor!r}, command {o.command!r})")
    return res


def update(readme: str, values: Sequence[dict], numbers: Sequence[Number] = NUMBERS) -> Tuple[str, int]:
    """The README with each number that differs from the run replaced by the run's text (one at a time, so
    that every locator sees the text as updated so far); returns (text, how many were replaced)."""
    done = 0
    for n, v in zip(numbers, values):
        quoted = n.where.find(readme)
        if quoted is None or v["value"] is None or _norm(quoted) == _norm(v["value"]):
            continue
        span = n.where.span(readme)
        if span is None:
            print(f"cannot place {n.label}: update it by hand", file=sys.stderr)
            continue
        readme = readme[:span[0]] + v["value"] + readme[span[1]:]
        done += 1
    return readme, done


def run_cpu(r: Run) -> str:
    """The processor the run's S1+S2 model was trained on, as its ``config.json`` records it."""
    try:
        cpu = r.json("models/s1s2/config.json").get("cpu")
    except Missing:
        cpu = None
    if not cpu:
        return "not recorded (a run of an earlier version)"
    return f"{cpu['model']}, {cpu['machine']}, torch {cpu['torch_capability']} kernels, ISA {cpu['isa']}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="a finished run directory (scatterxai run --out DIR)")
    ap.add_argument("--check", metavar="README", help="list README numbers that differ from the run")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    ap.add_argument("--update", action="store_true", help="with --check: write the run's numbers into the README "
                    "where they differ (timings too); other-run numbers are left to their commands")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.run):
        print(f"no run directory {args.run}", file=sys.stderr)
        return 2
    run = Run(args.run)
    values = compute(run)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(values, fh, indent=1, ensure_ascii=False)
    if not args.check:
        for v in values:
            print(f"{v['label']}: {v['value'] if v['value'] is not None else v['missing']}")
        return 0
    with open(args.check, encoding="utf-8") as fh:
        readme = fh.read()
    if args.update:
        readme, n = update(readme, values)
        with open(args.check, "w", encoding="utf-8") as fh:
            fh.write(readme)
        print(f"{n} numbers written into {args.check}")
    res = check(readme, values)
    print(f"the run's CPU: {run_cpu(run)} (single-run digits differ from CPU to CPU: MKL's FFT and "
          f"torch's kernels choose their code by processor; the README's ranges over seeds are what carries over)")
    for label, quoted, value in res["differs"]:
        print(f"DIFFERS  {label}: README {quoted!r}, run {value!r}")
    for label, quoted, value in res["timing_differs"]:
        print(f"timing differs (machine and load; not an error)  {label}: README {quoted!r}, run {value!r}")
    for label in res["not_in_run"]:
        print(f"not in this run  {label}")
    for label in res["not_in_readme"]:
        print(f"not in README  {label}")
    for label in res["commands_missing"]:
        print(f"COMMAND MISSING  {label}")
    print(f"{len(res['ok'])} numbers as in the run, {len(res['differs'])} differ (and {len(res['timing_differs'])} "
          f"timings), {len(res['not_in_readme'])} not "
          f"quoted, {len(res['not_in_run'])} not in this run; {len(OTHER_RUNS) - len(res['commands_missing'])} of "
          f"{len(OTHER_RUNS)} other-run numbers name their command")
    return 1 if res["differs"] or res["commands_missing"] else 0


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
