#!/usr/bin/env python
"""How deep is each technique's amplitude pattern?  Real recordings against the synthetic corpus (the
measurement behind the ``articulation`` realism factor, README "Studio notes or performances").

For each note, 3 s from 0.5 s: the Hilbert envelope of the whole signal, low-passed at 40 Hz and taken at
200 Hz, divided by its mean; the value is the largest component of its Hann-windowed spectrum between
rate / 1.25 and 1.25 × rate (the modulation rate), as an amplitude: 1 for a sinusoidal envelope that
touches zero, 0 for a steady one.  Real recordings: every file of a folder with a ``manifest.csv``
(``technique``, ``approx_modulation_hz``), at the listed rate.  Synthetic: the notes of
``plan_corpus(scale=--scale, seed=0)`` of 3.6 s or longer, at their true rate, per realism setting
(``--realism``, default ``none,articulation``).  Printed: 10th, 50th and 90th percentile per technique, and
for trills also at twice the rate ("trill at 2x rate": the level dips at each note change, up and down).

Usage::

    python experiments/articulation_am.py [--audio ../shared/real-audio] [--realism none,articulation]
                                          [--scale 0.05]

Without the folder only the synthetic notes are measured.
"""

import argparse
import collections
import csv
import os

import numpy as np
from real_transfer import DEFAULT_AUDIO  # the script's folder is on sys.path

SR = 44100


def am_at_rate(y: np.ndarray, sr: int, rate: float) -> float:
    """Amplitude of the envelope's component at ``rate`` (relative to the envelope's mean), 3 s from 0.5 s."""
    from scipy.signal import butter, hilbert, sosfiltfilt
    y = y[int(0.5 * sr):int(3.5 * sr)]
    env = sosfiltfilt(butter(4, 40, fs=sr, output="sos"), np.abs(hilbert(y)))[::max(sr // 200, 1)]
    e = env / env.mean() - 1.0
    w = np.hanning(len(e))
    spec = np.abs(np.fft.rfft(e * w)) * 2 / w.sum()
    f = np.fft.rfftfreq(len(e), 1 / (sr / max(sr // 200, 1)))
    return float(spec[(f > rate / 1.25) & (f < rate * 1.25)].max())


def real(audio: str) -> dict:
    import soundfile as sf
    out = collections.defaultdict(list)
    with open(os.path.join(audio, "manifest.csv"), newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            y, sr = sf.read(os.path.join(audio, row["file_name"]), always_2d=True)
            measure(out, row["technique"], y.mean(axis=1), sr, float(row["approx_modulation_hz"]))
    return out


def measure(out: dict, technique: str, y: np.ndarray, sr: int, rate: float) -> None:
    """The note's depth at its rate; a trill's also at twice its rate (one level dip per note change)."""
    out[technique].append(am_at_rate(y, sr, rate))
    if technique == "trill":
        out["trill at 2x rate"].append(am_at_rate(y, sr, 2.0 * rate))


def synthetic(realism: str, scale: float) -> dict:
    from scatterxai.data.synth import plan_corpus, render_note
    out = collections.defaultdict(list)
    for spec in plan_corpus(scale=scale, seed=0, realism=realism):
        if spec.duration_s >= 3.6:
            measure(out, spec.technique, render_note(spec), SR, spec.modulation_hz)
    return out


def show(name: str, values: dict) -> None:
    for technique, v in sorted(values.items()):
        p10, p50, p90 = np.percentile(v, [10, 50, 90])
        print(f"{name:28s} {technique:16s} n={len(v):3d}  p10 {p10:.2f}  median {p50:.2f}  p90 {p90:.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--audio", default=DEFAULT_AUDIO, help="real recordings with manifest.csv (default "
                   "$SCATTERXAI_REAL_AUDIO, else ../shared/real-audio beside the repository)")
    p.add_argument("--realism", default="none,articulation", help="realism settings, separated by ','")
    p.add_argument("--scale", type=float, default=0.05, help="corpus scale of the synthetic notes")
    args = p.parse_args(argv)
    if os.path.exists(os.path.join(args.audio, "manifest.csv")):
        show(f"real ({args.audio})", real(args.audio))
    else:
        print(f"no real recordings at {args.audio} (manifest.csv absent): synthetic notes only")
    for realism in args.realism.split(","):
        show(f"synthetic, realism {realism}", synthetic(realism, args.scale))


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
