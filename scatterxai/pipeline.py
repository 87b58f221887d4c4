"""``scatterxai run``: data → features → models (S1, S1+S2) → metrics → relevance → figures → report.

Each stage writes its outputs under ``OUT`` and a stamp ``OUT/.stages/<stage>.json`` holding the hash of
its settings and of the stamps of the stages it depends on.  Re-running skips a stage whose stamp matches
and whose outputs exist, so changing a setting (say ``--seed``) redoes exactly the stages downstream of it.
Extraction is itself resumable (see :mod:`scatterxai.features.extract`), so an interrupted run loses little
work.  ``OUT/timings.json`` records the seconds each stage took (a reused stage: in the run that made it).

Three caches are filled by background processes while earlier stages run (:meth:`RunContext.start_background`;
they never change a result): the fast path's plan while the corpus is synthesised (on an empty cache every
extraction worker would build Kymatio's filter bank itself), and numba's compilation of librosa's functions
and the explorer's float64 auralisation bank while the single-threaded figure and comparison stages leave a
core idle (:data:`PREPARATIONS`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from . import __version__
from ._util.fs import file_sha256
from ._util.jsonio import write_json
from ._util.log import logger
from ._util.outputs import claim_output
from ._util.types import PathLike
from ._util.validate import check_int, check_positive_float, check_positive_int, check_seed, with_settings
from .errors import DataError, ParameterError
from .explain.base import REGISTRY, available_methods
from .scattering.config import PAPER_CONFIG, ScatteringConfig
from .task import DEFAULT_REALISM, DEFAULT_SCALE, INPUTS

__all__ = ["run", "RunConfig", "RunContext", "Stage", "ANALYSES", "DEMO_SCALE", "RULES_RUN", "SLOW_PER_CLASS"]

#: size of the default (demo) synthetic corpus (:data:`scatterxai.task.DEFAULT_SCALE`)
DEMO_SCALE = DEFAULT_SCALE
#: LRP rules of the paper's figures: LRP-ε and the paper's composite LRP-[ε,z+]
RULES_RUN = ("epsilon", "epsilon_plus")
#: test notes per class explained by the slow methods (Integrated Gradients, SmoothGrad, occlusion)
SLOW_PER_CLASS = 20


@dataclass(frozen=True)
class RunConfig:
    """Settings of :func:`run`.

    Parameters
    ----------
    scale : float
        Synthetic corpus size as a fraction of SOL-PMT's counts (default :data:`DEMO_SCALE`); ignored with
        ``sol_root``.
    seed : int
        Seeds the synthetic corpus (or the split of a CSV without subsets) and training.
    sol_root : str, optional
        Directory of IRCAM's SOL 0.9HQ (any nesting); with ``meta`` None, the published SOL-PMT split, and
        the report compares with the paper's numbers.
    meta : str, optional
        Meta CSV of your own data (columns ``file_name`` and ``label``, optionally ``subset``), with
        ``audio_root``; or a SOL-format split with ``sol_root``.
    audio_root : str, optional
        Directory the ``file_name`` values of ``meta`` are relative to (searched by base name below it).
    device : str
    max_epochs : int, optional
        Upper bound on training epochs (early stopping decides below it).
    jobs : int, optional
        Worker processes for synthesis and extraction (default: all cores; extraction computes every batch
        with one torch thread, so its features do not depend on it).
    realism : str
        Performance and recording conditions of the synthetic corpus (:mod:`scatterxai.data.synth.realism`):
        :data:`scatterxai.task.DEFAULT_REALISM` ("noise+mic+articulation+players+common") by default, "none"
        (studio notes), "all", factor names joined by ",", "all-<factor>", any of them with "@P" (a share P of
        the notes); ignored with real data.
    scattering : ScatteringConfig
    methods : tuple of str
        Attribution methods to explain with (must include :data:`RULES_RUN`, which the figures draw); default:
        every method registered when the configuration is made
        (:func:`scatterxai.explain.available_methods`).
    slow_per_class : int or None
        Examples per class explained by the slow methods (None: all), see
        :func:`scatterxai.explain.stratified_rows`.
    top_n : int
        n of the class-wise top-n aggregation.
    folds : int, "auto" or None
        K-fold cross-validation of both networks (:func:`scatterxai.model.train_crossval`; metrics are
        out-of-fold with their spread, relevance is out-of-fold).  ``"auto"`` (default): 5 folds for a
        user's small study (``meta`` without ``sol_root``, fewer than
        :data:`scatterxai.model.guidance.SMALL_STUDY` recordings), none otherwise (the synthetic corpus and
        SOL keep the paper's split).  None: one split.
    arch : str, optional
        Network preset (:mod:`scatterxai.model.arch`); default the paper's.
    """

    scale: float = DEMO_SCALE
    seed: int = 0
    sol_root: Optional[str] = None
    meta: Optional[str] = None
    audio_root: Optional[str] = None
    device: str = "auto"
    max_epochs: Optional[int] = None
    jobs: Optional[int] = None
    realism: str = DEFAULT_REALISM
    scattering: ScatteringConfig = PAPER_CONFIG
    methods: Tuple[str, ...] = field(default_factory=lambda: tuple(available_methods()))
    slow_per_class: Optional[int] = SLOW_PER_CLASS
    top_n: int = 5
    folds: Union[None, int, str] = "auto"
    arch: Optional[str] = None

    def __post_init__(self):
        check_positive_float("scale", self.scale)
        check_seed("seed", self.seed)
        from .data.synth.realism import parse_realism
        object.__setattr__(self, "realism", parse_realism(self.realism).name)
        for name in ("max_epochs", "jobs"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        check_positive_int("top_n", self.top_n)
        if self.folds not in (None, "auto"):
            check_int("folds", self.folds, low=3)
        if self.arch is not None:
            from .model.arch import get_arch
            get_arch(self.arch)
        if self.slow_per_class is not None:
            check_positive_int("slow_per_class", self.slow_per_class)
        if self.sol_root is not None and self.audio_root is not None:
            raise ParameterError("give --sol-root (SOL 0.9HQ with the published split) or --meta with "
                                 "--audio-root (your own data), not both")
        if self.meta is not None and self.sol_root is None and self.audio_root is None:
            raise ParameterError("--meta needs --audio-root, the directory its file names are relative to")
        if self.audio_root is not None and self.meta is None:
            raise ParameterError("--audio-root needs --meta, the CSV that lists the files and their labels")
        if not isinstance(self.scattering, ScatteringConfig):
            raise ParameterError(f"scattering must be a ScatteringConfig, got {type(self.scattering).__name__}")
        object.__setattr__(self, "methods", tuple(self.methods))
        unknown = [m for m in self.methods if m not in REGISTRY]
        if unknown:
            raise ParameterError(f"unknown attribution methods {unknown}; valid methods are {available_methods()}")
        missing = [r for r in RULES_RUN if r not in self.methods]
        if missing:
            raise ParameterError(f"methods must include {list(RULES_RUN)} (the figures draw them); {missing} "
                                 f"missing from {list(self.methods)}")


class Stage:
    """A pipeline stage: reused when its key and outputs are unchanged.

    Parameters
    ----------
    out : str
        Pipeline output directory (stamps live in ``out/.stages``).
    name : str
    key : dict
        JSON-serialisable settings; include the ``.digest`` of upstream stages.
    outputs : list of str
        Files the stage must leave behind.
    """

    def __init__(self, out: str, name: str, key: dict, outputs: List[str]):
        self.name, self.outputs = name, outputs
        self.stamp = os.path.join(out, ".stages", name + ".json")
        blob = json.dumps({"stage": name, "version": __version__, **key}, sort_keys=True, default=str)
        self.digest = hashlib.sha256(blob.encode()).hexdigest()
        #: seconds the stage took: in this run, or (``reused``) in the run that wrote its outputs (from its
        #: stamp; None if the stamp has none)
        self.seconds: Optional[float] = None
        self.reused = False

    def _read_stamp(self) -> Optional[dict]:
        try:
            with open(self.stamp) as fh:
                stamp = json.load(fh)
        except (OSError, ValueError, RecursionError):
            return None
        return stamp if isinstance(stamp, dict) else None

    def done(self) -> Optional[dict]:
        """The stamp, if it matches this stage's settings and every output exists; else None."""
        stamp = self._read_stamp()
        if stamp is None or stamp.get("digest") != self.digest:
            return None
        return stamp if all(os.path.exists(p) for p in self.outputs) else None

    def run(self, fn: Callable[[], object]) -> None:
        stamp = self.done()
        if stamp is not None:
            logger.info("[%s] reused (settings unchanged)", self.name)
            seconds = stamp.get("seconds")
            self.seconds = float(seconds) if isinstance(seconds, (int, float)) else None
            self.reused = True
            return
        logger.info("[%s] running", self.name)
        t0 = time.perf_counter()
        fn()
        self.seconds = time.perf_counter() - t0
        missing = [p for p in self.outputs if not os.path.exists(p)]
        if missing:
            raise DataError(f"stage {self.name} did not write {missing}")
        os.makedirs(os.path.dirname(self.stamp), exist_ok=True)
        write_json(self.stamp, {"digest": self.digest, "seconds": self.seconds})
        logger.info("[%s] %.1f s", self.name, self.seconds)


#: analysis stages run after the paper's stages, in order: "module:function" (relative to the package).
#: Each function takes the :class:`RunContext` and returns a Markdown section for report.md (or "").
ANALYSES: Tuple[str, ...] = (".analysis.compare:pipeline_section", ".analysis.quality.stage:pipeline_section",
                             ".analysis.probe.stage:describe_stage", ".analysis.probe.stage:probe_stage",
                             ".explore.stage:pipeline_section")
#: run after the explain stage, before the figures: each may start a background preparation
#: (:meth:`RunContext.start_background`) for a later analysis stage, on the core that the single-threaded
#: figure and comparison stages leave idle
PREPARATIONS: Tuple[str, ...] = (".analysis.probe.stage:prepare_describe", ".explore.stage:prepare_explore")
#: the stages whose time is the reference of the demo's time budget (everything else ≤ 50 % of it)
CORE_STAGES = ("data", "extract", "train_s1", "train_s1s2")


class RunContext:
    """The state of one pipeline run: its directory, settings and stages (one method per stage).

    Analysis stages (:data:`ANALYSES`) receive it: they find the run's files here (``features``,
    ``relevance``, ``model_dir("s1s2")``, ``meta_csv``, ``audio_root``) and run their work through
    :meth:`stage`, which reuses a stage whose settings and upstream stamps are unchanged.
    """

    def __init__(self, out: str, config: RunConfig):
        self.out, self.config = out, config
        self.stages: Dict[str, Stage] = {}
        self.features = os.path.join(out, "features.h5")
        self.relevance = os.path.join(out, "relevance.h5")
        self.fig_dir = os.path.join(out, "figures")
        self.metrics_paths = {inp: os.path.join(out, f"metrics_{inp}.json") for inp in INPUTS}
        self.meta_csv: Optional[str] = None
        self.audio_root: Optional[str] = None
        #: where the data come from: "synthetic", "sol-pmt" (the published split), "sol" (another SOL-format
        #: split) or "files" (a user's meta CSV)
        self.source = "synthetic"
        self._background: Dict[str, subprocess.Popen] = {}

    def start_background(self, name: str, target: str, **kwargs: Any) -> None:
        """Run ``target`` ("module:function", called with the JSON-serialisable ``kwargs``) in a background
        Python process named ``name``: a preparation (e.g. filling a cache) that a later stage awaits with
        :meth:`wait_background`.  A preparation never decides a result: the stage works without it."""
        module, func = target.split(":")
        logger.info("[%s] preparing in the background: %s", name, target)
        code = ("import importlib, json, sys; "
                "getattr(importlib.import_module(sys.argv[1]), sys.argv[2])(**json.loads(sys.argv[3]))")
        # run from the folder holding this package, so that "import scatterxai" there finds this one
        self._background[name] = subprocess.Popen(
            [sys.executable, "-c", code, module, func, json.dumps(kwargs)],
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_background(self, name: str) -> None:
        """Wait for the background process ``name`` if one was started; a failure is logged and ignored."""
        proc = self._background.pop(name, None)
        if proc is None:
            return
        _, err = proc.communicate()
        if proc.returncode:
            tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
            logger.info("background preparation %s failed (exit %s%s); its stage does without it", name,
                        proc.returncode, f": {tail[0]}" if tail else "")

    def stop_background(self) -> None:
        """Stop the background processes still running (the end of a run, or an error)."""
        for proc in self._background.values():
            if proc.poll() is None:
                proc.terminate()
            proc.communicate()
        self._background.clear()

    @property
    def paper_reference(self) -> bool:
        """Whether reports compare with the paper's numbers: only for SOL-PMT and the synthetic corpus that
        imitates it (never for other data)."""
        return self.source in ("synthetic", "sol-pmt")

    def stage(self, name: str, key: dict, outputs: List[str], fn: Callable[[], object]) -> Stage:
        """Run ``fn`` as stage ``name`` unless a stamp with the same ``key`` (settings, upstream digests)
        and all ``outputs`` exist; record the stage."""
        st = Stage(self.out, name, key, outputs)
        st.run(fn)
        self.stages[name] = st
        return st

    def is_current(self, name: str, key: dict, outputs: List[str]) -> bool:
        """Whether :meth:`stage` with these arguments would reuse the stage's outputs (without running it)."""
        return Stage(self.out, name, key, outputs).done() is not None

    def digest(self, name: str) -> str:
        """Digest of an earlier stage of this run (put it in a later stage's key)."""
        return self.stages[name].digest

    def model_dir(self, inp: str) -> str:
        return os.path.join(self.out, "models", inp)

    def data(self) -> Tuple[str, str]:
        """Stage 1: the synthetic corpus, or a check of the user's audio tree.  Returns (meta CSV, root)."""
        cfg = self.config
        data_dir = os.path.join(self.out, "data")
        meta_out = os.path.join(data_dir, "meta.csv")
        if cfg.sol_root is None and cfg.audio_root is None:
            from .data.synth import synthesize_corpus
            from .data.synth.realism import parse_realism
            realism = parse_realism(cfg.realism).name

            def synthesize():
                # Kymatio's filter bank and the fast path's plan, built once in the background while the corpus
                # is synthesised (on an empty cache every extraction worker would build them, ≈ 11 s each)
                from .scattering.fast import plan_missing
                if plan_missing(cfg.scattering):
                    self.start_background("extract", "scatterxai.scattering.fast:prepare_plan",
                                          config=cfg.scattering.to_dict())
                synthesize_corpus(data_dir, scale=cfg.scale, seed=cfg.seed, realism=realism,
                                  jobs=cfg.jobs or os.cpu_count() or 1, progress=True)

            self.stage("data", {"source": "synthetic", "scale": cfg.scale, "seed": cfg.seed, "realism": realism},
                       [meta_out], synthesize)
            return meta_out, os.path.join(data_dir, "audio")

        from .data import META_COLUMNS, SOL_META_CSV, load_sol, prepare_labels, read_meta_csv, resolve_all
        root = os.path.abspath(cfg.sol_root or cfg.audio_root)
        meta = SOL_META_CSV if cfg.meta is None else os.path.abspath(cfg.meta)
        sha = file_sha256(meta)
        columns = read_meta_csv(meta)
        if cfg.sol_root is not None and all(c in columns for c in META_COLUMNS):
            self.source = "sol-pmt" if sha == file_sha256(SOL_META_CSV) else "sol"
        else:
            self.source = "files"

        def check():
            os.makedirs(data_dir, exist_ok=True)
            if self.source != "files":
                load_sol(root, meta)  # raises DataError listing missing files
            else:
                if "file_name" not in columns or "label" not in columns:
                    raise DataError(f"{meta} needs the columns file_name and label (and optionally subset); it "
                                    f"has {list(columns)}")
                prepare_labels(columns, seed=cfg.seed, what=meta)  # fail early; extraction applies it
                resolve_all(columns["file_name"], root)
            shutil.copyfile(meta, meta_out)  # names as given: extraction resolves them under the root

        self.stage("data", {"source": "files", "root": root, "meta_sha256": sha}, [meta_out], check)
        return meta_out, root

    def extract(self, meta_csv: str, audio_root: str) -> None:
        from .features import extract_features
        cfg = self.config
        self.wait_background("extract")
        # the seed draws the split of a CSV without subsets (in extraction; a new seed only relabels)
        from .audio import PREPARATION
        self.stage("extract", {"data": self.stages["data"].digest, "config": cfg.scattering.to_dict(),
                               "split_seed": cfg.seed, "preparation": PREPARATION},
                   [self.features],
                   lambda: logger.info("%s", extract_features(
                       meta_csv, audio_root, self.features, config=cfg.scattering, device=cfg.device, seed=cfg.seed,
                       # a changed stage replaces the old features; an interrupted one resumes
                       if_changed="replace", allow_outside_root=self.source != "synthetic",
                       jobs=cfg.jobs or os.cpu_count() or 1, progress=True).describe()))

    def n_folds(self) -> Optional[int]:
        """Folds of the cross-validation (None: one split), ``config.folds`` resolved (see :class:`RunConfig`)."""
        folds = self.config.folds
        if folds != "auto":
            return folds
        if self.source != "files":
            return None
        from .features.store import FeatureFile
        from .model.guidance import is_small, n_recordings
        with FeatureFile(self.features) as ff:
            return 5 if is_small(n_recordings(ff)) else None

    def train_and_evaluate(self, inp: str) -> None:
        from .model import evaluate_model, train_crossval, train_model
        cfg, model_dir = self.config, self.model_dir(inp)
        folds = self.n_folds()
        key = {"extract": self.stages["extract"].digest, "seed": cfg.seed, "max_epochs": cfg.max_epochs}
        key.update({k: v for k, v in (("folds", folds), ("arch", cfg.arch)) if v is not None})
        options = dict(input=inp, out_dir=model_dir, seed=cfg.seed, device=cfg.device, max_epochs=cfg.max_epochs,
                       progress=True, arch=cfg.arch)
        st = self.stage(f"train_{inp}", key,
                        [os.path.join(model_dir, "model.pt"), os.path.join(model_dir, "config.json")],
                        (lambda: train_crossval(self.features, folds=folds, **options)) if folds
                        else (lambda: train_model(self.features, **options)))

        def evaluate():
            eval_dir = os.path.join(self.out, "evaluation", inp)   # never inside an input (the model)
            evaluate_model(self.features, model_dir=model_dir, out_dir=eval_dir, subset="test", device=cfg.device)
            shutil.copyfile(os.path.join(eval_dir, "metrics.json"), self.metrics_paths[inp])

        self.stage(f"evaluate_{inp}", {"train": st.digest}, [self.metrics_paths[inp]], evaluate)

    def explain(self) -> None:
        from .explain import ExplainConfig, explain
        cfg = self.config
        limits = ({m: cfg.slow_per_class for m in cfg.methods if REGISTRY[m].slow}
                  if cfg.slow_per_class is not None else {})
        config = ExplainConfig(methods=cfg.methods, subset="test", target="pred", top_n=cfg.top_n,
                               device=cfg.device, max_per_class=limits)
        self.stage("explain", {"train": self.stages["train_s1s2"].digest, "rules": list(cfg.methods),
                               "top_n": cfg.top_n, "max_per_class": limits}, [self.relevance],
                   lambda: explain(self.features, model_dir=self.model_dir("s1s2"), out=self.relevance,
                                   config=config, progress=True, overwrite=True))

    def figures(self, audio_root: str) -> None:
        from .report import FIGURE_FILES, make_figures
        self.stage("figures", {"explain": self.stages["explain"].digest,
                               "metrics": [self.stages[f"train_{i}"].digest for i in INPUTS]},
                   [os.path.join(self.fig_dir, n) for n in FIGURE_FILES.values()],
                   lambda: make_figures(self.relevance, self.metrics_paths, audio_root=audio_root,
                                        out_dir=self.fig_dir))

    def report(self, sections: Sequence[str] = ()) -> str:
        from .report import write_report
        cfg = self.config
        path = os.path.join(self.out, "report.md")
        write_report(path, metrics_paths=self.metrics_paths, relevance=self.relevance, features=self.features,
                     figures_dir=self.fig_dir,
                     settings={"scale": cfg.scale if self.source == "synthetic" else None, "seed": cfg.seed,
                               "data": {"synthetic": f"synthetic corpus (SOL-PMT profile; realism factors: "
                                                     f"{cfg.realism})",
                                        "sol-pmt": f"SOL-PMT, published split ({cfg.sol_root})"}.get(
                                   self.source, f"{os.path.abspath(cfg.meta or '')} "
                                                f"({os.path.abspath(cfg.sol_root or cfg.audio_root or '')})"),
                               "device": cfg.device}, sections=sections, paper=self.paper_reference)
        return path

    def write_timings(self, total: float) -> dict:
        """``timings.json``: seconds per stage — taken in this run, or for a stage listed in ``reused`` in the
        run that wrote its outputs (so re-running a finished run keeps its timings) —, this run's ``total``,
        and the demo's budget ratio: the stages after training against :data:`CORE_STAGES` (rule: ≤ 0.5),
        given when every stage's seconds are known.  When every stage was reused and the existing
        ``timings.json`` is the record of the run that made them (the same seconds per stage), it is kept
        as it is, with that run's ``total``."""
        path = os.path.join(self.out, "timings.json")
        timings = {name: st.seconds for name, st in self.stages.items()}
        if self.stages and all(st.reused for st in self.stages.values()):
            try:
                with open(path, encoding="utf-8") as fh:
                    previous = json.load(fh)
                if isinstance(previous, dict) and previous.get("stages") == timings:
                    return previous
            except (OSError, ValueError, RecursionError):
                pass
        reused = [name for name, st in self.stages.items() if st.reused]
        core = [timings.get(n) for n in CORE_STAGES]
        after = [t for n, t in timings.items() if n not in CORE_STAGES and not n.startswith("evaluate_")]
        ratio = (sum(after) / sum(core) if all(t is not None for t in core + after) and sum(core) > 0
                 else None)
        result = {"stages": timings, "reused": reused, "total": total, "core_stages": list(CORE_STAGES),
                  "after_training_over_core": ratio}
        write_json(path, result)
        if ratio is not None:
            logger.info("stages after training took %.0f %% of data + extract + train", 100 * ratio)
        return result


def _timings_section(timings: dict) -> str:
    from ._util.markdown import md_table
    reused = set(timings.get("reused", ()))
    rows = [(name, ("?" if sec is None else f"{sec:.1f}") + (" (reused: time of the run that made it)"
                                                             if name in reused else ""))
            for name, sec in timings["stages"].items()]
    ratio = timings["after_training_over_core"]
    lines = ["## Timings", "", md_table(("stage", "seconds"), rows), ""]
    if ratio is not None:
        lines += [f"Stages after training took {100 * ratio:.0f} % of the time of "
                  f"{' + '.join(timings['core_stages'])} (the demo's budget: at most 50 %).", ""]
    else:
        lines += ["Some stages were reused from a run that did not record their time, so no time ratio is "
                  "given.", ""]
    return "\n".join(lines)


def _analysis(name: str) -> Callable[[RunContext], str]:
    import importlib
    module, func = name.split(":")
    return getattr(importlib.import_module(module, __package__), func)


def run(out: PathLike, config: Optional[RunConfig] = None, **settings: Any) -> Dict[str, str]:
    """Run the whole study and return the paths of what it wrote.

    Parameters
    ----------
    out : str
        Output directory (created, with at most one missing folder above it): ``features.h5``,
        ``models/{s1,s1s2}/``, ``metrics_{s1,s1s2}.json``, ``relevance.h5``, ``figures/*.png``, the analyses'
        folders (``compare/``, ``quality/``, ``probe/``, ``explorer/index.html``…), ``report.md``,
        ``timings.json``.  One run at a time writes it (``OUT.lock``).
    config : RunConfig, optional
        Default ``RunConfig()`` (the demo).
    **settings
        Fields of :class:`RunConfig` overriding ``config`` (e.g. ``seed=1``).
    """
    config = with_settings(config or RunConfig(), settings)
    inputs = {"meta CSV": config.meta, "audio root": config.audio_root, "SOL root": config.sol_root}
    with claim_output(out, kind="run", inputs=inputs) as claim:   # the output rule (README)
        return _run(claim.path, config)


def _run(out: str, config: RunConfig) -> Dict[str, str]:
    os.makedirs(os.path.join(out, "models"), exist_ok=True)
    t_start = time.perf_counter()
    r = RunContext(out, config)
    try:   # background preparations (RunContext.start_background) never outlive the run
        meta_csv, audio_root = r.data()
        r.meta_csv, r.audio_root = meta_csv, audio_root
        r.extract(meta_csv, audio_root)
        for inp in INPUTS:
            r.train_and_evaluate(inp)
        r.explain()
        for name in PREPARATIONS:
            _analysis(name)(r)
        r.figures(audio_root)
        sections = [section for section in (_analysis(name)(r) for name in ANALYSES) if section]
    finally:
        r.stop_background()
    total = time.perf_counter() - t_start
    timings = r.write_timings(total)
    report = r.report(sections + [_timings_section(timings)])
    logger.info("[total] %.1f s — report: %s", total, report)
    return {"report": report, "features": r.features, "relevance": r.relevance, "figures": r.fig_dir,
            **{f"metrics_{k}": v for k, v in r.metrics_paths.items()}}
