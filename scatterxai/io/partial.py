"""``OUT.partial``: a crash-safe, resumable store of per-row results (extraction, descriptors, …).

Every dataset is allocated when the file is created (contiguous, early allocation), so a commit only
overwrites raw bytes and never changes HDF5 metadata; the rows' data are flushed before their status marks,
so a process killed at any moment (even with SIGKILL) leaves a readable file in which every row marked done
is complete.  Re-running the same command with the same settings resumes from it; the stage that owns the
file then writes its final output from the done rows (atomically) and removes the partial file.

Layout: one dataset per result (``(n_rows, *row_shape)``), ``status`` (n_rows,) int8 (0 pending, 1 done,
2 failed), ``reason`` (n_rows,) fixed-length UTF-8 bytes for failures, root attributes ``settings_sha256``
and ``settings_json`` plus whatever attributes the owner records.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Iterator, Mapping, Optional, Sequence, Tuple, Union

import h5py
import numpy as np

from .._util.log import logger
from ..errors import StoreError
from .hdf5 import _GuardedFile, atomic_h5, has_hdf5_signature, is_lock_error, raise_if_failed

__all__ = ["PartialFile", "PENDING", "DONE", "FAILED", "REASON_LEN", "settings_digest", "describe_change"]

PENDING, DONE, FAILED = 0, 1, 2
#: bytes kept of a failure's reason
REASON_LEN = 240


def settings_digest(settings: Union[str, Mapping[str, Any]]) -> Tuple[str, str]:
    """(sha256, JSON) of a settings mapping (JSON keys sorted); a string is taken as a ready-made hash
    (then the JSON is empty)."""
    if isinstance(settings, str):
        return settings, ""
    js = json.dumps(dict(settings), sort_keys=True, default=str)
    return hashlib.sha256(js.encode("utf-8")).hexdigest(), js


def describe_change(old_json: Optional[str], new_json: Optional[str]) -> str:
    """`` (key: old → new, …)`` between two settings JSON strings, or "" if either is unknown."""
    try:
        old, new = json.loads(old_json), json.loads(new_json)
    except (TypeError, ValueError, RecursionError):
        return ""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return ""
    diff = [f"{k}: {old.get(k)!r} → {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return f" ({'; '.join(diff)})" if diff else ""


class PartialFile:
    """A partial file of ``n_rows`` rows; use :meth:`open_or_create`, :meth:`commit`, then read it back.

    Parameters of :meth:`open_or_create`
    ------------------------------------
    path : str
    n_rows : int
    datasets : mapping name → (row shape, dtype)
        The per-row results, e.g. ``{"features": ((1200, 32), np.float32)}``.
    settings : mapping or str
        Everything that determines the results (JSON-serialisable; recorded as ``settings_sha256`` and
        ``settings_json``), or a ready-made hash; a partial file with another hash is not resumed and the
        error names the settings that changed.
    attrs : mapping
        Root attributes recorded at creation.
    overwrite : bool
        Start over: discard an existing partial file, whatever it holds.  Without it a partial file made with
        other settings is a :class:`StoreError`, and one that cannot be opened (held by another process, an
        I/O error) is left untouched and reported; only a file that is provably not a partial file (not
        HDF5, or HDF5 without the layout) is replaced.
    retry_failed : bool
        Mark the rows that failed in an earlier run pending again.
    what : str
        What the file holds, for messages ("extraction", "description"…).
    """

    def __init__(self, path: str, f: h5py.File, datasets: Sequence[str]):
        self.path, self._f, self.datasets = path, f, tuple(datasets)

    @staticmethod
    def _open(path: str) -> h5py.File:
        """Open for update through a guarded file object (:func:`scatterxai.io.hdf5.open_guarded`): a write
        error (full disk) is raised by :meth:`commit` after the HDF5 library has been kept consistent."""
        raw = _GuardedFile(path, create=False)
        try:
            f = h5py.File(raw, "r+")
        except BaseException:
            raw.close()
            raise
        f._scatterxai_raw = raw
        return f

    @staticmethod
    def _close(f: h5py.File) -> None:
        """Close a file opened by :meth:`_open` and its guarded file object."""
        raw = getattr(f, "_scatterxai_raw", None)
        f.close()
        if raw is not None:
            raw.close()

    def _check_written(self) -> None:
        raise_if_failed(self._f)

    @staticmethod
    def _create(path, n_rows: int, datasets: Mapping[str, Tuple[tuple, object]], settings: str,
                settings_json: str, attrs: Mapping) -> None:
        specs = [(name, (n_rows, *shape), dtype) for name, (shape, dtype) in datasets.items()]
        specs += [("status", (n_rows,), np.int8), ("reason", (n_rows,), f"S{REASON_LEN}")]
        with atomic_h5(path) as f:
            f.attrs.update(attrs)
            f.attrs["settings_sha256"] = settings
            if settings_json:
                f.attrs["settings_json"] = settings_json
            for name, shape, dtype in specs:
                # Early allocation and contiguous layout: later writes touch raw bytes only, never HDF5
                # metadata, so a kill mid-write cannot corrupt the file structure.
                dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
                f.create_dataset(name, shape=shape, dtype=dtype, dcpl=dcpl)

    @staticmethod
    def _open_existing(path: str, names: Sequence[str], settings: str, settings_json: str, overwrite: bool,
                       what: str) -> Optional[h5py.File]:
        """The partial file opened for resuming, or None if there is none to resume.

        Only a file that is provably not a partial file of this kind (no HDF5 signature, or HDF5 without
        the layout) is replaced; a file that cannot be opened for another reason (held by another
        process, an I/O error) is left untouched and reported.
        """
        if os.path.islink(path):   # never written through: a partial file is never a link
            logger.warning("warning: %s is a symbolic link, not a partial %s; removing the link (not what it "
                           "points to)", path, what)
            os.unlink(path)
            return None
        if not os.path.exists(path):
            return None
        if overwrite:   # start over: whatever the file holds is discarded
            os.remove(path)
            return None
        try:
            f = PartialFile._open(path)
        except OSError as e:
            if is_lock_error(e):
                raise StoreError(f"{path} is in use by another process (it holds the interrupted {what}, "
                                 f"e.g. open in an h5py session); close it there and re-run to resume") from None
            try:
                ours = has_hdf5_signature(path)
            except OSError:
                ours = True   # unreadable: cannot prove it is not ours
            if ours:
                raise StoreError(f"cannot open {path} to resume the interrupted {what} ({e}); it was left "
                                 f"untouched: re-run when the cause is fixed, or pass overwrite=True "
                                 f"(--overwrite) to start over") from None
            logger.warning("warning: %s is not a partial %s (not an HDF5 file); replacing it", path, what)
            os.remove(path)
            return None
        if not all(k in f for k in (*names, "status", "reason")) or "settings_sha256" not in f.attrs:
            PartialFile._close(f)
            logger.warning("warning: %s is not a partial %s (an HDF5 file without its layout); replacing it",
                           path, what)
            os.remove(path)
            return None
        if f.attrs.get("settings_sha256") != settings:
            theirs = f.attrs.get("settings_json")
            PartialFile._close(f)
            raise StoreError(f"{path} holds an interrupted {what} made with other settings"
                             f"{describe_change(theirs, settings_json)}; re-run with the same "
                             f"settings to resume, or pass overwrite=True (--overwrite) to start over")
        return f

    @classmethod
    def open_or_create(cls, path: str, *, n_rows: int, datasets: Mapping[str, Tuple[tuple, object]],
                       settings: Union[str, Mapping[str, Any]], attrs: Mapping = (), overwrite: bool = False,
                       retry_failed: bool = False, what: str = "run") -> PartialFile:
        sha, js = settings_digest(settings)
        f = cls._open_existing(path, list(datasets), sha, js, overwrite, what)
        if f is None:
            cls._create(path, n_rows, datasets, sha, js, dict(attrs))
            f = cls._open(path)
        elif f["status"].shape != (n_rows,):
            have = f["status"].shape[0] if f["status"].ndim == 1 else f["status"].shape
            cls._close(f)
            raise StoreError(f"{path} has {have} rows, expected {n_rows}: its settings hash "
                             f"does not describe its rows; delete it or pass overwrite=True (--overwrite)")
        store = cls(path, f, list(datasets))
        if retry_failed:
            store.retry_failed()
        return store

    def retry_failed(self) -> int:
        """Mark the failed rows pending again; returns their number."""
        status = self.status()
        failed = np.flatnonzero(status == FAILED)
        if failed.size:
            status[failed] = PENDING
            self._f["status"][...] = status
            self._f.flush()
            self._check_written()
        return int(failed.size)

    def status(self) -> np.ndarray:
        """(n_rows,) int8: :data:`PENDING`, :data:`DONE` or :data:`FAILED`."""
        return self._f["status"][()]

    def pending_batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """Rows still pending, in batches of ``batch_size`` (file order)."""
        pending = np.flatnonzero(self.status() == PENDING)
        for start in range(0, len(pending), batch_size):
            yield pending[start:start + batch_size]

    def n_pending_batches(self, batch_size: int) -> int:
        """How many batches :meth:`pending_batches` yields."""
        return -(-int((self.status() == PENDING).sum()) // batch_size)

    def commit(self, ok_rows: Sequence[int], values: Mapping[str, np.ndarray],
               failed: Sequence[Tuple[int, str]] = (), notes: Sequence[Tuple[int, str]] = ()) -> None:
        """Write the results of ``ok_rows`` (``values[name][i]`` is row ``ok_rows[i]``) and the reasons of the
        failed rows, flush, then mark them (a row marked done is complete whenever the process dies).
        ``notes`` (row, text) are kept with done rows (e.g. "truncated"), in the ``reason`` column, so that a
        resumed run still knows them (:meth:`noted`)."""
        f = self._f
        for name in self.datasets:
            for r, v in zip(ok_rows, values[name]):
                f[name][r] = v
        for r, reason in (*failed, *notes):
            f["reason"][r] = reason.encode("utf-8")[:REASON_LEN]
        f.flush()  # data first ...
        self._check_written()   # (a full disk: the rows stay pending, the marks are not written)
        for r in ok_rows:
            f["status"][r] = DONE
        for r, _ in failed:
            f["status"][r] = FAILED
        f.flush()  # ... then the marks
        self._check_written()

    def noted(self, note: str) -> np.ndarray:
        """Done rows committed with ``note`` (by this run or an interrupted one)."""
        done = np.flatnonzero(self.status() == DONE)
        reasons = self._f["reason"][()]
        return done[reasons[done] == note.encode("utf-8")[:REASON_LEN]] if done.size else done

    def dataset(self, name: str) -> h5py.Dataset:
        return self._f[name]

    def outcome(self) -> Tuple[np.ndarray, np.ndarray, list]:
        """(done rows, failed rows, their reasons)."""
        status = self.status()
        ok, bad = np.flatnonzero(status == DONE), np.flatnonzero(status == FAILED)
        return ok, bad, [self._f["reason"][r].decode("utf-8", "replace") for r in bad]

    def close(self) -> None:
        raw = getattr(self._f, "_scatterxai_raw", None)
        self._f.close()
        if raw is not None:
            raw.close()
            if raw.error is not None and not getattr(raw, "reported", False):
                raise OSError(raw.error.errno, raw.error.strerror, self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
