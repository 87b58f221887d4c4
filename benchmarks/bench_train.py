"""Seconds per training epoch of the convnet, S1 (74 channels) versus S1+S2 (1,200 channels), side by side.

Runs :func:`scatterxai.model.train_model` for a few epochs on each input, alternating the two in rounds so
that the load of a shared machine affects both alike; reports the median epoch time of each (from the
training history, validation pass included) and their ratio.  Without ``--features`` the data are random
features of the paper's shape (1,200 paths × 32 frames) with the split sizes of the synthetic corpus at
scale 0.1 (330 / 112 examples), which is enough for timing: the cost does not depend on the values.

Usage::

    python benchmarks/bench_train.py [--features FEATURES.h5] [--epochs 3] [--rounds 2] [--device cpu]

Last line: ``s1_s_per_epoch=<v> s1s2_s_per_epoch=<v> ratio=<v>``.
"""

import argparse
import os
import statistics
import sys
import tempfile
import warnings

import numpy as np
import torch

from scatterxai.features import write_features
from scatterxai.model import TrainConfig, train_model
from scatterxai.scattering import PAPER_CONFIG, path_table


def random_features(path, *, n_train=330, n_val=112, n_test=112, seed=0):
    """Paper-shaped random features (gamma noise) with training/validation/test rows, 5 balanced classes."""
    table = path_table(PAPER_CONFIG)
    rng = np.random.default_rng(seed)
    n = n_train + n_val + n_test
    S = rng.gamma(2.0, 1.0, size=(n, len(table), table.n_frames)).astype(np.float32)
    subset = np.array(["training"] * n_train + ["validation"] * n_val + ["test"] * n_test, dtype=object)
    examples = {"file_name": np.array([f"r{i:04d}.wav" for i in range(n)], dtype=object),
                "label": np.arange(n) % 5, "subset": subset}
    write_features(path, S, examples, PAPER_CONFIG)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--features", default=None, help="features HDF5 (default: random paper-shaped features)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per training run")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds of (S1, S1+S2)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = p.parse_args(argv)
    # no early stop: every run lasts exactly --epochs epochs
    config = TrainConfig(max_epochs=args.epochs, patience=args.epochs)
    times = {"s1": [], "s1s2": []}
    with tempfile.TemporaryDirectory() as tmp:
        features = args.features or random_features(os.path.join(tmp, "features.h5"))
        for r in range(args.rounds):
            for input in ("s1", "s1s2"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = train_model(features, input=input, out_dir=os.path.join(tmp, f"{input}{r}"),
                                        seed=r, device=args.device, progress=False, config=config,
                                        threads=args.threads)
                epochs = [h["seconds"] for h in model.config["history"]]
                times[input] += epochs
                print(f"round {r + 1}: {input:5s} {model.config['n_params']:>9,} params  "
                      f"{model.config['n_training']} training examples  epochs "
                      + " ".join(f"{t:.2f}" for t in epochs) + " s", flush=True)
    s1, s1s2 = statistics.median(times["s1"]), statistics.median(times["s1s2"])
    print(f"device {args.device}, {model.config['torch_threads']} torch threads, torch {torch.__version__}")
    print(f"s1_s_per_epoch={s1:.3f} s1s2_s_per_epoch={s1s2:.3f} ratio={s1s2 / s1:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
