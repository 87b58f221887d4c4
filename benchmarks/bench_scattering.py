"""Scattering examples per second: Kymatio one example at a time versus the package's fast path, side by side.

(a) Kymatio's own ``Scattering1D`` (the cached ``ScatteringTorch1D`` of :mod:`scatterxai.scattering`)
applied to one (1, N) example at a time, as the companion code does; (b) the package's extraction path,
``scatterxai.scattering.scatter(x, config, method="fast", batch_size=B)``.  Both run on the same
realistic signals — harmonic tones (1–10 partials, f0 55–1760 Hz) with vibrato (FM) or tremolo (AM) at
4–30 Hz, an attack/release envelope and white noise 20–40 dB below, prepared like audio files
(:func:`scatterxai.audio.prepare`: fixed length, divided by the standard deviation).  Batches alternate
which method runs first, so that the load of a shared machine affects both alike; the speed-up is the
ratio of total times.  Filter construction is timed separately and excluded.  On a machine whose cores
are busy with other jobs, OpenMP threads spin against them and Kymatio's many small operations slow
down far more than the fast path's (seen here: Kymatio 3.1 s/example with one thread, 12–24 s with two);
``--threads 1`` then gives the most reproducible ratio.

Agreement: for every example and kept path (1,200 on the paper configuration),
``rel = max_t |fast - kymatio| / max(max_t |kymatio|, 1e-6 · max_{path, t} |kymatio|)``: the difference
relative to the path's own peak, except that paths weaker than a millionth of the example's strongest
coefficient are measured against that millionth.  Why the floor: both implementations run in float32, whose
FFTs of a whole signal carry rounding errors of ~1e-7 of the transform's largest value; paths ~1e-7 below
the example's strongest coefficient are therefore rounding noise in *both* implementations (Kymatio's own
float32 output is ~1e-4 away from its float64 output on them), and no float32 code can agree with another on
them.  The reported ``max_rel_diff`` is the maximum over examples and paths; the same measure without the
floor (``strict``), its 99th percentile and median are printed too.  Unless ``--no-float64-check``, the
example with the largest difference is also transformed by Kymatio and by the fast path in float64, and
the same measure compares each float32/float64 result with Kymatio's float64 one: this separates the
float32 rounding of each implementation (which dominates ``max_rel_diff`` on the weakest paths, ~1e-7
below an example's strongest coefficient) from any difference of method.

Peak memory: measured in a fresh child process per method (so that neither inherits the other's heap):
after the filters are built, the increase of the resident set size while transforming one batch (Kymatio:
one example; Linux ``VmHWM``, reset through ``/proc/self/clear_refs``), next to the resident size of the
built process (filters, Python, torch); on CUDA, the allocator's peak.

Usage::

    python benchmarks/bench_scattering.py [--config paper|small] [--n-examples 24] [--batch-size 8]
                                          [--device cpu] [--threads N] [--seed 0] [--no-float64-check]

Last line: ``speedup=<fast examples/s ÷ Kymatio examples/s> max_rel_diff=<value>``.
"""

import argparse
import copy
import ctypes
import gc
import subprocess
import sys
import time

import numpy as np
import torch

from scatterxai._util.device import resolve_device
from scatterxai.audio import prepare
from scatterxai.scattering import PAPER_CONFIG, ScatteringConfig, get_scattering, path_table, scatter
from scatterxai.scattering.kymatio import kymatio_module

CONFIGS = {"paper": PAPER_CONFIG, "small": ScatteringConfig(N=2 ** 13, J=6, Q=(8, 2), T=2 ** 6)}


def signals(n: int, config: ScatteringConfig, seed: int = 0) -> np.ndarray:
    """``n`` prepared notes [shape=(n, N), float32]: harmonic tones with FM or AM, envelope and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(config.N) / config.sr
    out = []
    for i in range(n):
        f0 = 55.0 * 2 ** rng.uniform(0, 5)
        rate = rng.uniform(4, 30)
        n_partials = int(rng.integers(1, 11))
        if i % 2 == 0:   # vibrato: up to half a semitone of FM
            depth = f0 * (2 ** (rng.uniform(0.1, 0.5) / 12) - 1)
            phase = 2 * np.pi * f0 * t + depth / rate * np.sin(2 * np.pi * rate * t)
            am = 1.0
        else:            # tremolo: deep AM
            phase = 2 * np.pi * f0 * t
            am = 1 + rng.uniform(0.3, 0.9) * np.sin(2 * np.pi * rate * t)
        partials = [h for h in range(1, n_partials + 1) if h * f0 < config.sr / 2]
        y = sum(np.sin(h * phase + rng.uniform(0, 2 * np.pi)) / h for h in partials) * am
        env = np.minimum(1, t / 0.05) * np.minimum(1, np.maximum(0, (t[-1] - t) / 0.3))
        y = y * env
        y = y + y.std() * 10 ** (-rng.uniform(20, 40) / 20) * rng.standard_normal(y.size)
        out.append(prepare(y, config.sr, config))
    return np.stack(out)


def _rss_mib(key: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process in MiB (Linux; NaN elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def memory_probe(method: str, config: ScatteringConfig, batch_size: int, device: torch.device) -> str:
    """Run one batch with ``method`` in this (fresh) process; return ``peak_mib=<v> resident_mib=<v>``.

    The peak is measured after the filters are built and freed memory is returned to the system, as the
    increase of the resident set (``VmHWM`` reset through ``/proc/self/clear_refs``) or, on CUDA, of the
    allocator's peak.
    """
    x = signals(batch_size, config)
    if method == "kymatio":
        module = kymatio_module(config)
        if device.type != "cpu":
            module = copy.deepcopy(module).to(device)
    else:
        get_scattering(config, device=device, method="fast")
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device) / 2 ** 20
    else:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")   # VmHWM := VmRSS
        except OSError:
            pass
        base = _rss_mib("VmRSS")
    with torch.no_grad():
        if method == "kymatio":
            for row in x:
                module(torch.as_tensor(row[None], device=device))
        else:
            scatter(x, config, device=device, method="fast", batch_size=batch_size)
    peak = torch.cuda.max_memory_allocated(device) / 2 ** 20 if device.type == "cuda" else _rss_mib("VmHWM")
    return f"peak_mib={peak - base:.1f} resident_mib={base:.1f}"


def peak_memory(method: str, args) -> str:
    """:func:`memory_probe` in a child process, so that neither method inherits the other's heap."""
    cmd = [sys.executable, __file__, "--memory-probe", method, "--config", args.config,
           "--batch-size", str(1 if method == "kymatio" else args.batch_size), "--device", args.device]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    lines = res.stdout.strip().splitlines()
    if res.returncode or not lines or not lines[-1].startswith("peak_mib="):
        return f"unavailable ({res.stderr.strip().splitlines()[-1:] or res.returncode})"
    values = dict(item.split("=") for item in lines[-1].split())
    return f"{float(values['peak_mib']):.0f} MiB above {float(values['resident_mib']):.0f} MiB resident"


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


#: paths weaker than this fraction of the example's strongest coefficient are float32 rounding noise
FLOOR = 1e-6


def relative_difference(S, S_ref, floor: float = FLOOR) -> np.ndarray:
    """max_t |S - S_ref| / max(max_t |S_ref|, floor · max_{path,t} |S_ref|) per (example, path) [shape=(K, C)]."""
    S, S_ref = np.asarray(S, dtype=np.float64), np.asarray(S_ref, dtype=np.float64)
    peak = np.abs(S_ref).max(-1)
    scale = np.maximum(peak, floor * peak.max(-1, keepdims=True))
    return np.abs(S - S_ref).max(-1) / np.maximum(scale, np.finfo(float).tiny)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", choices=sorted(CONFIGS), default="paper")
    p.add_argument("--n-examples", type=int, default=24,
                   help="examples transformed by each method (in batches whose order alternates)")
    p.add_argument("--batch-size", type=int, default=8, help="batch size of the fast path")
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-float64-check", dest="float64_check", action="store_false",
                   help="skip the float64 comparison on the example with the largest difference")
    p.add_argument("--memory-probe", choices=("kymatio", "fast"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.n_examples < 1 or args.batch_size < 1:
        p.error("--n-examples and --batch-size must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = CONFIGS[args.config]
    device = resolve_device(args.device)
    if args.memory_probe:
        print(memory_probe(args.memory_probe, config, args.batch_size, device))
        return 0
    table = path_table(config)
    print(f"config: {args.config} {config}; {len(table)} kept paths × {table.n_frames} frames; "
          f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}")

    t0 = time.perf_counter()
    kymatio = kymatio_module(config)
    if device.type != "cpu":
        kymatio = copy.deepcopy(kymatio).to(device)
    t_build_k = time.perf_counter() - t0
    t0 = time.perf_counter()
    get_scattering(config, device=device, method="fast")
    t_build_f = time.perf_counter() - t0
    print(f"build: Kymatio filter bank {t_build_k:.1f} s; fast plan from it {t_build_f:.1f} s")

    x = signals(args.n_examples, config, args.seed)
    keep = torch.as_tensor(table.kymatio_index, device=device)
    # warm-up (first calls allocate and plan FFTs)
    with torch.no_grad():
        kymatio(torch.as_tensor(x[:1], device=device))
    scatter(x[:1], config, device=device, method="fast", batch_size=1)

    S_k, S_f = [], []
    t_k = t_f = 0.0
    for i, b0 in enumerate(range(0, args.n_examples, args.batch_size)):
        xb = x[b0:b0 + args.batch_size]
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):
            if which == 0:   # (a) Kymatio, one example at a time
                for row in xb:
                    with torch.no_grad():
                        xt = torch.as_tensor(row[None], device=device)
                        _sync(device)
                        t0 = time.perf_counter()
                        S = kymatio(xt)
                        _sync(device)
                        t_k += time.perf_counter() - t0
                    S_k.append(S.index_select(-2, keep).cpu().numpy())
            else:            # (b) the package's extraction path, batched
                _sync(device)
                t0 = time.perf_counter()
                S = scatter(xb, config, device=device, method="fast", batch_size=args.batch_size)
                _sync(device)
                t_f += time.perf_counter() - t0
                S_f.append(S.cpu().numpy())
        print(f"  examples {b0}–{b0 + len(xb) - 1}: Kymatio {t_k:.1f} s, fast {t_f:.2f} s so far",
              flush=True)
    S_k, S_f = np.concatenate(S_k), np.concatenate(S_f)
    n = args.n_examples
    speedup = t_k / t_f
    rel = relative_difference(S_f, S_k)
    strict = relative_difference(S_f, S_k, floor=0.0)
    kind = "CUDA allocator" if device.type == "cuda" else "RSS"
    print(f"(a) Kymatio Scattering1D, one at a time: {n / t_k:.3f} examples/s ({t_k / n:.3f} s/example), "
          f"peak {kind} {peak_memory('kymatio', args)}")
    print(f"(b) scatter(method='fast', batch_size={args.batch_size}): {n / t_f:.3f} examples/s "
          f"({t_f / n:.3f} s/example), peak {kind} {peak_memory('fast', args)}")
    print(f"relative difference per (example, path), float32, floor {FLOOR:g} of the example's peak: "
          f"max {rel.max():.2e}; strict (no floor): max {strict.max():.2e}, 99th percentile "
          f"{np.percentile(strict, 99):.2e}, median {np.median(strict):.2e}, "
          f"{100 * np.mean(strict > 1e-4):.3f} % of {strict.size} (example, path) pairs above 1e-4")
    if args.float64_check:
        i = int(strict.max(-1).argmax())   # the example with the largest (strict) difference
        k64 = copy.deepcopy(kymatio_module(config)).to(device=device, dtype=torch.float64)
        with torch.no_grad():
            S64 = k64(torch.as_tensor(x[i:i + 1], device=device, dtype=torch.float64))
        S64 = S64.index_select(-2, keep).cpu().numpy()
        f64 = scatter(x[i:i + 1], config, device=device, method="fast", dtype=torch.float64).cpu().numpy()
        print(f"strict measure against Kymatio in float64 (example {i}): Kymatio float32 "
              f"{relative_difference(S_k[i:i + 1], S64, 0.0).max():.2e}, fast float32 "
              f"{relative_difference(S_f[i:i + 1], S64, 0.0).max():.2e}, fast float64 "
              f"{relative_difference(f64, S64, 0.0).max():.2e}")
    print(f"speedup={speedup:.2f} max_rel_diff={rel.max():.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
