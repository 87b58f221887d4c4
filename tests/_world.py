"""A small study with one input of every kind, for the tests that run every command of the CLI table:
a corpus of 15 short WAV notes (three per class) and its meta CSV, their features (SMALL configuration),
S1+S2 and S1 models trained for one epoch, a relevance file, a descriptors file.  Built once per session
(about 20 s); tests copy what they write over."""

import hashlib
import os

import numpy as np
import soundfile as sf

from .conftest import SMALL, train_one_epoch

CLASSES = ("vibrato", "trill", "tremolo", "bisbigliando", "flatterzunge")


def _note(i: int, sr: int, n: int) -> np.ndarray:
    t = np.arange(n) / sr
    f0, rate = 220.0 * 2 ** (i / 7), 4.0 + 3 * (i % 5)
    return (0.3 * (1 + 0.5 * np.sin(2 * np.pi * rate * t)) * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def make_world(root) -> dict:
    """Write the study under ``root``; returns the paths by input kind."""
    from scatterxai.analysis.describe.run import DescribeConfig, describe_notes
    from scatterxai.explain import explain
    from scatterxai.features import extract_features

    root = str(root)
    audio = os.path.join(root, "corpus", "audio")
    os.makedirs(audio)
    rows = ["file_name,label,subset,instrument"]
    for i in range(15):
        sf.write(os.path.join(audio, f"n{i}.wav"), _note(i, SMALL.sr, SMALL.N), SMALL.sr)
        rows.append(f"n{i}.wav,{CLASSES[i % 5]},{'training' if i < 8 else 'validation' if i < 11 else 'test'},"
                    f"{('Violin', 'Flute')[i % 2]}")
    meta = os.path.join(root, "corpus", "meta.csv")
    with open(meta, "w") as fh:
        fh.write("\n".join(rows) + "\n")
    features = os.path.join(root, "study", "features.h5")
    os.makedirs(os.path.dirname(features))
    extract_features(meta, audio, features, config=SMALL, device="cpu", progress=False)
    models = {inp: train_one_epoch(features, os.path.join(root, "models", inp), input=inp) for inp in ("s1s2", "s1")}
    relevance = os.path.join(root, "study", "relevance.h5")
    explain(features, model_dir=models["s1s2"], out=relevance, methods="epsilon,epsilon_plus", subset="all",
            device="cpu", batch_size=4, progress=False)
    relevance_s1 = os.path.join(root, "study", "relevance_s1.h5")
    explain(features, model_dir=models["s1"], out=relevance_s1, methods="epsilon_plus", subset="all", device="cpu",
            batch_size=4, progress=False)
    descriptors = os.path.join(root, "study", "descriptors.h5")
    describe_notes(meta, audio, descriptors, features=features, config=DescribeConfig(max_seconds=0.2),
                   progress=False)
    return {"meta_csv": meta, "audio_root": audio, "audio": os.path.join(audio, "n0.wav"), "features": features,
            "model": models["s1s2"], "model_s1": models["s1"], "relevance": relevance, "relevance_s1": relevance_s1,
            "descriptors": descriptors, "root": root}


def tree_digest(path) -> str:
    """sha256 of a file, or of every file below a folder (names and bytes)."""
    h = hashlib.sha256()
    if os.path.isfile(path):
        with open(path, "rb") as fh:
            h.update(fh.read())
        return h.hexdigest()
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(folder, name)
            h.update(os.path.relpath(full, path).encode("utf-8", "surrogateescape"))
            with open(full, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()
