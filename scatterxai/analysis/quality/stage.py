"""``scatterxai quality``: faithfulness, randomisation and ground-truth checks of every method of a relevance file.

:func:`quality` reads a relevance file (its methods, local maps, the network input it explained), the model
it explains and its features file (for the baseline and the permuted-label network), and writes::

    OUT/quality.json           {method: {...}} (layout below)
    OUT/quality_settings.json  settings, the rows scored, the classes, chance levels, timings
    OUT/quality.md             the ranking table, which method fails which check, per-class and per-step tables
    OUT/quality_curves.png     deletion and insertion curves of every method against random orders
    OUT/quality_randomisation.png   rank correlation per randomisation step (cascading, independent)
    OUT/permuted_labels_model/ the network trained on permuted labels (unless one is given)

``quality.json``, per method: ``deletion`` and ``deletion_random`` (and ``insertion``, ``insertion_random``):
``{"fraction", "logit", "prob", "accuracy", "logit_std"}`` — the mean over notes (and over the random orders)
at each step of the explained logit, its softmax probability and the share of notes whose prediction still
holds, and the standard deviation of the logit; ``aopc``, ``aopc_random``, ``insertion_auc``,
``insertion_auc_random`` (means over notes; ``*_std`` alongside), ``aopc_above_random`` (mean per-note
margin over the note's random orders, ``aopc_above_random_se`` its standard error, and the same for
insertion); ``randomisation`` (cascading) and ``randomisation_independent``: ``{"steps", "spearman_mean",
"spearman_std", "abs_spearman_mean", "abs_spearman_std"}`` (ρ per note, and its absolute value |ρ|, which the
checks use); ``label_randomisation_spearman`` (and ``_std``, ``label_randomisation_abs_spearman``); ``localisation`` and
``rate_band_share`` with their chance level ``rate_band_chance``; ``per_class`` (AOPC and insertion AUC,
method and random, mean/std/n per class); ``checks`` (pass/fail per check, null when not measured; see
:mod:`.metrics`).  Values that cannot be measured are null (e.g. ground truth without ``modulation_hz``).

Which notes.  The examples of the relevance file that every method explained (finite local maps), in the
``subset`` (default "test"), then the first ``max_examples`` of them in file order (``select="spread"``:
evenly spaced over them instead, which covers every class and instrument of a file sorted by them).  The
randomisation checks use ``randomisation_examples`` of those notes (the first ones, or with ``select="spread"``
evenly spaced over them).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import h5py
import numpy as np

from ..._util.fs import atomic_path
from ..._util.jsonio import write_json
from ..._util.log import logger
from ..._util.types import Device, PathLike
from ..._util.validate import check_choice, check_float, check_int, check_positive_int, with_settings
from ...errors import ModelError, ParameterError
from ...io.relevance import RelevanceFile
from ...maps.summary import class_summary, localisation
from . import metrics
from .perturb import BASELINES, baseline_input, perturbation_study
from .randomise import explainer_from_attrs, map_correlation, needs_per_example_inputs, randomisation_study

if TYPE_CHECKING:
    from ...features.store import FeatureFile
    from ...model.directory import LoadedModel
    from ..context import AnalysisContext

__all__ = ["QualityConfig", "quality", "select_examples", "train_permuted", "PERMUTED_DIR", "RUN_CONFIG",
           "pipeline_section"]

#: where :func:`quality` trains the permuted-label network, inside its output directory
PERMUTED_DIR = "permuted_labels_model"


@dataclass(frozen=True)
class QualityConfig:
    """Settings of :func:`quality` (recorded in ``quality_settings.json``).

    Parameters
    ----------
    subset : str or None
        Rows of the relevance file scored ("test"; None or "all": every row).
    max_examples : int, optional
        Score at most this many notes (see ``select``).
    select : {"first", "spread"}
        The first ``max_examples`` eligible notes in file order, or notes evenly spaced over them.
    n_steps, max_fraction : int, float
        Deletion / insertion steps: k_j = round(j / n_steps · max_fraction · C) paths, j = 0 … n_steps.
    n_random : int
        Seeded random orders per note (the reference).
    baseline : {"training_mean", "mu", "zero"}
        Input of a replaced path (:mod:`.perturb`).
    randomisation_examples : int, optional
        Notes used by the randomisation checks (default all): the first of the scored notes, or evenly
        spaced over them with ``select="spread"``.
    randomisation_examples_slow : int, optional
        Fewer notes for the methods registered as slow (many network passes per note: Integrated Gradients,
        SmoothGrad, occlusion): the first of the randomisation notes (default: as many as the others).
    randomisation_seed : int
        Seed of the re-initialised weights.
    permuted_epochs : int
        Epochs of the permuted-label network (0: skip data randomisation unless a network is given).
    seed : int
        Seeds the random orders and tie-breaking.
    batch_size : int
        Examples attributed at once.
    device : str
    """

    subset: Optional[str] = "test"
    max_examples: Optional[int] = None
    select: str = "first"
    n_steps: int = 20
    max_fraction: float = 0.5
    n_random: int = 5
    baseline: str = "training_mean"
    randomisation_examples: Optional[int] = None
    randomisation_examples_slow: Optional[int] = None
    randomisation_seed: int = 0
    permuted_epochs: int = 5
    seed: int = 0
    batch_size: int = 64
    device: str = "auto"

    def __post_init__(self):
        for name in ("max_examples", "randomisation_examples", "randomisation_examples_slow"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        check_choice("select", self.select, ("first", "spread"))
        check_int("n_steps", self.n_steps, low=20)
        check_float("max_fraction", self.max_fraction, low=0, high=1, low_open=True)
        check_int("n_random", self.n_random, low=5)
        check_choice("baseline", self.baseline, BASELINES)
        check_int("permuted_epochs", self.permuted_epochs, low=0)
        for name in ("randomisation_seed", "seed"):
            check_int(name, getattr(self, name), low=0)
        check_positive_int("batch_size", self.batch_size)


# --------------------------------------------------------------------------------------------- inputs

def select_examples(rf: RelevanceFile, *, subset: Optional[str] = "test", max_examples: Optional[int] = None,
                    select: str = "first") -> np.ndarray:
    """Rows of a relevance file to score: finite local maps for every method, in ``subset``, then
    ``max_examples`` of them (first, or ``select="spread"``: evenly spaced)."""
    finite = np.ones(len(rf), dtype=bool)
    for m in rf.methods:
        finite &= np.isfinite(rf.local(m)).all(axis=1)
    if subset not in (None, "all"):
        if "subset" in rf.examples:
            finite &= np.asarray(rf.examples["subset"]).astype(str) == subset
        elif rf.attrs.get("subset") != subset:
            raise ParameterError(f"{rf.path} has no /examples/subset column and explains subset "
                                 f"{rf.attrs.get('subset')!r}, not {subset!r}; use subset='all'")
    rows = np.flatnonzero(finite)
    if rows.size == 0:
        raise ParameterError(f"no example of subset {subset!r} in {rf.path} was explained by every method "
                             f"{list(rf.methods)}")
    if max_examples is not None and max_examples < rows.size:
        if select == "first":
            rows = rows[:max_examples]
        else:
            rows = rows[np.unique(np.rint(np.linspace(0, rows.size - 1, max_examples)).astype(np.int64))]
    return rows


def _method_attrs(path, method) -> dict:
    with h5py.File(path, "r") as f:
        return dict(f["relevance"][method].attrs)


def train_permuted(features: Union[PathLike, FeatureFile], model: LoadedModel, out_dir: PathLike, *, epochs: int,
                   device: Device = "auto") -> LoadedModel:
    """The data-randomisation network: ``model``'s input, seed and training settings, labels permuted
    within each split, ``epochs`` epochs (the last kept).  Returns the :class:`LoadedModel`."""
    from ...model.train import TrainConfig, train_model
    cfg = dict(model.config.get("train_config", {}))
    config = replace(TrainConfig(**cfg), max_epochs=check_positive_int("epochs", epochs))
    return train_model(features, input=model.config["input"], out_dir=out_dir,
                       seed=int(model.config.get("seed", 0)), device=device, progress=False, config=config,
                       permute_labels=True)


# --------------------------------------------------------------------------------------------- summary

def _curve(c: dict, holds_key="holds") -> dict:
    logit = c["logit"].reshape(-1, c["logit"].shape[-1])
    return {"logit": logit.mean(axis=0), "prob": c["prob"].reshape(logit.shape).mean(axis=0),
            "accuracy": c[holds_key].reshape(logit.shape).mean(axis=0), "logit_std": logit.std(axis=0)}


def _per_class(values: dict, groups, n_classes) -> dict:
    out = {}
    for key, v in values.items():
        s = class_summary(v, groups, n_classes)["per_class"]
        out[key] = {"mean": s["mean"], "std": s["std"], "n": s["n"]}
    return out


def _se(d: np.ndarray) -> float:
    return float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else float("nan")


def _faithfulness(pert: dict, method: str, fraction, groups, n_classes) -> dict:
    mine, rnd = pert["methods"][method], pert["random"]
    aopc = metrics.aopc(mine["deletion"]["logit"])                       # (K,)
    aopc_r = metrics.aopc(rnd["deletion"]["logit"]).mean(axis=1)          # (K,): mean over random orders
    ins = metrics.insertion_auc(mine["insertion"]["logit"])
    ins_r = metrics.insertion_auc(rnd["insertion"]["logit"]).mean(axis=1)
    d_del, d_ins = aopc - aopc_r, ins - ins_r
    out = {}
    for mode, key in (("deletion", "deletion"), ("insertion", "insertion")):
        out[key] = {"fraction": fraction, **_curve(mine[mode])}
        out[key + "_random"] = {"fraction": fraction, **_curve(rnd[mode])}
    out.update(aopc=float(aopc.mean()), aopc_std=float(aopc.std()), aopc_random=float(aopc_r.mean()),
               aopc_random_std=float(aopc_r.std()), insertion_auc=float(ins.mean()),
               insertion_auc_std=float(ins.std()), insertion_auc_random=float(ins_r.mean()),
               insertion_auc_random_std=float(ins_r.std()), aopc_above_random=float(d_del.mean()),
               aopc_above_random_se=_se(d_del), insertion_auc_above_random=float(d_ins.mean()),
               insertion_auc_above_random_se=_se(d_ins),
               per_class=_per_class({"aopc": aopc, "aopc_random": aopc_r, "insertion_auc": ins,
                                     "insertion_auc_random": ins_r}, groups, n_classes))
    checks = {"deletion": metrics.margin_passes(d_del), "insertion": metrics.margin_passes(d_ins)}
    return out, checks


def _rho_summary(rho: np.ndarray, steps) -> dict:
    stats = [metrics.mean_std(r) for r in rho]
    abs_stats = [metrics.mean_std(np.abs(r)) for r in rho]
    return {"steps": list(steps), "spearman_mean": [s["mean"] for s in stats],
            "spearman_std": [s["std"] for s in stats], "abs_spearman_mean": [s["mean"] for s in abs_stats],
            "abs_spearman_std": [s["std"] for s in abs_stats]}


# --------------------------------------------------------------------------------------------- the stage

def quality(features: PathLike, *, model_dir: PathLike, relevance: PathLike, out: PathLike,
            config: Optional[QualityConfig] = None, permuted_model: Optional[PathLike] = None, progress: bool = True,
            **settings: Any) -> dict:
    """Score every method of a relevance file: deletion / insertion, randomisation, ground truth.

    Parameters
    ----------
    features : str or Path
        The features file the model was trained on (training rows: baseline and permuted-label training).
    model_dir : str or Path
        The model the relevance file explains (checked by its checksum).
    relevance : str or Path
        Relevance file (:func:`scatterxai.explain.explain`).
    out : str or Path
        Output directory (see the module docstring).
    config : QualityConfig, optional
    permuted_model : str or Path, optional
        A model directory trained on permuted labels; default: train one into ``out/permuted_labels_model``
        (``config.permuted_epochs`` epochs; 0 skips the data randomisation check).
    progress : bool
    **settings
        Fields of :class:`QualityConfig` overriding ``config``.

    Returns
    -------
    dict
        ``quality`` (the content of quality.json), ``settings``, ``markdown``, ``files``.
    """
    from ...model.directory import load_model
    from .report import quality_markdown, save_figures

    config = with_settings(config or QualityConfig(), settings)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    timings = {}
    model = load_model(model_dir, device=config.device)
    with RelevanceFile(relevance) as rf:
        if rf.attrs.get("model_checksum") not in (None, model.checksum):
            raise ModelError(f"{relevance} explains the model with checksum {rf.attrs['model_checksum'][:12]}…, "
                             f"not {model_dir} ({model.checksum[:12]}…); explain this model first")
        if rf.attrs.get("out_of_fold"):
            raise ModelError(f"{relevance} holds out-of-fold relevance (each note from its own fold model), which "
                             f"one network cannot be checked against; explain one model (a fold model, "
                             f"{model_dir}/folds/<k>, on its test notes) and check that")
        rows = select_examples(rf, subset=config.subset, max_examples=config.max_examples, select=config.select)
        methods, classes, paths = list(rf.methods), list(rf.classes), rf.paths
        x = rf.features(rows)
        local = {m: rf.local(m)[rows].astype(np.float64) for m in methods}
        explained = np.asarray(rf.examples["explained"], dtype=np.int64)[rows]
        pred = np.asarray(rf.examples["pred"], dtype=np.int64)[rows]
        labels = rf.labels
        groups = np.asarray(labels if labels is not None else rf.examples["pred"], dtype=np.int64)[rows]
        file_names = [str(v) for v in np.asarray(rf.examples.get("file_name", rows))[rows]]
        modulation = rf.examples.get("modulation_hz")
        modulation = (np.asarray(modulation, dtype=float)[rows]
                      if modulation is not None and (np.asarray(paths["order"]) == 2).any() else None)
        attrs = {m: _method_attrs(relevance, m) for m in methods}
    n_classes = len(classes)
    K = rows.size
    R = min(K, config.randomisation_examples or K)
    # the randomisation notes: the first R scored notes, or R spread over them like the notes themselves
    sub = (np.arange(R) if config.select == "first"
           else np.unique(np.rint(np.linspace(0, K - 1, R)).astype(np.int64)))
    logger.info("quality: %d notes (%d for randomisation), methods %s", K, R, methods)

    t = time.perf_counter()
    baseline = baseline_input(config.baseline, features=features, model=model)
    timings["baseline"] = time.perf_counter() - t
    t = time.perf_counter()
    pert = perturbation_study(model.net, x, local, explained, pred, baseline, n_steps=config.n_steps,
                              max_fraction=config.max_fraction, n_random=config.n_random, seed=config.seed,
                              progress=progress)
    timings["deletion_insertion"] = time.perf_counter() - t

    t = time.perf_counter()
    context = {"paths": paths, "mean_input": baseline_input("mu", model=model)}
    explainers = {m: explainer_from_attrs(m, attrs[m], context) for m in methods}
    unknown = [m for m, e in explainers.items() if e is None]
    skipped = [m for m, e in explainers.items() if e is not None and needs_per_example_inputs(e)]
    if unknown or skipped:
        logger.warning("no randomisation check for %s (not registered here) and %s (per-example inputs)",
                       unknown, skipped)
    explainers = {m: e for m, e in explainers.items() if e is not None and m not in skipped}
    # slow methods on the first of the randomisation notes
    n_slow = min(sub.size, config.randomisation_examples_slow or sub.size)
    notes = {m: sub[:n_slow] if getattr(e, "slow", False) else sub for m, e in explainers.items()}
    rand = {}
    for idx in {tuple(v) for v in notes.values()}:
        idx = np.array(idx, dtype=np.int64)
        group = {m: e for m, e in explainers.items() if np.array_equal(notes[m], idx)}
        rand.update(randomisation_study(model.net, x[idx], group, {m: local[m][idx] for m in group},
                                        explained[idx], seed=config.randomisation_seed,
                                        batch_size=config.batch_size, device=model.device))
    timings["model_randomisation"] = time.perf_counter() - t

    t = time.perf_counter()
    perm, perm_info = None, None
    if permuted_model is not None:
        perm = load_model(permuted_model, device=config.device)
    elif config.permuted_epochs > 0:
        perm = train_permuted(features, model, out / PERMUTED_DIR, epochs=config.permuted_epochs,
                              device=config.device)
    timings["permuted_training"] = time.perf_counter() - t
    t = time.perf_counter()
    label_rho = {}
    if perm is not None:
        if list(perm.channels) != list(model.channels) or perm.classes != model.classes:
            raise ModelError(f"the permuted-label model {permuted_model} reads other channels or classes than "
                             f"{model_dir}")
        hist = perm.config.get("history") or [{}]
        perm_info = {"labels_permuted": perm.config.get("labels_permuted"), "epochs": len(hist),
                     "train_accuracy": hist[-1].get("train_accuracy"), "checksum": perm.checksum}
        for m, e in explainers.items():
            label_rho[m] = map_correlation(perm.net, x[notes[m]], e, local[m][notes[m]], explained[notes[m]],
                                           batch_size=config.batch_size, device=perm.device)
    timings["label_randomisation"] = time.perf_counter() - t

    chance = None if modulation is None else metrics.rate_band_chance(paths, modulation)
    result = {}
    for m in methods:
        entry, checks = _faithfulness(pert, m, pert["fraction"], groups, n_classes)
        r = rand.get(m)
        entry["randomisation"] = None if r is None else _rho_summary(r["cascading"]["rho"],
                                                                    r["cascading"]["steps"])
        entry["randomisation_independent"] = None if r is None else _rho_summary(r["independent"]["rho"],
                                                                                r["independent"]["steps"])
        checks["model_randomisation"] = (None if r is None else
                                         bool(entry["randomisation"]["abs_spearman_mean"][-1]
                                              < metrics.RANDOMISATION_THRESHOLD))
        lr = metrics.mean_std(label_rho[m]) if m in label_rho else None
        la = metrics.mean_std(np.abs(label_rho[m])) if m in label_rho else None
        entry["label_randomisation_spearman"] = None if lr is None else lr["mean"]
        entry["label_randomisation_spearman_std"] = None if lr is None else lr["std"]
        entry["label_randomisation_abs_spearman"] = None if la is None else la["mean"]
        checks["label_randomisation"] = None if la is None else bool(la["mean"] < metrics.RANDOMISATION_THRESHOLD)
        if modulation is not None:
            # notes whose rate no second-order path resolves (chance NaN) are left out
            loc = np.where(np.isfinite(chance), localisation(local[m], paths, modulation), np.nan)
            share = metrics.rate_band_share(local[m], paths, modulation)
            entry.update(localisation=metrics.mean_std(loc)["mean"], rate_band_share=metrics.mean_std(share)["mean"],
                         rate_band_chance=metrics.mean_std(chance)["mean"])
            checks["ground_truth"] = metrics.margin_passes(loc - chance)
        else:
            entry.update(localisation=None, rate_band_share=None, rate_band_chance=None)
            checks["ground_truth"] = None
        entry["n_examples"] = int(K)
        entry["n_randomisation"] = int(notes[m].size) if m in notes else 0
        entry["checks"] = checks
        result[m] = entry
    timings["total"] = time.perf_counter() - t0

    settings_out = {"config": asdict(config), "relevance": os.fspath(relevance), "model_dir": os.fspath(model_dir),
                    "features": os.fspath(features), "model_checksum": model.checksum, "methods": methods,
                    "classes": classes, "grouped_by": "label" if labels is not None else "pred",
                    "rows": rows, "file_names": file_names, "n_examples": int(K), "n_randomisation": int(R),
                    "randomisation_rows": rows[sub],
                    "steps_paths": pert["ks"], "n_paths": int(x.shape[1]),
                    "randomisation_threshold": metrics.RANDOMISATION_THRESHOLD,
                    "rate_band_octaves": metrics.RATE_BAND_OCTAVES, "permuted_model": perm_info,
                    "unregistered_methods": unknown, "per_example_input_methods": skipped, "seconds": timings}
    files = {"json": out / "quality.json", "settings": out / "quality_settings.json", "markdown": out / "quality.md"}
    write_json(files["json"], result)
    write_json(files["settings"], settings_out)
    files.update(save_figures(result, out))
    md = quality_markdown(result, settings_out, figures={k: os.path.basename(v) for k, v in files.items()
                                                          if k.startswith("fig_")})
    with atomic_path(files["markdown"]) as tmp:
        Path(tmp).write_text(md, encoding="utf-8")
    logger.info("quality: %.1f s (%s)", timings["total"],
                ", ".join(f"{k} {v:.1f} s" for k, v in timings.items() if k != "total"))
    return {"quality": result, "settings": settings_out, "markdown": md, "files": files}


# --------------------------------------------------------------------------------------- scatterxai run

#: the quality stage of ``scatterxai run``: a bounded test subset so that the demo keeps its time budget
#: (40 notes spread over the test split, randomisation on 16 of them — 2 for the slow methods — and 5 epochs
#: on permuted labels)
RUN_CONFIG = QualityConfig(subset="test", max_examples=40, select="spread", randomisation_examples=16,
                           randomisation_examples_slow=2, permuted_epochs=5)


def section_markdown(out_dir, *, heading: str = "##", prefix: str = "") -> str:
    """The report section of a finished quality directory (figure links prefixed with ``prefix``)."""
    import json

    from .report import FIGURES, quality_markdown
    out_dir = Path(out_dir)
    result = json.loads((out_dir / "quality.json").read_text(encoding="utf-8"))
    settings = json.loads((out_dir / "quality_settings.json").read_text(encoding="utf-8"))
    figures = {k: prefix + v for k, v in FIGURES.items() if (out_dir / v).exists()}
    return quality_markdown(result, settings, figures, heading=heading)


def pipeline_section(ctx: AnalysisContext) -> str:
    """``scatterxai run``'s quality stages (``pipeline.ANALYSES``): the permuted-label network, then
    :func:`quality` with :data:`RUN_CONFIG` on ``OUT/relevance.h5`` → ``OUT/quality/``; returns the section."""
    from ...model.directory import load_model
    with RelevanceFile(ctx.relevance) as rf:
        if rf.attrs.get("out_of_fold"):   # cross-validated run: K models, no single network to check
            logger.warning("warning: quality checks skipped: the relevance is out-of-fold (cross-validation)")
            return ("## Is the explanation right? (quality checks)\n\nSkipped: with cross-validation each note's "
                    "relevance comes from its own fold model; the checks perturb and randomise one network.  Run "
                    "`scatterxai quality` on the relevance of one fold model (`explain --model MODEL_DIR/folds/<k>`) "
                    "to check it.\n")
    config = replace(RUN_CONFIG, device=ctx.config.device)
    out = os.path.join(ctx.out, "quality")
    perm_dir = os.path.join(out, PERMUTED_DIR)
    model_dir = ctx.model_dir("s1s2")
    perm = ctx.stage("quality_permuted_labels", {"train": ctx.digest("train_s1s2"),
                                                 "epochs": config.permuted_epochs},
                     [os.path.join(perm_dir, "model.pt"), os.path.join(perm_dir, "config.json")],
                     lambda: train_permuted(ctx.features, load_model(model_dir, device=config.device), perm_dir,
                                            epochs=config.permuted_epochs, device=config.device))
    ctx.stage("quality", {"explain": ctx.digest("explain"), "permuted": perm.digest, "config": asdict(config)},
              [os.path.join(out, n) for n in ("quality.json", "quality_settings.json", "quality.md")],
              lambda: quality(ctx.features, model_dir=model_dir, relevance=ctx.relevance, out=out, config=config,
                              permuted_model=perm_dir, progress=True))
    return section_markdown(out, heading="##", prefix="quality/")
