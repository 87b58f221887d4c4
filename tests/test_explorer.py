"""The explorer's data (without a browser: tests/test_explorer_browser.py drives one): the page shows the
relevance file's values, the path table's frequencies and the package's auralisation, for a stated selection."""

import json
import os
import re

import numpy as np
import pytest
import soundfile as sf

from scatterxai import cli
from scatterxai.analysis.auralise.resynth import auralise
from scatterxai.analysis.auralise.run import full_table_map
from scatterxai.audio import read_window
from scatterxai.errors import DataError, OutputError, ParameterError
from scatterxai.explore import ExploreConfig, explore, select_notes
from scatterxai.explore.build import STATIC_FILES
from scatterxai.explore.data import decode_array, parse_md_tables, probabilities
from scatterxai.explore.media import PEAK, log_spectrogram
from scatterxai.io.relevance import RelevanceFile

from ._explore_run import METHODS, QUALITY_CHECKS, page_data, shared_run
from .conftest import SMALL


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return shared_run(tmp_path_factory)


@pytest.fixture(scope="module")
def explorer(run, tmp_path_factory):
    """The explorer of the run with lossless audio, so that the players' samples can be checked."""
    out = tmp_path_factory.mktemp("explorer") / "explorer"
    result = explore(run["root"], out, ExploreConfig(notes=2, audio_format="wav"))
    header, notes = page_data(out)
    return {"out": out, "result": result, "header": header, "notes": notes}


# ------------------------------------------------------------------------------------------- selection

def test_select_notes_misclassified_first_then_spread_over_confidence():
    labels = np.array([0] * 6 + [1] * 3)
    preds = np.array([0, 1, 0, 2, 0, 0, 1, 1, 1])
    conf = np.array([0.9, 0.6, 0.5, 0.8, 0.7, 0.3, 0.4, 0.5, 0.6])
    chosen = select_notes(preds, conf, labels=labels, per_class=3)
    # class 0: the two mistakes, most confident first (row 3: 0.8, row 1: 0.6), then one correct note: the
    # least confident one (the spread of a single pick starts at the bottom); class 1: spread over confidence
    assert chosen == [(3, "misclassified"), (1, "misclassified"), (5, "correct"),
                      (6, "correct"), (7, "correct"), (8, "correct")]
    assert select_notes(preds, conf, labels=labels, per_class=1) == [(3, "misclassified"), (6, "correct")]
    assert [r for r, _ in select_notes(preds, conf, labels=labels, per_class=4)][:4] == [3, 1, 5, 0]


def test_select_notes_prefers_eligible_rows_and_groups_unlabelled_notes_by_prediction():
    labels = np.zeros(4, int)
    preds = np.array([1, 0, 0, 0])
    conf = np.array([0.9, 0.2, 0.5, 0.8])
    eligible = np.array([False, True, True, False])
    assert select_notes(preds, conf, labels=labels, eligible=eligible, per_class=2) == [(1, "correct"),
                                                                                       (2, "correct")]
    # a class short of eligible notes is filled with the others (the mistake first)
    assert select_notes(preds, conf, labels=labels, eligible=eligible, per_class=3) == [
        (1, "correct"), (2, "correct"), (0, "misclassified")]
    assert select_notes(preds, conf, per_class=1) == [(1, "unlabelled"), (0, "unlabelled")]
    # every eligible note first, then the others; classes without notes add none
    assert select_notes(preds, conf, labels=labels, eligible=eligible, n_classes=3, per_class=5) == [
        (1, "correct"), (2, "correct"), (0, "misclassified"), (3, "correct")]
    with pytest.raises(ParameterError, match="per_class"):
        select_notes(preds, conf, per_class=0)
    with pytest.raises(ParameterError, match="labels must have shape"):
        select_notes(preds, conf, labels=labels[:2])


# ------------------------------------------------------------------------------------------- page data

def test_notes_table_is_the_stated_selection_of_the_relevance_file(run, explorer):
    header = explorer["header"]
    with RelevanceFile(run["relevance"]) as rf:
        probs = probabilities(rf.logits)
        preds = rf.examples["pred"]
        expected = select_notes(preds, probs[np.arange(len(rf)), preds], labels=rf.labels,
                                n_classes=len(rf.classes), per_class=2)
        ex = rf.examples
        assert header["classes"] == list(rf.classes) and header["n_total"] == len(rf) == 30
        assert [(n["row"], n["reason"]) for n in header["notes"]] == expected
        assert len(header["notes"]) == 10 and explorer["result"]["rows"] == [r for r, _ in expected]
        for n in header["notes"]:
            k = n["row"]
            assert n["file"] == os.path.basename(ex["file_name"][k]) and n["label"] == ex["label"][k]
            assert n["pred"] == preds[k] and n["correct"] == bool(ex["label"][k] == preds[k])
            assert n["confidence"] == pytest.approx(probs[k, preds[k]], rel=1e-12)
            assert n["f0_hz"] == ex["f0_hz"][k] and n["rate_hz"] == ex["modulation_hz"][k]
            assert n["pitch"] == ex["pitch"][k] and n["instrument"] == "tone"
    assert "at most 2 per true class" in header["selection"] and "misclassified" in header["selection"]
    assert header["default_method"] == "epsilon_plus"
    assert [m["name"] for m in header["methods"]] == list(METHODS)
    assert all(m["auralised"] for m in header["methods"])


def test_maps_and_probabilities_are_the_relevance_files_values(run, explorer):
    header, notes = explorer["header"], explorer["notes"]
    with RelevanceFile(run["relevance"]) as rf:
        probs = probabilities(rf.logits)
        for n in header["notes"]:
            note = notes[n["id"]]
            assert note["row"] == n["row"]
            np.testing.assert_allclose(note["probs"], probs[n["row"]], rtol=1e-12)
            for m in METHODS:
                values = decode_array(note["maps"][m])
                assert values.dtype == np.float32
                np.testing.assert_array_equal(values, rf.local(m)[n["row"]])   # bit for bit
                assert note["kurtosis"][m] == pytest.approx(rf.kurtosis(m)[n["row"]], rel=1e-12)


def test_hz_labels_are_the_path_tables_frequencies(run, explorer):
    grid = explorer["header"]["grid"]
    with RelevanceFile(run["relevance"]) as rf:
        lam1, lam2 = rf.paths["lambda1_hz"], rf.paths["lambda2_hz"]
        assert grid["path_lambda1_hz"] == [float(v) for v in lam1]          # exact: JSON float64
        assert grid["path_lambda2_hz"] == [None if np.isnan(v) else float(v) for v in lam2]
        assert grid["path_row"] == rf.grid.row.tolist() and grid["path_col"] == rf.grid.col.tolist()
        assert grid["order"] == rf.paths["order"].tolist()
    # the drawn rows and columns hold the paths they are labelled with
    rows, cols = np.array(grid["path_row"]), np.array(grid["path_col"])
    np.testing.assert_allclose(np.array(grid["lambda1_hz"])[rows], lam1, rtol=1e-9)
    s2 = cols > 0
    np.testing.assert_allclose(np.array(grid["lambda2_hz"])[cols[s2]], lam2[s2], rtol=1e-9)
    assert np.all(np.isnan(lam2[~s2])) and grid["lambda2_hz"][0] == 0


def test_class_view_holds_eq13_aggregates_and_kurtosis(run, explorer):
    cv = explorer["header"]["classes_view"]
    with RelevanceFile(run["relevance"]) as rf:
        labels = rf.labels
        assert cv["top_n"] == 3 and cv["grouped_by"] == "label"
        assert cv["n_notes"] == np.bincount(labels, minlength=5).tolist()
        for m in METHODS:
            assert cv["aggregate"][m] == rf.aggregate(m).tolist()
            k = rf.kurtosis(m)
            for c in range(5):
                assert cv["kurtosis"][m]["mean"][c] == pytest.approx(k[labels == c].mean(), rel=1e-9)
                assert cv["kurtosis"][m]["n"][c] == int(np.sum(labels == c))


def test_methods_view_reads_the_comparison_and_whatever_quality_keys_exist(run, explorer):
    mv = explorer["header"]["methods_view"]
    table = mv["compare"]["table"]
    assert table["columns"][:3] == ["method", "name", "notes"]
    assert [row[1] for row in table["rows"]] == list(METHODS)           # code marks dropped
    js = mv["compare"]["between"]["js"]
    assert js["methods"] == list(METHODS) and js["matrix"][0][0] == 0
    compare = json.loads((run["root"] / "compare" / "compare.json").read_text())
    pair = compare["between_methods"].get("epsilon|epsilon_plus") or compare["between_methods"]["epsilon_plus|epsilon"]
    assert js["matrix"][0][1] == pytest.approx(pair["js"]["mean"])
    q = mv["quality"]
    assert q["methods"] == list(METHODS) and q["checks"] == list(QUALITY_CHECKS["epsilon"])
    assert q["verdicts"] == [[QUALITY_CHECKS[m][c] for c in q["checks"]] for m in METHODS]
    scores = {row[0]: row[1:] for row in q["scores"]}
    assert scores["controls.constant_map.localisation"] == pytest.approx([0.5, 0.6, 0.7])
    assert scores["aopc"] == pytest.approx([0.1, 0.2, 0.3]) and scores["localisation"] == [None] * 3
    assert "randomisation.steps" not in scores and q["table"] is None     # lists are left out; no quality.md


def test_audio_is_the_packages_auralisation_on_one_scale(run, explorer):
    header, notes = explorer["header"], explorer["notes"]
    audio_dir = explorer["out"] / "audio"
    with RelevanceFile(run["relevance"]) as rf:
        n = header["notes"][0]
        note = notes[n["id"]]["audio"]
        x = read_window(run["audio"] / n["file_name"], SMALL)[0]
        y, sr = sf.read(audio_dir / note["note"])
        assert sr == SMALL.sr and y.shape == (SMALL.N,)
        scale = note["scale"]
        np.testing.assert_allclose(y, scale * x, atol=1.5 / 32768)        # 16-bit WAV
        peaks = [np.abs(y).max()]
        for m in METHODS:
            parts = auralise(x, full_table_map(rf.local(m)[n["row"]], rf.paths, SMALL), SMALL)
            rel = sf.read(audio_dir / note["methods"][m]["relevant"])[0]
            comp = sf.read(audio_dir / note["methods"][m]["complement"])[0]
            np.testing.assert_allclose(rel, scale * parts.relevant, atol=1.5 / 32768)
            np.testing.assert_allclose(comp, scale * parts.complement, atol=1.5 / 32768)
            assert note["methods"][m]["energy_share"] == pytest.approx(
                np.sum(parts.relevant ** 2) / np.sum(parts.reference ** 2), rel=1e-6)
            peaks += [np.abs(rel).max(), np.abs(comp).max()]
    assert max(peaks) == pytest.approx(PEAK, abs=2 / 32768)
    # the spectrogram of the same window
    spec = notes[n["id"]]["spectrogram"]
    image = decode_array(spec["image"], "u1").reshape(spec["n_rows"], spec["n_frames"])
    np.testing.assert_array_equal(image, log_spectrogram(x, SMALL.sr)["image"])


def test_folder_is_self_contained_and_offline(explorer):
    out = explorer["out"]
    assert sorted(os.listdir(out)) == [".scatterxai.json", "audio", "data", "explore.json", "index.html", "static"]
    html = (out / "index.html").read_text(encoding="utf-8")
    for dst in STATIC_FILES.values():
        text = (out / dst).read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), dst     # no URL outside the folder
    for ref in re.findall(r'(?:src|href)="([^"#]+)"', html):
        assert (out / ref).is_file(), ref
    summary = json.loads((out / "explore.json").read_text())
    assert summary["bytes"] == explorer["result"]["bytes"] > 0
    assert summary["n_notes"] == 10 and summary["auralised"] == list(METHODS)
    assert len(os.listdir(out / "audio")) == 10 * (1 + 2 * len(METHODS))


# ------------------------------------------------------------------------------------------- options and errors

def test_default_output_ogg_audio_and_replacement(run, tmp_path):
    import shutil
    root = tmp_path / "run"
    shutil.copytree(run["root"], root)
    first = explore(root, config=ExploreConfig(notes=1, auralise=("epsilon",)))
    assert first["out"] == str(root / "explorer") and first["n_notes"] == 5
    header, notes = page_data(root / "explorer")
    assert [m["auralised"] for m in header["methods"]] == [True, False, False]
    files = sorted(os.listdir(root / "explorer" / "audio"))
    assert len(files) == 5 * 3 and all(f.endswith(".ogg") for f in files)
    info = sf.info(root / "explorer" / "audio" / files[0])
    assert info.format == "OGG" and info.frames == SMALL.N
    # a second run replaces the folder as a whole, but never deletes what a user put there (the output rule)
    (root / "explorer" / "stale.txt").write_text("old")
    with pytest.raises(OutputError, match="stale.txt"):
        explore(root, config=ExploreConfig(notes=1, audio=False, methods=("epsilon_plus",)))
    assert (root / "explorer" / "stale.txt").read_text() == "old" and (root / "explorer" / "audio").exists()
    (root / "explorer" / "stale.txt").unlink()
    explore(root, config=ExploreConfig(notes=1, audio=False, methods=("epsilon_plus",)))
    assert not (root / "explorer" / "audio").exists()
    header, notes = page_data(root / "explorer")
    assert [m["name"] for m in header["methods"]] == ["epsilon_plus"] and header["audio_format"] is None
    assert all("without audio" in note["audio_error"] and "spectrogram" not in note for note in notes.values())


def test_missing_audio_and_analyses_are_said_on_the_page(run, tmp_path, caplog):
    import shutil
    root = tmp_path / "run"
    shutil.copytree(run["root"], root, ignore=shutil.ignore_patterns("audio", "compare", "quality"))
    out = tmp_path / "ex"
    (tmp_path / "empty").mkdir()
    explore(root, out, ExploreConfig(notes=1), audio_root=tmp_path / "empty")
    header, notes = page_data(out)
    assert header["audio_root_found"] is True and len(notes) == 5
    assert all("not found" in note["audio_error"] and note["maps"]["epsilon"] for note in notes.values())
    assert "no audio for" in caplog.text
    assert header["methods_view"] == {"compare": None, "quality": None}   # the page says the run has none


def test_refused_outputs_and_inputs(run, tmp_path):
    root = run["root"]
    with pytest.raises(ParameterError, match="run directory"):
        explore(root, root)
    with pytest.raises(ParameterError, match="audio root"):
        explore(root, root / "data")                                  # would replace the run's audio
    with pytest.raises(ParameterError, match="is the relevance input"):
        explore(root, root / "relevance.h5")
    with pytest.raises(ParameterError, match="not a directory"):
        explore(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no relevance.h5"):
        explore(tmp_path)
    with pytest.raises(ParameterError, match=r"methods \['lrp0'\] are not in"):
        explore(root, tmp_path / "x", ExploreConfig(methods=("lrp0",)))
    with pytest.raises(ParameterError, match="not among the shown methods"):
        explore(root, tmp_path / "x", ExploreConfig(methods=("epsilon",), auralise=("epsilon_plus",)))
    with pytest.raises(ParameterError, match="audio_format"):
        ExploreConfig(audio_format="mp3")
    assert not (tmp_path / "x").exists()


def test_cli_explore(run, tmp_path, capsys):
    out = tmp_path / "ex"
    assert cli.main(["explore", str(run["root"]), "--out", str(out), "--notes", "1", "--auralise", "none",
                     "--methods", "epsilon,gradient_x_input", "-q"]) == 0
    printed = capsys.readouterr().out
    assert str(out / "index.html") in printed and "5 notes" in printed and "file://" in printed
    header, _ = page_data(out)
    assert [(m["name"], m["auralised"]) for m in header["methods"]] == [("epsilon", False),
                                                                        ("gradient_x_input", False)]
    assert cli.main(["explore", str(run["root"]), "--out", str(run["root"])]) == 2
    assert "is the run directory" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- pieces

def test_parse_md_tables():
    text = ("# t\n\n| a | b\\|c |\n|---|---:|\n| `x` | 1 \\| 2 |\n| y | 3 |\n\nprose\n\n| z |\n|---|\n| 9 |\n"
            "\n| not | a table |\n")
    assert parse_md_tables(text) == [{"columns": ["a", "b|c"], "rows": [["x", "1 | 2"], ["y", "3"]]},
                                     {"columns": ["z"], "rows": [["9"]]}]


def test_log_spectrogram_puts_a_tone_on_its_row():
    sr = 8000
    t = np.arange(2 ** 14) / sr
    spec = log_spectrogram(np.sin(2 * np.pi * 1000 * t) + 0.01 * np.sin(2 * np.pi * 250 * t), sr)
    image, freqs = spec["image"], spec["freqs_hz"]
    assert image.dtype == np.uint8 and image.shape == (freqs.size, spec["times_s"].size)
    assert np.all(np.diff(freqs) > 0) and freqs[0] == 32.0 and freqs[-1] <= sr / 2
    loudest = freqs[np.argmax(image.mean(axis=1))]
    assert abs(np.log2(loudest / 1000)) < 1 / 16
    quiet = freqs[np.argmax(np.where(freqs < 500, image.mean(axis=1), 0))]       # the -40 dB tone
    assert image.max() == 255 and abs(np.log2(quiet / 250)) < 0.1
