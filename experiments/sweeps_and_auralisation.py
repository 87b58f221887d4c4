#!/usr/bin/env python
"""Controlled variations and auralisation of a trained S1+S2 model (docs/analysis.md, "Controlled variations"
and "Auralisation"; issue #15).

What it measures
----------------
* **Rate tracking** — for vibrato, trill, tremolo and flatterzunge, the same note (3 repeats with their own
  draws) at 4–32 Hz in half-octave steps: slope and r² of log2(λ2 of peak S2 relevance) on log2(true rate),
  per method (LRP-[ε,z+] and LRP-ε by default), over all seven rates, with the peak sought among λ2 of
  2–64 Hz only (the window), and over the rates the corpus draws for the technique (what the network was
  trained on); the share of notes whose peak lies within ±½ octave of the rate; the predicted class along
  the sweep; Spearman ρ of true rate and peak with a permutation p.  Each sweep also scores the control maps
  (``scatterxai sweep``'s ``tracking_controls``: the input, the standardised input, a random map, and the
  constant and class-prior maps when the model's training features file is at hand) as rows ``control: …``:
  a method tracks the rate out of the training range only as far as it beats the input.
* **f0 tracking** — the same note over three octaves: slope and r² of log2(λ1 of peak relevance) on log2 f0.
* **Invariance profiles** — mean ± std Pearson r between notes that differ in one factor only, per layer
  (input before the log, the log-normalised input, conv0–2, fc1, relevance maps), for f0, dynamics,
  instrument (and rate), pooled over the techniques' sweeps.
* **Auralisation** — for a few correctly classified test notes per class (nearest A4), the part of the
  note its LRP-[ε,z+] map keeps and the rest: energy share, spectral centroid, energy below 2 kHz, rate and
  depth of the strongest envelope modulation, against the note's true modulation rate.

Writes ``OUT/sweeps/<factor>-<technique>/`` (one ``scatterxai sweep`` each), ``OUT/auralise/<note>/``,
``OUT/summary.json``, ``OUT/summary.md`` and the figures ``OUT/fig_sweeps.png`` (rate and f0 tracking),
``OUT/fig_invariance.png``, ``OUT/fig_auralise.png``; ``--figures DIR`` copies the three figures there as
small palette PNGs.

Usage::

    python experiments/sweeps_and_auralisation.py --model results/demo/models/s1s2 --out results/sweeps \\
        [--relevance results/demo/relevance.h5 --audio-root results/demo/data/audio] [--repeats 3] \\
        [--methods epsilon_plus,epsilon] [--per-class 2] [--figures figures]

Numbers to expect (the demo's S1+S2 model, ``--repeats 3``; README "Controlled variations and
auralisation"): the input's own S2 peak is within ±½ octave of the rate for 90–100 % of the rate-sweep
notes within the 2–64 Hz window, and no method beats it there (LRP-[ε,z+] 57–90 %, LRP-ε 67–86 %); f0
tracking exact only for the harp (slope 0.99, r² 0.84, as the input's peak); invariance to f0 and
instrument grows from the input (r ≈ 0.6–0.7) to fc1 (≈ 0.95); the relevant part of an auralised note
holds 3–18 % of its energy and (9 notes of 10) keeps the modulation at the true rate, deeper than the
complement.  360 synthetic notes and 10 auralisations: about 3 minutes on 2 cores.
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np

RATE_TECHNIQUES = ("vibrato", "trill", "tremolo", "flatterzunge")
POOLED_FACTORS = ("f0", "dynamics", "instrument", "rate")
TITLES = {"epsilon_plus": "LRP-[ε,z+]", "epsilon": "LRP-ε"}


def pooled(profiles):
    """Mean ± std over the union of the pairs of several invariance profiles (from their mean, std, n)."""
    out = {}
    for layer in profiles[0]:
        stats = [(p[layer]["mean"], p[layer]["std"], p[layer]["n_pairs"]) for p in profiles
                 if p[layer]["n_pairs"]]
        n = sum(k for _, _, k in stats)
        mean = sum(m * k for m, _, k in stats) / n
        var = sum(k * (s ** 2 + m ** 2) for m, s, k in stats) / n - mean ** 2
        out[layer] = {"mean": mean, "std": float(np.sqrt(max(var, 0.0))), "n_pairs": n}
    return out


def run_sweeps(args, out):
    from scatterxai.analysis.sweep.metrics import log_fit
    from scatterxai.analysis.sweep.run import SweepConfig, run_sweep
    from scatterxai.task import CLASSES

    results = {}
    jobs = [("rate", t) for t in RATE_TECHNIQUES] + [(f, t) for f in ("f0", "dynamics", "instrument")
                                                    for t in CLASSES]
    for factor, technique in jobs:
        key = f"{factor}-{technique}"
        done = os.path.join(out, "sweeps", key, "sweep.json")
        if args.reuse and os.path.isfile(done):
            with open(done, encoding="utf-8") as f:
                r = json.load(f)
        else:
            print(f"sweep {key}", file=sys.stderr, flush=True)
            config = SweepConfig(factor=factor, technique=technique, repeats=args.repeats, methods=args.methods,
                                 device=args.device)
            r = run_sweep(args.model, os.path.join(out, "sweeps", key), config)
        if factor == "rate":
            lo, hi = r["corpus_rate_hz"]
            true = np.array(r["true_hz"])
            inside = (true >= lo / 2 ** 0.25) & (true <= hi * 2 ** 0.25)   # within a quarter octave
            for fit in [*r["tracking"].values(), *r.get("tracking_controls", {}).values()]:
                sub = log_fit(true[inside], np.array(fit["peak_hz"])[inside])
                fit["in_range"] = {"slope": sub["slope"], "r2": sub["r2"], "n": sub["n"]}
        results[key] = r
    return results


def _fits(r, methods):
    """(name, fit) of each method, then of each control map (``control: input`` …) of a sweep."""
    return [*[(m, r["tracking"][m]) for m in methods],
            *[(f"control: {c}", fit) for c, fit in r.get("tracking_controls", {}).items()]]


def summarise_sweeps(results, methods):
    from scatterxai.task import CLASSES

    rows = []
    for t in RATE_TECHNIQUES:
        r = results[f"rate-{t}"]
        for m, fit in _fits(r, methods):
            rows.append({"technique": t, "instrument": r["instrument"], "method": m, "slope": fit["slope"],
                         "r2": fit["r2"], "spearman": fit.get("spearman"), "p": fit.get("p"),
                         "hit_rate": fit["hit_rate"], "window_slope": fit["window"]["slope"],
                         "window_r2": fit["window"]["r2"], "window_hit_rate": fit["window"]["hit_rate"],
                         "slope_in_range": fit["in_range"]["slope"], "r2_in_range": fit["in_range"]["r2"],
                         "corpus_rate_hz": r["corpus_rate_hz"],
                         "predicted": {str(k): int(v) for k, v in zip(*np.unique(r["predicted"],
                                                                                  return_counts=True))}})
    f0_rows = []
    for t in CLASSES:
        r = results[f"f0-{t}"]
        for m, fit in _fits(r, methods):
            f0_rows.append({"technique": t, "instrument": r["instrument"], "method": m, "slope": fit["slope"],
                            "r2": fit["r2"], "spearman": fit.get("spearman"), "p": fit.get("p"),
                            "hit_rate": fit["hit_rate"]})
    invariance = {}
    for factor in POOLED_FACTORS:
        keys = [k for k in results if k.startswith(factor + "-")]
        invariance[factor] = pooled([results[k]["invariance"] for k in keys])
    accuracy = {}
    for factor in ("f0", "dynamics", "instrument"):
        hits = [p == t for t in CLASSES for p in results[f"{factor}-{t}"]["predicted"]]
        accuracy[factor] = float(np.mean(hits))
    return {"rate_tracking": rows, "f0_tracking": f0_rows, "invariance": invariance,
            "accuracy_along_sweeps": accuracy}


def auralise_notes(args, out):
    from scatterxai.analysis.auralise.run import auralise_relevance
    from scatterxai.io.relevance import RelevanceFile

    with RelevanceFile(args.relevance) as rf:
        labels = np.asarray(rf.labels, dtype=np.int64)
        pred = np.asarray(rf.examples["pred"], dtype=np.int64)
        f0 = np.asarray(rf.examples["f0_hz"], dtype=float)
        classes = rf.classes
    chosen = []
    for c in range(len(classes)):
        rows = np.flatnonzero((labels == c) & (pred == c))
        rows = rows[np.argsort(np.abs(np.log2(f0[rows] / 440.0)), kind="stable")][:args.per_class]
        chosen += [int(k) for k in rows]
    notes = []
    for k in chosen:
        print(f"auralise example {k}", file=sys.stderr, flush=True)
        r = auralise_relevance(args.relevance, k, args.audio_root, os.path.join(out, "auralise", f"{k:04d}"),
                               method="epsilon_plus")
        notes.append(r)
    return notes


def summarise_auralisation(notes):
    """One row per auralised note: its ground truth, the strongest path and the measurements of each part."""
    rows = []
    for r in notes:
        row = {"class": r["label"], "note": r["note"], "instrument": r.get("instrument"),
               "modulation_hz": r["modulation_hz"], "f0_hz": r["f0_hz"], "peak_path": r["peak_path"]}
        for part in ("relevant", "complement"):
            row[part] = r["measurements"][part]
        rows.append(row)
    rate_ok = [abs(r["relevant"]["am_rate_hz"] - r["modulation_hz"]) <= 1.0 for r in rows]
    deeper = [r["relevant"]["am_depth"] > r["complement"]["am_depth"] for r in rows]
    return {"notes": rows, "n_relevant_at_true_rate": int(sum(rate_ok)),
            "n_relevant_deeper_than_complement": int(sum(deeper)), "n": len(rows)}


def _f(x, digits=2) -> str:
    """A fit number as text; None (how JSON gives back a NaN, with ``--reuse``) prints as NaN does."""
    return "nan" if x is None else f"{x:.{digits}f}"


def _rho(row) -> str:
    if row.get("spearman") is None or not np.isfinite(row["spearman"]):
        return "–"
    return f"{row['spearman']:.2f} ({row['p']:.3f})"


def markdown(summary):
    from scatterxai._util.markdown import md_table

    lines = ["## Rate tracking (log2 λ2 of peak S2 relevance on log2 true rate, 4–32 Hz)", ""]
    lines.append(md_table(["technique", "instrument", "method", "slope", "r²", "Spearman ρ (p)", "hits ±½ oct.",
                           "slope, r², hits (λ2 window)", "slope, r² (corpus range)", "predicted along the sweep"],
                          [[r["technique"], r["instrument"], TITLES.get(r["method"], r["method"]),
                            _f(r["slope"]), _f(r["r2"]), _rho(r), f"{100 * r['hit_rate']:.0f} %",
                            f"{_f(r['window_slope'])}, {_f(r['window_r2'])}, {100 * r['window_hit_rate']:.0f} %",
                            f"{_f(r['slope_in_range'])}, {_f(r['r2_in_range'])}",
                            ", ".join(f"{k} {v}" for k, v in r["predicted"].items())]
                           for r in summary["rate_tracking"]]))
    lines += ["", "## f0 tracking (log2 λ1 of peak relevance on log2 f0, three octaves)", ""]
    lines.append(md_table(["technique", "instrument", "method", "slope", "r²", "Spearman ρ (p)", "hits ±½ oct."],
                          [[r["technique"], r["instrument"], TITLES.get(r["method"], r["method"]),
                            _f(r["slope"]), _f(r["r2"]), _rho(r), f"{100 * r['hit_rate']:.0f} %"]
                           for r in summary["f0_tracking"]]))
    lines += ["", "## Invariance profiles (Pearson r between notes differing in one factor, mean ± std)", ""]
    inv = summary["invariance"]
    layers = list(next(iter(inv.values())))
    lines.append(md_table(["factor"] + layers + ["pairs"],
                          [[f] + [f"{inv[f][layer]['mean']:.3f} ± {inv[f][layer]['std']:.3f}" for layer in layers]
                           + [str(inv[f][layers[0]]["n_pairs"])] for f in inv]))
    lines += ["", "Accuracy along the f0, dynamics and instrument sweeps: " + ", ".join(
        f"{k} {100 * v:.0f} %" for k, v in summary["accuracy_along_sweeps"].items()), ""]
    if "auralisation" in summary:
        a = summary["auralisation"]
        lines += ["## Auralisation (LRP-[ε,z+]: relevant part / complement)", "",
                  f"Strongest envelope modulation of the relevant part within 1 Hz of the true rate: "
                  f"{a['n_relevant_at_true_rate']} of {a['n']} notes; deeper than in the complement: "
                  f"{a['n_relevant_deeper_than_complement']} of {a['n']}.", ""]
        rows = []
        for r in a["notes"]:
            rel, comp = r["relevant"], r["complement"]
            rows.append([r["class"], r["note"], f"{r['modulation_hz']:.1f}", f"{r['f0_hz']:.0f}",
                         f"{r['peak_path']['lambda1_hz']:.0f}, {r['peak_path']['lambda2_hz']:.1f}",
                         f"{100 * rel['energy_share']:.1f} / {100 * comp['energy_share']:.1f} %",
                         f"{rel['centroid_hz']:.0f} / {comp['centroid_hz']:.0f}",
                         f"{100 * rel['below_2000_hz_share']:.0f} / {100 * comp['below_2000_hz_share']:.0f} %",
                         f"{rel['am_rate_hz']:.1f} / {comp['am_rate_hz']:.1f}",
                         f"{rel['am_depth']:.2f} / {comp['am_depth']:.2f}"])
        lines.append(md_table(["class", "note", "true rate (Hz)", "f0 (Hz)", "peak path λ1, λ2 (Hz)", "energy",
                               "centroid (Hz)", "below 2 kHz", "AM rate (Hz)", "AM depth"], rows))
    return "\n".join(lines) + "\n"


def figures(results, summary, notes, out, methods):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf

    from scatterxai.maps.grid import grid_layout
    from scatterxai.viz import sweep as viz
    from scatterxai.viz.plots import lambda_map, spectrogram

    def tracking_panel(ax, r, title, xlabel, ylabel):
        for m, marker in zip(methods, "os^"):
            fit = r["tracking"][m]
            viz.tracking(r["true_hz"], fit["peak_hz"], ax=ax, marker=marker,
                         label=f"{TITLES.get(m, m)}: slope {fit['slope']:.2f}, r² {fit['r2']:.2f}")
        fit = r.get("tracking_controls", {}).get("input")
        if fit is not None:            # the control that can track: the input itself
            viz.tracking(r["true_hz"], fit["peak_hz"], ax=ax, marker="x", color="0.5",
                         label=f"control, the input: slope {fit['slope']:.2f}, r² {fit['r2']:.2f}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=6, loc="upper left")

    written = {}
    fig, axes = plt.subplots(1, 5, figsize=(17, 3.5), layout="constrained")
    for ax, t in zip(axes, RATE_TECHNIQUES):
        r = results[f"rate-{t}"]
        lo, hi = r["corpus_rate_hz"]
        ax.axvspan(lo, hi, color="0.9", zorder=-1)
        tracking_panel(ax, r, f"{t} ({r['instrument']}): rate sweep", "true modulation rate (Hz)",
                       "λ2 of peak S2 relevance (Hz)")
    r = results["f0-trill"]
    tracking_panel(axes[-1], r, f"trill ({r['instrument']}): f0 sweep", "true f0 (Hz)",
                   "λ1 of peak relevance (Hz)")
    written["fig_sweeps"] = os.path.join(out, "fig_sweeps.png")
    fig.savefig(written["fig_sweeps"], dpi=70)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    inv = summary["invariance"]
    for i, factor in enumerate(inv):
        viz.invariance_profile(inv[factor], ax=ax, label=factor, offset=0.12 * (i - 1.5))
    ax.legend(fontsize=7)
    ax.set_title("invariance: notes differing in one factor (pooled over techniques)", fontsize=9)
    written["fig_invariance"] = os.path.join(out, "fig_invariance.png")
    fig.savefig(written["fig_invariance"], dpi=70)
    plt.close(fig)

    if notes:
        from scatterxai.io.relevance import RelevanceFile
        first = {}
        for r in notes:
            first.setdefault(r["label"], r)
        cols = list(first.values())
        fig, axes = plt.subplots(3, len(cols), figsize=(3.3 * len(cols), 8.4), layout="constrained",
                                 squeeze=False)
        with RelevanceFile(cols[0]["relevance"]) as rf:
            paths = rf.paths
            local = rf.local("epsilon_plus")
        for j, r in enumerate(cols):
            grid, lam1, lam2 = grid_layout(local[r["example"]], paths)
            lambda_map(grid, lam1, lam2, ax=axes[0, j], cmap="RdBu_r", symmetric=True, f0_hz=r["f0_hz"],
                       colorbar=False)
            axes[0, j].set_title(f"{r['label']}: {r['note'][:28]}\nrate {r['modulation_hz']:.1f} Hz", fontsize=8)
            for i, part in ((1, "relevant"), (2, "complement")):
                y, sr = sf.read(r["files"][part])
                spectrogram(y, sr, ax=axes[i, j], fmax=8000.0)
                m = r["measurements"][part]
                axes[i, j].set_title(f"{part}: {100 * m['energy_share']:.0f} % energy, AM "
                                     f"{m['am_rate_hz']:.1f} Hz × {m['am_depth']:.2f}", fontsize=8)
        written["fig_auralise"] = os.path.join(out, "fig_auralise.png")
        fig.savefig(written["fig_auralise"], dpi=60)
        plt.close(fig)
    return written


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="trained S1+S2 model directory (e.g. results/demo/models/s1s2)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--relevance", default=None,
                   help="relevance file of the model's test notes (default: <model>/../../relevance.h5)")
    p.add_argument("--audio-root", default=None,
                   help="audio of those notes (default: <model>/../../data/audio)")
    p.add_argument("--repeats", type=int, default=3, help="base notes per sweep")
    p.add_argument("--methods", default="epsilon_plus,epsilon", help="attribution methods of the sweeps")
    p.add_argument("--per-class", type=int, default=2, help="auralised test notes per class")
    p.add_argument("--device", default="auto")
    p.add_argument("--figures", default=None, help="also copy the figures here as small PNGs")
    p.add_argument("--reuse", action="store_true", help="reuse the sweeps already in OUT (their sweep.json)")
    args = p.parse_args(argv)
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(args.model)))
    args.relevance = args.relevance or os.path.join(run_dir, "relevance.h5")
    args.audio_root = args.audio_root or os.path.join(run_dir, "data", "audio")
    args.methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    from scatterxai.model import load_model
    load_model(args.model, device="cpu")   # a wrong --model is an error before anything is written
    os.makedirs(args.out, exist_ok=True)

    from scatterxai._util.jsonio import write_json

    results = run_sweeps(args, args.out)
    summary = summarise_sweeps(results, args.methods)
    notes = []
    if os.path.isfile(args.relevance):
        notes = auralise_notes(args, args.out)
        summary["auralisation"] = summarise_auralisation(notes)
    else:
        print(f"no relevance file at {args.relevance}: no auralisation", file=sys.stderr)
    write_json(os.path.join(args.out, "summary.json"), summary)
    text = markdown(summary)
    with open(os.path.join(args.out, "summary.md"), "w", encoding="utf-8") as f:
        f.write(text)
    written = figures(results, summary, notes, args.out, args.methods)
    if args.figures:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from synthetic_study import copy_figures
        staging = os.path.join(args.out, "_figures")
        os.makedirs(staging, exist_ok=True)
        for path in written.values():
            shutil.copy(path, staging)
        copy_figures(staging, args.figures)
    print(text)
    print(json.dumps({k: v for k, v in written.items()}, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
