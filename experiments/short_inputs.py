#!/usr/bin/env python
"""How a signal shorter than the window is lengthened, and what that does to the scattering (issue #21).

What it measures
----------------
For synthetic test sounds (a harmonic tone, 12 partials at 1/k, at f0 = 131, 262 and 880 Hz: steady,
with vibrato 5.5 Hz ±35 cents, with tremolo 12 Hz depth 0.5, steady with noise at −30 dB), a 1.5-s excerpt
cut from 1.0 s of an 8-s sound is lengthened to the paper's window (N = 2^18 samples at 44.1 kHz) by each
candidate preparation, scattered with the paper's configuration, and compared with the same sound filling
the window: the S2 energy at λ2 = 2–40 Hz (and 8–40 Hz, the tremolo and flatterzunge rates), summed over
paths and frames and divided by the S1 energy, as a multiple of the long sound's.  An abrupt end reads as
amplitude modulation at every λ2; 1.00× means the preparation adds none.  Also a complete short note
(1.5 s, 30-ms attack, decaying by 50 dB; a 3-s vibrato note likewise), whose reference is the note
zero-padded — it ends by itself — so that a preparation must leave it alone.

Candidates: zero padding at the end (the package before issue 21); raised-cosine fades of 100 and 200 ms at
both ends, then zero padding; mirror extension (reflecting the excerpt, as Kymatio pads a window's ends);
:func:`scatterxai.audio.continue_signal` (what :func:`scatterxai.audio.prepare` does now: a crossfaded loop
from the best-matching point, scaled to keep the end's level trend).  Every signal is then standardised.

Usage::

    python experiments/short_inputs.py [--f0 131 262 880] [--out results/short_inputs.md]

Numbers to expect (README, "Short and long recordings"): zero padding 12–31× (steady tone) and 1.6–1.8×
(vibrato) at 2–40 Hz; fades of 200 ms 6–16×; mirror ≈ 4×; the continuation 1.00× (steady, vibrato,
tremolo), 1.02–1.05× with noise, 0.99× for a complete note.  ≈ 40 signals of 2^18 samples: a few minutes
on 2 cores (more on a busy machine).
"""

import argparse
import sys

import numpy as np

SR, N = 44100, 2 ** 18


def tone(dur_s, f0, *, vib=(0.0, 0.0), am=(0.0, 0.0), noise=0.0, seed=1):
    """A harmonic tone (12 partials, 1/k, random phases) with optional vibrato, tremolo and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(dur_s * SR)) / SR
    inst = f0 * 2 ** (vib[1] / 1200 * np.sin(2 * np.pi * vib[0] * t))
    phase = 2 * np.pi * np.cumsum(inst) / SR
    y = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 13))
    y = y * (1 + am[1] * np.sin(2 * np.pi * am[0] * t))
    return y + noise * y.std() * rng.standard_normal(t.size)


def note(dur_s, f0, **kw):
    """A complete note: 30-ms attack, then a decay by 50 dB over its duration."""
    y = tone(dur_s, f0, **kw)
    t = np.arange(y.size) / SR
    return y * np.minimum(t / 0.03, 1) * 10 ** (-2.5 * t / dur_s)


def candidates():
    from scatterxai.audio import continue_signal, fix_length, standardize

    def faded(length_s):
        def prep(y):
            n = int(length_s * SR)
            w = np.ones(y.size)
            ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
            w[:n], w[-n:] = ramp, ramp[::-1]
            return standardize(fix_length(y * w, N))
        return prep

    return {"zero padding": lambda y: standardize(fix_length(y, N)),
            "fades 100 ms": faded(0.1), "fades 200 ms": faded(0.2),
            "mirror": lambda y: standardize(np.pad(y, (0, N - y.size), mode="symmetric")),
            "continuation": lambda y: standardize(continue_signal(y, N, sr=SR))}


def cases(f0s):
    """(name, reference signal (N samples, prepared), short signal)."""
    from scatterxai.audio import fix_length, standardize
    out = []
    for f0 in f0s:
        for name, kw in (("steady", {}), ("vibrato", {"vib": (5.5, 35.0)}), ("tremolo", {"am": (12.0, 0.5)}),
                         ("steady + noise", {"noise": 0.03})):
            y = tone(8.0, f0, **kw)
            out.append((f"{name}, {f0:g} Hz", standardize(y[:N]), y[SR:SR + int(1.5 * SR)]))
        for name, y in (("complete note 1.5 s", note(1.5, f0)), ("complete vibrato note 3 s",
                                                                   note(3.0, f0, vib=(5.5, 35.0)))):
            out.append((f"{name}, {f0:g} Hz", standardize(fix_length(y, N)), y))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--f0", type=float, nargs="+", default=[131.0, 262.0, 880.0])
    p.add_argument("--out", default=None, help="also write the table to this Markdown file")
    args = p.parse_args(argv)
    import scatterxai as sx
    from scatterxai._util.markdown import md_table
    config = sx.ScatteringConfig()
    table = sx.path_table(config)
    s1 = table.order == 1
    bands = {lo: (table.order == 2) & (table.lambda2_hz >= lo) & (table.lambda2_hz <= 40.0) for lo in (2.0, 8.0)}
    preps = candidates()
    rows = []
    for name, ref, short in cases(args.f0):
        x = np.stack([ref] + [prep(short) for prep in preps.values()]).astype(np.float32)
        S = sx.scatter(x, config).cpu().numpy().astype(np.float64)
        e1 = S[:, s1].sum(axis=(1, 2))
        ratio = {lo: S[:, b].sum(axis=(1, 2)) / e1 for lo, b in bands.items()}
        rows.append([name] + [f"{ratio[2.0][i] / ratio[2.0][0]:.2f}× / {ratio[8.0][i] / ratio[8.0][0]:.2f}×"
                              for i in range(1, len(preps) + 1)])
        print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    text = ("S2 energy at λ2 = 2–40 Hz / 8–40 Hz (per unit of S1 energy) of a 1.5-s excerpt lengthened to "
            "2^18 samples, as a multiple of the same sound filling the window (complete notes: of the note "
            "zero-padded)\n\n" + md_table(["sound"] + list(preps), rows))
    print(text)
    if args.out:
        from scatterxai._util.fs import atomic_path, prepare_output
        out = prepare_output(args.out)
        with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
