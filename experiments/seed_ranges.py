#!/usr/bin/env python
"""Ranges over training seeds: how much the demo's numbers move when only the training seed changes.

The README's "Results of the demo" tables give ranges, not single digits, because a run is deterministic
only for one machine and thread count: another seed, BLAS library or thread count moves a few test notes
and the epoch early stopping keeps.  This script measures those ranges on the features of a finished run
(``scatterxai run --out results/demo``): for each seed it trains the S1 and S1+S2 networks, evaluates
them on the test split, explains the S1+S2 model with LRP-ε and LRP-[ε,z+], and prints min–max over the
seeds of

* per-class and macro test accuracy (%), S1 and S1+S2 (Table 1);
* the mean and the standard deviation of the kurtosis of the local maps, the S1 share of abs(R) and the
  localisation score (top S2 relevance within ±1 octave of the true rate), per rule;
* with a folder of real recordings (``--audio``, default ``../shared/real-audio`` when it exists): what
  ``experiments/real_transfer.py`` measures there for each seed's S1+S2 model — files classified (whole
  file, first window, 1.5-s excerpt from 1.0 s) and files whose top S2 relevance (LRP-[ε,z+]) lies within
  ±1 octave of the manifest's rate.  With 24 files one file is 4 points, and the training seed alone moves
  several: a single seed's transfer numbers say little.

Usage::

    python experiments/seed_ranges.py --run results/demo [--seeds 0 1 2 3 4] [--out results/seeds]
                                      [--threads N] [--audio ../shared/real-audio | --audio none]

Everything it writes goes to ``--out`` (models, metrics, relevance files per seed); the run is not
changed.  Re-running reads the seeds already done.  ``--threads`` sets torch's thread count (default:
torch's own, as ``scatterxai run``); the README states which was used.  About 80 s per seed on 2 cores at
the demo's scale.
"""

import argparse
import contextlib
import json
import os

import numpy as np
import real_transfer  # the script's folder is on sys.path

from scatterxai.explain import explain
from scatterxai.io.relevance import RelevanceFile
from scatterxai.model import evaluate_model, train_model

RULES = ("epsilon", "epsilon_plus")
#: real-transfer conditions of experiments/real_transfer.py, in table order
TRANSFER = tuple((kind, real_transfer.CONDITION_LABELS[kind]) for kind in real_transfer.CONDITIONS)


def transfer(out: str, seed: int, audio: str) -> dict:
    """Real-audio accuracy and LRP-[ε,z+] localisation (counts of files) of the seed's S1+S2 model."""
    dest = os.path.join(out, f"seed{seed}", "transfer")
    path = os.path.join(dest, "transfer.json")
    if not os.path.exists(path):
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):   # its tables go to dest
            real_transfer.main(["--model", os.path.join(out, f"seed{seed}", "s1s2"), "--audio", audio,
                                "--out", dest, "--methods", "epsilon_plus", "--device", "cpu"])
    with open(path, encoding="utf-8") as f:
        acc, loc, _ = real_transfer.summary(json.load(f), "epsilon_plus")
    return {kind: {"n": acc[kind][1], "correct": acc[kind][0], "localised": loc[kind][0]} for kind, _ in TRANSFER}


def one_seed(features: str, out: str, seed: int) -> dict:
    """Accuracies and relevance statistics of the models trained with ``seed`` (a seed whose models and
    relevance file are already in ``out`` is read, not recomputed)."""
    result = {}
    for inp in ("s1", "s1s2"):
        model_dir = os.path.join(out, f"seed{seed}", inp)
        if not os.path.exists(os.path.join(model_dir, "config.json")):
            train_model(features, input=inp, out_dir=model_dir, seed=seed, progress=False)
        m = evaluate_model(features, model_dir=model_dir, out_dir=os.path.join(out, f"seed{seed}", f"eval_{inp}"))
        result[inp] = {"per_class": [100 * m["per_class_accuracy"][c] for c in m["classes"]],
                       "macro": 100 * m["macro_accuracy"], "classes": list(m["classes"])}
    rel = os.path.join(out, f"seed{seed}", "relevance.h5")
    if not os.path.exists(rel):
        explain(features, model_dir=os.path.join(out, f"seed{seed}", "s1s2"), out=rel, methods=list(RULES),
                progress=False)
    with RelevanceFile(rel) as rf:
        summary = rf.summary(list(RULES))["rules"]
    for rule in RULES:
        s = summary[rule]
        result[rule] = {"kurtosis_mean": s["kurtosis"]["mean"], "kurtosis_std": s["kurtosis"]["std"],
                        "s1_share": 100 * s["s1_share"]["mean"],
                        "localised": None if s["localisation"] is None else 100 * s["localisation"]["mean"]}
    return result


def _range(values, fmt="{:.1f}") -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "–"
    lo, hi = min(values), max(values)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}–{fmt.format(hi)}"


def tables(results: dict) -> str:
    """Markdown tables of the ranges over seeds."""
    seeds = sorted(results)
    first = results[seeds[0]]
    classes = first["s1"]["classes"]
    span = f"seeds {seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else f"seed {seeds[0]}"
    lines = ["| input | " + " | ".join(classes) + " | macro |", "|---|" + "---:|" * (len(classes) + 1)]
    for inp, name in (("s1", "S1"), ("s1s2", "S1+S2")):
        cells = [_range([results[s][inp]["per_class"][c] for s in seeds], "{:.0f}") for c in range(len(classes))]
        lines.append(f"| {name}, {span} | " + " | ".join(cells) + " | "
                     + _range([results[s][inp]["macro"] for s in seeds]) + " |")
    lines += ["", "| | " + " | ".join(RULES) + " |", "|---|" + "---:|" * len(RULES)]
    for key, label, fmt in (("kurtosis_mean", "kurtosis of local maps: mean over test notes", "{:.1f}"),
                            ("kurtosis_std", "… and its standard deviation", "{:.1f}"),
                            ("s1_share", "relevance on S1 (share of abs(R), %)", "{:.1f}"),
                            ("localised", "top S2 relevance within ±1 octave of the true rate (%)", "{:.1f}")):
        lines.append(f"| {label} | " + " | ".join(_range([results[s][r][key] for s in seeds], fmt) for r in RULES)
                     + " |")
    if all("transfer" in results[s] for s in seeds):
        n = first["transfer"][TRANSFER[0][0]]["n"]
        lines += ["", f"| real recordings ({n} files), {span} | " + " | ".join(t for _, t in TRANSFER) + " |",
                  "|---|" + "---:|" * len(TRANSFER)]
        for key, label in (("correct", "classified"), ("localised", "top S2 relevance (LRP-[ε,z+]) within ±1 octave")):
            lines.append(f"| {label} | " + " | ".join(
                _range([results[s]["transfer"][c][key] for s in seeds], "{:.0f}") + f" / {n}" for c, _ in TRANSFER)
                + " |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a finished run directory (its features.h5 is used)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--out", default="results/seeds", help="where the models and relevance files go")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    p.add_argument("--audio", default=None,
                   help="real recordings with manifest.csv for the transfer ranges (default: real_transfer.py's, "
                        "$SCATTERXAI_REAL_AUDIO or ../shared/real-audio beside the repository; 'none': skip; "
                        "skipped with a message when the folder is absent)")
    args = p.parse_args(argv)
    audio = None if args.audio == "none" else args.audio or real_transfer.DEFAULT_AUDIO
    if audio is not None and not os.path.exists(os.path.join(audio, "manifest.csv")):
        print(f"no real recordings at {audio} (manifest.csv absent): transfer ranges skipped", flush=True)
        audio = None
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    features = os.path.join(args.run, "features.h5")
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for seed in args.seeds:
        results[seed] = one_seed(features, args.out, seed)
        if audio is not None:
            results[seed]["transfer"] = transfer(args.out, seed, audio)
        print(f"seed {seed}: S1 {results[seed]['s1']['macro']:.2f} %, S1+S2 {results[seed]['s1s2']['macro']:.2f} %",
              flush=True)
    with open(os.path.join(args.out, "seed_ranges.json"), "w") as f:
        json.dump({"threads": torch.get_num_threads(), "results": results}, f, indent=1)
    print(f"\ntorch threads: {torch.get_num_threads()}\n")
    print(tables(results))


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
