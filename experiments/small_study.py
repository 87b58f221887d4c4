#!/usr/bin/env python
"""A new user's small study before and after cross-validation: 72 tones, three text-labelled classes.

The study of the tests (``tests/user_study.py``: harmonic tones of 3–8 s at 22.05 kHz, amplitude-modulated
``am``, frequency-modulated ``fm`` (±3 %) at 4–12 Hz, or steady ``plain``; 24 per class, a meta CSV with
``file_name`` and ``label`` only) is extracted three ways:

* ``tiny, first window`` — the tests' transform (N = 2^13, J = 6, T = 2^6: a 0.19 s window, 0.75 to 2.2
  periods of a 4–12 Hz modulation), each note's first window only (with its 50 ms fade-in);
* ``tiny, every window`` — the same transform, ``--segments``: every 0.19 s window of every note is a row
  (~2,250 rows; the windows of one note share its fold);
* ``paper`` — the default transform (N = 2^18: 5.9 s), first window.

Then, on each:

* **before** — ``train`` as it was: one drawn 6:2:2 split (42 training, 15 validation, 15 test notes), the
  paper's network, BatchNorm statistics from the training batches (``--bn-recalibrate off``), training seeds
  0–4; the test macro accuracy of each seed, and how many seeds predict a single class for every test note;
* **after** — ``train --folds 5`` (grouped by recording, stratified, BatchNorm recalibrated: the study is
  small) with the small network (``--arch small``, what ``train`` suggests) and with the paper's (on the
  first-window extractions also without BatchNorm recalibration); the out-of-fold macro accuracy with its
  95 % bootstrap interval and the per-fold values.

Usage::

    python experiments/small_study.py [--out results/small_study] [--threads 1] [--skip-segments]

About 13 minutes on one core (measured with other jobs running; the every-window rows take most of it,
``--skip-segments`` leaves them out: about 5 minutes).  Everything goes to ``--out``; finished extractions
are reused.
"""

import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from scatterxai.features import extract_features  # noqa: E402
from scatterxai.model import TrainConfig, evaluate_model, train_crossval, train_model  # noqa: E402
from scatterxai.scattering import PAPER_CONFIG, ScatteringConfig  # noqa: E402
from tests.user_study import write_study  # noqa: E402

#: the tests' tiny transform (tests/conftest.py SMALL)
TINY = ScatteringConfig(N=2 ** 13, J=6, Q=(8, 2), T=2 ** 6)
EXTRACTIONS = {"tiny, first window": (TINY, False), "tiny, every window": (TINY, True),
               "paper, first window": (PAPER_CONFIG, False)}


def before(features: str, out: str, seeds) -> dict:
    """One drawn split, the paper's network, BatchNorm as the paper trains it: test macro per seed."""
    macro, single = [], 0
    for seed in seeds:
        model_dir = os.path.join(out, f"split_seed{seed}")
        train_model(features, input="s1s2", out_dir=model_dir, seed=seed, progress=False,
                    config=TrainConfig(bn_recalibrate=False), device="cpu")
        m = evaluate_model(features, model_dir=model_dir, out_dir=os.path.join(out, f"eval_seed{seed}"), device="cpu")
        macro.append(m["macro_accuracy"])
        single += len(set(m["predictions"]["predicted"])) == 1
    return {"macro": macro, "single_class_seeds": single, "n_test": m["n_examples"]}


def after(features: str, out: str, arch: str, bn: str = "auto") -> dict:
    model_dir = os.path.join(out, f"cv5_{arch}_bn{bn}")
    train_crossval(features, input="s1s2", out_dir=model_dir, folds=5, arch=arch, progress=False, device="cpu",
                   config=TrainConfig(bn_recalibrate=bn))
    with open(os.path.join(model_dir, "metrics.json")) as fh:
        m = json.load(fh)
    s = m["spread"]["macro_accuracy"]
    return {"macro": s["pooled"], "interval": s["interval"], "per_fold": s["per_fold"], "n": m["n_examples"]}


def pct(x) -> str:
    return f"{100 * x:.1f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=os.path.join("results", "small_study"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-segments", action="store_true")
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    meta, audio = os.path.join(args.out, "meta.csv"), os.path.join(args.out, "audio")
    if not os.path.isfile(meta):
        write_study(args.out, per_class=24)
    rows = []
    for name, (config, segments) in EXTRACTIONS.items():
        if segments and args.skip_segments:
            continue
        tag = name.replace(", ", "_").replace(" ", "_")
        features = os.path.join(args.out, f"{tag}.h5")
        extract_features(meta, audio, features, config=config, segments=segments, progress=False)
        b = before(features, os.path.join(args.out, tag), range(5))
        rows.append((name, "before: one 6:2:2 split, paper's network, seeds 0–4",
                     ", ".join(pct(v) for v in b["macro"]), f"{b['single_class_seeds']} of 5 seeds predict one class",
                     b["n_test"]))
        variants = [("small", "auto"), ("paper", "auto")] + ([("paper", "off")] if not segments else [])
        for arch, bn in variants:
            a = after(features, os.path.join(args.out, tag), arch, bn)
            flag = "" if bn == "auto" else f" --bn-recalibrate {bn}"
            rows.append((name, f"after: --folds 5 --arch {arch}{flag}", f"{pct(a['macro'])} "
                         f"[{pct(a['interval'][0])}, {pct(a['interval'][1])}]",
                         "per fold " + ", ".join(pct(v) for v in a["per_fold"]), a["n"]))
        print(f"{name}: done", file=sys.stderr)
    lines = ["| features | training | macro accuracy (%) | notes | tested rows |", "|---|---|---|---|---:|"]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(args.out, "small_study.md"), "w", encoding="utf-8") as fh:
        fh.write(text)
    return 0


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
