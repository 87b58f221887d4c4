#!/usr/bin/env python
"""Reproduce the paper's study on the embedded synthetic corpus (no licensed data needed).

What it reproduces
------------------
Wang, Lostanlen & Lagrange (ICASSP 2023) on synthetic stand-ins for SOL-PMT notes whose pitch and
modulation rate are known:

* Table 1 — per-class test accuracy of the convnet on first-order scattering S1 alone vs S1+S2;
* the LRP statistics — kurtosis of the local relevance maps for LRP-ε and LRP-[ε,z+], the share of
  relevance on S1, and (new, possible only with ground truth) how often the strongest second-order
  relevance lies within ±1 octave of the true modulation rate, and where it lies when it does not;
* Fig. 1 (one test note per class: spectrogram, scattering, LRP maps) and Fig. 2 (class means and top-5
  aggregated relevance).

Numbers to expect (seed 0, measured with this version on 2 CPU cores; README "Results")
---------------------------------------------------------------------------------------
* ``--scale 0.3`` (the default: 1,789 notes, ~11 min with every analysis, default ``--realism
  noise,mic,articulation,players,common``): seed 0 gives S1+S2 macro accuracy 97.04 % (torch's default two
  threads here) against 48.14 % for S1 alone (the paper, on real SOL-PMT: 98.84 % vs 80.60 %); seeds 0–4
  (two threads) give 95.0–97.0 % for S1+S2 and 46.0–49.0 % for S1; on another CPU (AVX-512 and AMX) seed 0
  gives 95.86 % and 45.04 %, seeds 0–4 94.0–97.5 % and 45.0–53.1 % (the last bits of features and weights
  depend on the processor).  LRP-[ε,z+] is sharper than LRP-ε, as in
  the paper; S1 receives ~5 % of the relevance; the top S2 relevance lies within ±1 octave of the true rate
  for 73–88 % of the test notes.
  ``python experiments/seed_ranges.py --run OUT`` measures such ranges (the README has them per class).
* ``--scale 0.1`` (556 notes, ~2 min for the paper's stages; plain studio corpus) is too small for the small
  classes (11 vibrato and 17 bisbigliando training notes): S1+S2 reaches 78–91 % macro accuracy depending on
  the seed.
* ``--scale 1`` is the full SOL-PMT size profile (5,564 notes; plain studio corpus, 19 min on 2 cores for the
  paper's stages, mostly extraction, measured before the analysis stages were added): S1 60.92 %, S1+S2
  99.11 %; kurtosis LRP-ε 10.9 ± 16.6, LRP-[ε,z+] 14.0 ± 16.4; localisation 74.9 % and 79.1 %.

Usage::

    python experiments/synthetic_study.py --out results/synthetic [--scale 0.3] [--seed 0] [--device auto]
                                          [--figures figures]

``--figures DIR`` also copies the run's figures into DIR as small palette PNGs (how the repository's
``figures/`` is made).
"""

import argparse
import os

from scatterxai.pipeline import DEMO_SCALE, run


def copy_figures(src_dir: str, dst_dir: str) -> None:
    """Copy every PNG of ``src_dir`` to ``dst_dir`` with a 256-colour palette (a third of the size)."""
    from PIL import Image  # pillow comes with matplotlib
    os.makedirs(dst_dir, exist_ok=True)
    for name in sorted(os.listdir(src_dir)):
        if name.endswith(".png"):
            image = Image.open(os.path.join(src_dir, name)).convert("RGB")
            image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
                os.path.join(dst_dir, name), optimize=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/synthetic")
    p.add_argument("--scale", type=float, default=DEMO_SCALE,
                   help=f"fraction of the SOL-PMT counts (default {DEMO_SCALE}; 1.0 = full size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--figures", default=None, metavar="DIR", help="also copy the figures (small PNGs) here")
    args = p.parse_args(argv)
    paths = run(args.out, scale=args.scale, seed=args.seed, device=args.device, max_epochs=args.max_epochs)
    if args.figures:
        copy_figures(paths["figures"], args.figures)
    print(open(paths["report"], encoding="utf-8").read())
    return 0


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
