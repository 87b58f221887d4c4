"""experiments/real_transfer.py on a toy model and a folder of synthetic "recordings" (never the real set)."""

import csv
import json
import os
import sys

import numpy as np
import soundfile as sf

from scatterxai.scattering import path_table

from .conftest import SMALL, train_one_epoch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "experiments"))
import real_transfer  # noqa: E402
import vibrato_depth  # noqa: E402


def test_absent_audio_folder_says_so_and_exits_0(tmp_path, capsys):
    assert real_transfer.main(["--model", str(tmp_path / "m"), "--audio", str(tmp_path / "none")]) == 0
    assert "absent" in capsys.readouterr().out


def test_the_default_folder_does_not_depend_on_the_working_directory(tmp_path):
    import subprocess
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
    code = "import real_transfer; print(real_transfer.DEFAULT_AUDIO)"
    env = {k: v for k, v in os.environ.items() if k != "SCATTERXAI_REAL_AUDIO"}
    env["PYTHONPATH"] = os.path.join(here, "experiments")
    printed = [subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                              check=True).stdout.strip() for cwd in (str(tmp_path), here)]
    assert printed[0] == printed[1] == os.path.normpath(os.path.join(here, os.pardir, "shared", "real-audio"))
    env["SCATTERXAI_REAL_AUDIO"] = str(tmp_path)
    assert subprocess.run([sys.executable, "-c", code], cwd=here, env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == str(tmp_path)


def _toy_features(path):
    """Random coefficients scaled by the class (the paper's five names), 20 notes with random rates."""
    from scatterxai.features import write_features
    from scatterxai.task import CLASSES
    table = path_table(SMALL)
    rng = np.random.default_rng(0)
    y = np.arange(20) % 5
    S = (rng.random((20, len(table), table.n_frames)) * (1 + y)[:, None, None]).astype(np.float32)
    write_features(str(path), S, {"file_name": np.array([f"n{i}" for i in range(20)], object), "label": y,
                                  "subset": np.array(["training", "validation"] * 10, object),
                                  "modulation_hz": rng.uniform(4, 30, 20)}, SMALL, classes=CLASSES)
    return str(path)


def _toy_folder(root, sr=22050):
    """Four 'recordings' of 0.3 s (longer than SMALL's 0.19-s window) with a manifest; their 'modulation
    rates' lie in SMALL's λ2 range (170–3900 Hz)."""
    root.mkdir()
    t = np.arange(int(0.3 * sr)) / sr
    rows = []
    for i, (tech, rate) in enumerate([("vibrato", 200.0), ("tremolo", 500.0), ("trill", 300.0),
                                              ("flatterzunge", 1500.0)]):
        mod = np.sin(2 * np.pi * rate * t)
        y = np.sin(2 * np.pi * 4400 * t + (i + 1) * mod) * (1 + 0.5 * mod)
        name = f"{tech}_{i}.wav"
        sf.write(root / name, 0.3 * y, sr)
        rows.append({"file_name": name, "technique": tech, "instrument": "toy", "approx_modulation_hz": rate,
                     "approx_f0_hz": 440, "duration_s": 0.3})
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def test_real_transfer_on_a_toy_model(tmp_path):
    features = _toy_features(tmp_path / "f.h5")
    model = train_one_epoch(features, tmp_path / "model", input="s1s2")
    rows = _toy_folder(tmp_path / "audio")
    out = tmp_path / "out"
    assert real_transfer.main(["--model", model, "--audio", str(tmp_path / "audio"), "--out", str(out),
                               "--methods", "epsilon_plus,gradient_x_input", "--offsets", "0.05", "0.2",
                               "--lengths", "0.08"]) == 0
    res = json.loads((out / "transfer.json").read_text())
    conds = res["results"]
    assert list(conds) == ["whole", "first", "excerpt 0.05+0.08", "excerpt 0.2+0.08"]
    assert [f["n_windows"] for f in conds["whole"]["files"]] == [2] * 4     # 0.3 s = two 0.19-s windows
    assert [f["n_windows"] for f in conds["first"]["files"]] == [1] * 4
    assert len(conds["excerpt 0.2+0.08"]["files"]) == 4 and len(conds["excerpt 0.05+0.08"]["files"]) == 4
    loc = conds["whole"]["localisation"]
    assert set(loc) == {"epsilon_plus", "gradient_x_input", "control: the input itself", "control: constant map",
                        "control: class-prior map", "control: chance"}
    for key, v in loc.items():
        if key == "control: chance":   # the expected score of an even map: a share of the S2 paths
            assert all(0 < h < 1 for h in v["hits"])
        else:
            assert len(v["hits"]) == 4 and all(h in (0, 1) for h in v["hits"]), key
            assert all(b is None or 0 <= b <= 1 for b in v["band_share"]), key   # None: no positive S2 relevance
    # a column map's band share is all or nothing
    assert [b for b in loc["control: constant map"]["band_share"]] == loc["control: constant map"]["hits"]
    # the constant control points at the same column for every file
    assert len(set(loc["control: constant map"]["peak_lambda2_hz"])) == 1
    md = (out / "transfer.md").read_text()
    assert "## Accuracy" in md and "whole file (windows, mean)" in md and "/4" in md
    # per-condition explanation outputs, and no audio anywhere in --out
    assert (out / "whole" / "relevance.h5").is_file() and (out / "excerpt_0.05_0.08" / "predictions.json").is_file()
    assert not [p for p in out.rglob("*") if p.suffix.lower() in (".wav", ".flac")]
    assert {f["file_name"] for f in conds["whole"]["files"]} == {r["file_name"] for r in rows}


def test_excerpt_longer_than_a_file_leaves_it_out(tmp_path):
    _toy_folder(tmp_path / "audio")
    rows = real_transfer.read_manifest(str(tmp_path / "audio"))
    folder = tmp_path / "x"
    folder.mkdir()
    paths = real_transfer.write_excerpts(rows, 0.25, 0.1, str(folder))
    assert paths == [None] * 4
    paths = real_transfer.write_excerpts(rows, 0.1, 0.1, str(folder))
    y, sr = sf.read(paths[0])
    assert sr == 22050 and len(y) == 2205


def test_preparation_switch_zero_pads_excerpts_only_within_the_run(tmp_path):
    import h5py

    import scatterxai.audio as audio
    original = audio.continue_signal
    features = _toy_features(tmp_path / "f.h5")
    model = train_one_epoch(features, tmp_path / "model", input="s1s2")
    _toy_folder(tmp_path / "audio")
    x = {}
    for prep in ("continue", "zeros"):
        out = tmp_path / prep
        assert real_transfer.main(["--model", model, "--audio", str(tmp_path / "audio"), "--out", str(out),
                                   "--methods", "epsilon", "--conditions", "excerpt", "--offsets", "0.1",
                                   "--lengths", "0.08", "--preparation", prep]) == 0
        with h5py.File(out / "excerpt_0.1_0.08" / "relevance.h5", "r") as f:
            x[prep] = f["features"][()]
        assert ("zero-padded" if prep == "zeros" else "continued") in (out / "transfer.md").read_text()
    assert audio.continue_signal is original
    # 0.08 s of a 0.19-s window: the continued excerpts sound for the whole window, zero-padded ones do not
    assert not np.allclose(x["continue"], x["zeros"])
    frames = x["zeros"].shape[2]
    assert x["zeros"][:, :, -frames // 4:].mean() < x["continue"][:, :, -frames // 4:].mean()


def test_vibrato_depth_measures_a_known_vibrato_and_says_when_the_folder_is_absent(tmp_path, capsys):
    sr = vibrato_depth.SR
    t = np.arange(int(2.0 * sr)) / sr
    for depth in (0.3, 0.8):
        f = 220.0 * 2.0 ** (depth * np.sin(2 * np.pi * 5.2 * t) / 12.0)
        phase = 2 * np.pi * np.cumsum(f) / sr
        y = sum(np.sin(k * phase) / k for k in range(1, 6))
        rate, dev = vibrato_depth.peak_deviation(y, 220.0)
        assert abs(rate - 5.2) < 0.1 and abs(dev - depth) < 0.05 * depth, (depth, rate, dev)
    assert vibrato_depth.main(["--audio", str(tmp_path / "absent")]) == 0
    assert "no manifest.csv" in capsys.readouterr().out
