"""The features HDF5 file: one self-describing file of raw scattering coefficients per dataset.

Layout (a reader needs only h5py)::

    /features            (K, C, T) float32   raw scattering (not log-normalised), chunked (1, C, T)
    /paths/{order, lambda1_hz, lambda2_hz, n1, n2}   (C,) each; λ in Hz, λ2 NaN and n2 = -1 for order 1
    /examples/<column>   (K,) one array per meta-CSV column (UTF-8 strings, int64 or float64), plus
                         `csv_row`, the row of each example in the meta CSV
    /stats/mu            (C,) float64: mean over the training rows of each coefficient's time average
                         (attrs: subset, n_examples)
    /failed/{file_name, reason, csv_row}   files that could not be read, and why
    root attributes      sr, N, J, Q, T, fmin_hz, n_frames, r_psi, sigma0, alpha, max_order,
                         classes, method, scatterxai_version, kymatio_version, settings_sha256

Extraction (:func:`extract_features`) is batched and resumable.  Work goes to ``OUT.partial``, an HDF5 file
whose datasets are all allocated when it is created, so that a batch only overwrites raw bytes (no HDF5
metadata changes) and then marks its rows done after a flush: a process killed at any moment (even with
SIGKILL) leaves a readable partial file in which every row marked done is complete.  Re-running the same
command resumes from it.  The final file is written to a temporary name and renamed into place, so ``OUT``
is either absent or complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import h5py
import numpy as np

from . import __version__
from .errors import AudioError, ParameterError, StoreError
from .scattering import (ALPHA, PAPER_CONFIG, R_PSI, SIGMA0, PathTable, ScatteringConfig, path_table,
                         resolve_device)

__all__ = ["FeatureFile", "write_features", "extract_features", "ExtractSummary", "read_string_array",
           "write_column", "scattering_attrs", "audio_resolver", "open_hdf5", "file_sha256"]

_STR = h5py.string_dtype("utf-8")
_REASON_LEN = 240
_PENDING, _DONE, _FAILED = 0, 1, 2
_COPY_BLOCK = 64


# --------------------------------------------------------------------------------------------------------
# small HDF5 helpers (shared with export.py)

def write_column(group: h5py.Group, name: str, values) -> h5py.Dataset:
    """Write a 1-D column: strings as UTF-8 variable-length, numbers as int64/float64, bools as bool."""
    arr = np.asarray(values)
    if arr.dtype.kind in "OUS":
        return group.create_dataset(name, data=np.array([str(v) for v in arr], dtype=object), dtype=_STR)
    if arr.dtype.kind == "b":
        return group.create_dataset(name, data=arr)
    if arr.dtype.kind in "iu":
        return group.create_dataset(name, data=arr.astype(np.int64))
    if arr.dtype.kind == "f":
        return group.create_dataset(name, data=arr.astype(np.float64))
    raise StoreError(f"column {name!r} has unsupported dtype {arr.dtype}")


def open_hdf5(path: str, kind: str) -> h5py.File:
    """Open ``path`` read-only, or raise :class:`StoreError` saying it should be a ``kind`` file."""
    if not os.path.isfile(path):
        raise StoreError(f"{kind} file not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise StoreError(f"cannot open {path} as HDF5 ({e}); is it a {kind} file?") from None


def file_sha256(path) -> str:
    """sha256 (hex) of a file's bytes, read in 1-MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_string_array(ds: h5py.Dataset) -> np.ndarray:
    """A dataset as a numpy array, decoding byte/UTF-8 strings to ``str`` objects."""
    if ds.dtype.kind in "OS":
        return np.array(ds.asstr()[()], dtype=object)
    return ds[()]


def scattering_attrs(config: ScatteringConfig, table: PathTable) -> dict:
    """Root attributes that describe the scattering (written into every file of the package)."""
    import kymatio
    return dict(sr=config.sr, N=config.N, J=config.J, Q=np.array(config.Q, dtype=np.int64), T=config.T,
                fmin_hz=config.fmin_hz, n_frames=table.n_frames, max_order=2, r_psi=R_PSI, sigma0=SIGMA0,
                alpha=ALPHA, scatterxai_version=__version__, kymatio_version=kymatio.__version__)


def _read_config(attrs) -> ScatteringConfig:
    try:
        return ScatteringConfig.from_dict({k: attrs[k] for k in ("sr", "N", "J", "Q", "T", "fmin_hz")})
    except KeyError as e:
        raise StoreError(f"root attribute {e.args[0]!r} missing: not a scatterxai features file") from None


# --------------------------------------------------------------------------------------------------------
# reading

class FeatureFile:
    """Read a features file written by :func:`extract_features` or :func:`write_features`.

    The file stays open for lazy access to ``/features``; use as a context manager or call :meth:`close`.

    Attributes
    ----------
    config : ScatteringConfig
    table : PathTable
        Checked equal to ``path_table(config)`` and to the file's ``/paths``.
    examples : dict of str → np.ndarray [shape=(K,)]
    mu : np.ndarray [shape=(C,), float64]
    classes : tuple of str
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._f = open_hdf5(self.path, "features")
        try:
            self._validate()
        except Exception:
            self._f.close()
            raise

    def _validate(self):
        f = self._f
        for name in ("features", "paths", "examples", "stats/mu"):
            if name not in f:
                raise StoreError(f"{self.path} lacks /{name}: not a complete scatterxai features file "
                                 f"(an interrupted extraction leaves OUT.partial; re-run extract)")
        self.config = _read_config(f.attrs)
        self.table = path_table(self.config)
        paths = {k: f["paths"][k][()] for k in f["paths"]}
        if not self.table.matches(paths):
            raise StoreError(f"{self.path}: /paths does not match the path table of {self.config}; the file "
                             f"was written by an incompatible version")
        K, C, T = f["features"].shape
        if (C, T) != (len(self.table), self.table.n_frames):
            raise StoreError(f"{self.path}: /features has shape {f['features'].shape}, expected "
                             f"(K, {len(self.table)}, {self.table.n_frames})")
        self.examples: Dict[str, np.ndarray] = {k: read_string_array(f["examples"][k]) for k in f["examples"]}
        for k, v in self.examples.items():
            if len(v) != K:
                raise StoreError(f"{self.path}: /examples/{k} has {len(v)} rows, /features has {K}")
        self.mu = f["stats/mu"][()]
        if self.mu.shape != (C,):
            raise StoreError(f"{self.path}: /stats/mu has shape {self.mu.shape}, expected ({C},)")
        from .datasets import CLASSES
        self.classes = tuple(str(c) for c in f.attrs.get("classes", CLASSES))

    def __len__(self) -> int:
        return self._f["features"].shape[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._f.close()

    @property
    def attrs(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self._f.attrs.items()}

    @property
    def labels(self) -> np.ndarray:
        if "label" not in self.examples:
            raise StoreError(f"{self.path} has no /examples/label column; the meta CSV had no labels")
        return np.asarray(self.examples["label"], dtype=np.int64)

    @property
    def failed(self) -> List[tuple]:
        """(file_name, reason) of every file that could not be read."""
        if "failed" not in self._f:
            return []
        g = self._f["failed"]
        return list(zip(read_string_array(g["file_name"]), read_string_array(g["reason"])))

    def indices(self, subset: Optional[str] = None) -> np.ndarray:
        """Row indices of ``subset`` ("training", "validation", "test"); all rows if None."""
        if subset is None:
            return np.arange(len(self), dtype=np.int64)
        if "subset" not in self.examples:
            raise StoreError(f"{self.path} has no /examples/subset column; cannot select subset {subset!r}")
        sub = self.examples["subset"].astype(str)
        idx = np.flatnonzero(sub == subset)
        if idx.size == 0:
            raise StoreError(f"subset {subset!r} has no rows in {self.path}; present: {sorted(set(sub))}")
        return idx.astype(np.int64)

    def load(self, indices=None) -> np.ndarray:
        """Raw features of the given rows (any order, repeats allowed): (k, C, T) float32."""
        ds = self._f["features"]
        if indices is None:
            return ds[()]
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= len(self))):
            raise ParameterError(f"indices must be a 1-D array of rows in [0, {len(self)}), got {indices!r}")
        order = np.argsort(idx, kind="stable")
        uniq, inverse = np.unique(idx[order], return_inverse=True)
        block = ds[uniq] if uniq.size else np.zeros((0,) + ds.shape[1:], ds.dtype)
        out = np.empty((idx.size,) + ds.shape[1:], ds.dtype)
        out[order] = block[inverse]
        return out


# --------------------------------------------------------------------------------------------------------
# writing

def _training_rows(examples: Dict[str, np.ndarray], n: int) -> np.ndarray:
    if "subset" in examples:
        rows = np.flatnonzero(np.asarray(examples["subset"]).astype(str) == "training")
        if rows.size:
            return rows
    return np.arange(n)


def _mu_from(source, rows: np.ndarray, training: np.ndarray, C: int) -> np.ndarray:
    """Mean time average of each coefficient over ``training`` (positions within ``rows``), streamed."""
    acc = np.zeros(C, np.float64)
    sel = rows[training]
    for i in range(0, len(sel), _COPY_BLOCK):
        acc += source[np.sort(sel[i:i + _COPY_BLOCK])].mean(axis=2, dtype=np.float64).sum(axis=0)
    return acc / max(len(sel), 1)


def write_features(path, S, examples: Dict[str, np.ndarray], config: ScatteringConfig = PAPER_CONFIG, *,
                   failed: Optional[Dict[str, np.ndarray]] = None, mu=None, rows=None,
                   attrs: Optional[dict] = None):
    """Write a complete features file atomically (temporary file, then rename).

    Parameters
    ----------
    path : str
    S : array-like [shape=(K_source, C, T)]
        Raw scattering; a numpy array or an h5py dataset (copied in blocks, never loaded whole).
    examples : dict of str → array [shape=(K,)]
        Metadata columns of the written rows (must include ``file_name``).
    rows : array of int, optional
        Rows of ``S`` to write (increasing); all if None.
    failed : dict with ``file_name``, ``reason`` (and optionally ``csv_row``) arrays, optional
    mu : array [shape=(C,)], optional
        Normalisation mean; default: computed from the rows whose ``subset`` is "training" (all rows if no
        subset column).
    attrs : dict, optional
        Extra root attributes.
    """
    table = path_table(config)
    C, T = len(table), table.n_frames
    rows = np.arange(S.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    K = len(rows)
    if tuple(S.shape[1:]) != (C, T):
        raise ParameterError(f"S has shape {tuple(S.shape)}, expected (K, {C}, {T}) for {config}")
    if "file_name" not in examples:
        raise ParameterError(f"examples must contain 'file_name'; got columns {sorted(examples)}")
    for k, v in examples.items():
        if len(v) != K:
            raise ParameterError(f"examples[{k!r}] has {len(v)} rows, expected {K}")
    if K and np.any(np.diff(rows) <= 0):
        raise ParameterError("rows must be strictly increasing")
    if mu is None:
        training = _training_rows(examples, K)
        mu = _mu_from(S, rows, training, C) if K else np.zeros(C)
        has_training = "subset" in examples and np.any(np.asarray(examples["subset"]).astype(str) == "training")
        mu_subset, mu_n = ("training" if has_training else "all"), len(training)
    else:
        mu, mu_subset, mu_n = np.asarray(mu, np.float64), "given", -1
    from .datasets import CLASSES

    path = os.fspath(path)
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs.update(scattering_attrs(config, table))
        f.attrs["classes"] = np.array(CLASSES, dtype=object)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        ds = f.create_dataset("features", shape=(K, C, T), dtype=np.float32, chunks=(1, C, T) if K else None)
        for i in range(0, K, _COPY_BLOCK):
            ds[i:i + _COPY_BLOCK] = np.asarray(S[rows[i:i + _COPY_BLOCK]], dtype=np.float32)
        g = f.create_group("paths")
        for k, v in table.arrays().items():
            g.create_dataset(k, data=v)
        g = f.create_group("examples")
        for k, v in examples.items():
            write_column(g, k, v)
        m = f.create_dataset("stats/mu", data=np.asarray(mu, np.float64))
        m.attrs["subset"], m.attrs["n_examples"] = mu_subset, mu_n
        g = f.create_group("failed")
        failed = failed or {"file_name": np.array([], object), "reason": np.array([], object)}
        for k, v in failed.items():
            write_column(g, k, np.asarray(v, dtype=object if k != "csv_row" else np.int64))
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------------
# extraction

@dataclass
class ExtractSummary:
    """What :func:`extract_features` did."""

    out: str
    n_total: int
    n_ok: int
    n_failed: int
    n_resumed: int = 0
    seconds: float = 0.0
    already_complete: bool = False
    failed: List[tuple] = field(default_factory=list)

    def describe(self) -> str:
        if self.already_complete:
            head = f"{self.out}: already complete with these settings ({self.n_ok} examples); nothing to do"
        else:
            head = (f"{self.out}: {self.n_ok} of {self.n_total} files extracted, {self.n_failed} failed"
                    + (f", {self.n_resumed} resumed from an interrupted run" if self.n_resumed else "")
                    + f" ({self.seconds:.1f} s)")
        lines = [head] + [f"  failed: {name}: {reason}" for name, reason in self.failed[:20]]
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more (see /failed in the file)")
        return "\n".join(lines)


def _settings_hash(csv_bytes: bytes, audio_root: str, config: ScatteringConfig) -> str:
    h = hashlib.sha256(csv_bytes)
    h.update(json.dumps({"audio_root": os.path.abspath(audio_root), "config": config.to_dict()},
                        sort_keys=True).encode())
    return h.hexdigest()


def _create_partial(path, n_rows, table, settings, config, method):
    C, T = len(table), table.n_frames
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.attrs.update(scattering_attrs(config, table))
        f.attrs["settings_sha256"], f.attrs["method"] = settings, method
        for name, shape, dtype in (("features", (n_rows, C, T), np.float32), ("status", (n_rows,), np.int8),
                                   ("reason", (n_rows,), f"S{_REASON_LEN}")):
            # Early allocation and contiguous layout: later writes touch raw bytes only, never HDF5
            # metadata, so a kill mid-write cannot corrupt the file structure.
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            f.create_dataset(name, shape=shape, dtype=dtype, dcpl=dcpl)
    os.replace(tmp, path)


def _open_partial(path, settings, overwrite):
    """Open an existing partial file for resuming, or return None if there is none to resume."""
    if not os.path.exists(path):
        return None
    try:
        f = h5py.File(path, "r+")
        ok = all(k in f for k in ("features", "status", "reason"))
    except OSError:
        f, ok = None, False
    if not ok:
        if f is not None:
            f.close()
        print(f"warning: {path} is not a readable partial extraction; starting over")
        os.remove(path)
        return None
    if f.attrs.get("settings_sha256") != settings:
        f.close()
        if not overwrite:
            raise StoreError(f"{path} holds an interrupted extraction made with other settings (meta CSV, "
                             f"audio root or scattering configuration); re-run with the same settings to "
                             f"resume, or pass overwrite=True (--overwrite) to start over")
        os.remove(path)
        return None
    return f


def audio_resolver(audio_root: str):
    """Map a file_name to a path: DIR/file_name if it exists, else a unique base-name match under DIR."""
    index = {}

    def resolve(name: str) -> str:
        direct = os.path.join(audio_root, name)
        if os.path.isfile(direct):
            return direct
        if not index:
            for root, _, files in os.walk(audio_root):
                for fn in files:
                    index.setdefault(fn, []).append(os.path.join(root, fn))
            index.setdefault("", [])
        hits = index.get(os.path.basename(name), [])
        if len(hits) > 1:
            raise AudioError(f"{name!r} matches {len(hits)} files under {audio_root}: {hits[:3]}")
        return hits[0] if hits else direct

    return resolve


def extract_features(meta_csv, audio_root, out, *, config: ScatteringConfig = PAPER_CONFIG, device="auto",
                     batch_size: int = 8, method: str = "fast", overwrite: bool = False,
                     progress: bool = True) -> ExtractSummary:
    """Scattering features of every file listed in a meta CSV → features HDF5 (resumable).

    Parameters
    ----------
    meta_csv : str
        CSV with at least a ``file_name`` column (relative to ``audio_root``; if not found there, the file is
        looked up by base name anywhere under ``audio_root``, as in the SOL tree).  Every column is copied
        to ``/examples``.
    audio_root : str
    out : str
        Output path.  If it exists and was made with the same settings, nothing is done; with other
        settings a :class:`StoreError` is raised unless ``overwrite``.
    config : ScatteringConfig
    device, method : see :func:`scatterxai.scattering.get_scattering`
    batch_size : int
        Files transformed at once.
    overwrite : bool
        Discard an existing output or interrupted extraction made with other settings.
    progress : bool
        Show a progress bar.

    Returns
    -------
    ExtractSummary
    """
    from tqdm.auto import tqdm

    from .audio import load_prepared
    from .datasets import read_meta_csv
    from .scattering import scatter

    t0 = time.perf_counter()
    meta_csv, audio_root, out = os.fspath(meta_csv), os.fspath(audio_root), os.fspath(out)
    if not os.path.isfile(meta_csv):
        raise StoreError(f"meta CSV not found: {meta_csv}")
    if not os.path.isdir(audio_root):
        raise StoreError(f"audio root is not a directory: {audio_root}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
    resolve_device(device)  # fail early on a bad device name
    with open(meta_csv, "rb") as fh:
        csv_bytes = fh.read()
    columns = read_meta_csv(meta_csv)
    if "file_name" not in columns:
        raise StoreError(f"{meta_csv} has no 'file_name' column; columns are {sorted(columns)}")
    names = [str(v) for v in columns["file_name"]]
    n_rows = len(names)
    if n_rows == 0:
        raise StoreError(f"{meta_csv} lists no files")
    settings = _settings_hash(csv_bytes, audio_root, config)
    table = path_table(config)

    if os.path.exists(out):
        try:
            with FeatureFile(out) as ff:
                same = ff.attrs.get("settings_sha256") == settings
                n_done, failed = len(ff), ff.failed
        except StoreError:
            same = False
        if same:
            return ExtractSummary(out, n_rows, n_done, len(failed), already_complete=True, failed=failed)
        if not overwrite:
            raise StoreError(f"{out} exists and was made with other settings (meta CSV, audio root or "
                             f"scattering configuration); choose another --out or pass --overwrite")

    partial = out + ".partial"
    f = _open_partial(partial, settings, overwrite)
    if f is None:
        _create_partial(partial, n_rows, table, settings, config, method)
        f = h5py.File(partial, "r+")
    resolve = audio_resolver(audio_root)
    with f:
        status = f["status"][()]
        n_resumed = int((status != _PENDING).sum())
        pending = np.flatnonzero(status == _PENDING)
        bar = tqdm(total=n_rows, initial=n_resumed, desc="extract", unit="file", disable=not progress)
        for start in range(0, len(pending), batch_size):
            rows = pending[start:start + batch_size]
            ok_rows, signals, bad = [], [], []
            for r in rows:
                try:
                    signals.append(load_prepared(resolve(names[r]), config))
                    ok_rows.append(r)
                except AudioError as e:
                    bad.append((r, str(e)))
            if signals:
                S = scatter(np.stack(signals), config, device=device, method=method,
                            batch_size=batch_size).cpu().numpy()
                for r, s in zip(ok_rows, S):
                    f["features"][r] = s
            for r, reason in bad:
                f["reason"][r] = reason.encode("utf-8")[:_REASON_LEN]
            f.flush()  # data first ...
            for r in ok_rows:
                f["status"][r] = _DONE
            for r, _ in bad:
                f["status"][r] = _FAILED
            f.flush()  # ... then the marks: a row marked done is complete
            bar.update(len(rows))
        bar.close()
        status = f["status"][()]
        ok = np.flatnonzero(status == _DONE)
        bad = np.flatnonzero(status == _FAILED)
        reasons = [f["reason"][r].decode("utf-8", "replace") for r in bad]
        examples = {k: np.asarray(v)[ok] for k, v in columns.items()}
        examples["csv_row"] = ok
        if ok.size:
            write_features(out, f["features"], examples, config, rows=ok,
                           failed={"file_name": np.array([names[r] for r in bad], dtype=object),
                                   "reason": np.array(reasons, dtype=object), "csv_row": bad},
                           attrs={"settings_sha256": settings, "method": method})
    # Nothing worth keeping if every file failed (e.g. a wrong audio root): the next run starts afresh.
    os.remove(partial)
    failed = [(names[r], reason) for r, reason in zip(bad, reasons)]
    return ExtractSummary(out, n_rows, int(ok.size), int(bad.size), n_resumed=n_resumed,
                          seconds=time.perf_counter() - t0, failed=failed)
