"""Command-line interface: argument parsing only; each sub-command calls one stage function.

``scatterxai synth | extract | train | evaluate | explain | run`` — see README.md.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .errors import ScatterXAIError
from .pipeline import DEMO_SCALE


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
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _cmd_synth(args):
    from .synth import synthesize_corpus
    synthesize_corpus(args.out_dir, scale=args.scale, seed=args.seed, jobs=args.jobs, progress=True)
    return 0


def _cmd_extract(args):
    from .store import extract_features
    summary = extract_features(args.meta_csv, args.audio_root, args.out, device=args.device,
                               batch_size=args.batch_size, method=args.method, overwrite=args.overwrite,
                               progress=True)
    print(summary.describe())
    return 0 if summary.n_ok > 0 else 1


def _cmd_train(args):
    from .train import train_model
    train_model(args.features, input=args.input, out_dir=args.out, seed=args.seed, device=args.device,
                max_epochs=args.max_epochs, progress=True)
    return 0


def _cmd_evaluate(args):
    from .train import evaluate_model
    metrics = evaluate_model(args.features, model_dir=args.model, out_dir=args.out, subset=args.subset,
                             device=args.device)
    print(metrics["markdown"])
    return 0


def _cmd_explain(args):
    from .export import explain
    explain(args.features, model_dir=args.model, rules=[r for r in args.rules.split(",") if r],
            out=args.out, subset=args.subset, target=args.target, top_n=args.top_n, epsilon=args.epsilon,
            device=args.device, batch_size=args.batch_size, progress=True)
    return 0


def _cmd_run(args):
    from .pipeline import run
    run(args.out, scale=args.scale, seed=args.seed, sol_root=args.sol_root, meta=args.meta,
        device=args.device, max_epochs=args.max_epochs, jobs=args.jobs)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scatterxai", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"scatterxai {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("synth", help="write the synthetic playing-technique corpus (audio + meta.csv)")
    s.add_argument("out_dir", metavar="OUT_DIR")
    s.add_argument("--scale", type=_positive_float, default=DEMO_SCALE,
                   help=f"fraction of the SOL-PMT counts per instrument x technique (default {DEMO_SCALE}, "
                        f"the demo profile: ≈ {round(5564 * DEMO_SCALE, -1):,.0f} notes; 0.1 ≈ 560; 1 = 5,564)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--jobs", type=_positive_int, default=os.cpu_count() or 1,
                   help="worker processes (default: all cores)")
    s.set_defaults(func=_cmd_synth)

    s = sub.add_parser("extract", help="scattering features of every file in a meta CSV → HDF5 (resumable)")
    s.add_argument("meta_csv", metavar="META_CSV", help="CSV with at least a file_name column")
    s.add_argument("--audio-root", required=True, metavar="DIR",
                   help="directory that file_name is relative to (searched recursively by base name if "
                        "not found there, as in the SOL tree)")
    s.add_argument("--out", required=True, metavar="FEATURES.h5")
    s.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    s.add_argument("--batch-size", type=_positive_int, default=8)
    s.add_argument("--method", choices=("fast", "kymatio"), default="fast",
                   help="scattering implementation (same coefficients; fast is the default)")
    s.add_argument("--overwrite", action="store_true",
                   help="discard an existing output or partial extraction made with other settings")
    s.set_defaults(func=_cmd_extract)

    s = sub.add_parser("train", help="train the convnet on S1 or S1+S2 features")
    s.add_argument("features", metavar="FEATURES.h5")
    s.add_argument("--input", choices=("s1", "s1s2"), required=True)
    s.add_argument("--out", required=True, metavar="MODEL_DIR")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.add_argument("--max-epochs", type=_positive_int, default=None,
                   help="upper bound on epochs (early stopping on the validation split decides)")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("evaluate", help="per-class accuracy and confusion matrix of a trained model")
    s.add_argument("features", metavar="FEATURES.h5")
    s.add_argument("--model", required=True, metavar="MODEL_DIR")
    s.add_argument("--out", required=True, metavar="DIR")
    s.add_argument("--subset", default="test")
    s.add_argument("--device", default="auto")
    s.set_defaults(func=_cmd_evaluate)

    s = sub.add_parser("explain", help="LRP relevance on the (λ1, λ2) plane → HDF5")
    s.add_argument("features", metavar="FEATURES.h5")
    s.add_argument("--model", required=True, metavar="MODEL_DIR")
    s.add_argument("--rules", default="epsilon,epsilon_plus", help="comma-separated rule presets")
    s.add_argument("--out", required=True, metavar="RELEVANCE.h5")
    s.add_argument("--subset", default="test")
    s.add_argument("--target", choices=("pred", "true"), default="pred",
                   help="explain the predicted class (paper) or the true class")
    s.add_argument("--top-n", type=_positive_int, default=5)
    s.add_argument("--epsilon", type=_positive_float, default=1e-6)
    s.add_argument("--device", default="auto")
    s.add_argument("--batch-size", type=_positive_int, default=64)
    s.set_defaults(func=_cmd_explain)

    s = sub.add_parser("run", help="the whole pipeline: data → features → models → relevance → figures")
    s.add_argument("--out", required=True, metavar="DIR")
    s.add_argument("--scale", type=_positive_float, default=DEMO_SCALE,
                   help=f"synthetic corpus size as a fraction of SOL-PMT (default {DEMO_SCALE}, the demo profile)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--sol-root", default=None, metavar="PATH", help="SOL 0.9HQ directory (real data)")
    s.add_argument("--meta", default=None, metavar="CSV",
                   help="meta CSV of the real data (default with --sol-root: the published SOL-PMT split)")
    s.add_argument("--device", default="auto")
    s.add_argument("--max-epochs", type=_positive_int, default=None)
    s.add_argument("--jobs", type=_positive_int, default=None, help="worker processes for synthesis")
    s.set_defaults(func=_cmd_run)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
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
