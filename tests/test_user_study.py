"""A new user's own study (3 classes with text labels, 22.05 kHz stereo notes of 3–8 s, a meta CSV with
file_name and label only), step by step and through ``run``: the class names must be right everywhere, and
the audio-in ``explain`` must give predictions, a relevance file and a figure per file."""

import json
import os

import h5py
import numpy as np
import pytest

from scatterxai.audio import audio_info, segment_starts
from scatterxai.cli import main
from scatterxai.explain.files import softmax
from scatterxai.features import extract_features
from scatterxai.pipeline import run

from .conftest import SMALL
from .user_study import CLASSES, write_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    meta, audio = write_study(root, per_class=6)
    return root, meta, audio


@pytest.fixture(scope="module")
def stepwise(study):
    """extract (API, for the tiny scattering configuration) → train → evaluate → explain → figures (CLI).
    Text labels reach train (a traceback before: #18) and every output folder is created by its command."""
    root, meta, audio = study
    out = root / "steps"   # does not exist yet: extract creates it
    summary = extract_features(meta, audio, out / "features.h5", config=SMALL, progress=False)
    assert summary.n_ok == 18 and len(summary.truncated) == 18   # every note is longer than SMALL's 0.19 s
    features, model = str(out / "features.h5"), str(out / "models" / "s1s2")
    assert main(["-q", "train", features, "--input", "s1s2", "--out", model, "--max-epochs", "2",
                 "--device", "cpu"]) == 0
    assert main(["-q", "evaluate", features, "--model", model, "--out", str(out / "eval"), "--device", "cpu"]) == 0
    assert main(["-q", "explain", features, "--model", model, "--out", str(out / "rel" / "relevance.h5"),
                 "--device", "cpu"]) == 0
    assert main(["-q", "figures", str(out / "rel" / "relevance.h5"), "--out", str(out / "figs"), "--dpi", "40"]) == 0
    return out


def _check_names_everywhere(features, model_dir, metrics_json, relevance, n_tested=3):
    with h5py.File(features, "r") as f:
        assert list(f.attrs["classes"]) == list(CLASSES)
        assert f.attrs["split"] == "drawn" and f.attrs["split_seed"] == 0
        labels = f["examples/label"][()]
        names = f["examples/file_name"].asstr()[()]
        assert labels.dtype == np.int64
        # each note's class index names the class its folder (and the CSV) gave it
        assert [CLASSES[i] for i in labels] == [n.split("/")[0] for n in names]
        assert set(f["examples/subset"].asstr()[()]) == {"training", "validation", "test"}
    with open(os.path.join(model_dir, "config.json")) as fh:
        assert json.load(fh)["classes"] == list(CLASSES)
    with open(metrics_json) as fh:
        m = json.load(fh)
    assert m["classes"] == list(CLASSES) and np.shape(m["confusion_matrix"]) == (3, 3)
    # 6:2:2 of 6 notes: one test note per class; cross-validated: every note, out of fold
    assert np.sum(m["confusion_matrix"]) == m["n_examples"] == n_tested
    with h5py.File(relevance, "r") as f:
        assert list(f.attrs["classes"]) == list(CLASSES)
        assert f["aggregate/epsilon_plus"].shape[0] == 3 and f["examples/logits"].shape[1] == 3


def test_step_by_step_keeps_the_class_names(stepwise):
    _check_names_everywhere(stepwise / "features.h5", stepwise / "models" / "s1s2", stepwise / "eval" / "metrics.json",
                            stepwise / "rel" / "relevance.h5")
    md = (stepwise / "eval" / "metrics.md").read_text()
    assert "| true \\ predicted | am | fm | plain |" in md and "vibrato" not in md
    for name in ("fig1_examples.png", "fig2_class_maps.png", "confusion.png"):
        assert (stepwise / "figs" / name).stat().st_size > 0


def test_run_with_meta_and_audio_root(study):
    root, meta, audio = study
    paths = run(str(root / "run"), meta=meta, audio_root=audio, scattering=SMALL, max_epochs=1, device="cpu")
    # a small study of one's own is cross-validated by default: every note tested and explained out of fold
    _check_names_everywhere(paths["features"], root / "run" / "models" / "s1s2", paths["metrics_s1s2"],
                            paths["relevance"], n_tested=18)
    with open(paths["metrics_s1s2"]) as fh:
        m = json.load(fh)
    assert m["crossval"]["folds"] == 5 and len(m["spread"]["macro_accuracy"]["per_fold"]) == 5
    with h5py.File(paths["relevance"], "r") as f:
        assert f.attrs["out_of_fold"] and sorted(set(f["examples/cv_fold"][()])) == [1, 2, 3, 4, 5]
    report = open(paths["report"], encoding="utf-8").read()
    assert "Cross-validation: 5 folds grouped by file_name" in report and "Test notes per class and fold" in report
    assert "| input | am | fm | plain | macro |" in report
    # no comparison with the paper's numbers on data that are not SOL-PMT
    assert "(paper, SOL-PMT)" not in report and "paper reports" not in report and "vibrato" not in report
    with open(paths["metrics_s1"]) as fh:
        assert np.shape(json.load(fh)["confusion_matrix"]) == (3, 3)


def test_explain_audio_files(stepwise, study, capsys):
    root, _, audio = study
    notes = [os.path.join(audio, "am", "am_00.wav"), os.path.join(audio, "fm", "fm_01.wav")]
    out = root / "single"
    assert main(["explain", *notes, "--model", str(stepwise / "models" / "s1s2"), "--out", str(out),
                 "--device", "cpu", "--methods", "epsilon_plus"]) == 0
    printed = capsys.readouterr().out
    assert "am_00.wav" in printed and "fm_01.wav" in printed and all(c in printed for c in CLASSES)
    pred = json.loads((out / "predictions.json").read_text())
    assert pred["classes"] == list(CLASSES) and [f["n_segments"] for f in pred["files"]] == [1, 1]
    for f in pred["files"]:
        assert f["truncated"] and f["predicted"] in CLASSES
        assert sum(f["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    with h5py.File(out / "relevance.h5", "r") as f:
        assert list(f.attrs["classes"]) == list(CLASSES) and f.attrs["source"] == "audio"
        assert f["features"].shape == (2, 249, 128) and list(f["files/file_name"].asstr()[()]) == notes
    assert (out / "am_00.png").stat().st_size > 0 and (out / "fm_01.png").stat().st_size > 0


def test_explain_audio_segments_are_averaged(stepwise, study):
    import soundfile as sf

    from .user_study import SR, tone
    root, _, audio = study
    note = str(root / "short_plain.wav")   # 1.1 s: six windows of SMALL's 0.19 s (the last one overlapping)
    sf.write(note, tone("plain", np.random.default_rng(7), 1.1), SR)
    out = root / "segments"
    assert main(["-q", "explain", note, "--model", str(stepwise / "models" / "s1s2"), "--out", str(out),
                 "--segments", "--device", "cpu", "--methods", "epsilon", "--format", "svg"]) == 0
    starts = segment_starts(audio_info(note)[0], SMALL.N / SMALL.sr)
    pred = json.loads((out / "predictions.json").read_text())["files"][0]
    assert pred["n_segments"] == len(starts) == 6 and not pred["truncated"]
    assert starts[-1] == pytest.approx(1.1 - SMALL.N / SMALL.sr) and starts[-2] == pytest.approx(4 * SMALL.N / SMALL.sr)
    with h5py.File(out / "relevance.h5", "r") as f:
        np.testing.assert_allclose(f["examples/start_s"][()], starts)
        prob = softmax(f["examples/logits"][()])
        np.testing.assert_allclose(f["files/probability"][0], prob.mean(axis=0))
        np.testing.assert_allclose(f["files/local/epsilon"][0], f["local/epsilon"][()].mean(axis=0), rtol=1e-5)
    assert [pred["probabilities"][c] for c in CLASSES] == pytest.approx(prob.mean(axis=0).tolist(), abs=1e-6)
    assert (out / "short_plain.svg").read_text().startswith("<?xml")


def test_long_file_windows_explain_the_files_class_and_say_where_in_time(stepwise, study):
    """A long recording cut into windows: every window explains the class predicted for the file, and the
    relevance over time (summed over paths, per frame) covers each instant of the file once."""
    import soundfile as sf

    from scatterxai.explain.files import _frame_times
    from scatterxai.maps.time_profile import file_time_profile

    from .user_study import SR, tone
    root, _, audio = study
    long = str(root / "long_am.wav")       # 0.9 s of AM then 0.5 s of a plain tone: five windows
    rng = np.random.default_rng(3)
    sf.write(long, np.r_[tone("am", rng, 0.9), tone("plain", rng, 0.5)], SR)
    short = str(root / "short_fm.wav")     # shorter than one window: continued, one row
    sf.write(short, tone("fm", rng, 0.12), SR)
    out = root / "timed"
    assert main(["-q", "explain", long, short, "--model", str(stepwise / "models" / "s1s2"), "--out", str(out),
                 "--segments", "--device", "cpu", "--methods", "epsilon,gradient_x_input", "--dpi", "40"]) == 0
    summary = json.loads((out / "predictions.json").read_text())
    with h5py.File(out / "relevance.h5", "r") as f:
        file_index = f["examples/file_index"][()]
        explained, file_pred = f["examples/explained"][()], f["files/pred"][()]
        np.testing.assert_array_equal(explained, file_pred[file_index])   # the file's class in every window
        for m in ("epsilon", "gradient_x_input"):
            prof = f[f"time_profile/{m}"][()]
            np.testing.assert_allclose(prof, f[f"relevance/{m}"][()].sum(axis=1), rtol=1e-5, atol=1e-6)
            for i, fs in enumerate(summary["files"]):
                rows = file_index == i
                t, v = file_time_profile(prof[rows], f["examples/start_s"][()][rows], f["time_s"][()],
                                         fs["duration_s"])
                assert np.all(np.diff(t) > 0) and t[0] == 0 and t[-1] < fs["duration_s"]
                # each instant once: consecutive frames one hop apart, except at the overlapping last window
                hop = SMALL.T / SMALL.sr
                assert np.sum(np.abs(np.diff(t) - hop) > 1e-6) <= 1
                assert fs["time_profile"]["time_s"] == pytest.approx(t.tolist(), abs=1e-4)
                assert fs["time_profile"][m] == pytest.approx(v.tolist(), rel=1e-4, abs=1e-6)
                assert f[f"files/peak_time_s/{m}"][i] == pytest.approx(t[np.argmax(v)])
                assert fs["relevance_peak_s"][m] == pytest.approx(t[np.argmax(v)], abs=1e-4)
                totals = [w["relevance"][m] for w in fs["segments"]]
                assert totals == pytest.approx(prof[rows].sum(axis=1).tolist(), rel=1e-4, abs=1e-6)
    assert [f["n_segments"] for f in summary["files"]] == [len(segment_starts(1.4, SMALL.N / SMALL.sr)), 1]
    assert summary["files"][1]["time_profile"]["time_s"][-1] < 0.12      # nothing of the continuation
    assert len(_frame_times(SMALL)) == SMALL.N // SMALL.T
    assert (out / "long_am.png").stat().st_size > 0 and (out / "short_fm.png").stat().st_size > 0
