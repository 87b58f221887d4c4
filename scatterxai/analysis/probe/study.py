"""The probe study: what do the layers of a trained model represent, compared with untrained networks?

For the notes of a features file that have descriptors (:mod:`scatterxai.analysis.describe`), the study
reads the activations of conv0, conv1, conv2 and fc1 (:func:`scatterxai.model.activations.layer_activations`;
convolutional layers averaged over time, or flattened with ``pooling="flat"``) of the trained model and of
``untrained_seeds`` untrained networks of the same architecture (:mod:`scatterxai.model.untrained`; seeds
:data:`UNTRAINED_SEED_BASE` + 0, 1, …; BatchNorm recalibrated on the same notes by default), then:

* **similarity** — linear CKA, debiased CKA (trained network: with a permutation p-value of the debiased
  value) between every layer and every multi-dimensional descriptor (:data:`CKA_DESCRIPTORS`), between
  layers, and between each trained layer and the same layer untrained.  The descriptors measured on the
  audio (the scalar audio descriptors together, the mel spectrum, the envelope's modulation spectrum) say
  what a layer represents of the sound; those that are functions of the model input
  (:data:`FROM_MODEL_INPUT`: the S1 band energies are the time-averaged S1 input, the modulation spectrum
  an exact sum of the S2 input, and the input itself) only say how much of its input a layer keeps, and
  every table says so;
* **probes** — ridge probes of the scalar descriptors of :data:`TARGETS` (in natural units: octaves for
  frequencies and rates, dB, cents) and an L2 logistic probe of the technique, grouped 5-fold CV by
  instrument (or pitch), held-out notes' z-scored features clipped to the training fold's range
  (``clip``; :mod:`.probes`); the model input time-averaged is probed too, as a reference;
* **units** — per unit (channel, time-averaged), Pearson and Spearman r with each scalar descriptor; the best
  unit per descriptor with a max-statistic permutation p-value (trained network) (:mod:`.units`).

BLAS runs with one thread during the analysis (``threadpoolctl.threadpool_limits(1)``, restored afterwards):
the work is many small products, which threads only slow down on a shared machine.

Ground truth: ``log2_f0`` and ``log2_rate`` come from the meta columns ``f0_hz`` and ``modulation_hz`` where
those hold a finite value (synthetic notes), else from the audio: ``f0_hz`` (pYIN), and for the rate
``fm_rate_hz`` when the FM depth reaches :data:`FM_DEPTH_CENTS` cents, else ``am_rate_hz``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from ..._util.log import logger
from ..._util.types import PathLike
from ..._util.validate import check_choice, check_int, check_positive_int
from ...errors import DataError
from .compared import CKA_DESCRIPTORS, FROM_MODEL_INPUT, _db10, _log2, cka_matrices

if TYPE_CHECKING:
    from ...features.store import FeatureFile
    from ..describe.store import DescriptorFile

__all__ = ["ProbeConfig", "probe_study", "TARGETS", "CKA_DESCRIPTORS", "FROM_MODEL_INPUT", "UNTRAINED_SEED_BASE",
           "FM_DEPTH_CENTS",
           "GROUP_BY", "select_notes"]

#: untrained networks use seeds UNTRAINED_SEED_BASE + i (clear of the small seeds training uses)
UNTRAINED_SEED_BASE = 1000
#: without ground truth, a note's rate is its FM rate if its FM depth reaches this (cents), else its AM rate
FM_DEPTH_CENTS = 20.0
#: note families of the grouped cross-validation
GROUP_BY = ("instrument", "pitch")


class Target(NamedTuple):
    """A scalar descriptor as probed: its unit and how it is computed from the descriptors."""

    unit: str
    description: str
    compute: Callable  # (descriptor values dict, examples dict) → (values (n,), source str)


def _truth(meta: str, fallback: Callable):
    """log2 of the meta column ``meta`` where it is positive, else of the audio descriptor from ``fallback``."""
    def compute(d, ex):
        audio, audio_name = fallback(d)
        if meta not in ex:
            return _log2(audio), f"audio {audio_name}"
        truth = _log2(np.asarray(ex[meta], np.float64))
        missing = ~np.isfinite(truth)
        source = f"meta {meta}" + (f" (audio {audio_name} for {int(missing.sum())} notes)" if missing.any() else "")
        return np.where(missing, _log2(audio), truth), source
    return compute


def _audio_rate(d):
    use_fm = np.nan_to_num(d["fm_depth_cents"], nan=0.0) >= FM_DEPTH_CENTS
    return np.where(use_fm, d["fm_rate_hz"], d["am_rate_hz"]), "fm_rate_hz or am_rate_hz"


def _plain(name: str, transform=None):
    def compute(d, ex):
        v = np.asarray(d[name], np.float64)
        source = f"audio {name}" if name in _AUDIO else f"scattering {name} (a function of the model input)"
        return (v if transform is None else transform(v)), source
    return compute


_AUDIO = ("rms_db", "centroid_hz", "bandwidth_hz", "flatness", "rolloff_hz", "f0_hz", "am_rate_hz", "am_depth",
          "fm_rate_hz", "fm_depth_cents")

#: scalar descriptors probed, in natural units: name → Target
TARGETS: Dict[str, Target] = {
    "log2_f0": Target("octaves", "log2 of the fundamental frequency (Hz)",
                      _truth("f0_hz", lambda d: (np.asarray(d["f0_hz"]), "f0_hz"))),
    "log2_rate": Target("octaves", "log2 of the modulation rate (Hz)", _truth("modulation_hz", _audio_rate)),
    "rms_db": Target("dB", "level of the note as read (the input is standardised: a negative control)",
                     _plain("rms_db")),
    "log2_centroid": Target("octaves", "log2 spectral centroid (Hz)", _plain("centroid_hz", _log2)),
    "log2_bandwidth": Target("octaves", "log2 spectral bandwidth (Hz)", _plain("bandwidth_hz", _log2)),
    "flatness_db": Target("dB", "10 log10 spectral flatness", _plain("flatness", _db10)),
    "log2_rolloff": Target("octaves", "log2 85 % roll-off (Hz)", _plain("rolloff_hz", _log2)),
    "am_depth": Target("1", "AM depth of the Hilbert envelope", _plain("am_depth")),
    "log2_am_rate": Target("octaves", "log2 AM rate (Hz)", _plain("am_rate_hz", _log2)),
    "fm_depth_cents": Target("cents", "FM depth of the f0 contour", _plain("fm_depth_cents")),
    "log2_fm_rate": Target("octaves", "log2 FM rate (Hz)", _plain("fm_rate_hz", _log2)),
    "log2_modulation_peak": Target("octaves", "log2 λ2 of the modulation spectrum's peak (Hz)",
                                   _plain("modulation_peak_hz", _log2)),
    "s2_s1_ratio_db": Target("dB", "10 log10 of the S2/S1 energy ratio", _plain("s2_s1_ratio", _db10)),
}


@dataclass(frozen=True)
class ProbeConfig:
    """Settings of :func:`probe_study`.

    Parameters
    ----------
    subset : str, optional
        Notes of this subset of the features file ("test"); None: all notes.
    max_examples : int, optional
        At most this many of them, spread over classes and instruments.
    pooling : {"mean", "flat"}
        Convolutional layers averaged over time, or flattened over (channels, frames).
    group_by : {"instrument", "pitch"}
        Note families kept out of each other's folds.
    untrained_seeds : int ≥ 0
        Untrained networks compared with the trained one.
    batchnorm : {"recalibrate", "init"}
        BatchNorm statistics of the untrained networks (:mod:`scatterxai.model.untrained`).
    n_permutations : int ≥ 1
        Permutations of the CKA and best-unit nulls.
    n_splits : int ≥ 2
        Outer folds of the probes.
    seed : int
        Choice of notes, folds and permutations.
    device : str
        Where the networks run.
    jobs : int
        Worker processes (forked) for the (network, layer) analyses; the results do not depend on it.
    clip : bool
        Clip held-out notes' z-scored features to the training fold's range in every probe
        (:mod:`.probes`): a held-out instrument far outside the others (the harp) would otherwise be
        extrapolated to predictions tens of octaves off, which then dominate the pooled R².
    """

    subset: Optional[str] = "test"
    max_examples: Optional[int] = None
    pooling: str = "mean"
    group_by: str = "instrument"
    untrained_seeds: int = 5
    batchnorm: str = "recalibrate"
    n_permutations: int = 200
    n_splits: int = 5
    seed: int = 0
    device: str = "auto"
    jobs: int = 1
    clip: bool = True

    def __post_init__(self):
        from ...model.activations import POOLING
        from ...model.untrained import BATCHNORM_MODES
        if self.max_examples is not None:
            check_int("max_examples", self.max_examples, low=10)
        check_choice("pooling", self.pooling, POOLING)
        check_choice("group_by", self.group_by, GROUP_BY)
        check_int("untrained_seeds", self.untrained_seeds, low=0)
        check_choice("batchnorm", self.batchnorm, BATCHNORM_MODES)
        check_positive_int("n_permutations", self.n_permutations)
        check_int("n_splits", self.n_splits, low=2)
        check_int("seed", self.seed, low=0)
        check_positive_int("jobs", self.jobs)

    def to_dict(self) -> dict:
        return asdict(self)

    def result_settings(self) -> dict:
        """The settings that determine the numbers (not the device or the number of processes)."""
        return {k: v for k, v in asdict(self).items() if k not in ("device", "jobs")}


# ----------------------------------------------------------------------------------------------- inputs

#: fewest notes a probe study runs on (five cross-validation folds of at least two notes)
MIN_NOTES = 10


def select_notes(ff: FeatureFile, df: DescriptorFile, config: ProbeConfig) -> Tuple[np.ndarray, np.ndarray]:
    """(rows of the features file, rows of the descriptors file) of the probed notes.

    The notes of ``config.subset`` that have descriptors (matched by ``file_name``, and ``csv_row`` for a
    repeated name), then at most ``max_examples`` of them spread over classes and instruments.
    """
    from ...data.split import spread_subset
    from ..describe.store import match_notes
    rows = ff.indices(config.subset)
    where = match_notes(df.examples["file_name"], df.examples.get("csv_row"),
                        np.asarray(ff.examples["file_name"])[rows],
                        None if "csv_row" not in ff.examples else np.asarray(ff.examples["csv_row"])[rows])
    keep = where >= 0
    if keep.sum() < len(rows):
        logger.info("probe: %d of %d notes of subset %s have descriptors", int(keep.sum()), len(rows),
                    config.subset or "all")
    rows, where = rows[keep], where[keep]
    if config.max_examples is not None and len(rows) > config.max_examples:
        labels = ff.examples["label"][rows] if "label" in ff.examples else np.zeros(len(rows))
        groups = ff.examples["instrument"][rows] if "instrument" in ff.examples else None
        pick = spread_subset(labels, config.max_examples, groups=groups, seed=config.seed)
        rows, where = rows[pick], where[pick]
    if len(rows) < MIN_NOTES:
        raise DataError(f"only {len(rows)} notes of subset {config.subset!r} have descriptors; the probe study "
                        f"needs at least {MIN_NOTES} (describe the same notes: scatterxai describe ... --subset)")
    return rows, where


def _groups(examples: Dict[str, np.ndarray], targets: Dict[str, np.ndarray], group_by: str) -> np.ndarray:
    if group_by == "instrument":
        if "instrument" not in examples:
            raise DataError("the data have no 'instrument' column to group the cross-validation by; "
                            "use group_by='pitch'")
        return np.asarray(examples["instrument"]).astype(str)
    if "pitch" in examples:
        return np.asarray(examples["pitch"]).astype(str)
    from ...data.notes import sol_pitch_and_dynamics
    names = [sol_pitch_and_dynamics(n)[0] for n in examples["file_name"]]
    if all(n is not None for n in names):
        return np.asarray(names, dtype=str)
    # nearest semitone of the (ground-truth or measured) f0; a note without a known f0 is a group of its own
    semis = np.round(12 * np.asarray(targets["log2_f0"], dtype=float))
    return np.array([str(int(v)) if np.isfinite(v) else f"note{i}" for i, v in enumerate(semis)], dtype=object)


def _descriptor_values(df, desc_rows, S, table) -> Dict[str, np.ndarray]:
    """Descriptor values of the probed notes; scattering descriptors computed from S if the file lacks them."""
    from ..describe.descriptors import AUDIO_VECTORS, SCATTERING_DESCRIPTORS, scattering_descriptors
    d = {name: df.values(name)[desc_rows] for name in df.names}
    missing = [k for k in AUDIO_VECTORS if k not in d]
    if missing:
        raise DataError(f"{df.path} lacks the audio descriptors {missing} (descriptor_version "
                        f"{df.attrs.get('descriptor_version', 1)}, written by an older version): describe the notes "
                        f"again (scatterxai describe)")
    if any(k not in d or not np.all(np.isfinite(d[k])) for k in SCATTERING_DESCRIPTORS):
        logger.info("probe: scattering descriptors computed from the features (the descriptors file lacks some)")
        d.update(scattering_descriptors(S.astype(np.float64), table.arrays()))
    return d


# ---------------------------------------------------------------------------------------------- analysis

def _cka_entry(X, Y, *, permutations: Optional[int], seed: int) -> Dict[str, float]:
    from .cka import cka_permutation_test, debiased_cka, linear_cka
    if np.ndim(Y) == 2 and np.shape(Y)[1] == 0:   # a descriptor unknown for every note (e.g. notes < 1 s long)
        return {"linear": float("nan"), "debiased": float("nan"), **({"p": float("nan")} if permutations else {})}
    out = {"linear": linear_cka(X, Y)}
    if permutations:
        out["debiased"], out["p"] = cka_permutation_test(X, Y, n_permutations=permutations, seed=seed)
    else:
        out["debiased"] = debiased_cka(X, Y)
    return out


def _nan_probe(y: np.ndarray, n_splits: int) -> dict:
    kept = np.isfinite(y)
    return {"r2": np.nan, "rmse": np.nan, "rmse_mean": np.nan, "alpha": np.full(n_splits, np.nan),
            "n": int(kept.sum()), "n_dropped": int((~kept).sum()), "kept": kept,
            "y_pred": np.full(int(kept.sum()), np.nan), "n_splits": 0, "n_groups": 0}


def _ridge(A: np.ndarray, Y: np.ndarray, groups, config: ProbeConfig) -> list:
    """:func:`ridge_probes` of the columns of Y known for enough notes (≥ 2 groups and ≥ 2 notes per fold);
    NaN results for the others (e.g. rates of notes too short to measure them)."""
    from .probes import ridge_probes
    ok = [j for j in range(Y.shape[1]) if np.sum(np.isfinite(Y[:, j])) >= 2 * config.n_splits
          and len(np.unique(groups[np.isfinite(Y[:, j])])) >= 2 and np.nanstd(Y[:, j]) > 0]
    out = [_nan_probe(Y[:, j], config.n_splits) for j in range(Y.shape[1])]
    if ok:
        for j, res in zip(ok, ridge_probes(A, Y[:, ok], groups=groups, n_splits=config.n_splits, seed=config.seed,
                                         clip=config.clip)):
            out[j] = res
    return out


def _layer_task(A: np.ndarray, multi: Dict[str, np.ndarray], others: Dict[str, np.ndarray], Y: np.ndarray,
                labels, groups, config: ProbeConfig, trained: bool) -> dict:
    """One (network, layer): CKA with the multi-dimensional descriptors and the later layers, ridge probes of
    every scalar descriptor, logistic probe of the technique.  Runs in a worker process when jobs > 1."""
    from threadpoolctl import threadpool_limits

    from .probes import logistic_probe
    perms = config.n_permutations if trained else None
    with threadpool_limits(1):
        cka = {name: _cka_entry(A, M, permutations=perms, seed=config.seed) for name, M in multi.items()}
        cka.update({name: _cka_entry(A, B, permutations=perms, seed=config.seed) for name, B in others.items()})
        return {"cka": cka, "probe": _ridge(A, Y, groups, config),
                "technique": logistic_probe(A, labels, groups=groups, n_splits=config.n_splits, seed=config.seed,
                                            clip=config.clip)}


def _call(task):
    fn, args = task
    return fn(*args)


def _run_tasks(tasks: list, jobs: int) -> list:
    """``[fn(*args) for fn, args in tasks]``, in ``jobs`` forked worker processes when jobs > 1.

    Fork, not spawn: the workers inherit the imported numpy / scikit-learn (spawned ones would spend ~2 s
    of CPU each re-importing them, as much as they save on the demo).  They run numpy and scikit-learn only
    (one BLAS thread, scikit-learn's single-threaded lbfgs), never torch, whose OpenMP pool the parent may
    hold.  Without fork (Windows), the tasks run in this process.
    """
    import multiprocessing
    if jobs == 1 or len(tasks) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [_call(t) for t in tasks]
    with multiprocessing.get_context("fork").Pool(min(jobs, len(tasks))) as pool:
        return pool.map(_call, tasks, chunksize=1)


def _reference_task(X, Y, labels, groups, config: ProbeConfig) -> dict:
    """Probes of the model input (time-averaged): the reference row."""
    from threadpoolctl import threadpool_limits

    from .probes import logistic_probe
    with threadpool_limits(1):
        return {"probe": _ridge(X, Y, groups, config),
                "technique": logistic_probe(X, labels, groups=groups, n_splits=config.n_splits, seed=config.seed,
                                            clip=config.clip)}


def probe_study(features: PathLike, descriptors: PathLike, model_dir: PathLike, config: ProbeConfig = ProbeConfig(), *,
                progress: bool = True) -> dict:
    """Run the probe study (module docstring) and return its results (written by :mod:`.export`).

    Parameters
    ----------
    features : str
        Features file (:mod:`scatterxai.features.store`) the model applies to.
    descriptors : str
        Descriptors file of (some of) its notes (:mod:`scatterxai.analysis.describe.store`).
    model_dir : str
        Trained model directory (``scatterxai train``).
    config : ProbeConfig
    progress : bool
        Show a progress bar over the networks.

    Returns
    -------
    dict
        ``layers``, ``networks`` (names: "trained", "untrained_<seed>"…), ``targets`` (name → values (n,),
        unit, description, source), ``multi`` (CKA descriptors: name → (n, d)), ``results`` (network →
        {"cka", "probe", "technique"} → layer → :func:`_layer_task` results), ``reference`` (probes of the
        model input), ``training_cka``
        (layer → per untrained network {"linear", "debiased"} against the trained layer), ``units``,
        ``examples`` (of the probed notes), ``config``, ``model`` (checksum, input), ``files``.
    """
    from ...model import load_model
    from ...model.net import LAYERS

    model = load_model(model_dir, device=config.device)
    rows, S, examples, desc, desc_examples, files = _load_notes(features, descriptors, model, config)
    if "label" not in examples:
        raise DataError(f"{features} has no label column: the technique probe needs labels")
    targets = _targets(desc, {**desc_examples, **examples})
    names = list(targets)
    Y = np.stack([targets[n]["values"] for n in names], axis=1)
    labels = np.asarray(examples["label"])
    groups = _groups(examples, {n: targets[n]["values"] for n in names}, config.group_by)

    x = model.prepare(S)
    multi = cka_matrices(desc, x.mean(dim=-1).cpu().numpy())
    layers = list(LAYERS)
    networks = ["trained"] + [f"untrained_{UNTRAINED_SEED_BASE + i}" for i in range(config.untrained_seeds)]
    acts_by_net = _activations(model, x, networks, layers, config, progress)
    logger.info("probe: %d notes, %d networks × %d layers, %d process(es)", len(rows), len(networks), len(layers),
                config.jobs)
    reference, results = _probe_networks(acts_by_net, multi, Y, labels, groups, config)
    training_cka, units = _training_cka_and_units(model, acts_by_net, Y, names, config)
    return {"layers": layers, "networks": networks, "targets": targets, "multi": multi, "results": results,
            "reference": reference, "training_cka": training_cka, "units": units, "examples": examples,
            "groups": groups, "config": config.to_dict(), "files": files,
            "model": {"checksum": model.checksum, "input": model.config.get("input", ""),
                      "dir": os.path.abspath(os.fspath(model_dir)), "n_channels": model.net.n_channels}}


def _load_notes(features, descriptors, model, config: ProbeConfig):
    """The probed notes: (features-file rows, raw scattering (n, C, T), their example columns, descriptor
    values, the descriptors file's example columns, the input files' identities)."""
    from ...features.store import FeatureFile
    from ..describe.store import DescriptorFile
    with FeatureFile(features) as ff, DescriptorFile(descriptors) as df:
        model.check_compatible(ff)
        rows, desc_rows = select_notes(ff, df, config)
        S = ff.load(rows)
        examples = {k: np.asarray(v)[rows] for k, v in ff.examples.items()}
        desc = _descriptor_values(df, desc_rows, S, ff.table)
        desc_examples = {k: np.asarray(v)[desc_rows] for k, v in df.examples.items()}
        files = {"features": os.path.abspath(features), "descriptors": os.path.abspath(descriptors),
                 "features_settings_sha256": ff.attrs.get("settings_sha256", ""),
                 "descriptors_settings_sha256": df.attrs.get("settings_sha256", "")}
    return rows, S, examples, desc, desc_examples, files


def _targets(desc: Dict[str, np.ndarray], truth_columns: Dict[str, np.ndarray]) -> dict:
    """Every probe target of :data:`TARGETS`: name → values (n,) (NaN where unknown), unit, description, source."""
    targets = {}
    for name, t in TARGETS.items():
        values, source = t.compute(desc, truth_columns)
        values = np.where(np.isfinite(values), values, np.nan)
        targets[name] = {"values": values, "unit": t.unit, "description": t.description, "source": source}
    return targets


def _activations(model, x, networks: List[str], layers: List[str], config: ProbeConfig, progress: bool) -> dict:
    """Activations (float64) of every layer of the trained network and of the untrained ones (network → layer
    → array)."""
    from threadpoolctl import threadpool_limits

    from ..._util.log import progress as progress_bar
    from ...model.activations import layer_activations
    from ...model.untrained import untrained_net
    acts_by_net = {}
    with threadpool_limits(1), progress_bar(total=len(networks), desc="activations", unit="network",
                                            enabled=progress) as bar:
        for k, net_name in enumerate(networks):
            if k == 0:
                net = model.net
            else:
                net = untrained_net(model.net.n_channels, model.net.n_classes, seed=UNTRAINED_SEED_BASE + k - 1,
                                    x=x, batchnorm=config.batchnorm, device=model.device,
                                    arch=model.net.arch)
            acts = layer_activations(net, x, layers=layers, pooling=config.pooling)
            acts_by_net[net_name] = {name: acts[name].astype(np.float64) for name in layers}
            bar.update()
    return acts_by_net


def _probe_networks(acts_by_net: dict, multi: dict, Y: np.ndarray, labels: np.ndarray, groups, config: ProbeConfig):
    """The probes of the model input (reference) and CKA, ridge and technique probes of every layer of every
    network, run as independent tasks (:func:`_run_tasks`); returns (reference, results)."""
    networks = list(acts_by_net)
    layers = list(acts_by_net[networks[0]])
    tasks = [(_reference_task, (multi["input"], Y, labels, groups, config))]
    for k, net_name in enumerate(networks):
        acts = acts_by_net[net_name]
        for i, layer in enumerate(layers):
            tasks.append((_layer_task, (acts[layer], multi, {o: acts[o] for o in layers[i + 1:]}, Y, labels,
                                        groups, config, k == 0)))
    done = _run_tasks(tasks, config.jobs)
    reference, done = done[0], iter(done[1:])
    results = {}
    for net_name in networks:
        per_layer = {layer: next(done) for layer in layers}
        for i, layer in enumerate(layers):   # CKA is symmetric: fill the earlier layers from their tasks
            for other in layers[:i]:
                per_layer[layer]["cka"][other] = per_layer[other]["cka"][layer]
        results[net_name] = {key: {layer: per_layer[layer][key] for layer in layers}
                             for key in ("cka", "probe", "technique")}
    return reference, results


def _training_cka_and_units(model, acts_by_net: dict, Y: np.ndarray, names: List[str], config: ProbeConfig):
    """CKA of each trained layer against the same layer untrained, and the units that best follow each target."""
    from threadpoolctl import threadpool_limits

    from .cka import debiased_cka, linear_cka
    from .units import units_study
    networks = list(acts_by_net)
    trained = acts_by_net["trained"]
    layers = list(trained)
    with threadpool_limits(1):
        training_cka = {layer: [{"linear": linear_cka(trained[layer], acts_by_net[n][layer]),
                                 "debiased": debiased_cka(trained[layer], acts_by_net[n][layer])}
                                for n in networks[1:]] for layer in layers}
        if config.pooling == "flat":
            mean_acts = {layer: (a.reshape(a.shape[0], getattr(model.net, layer).out_channels if layer != "fc1"
                                           else a.shape[1], -1).mean(axis=-1)) for layer, a in trained.items()}
        else:
            mean_acts = trained
        units = units_study(mean_acts, layers, Y, names, n_permutations=config.n_permutations,
                            seed=config.seed)
    return training_cka, units
