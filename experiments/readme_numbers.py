#!/usr/bin/env python
"""Every number the README quotes from one run, computed from that run's files — and the README checked against it.

Usage::

    python experiments/readme_numbers.py --run results/demo                     # each number, labelled
    python experiments/readme_numbers.py --run results/demo --check README.md   # README numbers that differ
    python experiments/readme_numbers.py --run results/demo --json numbers.json

The script is a table, :data:`NUMBERS`: for each number the README quotes from the run ``make demo``
writes, *where* it is in the README (a :class:`Cell` of a table, or a :class:`Prose` pattern) and *how* to
compute it from the run's files (a function of :class:`Run` returning the text the README prints).
Numbers the README takes from other runs (seed ranges, the reference one-thread run, the 334-note probe
study, sweeps, benchmarks) are listed in :data:`OTHER_RUNS` with the command that produces them;
``--check`` verifies that the README names that command in the same section.  To cover a new number, add a
row to one of the two tables.

``--check`` prints, for each number: ``ok``, ``DIFFERS`` (README text, run text), ``not in README`` (the
locator finds nothing: the README does not quote it, or moved it) or ``not in this run`` (the run lacks the
file, e.g. a run without the probe stage); it exits with status 1 when a number differs or an other-run
number's command is missing, else 0.  Texts are compared after normalising spaces and the minus sign.
"""

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from functools import partial
from typing import Callable, List, Optional, Sequence

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
    return f"{v:.{digits}f}".replace("-", "−")


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

    def __str__(self):
        return f"table after {self.after!r}, row {self.row!r}, column {self.col!r}" + (
            f", part {self.part}" if self.part is not None else "")


@dataclass(frozen=True)
class Number:
    """One README number: its label, where the README quotes it, how to compute it from a run."""
    label: str
    where: object
    compute: Callable[[Run], str]


@dataclass(frozen=True)
class OtherRun:
    """README numbers from another run: the section holding ``anchor`` must name ``command``."""
    label: str
    anchor: str
    command: str


# --------------------------------------------------------------------------------------------- computations

def _timing(r: Run, *stages) -> float:
    t = r.json("timings.json")["stages"]
    if not all(s in t for s in stages):
        raise Missing(f"timings.json stages {stages}")
    return sum(t[s] for s in stages)


def _after_training(r: Run) -> float:
    t = r.json("timings.json")
    return sum(v for k, v in t["stages"].items() if k not in t["core_stages"])


def _counts(r: Run) -> dict:
    return r.json("metrics_s1s2.json")["class_counts"]


def _one_note(r: Run) -> str:
    vals = [f"{100 / n:.1f}" for n in _counts(r).values()]
    return ", ".join(vals[:-1]) + " and " + vals[-1]


def _steps(r: Run, method: str, step: str) -> float:
    q = r.quality(method)["randomisation"]
    if not q or step not in q["steps"]:
        raise Missing(f"randomisation step {step}")
    return q["abs_spearman_mean"][q["steps"].index(step)]


def _cascade(r: Run, method: str) -> float:
    v = [np.nan if x is None else x for x in r.quality(method)["randomisation"]["abs_spearman_mean"][1:]]
    return float(np.nanmean(v))


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


def _probe_fc1(r: Run) -> str:
    p = r.json("probe/probe.json")
    pr, tech = p["probe"]["fc1"], p["technique_probe"]["fc1"]
    cells = [(pr["log2_f0"]["trained_r2"], pr["log2_f0"]["untrained_r2_mean"]),
             (pr["log2_rate"]["trained_r2"], pr["log2_rate"]["untrained_r2_mean"]),
             (tech["trained"], tech["untrained_mean"])]
    return ", ".join(f"{fmt(a)} / {fmt(b)}" for a, b in cells)


def _gt_score(r: Run, method: str, score: str, control: Optional[str] = None) -> str:
    s = r.ground_truth(method)[score]
    return pct(s["value"] if control is None else s["controls"].get(control))


def _gt_margin(r: Run, method: str, score: str) -> str:
    s = r.ground_truth(method)[score]
    if s["margin"] is None:
        raise Missing("margin")
    lo, hi = s["margin_ci"]
    return f"{pts(s['margin'])} [{pts(lo)}, {pts(hi)}]"


def _gt_track(r: Run, method: str, pointer: str = "rate_peak", control: Optional[str] = None) -> str:
    t = r.ground_truth(method)["tracking"].get(pointer)
    if t is None:
        raise Missing(pointer)
    if control is not None:
        t = t["controls"].get(control) or {}
    if t.get("rho") is None:
        return "–"
    p = t["p"]
    return f"{fmt(t['rho'])} (p {'< 0.001' if p < 0.0015 else f'= {p:.3f}'})"


def _gt_track_margin(r: Run, method: str, pointer: str = "rate_peak") -> str:
    t = r.ground_truth(method)["tracking"][pointer]
    if t["margin"] is None:
        return "–"
    lo, hi = t["margin_ci"]
    return f"{fmt(t['margin'])} [{fmt(lo)}, {fmt(hi)}]"


def _prior(r: Run, key: str) -> str:
    prior = r.json("quality/quality_settings.json").get("ground_truth", {}) or {}
    prior = prior.get("prior")
    if not prior:
        raise Missing("ground-truth prior")
    return f"{prior[key]:.1f} Hz" if key == "constant_hz" else pct(prior[key])


# --------------------------------------------------------------------------------------------- the tables

#: README row title of each method in the methods table
METHOD_ROWS = {"epsilon": "LRP-0 / LRP-ε", "epsilon_plus": "LRP-[ε,z+]", "epsilon_conv_zplus_dense": "LRP-[z+,ε]",
               "gradient": "gradient", "gradient_x_input": "gradient × input",
               "integrated_gradients": "Integrated Gradients", "smoothgrad": "SmoothGrad", "deconvnet": "DeconvNet",
               "occlusion": "occlusion"}
#: README column title of each method in the two-method tables
LRP = {"epsilon": "LRP-ε", "epsilon_plus": "LRP-[ε,z+]"}
#: README row title of each map of the ground-truth table
GT_ROWS = {"epsilon": "LRP-ε", "epsilon_plus": "LRP-[ε,z+]", "gradient_x_input": "gradient × input",
           "constant": "control: constant map", "class_prior": "control: class prior", "input": "control: input",
           "standardised_input": "control: standardised input", "random": "control: random map"}

INTRO = "`make demo` synthesises"
QUALITY = "Is the explanation right?  The `quality` stage"
METHODS = "Other attribution methods on the same model"
GROUND_TRUTH = "Localisation against controls"


def _intro() -> List[Number]:
    return [
        Number("notes synthesised", Prose(r"`make demo` synthesises ([\d,]+) notes"), lambda r: thousands(r.n_notes())),
        Number("demo wall time", Prose(r"`results/demo/report.md`: (\d+ min \d+ s)"),
               lambda r: minutes(r.json("timings.json")["total"])),
        Number("synthesis seconds", Prose(r"\(measured: synthesis (\d+) s"), lambda r: f"{_timing(r, 'data'):.0f}"),
        Number("extraction seconds", Prose(r"synthesis \d+ s, extraction (\d+) s"),
               lambda r: f"{_timing(r, 'extract'):.0f}"),
        Number("training seconds", Prose(r"extraction \d+ s, training (\d+) s"),
               lambda r: f"{_timing(r, 'train_s1', 'train_s1s2'):.0f}"),
        Number("seconds after training", Prose(r"training \d+ s, and (\d+) s for"),
               lambda r: f"{_after_training(r):.0f}"),
        Number("after training / before (%)", Prose(r"— (\d+) % of the time of the stages before them"),
               lambda r: f"{r.json('timings.json')['after_training_over_core']:.0f}"),
    ]


def _aopc(r: Run, m: str, digits: int = 2) -> str:
    return pm(r.quality(m)["aopc_above_random"], r.quality(m)["aopc_above_random_se"], digits)


def _results() -> List[Number]:
    return [
        Number("test notes", Prose(r"The test split has (\d+) notes"), lambda r: str(sum(_counts(r).values()))),
        Number("test notes per class", Prose(r"The test split has \d+ notes \(([^:]+):"),
               lambda r: ", ".join(f"{n} {c}" for c, n in _counts(r).items())),
        Number("one note in points of per-class accuracy", Prose(r"one note is ([\d., and]+) points"), _one_note),
        Number("S1 macro accuracy of this run", Prose(r"two threads: S1 ([\d.]+ %)"),
               lambda r: pct(r.json("metrics_s1.json")["macro_accuracy"], 2)),
        Number("S1+S2 macro accuracy of this run", Prose(r"two threads: S1 [\d.]+ %, S1\+S2 ([\d.]+ %)"),
               lambda r: pct(r.json("metrics_s1s2.json")["macro_accuracy"], 2)),
        Number("AOPC above random of this run, LRP-ε", Prose(r"here: LRP-ε AOPC above random ([\d.]+ ± [\d.]+)"),
               partial(_aopc, m="epsilon")),
        Number("AOPC above random of this run, LRP-[ε,z+]",
               Prose(r"here: LRP-ε AOPC above random [\d.]+ ± [\d.]+, LRP-\[ε,z\+\] ([\d.]+ ± [\d.]+)"),
               partial(_aopc, m="epsilon_plus")),
    ]


def _insertion(r: Run, m: str) -> str:
    return pm(r.quality(m)["insertion_auc_above_random"], r.quality(m)["insertion_auc_above_random_se"], 1)


def _quality_value(r: Run, m: str, key: str, digits: int, as_pct: bool = False) -> str:
    return pct(r.quality(m)[key], digits) if as_pct else fmt(r.quality(m)[key], digits)


def _quality() -> List[Number]:
    rows = [("AOPC above random orders", partial(_aopc, digits=1), None),
            ("insertion AUC above random orders", _insertion, None),
            ("mean abs(ρ) over the cascading randomisation", lambda r, m: fmt(_cascade(r, m)), None),
            ("abs(ρ), every layer re-initialised", lambda r, m: fmt(_steps(r, m, "input_bn")), None),
            ("abs(ρ), network trained", partial(_quality_value, key="label_randomisation_abs_spearman", digits=2),
             None),
            ("localisation on these notes", partial(_quality_value, key="localisation", digits=0, as_pct=True), 0),
            ("localisation on these notes", partial(_quality_value, key="rate_band_share", digits=0, as_pct=True), 1)]
    out = []
    for row, f, part in rows:
        for m, title in LRP.items():
            label = f"quality table: {row}{'' if part is None else f' [{part}]'}, {title}"
            out.append(Number(label, Cell(QUALITY, row, title, part), partial(f, m=m)))
    out.append(Number("quality table: chance level of localisation",
                      Prose(r"localisation on these notes \(chance ([\d.]+ %)\)"),
                      lambda r: pct(r.quality("epsilon")["rate_band_chance"])))
    for method, title, patterns in (
            ("epsilon_plus", "LRP-[ε,z+]", (r"\(abs\(ρ\) ([\d.]+) after fc2", r"after fc2, ([\d.]+) after fc1")),
            ("epsilon", "LRP-ε", (r"after fc1; LRP-ε ([\d.]+),", r"after fc1; LRP-ε [\d.]+, ([\d.]+)\)"))):
        for step, pattern in zip(("fc2", "fc1"), patterns):
            out.append(Number(f"abs(ρ) of {title} after randomising {step}", Prose(pattern),
                              partial(lambda r, m, s: fmt(_steps(r, m, s)), m=method, s=step)))
    return out


def _stat_pm(r: Run, m: str, key: str, digits: int) -> str:
    s = _method_stat(r, m, key)
    return pm(s["mean"], s["std"], 0 if key == "kurtosis" and abs(s["mean"]) >= 100 else digits)


def _stat_pct(r: Run, m: str, key: str) -> str:
    return pct(_method_stat(r, m, key)["mean"])


def _completeness(r: Run, m: str) -> str:
    return _stat_pm(r, m, "completeness", 3) if m == "integrated_gradients" else "–"


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


def _ground_truth() -> List[Number]:
    out = [Number("constant map's λ2", Prose(r"constant map \(λ2 = ([\d.]+ Hz)"), partial(_prior, key="constant_hz"))]
    for m, row in GT_ROWS.items():
        # methods read their own entry; controls are read from LRP-[ε,z+]'s (every test note)
        who = {"method": m} if m in LRP or m == "gradient_x_input" else {"method": "epsilon_plus", "control": m}
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
    return out


def _probe() -> List[Number]:
    return [Number("probe stage of the run: fc1 R² log2 f0, log2 rate, technique (trained / untrained)",
                   Prose(r"there fc1 reads ([^)]+)\)"), _probe_fc1)]


#: every README number computed from one run's files
NUMBERS: List[Number] = [*_intro(), *_results(), *_quality(), *_ground_truth(), *_methods(), *_probe()]

#: README numbers from other runs, and the command whose output they are
OTHER_RUNS: List[OtherRun] = [
    OtherRun("Table 1 (ranges over seeds and threads)", "Table 1, per-class accuracy", "experiments/seed_ranges.py"),
    OtherRun("relevance table (ranges over the same ten models)", "top S2 relevance within ±1 octave of the true rate",
             "experiments/seed_ranges.py"),
    OtherRun("full-size synthetic run", "5,564 notes, about 20 minutes", "scatterxai run --out results/full --scale 1"),
    OtherRun("probe table (334 test notes)", "| layer | R² log2 f0 |", "scatterxai probe"),
    OtherRun("rate sweeps table", "| rate sweep 4–32 Hz |", "experiments/sweeps_and_auralisation.py"),
    OtherRun("benchmarks table", "| benchmark | last line |", "bench_scattering.py"),
    OtherRun("distributed extraction numbers", "speedup=0.78", "benchmarks/bench_distributed.py"),
    OtherRun("small-study table (72 tones)", "| features | training | macro accuracy (%) |",
             "experiments/small_study.py"),
    OtherRun("BatchNorm recalibration numbers (72 tones)", "out-of-fold macro accuracy 52.8 % without",
             "experiments/small_study.py"),
    OtherRun("real-recordings cross-validation table", "| model | macro (%) | 95 % interval |",
             "experiments/real_cv.py"),
    OtherRun("--init-mu measurement", "`data` 58.8 % out-of-fold macro accuracy", "experiments/real_cv.py"),
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
        ``ok``, ``differs`` (label, README text, run text), ``not_in_readme``, ``not_in_run`` (labels), and
        ``commands_missing`` (other-run labels whose section does not name their command, or whose anchor
        is gone).
    """
    res = {"ok": [], "differs": [], "not_in_readme": [], "not_in_run": [], "commands_missing": []}
    for n, v in zip(numbers, values):
        quoted = n.where.find(readme)
        if quoted is None:
            res["not_in_readme"].append(n.label)
        elif v["value"] is None:
            res["not_in_run"].append(n.label)
        elif _norm(quoted) == _norm(v["value"]):
            res["ok"].append(n.label)
        else:
            res["differs"].append((n.label, quoted, v["value"]))
    for o in other_runs:
        at = readme.find(o.anchor)
        if at < 0 or o.command not in _section(readme, at):
            res["commands_missing"].append(f"{o.label} (anchor {o.anchor!r}, command {o.command!r})")
    return res


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="a finished run directory (scatterxai run --out DIR)")
    ap.add_argument("--check", metavar="README", help="list README numbers that differ from the run")
    ap.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.run):
        print(f"no run directory {args.run}", file=sys.stderr)
        return 2
    values = compute(Run(args.run))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(values, fh, indent=1, ensure_ascii=False)
    if not args.check:
        for v in values:
            print(f"{v['label']}: {v['value'] if v['value'] is not None else v['missing']}")
        return 0
    with open(args.check, encoding="utf-8") as fh:
        res = check(fh.read(), values)
    for label, quoted, value in res["differs"]:
        print(f"DIFFERS  {label}: README {quoted!r}, run {value!r}")
    for label in res["not_in_run"]:
        print(f"not in this run  {label}")
    for label in res["not_in_readme"]:
        print(f"not in README  {label}")
    for label in res["commands_missing"]:
        print(f"COMMAND MISSING  {label}")
    print(f"{len(res['ok'])} numbers as in the run, {len(res['differs'])} differ, {len(res['not_in_readme'])} not "
          f"quoted, {len(res['not_in_run'])} not in this run; {len(OTHER_RUNS) - len(res['commands_missing'])} of "
          f"{len(OTHER_RUNS)} other-run numbers name their command")
    return 1 if res["differs"] or res["commands_missing"] else 0


if __name__ == "__main__":
    sys.exit(main())
