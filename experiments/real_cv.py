#!/usr/bin/env python
"""Real recordings, cross-validated by source: from scratch, fine-tuned from the synthetic model, or as is.

A development set of real recordings (a folder with the audio files and a ``manifest.csv`` whose columns
include ``file_name``, ``technique`` and ``source_repo``; it is read in place, never copied) is cut into
windows (``extract --segments``: every window of every file is a row) and cross-validated in K folds
grouped by source (the recordings of one source — one repository, hence one recording set-up — never sit
on both sides of a fold) and stratified by class as far as the sources allow.  Three models are compared
on the same folds:

(a) **from scratch** — ``train --folds K --group-by source`` with the small-study network
    (``--arch small``; BatchNorm recalibration on: the study is small), and with the paper's network;
(b) **fine-tuned** from the synthetic model — ``train --folds K --group-by source --init MODEL_DIR``
    (μ from the pretrained model, and from the new data; all layers trained, and the convolutions frozen);
(c) **the synthetic model as is** — its predictions on every row, split by the same folds (nothing is
    trained on the real recordings).

Printed: the out-of-fold macro and overall accuracy per model, with the 95 % bootstrap interval
(recordings resampled within each class) and the per-fold values; written to ``OUT/real_cv.json`` and
``OUT/real_cv.md``.

Usage (one command; re-run it with the final demo model)::

    python experiments/real_cv.py --pretrained results/demo/models/s1s2 [--real DIR] [--out results/real_cv]
                                  [--folds 4] [--seed 0] [--threads 1]

``--real`` defaults to ``$SCATTERXAI_REAL_AUDIO``, else ``../shared/real-audio`` next to the repository;
when the folder is absent the script says so and exits with status 0.  About 5 minutes on one core
(measured on 24 files, 45 windows, with other jobs running).
"""

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from real_transfer import DEFAULT_AUDIO as DEFAULT_REAL  # noqa: E402


def write_meta(real: str, out: str) -> str:
    """OUT/meta.csv: file_name, label (the technique), source (the source repository), and instrument when
    the manifest has it (file_name, technique and source_repo are the columns the script needs)."""
    with open(os.path.join(real, "manifest.csv"), encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows, columns = list(reader), reader.fieldnames or []
    missing = [c for c in ("file_name", "technique", "source_repo") if c not in columns]
    if missing:
        raise SystemExit(f"real_cv: {os.path.join(real, 'manifest.csv')} lacks the column(s) {missing}; it needs "
                         f"file_name, technique and source_repo (it has {columns})")
    extra = ["instrument"] if "instrument" in columns else []
    meta = os.path.join(out, "meta.csv")
    with open(meta, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file_name", "label", "source"] + extra)
        for r in rows:
            w.writerow([r["file_name"], r["technique"], r["source_repo"]] + [r[c] for c in extra])
    return meta


def features(real: str, out: str, pretrained: str) -> str:
    """Features of every window of every file, with the pretrained model's scattering (resumable)."""
    from scatterxai.features import extract_features
    from scatterxai.model import load_model
    scattering = load_model(pretrained, device="cpu").scattering
    path = os.path.join(out, "features.h5")
    summary = extract_features(write_meta(real, out), real, path, config=scattering, segments=True, progress=False)
    print(summary.describe().splitlines()[0], file=sys.stderr)
    return path


def as_is(features_path: str, pretrained: str, folds_of: dict, out: str) -> dict:
    """(c): the pretrained model's predictions, per fold of the cross-validation (same rows)."""
    from scatterxai.features import FeatureFile
    from scatterxai.model import load_model
    from scatterxai.model.cvreport import oof_metrics
    model = load_model(pretrained, device="cpu")
    with FeatureFile(features_path) as ff:
        model.check_compatible(ff, classes="subset")
        rows = np.array(sorted(folds_of), dtype=np.int64)
        logits = model.logits(ff.load(rows))
        fold = np.array([folds_of[r] for r in rows.tolist()], dtype=np.int64)
        folds = [{"fold": k, "counts": {"test": [], "training": []}, "best_epoch": None} for k in np.unique(fold)]
        m = oof_metrics(ff, rows, logits, fold, folds, labels=model.labels_of(ff, rows), classes=model.classes)
    m["model_classes"] = list(model.classes)
    return m


def run(args) -> dict:
    from scatterxai.errors import ModelError
    from scatterxai.model import InitSpec, TrainConfig, load_model, train_crossval
    load_model(args.pretrained, device="cpu")   # a wrong --pretrained is an error before anything is written
    os.makedirs(args.out, exist_ok=True)
    f = features(args.real, args.out, args.pretrained)
    common = dict(input="s1s2", folds=args.folds, seed=args.seed, group_by="source", device="cpu", progress=False,
                  threads=args.threads)
    variants = {
        "(a) from scratch, small network": dict(arch="small"),
        "(a) from scratch, paper's network": dict(arch="paper"),
        "(b) fine-tuned, pretrained μ": dict(init=InitSpec(args.pretrained, mu="pretrained"), input=None),
        "(b) fine-tuned, data μ": dict(init=InitSpec(args.pretrained, mu="data"), input=None),
        "(b) fine-tuned, frozen convolutions": dict(init=InitSpec(args.pretrained, freeze=True), input=None),
    }
    results = {}
    for name, options in variants.items():
        model_dir = os.path.join(args.out, "models", name.split(")")[0].strip("(") + "_" + str(len(results)))
        t0 = time.perf_counter()
        train_crossval(f, out_dir=model_dir, config=TrainConfig(bn_recalibrate="auto"), **{**common, **options})
        with open(os.path.join(model_dir, "metrics.json")) as fh:
            results[name] = json.load(fh)
        results[name]["seconds"] = time.perf_counter() - t0
        print(f"{name}: {summary_line(results[name])}", file=sys.stderr)
    first = results[next(iter(results))]
    folds_of = dict(zip(first["predictions"]["row"], first["predictions"]["fold"]))
    try:
        results["(c) synthetic model as is"] = as_is(f, args.pretrained, folds_of, args.out)
    except ModelError as e:   # a pretrained model without these classes cannot be applied as is
        print(f"(c) skipped: {e}", file=sys.stderr)
    return results


def summary_line(m: dict) -> str:
    s = m["spread"]
    out = []
    for key in ("macro_accuracy", "overall_accuracy"):
        v = s[key]
        lo, hi = v["interval"]
        out.append(f"{key.split('_')[0]} {100 * v['pooled']:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]")
    return "; ".join(out) + " — per fold " + ", ".join("—" if not np.isfinite(x) else f"{100 * x:.0f}"
                                                       for x in s["macro_accuracy"]["per_fold"])


def table(results: dict, args) -> str:
    first = next(iter(results.values()))
    classes = first["classes"]
    lines = [f"Real recordings, {args.folds} folds grouped by source (out-of-fold, every window of every file; "
             f"95 % bootstrap interval over recordings; pretrained: {os.path.abspath(args.pretrained)})", "",
             "| model | macro (%) | 95 % interval | overall (%) | per fold, macro (%) | "
             + " | ".join(classes) + " |", "|---|---:|---:|---:|---|" + "---:|" * len(classes)]
    for name, m in results.items():
        s = m["spread"]
        lo, hi = s["macro_accuracy"]["interval"]
        per_class = " | ".join("—" if m["per_class_accuracy"].get(c) is None else
                               f"{100 * m['per_class_accuracy'][c]:.0f}" for c in classes)
        lines.append(f"| {name} | {100 * m['macro_accuracy']:.1f} | {100 * lo:.1f}–{100 * hi:.1f} | "
                     f"{100 * m['overall_accuracy']:.1f} | "
                     + ", ".join("—" if x is None or not np.isfinite(x) else f"{100 * x:.0f}"
                                 for x in s["macro_accuracy"]["per_fold"]) + f" | {per_class} |")
    counts = first["per_fold"]
    lines += ["", "Test windows per fold: " + ", ".join(f"fold {f['fold']}: {f['n_examples']}" for f in counts)]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pretrained", required=True, metavar="MODEL_DIR",
                   help="the synthetic model to fine-tune and to apply as is (e.g. results/demo/models/s1s2)")
    p.add_argument("--real", default=DEFAULT_REAL, metavar="DIR", help="folder of the real recordings")
    p.add_argument("--out", default=os.path.join("results", "real_cv"), metavar="DIR")
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: results independent of the load)")
    args = p.parse_args(argv)
    if not os.path.isfile(os.path.join(args.real, "manifest.csv")):
        print(f"real_cv: skipped — no real recordings at {os.path.abspath(args.real)} (a folder with manifest.csv "
              f"and the audio files; set --real or SCATTERXAI_REAL_AUDIO)")
        return 0
    results = run(args)
    text = table(results, args)
    print(text)
    with open(os.path.join(args.out, "real_cv.json"), "w", encoding="utf-8") as fh:
        json.dump({k: {kk: vv for kk, vv in v.items() if kk != "predictions"} for k, v in results.items()}, fh,
                  indent=1, default=float)
    with open(os.path.join(args.out, "real_cv.md"), "w", encoding="utf-8") as fh:
        fh.write(text)
    return 0


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
