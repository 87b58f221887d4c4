"""``scatterxai quality``: faithfulness, randomisation and ground-truth checks of every method of a relevance file.

:func:`quality` reads a relevance file (its methods, local maps, the network input it explained), the model
it explains and its features file (for the baselines and the permuted-label network), and writes::

    OUT/quality.json           {method: {...}} (layout below)
    OUT/quality_settings.json  settings, the rows scored, the classes, the permuted-label network, timings
    OUT/quality.md             ranking tables (overall and per baseline), which method fails which check under
                               which baseline, per-class and per-step tables
    OUT/quality_curves.png     deletion and insertion curves of every method against random orders
    OUT/quality_randomisation.png   similarity per randomisation step (cascading, independent)
    OUT/permuted_labels_model/ the network trained on permuted labels (unless one is given; :mod:`.permuted`)

``quality.json``, per method:

* ``baselines``: {baseline: deletion / insertion under it (:func:`.summary.faithfulness_entry`: curves,
  ``aopc``, ``insertion_auc``, their random-order references and margins, the control maps' scores and
  the margin over the strongest control with a bootstrap interval)}, for every baseline of
  ``config.baselines`` (:mod:`.perturb`); the fields of the first baseline (``baseline``) are repeated at
  the top level (``deletion``, ``aopc``, ``aopc_above_random``, …, ``per_class``);
* ``randomisation`` (cascading) and ``randomisation_independent``: ``{"steps", "n_seeds", "check_step",
  "spearman_abs" | "spearman" | "ssim": {"mean", "ci_low", "ci_high", "seed_min", "seed_max", "std"}}``,
  one value per step, over ``randomisation_seeds`` seeds (:func:`.summary.randomisation_entry`);
* ``label_randomisation``: ``{"spearman_abs" | "spearman" | "ssim": {"mean", "std", "n"}}`` with the
  permuted-label network;
* ``localisation`` and ``rate_band_share`` with their chance level ``rate_band_chance`` (on the scored notes);
* ``ground_truth``: localisation, rate-band share and within-class tracking of rate and f0 on every
  ``subset`` note the method explained, each beside the control maps, with the margin over the strongest
  control and its bootstrap interval (:mod:`.groundtruth`);
* ``checks``: ``deletion`` and ``insertion`` ({baseline: pass/fail}), ``model_randomisation``,
  ``label_randomisation``, ``ground_truth``, ``localisation_vs_controls``, ``tracking`` (pass/fail; null when
  not measured; rules in :mod:`.metrics` and :mod:`.groundtruth`).

Values that cannot be measured are null (e.g. ground truth without ``modulation_hz``).

Which notes: :mod:`.notes`.

The work is a sequence of named steps, one function each: :func:`.notes.read_notes`, :func:`_faithfulness_step`
(deletion / insertion under every baseline, with the control maps as further orders),
:func:`_model_randomisation_step`, :func:`_permuted_network` and :func:`_label_randomisation_step`,
:func:`.groundtruth.stage_ground_truth` (against the control maps) and :func:`_ground_truth`, then
:func:`_method_entry` per method and :func:`_write_outputs`.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

import numpy as np

from ..._util.fs import atomic_path
from ..._util.jsonio import write_json
from ..._util.log import logger
from ..._util.outputs import claims_output
from ..._util.types import PathLike
from ..._util.validate import check_choice, check_float, check_int, check_positive_int, with_settings
from ...errors import ModelError, ParameterError
from ...io.relevance import RelevanceFile
from ...io.together import check_together, relevance_study
from ...maps.summary import localisation
from . import groundtruth, metrics
from .notes import Notes, read_notes, select_examples
from .permuted import PermutedConfig, train_permuted
from .perturb import BASELINES, baseline_input, perturbation_study
from .randomise import (
    check_step,
    explainer_from_attrs,
    map_similarity,
    needs_per_example_inputs,
    randomisation_study,
)
from .summary import faithfulness_entry, randomisation_entry, similarity_entry

if TYPE_CHECKING:
    from ...model.directory import LoadedModel
    from ..context import AnalysisContext

__all__ = ["QualityConfig", "quality", "select_examples", "train_permuted", "PERMUTED_DIR", "RUN_CONFIG",
           "pipeline_section", "DEFAULT_BASELINES"]

#: where :func:`quality` trains the permuted-label network, inside its output directory
PERMUTED_DIR = "permuted_labels_model"
#: baselines scored by default, the first one repeated at the top level of each method's entry
DEFAULT_BASELINES = ("training_mean", "zero", "shuffle")


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
    baselines : tuple of {"training_mean", "zero", "shuffle", "mu"}
        Inputs of a replaced path (:mod:`.perturb`), each scored; the first is repeated at the top level.
    randomisation_examples : int, optional
        Notes used by the randomisation checks (default all): the first of the scored notes, or evenly
        spaced over them with ``select="spread"``.
    randomisation_examples_slow : int, optional
        Fewer notes for the methods registered as slow (many network passes per note: Integrated Gradients,
        SmoothGrad, occlusion): the first of the randomisation notes (default: as many as the others).
    randomisation_seed, randomisation_seeds : int
        Re-initialisation seeds randomisation_seed, randomisation_seed + 1, … (``randomisation_seeds`` of
        them, at least 5) for every step.
    independent : bool
        Also randomise one layer at a time (besides the cascade).
    permuted_epochs : int
        Most epochs of the permuted-label network (0: skip data randomisation unless a network is given);
        it stops earlier once it fits ``permuted_target`` of its permuted training labels (:mod:`.permuted`).
    permuted_notes : int, optional
        Training notes the permuted-label network memorises (None: all).
    permuted_target : float
        Training accuracy at which it stops.
    seed : int
        Seeds the random orders, the tie-breaking, the shuffle baseline, the bootstrap and the permuted-label
        network.
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
    baselines: Tuple[str, ...] = DEFAULT_BASELINES
    randomisation_examples: Optional[int] = None
    randomisation_examples_slow: Optional[int] = None
    randomisation_seed: int = 0
    randomisation_seeds: int = 5
    independent: bool = True
    permuted_epochs: int = 60
    permuted_notes: Optional[int] = 160
    permuted_target: float = 0.9
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
        baselines = (self.baselines,) if isinstance(self.baselines, str) else tuple(self.baselines)
        if not baselines or len(set(baselines)) != len(baselines):
            raise ParameterError(f"baselines must name at least one baseline, each once, got {self.baselines!r}")
        for b in baselines:
            check_choice("baseline", b, BASELINES)
        object.__setattr__(self, "baselines", baselines)
        check_int("randomisation_seeds", self.randomisation_seeds, low=5)
        check_int("permuted_epochs", self.permuted_epochs, low=0)
        if self.permuted_notes is not None:
            check_int("permuted_notes", self.permuted_notes, low=2)
        check_float("permuted_target", self.permuted_target, low=0, high=1, low_open=True)
        for name in ("randomisation_seed", "seed"):
            check_int(name, getattr(self, name), low=0)
        check_positive_int("batch_size", self.batch_size)

    @property
    def seeds(self) -> Tuple[int, ...]:
        """The re-initialisation seeds of model randomisation."""
        return tuple(range(self.randomisation_seed, self.randomisation_seed + self.randomisation_seeds))

    def permuted_config(self) -> PermutedConfig:
        """The settings of the permuted-label network (seeded by ``seed``)."""
        return PermutedConfig(max_notes=self.permuted_notes, max_epochs=max(1, self.permuted_epochs),
                              target_accuracy=self.permuted_target, seed=self.seed)


@contextlib.contextmanager
def _timed(timings: dict, key: str):
    t = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t


# --------------------------------------------------------------------------------------------- steps

#: prefix of the control maps' names among the orders of the deletion / insertion study
CONTROL_PREFIX = "control:"


#: the control maps scored as deletion / insertion orders (:mod:`scatterxai.maps.controls`; the random orders
#: are the random reference already)
DELETION_CONTROLS = ("constant", "class_prior", "input", "standardised_input")


def _control_maps(notes: Notes, features: PathLike, model: LoadedModel, config: QualityConfig) -> Dict[str, np.ndarray]:
    """The control maps of the scored notes, keyed ``control:<name>``, scored beside the methods as deletion
    / insertion orders: the constant and class-prior maps (their λ2 column first, then the columns outward
    from it, then S1; with training rates only), the input and the standardised input (the largest inputs
    first) — :func:`scatterxai.maps.controls.control_maps`."""
    from ...maps.controls import control_maps
    prior = groundtruth.training_prior(features, notes.classes, notes.paths)
    mean, std = groundtruth.input_statistics(model.net)
    maps = control_maps(notes.x, notes.pred, prior, notes.paths, input_mean=mean, input_std=std, seed=config.seed,
                        names=DELETION_CONTROLS)
    return {CONTROL_PREFIX + name: m for name, m in maps.items()}


def _faithfulness_step(notes: Notes, model: LoadedModel, features: PathLike, config: QualityConfig,
                       controls: Dict[str, np.ndarray], timings: dict, progress: bool) -> Dict[str, dict]:
    """Step 2: deletion / insertion of every method's order, the control maps' orders and random orders,
    under every baseline → {baseline: :func:`~.perturb.perturbation_study` result}."""
    out = {}
    orders = {**notes.local, **controls}
    for b in config.baselines:
        with _timed(timings, f"deletion_insertion_{b}"):
            base = baseline_input(b, features=features, model=model, x=notes.x, seed=config.seed)
            out[b] = perturbation_study(model.net, notes.x, orders, notes.explained, notes.pred, base,
                                        n_steps=config.n_steps, max_fraction=config.max_fraction,
                                        n_random=config.n_random, seed=config.seed, progress=progress)
    return out


def _randomisation_plan(notes: Notes, model: LoadedModel, config: QualityConfig) -> tuple:
    """The explainers rebuilt from the relevance file, the notes each one is randomised on, and the methods
    left out (not registered here; needing per-example inputs)."""
    context = {"paths": notes.paths, "mean_input": baseline_input("mu", model=model)}
    explainers = {m: explainer_from_attrs(m, notes.attrs[m], context) for m in notes.methods}
    unknown = [m for m, e in explainers.items() if e is None]
    skipped = [m for m, e in explainers.items() if e is not None and needs_per_example_inputs(e)]
    if unknown or skipped:
        logger.warning("no randomisation check for %s (not registered here) and %s (per-example inputs)",
                       unknown, skipped)
    explainers = {m: e for m, e in explainers.items() if e is not None and m not in skipped}
    # slow methods on the first of the randomisation notes
    n_slow = min(notes.sub.size, config.randomisation_examples_slow or notes.sub.size)
    idx = {m: notes.sub[:n_slow] if getattr(e, "slow", False) else notes.sub for m, e in explainers.items()}
    return explainers, idx, unknown, skipped


def _model_randomisation_step(notes: Notes, model: LoadedModel, explainers: dict, idx: dict,
                              config: QualityConfig) -> Dict[str, dict]:
    """Step 3: cascading (and independent) randomisation of every method, each step redrawn with every seed
    → {method: :func:`~.randomise.randomisation_study` result}."""
    rand = {}
    for key in {tuple(v) for v in idx.values()}:
        sel = np.array(key, dtype=np.int64)
        group = {m: e for m, e in explainers.items() if np.array_equal(idx[m], sel)}
        rand.update(randomisation_study(model.net, notes.x[sel], group, {m: notes.local[m][sel] for m in group},
                                        notes.explained[sel], seeds=config.seeds, independent=config.independent,
                                        paths=notes.paths, batch_size=config.batch_size, device=model.device))
    return rand


def _permuted_network(features: PathLike, model: LoadedModel, model_dir: PathLike, out: Path,
                      permuted_model: Optional[PathLike], config: QualityConfig) -> tuple:
    """Step 4: the permuted-label network (given, or trained into ``out``/:data:`PERMUTED_DIR`) and what
    quality_settings.json records of it; (None, None) when data randomisation is skipped."""
    from ...model.directory import load_model
    if permuted_model is not None:
        perm = load_model(permuted_model, device=config.device)
    elif config.permuted_epochs > 0:
        perm = train_permuted(features, model, out / PERMUTED_DIR,
                              config=config.permuted_config(), device=config.device)
    else:
        return None, None
    if list(perm.channels) != list(model.channels) or perm.classes != model.classes:
        raise ModelError(f"the permuted-label model {permuted_model} reads other channels or classes than "
                         f"{model_dir}")
    hist = perm.config.get("history") or [{}]
    info = {"labels_permuted": perm.config.get("labels_permuted"), "epochs": len(hist),
            "train_accuracy": perm.config.get("train_accuracy", hist[-1].get("train_accuracy")),
            "reached_target": perm.config.get("reached_target"), "n_training": perm.config.get("n_training"),
            "settings": perm.config.get("permuted_config"), "checksum": perm.checksum}
    return perm, info


def _label_randomisation_step(notes: Notes, perm: Optional[LoadedModel], explainers: dict, idx: dict,
                              config: QualityConfig) -> Dict[str, dict]:
    """Step 5: every method's maps of the permuted-label network against the trained network's →
    {method: {measure: (n,)}} (empty without a permuted-label network)."""
    if perm is None:
        return {}
    return {m: map_similarity(perm.net, notes.x[idx[m]], e, notes.local[m][idx[m]], notes.explained[idx[m]],
                              paths=notes.paths, batch_size=config.batch_size, device=perm.device)
            for m, e in explainers.items()}


def _ground_truth(notes: Notes, method: str) -> tuple:
    """Step 6: localisation of the true modulation rate and the rate-band share of ``method`` → (fields,
    check); null fields and check without ground truth."""
    if notes.modulation is None:
        return {"localisation": None, "rate_band_share": None, "rate_band_chance": None}, None
    local = notes.local[method]
    chance = metrics.rate_band_chance(notes.paths, notes.modulation)
    # notes whose rate no second-order path resolves (chance NaN) are left out
    loc = np.where(np.isfinite(chance), localisation(local, notes.paths, notes.modulation), np.nan)
    share = metrics.rate_band_share(local, notes.paths, notes.modulation)
    fields = {"localisation": metrics.mean_std(loc)["mean"], "rate_band_share": metrics.mean_std(share)["mean"],
              "rate_band_chance": metrics.mean_std(chance)["mean"]}
    return fields, metrics.margin_passes(loc - chance)


def _method_entry(method: str, notes: Notes, pert: Dict[str, dict], rand: Dict[str, dict],
                  label: Dict[str, dict], idx: dict, controls, config: QualityConfig, truth: Optional[dict]) -> dict:
    """Step 7: the entry of ``method`` in quality.json (module docstring); ``truth``: the ground truth against
    controls (:func:`.groundtruth.stage_ground_truth`) or None."""
    n_classes = len(notes.classes)
    names = {c[len(CONTROL_PREFIX):]: c for c in controls}
    per_baseline = {b: faithfulness_entry(p, method, notes.groups, n_classes, controls=names, seed=config.seed)
                    for b, p in pert.items()}
    entry = {"baseline": config.baselines[0], **per_baseline[config.baselines[0]], "baselines": per_baseline}
    r = rand.get(method)
    step = None if r is None else check_step(r["cascading"]["steps"])
    entry["randomisation"] = randomisation_entry(None if r is None else r["cascading"], check_step=step)
    entry["randomisation_independent"] = randomisation_entry(None if r is None else r.get("independent"))
    entry["label_randomisation"] = similarity_entry(label.get(method))
    primary = metrics.SIMILARITIES[0]
    checks = {mode: {b: e[mode + "_vs_control"]["passes"] for b, e in per_baseline.items()}
              for mode in ("deletion", "insertion")}
    value = None if r is None else entry["randomisation"][primary]["mean"][entry["randomisation"]["steps"].index(step)]
    checks["model_randomisation"] = (None if value is None or not np.isfinite(value)
                                     else bool(value < metrics.RANDOMISATION_THRESHOLD))
    lr = entry["label_randomisation"]
    checks["label_randomisation"] = (None if lr is None or not np.isfinite(lr[primary]["mean"])
                                     else bool(lr[primary]["mean"] < metrics.RANDOMISATION_THRESHOLD))
    fields, checks["ground_truth"] = _ground_truth(notes, method)
    entry.update(fields)
    entry["ground_truth"] = None if truth is None else truth["methods"].get(method)
    checks.update(groundtruth.ground_truth_checks(entry["ground_truth"]))
    entry.update(n_examples=int(notes.rows.size), n_randomisation=int(idx[method].size) if method in idx else 0,
                 checks=checks)
    return entry


def _settings(notes: Notes, config: QualityConfig, paths_in: dict, model: LoadedModel, pert: dict,
              perm_info, unknown, skipped, controls, timings) -> dict:
    first = pert[config.baselines[0]]
    return {"config": asdict(config), **paths_in, "model_checksum": model.checksum, "methods": notes.methods,
            "classes": notes.classes, "grouped_by": notes.grouped_by, "rows": notes.rows,
            "file_names": notes.file_names, "n_examples": int(notes.rows.size), "n_randomisation": int(notes.sub.size),
            "randomisation_rows": notes.rows[notes.sub], "randomisation_seeds": list(config.seeds),
            "steps_paths": first["ks"], "n_paths": int(notes.x.shape[1]), "baselines": list(config.baselines),
            "controls": [c[len(CONTROL_PREFIX):] for c in controls],
            "randomisation_threshold": metrics.RANDOMISATION_THRESHOLD,
            "rate_band_octaves": metrics.RATE_BAND_OCTAVES, "permuted_model": perm_info,
            "unregistered_methods": unknown, "per_example_input_methods": skipped, "seconds": timings}


def _write_outputs(out: Path, result: dict, settings: dict) -> tuple:
    """Step 8: quality.json, quality_settings.json, the figures and quality.md → (files, markdown)."""
    from .report import quality_markdown, save_figures
    files = {"json": out / "quality.json", "settings": out / "quality_settings.json", "markdown": out / "quality.md"}
    write_json(files["json"], result)
    write_json(files["settings"], settings)
    files.update(save_figures(result, out))
    md = quality_markdown(result, settings, figures={k: os.path.basename(v) for k, v in files.items()
                                                      if k.startswith("fig_")})
    with atomic_path(files["markdown"]) as tmp:
        Path(tmp).write_text(md, encoding="utf-8")
    return files, md


# --------------------------------------------------------------------------------------------- the stage

@claims_output("out", kind="quality", inputs={"features": "features input", "model_dir": "model directory",
                                              "relevance": "relevance input", "permuted_model": "permuted-label model"},
               study=lambda ba: relevance_study(ba.arguments["relevance"]),
               check=lambda ba: check_together(relevance=ba.arguments["relevance"], features=ba.arguments["features"],
                                               model_dir=ba.arguments["model_dir"]))
def quality(features: PathLike, *, model_dir: PathLike, relevance: PathLike, out: PathLike,
            config: Optional[QualityConfig] = None, permuted_model: Optional[PathLike] = None, progress: bool = True,
            overwrite: bool = False, **settings: Any) -> dict:
    """Score every method of a relevance file: deletion / insertion under named baselines, randomisation,
    ground truth.

    Parameters
    ----------
    features : str or Path
        The features file the model was trained on (training rows: baseline and permuted-label training).
    model_dir : str or Path
        The model the relevance file explains (checked by its checksum).
    relevance : str or Path
        Relevance file (:func:`scatterxai.explain.explain`).
    out : str or Path
        Output directory (see the module docstring), written as a whole under the output rule
        (:mod:`scatterxai._util.outputs`); the inputs must belong together
        (:func:`scatterxai.io.together.check_together`).
    config : QualityConfig, optional
    permuted_model : str or Path, optional
        A model directory trained on permuted labels; default: train one into ``out/permuted_labels_model``
        (:mod:`.permuted`; ``config.permuted_epochs`` = 0 skips the data randomisation check).
    progress : bool
    overwrite : bool
        Replace an output of another kind or study.
    **settings
        Fields of :class:`QualityConfig` overriding ``config``.

    Returns
    -------
    dict
        ``quality`` (the content of quality.json), ``settings``, ``markdown``, ``files``.
    """
    from ...model.directory import load_model

    config = with_settings(config or QualityConfig(), settings)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    timings: Dict[str, float] = {}
    t0 = time.perf_counter()
    model = load_model(model_dir, device=config.device)
    notes = read_notes(relevance, model, model_dir, subset=config.subset, max_examples=config.max_examples,
                       select=config.select, randomisation_examples=config.randomisation_examples)
    logger.info("quality: %d notes (%d for randomisation), methods %s, baselines %s", notes.rows.size,
                notes.sub.size, notes.methods, list(config.baselines))
    controls = _control_maps(notes, features, model, config)
    pert = _faithfulness_step(notes, model, features, config, controls, timings, progress)
    explainers, idx, unknown, skipped = _randomisation_plan(notes, model, config)
    with _timed(timings, "model_randomisation"):
        rand = _model_randomisation_step(notes, model, explainers, idx, config)
    with _timed(timings, "permuted_training"):
        perm, perm_info = _permuted_network(features, model, model_dir, out, permuted_model, config)
    with _timed(timings, "label_randomisation"):
        label = _label_randomisation_step(notes, perm, explainers, idx, config)
    with _timed(timings, "ground_truth_controls"):
        truth = groundtruth.stage_ground_truth(relevance, features, model, subset=config.subset, seed=config.seed)
    result = {m: _method_entry(m, notes, pert, rand, label, idx, controls, config, truth) for m in notes.methods}
    timings["total"] = time.perf_counter() - t0
    paths_in = {"relevance": os.fspath(relevance), "model_dir": os.fspath(model_dir), "features": os.fspath(features)}
    settings_out = _settings(notes, config, paths_in, model, pert, perm_info, unknown, skipped, controls, timings)
    settings_out["ground_truth"] = None if truth is None else {k: truth[k] for k in ("prior", "rows", "grouped_by")}
    files, md = _write_outputs(out, result, settings_out)
    logger.info("quality: %.1f s (%s)", timings["total"],
                ", ".join(f"{k} {v:.1f} s" for k, v in timings.items() if k != "total"))
    return {"quality": result, "settings": settings_out, "markdown": md, "files": files}


# --------------------------------------------------------------------------------------- scatterxai run

#: the quality stage of ``scatterxai run``: a bounded test subset so that the demo keeps its time budget
#: (40 notes spread over the test split under three baselines; cascading model randomisation on 8 of them —
#: 1 for the slow methods, whose every attribution costs tens of network passes — with 5 seeds per step, the
#: one-layer-at-a-time randomisation left out; a permuted-label network that memorises 160 training notes)
RUN_CONFIG = QualityConfig(subset="test", max_examples=40, select="spread", randomisation_examples=8,
                           randomisation_examples_slow=1, independent=False)


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
    perm_dir = os.path.join(ctx.out, "models", "s1s2_" + PERMUTED_DIR)   # an input of quality: not inside its output
    model_dir = ctx.model_dir("s1s2")
    permuted = config.permuted_config()
    perm = ctx.stage("quality_permuted_labels", {"train": ctx.digest("train_s1s2"), "permuted": asdict(permuted)},
                     [os.path.join(perm_dir, "model.pt"), os.path.join(perm_dir, "config.json")],
                     lambda: train_permuted(ctx.features, load_model(model_dir, device=config.device), perm_dir,
                                            config=permuted, device=config.device))
    ctx.stage("quality", {"explain": ctx.digest("explain"), "permuted": perm.digest, "config": asdict(config)},
              [os.path.join(out, n) for n in ("quality.json", "quality_settings.json", "quality.md")],
              lambda: quality(ctx.features, model_dir=model_dir, relevance=ctx.relevance, out=out, config=config,
                              permuted_model=perm_dir, progress=True, overwrite=True))
    return section_markdown(out, heading="##", prefix="quality/")
