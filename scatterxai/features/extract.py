"""Extraction: the scattering of every file in a meta CSV → a features file, batched, resumable.

The work is split into three steps, the seam a distributed back end uses:

1. **plan rows** — :func:`pending_batches`: which rows of the meta CSV are still to do, in batches;
2. **compute a batch** — :func:`compute_batch`: read, prepare and scatter the audio of some rows
   (no file is written: workers run this and return arrays);
3. **commit a batch** — :meth:`PartialFile.commit`: write the coefficients, then mark the rows done
   (only the committing process writes).

Work goes to ``OUT.partial`` (:class:`PartialFile`), an HDF5 file whose datasets are all allocated when it
is created, so that a commit only overwrites raw bytes (no HDF5 metadata changes) and then marks its rows
done after a flush: a process killed at any moment (even with SIGKILL) leaves a readable partial file in
which every row marked done is complete.  Re-running the same command resumes from it.  The final file is
written to a temporary name and renamed into place, so ``OUT`` is either absent or complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import h5py
import numpy as np

from .._util.fs import atomic_path
from .._util.log import logger
from .._util.log import progress as progress_bar
from .._util.validate import check_positive_int
from ..errors import AudioError, StoreError
from ..io.hdf5 import scattering_attrs
from ..scattering.config import PAPER_CONFIG, PathTable, ScatteringConfig, path_table
from .store import FeatureFile, write_features

__all__ = ["extract_features", "ExtractSummary", "BatchResult", "PartialFile", "pending_batches",
           "compute_batch", "settings_hash"]

_REASON_LEN = 240
_PENDING, _DONE, _FAILED = 0, 1, 2


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


def settings_hash(csv_bytes: bytes, audio_root: str, config: ScatteringConfig) -> str:
    """sha256 of everything that determines the extracted numbers (recorded as ``settings_sha256``)."""
    h = hashlib.sha256(csv_bytes)
    h.update(json.dumps({"audio_root": os.path.abspath(audio_root), "config": config.to_dict()},
                        sort_keys=True).encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------ the partial file

class PartialFile:
    """``OUT.partial``: preallocated coefficients, a status per row (pending / done / failed) and reasons.

    Use :meth:`open_or_create`; then :meth:`commit` batches and :meth:`finish` into the final file.
    """

    def __init__(self, path: str, f: h5py.File):
        self.path, self._f = path, f

    @staticmethod
    def _create(path, n_rows: int, table: PathTable, settings: str, config: ScatteringConfig, method: str):
        C, T = len(table), table.n_frames
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs.update(scattering_attrs(config, table))
            f.attrs["settings_sha256"], f.attrs["method"] = settings, method
            for name, shape, dtype in (("features", (n_rows, C, T), np.float32), ("status", (n_rows,), np.int8),
                                       ("reason", (n_rows,), f"S{_REASON_LEN}")):
                # Early allocation and contiguous layout: later writes touch raw bytes only, never HDF5
                # metadata, so a kill mid-write cannot corrupt the file structure.
                dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
                f.create_dataset(name, shape=shape, dtype=dtype, dcpl=dcpl)

    @staticmethod
    def _open_existing(path: str, settings: str, overwrite: bool) -> Optional[h5py.File]:
        """The partial file opened for resuming, or None if there is none to resume."""
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
            logger.warning("warning: %s is not a readable partial extraction; starting over", path)
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

    @classmethod
    def open_or_create(cls, path: str, *, n_rows: int, table: PathTable, settings: str,
                       config: ScatteringConfig, method: str, overwrite: bool) -> PartialFile:
        f = cls._open_existing(path, settings, overwrite)
        if f is None:
            cls._create(path, n_rows, table, settings, config, method)
            f = h5py.File(path, "r+")
        return cls(path, f)

    def status(self) -> np.ndarray:
        return self._f["status"][()]

    def commit(self, result: BatchResult) -> None:
        """Write a batch's coefficients and reasons, flush, then mark its rows (a row marked done is
        complete whenever the process dies)."""
        f = self._f
        for r, s in zip(result.ok_rows, result.S):
            f["features"][r] = s
        for r, reason in result.failed:
            f["reason"][r] = reason.encode("utf-8")[:_REASON_LEN]
        f.flush()  # data first ...
        for r in result.ok_rows:
            f["status"][r] = _DONE
        for r, _ in result.failed:
            f["status"][r] = _FAILED
        f.flush()  # ... then the marks

    def finish(self, out: str, columns: Dict[str, np.ndarray], names: Sequence[str], *, config, settings,
               method) -> Tuple[np.ndarray, np.ndarray, List[str]]:
        """Write the final file from the done rows (if any); return (ok rows, failed rows, reasons)."""
        f = self._f
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
        return ok, bad, reasons

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ------------------------------------------------------------------------------- plan / compute / commit

@dataclass
class BatchResult:
    """Output of :func:`compute_batch`: coefficients of the rows that worked, reasons for the others."""

    ok_rows: List[int]
    S: np.ndarray                     # (len(ok_rows), C, T) float32
    failed: List[Tuple[int, str]]     # (row, reason)


def pending_batches(status: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Rows still pending, in batches of ``batch_size`` (file order)."""
    pending = np.flatnonzero(status == _PENDING)
    for start in range(0, len(pending), batch_size):
        yield pending[start:start + batch_size]


def compute_batch(rows: Sequence[int], paths: Sequence[str], *, resolve, config: ScatteringConfig,
                  device="auto", method: str = "fast", batch_size: int = 8) -> BatchResult:
    """Read, prepare and scatter the audio of ``rows``; unreadable files become failures, not errors.

    Parameters
    ----------
    rows : sequence of int
        Rows of the meta CSV.
    paths : sequence of str
        ``file_name`` of every row of the meta CSV.
    resolve : callable
        ``file_name`` → audio path (:class:`scatterxai.data.AudioResolver`).
    """
    from ..audio import load_prepared
    from ..scattering.api import scatter

    ok_rows, signals, failed = [], [], []
    for r in rows:
        try:
            signals.append(load_prepared(resolve(paths[r]), config))
            ok_rows.append(int(r))
        except AudioError as e:
            failed.append((int(r), str(e)))
    if signals:
        S = scatter(np.stack(signals), config, device=device, method=method, batch_size=batch_size).cpu().numpy()
    else:
        S = np.zeros((0, len(path_table(config)), path_table(config).n_frames), np.float32)
    return BatchResult(ok_rows, S, failed)


# ------------------------------------------------------------------------------------------ the command

def _read_inputs(meta_csv: str, audio_root: str):
    from ..data.meta import read_meta_csv
    if not os.path.isfile(meta_csv):
        raise StoreError(f"meta CSV not found: {meta_csv}")
    if not os.path.isdir(audio_root):
        raise StoreError(f"audio root is not a directory: {audio_root}")
    with open(meta_csv, "rb") as fh:
        csv_bytes = fh.read()
    columns = read_meta_csv(meta_csv)
    if "file_name" not in columns:
        raise StoreError(f"{meta_csv} has no 'file_name' column; columns are {sorted(columns)}")
    names = [str(v) for v in columns["file_name"]]
    if not names:
        raise StoreError(f"{meta_csv} lists no files")
    return csv_bytes, columns, names


def _existing_output(out: str, settings: str, n_rows: int, overwrite: bool) -> Optional[ExtractSummary]:
    """A summary if ``out`` is already complete with these settings; raise if it holds other settings."""
    if not os.path.exists(out):
        return None
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
    return None


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
    from .._util.device import resolve_device
    from ..data.paths import AudioResolver

    t0 = time.perf_counter()
    meta_csv, audio_root, out = os.fspath(meta_csv), os.fspath(audio_root), os.fspath(out)
    batch_size = check_positive_int("batch_size", batch_size)
    csv_bytes, columns, names = _read_inputs(meta_csv, audio_root)
    resolve_device(device)  # fail early on a bad device name
    settings = settings_hash(csv_bytes, audio_root, config)
    done = _existing_output(out, settings, len(names), overwrite)
    if done is not None:
        return done

    partial = out + ".partial"
    resolve = AudioResolver(audio_root)
    with PartialFile.open_or_create(partial, n_rows=len(names), table=path_table(config), settings=settings,
                                    config=config, method=method, overwrite=overwrite) as store:
        status = store.status()
        n_resumed = int((status != _PENDING).sum())
        with progress_bar(total=len(names), initial=n_resumed, desc="extract", unit="file",
                          enabled=progress) as bar:
            for rows in pending_batches(status, batch_size):
                store.commit(compute_batch(rows, names, resolve=resolve, config=config, device=device,
                                           method=method, batch_size=batch_size))
                bar.update(len(rows))
        ok, bad, reasons = store.finish(out, columns, names, config=config, settings=settings, method=method)
    # Nothing worth keeping if every file failed (e.g. a wrong audio root): the next run starts afresh.
    os.remove(partial)
    failed = [(names[r], reason) for r, reason in zip(bad, reasons)]
    return ExtractSummary(out, len(names), int(ok.size), int(bad.size), n_resumed=n_resumed,
                          seconds=time.perf_counter() - t0, failed=failed)
