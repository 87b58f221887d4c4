#!/usr/bin/env python
"""Ablation of the synthetic corpus' realism factors: what each one does for transfer to real recordings.

For each corpus condition — every factor on (``all``), every factor off (``none``: the studio corpus), and
every factor off in turn (``all-<factor>``) — the script synthesises the corpus (``--scale``, seed 0),
extracts its scattering, trains the S1+S2 network (seed 0, or each of ``--seeds``: the table then gives
ranges over the seeds, which move a model by several of 24 files), evaluates it on the synthetic test split and
runs ``experiments/real_transfer.py`` on a folder of real recordings: accuracy on the first window of each
file, on whole files (consecutive windows, mean probabilities) and on 1.5-s excerpts from 1.0 s, and the
localisation of the top S2 relevance (within ±1 octave of the manifest's rate) of each attribution method.
The table gives the first of ``--methods`` (default LRP-[ε,z+]) beside the class-prior control (the median
training rate of the predicted class: what the prediction alone localises); each condition's
``transfer/transfer.md`` has every method.

Every condition lives in ``OUT/<condition>/`` (corpus, features, model, transfer tables) and is reused
when the script is run again, so an interrupted ablation resumes.  ``OUT/ablation.md`` holds the table.

``--proxy`` scatters at 11,025 Hz with N = 2^16 (the paper's 5.94-s window and 186-ms frames, carriers up
to 5.5 kHz) for a ~5× cheaper iteration; the README's numbers say which configuration they come from.

Usage::

    python experiments/realism_ablation.py --out results/ablation [--scale 0.3] [--audio ../shared/real-audio]
        [--conditions all,none,all-excerpt,...] [--proxy] [--methods epsilon_plus,gradient_x_input]
        [--seeds 0 1 2 3]

Without the real-audio folder the script says so and exits 0 (the synthetic numbers need no recordings:
``--synthetic-only`` computes them anyway).
"""

import argparse
import json
import os

import real_transfer  # the script's folder is on sys.path


def parse_args(argv=None):
    from scatterxai.task import REALISM_FACTORS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join("results", "ablation"))
    p.add_argument("--audio", default=None, help="real recordings with manifest.csv (default: real_transfer.py's, "
                   "$SCATTERXAI_REAL_AUDIO or ../shared/real-audio beside the repository)")
    p.add_argument("--scale", type=float, default=0.3)
    p.add_argument("--conditions", default=",".join(["all", "none"] + [f"all-{f}" for f in REALISM_FACTORS]))
    p.add_argument("--methods", default="epsilon_plus,epsilon,gradient_x_input")
    p.add_argument("--proxy", action="store_true", help="scatter at 11,025 Hz, N = 2^16 (cheaper)")
    p.add_argument("--synthetic-only", action="store_true", help="no real recordings needed")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="training seeds per condition (same corpus and features); several give ranges")
    return p.parse_args(argv)


def config(proxy):
    import scatterxai as sx
    return sx.ScatteringConfig(sr=11025, N=2 ** 16, J=11, Q=(8, 2), T=2 ** 11) if proxy else sx.PAPER_CONFIG


def run_condition(name, args, seed=0):
    """Corpus → features → S1+S2 model (training ``seed``) → synthetic test metrics (reused when present)."""
    from scatterxai.data.synth import synthesize_corpus
    from scatterxai.features import extract_features
    from scatterxai.model import train_model
    from scatterxai.model.evaluate import evaluate_model
    d = os.path.join(args.out, name)
    os.makedirs(d, exist_ok=True)
    meta = synthesize_corpus(os.path.join(d, "data"), scale=args.scale, seed=0, jobs=args.jobs, progress=False,
                             realism=name)
    feats = os.path.join(d, "features.h5")
    if not os.path.exists(feats):
        extract_features(meta, os.path.join(d, "data", "audio"), feats, config=config(args.proxy), progress=False)
    tag = "" if seed == 0 else f"_seed{seed}"
    model = os.path.join(d, "models", "s1s2" + tag)
    if not os.path.exists(os.path.join(model, "config.json")):
        train_model(feats, input="s1s2", out_dir=model, seed=seed, progress=False)
    metrics = os.path.join(d, "eval" + tag, "metrics.json")
    if not os.path.exists(metrics):
        evaluate_model(feats, model_dir=model, out_dir=os.path.dirname(metrics))
    with open(metrics, encoding="utf-8") as f:
        return d, model, json.load(f)["macro_accuracy"]



def transfer(d, model, args, seed=0):
    """Run real_transfer.py once per condition and seed; returns its transfer.json (reused when present)."""
    out = os.path.join(d, "transfer" + ("" if seed == 0 else f"_seed{seed}"))
    path = os.path.join(out, "transfer.json")
    if not os.path.exists(path):
        real_transfer.main(["--model", model, "--audio", args.audio, "--out", out, "--methods", args.methods])
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _cells(counts):
    """"a/n · b/n · c/n"; with several seeds (lists of counts) "a1–a2 · …" over seeds, "/n" once."""
    def one(k):
        if k not in counts:
            return "–"
        if isinstance(counts[k], list):
            lo, hi = min(c[0] for c in counts[k]), max(c[0] for c in counts[k])
            return f"{lo}" if lo == hi else f"{lo}–{hi}"
        return f"{counts[k][0]}/{counts[k][1]}"
    text = " · ".join(one(k) for k in real_transfer.CONDITIONS)
    n = next((c[0][1] for c in counts.values() if isinstance(c, list)), None)
    return text if n is None else f"{text} (of {n})"


def label(name):
    """A condition as the reader thinks of it: "all", "none", "all − room" (several missing: "a + b"), with
    "on 50 % of the notes" for a mixed corpus ("…@0.5")."""
    from scatterxai.task import REALISM_FACTORS
    name, _, share = name.partition("@")
    on = f" on {float(share):.0%} of the notes".replace("%", " %") if share else ""
    present = set(name.split("+"))
    missing = [f for f in REALISM_FACTORS if f not in present]
    if name in ("all", "none") or len(missing) > len(REALISM_FACTORS) // 2:
        return name + on
    return "all − " + ", ".join(missing) + on


def table(rows, args):
    from scatterxai.explain.base import method_title
    method = method_title(args.methods.split(",")[0])
    seeds = "seed 0" if args.seeds == [0] else "training seeds " + ", ".join(map(str, args.seeds)) + " (ranges)"
    lines = [f"Corpus scale {args.scale}, seed 0; scattering: "
             f"{'proxy 11,025 Hz, N = 2^16' if args.proxy else 'the paper configuration'}; S1+S2 model, {seeds}.  "
             f"Cells: whole file · first window · 1.5-s excerpt from 1.0 s; localised: top S2 relevance within "
             f"±1 octave of the manifest's rate.", "",
             f"| corpus | synthetic test macro | classified | localised, {method} | localised, class-prior "
             f"control |", "|---|---:|---:|---:|---:|"]
    for name, macro, acc, loc, prior in rows:
        lo, hi = min(macro), max(macro)
        m = f"{100 * lo:.1f} %" if f"{100 * lo:.1f}" == f"{100 * hi:.1f}" else f"{100 * lo:.1f}–{100 * hi:.1f} %"
        lines.append(f"| {label(name)} | {m} | {_cells(acc)} | {_cells(loc)} | {_cells(prior)} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    args.audio = args.audio or real_transfer.DEFAULT_AUDIO
    have_audio = os.path.isfile(os.path.join(args.audio, "manifest.csv"))
    if not have_audio and not args.synthetic_only:
        print(f"real-audio folder {os.path.abspath(args.audio)} (with manifest.csv) is absent: nothing to "
              f"measure; give --audio DIR, or --synthetic-only")
        return 0
    from scatterxai.data.synth.realism import parse_realism
    names = [parse_realism(c).name for c in args.conditions.split(",") if c.strip()]
    methods = [m for m in args.methods.split(",") if m]
    rows = []
    for name in names:
        macros, per_seed = [], []
        for seed in args.seeds:
            d, model, macro = run_condition(name, args, seed)
            macros.append(macro)
            per_seed.append(real_transfer.summary(transfer(d, model, args, seed), methods[0]) if have_audio
                            else ({}, {}, {}))
            print(f"{name}, seed {seed}: synthetic macro {100 * macro:.1f} %; " + ", ".join(
                f"{c} {a[0]}/{a[1]}" for c, a in per_seed[-1][0].items()), flush=True)
        if len(args.seeds) == 1:
            cells = per_seed[0]
        else:   # counts per seed, as lists
            cells = tuple({k: [s[i][k] for s in per_seed if k in s[i]] for k in per_seed[0][i]} for i in range(3))
        rows.append((name, macros, *cells))
    text = table(rows, args)
    with open(os.path.join(args.out, "ablation.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
