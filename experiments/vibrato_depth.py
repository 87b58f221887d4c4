#!/usr/bin/env python
"""How deep are real vibratos?  The peak pitch deviation (semitones) of each vibrato recording of a folder
with a ``manifest.csv``, beside the synthetic corpus' ranges (the measurement behind
:data:`scatterxai.data.synth.realism.SUNG_DEPTH_ST`).

Each file: 2 s from 0.5 s, mono, resampled to 22,050 Hz; harmonics 1–4 of the manifest's f0
(``approx_f0_hz``) isolated by band-pass filters (±0.3 f0), each one's instantaneous frequency (analytic
signal, 30-Hz low-pass) in semitones; the deviation is the largest Hann-windowed spectral component between
3.5 and 8 Hz, as a sinusoid's peak amplitude, the median over the harmonics.  (A pitch tracker such as pYIN
averages the pitch over its frame, a good part of a vibrato cycle, and its octave jumps spoil some files.)

Usage::

    python experiments/vibrato_depth.py [--audio ../shared/real-audio]

Without the folder it says so and exits 0.
"""

import argparse
import os

import numpy as np
from real_transfer import DEFAULT_AUDIO, read_manifest  # the script's folder is on sys.path

SR = 22050
HOP = 32


def _peak(st, step_s):
    """(rate Hz, peak amplitude) of the strongest 3.5–8 Hz component of ``st`` (zero-padded Hann DFT)."""
    w, n = np.hanning(len(st)), 8 * len(st)
    X, fr = np.fft.rfft((st - st.mean()) * w, n), np.fft.rfftfreq(n, step_s)
    k = np.argmax(np.abs(X) * ((fr > 3.5) & (fr < 8.0)))
    return float(fr[k]), float(2 * np.abs(X[k]) / w.sum())


def peak_deviation(y, f0_hz, sr=SR, harmonics=(1, 2, 3, 4)):
    """(rate Hz, peak deviation semitones) of the strongest 3.5–8 Hz pitch oscillation of ``y``: the median
    over ``harmonics`` of each harmonic's instantaneous frequency (band ±0.3·f0 around k·f0, analytic
    signal, 30-Hz low-pass), in semitones."""
    from scipy.signal import butter, hilbert, sosfiltfilt
    out = []
    for k in harmonics:
        lo, hi = (k - 0.3) * f0_hz, (k + 0.3) * f0_hz
        if hi >= 0.45 * sr:
            break
        band = sosfiltfilt(butter(4, [lo, hi], btype="band", fs=sr, output="sos"), y)
        inst = np.diff(np.unwrap(np.angle(hilbert(band)))) * sr / (2 * np.pi)
        inst = sosfiltfilt(butter(2, 30.0, fs=sr, output="sos"), inst)[int(0.1 * sr):-int(0.1 * sr)]
        st = 12 * np.log2(np.clip(inst, lo, hi) / (k * f0_hz))[::HOP]
        out.append(_peak(st, HOP / sr))
    rates, devs = np.array(out).T
    return float(np.median(rates)), float(np.median(devs))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--audio", default=DEFAULT_AUDIO, help="real recordings with manifest.csv (default "
                   "$SCATTERXAI_REAL_AUDIO, else ../shared/real-audio beside the repository)")
    args = p.parse_args(argv)
    from scatterxai.data.synth.corpus import VIBRATO_DEPTH_ST
    from scatterxai.data.synth.realism import NATURAL_DEPTH_ST, SUNG_DEPTH_ST

    def span(r):
        return f"{r[0]:g}–{r[1]:g}"
    print(f"synthetic vibrato peak deviation: instruments {span(VIBRATO_DEPTH_ST)} semitone "
          f"({span(NATURAL_DEPTH_ST)} with the `vibrato` factor), sung {span(SUNG_DEPTH_ST)}")
    manifest = os.path.join(args.audio, "manifest.csv")
    if not os.path.isfile(manifest):
        print(f"real-audio folder {os.path.abspath(args.audio)} has no manifest.csv: nothing to measure")
        return 0
    from scatterxai.audio import load_signal
    for r in read_manifest(args.audio):    # columns and files checked there
        if r["technique"] != "vibrato":
            continue
        if not np.isfinite(r["f0_hz"]):
            print(f"  (no approx_f0_hz: skipped)  {r['file_name']}")
            continue
        y = load_signal(r["path"], SR, start_s=0.5, max_s=2.0)
        rate, dev = peak_deviation(y, r["f0_hz"])
        print(f"{dev:5.2f} st at {rate:4.1f} Hz  {r['instrument']:35s} {r['file_name']}")
    return 0


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
