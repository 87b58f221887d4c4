#!/usr/bin/env python
"""The control of the S1 score: how far knowing the instrument goes, and how well S1 knows it.

S1 averages each carrier band over 186-ms frames: it sees a note's spectrum, not its modulation at 4–30 Hz.
So an S1 network mostly answers "which instrument is this, and what does that instrument play?".  On
SOL-PMT that goes far (strings play 2,529 of its 2,530 tremolos, the harp 221 of its 286 bisbigliandos, and
only bassoon, oboe and trombone are listed with vibrato), and the paper's S1 network reaches 80.6 %.  This
script measures that shortcut as a control for the S1 row of Table 1:

* **instrument prior** (:func:`scatterxai.model.metrics.instrument_prior`; ``scatterxai run`` prints it under
  Table 1 of its report): the test macro accuracy of a rule that *knows* each test note's instrument and
  answers the technique that instrument plays most in the training split, each class weighted as the
  networks' loss weights it (w_c = max_k n_k / n_c, so that a rare class is not always outvoted); an
  instrument without training notes gets the class with the largest weighted count overall.  Measured on
  the run's corpus and on SOL-PMT's published split (bundled with the package: the same rule, its
  instrument column), or with ``--features`` on that file's own notes;
* **what S1 tells of the instrument** (from the run's ``features.h5``): logistic-regression probes
  (balanced class weights, fit on the training split) on each note's S1 time statistics — mean and
  standard deviation over frames of log1p(S1 / (c·μ)), μ the training mean, c = 0.1 as the network's
  input — scored by balanced accuracy on the test split, for the instrument family and for the technique;
* **S1 told the instrument** (``--given-instrument SEED...``): S1 networks trained as ``scatterxai train
  --input s1`` trains them (the package's own :func:`scatterxai.model.train.fit`, the same settings and seeds),
  once on S1 alone and once with the note's instrument added as one-hot input channels (constant over frames);
  their test macro accuracy per seed.  An S1 network that identified every instrument perfectly could do no
  better than the second: the ceiling that better synthetic timbres could lift S1 to.

Usage::

    python experiments/s1_prior.py --run results/demo
    python experiments/s1_prior.py --run results/demo --given-instrument 0 1 2 3 4   # + 10 networks, ~45 s
    python experiments/s1_prior.py --features DIR/features.h5     # prior and probes of any corpus' features

The run is only read; the networks are trained in memory and not written.  Seconds on the demo without
``--given-instrument``.
"""

import argparse
import json
import os

import numpy as np

from scatterxai._util.cliargs import SEED
from scatterxai.data.loaders import SOL_META_CSV
from scatterxai.data.meta import read_meta_csv
from scatterxai.errors import ParameterError
from scatterxai.features import FeatureFile
from scatterxai.model.directory import prepare_input
from scatterxai.model.metrics import instrument_prior, paper_macro
from scatterxai.scattering.normalize import LOG_C

#: the columns this script reads from a meta CSV
INSTRUMENT, TECHNIQUE, SUBSET = "instrument", "modulation technique", "subset"


def s1_statistics(features_path, c):
    """(notes × 2·n_S1) S1 time statistics of the network's input (log constant ``c``, the file's training
    mean μ, as :func:`scatterxai.model.directory.prepare_input` makes it for the S1 network), and the notes'
    columns."""
    with FeatureFile(features_path) as ff:
        s1 = ff.table.s1
        X = prepare_input(ff.rows(), s1, ff.mu[s1], c).numpy()
        cols = {k: np.asarray(ff.examples[k], dtype=object)
                for k in ("instrument family", INSTRUMENT, TECHNIQUE, SUBSET) if k in ff.examples}
    return np.concatenate([X.mean(-1), X.std(-1)], axis=1), cols


def probe(X, y, subset, seed=0):
    """Balanced test accuracy of a logistic-regression probe fit on the training rows (and per class)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    train, test = subset == "training", subset == "test"
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, class_weight="balanced",
                                                             random_state=seed))
    clf.fit(X[train], y[train])
    pred = clf.predict(X[test])
    labels = sorted(set(y[test]))
    recall = {c: float(np.mean(pred[y[test] == c] == c)) for c in labels}
    return float(np.mean(list(recall.values()))), recall


def _pct(x):
    return f"{100 * x:.1f} %"


def print_features_prior(features):
    """The instrument prior of a features file's own notes (its instrument, technique and subset columns)."""
    with FeatureFile(features) as ff:
        classes = list(ff.classes)
        cols = {k: np.asarray(ff.examples[k], dtype=object) for k in (INSTRUMENT, TECHNIQUE, SUBSET)
                if k in ff.examples}
    if len(cols) < 3:
        print(f"instrument prior: {features} lacks the {INSTRUMENT!r}, {TECHNIQUE!r} or {SUBSET!r} column\n")
        return
    macro, detail = _prior(cols, classes, features)
    print(f"instrument prior of {features} ({len(cols[SUBSET])} notes, test split): {macro} ({detail})\n")


def _prior(cols, classes, name):
    """The instrument prior of ``cols`` (instrument, technique, subset) as printed: (macro, per class)."""
    try:
        per_class, macro = instrument_prior(cols[INSTRUMENT], cols[TECHNIQUE], cols[SUBSET], classes)
    except ParameterError as e:
        raise SystemExit(f"error: {name}: {e}") from None
    return _pct(macro), ", ".join(f"{c} {100 * a:.0f}" for c, a in per_class.items())


def print_probes(features, c):
    """The probes of the module docstring on ``features`` (log constant ``c``), printed."""
    X, cols = s1_statistics(features, c)
    print(f"Logistic-regression probes on the S1 time statistics of {features} (balanced test accuracy):\n")
    for target in ("instrument family", TECHNIQUE):
        if target not in cols:
            print(f"- {target}: not in {features}")
            continue
        acc, recall = probe(X, cols[target], cols[SUBSET])
        worst = sorted(recall.items(), key=lambda kv: kv[1])[:3]
        print(f"- {target}: {_pct(acc)} over {len(recall)} classes (lowest: "
              + ", ".join(f"{c} {100 * r:.0f} %" for c, r in worst) + ")")


def given_instrument(features, c, seeds):
    """Test macro accuracy (%) of S1 networks without and with the instrument's one-hot channels, per seed:
    {"S1": [...], "S1 + instrument": [...]} (module docstring)."""
    import dataclasses

    import torch

    from scatterxai.model import train as T
    from scatterxai.model.directory import prepare_input
    from scatterxai.model.metrics import class_weights, classification_metrics

    dev = torch.device("cpu")
    with FeatureFile(features) as ff:
        if INSTRUMENT not in ff.examples:
            raise SystemExit(f"error: {features} has no {INSTRUMENT!r} column")
        channels = T.input_channels(ff.table, "s1")
        mu = np.asarray(ff.mu, np.float64)[channels]
        rows = {s: ff.indices(s) for s in ("training", "validation", "test")}
        config = dataclasses.replace(T.TrainConfig(), c=c).resolved(T.n_recordings(ff))
        data = T.load_rows(ff, channels, rows["training"], rows["validation"], mu, config.c, dev)
        x_test = prepare_input(ff.rows(rows["test"]), channels, mu, config.c, device=dev)
        y_test = T.labels_of(ff, rows["test"], len(ff.classes))
        instrument = np.asarray(ff.examples[INSTRUMENT], dtype=object)
    names = sorted(set(instrument))

    def with_instrument(x, subset):
        onehot = torch.zeros(x.shape[0], len(names), x.shape[-1], dtype=x.dtype)
        onehot[torch.arange(x.shape[0]), [names.index(i) for i in instrument[rows[subset]]]] = 1.0
        return torch.cat([x, onehot], 1)

    told = dataclasses.replace(data, channels=np.arange(len(channels) + len(names)),
                               x_tr=with_instrument(data.x_tr, "training"),
                               x_va=with_instrument(data.x_va, "validation"))
    weights = class_weights(data.y_tr, len(data.classes))
    out = {"S1": [], "S1 + instrument": []}
    for seed in seeds:
        for name, d, x in (("S1", data, x_test), ("S1 + instrument", told, with_instrument(x_test, "test"))):
            net = T.fit(d, weights, seed=seed, dev=dev, config=config, progress=False)[0].eval()
            with torch.no_grad():
                pred = torch.cat([net(x[i:i + 64]) for i in range(0, x.shape[0], 64)]).argmax(1).numpy()
            out[name].append(100 * classification_metrics(y_test, pred, data.classes)["macro_accuracy"])
    return out


def print_given_instrument(features, c, seeds):
    results = given_instrument(features, c, seeds)
    print(f"\nS1 networks told the instrument (one-hot input channels), test macro accuracy, seeds "
          f"{', '.join(map(str, seeds))}:\n")
    print("| input | range | per seed |")
    print("|---|---:|---|")
    for name, values in results.items():
        print(f"| {name} | {min(values):.1f}–{max(values):.1f} % | {', '.join(f'{v:.2f}' for v in values)} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    given = ap.add_mutually_exclusive_group(required=True)
    given.add_argument("--run", help="a finished `scatterxai run` directory (e.g. results/demo): prior and probes")
    given.add_argument("--features", help="any features file of the synthetic corpus: its instrument prior and the "
                                          f"probes (log constant c = {LOG_C:g}, the networks' default)")
    ap.add_argument("--given-instrument", type=SEED, nargs="+", metavar="SEED",
                    help="also train S1 networks with and without the instrument as input, these seeds")
    args = ap.parse_args(argv)
    if args.features is not None:
        if not os.path.exists(args.features):
            raise SystemExit(f"error: {args.features} does not exist")
        print_features_prior(args.features)
        print_probes(args.features, LOG_C)
        if args.given_instrument:
            print_given_instrument(args.features, LOG_C, args.given_instrument)
        return 0
    meta_path = os.path.join(args.run, "data", "meta.csv")
    features = os.path.join(args.run, "features.h5")
    for path in (meta_path, features, os.path.join(args.run, "metrics_s1.json"),
                 os.path.join(args.run, "models", "s1", "config.json")):
        if not os.path.exists(path):
            raise SystemExit(f"error: {path} does not exist: --run must be a finished run of the synthetic corpus "
                             f"(`scatterxai run --out DIR`)")
    meta, sol = read_meta_csv(meta_path), read_meta_csv(SOL_META_CSV)
    with open(os.path.join(args.run, "metrics_s1.json"), encoding="utf-8") as f:
        s1_net = json.load(f)
    classes = list(s1_net["classes"])
    print(f"classes: {', '.join(classes)}\n")
    print("| corpus (test split) | S1 network | instrument prior | prior per class |")
    print("|---|---:|---:|---|")
    rows = [(f"{args.run} ({len(meta[TECHNIQUE])} notes)", meta, _pct(s1_net["macro_accuracy"])),
            (f"SOL-PMT published split ({len(sol[TECHNIQUE])} notes)", sol,
             _pct(paper_macro("s1") / 100) + " (paper)")]
    for name, cols, net in rows:
        macro, detail = _prior(cols, classes, name)
        print(f"| {name} | {net} | {macro} | {detail} |")
    with open(os.path.join(args.run, "models", "s1", "config.json"), encoding="utf-8") as f:
        c = float(json.load(f)["c"])
    print()
    print_probes(features, c)
    if args.given_instrument:
        print_given_instrument(features, c, args.given_instrument)
    return 0


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
