#!/usr/bin/env python
"""Reproduce the paper's SOL-PMT study on real recordings (needs a licensed copy of SOL 0.9HQ).

What it reproduces
------------------
Wang, Lostanlen & Lagrange, "Explainable audio classification of playing techniques with layer-wise
relevance propagation", ICASSP 2023, on the published split (``datasets/SOL-0.9HQ-PMT_meta.csv``, from the
companion repository changhongw/examod: 5,564 notes, training 3,315 / validation 1,098 / test 1,151).

Numbers to expect (paper, SOL-PMT test split)
---------------------------------------------
Table 1, per-class accuracy (%):

=========  =======  =====  =======  ============  ============
input      vibrato  trill  tremolo  bisbigliando  flatterzunge
=========  =======  =====  =======  ============  ============
S1         72.50    70.33  92.23    88.33         79.61
S1+S2      97.50    98.56  99.80    98.33         100.0
=========  =======  =====  =======  ============  ============

Kurtosis of the local maps: LRP-ε 13.82 ± 8.81, LRP-[ε,z+] 19.22 ± 13.72.  Relevance concentrates at the
technique's modulation rate (≈ 8 Hz for trills, ≈ 32 Hz for flatterzunge) across pitch, and S1 gets little
relevance when S2 is present.  Expect small differences: training is seeded but not bit-identical to the
companion code (PyTorch version, early-stopping details), and Zennit 0.5.1 merges BatchNorm slightly
differently from 1.0 (recorded in relevance.h5).

Cost: extraction of 5,564 notes dominates: ~12 minutes on 2 CPU cores with the package's fast scattering
path (~0.13 s per note; Kymatio itself needs ~0.5–0.7 s per note with torch 2.15, up to 2.6 s with older
builds).  The run is resumable: interrupt and re-run the same command.

Usage::

    python experiments/sol_pmt_study.py --sol-root /data/SOL-0.9HQ --out results/sol_pmt [--device auto]

``--sol-root`` is the directory of the SOL 0.9HQ audio in any nesting (files are found by base name).
"""

import argparse

from scatterxai.data import SOL_META_CSV
from scatterxai.pipeline import run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sol-root", required=True, help="directory holding the SOL 0.9HQ audio files")
    p.add_argument("--meta", default=SOL_META_CSV, help="meta CSV (default: the published SOL-PMT split)")
    p.add_argument("--out", default="results/sol_pmt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    paths = run(args.out, sol_root=args.sol_root, meta=args.meta, seed=args.seed, device=args.device)
    print(open(paths["report"], encoding="utf-8").read())
    return 0


if __name__ == "__main__":
    from scatterxai.cli import run_script
    run_script(main)
