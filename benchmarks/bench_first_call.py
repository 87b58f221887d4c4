"""First-call latency: ``scatterxai.scatter`` of one note in a fresh process, without and with the on-disk cache.

For each method ("fast", "kymatio") two fresh Python processes run one note (paper configuration unless
``--config small``) with the same cache directory, initially empty (one per method): the first builds
Kymatio's filter bank (and the fast path's plan) and stores them, the second reads them.  Each child
reports the time of its imports (numpy, torch, scatterxai.scattering.api) and of the ``scatter`` call
separately (wall-clock time, and the process's CPU time, which a loaded machine inflates less), and its
resident memory afterwards (Linux): a fast-path process that reads the plan from the cache never builds
Kymatio's filter bank (~300 MB for the paper configuration).  The issue's target is the second process's
``scatter`` time (≤ 2 s).  The coefficients of the two processes are compared bit for bit.  On a busy
machine, ``--threads 1`` avoids OpenMP threads spinning against other jobs (seen here: 5–10× slower).

Usage::

    python benchmarks/bench_first_call.py [--config paper|small] [--cache-dir DIR] [--threads N]

``--cache-dir`` defaults to a new temporary directory (removed afterwards); giving a directory that already
holds the cache measures two warm processes.  Last line:
``fast_cold=<s> fast_warm=<s> kymatio_cold=<s> kymatio_warm=<s> identical=<bool>``.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

CHILD = r"""
import sys, time
t0 = time.perf_counter()
import numpy as np
import torch
from scatterxai.scattering import PAPER_CONFIG, ScatteringConfig, api
if int(sys.argv[3]) > 0:
    torch.set_num_threads(int(sys.argv[3]))
config = PAPER_CONFIG if sys.argv[2] == "paper" else ScatteringConfig(N=2 ** 13, J=6, Q=(8, 2), T=2 ** 6)
x = np.random.default_rng(0).standard_normal(config.N)
t1, c1 = time.perf_counter(), time.process_time()
S = api.scatter(x, config, method=sys.argv[1], device="cpu").numpy()
t2, c2 = time.perf_counter(), time.process_time()
np.save(sys.argv[4], S)
try:
    rss = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS")) / 1024
except (OSError, StopIteration):
    rss = float("nan")
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {c2 - c1:.3f} {rss:.0f}")
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=["paper", "small"], default="paper", help="scattering configuration")
    p.add_argument("--cache-dir", default=None, help="cache directory (default: a new temporary one)")
    p.add_argument("--threads", type=int, default=0, help="torch threads in the children (0: torch's default)")
    args = p.parse_args(argv)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results, identical = {}, True
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("fast", "kymatio"):
            # one empty cache per method: the fast path's first process also stores Kymatio's filter bank
            env = {**os.environ, "SCATTERXAI_CACHE_DIR": args.cache_dir or os.path.join(tmp, f"cache-{method}"),
                   "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
            out = []
            for run in ("cold", "warm"):
                npy = os.path.join(tmp, f"{method}-{run}.npy")
                res = subprocess.run([sys.executable, "-c", CHILD, method, args.config, str(args.threads), npy],
                                     env=env, capture_output=True, text=True, check=True)
                t_import, t_scatter, cpu, rss = map(float, res.stdout.split()[-4:])
                print(f"{method:8s} {run} process: imports {t_import:6.2f} s, scatter of one note "
                      f"{t_scatter:6.2f} s (CPU time {cpu:6.2f} s), resident memory {rss:5.0f} MiB")
                results[f"{method}_{run}"] = t_scatter
                out.append(np.load(npy))
            identical &= bool(np.array_equal(out[0], out[1]))
    print(" ".join(f"{k}={v:.2f}" for k, v in results.items()) + f" identical={identical}")


if __name__ == "__main__":
    main()
