"""``OUT.partial``: a crash-safe, resumable store of per-row results (extraction, descriptors, …).

Every dataset is allocated when the file is created (contiguous, early allocation), so a commit only
overwrites raw bytes and never changes HDF5 metadata; the rows' data are flushed before their status marks,
so a process killed at any moment (even with SIGKILL) leaves a readable file in which every row marked done
is complete.  Re-running the same command with the same settings resumes from it; the stage that owns the
file then writes its final output from the done rows (atomically) and removes the partial file.

Layout: one dataset per result (``(n_rows, *row_shape)``), ``status`` (n_rows,) int8 (0 pending, 1 done,
2 failed), ``reason`` (n_rows,) fixed-length UTF-8 bytes for failures, root attribute ``settings_sha256``
plus whatever attributes the owner records.
"""

from __future__ import annotations

import os
from typing import Iterator, Mapping, Optional, Sequence, Tuple

import h5py
import numpy as np

from .._util.fs import atomic_path
from .._util.log import logger
from ..errors import StoreError

__all__ = ["PartialFile", "PENDING", "DONE", "FAILED", "REASON_LEN"]

PENDING, DONE, FAILED = 0, 1, 2
#: bytes kept of a failure's reason
REASON_LEN = 240


class PartialFile:
    """A partial file of ``n_rows`` rows; use :meth:`open_or_create`, :meth:`commit`, then read it back.

    Parameters of :meth:`open_or_create`
    ------------------------------------
    path : str
    n_rows : int
    datasets : mapping name → (row shape, dtype)
        The per-row results, e.g. ``{"features": ((1200, 32), np.float32)}``.
    settings : str
        Hash of everything that determines the results; a partial file with another hash is not resumed.
    attrs : mapping
        Root attributes recorded at creation.
    overwrite : bool
        Replace a partial file made with other settings (otherwise a :class:`StoreError`).
    what : str
        What the file holds, for messages ("extraction", "description"…).
    """

    def __init__(self, path: str, f: h5py.File, datasets: Sequence[str]):
        self.path, self._f, self.datasets = path, f, tuple(datasets)

    @staticmethod
    def _create(path, n_rows: int, datasets: Mapping[str, Tuple[tuple, object]], settings: str,
                attrs: Mapping) -> None:
        specs = [(name, (n_rows, *shape), dtype) for name, (shape, dtype) in datasets.items()]
        specs += [("status", (n_rows,), np.int8), ("reason", (n_rows,), f"S{REASON_LEN}")]
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs.update(attrs)
            f.attrs["settings_sha256"] = settings
            for name, shape, dtype in specs:
                # Early allocation and contiguous layout: later writes touch raw bytes only, never HDF5
                # metadata, so a kill mid-write cannot corrupt the file structure.
                dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
                f.create_dataset(name, shape=shape, dtype=dtype, dcpl=dcpl)

    @staticmethod
    def _open_existing(path: str, names: Sequence[str], settings: str, overwrite: bool,
                       what: str) -> Optional[h5py.File]:
        """The partial file opened for resuming, or None if there is none to resume."""
        if not os.path.exists(path):
            return None
        try:
            f = h5py.File(path, "r+")
            ok = all(k in f for k in (*names, "status", "reason"))
        except OSError:
            f, ok = None, False
        if not ok:
            if f is not None:
                f.close()
            logger.warning("warning: %s is not a readable partial %s; starting over", path, what)
            os.remove(path)
            return None
        if f.attrs.get("settings_sha256") != settings:
            f.close()
            if not overwrite:
                raise StoreError(f"{path} holds an interrupted {what} made with other settings; re-run with the "
                                 f"same settings to resume, or pass overwrite=True (--overwrite) to start over")
            os.remove(path)
            return None
        return f

    @classmethod
    def open_or_create(cls, path: str, *, n_rows: int, datasets: Mapping[str, Tuple[tuple, object]],
                       settings: str, attrs: Mapping = (), overwrite: bool = False,
                       what: str = "run") -> PartialFile:
        f = cls._open_existing(path, list(datasets), settings, overwrite, what)
        if f is None:
            cls._create(path, n_rows, datasets, settings, dict(attrs))
            f = h5py.File(path, "r+")
        return cls(path, f, list(datasets))

    def status(self) -> np.ndarray:
        """(n_rows,) int8: :data:`PENDING`, :data:`DONE` or :data:`FAILED`."""
        return self._f["status"][()]

    def pending_batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """Rows still pending, in batches of ``batch_size`` (file order)."""
        pending = np.flatnonzero(self.status() == PENDING)
        for start in range(0, len(pending), batch_size):
            yield pending[start:start + batch_size]

    def commit(self, ok_rows: Sequence[int], values: Mapping[str, np.ndarray],
               failed: Sequence[Tuple[int, str]] = ()) -> None:
        """Write the results of ``ok_rows`` (``values[name][i]`` is row ``ok_rows[i]``) and the reasons of the
        failed rows, flush, then mark them (a row marked done is complete whenever the process dies)."""
        f = self._f
        for name in self.datasets:
            for r, v in zip(ok_rows, values[name]):
                f[name][r] = v
        for r, reason in failed:
            f["reason"][r] = reason.encode("utf-8")[:REASON_LEN]
        f.flush()  # data first ...
        for r in ok_rows:
            f["status"][r] = DONE
        for r, _ in failed:
            f["status"][r] = FAILED
        f.flush()  # ... then the marks

    def dataset(self, name: str) -> h5py.Dataset:
        return self._f[name]

    def outcome(self) -> Tuple[np.ndarray, np.ndarray, list]:
        """(done rows, failed rows, their reasons)."""
        status = self.status()
        ok, bad = np.flatnonzero(status == DONE), np.flatnonzero(status == FAILED)
        return ok, bad, [self._f["reason"][r].decode("utf-8", "replace") for r in bad]

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
