"""A small study of one's own, as a new user would bring it: 3 classes with text labels (``am``, ``fm``,
``plain``), 22.05 kHz stereo notes of 3–8 s, a meta CSV with ``file_name`` and ``label`` only (the 6:2:2
split is drawn by extraction)."""

import os

import numpy as np
import soundfile as sf

SR = 22050
CLASSES = ("am", "fm", "plain")


def tone(kind: str, rng, duration_s: float, sr: int = SR) -> np.ndarray:
    """A harmonic tone (f0 200–800 Hz), amplitude-modulated (am), frequency-modulated (fm) at 4–12 Hz or
    steady (plain); stereo (n, 2) with a slightly different balance per channel."""
    t = np.arange(int(duration_s * sr)) / sr
    f0, rate = rng.uniform(200, 800), rng.uniform(4, 12)
    phase = 2 * np.pi * f0 * t
    if kind == "fm":
        phase += (0.03 * f0 / rate) * np.sin(2 * np.pi * rate * t)   # ±3 % vibrato
    y = sum(np.sin(h * phase) / h for h in (1, 2, 3))
    if kind == "am":
        y *= 1 + 0.8 * np.sin(2 * np.pi * rate * t)
    y *= np.minimum(1, np.minimum(t, t[-1] - t) / 0.05)              # 50 ms fades
    y = 0.2 * y / np.abs(y).max() + 1e-3 * rng.standard_normal(t.size)
    return np.stack([y, 0.8 * y], axis=1)


def write_study(root, *, per_class: int = 8, seed: int = 0, durations=(3.0, 8.0)) -> tuple:
    """Write ``root/audio/<class>/<class>_<i>.wav`` and ``root/meta.csv``; returns (meta CSV, audio root)."""
    rng = np.random.default_rng(seed)
    audio = os.path.join(os.fspath(root), "audio")
    rows = ["file_name,label"]
    for kind in CLASSES:
        os.makedirs(os.path.join(audio, kind), exist_ok=True)
        for i in range(per_class):
            name = f"{kind}/{kind}_{i:02d}.wav"
            sf.write(os.path.join(audio, name), tone(kind, rng, rng.uniform(*durations)), SR, subtype="PCM_16")
            rows.append(f"{name},{kind}")
    meta = os.path.join(os.fspath(root), "meta.csv")
    with open(meta, "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")
    return meta, audio
