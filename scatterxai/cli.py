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


def _nonnegative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {value}")
    return value


def _nonnegative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _pairs(text):
    return None if text == "all" else _positive_int(text)


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


#: attribution methods (``scatterxai.explain.available_methods()``; listed here so that --help needs no torch)
METHODS = ("lrp0", "epsilon", "epsilon_plus", "epsilon_conv_zplus_dense", "gradient", "gradient_x_input",
           "integrated_gradients", "smoothgrad", "deconvnet", "occlusion")
#: method parameters of `scatterxai explain`: option dest → (method, parameter)
METHOD_OPTIONS = {"ig_steps": ("integrated_gradients", "steps"), "ig_grid": ("integrated_gradients", "grid"),
                  "ig_baseline": ("integrated_gradients", "baseline"),
                  "synth_seed": ("integrated_gradients", "synth_seed"), "smoothgrad_n": ("smoothgrad", "n"),
                  "smoothgrad_sigma": ("smoothgrad", "noise_level"), "smoothgrad_base": ("smoothgrad", "base"),
                  "occlusion_groups": ("occlusion", "groups"), "occlusion_fill": ("occlusion", "fill"),
                  "deconvnet_layer": ("deconvnet", "layer"), "deconvnet_channel": ("deconvnet", "channel")}


def _method_list(text: str):
    return METHODS if text.strip() == "all" else text


def _explain_config(args):
    """ExplainConfig from the explain options (method parameters only for the chosen methods)."""
    from .errors import ParameterError
    from .explain import REGISTRY, ExplainConfig, method_names
    methods = method_names(_method_list(args.methods))
    params = {}
    for dest, (method, key) in METHOD_OPTIONS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if method not in methods:
            raise ParameterError(f"--{dest.replace('_', '-')} is a parameter of {method}, which is not among "
                                 f"--methods {','.join(methods)}")
        params.setdefault(method, {})[key] = value
    limits = {}
    if args.max_per_class is not None:
        limits = {m: args.max_per_class for m in methods if REGISTRY[m].slow}
    return ExplainConfig(methods=methods, subset=args.subset, target=args.target, top_n=args.top_n,
                         epsilon=args.epsilon, device=args.device, batch_size=args.batch_size,
                         method_params=params, max_per_class=limits)


def _cmd_explain(args):
    from .explain import explain
    print(explain(args.features, model_dir=args.model, out=args.out, config=_explain_config(args), progress=True))
    return 0


def _cmd_compare(args):
    from .analysis.compare import CompareConfig, compare_relevance, describe
    def names(text):
        return tuple(m.strip() for m in text.split(",") if m.strip())

    config = CompareConfig(metrics=names(args.metrics),
                           methods=None if args.methods in (None, "all") else names(args.methods),
                           reference=args.reference, max_pairs=args.max_pairs, emd_max_pairs=args.emd_max_pairs,
                           emd_scope=args.emd_scope, seed=args.seed, mode=args.mode)
    result = compare_relevance(args.relevance, args.out, config)
    print(describe(result))
    print(os.path.join(args.out, "compare.md"))
    return 0


def _cmd_run(args):
    from .pipeline import RunConfig, run
    config = RunConfig(scale=args.scale, seed=args.seed, sol_root=args.sol_root, meta=args.meta,
                       device=args.device, max_epochs=args.max_epochs, jobs=args.jobs)
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
                   help=f"comma-separated attribution methods, or 'all' (--rules is an alias): {', '.join(METHODS)}")
    s.add_argument("--out", required=True, metavar="RELEVANCE.h5", help="output relevance file")
    s.add_argument("--subset", default="test", help="training, validation, test or all")
    s.add_argument("--target", choices=("pred", "true"), default="pred",
                   help="explain the predicted class (paper) or the true class")
    s.add_argument("--top-n", type=_positive_int, default=5, help="n of the per-class top-n aggregation")
    s.add_argument("--epsilon", type=_positive_float, default=1e-6, help="ε of the LRP ε-rule")
    s.add_argument("--batch-size", type=_positive_int, default=64, help="examples attributed at once")
    s.add_argument("--max-per-class", type=_positive_int, default=None, metavar="N",
                   help="explain at most N examples per class (spread evenly through the file) with the slow "
                        "methods integrated_gradients, smoothgrad, occlusion; their other rows are NaN "
                        "(None: all rows)")
    g = s.add_argument_group("method parameters (None: the method's own default, shown in brackets)")
    g.add_argument("--ig-steps", type=_positive_int, default=None, metavar="N",
                   help="Integrated Gradients: Riemann steps [100]")
    g.add_argument("--ig-grid", choices=("midpoint", "right"), default=None,
                   help="Integrated Gradients: α_k = (k − ½)/n, or Zennit's right Riemann sum α_k = k/n [midpoint]")
    g.add_argument("--ig-baseline", choices=("zero", "unmodulated"), default=None,
                   help="Integrated Gradients baseline: the input of silence, or (synthetic notes only) the same "
                        "note rendered without its modulation [zero]")
    g.add_argument("--synth-seed", type=_seed, default=None, metavar="SEED",
                   help="seed of the synthetic corpus, to re-render notes for --ig-baseline unmodulated [0]")
    g.add_argument("--smoothgrad-n", type=_positive_int, default=None, metavar="N",
                   help="SmoothGrad: passes averaged, the last without noise [32]")
    g.add_argument("--smoothgrad-sigma", type=_nonnegative_float, default=None, metavar="LEVEL",
                   help="SmoothGrad: noise σ as a fraction of (max − min) of each input [0.1]")
    g.add_argument("--smoothgrad-base", choices=("gradient", "gradient_x_input"), default=None,
                   help="SmoothGrad: average the gradient, or multiply the average by the input [gradient]")
    g.add_argument("--occlusion-groups", choices=("lambda2", "cell"), default=None,
                   help="occlusion: one λ2 band across all λ1, or one (λ1 octave, λ2 band) cell [lambda2]")
    g.add_argument("--occlusion-fill", choices=("training_mean", "zero"), default=None,
                   help="occlusion: replace a group by the model's input at the training mean, or by 0 "
                        "[training_mean]")
    g.add_argument("--deconvnet-layer", choices=("logit", "conv0", "conv1", "conv2", "fc1"), default=None,
                   help="DeconvNet: start from the explained logit or from a channel of this layer [logit]")
    g.add_argument("--deconvnet-channel", type=_nonnegative_int, default=None, metavar="K",
                   help="DeconvNet: the channel of --deconvnet-layer")
    _common(s)

    s = _sub(sub, "compare", "distances between relevance maps: within and between classes, between methods",
             _cmd_compare)
    s.add_argument("relevance", metavar="RELEVANCE.h5", help="relevance file (scatterxai explain)")
    s.add_argument("--out", required=True, metavar="DIR",
                   help="directory for compare.json, compare.md and the figures")
    s.add_argument("--metrics", default="mean_diff,kl,js,emd,emd_lambda1,emd_lambda2",
                   help="comma-separated metrics: JS in nats, EMD in octaves on the (λ1, λ2) plane")
    s.add_argument("--methods", default=None, help="comma-separated methods to compare (None: all in the file)")
    s.add_argument("--reference", default=None, metavar="METHOD",
                   help="compare methods with this one only (None: every pair of methods)")
    s.add_argument("--max-pairs", type=_pairs, default=100, metavar="N",
                   help="pairs sampled per class, between classes, and notes per method pair ('all': no bound)")
    s.add_argument("--emd-max-pairs", type=_pairs, default=20, metavar="N",
                   help="the same bound for the 2-D EMD (one optimal-transport solve per pair, ~0.1 s)")
    s.add_argument("--emd-scope", choices=("all", "between_methods"), default="all",
                   help="compute the 2-D EMD in every part of the study or only between methods")
    s.add_argument("--seed", type=_seed, default=0, help="seed of the pair sampling")
    s.add_argument("--mode", choices=("positive", "abs", "shift"), default="positive",
                   help="map → distribution: max(p, 0), |p|, or p − min p, normalised to sum 1")
    _common(s, device=False)
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
