"""The ``scatterxai`` command: argument parsing only; each sub-command calls one stage function.

Nothing heavy is imported to build the parser (``scatterxai --help`` loads neither torch nor Kymatio).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional

from . import __version__
from ._util.cliargs import BOUNDS, SEED, check_outputs, input_arg, number, output_arg
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
    "explore": "the explorer folder was not changed; re-running starts over",
    "run": "finished stages are kept; re-run the same command to continue (extraction resumes, an "
           "interrupted training or explanation starts over)",
}
SUBSETS_ARG = ("training", "validation", "test", "all")


_positive_int = number(int, 1, BOUNDS["count"], "a positive integer")
_nonnegative_int = number(int, 0, BOUNDS["count"], "an integer >= 0")
_batch = number(int, 1, BOUNDS["batch"], "a batch size")
_jobs = number(int, 1, BOUNDS["jobs"], "a number of worker processes")
_epochs = number(int, 1, BOUNDS["epochs"], "a number of epochs")
_epochs0 = number(int, 0, BOUNDS["epochs"], "a number of epochs")
_steps = number(int, 1, BOUNDS["steps"], "a number of steps")
_scale = number(float, 0, BOUNDS["scale"], "a corpus scale (1 = SOL-PMT's 5,564 notes)", lo_open=True)
_epsilon = number(float, 0, BOUNDS["epsilon"], "an LRP epsilon (larger ones absorb all relevance)", lo_open=True)
_dpi = number(float, 10, BOUNDS["dpi"], "a resolution in dots per inch")
_fraction = number(float, 0, 1, "a fraction", lo_open=True)
_sigma = number(float, 0, BOUNDS["sigma"], "a noise level (fraction of the input's range)")
_seconds = number(float, 0, BOUNDS["seconds"], "a duration in seconds (0: the whole file)")
_seeds = number(int, 0, BOUNDS["seeds"], "a number of networks")
_channel = number(int, 0, BOUNDS["channel"], "a channel index")
_seed = SEED
_folds = number(int, 3, BOUNDS["folds"], "a number of folds")
_dropout = number(float, 0, 0.95, "a dropout rate")
_lr = number(float, 0, 1, "a learning rate", lo_open=True)
_weight_decay = number(float, 0, 10, "a weight decay")


def _param_argument(param) -> dict:
    """argparse keywords (type or choices, metavar) of a method's :class:`~scatterxai.explain.Param`."""
    if param.kind == "choice":
        return {"choices": param.cli_choices or param.choices}
    if param.kind == "bool":
        return {"action": "store_const", "const": True}
    if param.kind == "seed":
        kind = _seed
    else:
        high = BOUNDS["count"] if param.high is None else param.high
        low = -high if param.low is None else param.low
        kind = number(float if param.kind == "float" else int, low, high, f"a value of {param.name}",
                      lo_open=param.low_open)
    return {"type": kind, **({"metavar": param.metavar} if param.metavar else {})}


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
    output_arg(s, "out_dir", kind="corpus", metavar="OUT_DIR", help="output directory (audio/*.wav, meta.csv)")
    s.add_argument("--scale", type=_scale, default=DEFAULT_SCALE,
                   help=f"fraction of the SOL-PMT counts per instrument x technique (≈ "
                        f"{round(5564 * DEFAULT_SCALE, -1):,.0f} notes; 0.1 ≈ 560; 1 = 5,564)")
    s.add_argument("--seed", type=_seed, default=0, help="seed of every note's parameters")
    s.add_argument("--jobs", type=_jobs, default=min(os.cpu_count() or 1, BOUNDS["jobs"]),
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
                        f"notes), factors joined by ',' or 'all-FACTOR' among {', '.join(REALISM_FACTORS)}; "
                        f"a suffix '@P' gives them to a share P of the notes only (a mixed corpus); default "
                        f"{DEFAULT_REALISM}")


def _cmd_extract(args):
    from .features import extract_features
    summary = extract_features(args.meta_csv, args.audio_root, args.out, device=args.device,
                               batch_size=args.batch_size, method=args.method, overwrite=args.overwrite,
                               classes=args.classes, seed=args.seed, segments=args.segments,
                               retry_failed=args.retry_failed, allow_outside_root=args.allow_outside_root,
                               compression=_compression(args.compression), progress=True, dask=args.dask,
                               jobs=args.jobs, augment=_augment(args))
    print(summary.describe())
    return 0 if summary.n_ok > 0 else 1


def _augment(args):
    if not args.augment:
        return None
    from .features.augment import AugmentConfig
    return AugmentConfig(copies=args.augment, seed=args.augment_seed)


def _add_extract(sub) -> None:
    s = _sub(sub, "extract", "scattering features of every file in a meta CSV → HDF5 (resumable)", _cmd_extract)
    input_arg(s, "meta_csv", kind="meta_csv", metavar="META_CSV", help="CSV with at least a file_name column")
    input_arg(s, "--audio-root", kind="audio_root", required=True, metavar="DIR",
              help="directory that file_name is relative to (searched recursively by base name if not found "
                   "there, as in the SOL tree)")
    output_arg(s, "--out", kind="features", required=True, metavar="FEATURES.h5", help="output features file")
    s.add_argument("--batch-size", type=_batch, default=8, help="files transformed at once")
    s.add_argument("--jobs", type=_jobs, default=min(os.cpu_count() or 1, BOUNDS["jobs"]),
                   help="worker processes, one torch thread each (default: all cores); the file does not depend "
                        "on it, nor on --dask")
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
    s.add_argument("--augment", type=_nonnegative_int, default=0, metavar="K",
                   help="add K augmented copies of every note (random excerpt, ±0.5 semitone, reverberation, "
                        "noise; flagged in column augmented), used for training only (0: none)")
    s.add_argument("--augment-seed", type=_seed, default=0, help="seed of the augmented copies")
    _add_compression(s)
    _dask_option(s, "the batches")
    _common(s)


def _cmd_train(args):
    from .model import train_crossval, train_model
    options = _training_options(args)
    if args.folds is not None:
        train_crossval(args.features, out_dir=args.out, folds=args.folds, group_by=args.group_by,
                       overwrite=args.overwrite, **options)
    else:
        if args.group_by is not None:
            raise ScatterXAIError("--group-by applies to cross-validation: give --folds K too")
        train_model(args.features, out_dir=args.out, overwrite=args.overwrite, **options)
    return 0


def _training_options(args) -> dict:
    """Keyword arguments of train_model / train_crossval from the network and training options."""
    import dataclasses

    from .model import InitSpec, TrainConfig
    from .model.arch import get_arch
    changes = {k: getattr(args, k) for k in ("lr", "weight_decay") if getattr(args, k) is not None}
    config = dataclasses.replace(TrainConfig(bn_recalibrate=args.bn_recalibrate), **changes)
    if args.init is None and (args.freeze_conv or args.new_head):
        raise ScatterXAIError("--freeze-conv and --new-head apply to fine-tuning: give --init MODEL_DIR too")
    if args.init is not None and (args.arch is not None or args.dropout is not None):
        raise ScatterXAIError("--arch and --dropout do not apply with --init (the pretrained network's "
                              "architecture is kept)")
    init = (None if args.init is None
            else InitSpec(args.init, freeze=args.freeze_conv, new_head=args.new_head, mu=args.init_mu))
    arch = None if args.arch is None and args.dropout is None else get_arch(args.arch, dropout=args.dropout)
    return dict(input=args.input, seed=args.seed, device=args.device, max_epochs=args.max_epochs, progress=True,
                config=config, arch=arch, init=init)


def _add_training_options(s) -> None:
    """Options of the network and its training (train, run)."""
    g = s.add_argument_group("network and training (see the README, 'Small studies' and 'Fine-tuning')")
    g.add_argument("--arch", choices=("paper", "small"), default=None,
                   help="network preset: the paper's (2.07 M parameters on S1+S2; default) or a small one (34 K) "
                        "for studies of tens to hundreds of notes")
    g.add_argument("--dropout", type=_dropout, default=None, help="dropout before the dense layers (default 0.5)")
    g.add_argument("--weight-decay", type=_weight_decay, default=None, help="AdamW weight decay (default 0.1)")
    g.add_argument("--lr", type=_lr, default=None, help="AdamW learning rate (default 1e-3)")
    g.add_argument("--bn-recalibrate", choices=("auto", "on", "off"), default="auto",
                   help="recompute BatchNorm statistics on the whole training split after each epoch; auto: on "
                        "for small studies (fewer than 500 recordings)")
    input_arg(g, "--init", kind="model", default=None, metavar="MODEL_DIR",
              help="fine-tune: start from this trained model (same scattering; its architecture and input "
                   "are kept; the same classes, a subset, or new ones with a new output layer)")
    g.add_argument("--freeze-conv", action="store_true",
                   help="with --init: keep the convolutional layers fixed (train the dense layers only)")
    g.add_argument("--new-head", action="store_true",
                   help="with --init: a freshly initialised output layer even for classes the model knows")
    g.add_argument("--init-mu", choices=("pretrained", "data"), default="pretrained",
                   help="with --init: normalisation mean μ of the input from the pretrained model or from the "
                        "new training rows")


def _add_train(sub) -> None:
    s = _sub(sub, "train", "train the convnet on S1 or S1+S2 features (one split, or K-fold cross-validation)",
             _cmd_train)
    input_arg(s, "features", kind="features", metavar="FEATURES.h5",
              help="features file with label and subset columns")
    s.add_argument("--input", choices=("s1", "s1s2"), default=None,
                   help="first-order coefficients only, or first and second order (required, except with --init)")
    output_arg(s, "--out", kind="model", required=True, metavar="MODEL_DIR", help="model directory to write")
    s.add_argument("--seed", type=_seed, default=0, help="seed of initialisation, dropout and batch order")
    _overwrite(s)
    s.add_argument("--max-epochs", type=_epochs, default=None,
                   help="upper bound on epochs (early stopping on the validation split decides; default 60)")
    s.add_argument("--folds", type=_folds, default=None, metavar="K",
                   help="K-fold cross-validation (K >= 3), grouped and stratified by class: K fold models, "
                        "out-of-fold accuracy with its spread, and a final model on every row (suggested below "
                        "500 recordings)")
    s.add_argument("--group-by", default=None, metavar="COLUMN",
                   help="with --folds: column whose values never straddle folds (default: group, player, "
                        "performer, source or instrument when the data have one, else the recording)")
    _add_training_options(s)
    _common(s)


def _cmd_evaluate(args):
    from .model import evaluate_model
    metrics = evaluate_model(args.features, model_dir=args.model, out_dir=args.out, subset=args.subset,
                             device=args.device, overwrite=args.overwrite)
    print(metrics["markdown"])
    return 0


def _add_evaluate(sub) -> None:
    s = _sub(sub, "evaluate", "per-class accuracy and confusion matrix of a trained model", _cmd_evaluate)
    input_arg(s, "features", kind="features", metavar="FEATURES.h5", help="features file with labels")
    input_arg(s, "--model", kind="model", required=True, metavar="MODEL_DIR", help="model directory (scatterxai train)")
    output_arg(s, "--out", kind="evaluation", required=True, metavar="DIR",
               help="directory for metrics.json and metrics.md")
    s.add_argument("--subset", default="test", choices=SUBSETS_ARG, help="rows to evaluate")
    _overwrite(s)
    _common(s)


def method_options() -> dict:
    """The method options of ``scatterxai explain``, from the registry: argparse dest → (method, Param)."""
    from .explain import REGISTRY, available_methods
    return {p.dest: (m, p) for m in available_methods() for p in REGISTRY[m].parameters if p.flag}


def _method_list(text: str):
    from .explain import available_methods
    return tuple(available_methods()) if text.strip() == "all" else text


def _explain_config(args):
    """ExplainConfig from the explain options (method parameters only for the chosen methods)."""
    from .errors import ParameterError
    from .explain import REGISTRY, ExplainConfig, method_names
    methods = method_names(_method_list(args.methods))
    params = {}
    for dest, (method, param) in method_options().items():
        value = getattr(args, dest)
        if value is None:
            continue
        if method not in methods:
            raise ParameterError(f"{param.flag} is a parameter of {method}, which is not among --methods "
                                 f"{','.join(methods)}")
        params.setdefault(method, {})[param.name] = value
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
                      dask=args.dask, overwrite=args.overwrite))
        return 0
    if args.dask is not None:
        raise ParameterError("--dask applies to a features file input; for audio files, extract their features "
                             "with scatterxai extract --dask, then explain the features file")
    from .report import example_figures
    if args.out.lower().endswith((".h5", ".hdf5")):
        raise ParameterError(f"for audio input --out is a directory (relevance.h5, predictions.json and a figure "
                             f"per file go there), got {args.out!r}")
    from ._util.outputs import claim_output
    with claim_output(args.out, kind="explanation", overwrite=args.overwrite,
                      inputs={"audio input": args.inputs, "model directory": args.model}) as claim:
        result = explain_files(args.inputs, model_dir=args.model, out_dir=claim.tmp, config=config,
                               segments=args.segments, progress=True)
        figures = example_figures(result.relevance, claim.tmp, fmt=args.format, dpi=args.dpi)
        result, figures = claim.final(result), claim.final(figures)
    print(result.describe())
    print("figures: " + ", ".join(figures))
    return 0


def _explain_output(args) -> str:
    """The output kind of explain: a relevance file for a features file, a folder for audio files."""
    from .explain.files import is_features_file
    return "relevance" if any(is_features_file(p) for p in args.inputs) else "explanation"


def _add_explain(sub) -> None:
    from .explain import REGISTRY, available_methods
    from .explain.methods.lrp import DEFAULT_EPSILON
    s = _sub(sub, "explain", "relevance on the (λ1, λ2) plane with attribution methods → HDF5, from a features "
             "file or from audio files", _cmd_explain)
    input_arg(s, "inputs", kind="features_or_audio", nargs="+", metavar="INPUT",
              help="one features file (HDF5, by content or extension .h5/.hdf5) or one or more audio files (any "
                   "other input: WAV, FLAC, …)")
    input_arg(s, "--model", kind="model", required=True, metavar="MODEL_DIR", help="model directory (scatterxai train)")
    s.add_argument("--methods", "--rules", dest="methods", default="epsilon,epsilon_plus",
                   help=f"comma-separated attribution methods, or 'all' (--rules is an alias): "
                        f"{', '.join(available_methods())}")
    output_arg(s, "--out", kind=_explain_output, required=True, metavar="RELEVANCE.h5|DIR",
               help="output relevance file (features input), or output directory (audio input: relevance.h5, "
                    "predictions.json, a figure per file)")
    _overwrite(s)
    s.add_argument("--segments", action="store_true",
                   help="audio input: cut files longer than the window into consecutive windows and average "
                        "their probabilities and maps (default: first window only, with a warning)")
    s.add_argument("--format", choices=("png", "pdf", "svg"), default="png", help="audio input: figure format")
    s.add_argument("--dpi", type=_dpi, default=100, help="audio input: figure resolution")
    s.add_argument("--subset", default="test", choices=SUBSETS_ARG, help="features input: rows to explain")
    s.add_argument("--target", choices=("pred", "true"), default="pred",
                   help="explain the predicted class (paper) or the true class")
    s.add_argument("--top-n", type=_steps, default=5, help="n of the per-class top-n aggregation")
    s.add_argument("--epsilon", type=_epsilon, default=DEFAULT_EPSILON, help="ε of the LRP ε-rule")
    s.add_argument("--batch-size", type=_batch, default=64, help="examples attributed at once")
    _add_compression(s)
    s.add_argument("--max-per-class", type=_positive_int, default=None, metavar="N",
                   help=f"explain at most N examples per class (spread evenly through the file) with the slow "
                        f"methods {', '.join(m for m in available_methods() if REGISTRY[m].slow)}; their other rows "
                        f"are NaN (None: all rows)")
    g = s.add_argument_group("method parameters (None: the method's own default, shown in brackets)")
    for method, param in method_options().values():
        default = "" if param.default is None else f" [{param.default}]"
        text = f"{REGISTRY[method].title}: {param.help}{default}".replace("%", "%%")
        g.add_argument(param.flag, default=None, help=text,
                       **_param_argument(param))
    _dask_option(s, "features input: the batches")
    _common(s)


def _cmd_figures(args):
    from .report import relevance_figures
    examples = None if args.examples is None else [e.strip() for e in args.examples.split(",") if e.strip()]
    methods = None if args.methods is None else [m.strip() for m in args.methods.split(",") if m.strip()]
    written = relevance_figures(args.relevance, args.out, examples=examples, methods=methods,
                                aggregate_method=args.aggregate_method, audio_root=args.audio_root,
                                fmt=args.format, dpi=args.dpi, overwrite=args.overwrite)
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def _add_figures(sub) -> None:
    s = _sub(sub, "figures", "Fig. 1, Fig. 2 and the confusion matrix of any relevance file", _cmd_figures)
    input_arg(s, "relevance", kind="relevance", metavar="RELEVANCE.h5", help="relevance file (scatterxai explain)")
    output_arg(s, "--out", kind="figures", required=True, metavar="DIR", help="output directory")
    _overwrite(s)
    s.add_argument("--examples", default=None, metavar="LIST",
                   help="comma-separated rows or file names drawn in Fig. 1 (default: one per class, correctly "
                        "classified if possible, pitch nearest A4)")
    s.add_argument("--methods", default=None, metavar="LIST",
                   help="methods drawn in Fig. 1 (default: LRP-ε and LRP-[ε,z+] when present, else all)")
    s.add_argument("--aggregate-method", default=None, metavar="METHOD",
                   help="method of Fig. 2's aggregated maps (default: epsilon_plus when present, else the last)")
    input_arg(s, "--audio-root", kind="audio_root", default=None, metavar="DIR",
              help="where the audio files are, for the spectrograms (default: recorded at extraction)")
    s.add_argument("--format", choices=("png", "pdf", "svg"), default="png", help="file format")
    s.add_argument("--dpi", type=_dpi, default=200, help="resolution (raster parts of vector files)")
    _common(s, device=False)


def _baseline_list(text):
    from .analysis.quality import BASELINES
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in BASELINES]
    if not names or bad or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of distinct baselines from "
                                         f"{', '.join(BASELINES)}, got {text!r}")
    return tuple(names)


def _cmd_quality(args):
    from .analysis.quality import QualityConfig, quality
    from .analysis.quality.report import dependence_sentence, failure_sentence, ranking_table
    config = QualityConfig(subset=args.subset, max_examples=args.max_examples, select=args.select,
                           n_steps=args.steps, max_fraction=args.max_fraction, n_random=args.random_orders,
                           **({"baselines": args.baselines} if args.baselines else {}),
                           randomisation_examples=args.randomisation_examples,
                           randomisation_examples_slow=args.randomisation_examples_slow,
                           randomisation_seeds=args.randomisation_seeds, independent=not args.no_independent,
                           permuted_epochs=args.permuted_epochs, permuted_notes=args.permuted_notes or None,
                           permuted_target=args.permuted_target, seed=args.seed, randomisation_seed=args.seed,
                           device=args.device)
    res = quality(args.features, model_dir=args.model, relevance=args.relevance, out=args.out, config=config,
                  permuted_model=args.permuted_model, progress=True, overwrite=args.overwrite)
    print(ranking_table(res["quality"]) + "\n\n" + failure_sentence(res["quality"]) + "\n\n"
          + dependence_sentence(res["quality"]) + "\n\n" + f"details: {res['files']['markdown']}")
    return 0


def _add_quality(sub) -> None:
    s = _sub(sub, "quality", "is the explanation right? deletion/insertion of paths under named baselines against "
                             "random orders and control maps, randomisation sanity checks and ground truth for "
                             "every method of a relevance file",
             _cmd_quality)
    input_arg(s, "features", kind="features", metavar="FEATURES.h5",
              help="features file the model was trained on (baseline, permuted-label training)")
    input_arg(s, "--model", kind="model", required=True, metavar="MODEL_DIR",
              help="the model the relevance file explains")
    input_arg(s, "--relevance", kind="relevance", required=True, metavar="R.h5",
              help="relevance file (scatterxai explain)")
    output_arg(s, "--out", kind="quality", required=True, metavar="DIR",
               help="output directory: quality.json, quality.md, figures")
    _overwrite(s)
    s.add_argument("--subset", default="test", help="rows of the relevance file scored (training, validation, "
                                                     "test or all)")
    s.add_argument("--max-examples", type=_positive_int, default=None, metavar="N",
                   help="score the first N notes every method explained (default: all)")
    s.add_argument("--select", choices=("first", "spread"), default="first",
                   help="with --max-examples: the first N in file order, or N evenly spaced over the file")
    s.add_argument("--steps", type=_steps, default=20, help="deletion/insertion steps (at least 20)")
    s.add_argument("--max-fraction", type=_fraction, default=0.5,
                   help="largest fraction of the paths deleted or inserted")
    s.add_argument("--random-orders", type=_steps, default=5,
                   help="seeded random path orders per note, the reference (at least 5)")
    s.add_argument("--baselines", type=_baseline_list, default=None,
                   metavar="B1,B2,...",
                   help="network inputs of a replaced path, each scored (the first also at the top level of "
                        "quality.json): training_mean (its mean over the training notes and frames), zero "
                        "(silence), shuffle (the note's own path, frames in a random order), mu (the input of a "
                        "coefficient equal to its mean energy); default: QualityConfig's, training_mean,zero,shuffle")
    s.add_argument("--randomisation-examples", type=_positive_int, default=None, metavar="N",
                   help="notes used by the randomisation checks (the first of the scored notes, or spread over "
                        "them with --select spread; default all)")
    s.add_argument("--randomisation-examples-slow", type=_positive_int, default=None, metavar="N",
                   help="fewer randomisation notes for the slow methods (Integrated Gradients, SmoothGrad, "
                        "occlusion; default: as many as the others)")
    s.add_argument("--randomisation-seeds", type=number(int, 1, BOUNDS["seeds"], "a number of seeds"), default=5,
                   metavar="N", help="re-initialisation seeds per randomisation step (at least 5)")
    s.add_argument("--no-independent", action="store_true",
                   help="skip the one-layer-at-a-time randomisation (the cascade is always run)")
    s.add_argument("--permuted-epochs", type=_epochs0, default=60,
                   help="most epochs of the network trained on permuted labels; it stops once it fits "
                        "--permuted-target of them (0: no data randomisation check)")
    s.add_argument("--permuted-notes", type=_nonnegative_int, default=160, metavar="N",
                   help="training notes that network memorises, spread over classes (0: all)")
    s.add_argument("--permuted-target", type=_fraction, default=0.9,
                   help="training accuracy on the permuted labels at which that network stops")
    input_arg(s, "--permuted-model", kind="permuted_model", default=None, metavar="DIR",
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
    input_arg(s, "meta_csv", kind="meta_csv", metavar="META_CSV", help="CSV with at least a file_name column")
    input_arg(s, "--audio-root", kind="audio_root", required=True, metavar="DIR",
              help="directory that file_name is relative to (searched recursively by base name)")
    output_arg(s, "--out", kind="descriptors", required=True, metavar="DESCRIPTORS.h5",
               help="output descriptors file")
    input_arg(s, "--features", kind="features", default=None, metavar="F.h5",
                   help="features file of the same notes, for the scattering descriptors (S1 energies, "
                        "modulation spectrum, its peak, S2/S1 ratio); without it they are left out")
    s.add_argument("--subset", default=None, help="describe only this subset (training, validation, test)")
    s.add_argument("--max-notes", type=_positive_int, default=None,
                   help="describe at most this many notes, spread over classes and instruments")
    s.add_argument("--seed", type=_seed, default=0, help="seed of the --max-notes choice")
    s.add_argument("--max-seconds", type=_seconds, default=None,
                   help="seconds described from the start of each file (default: the scattering window N/sr, "
                        "5.94 s for the paper configuration, what the network sees; 0: the whole file)")
    s.add_argument("--jobs", type=_jobs, default=1, help="worker processes")
    s.add_argument("--batch-size", type=_batch, default=4, help="notes per task and per commit")
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
    from ._util.outputs import claim_output
    inputs = {"features input": args.features, "descriptors input": args.descriptors, "model directory": args.model}
    with claim_output(args.out, kind="probe", inputs=inputs, overwrite=args.overwrite) as claim:
        result = probe_study(args.features, args.descriptors, args.model, config, progress=True)
        paths = claim.final(write_probe_outputs(result, claim.tmp))
    with open(paths["md"], encoding="utf-8") as fh:
        print(fh.read())
    return 0


def _add_probe(sub) -> None:
    s = _sub(sub, "probe", "what each layer represents: CKA, linear probes and unit matching, trained vs "
                           "untrained networks", _cmd_probe)
    input_arg(s, "features", kind="features", metavar="FEATURES.h5", help="features file with labels (and instruments)")
    input_arg(s, "--descriptors", kind="descriptors", required=True, metavar="DESCRIPTORS.h5",
              help="descriptors of (some of) its notes (scatterxai describe)")
    input_arg(s, "--model", kind="model", required=True, metavar="MODEL_DIR", help="model directory (scatterxai train)")
    output_arg(s, "--out", kind="probe", required=True, metavar="DIR",
               help="output directory: probe.h5, probe.json, probe.md, probe_r2.png, probe_cka.png")
    _overwrite(s)
    s.add_argument("--subset", default="test", help="training, validation, test or all")
    s.add_argument("--max-examples", type=_positive_int, default=None,
                   help="at most this many notes, spread over classes and instruments")
    s.add_argument("--untrained-seeds", type=_seeds, default=5,
                   help="untrained networks of the same architecture (seeds 1000, 1001, …)")
    s.add_argument("--batchnorm", choices=("recalibrate", "init"), default="recalibrate",
                   help="BatchNorm statistics of the untrained networks: re-estimated on the probed notes "
                        "without gradients, or left at initialisation")
    s.add_argument("--pooling", choices=("mean", "flat"), default="mean",
                   help="convolutional layers averaged over time or flattened over (channels, frames)")
    s.add_argument("--group-by", choices=("instrument", "pitch"), default="instrument",
                   help="note families kept out of each other's cross-validation folds")
    s.add_argument("--permutations", type=_steps, default=200,
                   help="permutations of the CKA and best-unit nulls")
    s.add_argument("--no-clip", action="store_true",
                   help="do not clip held-out notes' z-scored features to the training fold's range (plain "
                        "protocol; a held-out instrument far outside the others is then extrapolated)")
    s.add_argument("--seed", type=_seed, default=0, help="seed of the note choice, folds and permutations")
    s.add_argument("--jobs", type=_jobs, default=1,
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
    result = compare_relevance(args.relevance, args.out, config, overwrite=args.overwrite)
    print(describe(result))
    print(os.path.join(args.out, "compare.md"))
    return 0


def _add_compare(sub) -> None:
    s = _sub(sub, "compare", "distances between relevance maps: within and between classes, between methods",
             _cmd_compare)
    input_arg(s, "relevance", kind="relevance", metavar="RELEVANCE.h5", help="relevance file (scatterxai explain)")
    output_arg(s, "--out", kind="compare", required=True, metavar="DIR",
               help="directory for compare.json, compare.md and the figures")
    _overwrite(s)
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
                       folds=args.folds, arch=args.arch, realism=args.realism)
    print(run(args.out, config)["report"])
    return 0


def _add_run(sub) -> None:
    s = _sub(sub, "run", "the whole study: data → features → models → relevance → figures → report", _cmd_run)
    output_arg(s, "--out", kind="run", required=True, metavar="DIR",
               help="output directory (stages already done are reused)")
    s.add_argument("--scale", type=_scale, default=DEFAULT_SCALE,
                   help="synthetic corpus size as a fraction of SOL-PMT's 5,564 notes (the demo profile)")
    s.add_argument("--seed", type=_seed, default=0, help="seed of the synthetic corpus, the split and training")
    input_arg(s, "--meta", kind="meta_csv", default=None, metavar="CSV",
                   help="your own data: a CSV with file_name and label (text or integers), optionally subset "
                        "(else a 6:2:2 split is drawn with --seed); with --audio-root")
    input_arg(s, "--audio-root", kind="audio_root", default=None, metavar="DIR",
              help="directory the file names of --meta are relative to (searched by base name below it)")
    input_arg(s, "--sol-root", kind="sol_root", default=None, metavar="PATH",
                   help="IRCAM's SOL 0.9HQ instead of the synthetic corpus, with the published SOL-PMT split "
                        "(or a SOL-format --meta); the report compares with the paper's numbers")
    s.add_argument("--max-epochs", type=_epochs, default=None,
                   help="upper bound on training epochs (early stopping decides below it; default 60)")
    s.add_argument("--jobs", type=_jobs, default=None,
                   help="worker processes for synthesis and extraction (default: all cores)")
    s.add_argument("--folds", type=_run_folds, default="auto", metavar="K|auto|none",
                   help="K-fold cross-validation of both networks (out-of-fold metrics with their spread and "
                        "out-of-fold relevance); auto: 5 folds for your own data below 500 recordings, else one "
                        "split (the synthetic corpus and SOL keep the paper's split)")
    s.add_argument("--arch", choices=("paper", "small"), default=None,
                   help="network preset: the paper's (default) or a small one for small studies")
    _add_realism(s)
    _common(s)


def _run_folds(text):
    if text in ("auto", "none"):
        return None if text == "none" else text
    return _folds(text)


_run_folds.bounds = _folds.bounds


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
    result = run_sweep(args.model, args.out, config, progress=True, overwrite=args.overwrite)
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
    input_arg(s, "--model", kind="model", required=True, metavar="MODEL_DIR", help="model directory (scatterxai train)")
    s.add_argument("--factor", required=True, choices=("rate", "f0", "dynamics", "instrument", "depth", "technique"),
                   help="the factor that varies (everything else, random draws included, stays)")
    s.add_argument("--technique", required=True, metavar="T",
                   help="technique of the base note: a class (vibrato, trill, tremolo, bisbigliando, "
                        "flatterzunge) or a SOL variant name")
    s.add_argument("--values", nargs="+", default=None, metavar="V",
                   help="values of the factor (Hz for rate and f0; a marking, an instrument, a depth or a "
                        "technique); default: rate 4-32 Hz and f0 three octaves in half-octave steps, pp-ff, "
                        "the instruments that play T, five depths, every technique")
    s.add_argument("--repeats", type=_steps, default=1,
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
    output_arg(s, "--out", kind="sweep", required=True, metavar="DIR",
               help="output directory: audio/, meta.csv, features.h5, relevance.h5, activations.h5, sweep.json, "
                    "figures")
    _overwrite(s)
    _common(s)


def _cmd_auralise(args):
    from .analysis.auralise.run import auralise_audio, auralise_relevance
    if args.relevance is not None:
        if args.audio is not None or args.example is None or args.audio_root is None:
            raise ScatterXAIError("with --relevance give --example K and --audio-root DIR, and no AUDIO")
        result = auralise_relevance(args.relevance, args.example, args.audio_root, args.out, method=args.method,
                                    mode=args.mode, top=args.top, overwrite=args.overwrite)
    else:
        if args.audio is None or args.model is None:
            raise ScatterXAIError("give AUDIO and --model MODEL_DIR (or --relevance R.h5 --example K "
                                  "--audio-root DIR)")
        result = auralise_audio(args.audio, args.model, args.out, method=args.method, target=args.target,
                                device=args.device, mode=args.mode, top=args.top, overwrite=args.overwrite)
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
    input_arg(s, "audio", kind="audio", nargs="?", default=None, metavar="AUDIO",
              help="audio file to explain with --model (omit with --relevance)")
    input_arg(s, "--model", kind="model", default=None, metavar="MODEL_DIR", help="model directory (with AUDIO)")
    s.add_argument("--method", default="epsilon_plus", help="attribution method (registered name)")
    s.add_argument("--target", default="pred",
                   help="with AUDIO: class whose relevance is kept, pred (the predicted class), a class name "
                        "or index (a relevance file's map keeps the class it explained)")
    input_arg(s, "--relevance", kind="relevance", default=None, metavar="R.h5",
              help="use a stored local map of this relevance file instead of AUDIO and --model")
    s.add_argument("--example", type=_nonnegative_int, default=None, metavar="K",
                   help="row of the example in --relevance")
    input_arg(s, "--audio-root", kind="audio_root", default=None, metavar="DIR",
              help="directory the relevance file's file names are relative to")
    s.add_argument("--mode", choices=("positive", "absolute"), default="positive",
                   help="path weight: positive relevance or |relevance|, over its maximum")
    s.add_argument("--top", type=_steps, default=None,
                   help="keep exactly the K most relevant paths (binary mask) instead of graded weights")
    output_arg(s, "--out", kind="auralise", required=True, metavar="OUT_DIR",
               help="output directory: relevant.wav, complement.wav, reference.wav, map.png, auralise.json")
    _overwrite(s)
    _common(s)


def _cmd_explore(args):
    from .explore import ExploreConfig, explore
    auralise = {"all": "all", "none": ()}.get(args.auralise.strip(), args.auralise)
    config = ExploreConfig(notes=args.notes, methods=args.methods, auralise=auralise, audio=not args.no_audio,
                           audio_format=args.audio_format)
    result = explore(args.run_dir, args.out, config, audio_root=args.audio_root, progress=True,
                     overwrite=args.overwrite)
    print(f"{result['index']}: {result['n_notes']} notes, {result['bytes'] / 1e6:.1f} MB, {result['seconds']:.1f} s")
    print(f"shown: {result['selection']}")
    print(f"open it in a browser (no server needed): file://{result['index']}")
    return 0


def _add_explore(sub) -> None:
    s = _sub(sub, "explore", "an interactive explorer of a run (a folder with index.html that a browser opens from "
             "the file system): notes, maps in Hz, spectrograms, audio of what each method keeps", _cmd_explore)
    input_arg(s, "run_dir", kind="run_dir", metavar="RUN_DIR", help="output directory of scatterxai run "
              "(relevance.h5, compare/, quality/, the audio)")
    output_arg(s, "--out", kind="explorer", default=None, metavar="DIR", help="explorer directory, replaced as a "
               "whole (None: RUN_DIR/explorer)")
    _overwrite(s)
    s.add_argument("--notes", type=_positive_int, default=3, metavar="N",
                   help="at most N notes per class (misclassified first, then correct ones spread over the range "
                        "of confidence)")
    s.add_argument("--methods", default=None, help="comma-separated methods shown (None: all in relevance.h5)")
    s.add_argument("--auralise", default="all", metavar="METHODS",
                   help="methods whose relevant part and complement are resynthesised: 'all' (the shown methods), "
                        "'none', or a comma-separated list (each costs about one extra resynthesis per note)")
    input_arg(s, "--audio-root", kind="audio_root", default=None, metavar="DIR",
              help="where the notes' audio is (None: the relevance file's audio_root, else RUN_DIR/data/audio)")
    s.add_argument("--audio-format", choices=("ogg", "wav"), default="ogg",
                   help="Ogg Vorbis (about a tenth of the size) or 16-bit WAV")
    s.add_argument("--no-audio", action="store_true", help="maps only: no audio players, no spectrograms")
    _common(s, device=False)


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


def _overwrite(p):
    p.add_argument("--overwrite", action="store_true",
                   help="replace an output of another kind or study (never an input, never a file or folder "
                        "scatterxai did not write)")


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
            _add_describe, _add_probe, _add_sweep, _add_auralise, _add_compare, _add_explore)


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


def error_status(e: BaseException, label: str, interrupted: str = "nothing was written") -> int:
    """Report an error that ends a command in one line on stderr (``LABEL: error: ...``) and return its exit
    status: 2 for the package's errors (:class:`~scatterxai.errors.ScatterXAIError`), I/O errors and lack of
    memory, 130 for Ctrl-C (``LABEL: interrupted; INTERRUPTED``).  Other exceptions are the caller's."""
    if isinstance(e, KeyboardInterrupt):
        print(f"{label}: interrupted; {interrupted}", file=sys.stderr)
        return 130
    if isinstance(e, MemoryError):
        message = "out of memory; use smaller inputs or settings (fewer notes, a smaller --batch-size)"
    elif isinstance(e, ScatterXAIError):
        message = str(e)
    elif isinstance(e, OSError):   # an I/O error no stage turned into a message (the file system, not the data)
        from ._util.outputs import describe_os_error
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        message = f"{where}{describe_os_error(e)}"
    else:
        raise TypeError(f"error_status does not report {type(e).__name__}") from e
    print(f"{label}: error: {message}", file=sys.stderr)
    return 2


#: what :func:`error_status` reports
REPORTED = (ScatterXAIError, OSError, MemoryError, KeyboardInterrupt)


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0, 1 when nothing succeeded, 2 on errors, 130 on
    Ctrl-C).  Everything, including parsing and the lazy imports of the commands, runs inside the handlers,
    so that an interruption at any moment gives a message rather than a traceback."""
    command = None
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = args.command
        from ._util.log import configure
        configure(-1 if args.quiet else args.verbose)
        check_outputs(parser, args)   # the output rule, before any work (each command claims its output again)
        return args.func(args)
    except REPORTED as e:
        return error_status(e, "scatterxai" + (f" {command}" if command else ""),
                            INTERRUPTED.get(command, "nothing was written"))


def run_script(func: Callable[[], Optional[int]], name: Optional[str] = None) -> None:
    """``sys.exit(func())`` with the command line's error handling (:func:`error_status`): for the scripts of
    ``experiments/``, so that a bad argument or input ends them with one line naming it and status 2, not
    a traceback.  ``name`` defaults to the script's file name."""
    try:
        status = func()
    except REPORTED as e:
        status = error_status(e, name or os.path.basename(sys.argv[0]),
                              "what it had finished is in its output folder")
    sys.exit(status)


if __name__ == "__main__":
    sys.exit(main())
