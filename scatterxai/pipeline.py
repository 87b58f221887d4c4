"""``scatterxai run``: data → features → models (S1, S1+S2) → metrics → relevance → figures → report.

Each stage writes its outputs under ``OUT`` and a stamp ``OUT/.stages/<stage>.json`` holding the hash of
its settings and of the stamps of the stages it depends on.  Re-running skips a stage whose stamp matches
and whose outputs exist, so changing a setting (say ``--seed``) redoes exactly the stages downstream of it.
Extraction is itself resumable (see :mod:`scatterxai.store`), so an interrupted run loses little work.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from typing import Callable, Dict, List, Optional

from . import __version__
from .errors import DataError, ParameterError
from .scattering import PAPER_CONFIG, ScatteringConfig
from .store import file_sha256
from .synth import DEFAULT_SCALE

__all__ = ["run", "DEMO_SCALE", "RULES_RUN", "Stage"]

#: size of the default (demo) synthetic corpus as a fraction of SOL-PMT's counts (see
#: :data:`scatterxai.synth.DEFAULT_SCALE`; ~5.5 minutes on 2 CPU cores)
DEMO_SCALE = DEFAULT_SCALE
#: LRP rules of the pipeline: LRP-ε and the paper's composite LRP-[ε,z+]
RULES_RUN = ("epsilon", "epsilon_plus")
INPUTS = ("s1", "s1s2")


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

    def done(self) -> bool:
        try:
            with open(self.stamp) as fh:
                same = json.load(fh).get("digest") == self.digest
        except (OSError, ValueError):
            return False
        return same and all(os.path.exists(p) for p in self.outputs)

    def run(self, fn: Callable[[], None]) -> None:
        if self.done():
            print(f"[{self.name}] reused (settings unchanged)", flush=True)
            return
        print(f"[{self.name}] running", flush=True)
        t0 = time.perf_counter()
        fn()
        seconds = time.perf_counter() - t0
        missing = [p for p in self.outputs if not os.path.exists(p)]
        if missing:
            raise DataError(f"stage {self.name} did not write {missing}")
        os.makedirs(os.path.dirname(self.stamp), exist_ok=True)
        with open(self.stamp, "w") as fh:
            json.dump({"digest": self.digest, "seconds": seconds}, fh)
        print(f"[{self.name}] {seconds:.1f} s", flush=True)


def _data_stage(out, *, scale, seed, sol_root, meta, jobs):
    """Stage 1: the synthetic corpus, or a check of the user's audio tree. Returns (stage, meta_csv, root)."""
    data_dir = os.path.join(out, "data")
    meta_out = os.path.join(data_dir, "meta.csv")
    if sol_root is None:
        if meta is not None:
            raise ParameterError("--meta needs --sol-root (the directory its audio paths are relative to)")
        from .synth import synthesize_corpus
        stage = Stage(out, "data", {"source": "synthetic", "scale": scale, "seed": seed}, [meta_out])
        stage.run(lambda: synthesize_corpus(data_dir, scale=scale, seed=seed, jobs=jobs or os.cpu_count() or 1,
                                            progress=True))
        return stage, meta_out, os.path.join(data_dir, "audio")

    from .datasets import META_COLUMNS, SOL_META_CSV, load_csv, load_sol, read_meta_csv
    sol_root = os.path.abspath(sol_root)
    meta = SOL_META_CSV if meta is None else os.path.abspath(meta)
    stage = Stage(out, "data", {"source": "files", "root": sol_root, "meta_sha256": file_sha256(meta)},
                  [meta_out])

    def check():
        os.makedirs(data_dir, exist_ok=True)
        if all(c in read_meta_csv(meta) for c in META_COLUMNS):
            load_sol(sol_root, meta)  # raises DataError listing missing files
            shutil.copyfile(meta, meta_out)  # base names: extraction looks them up under sol_root
        else:
            load_csv(meta, audio_root=sol_root, seed=seed).to_meta_csv(meta_out, relative_to=sol_root)

    stage.run(check)
    return stage, meta_out, sol_root


def run(out, *, scale: Optional[float] = None, seed: int = 0, sol_root=None, meta=None, device="auto",
        max_epochs: Optional[int] = None, jobs: Optional[int] = None,
        config: ScatteringConfig = PAPER_CONFIG, rules=RULES_RUN, top_n: int = 5) -> Dict[str, str]:
    """Run the whole study and return the paths of what it wrote.

    Parameters
    ----------
    out : str
        Output directory: ``features.h5``, ``models/{s1,s1s2}/``, ``metrics_{s1,s1s2}.json``,
        ``relevance.h5``, ``figures/*.png``, ``report.md``.
    scale : float, optional
        Synthetic corpus size as a fraction of SOL-PMT's counts (default :data:`DEMO_SCALE`); ignored with
        ``sol_root``.
    seed : int
        Seeds the synthetic corpus (or the split of a CSV without subsets) and training.
    sol_root : str, optional
        Directory of real audio (SOL 0.9HQ); with ``meta`` (default: the published SOL-PMT split) instead of
        the synthetic corpus.  ``meta`` may also be any CSV with ``file_name`` and ``label`` columns.
    device : str
    max_epochs : int, optional
        Upper bound on training epochs (early stopping decides below it).
    jobs : int, optional
        Worker processes for synthesis (default: all cores).
    config : ScatteringConfig
    rules : sequence of str
        LRP presets to explain with.
    top_n : int
        n of the class-wise top-n aggregation.
    """
    from .export import explain
    from .report import make_figures, write_report
    from .store import extract_features
    from .train import evaluate_model, train_model

    out = os.path.abspath(os.fspath(out))
    os.makedirs(out, exist_ok=True)
    if scale is None:
        scale = DEMO_SCALE
    t_start = time.perf_counter()
    data, meta_csv, audio_root = _data_stage(out, scale=scale, seed=seed, sol_root=sol_root, meta=meta,
                                             jobs=jobs)

    features = os.path.join(out, "features.h5")
    extract = Stage(out, "extract", {"data": data.digest, "config": config.to_dict()}, [features])
    extract.run(lambda: print(extract_features(meta_csv, audio_root, features, config=config, device=device,
                                               overwrite=True, progress=True).describe()))

    metrics_paths, train_stages = {}, {}
    for inp in INPUTS:
        model_dir = os.path.join(out, "models", inp)
        st = Stage(out, f"train_{inp}", {"extract": extract.digest, "seed": seed, "max_epochs": max_epochs},
                   [os.path.join(model_dir, "model.pt"), os.path.join(model_dir, "config.json")])
        st.run(lambda: train_model(features, input=inp, out_dir=model_dir, seed=seed, device=device,
                                   max_epochs=max_epochs, progress=True))
        train_stages[inp] = st
        metrics_paths[inp] = os.path.join(out, f"metrics_{inp}.json")
        ev = Stage(out, f"evaluate_{inp}", {"train": st.digest}, [metrics_paths[inp]])

        def evaluate(model_dir=model_dir, inp=inp):
            eval_dir = os.path.join(model_dir, "evaluation")
            evaluate_model(features, model_dir=model_dir, out_dir=eval_dir, subset="test", device=device)
            shutil.copyfile(os.path.join(eval_dir, "metrics.json"), metrics_paths[inp])

        ev.run(evaluate)

    relevance = os.path.join(out, "relevance.h5")
    exp = Stage(out, "explain", {"train": train_stages["s1s2"].digest, "rules": list(rules), "top_n": top_n},
                [relevance])
    exp.run(lambda: explain(features, model_dir=os.path.join(out, "models", "s1s2"), rules=list(rules),
                            out=relevance, subset="test", target="pred", top_n=top_n, device=device,
                            progress=True))

    fig_dir = os.path.join(out, "figures")
    figs = Stage(out, "figures", {"explain": exp.digest, "metrics": [train_stages[i].digest for i in INPUTS]},
                 [os.path.join(fig_dir, n) for n in ("fig1_examples.png", "fig2_class_maps.png",
                                                     "confusion.png")])
    figs.run(lambda: make_figures(relevance, metrics_paths, audio_root=audio_root, out_dir=fig_dir))

    report = os.path.join(out, "report.md")
    write_report(report, metrics_paths=metrics_paths, relevance=relevance, features=features,
                 figures_dir=fig_dir, settings={"scale": None if sol_root else scale, "seed": seed,
                                                "data": sol_root or "synthetic corpus",
                                                "device": device})
    print(f"[total] {time.perf_counter() - t_start:.1f} s — report: {report}", flush=True)
    return {"report": report, "features": features, "relevance": relevance, "figures": fig_dir,
            **{f"metrics_{k}": v for k, v in metrics_paths.items()}}
