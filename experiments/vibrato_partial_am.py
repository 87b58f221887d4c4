#!/usr/bin/env python
"""How strongly do a vibrato's partials swell and fade with the frequency modulation?  Real recordings
against synthetic vibrato notes (the timbre measurement of the README's realism section).

For each note: the partials 2–9 (below 8 kHz) are isolated (±0.4 f0 around k·f0), their RMS envelopes
taken at 100 Hz, and the largest oscillation of each envelope between 0.8× and 2.2× the vibrato rate is
divided by the envelope's mean; the note's value is the median over its partials.  Real recordings: the
vibrato files of a folder with a ``manifest.csv`` (``technique``, ``approx_f0_hz``,
``approx_modulation_hz``), 2.5 s from 0.5 s.  Synthetic: three 3.5-s vibrato notes each of seven
instruments, per realism setting (``--realism``, default ``none,timbre``).

Usage::

    python experiments/vibrato_partial_am.py [--audio ../shared/real-audio] [--realism none,timbre]

Without the folder only the synthetic notes are measured.
"""

import argparse
import csv
import os

import numpy as np
from real_transfer import DEFAULT_AUDIO  # the script's folder is on sys.path

SR = 44100
INSTRUMENTS = (("Violin", "D5"), ("Violoncello", "D3"), ("Oboe", "A4"), ("Bassoon", "D3"),
               ("Tenor-Trombone", "F3"), ("Flute", "A5"), ("Alto-Sax", "A4"))


def partial_am(y, f0, rate):
    """Median over partials 2–9 of (envelope oscillation near the vibrato rate) / (envelope mean)."""
    X, fr = np.fft.rfft(y), np.fft.rfftfreq(len(y), 1 / SR)
    out = []
    for k in range(2, 10):
        if (k + 0.4) * f0 > 8000:
            break
        band = np.fft.irfft(X * ((fr > (k - 0.4) * f0) & (fr < (k + 0.4) * f0)), len(y))
        m = len(band) // 441
        env = np.sqrt((band[:m * 441] ** 2).reshape(m, 441).mean(axis=1))
        w = np.hanning(len(env))
        E = 2 * np.abs(np.fft.rfft((env - env.mean()) * w)) / w.sum()
        fe = np.fft.rfftfreq(len(env), 0.01)
        out.append(E[(fe > 0.8 * rate) & (fe < 2.2 * rate)].max() / env.mean())
    return float(np.median(out))


def real_values(audio):
    from scatterxai.audio import load_signal
    values = {}
    with open(os.path.join(audio, "manifest.csv"), newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["technique"] == "vibrato":
                y = load_signal(os.path.join(audio, r["file_name"]), SR, start_s=0.5, max_s=2.5)
                values[r["file_name"]] = partial_am(y, float(r["approx_f0_hz"]), float(r["approx_modulation_hz"]))
    return values


def synthetic_values(realism):
    from scatterxai.data.synth import make_note_spec, render_note
    values = {}
    for instrument, pitch in INSTRUMENTS:
        v = []
        for index in range(3):
            s = make_note_spec(instrument, "vibrato", pitch=pitch, seed=9, index=index, duration_s=3.5,
                               realism=realism)
            y = render_note(s)
            a, b = int((s.onset_s + s.mod_start_s + s.ramp_s + 0.2) * SR), int((s.onset_s + 3.4) * SR)
            v.append(partial_am(y[a:b], s.f0_hz, s.modulation_hz))
        values[instrument] = float(np.median(v))
    return values


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--audio", default=DEFAULT_AUDIO, help="real recordings with manifest.csv (default "
                   "$SCATTERXAI_REAL_AUDIO, else ../shared/real-audio beside the repository)")
    p.add_argument("--realism", default="none,timbre", help="realism settings, separated by ';' or ','")
    args = p.parse_args(argv)
    if os.path.isfile(os.path.join(args.audio, "manifest.csv")):
        real = real_values(args.audio)
        for name, v in real.items():
            print(f"real       {v:.3f}  {name}")
        print(f"real: median {np.median(list(real.values())):.3f} over {len(real)} files "
              f"({min(real.values()):.2f}–{max(real.values()):.2f})")
    else:
        print(f"real-audio folder {os.path.abspath(args.audio)} is absent: synthetic notes only")
    for realism in args.realism.replace(";", ",").split(","):
        values = synthetic_values(realism)
        print(f"synthetic, realism {realism}: median {np.median(list(values.values())):.3f} "
              f"({min(values.values()):.2f}–{max(values.values()):.2f}); " +
              ", ".join(f"{k} {v:.2f}" for k, v in values.items()))
    return 0


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
