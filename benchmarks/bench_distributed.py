"""Extraction on Dask (``--dask local:K``) against the serial command, on the same notes, and what limits it.

Three runs of ``scatterxai extract`` on the same notes, each a fresh process timed from the outside
(imports, filter-bank construction, worker start and the final write included, as a user sees them):

* ``serial``    — the default command: ``--jobs`` = one single-threaded worker process per core;
* ``serial-1``  — ``--jobs 1``: this process alone, one torch thread;
* ``dask``      — ``--dask local:K``: K single-threaded worker processes compute, the driver writes.

Every batch is computed with one torch thread in all three, so the three files are the same bit for bit:
``identical`` compares every dataset and attribute of the ``dask`` file with the default ``serial`` file
(and ``max_rel_diff_vs_serial`` prints their largest difference: 0).

Then, unless ``--no-breakdown``, the costs that bound a larger cluster, measured in this process: the
filter-bank construction, the computation per note with one thread and with the default threads, the
driver's cost per chunk (a Dask round trip of a chunk of coefficients, without computation), the commit
per row into the partial file and the final copy per row.  The driver's cost per chunk is its CPU time
(and that of the scheduler, which ``local:K`` runs in the same process), so that workers sharing the
cores do not inflate it.  From them the script estimates the wall time
of ``--estimate-notes`` notes on ``--estimate-workers`` machines of ``--estimate-cores`` cores, and where
the bottleneck sits (a simple model: printed, to be read as such).

Usage::

    python benchmarks/bench_distributed.py [--meta META.csv --audio-root DIR] [--notes 48] [--workers 2]
                                           [--batch-size 8] [--work DIR] [--no-breakdown]

Without ``--meta``, a small synthetic corpus is written to ``--work`` first (``scatterxai synth``).
Last line: ``speedup=<serial seconds ÷ dask seconds> identical=<1 if the dask file is the default file (and the
--jobs 1 file)>``.
"""

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ROW_BYTES = 1200 * 32 * 4   # float32 coefficients of one note (paper configuration)


def _subset_csv(meta, n, out):
    with open(meta, newline="") as f:
        rows = list(csv.reader(f))
    with open(out, "w", newline="") as f:
        csv.writer(f).writerows(rows[:n + 1])
    return out


def _run(meta, root, out, *, batch_size, jobs=None, dask=None) -> float:
    cmd = [sys.executable, "-m", "scatterxai", "-q", "extract", meta, "--audio-root", root, "--out", out,
           "--batch-size", str(batch_size), "--device", "cpu", "--overwrite"] + (["--dask", dask] if dask else [])
    cmd += ["--jobs", str(jobs)] if jobs else []
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def _attrs(f, obj) -> dict:
    """Attributes, with the dimension-scale references (specific to each file) replaced by the names they
    point to."""
    out = {}
    for key, value in obj.attrs.items():
        if key == "REFERENCE_LIST":
            value = np.array([f"{f[ref].name}:{dim}" for ref, dim in value], dtype=object)
        elif key == "DIMENSION_LIST":
            value = np.array([",".join(f[ref].name for ref in refs) for refs in value], dtype=object)
        out[key] = value
    return out


def _contents(path):
    out = {}
    with h5py.File(path, "r") as f:
        out["/"] = _attrs(f, f)
        f.visititems(lambda name, obj: out.__setitem__(name, (obj[()] if isinstance(obj, h5py.Dataset) else None,
                                                              _attrs(f, obj))))
    return out


def _same(a, b) -> bool:
    A, B = _contents(a), _contents(b)
    if sorted(A) != sorted(B):
        return False
    for k, v in A.items():
        if k == "/":
            pairs = [(v, B[k])]
        else:
            (da, aa), (db, ab) = v, B[k]
            if (da is None) != (db is None) or (da is not None and not (
                    da.dtype == db.dtype and np.array_equal(da, db, equal_nan=da.dtype.kind == "f"))):
                return False
            pairs = [(aa, ab)]
        for x, y in pairs:
            if sorted(x) != sorted(y) or any(not np.array_equal(np.asarray(x[n]), np.asarray(y[n])) for n in x):
                return False
    return True


def _max_rel_diff(a, b) -> float:
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        x, y = fa["features"][()], fb["features"][()]
    return float(np.abs(x - y).max() / np.abs(x).max())


# ------------------------------------------------------------------------------------------- breakdown

def _echo(chunk):
    """A task that computes nothing and returns a chunk of coefficients (Dask's cost per chunk)."""
    return np.ones((len(chunk), 1200, 32), np.float32)


def breakdown(meta, root, *, batch_size, workers):
    import torch

    from scatterxai._util.cluster import dask_client, map_chunks
    from scatterxai.data.paths import AudioResolver
    from scatterxai.features.batch import compute_batch
    from scatterxai.features.extract import PARTIAL_SUFFIX
    from scatterxai.features.store import write_features
    from scatterxai.io.partial import PartialFile
    from scatterxai.scattering import PAPER_CONFIG, get_scattering
    from scatterxai.scattering.api import _cached_module
    from scatterxai.scattering.kymatio import kymatio_module

    cost = {}
    default_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    _cached_module.cache_clear()
    kymatio_module.cache_clear()
    t0 = time.perf_counter()
    get_scattering(PAPER_CONFIG, device="cpu")
    cost["build_s"] = time.perf_counter() - t0

    with open(meta, newline="") as f:
        names = [r["file_name"] for r in csv.DictReader(f)][:batch_size]
    resolve = AudioResolver(root)
    cost["audio_bytes"] = statistics.mean(os.path.getsize(resolve(n)) for n in names)
    for key, threads in (("note_s_1", 1), ("note_s_default", default_threads)):
        torch.set_num_threads(threads)
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            compute_batch(range(len(names)), names, resolve=resolve, config=PAPER_CONFIG, device="cpu",
                          batch_size=batch_size)
            times.append((time.perf_counter() - t0) / len(names))
        cost[key] = min(times)
    torch.set_num_threads(default_threads)

    n_chunks = 60
    with dask_client(f"local:{workers}") as client:
        list(map_chunks(client, _echo, [range(batch_size)] * 8, name="warm", describe=str))
        t0, c0 = time.perf_counter(), time.process_time()
        list(map_chunks(client, _echo, [range(batch_size)] * n_chunks, name="echo", describe=str))
        cost["chunk_s"] = (time.perf_counter() - t0) / n_chunks
        cost["chunk_cpu_s"] = (time.process_time() - c0) / n_chunks   # driver + local scheduler

    rng = np.random.default_rng(0)
    S = rng.random((batch_size, 1200, 32), dtype=np.float32)
    n_rows = 50 * batch_size
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "f.h5")
        with PartialFile.open_or_create(out + PARTIAL_SUFFIX, n_rows=n_rows, settings="bench",
                                        datasets={"features": ((1200, 32), np.float32)}) as store:
            t0 = time.perf_counter()
            for rows in store.pending_batches(batch_size):
                store.commit(rows, {"features": S})
            cost["commit_s"] = (time.perf_counter() - t0) / n_rows
            t0 = time.perf_counter()
            write_features(out, store.dataset("features"), {"file_name": np.array([f"n{i}" for i in range(n_rows)],
                                                                                   object)}, PAPER_CONFIG)
            cost["finish_s"] = (time.perf_counter() - t0) / n_rows
    return cost


def estimate(cost, *, notes, machines, cores, batch_size):
    """Print a wall-time model of ``notes`` notes on ``machines`` × ``cores`` single-threaded workers."""
    P = machines * cores
    compute = notes * cost["note_s_1"] / P
    per_row = cost["commit_s"] + cost["chunk_cpu_s"] / batch_size   # the driver's CPU per note
    driver = notes * per_row
    finish = notes * cost["finish_s"]
    steady = max(compute, driver)
    wall = cost["build_s"] + steady + finish
    rate = notes / steady
    print(f"estimate: {notes} notes on {machines} x {cores} cores: filter bank {cost['build_s']:.0f} s (once per "
          f"worker, in parallel) + {steady:.0f} s of extraction + {finish:.0f} s final copy = {wall / 60:.1f} min")
    print(f"  workers compute {P / cost['note_s_1']:.0f} notes/s; the driver commits at most "
          f"{1 / per_row:.0f} notes/s -> the bottleneck is the "
          f"{'driver (single writer)' if driver > compute else 'computation'}")
    print(f"  at {rate:.0f} notes/s: {rate * ROW_BYTES / 1e6:.0f} MB/s of coefficients into the driver (network, "
          f"then its disk); {rate * cost['audio_bytes'] / 1e6:.0f} MB/s of audio read by the workers from shared "
          f"storage ({cost['audio_bytes'] / 1e3:.0f} kB per note); final copy {notes * ROW_BYTES / 1e9:.1f} GB")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--meta", default=None, help="meta CSV (default: a synthetic corpus written to --work)")
    p.add_argument("--audio-root", default=None, help="audio root of --meta")
    p.add_argument("--notes", type=int, default=48, help="first N notes of the meta CSV")
    p.add_argument("--workers", type=int, default=2, help="K of --dask local:K")
    p.add_argument("--batch-size", type=int, default=8, help="notes per batch (= per Dask task)")
    p.add_argument("--work", default=None, help="working directory (default: a temporary one)")
    p.add_argument("--no-breakdown", action="store_true", help="only the three runs")
    p.add_argument("--estimate-notes", type=int, default=100_000)
    p.add_argument("--estimate-workers", type=int, default=10, help="machines of the estimate")
    p.add_argument("--estimate-cores", type=int, default=8, help="cores (single-threaded workers) per machine")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or tmp
        os.makedirs(work, exist_ok=True)
        meta, root = args.meta, args.audio_root
        if meta is None:
            from scatterxai.data.synth import synthesize_corpus
            n_sol = 5564
            meta = synthesize_corpus(os.path.join(work, "corpus"), scale=min(1.0, 1.5 * args.notes / n_sol), seed=0,
                                     jobs=os.cpu_count() or 1, progress=False)
            root = os.path.join(work, "corpus", "audio")
        meta = _subset_csv(meta, args.notes, os.path.join(work, "meta.csv"))
        out = {k: os.path.join(work, f"{k}.h5") for k in ("serial", "serial-1", "dask")}
        t = {"serial": _run(meta, root, out["serial"], batch_size=args.batch_size),
             "serial-1": _run(meta, root, out["serial-1"], batch_size=args.batch_size, jobs=1),
             "dask": _run(meta, root, out["dask"], batch_size=args.batch_size, dask=f"local:{args.workers}")}
        for k, v in t.items():
            print(f"{k:9s} {v:7.1f} s  ({v / args.notes:.3f} s per note, all included)")
        identical = _same(out["dask"], out["serial"]) and _same(out["serial-1"], out["serial"])
        print(f"max_rel_diff_vs_serial={_max_rel_diff(out['serial'], out['dask']):.1e}")
        if not args.no_breakdown:
            cost = breakdown(meta, root, batch_size=args.batch_size, workers=args.workers)
            print(f"filter bank {cost['build_s']:.1f} s; per note: {cost['note_s_1']:.3f} s with 1 thread, "
                  f"{cost['note_s_default']:.3f} s with the default threads; "
                  f"driver: {cost['chunk_s'] * 1e3:.1f} ms per Dask chunk of {args.batch_size} notes (no "
                  f"computation; {cost['chunk_cpu_s'] * 1e3:.1f} ms of CPU in the driver and its scheduler), "
                  f"commit {cost['commit_s'] * 1e3:.2f} ms per row, final copy "
                  f"{cost['finish_s'] * 1e3:.2f} ms per row")
            estimate(cost, notes=args.estimate_notes, machines=args.estimate_workers, cores=args.estimate_cores,
                     batch_size=args.batch_size)
        print(f"speedup={t['serial'] / t['dask']:.2f} identical={int(identical)}")


if __name__ == "__main__":
    main()
