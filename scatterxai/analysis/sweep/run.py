"""``scatterxai sweep``: synthesise a controlled variation, explain it, and measure what moves.

Steps (:func:`run_sweep`): the notes (:func:`scatterxai.data.synth.sweep.plan_sweep`, written to
``OUT/audio`` + ``OUT/meta.csv``) → their scattering (``OUT/features.h5``, the model's configuration) →
relevance with each method (``OUT/relevance.h5``, :func:`scatterxai.explain.explain`, every note) →
layer activations (``OUT/activations.h5``) → ``OUT/sweep.json`` and figures.

``sweep.json``::

    {"factor", "technique", "values": [value of each note], "notes": [file names], "repeat": [repeat of each
     note], "predicted": [class of each note],
     "tracking": {method: {"slope", "r2", "peak_hz": [...], "hit_rate", "spearman", "p",
                           "window": {"lambda2_hz": [lo, hi], "slope", "r2", "peak_hz", "hit_rate", ...}}}
                                                                        (rate and f0 sweeps; window: rate)
     "tracking_controls": {control: the same for each control map},
     "invariance": {layer: {"mean", "std", "n_pairs"}}, ...}

* **tracking** — rate sweeps: log2(λ2 of the second-order path of highest local relevance) on log2(true
  modulation rate); f0 sweeps: log2(λ1 of the path of highest local relevance) on log2(f0); fitted over
  all notes (:func:`.metrics.log_fit`); ``hit_rate``: share of notes whose peak lies within ±½ octave of
  the truth; ``spearman``: Spearman ρ of true and peak over the notes, ``p`` its one-sided permutation
  p-value (999 permutations, :func:`scatterxai.maps.tracking.spearman`).  Rate sweeps also report
  ``window``: the same with the peak sought only among λ2 within one octave beyond the swept rates (so that
  a peak at the beating of partials, λ2 ≈ f0, or at a stroke's high harmonics does not count as the
  modulation rate).  ``tracking_controls``: the same numbers for the
  control maps of :mod:`scatterxai.maps.controls` — the input and the standardised input (can the input alone
  follow the rate?), a random map, and, when the model's training features file is at hand, the constant
  map (slope 0 by construction) and the class-prior map (the predicted class's median training rate: it
  moves only where the prediction changes along the sweep);
* **invariance** — Pearson r over the pairs of notes of the same repeat (they differ in the factor only)
  of each representation, every one averaged over time: ``input`` (the scattering S of the model's
  channels before the log: 1-homogeneous, so a pure gain gives r = 1), ``input_log`` (what the network
  reads: log1p(S / (c·μ))), ``conv0``, ``conv1``, ``conv2``, ``fc1`` (after their ReLU), and
  ``relevance/<method>`` (local relevance maps).

Figures: ``OUT/tracking.png`` (rate and f0 sweeps: peak against truth with the identity line, the input
control in grey) and
``OUT/invariance.png``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import numpy as np

from ..._util.jsonio import write_json
from ..._util.outputs import claims_output, final_path
from ..._util.types import PathLike
from ..._util.validate import check_choice, check_int, check_positive_float, check_positive_int
from ...errors import ParameterError, ScatterXAIError
from .metrics import hit_rate, invariance_profile, log_fit, peak_lambda1_hz, peak_lambda2_hz

__all__ = ["SweepConfig", "run_sweep", "SWEEP_FILES", "LAYERS", "TRACKED"]

logger = logging.getLogger("scatterxai")

#: files a sweep writes in its output directory (besides audio/)
SWEEP_FILES = {"meta": "meta.csv", "features": "features.h5", "relevance": "relevance.h5",
               "activations": "activations.h5", "json": "sweep.json", "tracking": "tracking.png",
               "invariance": "invariance.png"}
#: representations of the invariance profile before the relevance maps, in network order
LAYERS = ("input", "input_log", "conv0", "conv1", "conv2", "fc1")
#: factors whose tracking is measured: which λ follows which ground truth
TRACKED = {"rate": ("λ2", "modulation_hz"), "f0": ("λ1", "f0_hz")}
#: a peak within ± this many octaves of the truth is a hit (λ2 centres are half an octave apart)
HIT_OCTAVES = 0.5
#: rate tracking is also measured with the peak sought only within this many octaves beyond the swept rates
WINDOW_OCTAVES = 1.0


@dataclass(frozen=True)
class SweepConfig:
    """Settings of :func:`run_sweep` (recorded in ``sweep.json``).

    Parameters
    ----------
    factor : str
        One of :data:`scatterxai.data.synth.sweep.FACTORS`.
    technique : str
        Class (or SOL variant) of the base notes.
    values : tuple, optional
        The factor's values (default :func:`scatterxai.data.synth.sweep.default_values`).
    repeats : int
        Base notes (each with its own draws), each swept over every value.
    methods : tuple of str
        Registered attribution methods.
    target : {"pred", "true"}
        Explain the predicted class or the note's class.
    instrument, pitch, dynamics, seed, duration_s
        Of the base notes (:func:`scatterxai.data.synth.sweep.base_note`).
    device : str
    batch_size : int
        Notes scattered at once.
    """

    factor: str
    technique: str
    values: Optional[tuple] = None
    repeats: int = 1
    methods: Tuple[str, ...] = ("epsilon_plus",)
    target: str = "pred"
    instrument: Optional[str] = None
    pitch: Optional[str] = None
    dynamics: str = "mf"
    seed: int = 0
    duration_s: float = 5.0
    device: str = "auto"
    batch_size: int = 8

    def __post_init__(self):
        from ...data.synth.sweep import FACTORS
        from ...explain.export import method_names
        check_choice("factor", self.factor, FACTORS)
        object.__setattr__(self, "methods", method_names(self.methods))
        if self.values is not None:
            object.__setattr__(self, "values", tuple(self.values))
        check_choice("target", self.target, ("pred", "true"))
        check_positive_int("repeats", self.repeats)
        check_int("seed", self.seed, low=0)
        check_positive_float("duration_s", self.duration_s)
        check_positive_int("batch_size", self.batch_size)


def _write_activations(path: str, acts: dict, names, pooling: str) -> None:
    from ...io.hdf5 import atomic_h5, write_column
    with atomic_h5(path) as f:
        f.attrs["pooling"] = pooling
        f.attrs["layers"] = np.array([k for k in acts if k != "logits"], dtype=object)
        for name, a in acts.items():
            f.create_dataset(name if name == "logits" else f"activations/{name}", data=a)
        write_column(f.create_group("examples"), "file_name", np.asarray(names, dtype=object))


def _record_audio_root(h5_files, audio_root: str) -> None:
    """Record where the notes are once the output folder is in place (it is written under a temporary name)."""
    from ...io.hdf5 import open_guarded
    for path in h5_files:
        with open_guarded(path, "r+") as f:
            f.attrs["audio_root"] = audio_root


def _figures(result: dict, out_dir: str) -> dict:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...explain.base import method_title
    from ...viz import sweep as viz

    written = {}
    title = f"{result['technique']}, {result['factor']} sweep ({result['instrument']})"
    if "tracking" in result:
        axis, _ = TRACKED[result["factor"]]
        fig, ax = plt.subplots(figsize=(4.6, 4.0), layout="constrained")
        for method, fit in result["tracking"].items():
            window = (f" (window: {fit['window']['slope']:.2f}, {fit['window']['r2']:.2f})" if "window" in fit
                      else "")
            viz.tracking(result["true_hz"], fit["peak_hz"], ax=ax,
                         label=f"{method_title(method)}: slope {fit['slope']:.2f}, r² {fit['r2']:.2f}"
                               f"{window}")
        fit = result.get("tracking_controls", {}).get("input")
        if fit is not None:            # the control that can track: the input itself
            viz.tracking(result["true_hz"], fit["peak_hz"], ax=ax, marker="x", color="0.5",
                         label=f"control, the input: slope {fit['slope']:.2f}, r² {fit['r2']:.2f}")
        ax.set_xlabel(f"true {'modulation rate' if result['factor'] == 'rate' else 'f0'} (Hz)")
        ax.set_ylabel(f"{axis} of peak relevance (Hz)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
        written["tracking"] = os.path.join(out_dir, SWEEP_FILES["tracking"])
        fig.savefig(written["tracking"], dpi=80)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(5.0, 3.6), layout="constrained")
    viz.invariance_profile(result["invariance"], ax=ax, label=result["factor"])
    ax.set_title(title, fontsize=9)
    written["invariance"] = os.path.join(out_dir, SWEEP_FILES["invariance"])
    fig.savefig(written["invariance"], dpi=80)
    plt.close(fig)
    return written


def _fit(true_hz, peak) -> dict:
    from ...maps.tracking import spearman
    fit = log_fit(true_hz, peak)
    rank = spearman(true_hz, peak, n_perm=999, seed=0)
    return {"slope": fit["slope"], "r2": fit["r2"], "peak_hz": peak.tolist(),
            "hit_rate": hit_rate(true_hz, peak, octaves=HIT_OCTAVES), "spearman": rank["rho"], "p": rank["p"]}


def _control_maps(model, x: np.ndarray, pred: np.ndarray) -> dict:
    """The control maps of the sweep's notes (:mod:`scatterxai.maps.controls`): the input, the standardised
    input and a random map; with the constant and class-prior maps when the model's training features file
    (``config.json`` ``features_file``) is still there and has ``modulation_hz``."""
    from ...maps.controls import control_maps
    from ..quality.groundtruth import input_statistics, training_prior
    prior = None
    features = model.config.get("features_file")
    if features and os.path.exists(features):
        try:
            prior = training_prior(features, model.classes, model.paths)
        except ScatterXAIError as e:    # another file there now: the sweep goes on without those two controls
            logger.warning("sweep: no constant or class-prior control (%s)", e)
    mean, std = input_statistics(model.net)
    return control_maps(x, pred, prior, model.paths, input_mean=mean, input_std=std, seed=0)


def _tracking(factor: str, true_hz, local, paths) -> dict:
    """Tracking of one method: the fit over all candidate paths and, for rates, within the window."""
    if factor == "f0":
        return _fit(true_hz, peak_lambda1_hz(local, paths))
    out = _fit(true_hz, peak_lambda2_hz(local, paths))
    band = (float(np.min(true_hz)) / 2 ** WINDOW_OCTAVES, float(np.max(true_hz)) * 2 ** WINDOW_OCTAVES)
    out["window"] = {"lambda2_hz": list(band), **_fit(true_hz, peak_lambda2_hz(local, paths, band_hz=band))}
    return out


@claims_output("out_dir", kind="sweep", inputs={"model_dir": "model directory"})
def run_sweep(model_dir: PathLike, out_dir: PathLike, config: SweepConfig, *, progress: bool = False,
              overwrite: bool = False) -> dict:
    """Synthesise, scatter, explain and measure one sweep (see the module docstring for the outputs).

    Parameters
    ----------
    model_dir : str
        Trained model directory (:func:`scatterxai.model.load_model`).
    out_dir : str
        Output directory, written as a whole under the output rule (:mod:`scatterxai._util.outputs`: a
        folder of another kind — a run directory, a corpus — is never written into).
    config : SweepConfig
    progress : bool
    overwrite : bool
        Replace an output of another kind (never one scatterxai did not write).

    Returns
    -------
    dict
        The contents of ``sweep.json``.

    Examples
    --------
    The same trill played at three pitches, explained by the model of ``toy.model_dir`` (see
    ``tests/test_examples.py``; a random-feature model, so the numbers say little): does the λ1 of peak
    relevance follow f0, and how similar are the notes' representations layer by layer?

    >>> from scatterxai.analysis.sweep.run import SweepConfig, run_sweep
    >>> config = SweepConfig(factor="f0", technique="trill", values=(220.0, 440.0, 880.0), duration_s=1.5,
    ...                      device="cpu")
    >>> result = run_sweep(toy.model_dir, tmp / "sweep", config)
    >>> result["values"], [round(f) for f in result["true_hz"]]
    ([220.0, 440.0, 880.0], [220, 440, 880])
    >>> fit = result["tracking"]["epsilon_plus"]          # log2 λ1 of the peak against log2 f0
    >>> len(fit["peak_hz"]), {"slope", "r2"} <= set(fit)
    (3, True)
    >>> list(result["invariance"])[:4]
    ['input', 'input_log', 'conv0', 'conv1']
    """
    from ...data.synth.sweep import corpus_rate_range, plan_sweep, write_sweep
    from ...explain.export import explain
    from ...features.extract import extract_features
    from ...features.store import FeatureFile
    from ...io.relevance import RelevanceFile
    from ...model.activations import layer_activations
    from ...model.directory import load_model

    if not isinstance(config, SweepConfig):
        raise ParameterError(f"config must be a SweepConfig, got {type(config).__name__}")
    out_dir = os.path.abspath(os.fspath(out_dir))
    files = {k: os.path.join(out_dir, v) for k, v in SWEEP_FILES.items()}
    sweep = plan_sweep(config.technique, config.factor, config.values, repeats=config.repeats,
                       instrument=config.instrument, pitch=config.pitch, dynamics=config.dynamics,
                       seed=config.seed, duration_s=config.duration_s)
    write_sweep(sweep, out_dir, progress=progress)
    model = load_model(model_dir, device=config.device)
    if os.path.exists(files["features"]):   # the notes were just rendered again: so are their features
        os.remove(files["features"])
    summary = extract_features(files["meta"], os.path.join(out_dir, "audio"), files["features"],
                               config=model.scattering, device=config.device, batch_size=config.batch_size,
                               overwrite=True, progress=progress)
    if summary.n_failed:
        raise ParameterError(f"{summary.n_failed} sweep notes could not be read back: {summary.failed[:3]}")
    explain(files["features"], model_dir=model_dir, out=files["relevance"], subset="all",
            methods=config.methods, target=config.target, device=config.device, progress=progress)
    _record_audio_root((files["features"], files["relevance"]), final_path(os.path.join(out_dir, "audio")))

    with FeatureFile(files["features"]) as ff:
        S = ff.load()[:, model.channels]
    with RelevanceFile(files["relevance"]) as rf:
        x = rf.features()
        local = {m: rf.local(m) for m in config.methods}
        pred = np.asarray(rf.examples["pred"], dtype=np.int64)
        names = [str(n) for n in rf.examples["file_name"]]
    if names != list(sweep.file_names):
        raise ParameterError("the relevance file's notes are not the sweep's, in order")   # pragma: no cover
    acts = layer_activations(model.net, x, pooling="mean")
    _write_activations(files["activations"], acts, names, "mean")

    layers = {"input": S.mean(axis=-1), "input_log": x.mean(axis=-1),
              **{k: acts[k] for k in LAYERS[2:]}, **{f"relevance/{m}": local[m] for m in config.methods}}
    repeat = sweep.repeat
    result = {
        "factor": sweep.factor, "technique": sweep.technique,
        "values": [sweep.values[i] for i in sweep.value_index],
        "notes": names, "repeat": repeat.tolist(),
        "predicted": [model.classes[p] for p in pred],
        "instrument": sweep.specs[0].instrument,
        "invariance": invariance_profile(layers, repeat),
    }
    if sweep.factor in TRACKED:
        _, truth = TRACKED[sweep.factor]
        true_hz = np.array([getattr(s, truth) for s in sweep.specs], dtype=float)
        result["true_hz"] = true_hz.tolist()
        if sweep.factor == "rate":
            result["corpus_rate_hz"] = list(corpus_rate_range(sweep.technique, sweep.specs[0].instrument))
        result["tracking"] = {}
        if sweep.factor == "rate" and not (model.paths["order"] == 2).any():
            logger.warning("sweep: the model reads no second-order paths; no rate tracking")
            del result["tracking"]
        else:
            for m in config.methods:
                result["tracking"][m] = _tracking(sweep.factor, true_hz, local[m], model.paths)
            result["tracking_controls"] = {c: _tracking(sweep.factor, true_hz, v, model.paths)
                                           for c, v in _control_maps(model, x, pred).items()}
    result["settings"] = {**{k: v for k, v in asdict(config).items() if k != "values"},
                          "model_dir": os.path.abspath(os.fspath(model_dir)), "model_checksum": model.checksum}
    write_json(files["json"], result)
    _figures(result, out_dir)
    return result
