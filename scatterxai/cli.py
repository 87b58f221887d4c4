"""The ``scatterxai`` command: argument parsing only; each sub-command calls one stage function.

Nothing heavy is imported to build the parser (``scatterxai --help`` loads neither torch nor Kymatio).
"""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .errors import ScatterXAIError
from .task import DEFAULT_REALISM, DEFAULT_SCALE, REALISM_FACTORS

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
    "describe": "the notes described so far are kept in OUT.partial; re-run the same command to resume",
    **{c: "files already in the output folder may predate the interruption; re-running starts over"
       for c in ("figures", "compare", "quality", "probe", "sweep", "auralise")},
    "run": "finished stages are kept; re-run the same command to continue (extraction resumes, an "
           "interrupted training or explanation starts over)",
}
SUBSETS_ARG = ("training", "validation", "test", "all")


def _number_type(convert, ok, what: str, name: str):
    """An argparse type: ``convert`` the text, check ``ok``, or say what was expected."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    parse.__name__ = name
    return parse


_positive_int = _number_type(int, lambda v: v >= 1, "a positive integer", "positive_int")
_nonnegative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0", "nonnegative_int")
_positive_float = _number_type(float, lambda v: 0 < v < float("inf"), "a positive finite number", "positive_float")
_nonnegative_float = _number_type(float, lambda v: 0 <= v < float("inf"), "a finite number >= 0",
                                  "nonnegative_float")
_seed = _number_type(int, lambda v: 0 <= v < 2 ** 32, "an integer seed in [0, 2**32)", "seed")


def _pairs(text):
    return None if text == "all" else _positive_int(text)


# ---------------------------------------------------------------------------------------------- commands

def _cmd_synth(args):
    from .data.synth import synthesize_corpus
    print(synthesize_corpus(args.out_dir, scale=args.scale, seed=args.seed, jobs=args.jobs, progress=True,
                            realism=args.realism))
    return 0


def _add_synth(sub) -> None:
    s = _sub(sub, "synth", "write the synthetic playing-technique corpus (audio + meta.csv)", _cmd_synth)
    s.add_argument("out_dir", metavar="OUT_DIR", help="output directory (audio/*.wav, meta.csv)")
    s.add_argument("--scale", type=_positive_float, default=DEFAULT_SCALE,
                   help=f"fraction of the SOL-PMT counts per instrument x technique (≈ "
                        f"{round(5564 * DEFAULT_SCALE, -1):,.0f} notes; 0.1 ≈ 560; 1 = 5,564)")
    s.add_argument("--seed", type=_seed, default=0, help="seed of every note's parameters")
    s.add_argument("--jobs", type=_positive_int, default=os.cpu_count() or 1,
                   help="worker processes (default: all cores)")
    _add_realism(s)
    _common(s, device=False)


def _realism(text):
    from .data.synth.realism import parse_realism
    try:
        return parse_realism(text).name
    except ScatterXAIError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_realism(s) -> None:
    s.add_argument("--realism", type=_realism, default=DEFAULT_REALISM, metavar="FACTORS",
                   help=f"performance and recording conditions of the synthetic notes: 'all', 'none' (studio "
                        f"notes), factors joined by ',' or 'all-FACTOR' among {', '.join(REALISM_FACTORS)}")


def _cmd_extract(args):
    from .features import extract_features
    summary = extract_features(args.meta_csv, args.audio_root, args.out, device=args.device,
                               batch_size=args.batch_size, method=args.method, overwrite=args.overwrite,
                               classes=args.classes, seed=args.seed, segments=args.segments,
                               retry_failed=args.retry_failed, allow_outside_root=args.allow_outside_root,
                               compression=_compression(args.compression), progress=True, dask=args.dask)
    print(summary.describe())
    return 0 if summary.n_ok > 0 else 1


def _add_extract(sub) -> None:
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
    _add_compression(s)
    _dask_option(s, "the batches")
    _common(s)


def _cmd_train(args):
    from .model import train_model
    train_model(args.features, input=args.input, out_dir=args.out, seed=args.seed, device=args.device,
                max_epochs=args.max_epochs, progress=True)
    return 0


def _add_train(sub) -> None:
    s = _sub(sub, "train", "train the convnet on S1 or S1+S2 features", _cmd_train)
    s.add_argument("features", metavar="FEATURES.h5", help="features file with label and subset columns")
    s.add_argument("--input", choices=("s1", "s1s2"), required=True,
                   help="first-order coefficients only, or first and second order")
    s.add_argument("--out", required=True, metavar="MODEL_DIR", help="model directory to write")
    s.add_argument("--seed", type=_seed, default=0, help="seed of initialisation, dropout and batch order")
    s.add_argument("--max-epochs", type=_positive_int, default=None,
                   help="upper bound on epochs (early stopping on the validation split decides; default 60)")
    _common(s)


def _cmd_evaluate(args):
    from .model import evaluate_model
    metrics = evaluate_model(args.features, model_dir=args.model, out_dir=args.out, subset=args.subset,
                             device=args.device)
    print(metrics["markdown"])
    return 0


def _add_evaluate(sub) -> None:
    s = _sub(sub, "evaluate", "per-class accuracy and confusion matrix of a trained model", _cmd_evaluate)
    s.add_argument("features", metavar="FEATURES.h5", help="features file with labels")
    s.add_argument("--model", required=True, metavar="MODEL_DIR", help="model directory (scatterxai train)")
    s.add_argument("--out", required=True, metavar="DIR", help="directory for metrics.json and metrics.md")
    s.add_argument("--subset", default="test", choices=SUBSETS_ARG, help="rows to evaluate")
    _common(s)


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
                         method_params=params, max_per_class=limits, compression=_compression(args.compression))


def _cmd_explain(args):
    from .errors import ParameterError
    from .explain import explain, explain_files, is_features_file
    config = _explain_config(args)
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


def _add_explain(sub) -> None:
    s = _sub(sub, "explain", "relevance on the (λ1, λ2) plane with attribution methods → HDF5, from a features "
             "file or from audio files", _cmd_explain)
    s.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="one features file (HDF5, by content or extension .h5/.hdf5) or one or more audio files "
                        "(any other input: WAV, FLAC, …)")
    s.add_argument("--model", required=True, metavar="MODEL_DIR", help="model directory (scatterxai train)")
    s.add_argument("--methods", "--rules", dest="methods", default="epsilon,epsilon_plus",
                   help=f"comma-separated attribution methods, or 'all' (--rules is an alias): {', '.join(METHODS)}")
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
    _add_compression(s)
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
    _dask_option(s, "features input: the batches")
    _common(s)


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


def _add_figures(sub) -> None:
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


def _add_quality(sub) -> None:
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


def _cmd_describe(args):
    from .analysis.describe.run import DescribeConfig, describe_notes
    config = DescribeConfig(subset=args.subset, max_notes=args.max_notes, seed=args.seed,
                            max_seconds=args.max_seconds, jobs=args.jobs, batch_size=args.batch_size)
    summary = describe_notes(args.meta_csv, args.audio_root, args.out, features=args.features, config=config,
                             overwrite=args.overwrite, progress=True, dask=args.dask)
    print(summary.describe())
    return 0 if summary.n_ok > 0 else 1


def _add_describe(sub) -> None:
    s = _sub(sub, "describe", "hand-crafted descriptors of every note in a meta CSV → HDF5 (resumable)",
             _cmd_describe)
    s.add_argument("meta_csv", metavar="META_CSV", help="CSV with at least a file_name column")
    s.add_argument("--audio-root", required=True, metavar="DIR",
                   help="directory that file_name is relative to (searched recursively by base name)")
    s.add_argument("--out", required=True, metavar="DESCRIPTORS.h5", help="output descriptors file")
    s.add_argument("--features", default=None, metavar="F.h5",
                   help="features file of the same notes, for the scattering descriptors (S1 energies, "
                        "modulation spectrum, its peak, S2/S1 ratio); without it they are left out")
    s.add_argument("--subset", default=None, help="describe only this subset (training, validation, test)")
    s.add_argument("--max-notes", type=_positive_int, default=None,
                   help="describe at most this many notes, spread over classes and instruments")
    s.add_argument("--seed", type=_seed, default=0, help="seed of the --max-notes choice")
    s.add_argument("--max-seconds", type=float, default=None,
                   help="seconds described from the start of each file (default: the scattering window N/sr, "
                        "5.94 s for the paper configuration, what the network sees; 0: the whole file)")
    s.add_argument("--jobs", type=_positive_int, default=1, help="worker processes")
    s.add_argument("--batch-size", type=_positive_int, default=4, help="notes per task and per commit")
    s.add_argument("--overwrite", action="store_true",
                   help="discard an existing output or partial run made with other settings")
    _dask_option(s, "the batches (instead of --jobs)")
    _common(s, device=False)


def _cmd_probe(args):
    from .analysis.probe.export import write_probe_outputs
    from .analysis.probe.study import ProbeConfig, probe_study
    config = ProbeConfig(subset=None if args.subset == "all" else args.subset, max_examples=args.max_examples,
                         pooling=args.pooling, group_by=args.group_by, untrained_seeds=args.untrained_seeds,
                         batchnorm=args.batchnorm, n_permutations=args.permutations, seed=args.seed,
                         device=args.device, jobs=args.jobs, clip=not args.no_clip)
    result = probe_study(args.features, args.descriptors, args.model, config, progress=True)
    paths = write_probe_outputs(result, args.out)
    with open(paths["md"], encoding="utf-8") as fh:
        print(fh.read())
    return 0


def _add_probe(sub) -> None:
    s = _sub(sub, "probe", "what each layer represents: CKA, linear probes and unit matching, trained vs "
                           "untrained networks", _cmd_probe)
    s.add_argument("features", metavar="FEATURES.h5", help="features file with labels (and instruments)")
    s.add_argument("--descriptors", required=True, metavar="DESCRIPTORS.h5",
                   help="descriptors of (some of) its notes (scatterxai describe)")
    s.add_argument("--model", required=True, metavar="MODEL_DIR", help="model directory (scatterxai train)")
    s.add_argument("--out", required=True, metavar="DIR",
                   help="output directory: probe.h5, probe.json, probe.md, probe_r2.png, probe_cka.png")
    s.add_argument("--subset", default="test", help="training, validation, test or all")
    s.add_argument("--max-examples", type=_positive_int, default=None,
                   help="at most this many notes, spread over classes and instruments")
    s.add_argument("--untrained-seeds", type=int, default=5,
                   help="untrained networks of the same architecture (seeds 1000, 1001, …)")
    s.add_argument("--batchnorm", choices=("recalibrate", "init"), default="recalibrate",
                   help="BatchNorm statistics of the untrained networks: re-estimated on the probed notes "
                        "without gradients, or left at initialisation")
    s.add_argument("--pooling", choices=("mean", "flat"), default="mean",
                   help="convolutional layers averaged over time or flattened over (channels, frames)")
    s.add_argument("--group-by", choices=("instrument", "pitch"), default="instrument",
                   help="note families kept out of each other's cross-validation folds")
    s.add_argument("--permutations", type=_positive_int, default=200,
                   help="permutations of the CKA and best-unit nulls")
    s.add_argument("--no-clip", action="store_true",
                   help="do not clip held-out notes' z-scored features to the training fold's range (plain "
                        "protocol; a held-out instrument far outside the others is then extrapolated)")
    s.add_argument("--seed", type=_seed, default=0, help="seed of the note choice, folds and permutations")
    s.add_argument("--jobs", type=_positive_int, default=1,
                   help="worker processes for the (network, layer) analyses; results do not depend on it")
    _common(s)


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


def _add_compare(sub) -> None:
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


def _cmd_run(args):
    from .pipeline import RunConfig, run
    config = RunConfig(scale=args.scale, seed=args.seed, sol_root=args.sol_root, meta=args.meta,
                       audio_root=args.audio_root, device=args.device, max_epochs=args.max_epochs, jobs=args.jobs,
                       realism=args.realism)
    print(run(args.out, config)["report"])
    return 0


def _add_run(sub) -> None:
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
    _add_realism(s)
    _common(s)


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


def _add_sweep(sub) -> None:
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


def _add_auralise(sub) -> None:
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


# ------------------------------------------------------------------------------------------------ parser

#: --compression choices (lossless HDF5 filters of the large datasets)
COMPRESSION_CHOICES = ("none", "gzip", "lzf")


def _compression(name):
    return None if name == "none" else name


def _add_compression(p):
    p.add_argument("--compression", choices=COMPRESSION_CHOICES, default="none",
                   help="lossless compression of the (example, path, frame) datasets, chunked per example: "
                        "gzip (smaller, slower) or lzf (faster)")


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


#: the sub-commands, in the order of ``scatterxai --help``: each ``_add_<cmd>`` adds its parser
COMMANDS = (_add_run, _add_synth, _add_extract, _add_train, _add_evaluate, _add_explain, _add_figures, _add_quality,
            _add_describe, _add_probe, _add_sweep, _add_auralise, _add_compare)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scatterxai", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"scatterxai {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more messages (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", default=False,
                   help="only warnings and errors; no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for add in COMMANDS:
        add(sub)
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
