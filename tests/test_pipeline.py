import json
import logging
import os

import h5py
import numpy as np

from scatterxai.explain import available_methods
from scatterxai.pipeline import run

from .conftest import SMALL


def test_run_end_to_end_and_stage_reuse(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="scatterxai")
    monkeypatch.setenv("SCATTERXAI_CACHE_DIR", str(tmp_path / "cache"))   # empty: the plan is prepared
    out = str(tmp_path / "run")
    kw = dict(scale=0.01, seed=3, device="cpu", max_epochs=2, jobs=2, scattering=SMALL)
    paths = run(out, **kw)
    first = caplog.text
    caplog.clear()
    for name in ("features.h5", "relevance.h5", "report.md", "metrics_s1.json", "metrics_s1s2.json",
                 "models/s1/model.pt", "models/s1s2/config.json", "figures/fig1_examples.png",
                 "figures/fig2_class_maps.png", "figures/confusion.png", "quality/quality.json",
                 "quality/quality_curves.png", "models/s1s2_permuted_labels_model/model.pt", "descriptors.h5",
                 "probe/probe.json", "probe/probe_r2.png", "explorer/index.html", "explorer/explore.json"):
        assert os.path.exists(os.path.join(out, name)), name
    for stage in ("data", "extract", "train_s1", "train_s1s2", "explain", "figures", "compare",
                  "quality_permuted_labels", "quality", "describe", "probe", "explore"):
        assert f"[{stage}] running" in first
    # the plan (during synthesis), numba's compilation (for describe) and the auralisation bank (for the
    # explorer) went to background processes
    for name in ("extract", "describe", "explore"):
        assert f"[{name}] preparing in the background" in first and f"preparation {name} failed" not in first
    for kind in ("fast-plan-", "auralise-bank-"):
        assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith(kind)], kind
    with h5py.File(paths["relevance"], "r") as f:
        assert set(f["relevance"]) == set(available_methods())
        assert f["features"].shape[1:] == (249, 128)
    assert os.path.exists(os.path.join(out, "compare", "compare.json"))
    for inp, n_channels in (("s1", 38), ("s1s2", 249)):
        with open(paths[f"metrics_{inp}"]) as fh:
            m = json.load(fh)
        with open(os.path.join(out, "models", inp, "config.json")) as fh:
            assert json.load(fh)["n_channels"] == n_channels
        assert m["input"] == inp and 0 <= m["macro_accuracy"] <= 1
        assert np.sum(m["confusion_matrix"]) == m["n_examples"]
    report = open(paths["report"]).read()
    assert "Table 1" in report and "figures/fig1_examples.png" in report and "kurtosis" in report
    assert "| S1+S2 (paper, SOL-PMT) |" in report   # the synthetic corpus imitates SOL-PMT: compared
    # S1 beside its control, the instrument prior (its value on SOL-PMT's split: 73.2 %, measured)
    assert "S1's control, the instrument prior" in report and "published split: 73.2 %" in report
    assert "not localised" in report
    assert "## Is the explanation right? Quality checks" in report and "(quality/quality_curves.png)" in report
    assert "| rank | method |" in report
    assert "## What do the layers represent? (probe study)" in report and "R² log2 f0" in report
    assert "## Attribution methods compared" in report and "| Integrated Gradients | `integrated_gradients` |" in report
    # the explorer: two notes per class, the paper's rules auralised, the run's own quality verdicts
    assert "## Explorer" in report and "(explorer/index.html)" in report
    from ._explore_run import page_data
    header, notes = page_data(os.path.join(out, "explorer"))
    assert len(header["notes"]) <= 10 and [m["name"] for m in header["methods"] if m["auralised"]] == [
        "epsilon", "epsilon_plus"]
    quality = json.load(open(os.path.join(out, "quality", "quality.json")))
    verdicts = header["methods_view"]["quality"]
    assert verdicts["methods"] == list(quality) and verdicts["table"]["columns"][:2] == ["rank", "method"]
    assert verdicts["verdicts"][0] == [quality[verdicts["methods"][0]]["checks"][c] for c in verdicts["checks"]]
    assert all(n["audio"]["methods"].keys() == {"epsilon", "epsilon_plus"} for n in notes.values())

    # experiments/synthetic_study.py --figures: the repository's figures/ as palette PNGs
    import sys

    from PIL import Image
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "experiments"))
    from synthetic_study import copy_figures
    copy_figures(paths["figures"], str(tmp_path / "figs"))
    for name in ("fig1_examples.png", "fig2_class_maps.png", "confusion.png"):
        small = Image.open(tmp_path / "figs" / name)
        assert small.mode == "P" and small.size == Image.open(os.path.join(paths["figures"], name)).size

    mtime = os.path.getmtime(paths["features"])
    timings = json.load(open(os.path.join(out, "timings.json")))
    assert timings["reused"] == [] and all(v > 0 for v in timings["stages"].values())
    assert timings["after_training_over_core"] > 0
    run(out, **kw)  # nothing changed: every stage is reused
    second = caplog.text
    caplog.clear()
    assert "running" not in second and second.count("reused") == 14
    assert "preparing" not in second   # the describe stage is reused: nothing to prepare
    # the record of the run that made the outputs is kept, not overwritten by this run's
    assert json.load(open(os.path.join(out, "timings.json"))) == timings
    run(out, **{**kw, "max_epochs": 1})  # a training setting changed: data and features are reused
    third = caplog.text
    assert "[data] reused" in third and "[extract] reused" in third and "[train_s1] running" in third
    assert os.path.getmtime(paths["features"]) == mtime
    # reused stages keep the seconds of the run that made them; the ratio is still given
    after = json.load(open(os.path.join(out, "timings.json")))
    assert {"data", "extract"} <= set(after["reused"]) and "train_s1" not in after["reused"]
    assert after["stages"]["extract"] == timings["stages"]["extract"]
    assert after["after_training_over_core"] is not None
    assert "(reused: time of the run that made it)" in open(paths["report"]).read()


def test_run_on_a_sol_like_tree(tmp_path, capsys):
    """Real-data path: SOL-PMT meta columns only, audio nested in family/instrument folders by base name."""
    import shutil

    from scatterxai.data import META_COLUMNS, read_meta_csv, write_meta_csv
    from scatterxai.data.synth.corpus import synthesize_corpus

    meta = read_meta_csv(synthesize_corpus(str(tmp_path / "synth"), scale=0.01, seed=5, jobs=2,
                                           progress=False))
    sol = tmp_path / "SOL-0.9HQ"
    for fam, inst, name in zip(meta["instrument family"], meta["instrument"], meta["file_name"]):
        dest = sol / str(fam) / str(inst) / "ordinario"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "synth" / "audio" / os.path.basename(str(name)), dest)
    csv = str(tmp_path / "sol_meta.csv")
    write_meta_csv(csv, {k: np.array([os.path.basename(str(v)) for v in meta[k]], dtype=object)
                         if k == "file_name" else meta[k] for k in META_COLUMNS})
    paths = run(str(tmp_path / "out"), sol_root=str(sol), meta=csv, device="cpu", max_epochs=1, scattering=SMALL)
    with h5py.File(paths["features"], "r") as f:
        assert f["features"].shape[0] == len(meta["file_name"]) and "f0_hz" not in f["examples"]
    with h5py.File(paths["relevance"], "r") as f:
        assert "localisation" not in f  # no ground truth in real data
    assert os.path.exists(os.path.join(paths["figures"], "fig1_examples.png"))
    report = open(paths["report"]).read()
    # not the published split: no comparison with the paper's numbers
    assert "Table 1" in report and "(paper, SOL-PMT)" not in report and "paper reports" not in report


def test_background_preparations_never_decide_a_result(tmp_path, caplog, monkeypatch):
    """A failing preparation is logged and the run goes on; one still running at the end is stopped."""
    import time

    from scatterxai.pipeline import RunConfig, RunContext
    caplog.set_level(logging.INFO, logger="scatterxai")
    (tmp_path / "slow_prep.py").write_text("import time\ndef wait():\n    time.sleep(60)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    r = RunContext(str(tmp_path), RunConfig())
    r.start_background("broken", "no_such_module_here:f")
    r.wait_background("broken")
    assert "background preparation broken failed (exit 1: ModuleNotFoundError" in caplog.text
    r.wait_background("never started")   # nothing to wait for
    t0 = time.perf_counter()
    r.start_background("slow", "slow_prep:wait")
    proc = r._background["slow"]
    r.stop_background()
    assert proc.returncode is not None and time.perf_counter() - t0 < 30 and not r._background
