"""The ``scatterxai`` command: argument parsing only; each sub-command calls one stage function.

Nothing heavy is imported to build the parser (``scatterxai --help`` loads neither torch nor Kymatio).
"""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .errors import ScatterXAIError
from .task import DEFAULT_SCALE

DESCRIPTION = """\
Explain audio classifiers of playing techniques in physical units.  Wavelet scattering describes each
note on a (carrier λ1, modulation rate λ2) plane in Hz; a small convnet classifies the technique;
attribution methods (layer-wise relevance propagation and others) show which (λ1, λ2) cells the
decision rests on.  `scatterxai run --out DIR` does the whole study on the embedded synthetic corpus;
the other commands are its steps, for your own data."""

EPILOG = "Each command has its own --help.  Errors exit with status 2; Ctrl-C with 130."

#: what an interrupted command leaves behind, and what re-running it does
INTERRUPTED = {
    "synth": "the notes written so far are kept; re-run the same command to continue",
    "extract": "the finished batches are kept in OUT.partial; re-run the same command without --overwrite to "
               "resume",
    "train": "the model directory was not changed; re-running trains from the start",
    "evaluate": "nothing was written; re-running starts over",
    "explain": "the output file was not changed; re-running starts over",
    "run": "finished stages are kept; re-run the same command to continue (extraction resumes, an "
           "interrupted training or explanation starts over)",
}
SUBSETS_ARG = ("training", "validation", "test", "all")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {value}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed in [0, 2**32), got {text!r}") from None
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"expected an integer seed in [0, 2**32), got {value}")
    return value


# ---------------------------------------------------------------------------------------------- commands

def _cmd_synth(args):
    from .data.synth import synthesize_corpus
    print(synthesize_corpus(args.out_dir, scale=args.scale, seed=args.seed, jobs=args.jobs, progress=True))
    return 0


def _cmd_extract(args):
    from .features import extract_features
    summary = extract_features(args.meta_csv, args.audio_root, args.out, device=args.device,
                               batch_size=args.batch_size, method=args.method, overwrite=args.overwrite,
                               classes=args.classes, seed=args.seed, segments=args.segments,
                               retry_failed=args.retry_failed, allow_outside_root=args.allow_outside_root,
                               progress=True, dask=args.dask)
    print(summary.describe())
    return 0 if summary.n_ok > 0 else 1


def _cmd_train(args):
    from .model import train_model
    train_model(args.features, input=args.input, out_dir=args.out, seed=args.seed, device=args.device,
                max_epochs=args.max_epochs, progress=True)
    return 0


def _cmd_evaluate(args):
    from .model import evaluate_model
    metrics = evaluate_model(args.features, model_dir=args.model, out_dir=args.out, subset=args.subset,
                             device=args.device)
    print(metrics["markdown"])
    return 0


def _cmd_explain(args):
    from .errors import ParameterError
    from .explain import ExplainConfig, explain, explain_files, is_features_file
    config = ExplainConfig(methods=args.methods, subset=args.subset, target=args.target, top_n=args.top_n,
                           epsilon=args.epsilon, device=args.device, batch_size=args.batch_size)
    features = [p for p in args.inputs if is_features_file(p)]
    if features:
        if len(args.inputs) > 1:
            raise ParameterError(f"explain takes one features file, or one or more audio files, not {args.inputs}")
        if args.segments:
            raise ParameterError("--segments applies to audio input; for a features file, cut the windows at "
                                 "extraction (scatterxai extract --segments)")
        print(explain(features[0], model_dir=args.model, out=args.out, config=config, progress=True,
                      dask=args.dask))
        return 0
    if args.dask is not None:
        raise ParameterError("--dask applies to a features file input; for audio files, extract their features "
                             "with scatterxai extract --dask, then explain the features file")
    from .report import example_figures
    if args.out.lower().endswith((".h5", ".hdf5")):
        raise ParameterError(f"for audio input --out is a directory (relevance.h5, predictions.json and a figure "
                             f"per file go there), got {args.out!r}")
    result = explain_files(args.inputs, model_dir=args.model, out_dir=args.out, config=config,
                           segments=args.segments, progress=True)
    figures = example_figures(result.relevance, args.out, fmt=args.format, dpi=args.dpi)
    print(result.describe())
    print("figures: " + ", ".join(figures))
    return 0


def _cmd_figures(args):
    from .report import relevance_figures
    examples = None if args.examples is None else [e.strip() for e in args.examples.split(",") if e.strip()]
    methods = None if args.methods is None else [m.strip() for m in args.methods.split(",") if m.strip()]
    written = relevance_figures(args.relevance, args.out, examples=examples, methods=methods,
                                aggregate_method=args.aggregate_method, audio_root=args.audio_root,
                                fmt=args.format, dpi=args.dpi)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def _cmd_quality(args):
    from .analysis.quality import QualityConfig, quality
    from .analysis.quality.report import failure_sentence, ranking_table
    config = QualityConfig(subset=args.subset, max_examples=args.max_examples, select=args.select,
                           n_steps=args.steps, max_fraction=args.max_fraction, n_random=args.random_orders,
                           baseline=args.baseline, randomisation_examples=args.randomisation_examples,
                           randomisation_examples_slow=args.randomisation_examples_slow,
                           permuted_epochs=args.permuted_epochs, seed=args.seed, randomisation_seed=args.seed,
                           device=args.device)
    res = quality(args.features, model_dir=args.model, relevance=args.relevance, out=args.out, config=config,
                  permuted_model=args.permuted_model, progress=True)
    print(ranking_table(res["quality"]) + "\n\n" + failure_sentence(res["quality"]) + "\n\n"
          + f"details: {res['files']['markdown']}")
    return 0


def _cmd_run(args):
    from .pipeline import RunConfig, run
    config = RunConfig(scale=args.scale, seed=args.seed, sol_root=args.sol_root, meta=args.meta,
                       audio_root=args.audio_root, device=args.device, max_epochs=args.max_epochs, jobs=args.jobs)
    print(run(args.out, config)["report"])
    return 0


# ------------------------------------------------------------------------------------------------ parser

def _common(p, *, device=True):
    """Options every sub-command has (verbosity; device where torch runs)."""
    g = p.add_argument_group("output")
    g.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                   help="more messages (-vv: debug)")
    g.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="only warnings and errors; no progress bars")
    if device:
        p.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda, cuda:<i>")


def _dask_option(p, what):
    p.add_argument("--dask", default=None, metavar="ADDRESS|local:N",
                   help=f"{what} on a Dask cluster: a scheduler address (tcp://host:8786), or local:N for N worker "
                        f"processes on this machine; this process writes the output (needs pip install "
                        f"'scatterxai[dask]'; see the README, 'Many machines'; default: this process only)")


def _sub(sub, name, help, func):
    s = sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.set_defaults(func=func)
    return s


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scatterxai", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"scatterxai {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more messages (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", default=False,
                   help="only warnings and errors; no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = _sub(sub, "run", "the whole study: data → features → models → relevance → figures → report", _cmd_run)
    s.add_argument("--out", required=True, metavar="DIR", help="output directory (stages already done are reused)")
    s.add_argument("--scale", type=_positive_float, default=DEFAULT_SCALE,
                   help="synthetic corpus size as a fraction of SOL-PMT's 5,564 notes (the demo profile)")
    s.add_argument("--seed", type=_seed, default=0, help="seed of the synthetic corpus, the split and training")
    s.add_argument("--meta", default=None, metavar="CSV",
                   help="your own data: a CSV with file_name and label (text or integers), optionally subset "
                        "(else a 6:2:2 split is drawn with --seed); with --audio-root")
    s.add_argument("--audio-root", default=None, metavar="DIR",
                   help="directory the file names of --meta are relative to (searched by base name below it)")
    s.add_argument("--sol-root", default=None, metavar="PATH",
                   help="IRCAM's SOL 0.9HQ instead of the synthetic corpus, with the published SOL-PMT split "
                        "(or a SOL-format --meta); the report compares with the paper's numbers")
    s.add_argument("--max-epochs", type=_positive_int, default=None,
                   help="upper bound on training epochs (early stopping decides below it; default 60)")
    s.add_argument("--jobs", type=_positive_int, default=None,
                   help="worker processes for synthesis (default: all cores)")
    _common(s)

    s = _sub(sub, "synth", "write the synthetic playing-technique corpus (audio + meta.csv)", _cmd_synth)
    s.add_argument("out_dir", metavar="OUT_DIR", help="output directory (audio/*.wav, meta.csv)")
    s.add_argument("--scale", type=_positive_float, default=DEFAULT_SCALE,
                   help=f"fraction of the SOL-PMT counts per instrument x technique (≈ "
                        f"{round(5564 * DEFAULT_SCALE, -1):,.0f} notes; 0.1 ≈ 560; 1 = 5,564)")
    s.add_argument("--seed", type=_seed, default=0, help="seed of every note's parameters")
    s.add_argument("--jobs", type=_positive_int, default=os.cpu_count() or 1,
                   help="worker processes (default: all cores)")
    _common(s, device=False)

    s = _sub(sub, "extract", "scattering features of every file in a meta CSV → HDF5 (resumable)", _cmd_extract)
    s.add_argument("meta_csv", metavar="META_CSV", help="CSV with at least a file_name column")
    s.add_argument("--audio-root", required=True, metavar="DIR",
                   help="directory that file_name is relative to (searched recursively by base name if "
                        "not found there, as in the SOL tree)")
    s.add_argument("--out", required=True, metavar="FEATURES.h5", help="output features file")
    s.add_argument("--batch-size", type=_positive_int, default=8, help="files transformed at once")
    s.add_argument("--method", choices=("fast", "kymatio"), default="fast",
                   help="scattering implementation (same coefficients)")
    s.add_argument("--overwrite", action="store_true",
                   help="start over: discard an interrupted extraction (OUT.partial) and replace OUT when done")
    s.add_argument("--retry-failed", action="store_true",
                   help="extract again the files that failed (listed in /failed), keeping the others")
    s.add_argument("--allow-outside-root", action="store_true",
                   help="read file_name values that are absolute or contain '..' (refused by default)")
    s.add_argument("--classes", default=None, metavar="NAMES",
                   help="comma-separated class names: the names of integer labels 0, 1, …, or the order of "
                        "text labels (default: from the data; see the README)")
    s.add_argument("--seed", type=_seed, default=0,
                   help="seed of the 6:2:2 split drawn when the CSV has no subset column (recorded in the file)")
    s.add_argument("--segments", action="store_true",
                   help="cut files longer than the transform's window into consecutive windows (one row "
                        "each, columns segment and start_s) instead of using their first window only")
    _dask_option(s, "the batches")
    _common(s)

    s = _sub(sub, "train", "train the convnet on S1 or S1+S2 features", _cmd_train)
    s.add_argument("features", metavar="FEATURES.h5", help="features file with label and subset columns")
    s.add_argument("--input", choices=("s1", "s1s2"), required=True,
                   help="first-order coefficients only, or first and second order")
    s.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write")
    s.add_argument("--seed", type=_seed, default=0, help="seed of initialisation, dropout and batch order")
    s.add_argument("--max-epochs", type=_positive_int, default=None,
                   help="upper bound on epochs (early stopping on the validation split decides; default 60)")
    _common(s)

    s = _sub(sub, "evaluate", "per-class accuracy and confusion matrix of a trained model", _cmd_evaluate)
    s.add_argument("features", metavar="FEATURES.h5", help="features file with labels")
    s.add_argument("--model", required=True, metavar="MODEL_DIR", help="model directory (scatterxai train)")
    s.add_argument("--out", required=True, metavar="DIR", help="directory for metrics.json and metrics.md")
    s.add_argument("--subset", default="test", choices=SUBSETS_ARG, help="rows to evaluate")
    _common(s)

    s = _sub(sub, "explain", "relevance on the (λ1, λ2) plane with attribution methods → HDF5, from a features "
             "file or from audio files", _cmd_explain)
    s.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="one features file (HDF5, by content or extension .h5/.hdf5) or one or more audio files "
                        "(any other input: WAV, FLAC, …)")
    s.add_argument("--model", required=True, metavar="MODEL_DIR", help="model directory (scatterxai train)")
    s.add_argument("--methods", "--rules", dest="methods", default="epsilon,epsilon_plus",
                   help="comma-separated attribution methods (--rules is an alias)")
    s.add_argument("--out", required=True, metavar="RELEVANCE.h5|DIR",
                   help="output relevance file (features input), or output directory (audio input: "
                        "relevance.h5, predictions.json, a figure per file)")
    s.add_argument("--segments", action="store_true",
                   help="audio input: cut files longer than the window into consecutive windows and average "
                        "their probabilities and maps (default: first window only, with a warning)")
    s.add_argument("--format", choices=("png", "pdf", "svg"), default="png", help="audio input: figure format")
    s.add_argument("--dpi", type=_positive_float, default=100, help="audio input: figure resolution")
    s.add_argument("--subset", default="test", choices=SUBSETS_ARG, help="features input: rows to explain")
    s.add_argument("--target", choices=("pred", "true"), default="pred",
                   help="explain the predicted class (paper) or the true class")
    s.add_argument("--top-n", type=_positive_int, default=5, help="n of the per-class top-n aggregation")
    s.add_argument("--epsilon", type=_positive_float, default=1e-6, help="ε of the LRP ε-rule")
    s.add_argument("--batch-size", type=_positive_int, default=64, help="examples attributed at once")
    _dask_option(s, "features input: the batches")
    _common(s)

    s = _sub(sub, "figures", "Fig. 1, Fig. 2 and the confusion matrix of any relevance file", _cmd_figures)
    s.add_argument("relevance", metavar="RELEVANCE.h5", help="relevance file (scatterxai explain)")
    s.add_argument("--out", required=True, metavar="DIR", help="output directory")
    s.add_argument("--examples", default=None, metavar="LIST",
                   help="comma-separated rows or file names drawn in Fig. 1 (default: one per class, correctly "
                        "classified if possible, pitch nearest A4)")
    s.add_argument("--methods", default=None, metavar="LIST",
                   help="methods drawn in Fig. 1 (default: LRP-ε and LRP-[ε,z+] when present, else all)")
    s.add_argument("--aggregate-method", default=None, metavar="METHOD",
                   help="method of Fig. 2's aggregated maps (default: epsilon_plus when present, else the last)")
    s.add_argument("--audio-root", default=None, metavar="DIR",
                   help="where the audio files are, for the spectrograms (default: recorded at extraction)")
    s.add_argument("--format", choices=("png", "pdf", "svg"), default="png", help="file format")
    s.add_argument("--dpi", type=_positive_float, default=200, help="resolution (raster parts of vector files)")
    _common(s, device=False)

    s = _sub(sub, "quality", "is the explanation right? deletion/insertion of paths against random orders, "
                             "randomisation sanity checks and ground truth for every method of a relevance file",
             _cmd_quality)
    s.add_argument("features", metavar="FEATURES.h5",
                   help="features file the model was trained on (baseline, permuted-label training)")
    s.add_argument("--model", required=True, metavar="MODEL_DIR", help="the model the relevance file explains")
    s.add_argument("--relevance", required=True, metavar="R.h5", help="relevance file (scatterxai explain)")
    s.add_argument("--out", required=True, metavar="DIR",
                   help="output directory: quality.json, quality.md, figures")
    s.add_argument("--subset", default="test", help="rows of the relevance file scored (training, validation, "
                                                     "test or all)")
    s.add_argument("--max-examples", type=_positive_int, default=None, metavar="N",
                   help="score the first N notes every method explained (default: all)")
    s.add_argument("--select", choices=("first", "spread"), default="first",
                   help="with --max-examples: the first N in file order, or N evenly spaced over the file")
    s.add_argument("--steps", type=_positive_int, default=20, help="deletion/insertion steps (at least 20)")
    s.add_argument("--max-fraction", type=_positive_float, default=0.5,
                   help="largest fraction of the paths deleted or inserted")
    s.add_argument("--random-orders", type=_positive_int, default=5,
                   help="seeded random path orders per note, the reference (at least 5)")
    s.add_argument("--baseline", choices=("training_mean", "mu", "zero"), default="training_mean",
                   help="network input of a replaced path: its mean over the training notes and frames, the "
                        "input of a coefficient equal to its mean energy μ, or silence (0)")
    s.add_argument("--randomisation-examples", type=_positive_int, default=None, metavar="N",
                   help="notes used by the randomisation checks (the first of the scored notes, or spread over "
                        "them with --select spread; default all)")
    s.add_argument("--randomisation-examples-slow", type=_positive_int, default=None, metavar="N",
                   help="fewer randomisation notes for the slow methods (Integrated Gradients, SmoothGrad, "
                        "occlusion; default: as many as the others)")
    s.add_argument("--permuted-epochs", type=int, default=5,
                   help="epochs of the network trained on permuted labels (0: no data randomisation check)")
    s.add_argument("--permuted-model", default=None, metavar="DIR",
                   help="a model directory already trained on permuted labels (instead of training one)")
    s.add_argument("--seed", type=_seed, default=0, help="seed of the random orders and of re-initialisation")
    _common(s)
    return p


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0, 1 when nothing succeeded, 2 on errors, 130 on
    Ctrl-C).  Everything, including parsing and the lazy imports of the commands, runs inside the handlers,
    so that an interruption at any moment gives a message rather than a traceback."""
    command = None
    try:
        args = build_parser().parse_args(argv)
        command = args.command
        from ._util.log import configure
        configure(-1 if args.quiet else args.verbose)
        return args.func(args)
    except ScatterXAIError as e:
        print(f"scatterxai {command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        what = INTERRUPTED.get(command, "nothing was written")
        print(f"scatterxai{' ' + command if command else ''}: interrupted; {what}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
