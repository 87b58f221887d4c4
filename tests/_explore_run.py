"""A tiny run directory for the explorer's tests: audio, features, a trained model, a relevance file with three
methods and the comparison (SMALL configuration; a few seconds, built once per test session and shared by the
modules that ask for it).

Its ``quality/quality.json`` is written here rather than computed (the quality checks take a minute even on
this run): the explorer reads whatever keys the file has, so the file holds the verdicts of the real layout
and a key of a layout to come (``controls``).  The pipeline's end-to-end test covers a computed one.
"""

import csv
import os

import numpy as np
import soundfile as sf

from .conftest import SMALL

CLASSES = ("vibrato", "trill", "tremolo", "bisbigliando", "flatterzunge")
METHODS = ("epsilon", "epsilon_plus", "gradient_x_input")
SUBSETS = ("training", "training", "training", "validation", "test", "test")
_BUILT = {}


def _note(c: int, i: int, sr: int, n: int):
    """An amplitude-modulated harmonic tone whose rate and depth depend on the class."""
    rng = np.random.default_rng(100 * c + i)
    t = np.arange(n) / sr
    f0 = 110.0 * 2 ** ((3 * c + 5 * i) % 24 / 12)
    rate = [220.0, 330.0, 480.0, 700.0, 1000.0][c] * (1 + 0.05 * i)
    depth = 0.3 + 0.12 * c
    y = sum(np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 6))
    y = y * (1 + depth * np.sin(2 * np.pi * rate * t)) + 0.01 * rng.standard_normal(n)
    return 0.3 * y / np.abs(y).max(), f0, rate


def _write_data(root):
    audio = root / "data" / "audio"
    audio.mkdir(parents=True)
    rows = []
    for c, name in enumerate(CLASSES):
        for i, subset in enumerate(SUBSETS):
            y, f0, rate = _note(c, i, SMALL.sr, SMALL.N)
            file = f"{c}{i}_{name}-é.wav"
            sf.write(audio / file, y, SMALL.sr, subtype="PCM_16")
            rows.append({"file_name": file, "label": name, "subset": subset, "f0_hz": f0, "modulation_hz": rate,
                         "pitch": f"P{c}{i}", "instrument": "tone"})
    meta = root / "data" / "meta.csv"
    with open(meta, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return meta, audio


#: verdicts of the quality file (True: pass, False: fail, None: not measured)
QUALITY_CHECKS = {"epsilon": {"deletion": True, "insertion": True, "model_randomisation": True, "ground_truth": None},
                  "epsilon_plus": {"deletion": True, "insertion": False, "model_randomisation": False,
                                   "ground_truth": None},
                  "gradient_x_input": {"deletion": False, "insertion": True, "model_randomisation": True,
                                       "ground_truth": None}}


def _write_quality(folder):
    import json
    folder.mkdir()
    result = {m: {"aopc": 0.1 * (i + 1), "aopc_above_random": 0.05 * i, "localisation": None,
                  "randomisation": {"steps": ["original", "fc2"], "abs_spearman_mean": [1.0, 0.2 * i]},
                  "controls": {"constant_map": {"localisation": 0.5 + 0.1 * i}}, "checks": QUALITY_CHECKS[m]}
              for i, m in enumerate(METHODS)}
    (folder / "quality.json").write_text(json.dumps(result), encoding="utf-8")


def build_run(root) -> dict:
    """Write the run into ``root`` (an existing empty folder) and return its paths."""
    from scatterxai.analysis.compare import CompareConfig, compare_relevance
    from scatterxai.explain import explain
    from scatterxai.features import extract_features
    from scatterxai.model import TrainConfig, train_model

    meta, audio = _write_data(root)
    features = root / "features.h5"
    extract_features(str(meta), str(audio), str(features), config=SMALL, device="cpu", classes=",".join(CLASSES),
                     progress=False)
    model = root / "models" / "s1s2"
    train_model(features, input="s1s2", out_dir=model, seed=0, device="cpu", progress=False,
                config=TrainConfig(max_epochs=3))
    relevance = root / "relevance.h5"
    explain(features, model_dir=model, out=relevance, methods=",".join(METHODS), subset="all", top_n=3,
            progress=False, device="cpu")
    compare_relevance(relevance, root / "compare", CompareConfig(max_pairs=10, emd_max_pairs=2), figures=False)
    _write_quality(root / "quality")
    return {"root": root, "features": features, "model": model, "relevance": relevance, "audio": audio,
            "meta": meta}


def shared_run(tmp_path_factory) -> dict:
    """The session's run (built on first use)."""
    if "run" not in _BUILT:
        root = tmp_path_factory.mktemp("explore-run")
        _BUILT["run"] = build_run(root)
    assert os.path.isfile(_BUILT["run"]["relevance"])
    return _BUILT["run"]


def read_js(path):
    """The JSON argument of the ``SXAI.<call>(…);`` a data file of the explorer holds, and the call's name."""
    import json
    text = open(path, encoding="utf-8").read().strip()
    assert text.startswith("SXAI.") and text.endswith(");"), text[:40]
    call, _, rest = text[len("SXAI."):].partition("(")
    return call, json.loads(rest[:-2])


def page_data(folder):
    """(header, {note id: note data}) of an explorer folder."""
    call, header = read_js(os.path.join(folder, "data", "index.js"))
    assert call == "load"
    notes = {}
    for n in header["notes"]:
        call, note = read_js(os.path.join(folder, "data", f"note-{n['id']:04d}.js"))
        assert call == "addNote" and note["id"] == n["id"]
        notes[n["id"]] = note
    return header, notes
