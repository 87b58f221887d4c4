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
                               progress=True)
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
    from .explain import ExplainConfig, explain
    config = ExplainConfig(methods=args.methods, subset=args.subset, target=args.target, top_n=args.top_n,
                           epsilon=args.epsilon, device=args.device, batch_size=args.batch_size)
    print(explain(args.features, model_dir=args.model, out=args.out, config=config, progress=True))
    return 0


def _cmd_run(args):
    from .pipeline import RunConfig, run
    config = RunConfig(scale=args.scale, seed=args.seed, sol_root=args.sol_root, meta=args.meta,
                       device=args.device, max_epochs=args.max_epochs, jobs=args.jobs)
    print(run(args.out, config)["report"])
    return 0


def _split_values(values):
    """--values 4 8 16 or --values 4,8,16 → a tuple of strings (None if not given)."""
    if values is None:
        return None
    return tuple(v.strip() for item in values for v in item.split(",") if v.strip())


def _cmd_sweep(args):
    from .analysis.sweep.run import SweepConfig, run_sweep
    values = _split_values(args.values)
    if values is not None and args.factor in ("rate", "f0", "depth"):
        try:
            values = tuple(float(v) for v in values)
        except ValueError:
            raise ScatterXAIError(f"--values of {args.factor} must be numbers, got {list(values)}") from None
    config = SweepConfig(factor=args.factor, technique=args.technique, values=values, repeats=args.repeats,
                         methods=args.methods, target=args.target, instrument=args.instrument, pitch=args.pitch,
                         dynamics=args.dynamics, seed=args.seed, device=args.device)
    result = run_sweep(args.model, args.out, config, progress=True)
    lines = [f"{args.out}: {len(result['notes'])} notes, {result['factor']} sweep of {result['technique']} "
             f"({result['instrument']}); predicted: {', '.join(result['predicted'])}"]
    for method, fit in result.get("tracking", {}).items():
        lines.append(f"  tracking {method}: slope {fit['slope']:.3f}, r2 {fit['r2']:.3f}")
    for layer, inv in result["invariance"].items():
        lines.append(f"  invariance {layer}: r = {inv['mean']:.3f} ± {inv['std']:.3f} ({inv['n_pairs']} pairs)")
    print("\n".join(lines))
    return 0


def _cmd_auralise(args):
    from .analysis.auralise.run import auralise_audio, auralise_relevance
    if args.relevance is not None:
        if args.audio is not None or args.example is None or args.audio_root is None:
            raise ScatterXAIError("with --relevance give --example K and --audio-root DIR, and no AUDIO")
        result = auralise_relevance(args.relevance, args.example, args.audio_root, args.out, method=args.method,
                                    mode=args.mode, top=args.top)
    else:
        if args.audio is None or args.model is None:
            raise ScatterXAIError("give AUDIO and --model MODEL_DIR (or --relevance R.h5 --example K "
                                  "--audio-root DIR)")
        result = auralise_audio(args.audio, args.model, args.out, method=args.method, target=args.target,
                                device=args.device, mode=args.mode, top=args.top)
    m = result["measurements"]
    lines = [f"{args.out}: relevance of {result['explained']} (predicted {result['predicted']}, {result['method']})"]
    for part in ("relevant", "complement"):
        v = m[part]
        below = next(k for k in v if k.startswith("below_"))
        lines.append(f"  {part}: {100 * v['energy_share']:.1f} % of the energy, centroid {v['centroid_hz']:.0f} Hz, "
                     f"{100 * v[below]:.0f} % below {below.split('_')[1]} Hz, envelope modulation "
                     f"{v['am_rate_hz']:.1f} Hz depth {v['am_depth']:.2f}")
    print("\n".join(lines))
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
    s.add_argument("--sol-root", default=None, metavar="PATH",
                   help="directory of real audio (SOL 0.9HQ) instead of the synthetic corpus")
    s.add_argument("--meta", default=None, metavar="CSV",
                   help="meta CSV of the real data (with --sol-root; default: the published SOL-PMT split)")
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
                   help="discard an existing output or partial extraction made with other settings")
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
    s.add_argument("--subset", default="test", help="training, validation or test")
    _common(s)

    s = _sub(sub, "explain", "relevance on the (λ1, λ2) plane with attribution methods → HDF5", _cmd_explain)
    s.add_argument("features", metavar="FEATURES.h5", help="features file")
    s.add_argument("--model", required=True, metavar="MODEL_DIR", help="model directory (scatterxai train)")
    s.add_argument("--methods", "--rules", dest="methods", default="epsilon,epsilon_plus",
                   help="comma-separated attribution methods (--rules is an alias)")
    s.add_argument("--out", required=True, metavar="RELEVANCE.h5", help="output relevance file")
    s.add_argument("--subset", default="test", help="training, validation, test or all")
    s.add_argument("--target", choices=("pred", "true"), default="pred",
                   help="explain the predicted class (paper) or the true class")
    s.add_argument("--top-n", type=_positive_int, default=5, help="n of the per-class top-n aggregation")
    s.add_argument("--epsilon", type=_positive_float, default=1e-6, help="ε of the LRP ε-rule")
    s.add_argument("--batch-size", type=_positive_int, default=64, help="examples attributed at once")
    _common(s)

    s = _sub(sub, "sweep", "vary one factor of a synthetic note, explain the notes, measure tracking and "
                           "invariance", _cmd_sweep)
    s.add_argument("--model", required=True, metavar="MODEL_DIR", help="model directory (scatterxai train)")
    s.add_argument("--factor", required=True, choices=("rate", "f0", "dynamics", "instrument", "depth", "technique"),
                   help="the factor that varies (everything else, random draws included, stays)")
    s.add_argument("--technique", required=True, metavar="T",
                   help="technique of the base note: a class (vibrato, trill, tremolo, bisbigliando, "
                        "flatterzunge) or a SOL variant name")
    s.add_argument("--values", nargs="+", default=None, metavar="V",
                   help="values of the factor (Hz for rate and f0; a marking, an instrument, a depth or a "
                        "technique); default: rate 4-32 Hz and f0 three octaves in half-octave steps, pp-ff, "
                        "the instruments that play T, five depths, every technique")
    s.add_argument("--repeats", type=_positive_int, default=1,
                   help="base notes with their own random draws, each swept over every value")
    s.add_argument("--methods", default="epsilon_plus", help="comma-separated attribution methods")
    s.add_argument("--target", choices=("pred", "true"), default="pred",
                   help="explain the predicted class or the note's technique")
    s.add_argument("--instrument", default=None,
                   help="instrument of the base note (default: the one with most notes of T in SOL-PMT)")
    s.add_argument("--pitch", default=None, help="pitch of the base note, e.g. A4 (default: A4 if played)")
    s.add_argument("--dynamics", default="mf", choices=("pp", "p", "mf", "f", "ff", "fff"),
                   help="dynamics of the base note")
    s.add_argument("--seed", type=_seed, default=0, help="seed of the base notes' random draws")
    s.add_argument("--out", required=True, metavar="DIR",
                   help="output directory: audio/, meta.csv, features.h5, relevance.h5, activations.h5, "
                        "sweep.json, figures")
    _common(s)

    s = _sub(sub, "auralise", "resynthesise what a relevance map keeps of a note, and what it leaves",
             _cmd_auralise)
    s.add_argument("audio", nargs="?", default=None, metavar="AUDIO",
                   help="audio file to explain with --model (omit with --relevance)")
    s.add_argument("--model", default=None, metavar="MODEL_DIR", help="model directory (with AUDIO)")
    s.add_argument("--method", default="epsilon_plus", help="attribution method (registered name)")
    s.add_argument("--target", default="pred",
                   help="with AUDIO: class whose relevance is kept, pred (the predicted class), a class name "
                        "or index (a relevance file's map keeps the class it explained)")
    s.add_argument("--relevance", default=None, metavar="R.h5",
                   help="use a stored local map of this relevance file instead of AUDIO and --model")
    s.add_argument("--example", type=int, default=None, metavar="K", help="row of the example in --relevance")
    s.add_argument("--audio-root", default=None, metavar="DIR",
                   help="directory the relevance file's file names are relative to")
    s.add_argument("--mode", choices=("positive", "absolute"), default="positive",
                   help="path weight: positive relevance or |relevance|, over its maximum")
    s.add_argument("--top", type=_positive_int, default=None,
                   help="keep exactly the K most relevant paths (binary mask) instead of graded weights")
    s.add_argument("--out", required=True, metavar="OUT_DIR",
                   help="output directory: relevant.wav, complement.wav, reference.wav, map.png, auralise.json")
    _common(s)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from ._util.log import configure
    configure(-1 if args.quiet else args.verbose)
    try:
        return args.func(args)
    except ScatterXAIError as e:
        print(f"scatterxai {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"scatterxai {args.command}: interrupted (re-run the same command to resume)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
