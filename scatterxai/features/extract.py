"""Extraction: the scattering of every file in a meta CSV → a features file, batched, resumable.

The work is split into three steps, the seam a distributed back end uses:

1. **plan rows** — :meth:`PartialFile.pending_batches`: which rows of the meta CSV are still to do;
2. **compute a batch** — :func:`compute_batch`: read, prepare and scatter the audio of some rows
   (no file is written: workers run this and return arrays);
3. **commit a batch** — :meth:`PartialFile.commit`: write the coefficients, then mark the rows done
   (only the committing process writes).

Work goes to ``OUT.partial`` (:class:`scatterxai.io.partial.PartialFile`): a process killed at any moment
(even with SIGKILL) leaves a readable partial file in which every row marked done is complete, and
re-running the same command resumes from it.  The final file is written to a temporary name and renamed
into place, so ``OUT`` is either absent or complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._util.log import progress as progress_bar
from .._util.validate import check_positive_int
from ..errors import AudioError, StoreError
from ..io.hdf5 import scattering_attrs
from ..io.netcdf import dataset_options
from ..io.partial import PENDING, PartialFile
from ..scattering.config import PAPER_CONFIG, ScatteringConfig, path_table
from .store import FeatureFile, write_features

__all__ = ["extract_features", "ExtractSummary", "BatchResult", "compute_batch", "settings_hash", "finish"]


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


# ------------------------------------------------------------------------------- plan / compute / commit

@dataclass
class BatchResult:
    """Output of :func:`compute_batch`: coefficients of the rows that worked, reasons for the others."""

    ok_rows: List[int]
    S: np.ndarray                     # (len(ok_rows), C, T) float32
    failed: List[Tuple[int, str]]     # (row, reason)


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


def finish(store: PartialFile, out: str, columns: Dict[str, np.ndarray], names: Sequence[str], *, config,
           settings: str, method: str, compression: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """Write the final features file from the done rows of ``store`` (if any); return (ok rows, failed rows,
    reasons)."""
    ok, bad, reasons = store.outcome()
    examples = {k: np.asarray(v)[ok] for k, v in columns.items()}
    examples["csv_row"] = ok
    if ok.size:
        write_features(out, store.dataset("features"), examples, config, rows=ok,
                       failed={"file_name": np.array([names[r] for r in bad], dtype=object),
                               "reason": np.array(reasons, dtype=object), "csv_row": bad},
                       attrs={"settings_sha256": settings, "method": method}, compression=compression)
    return ok, bad, reasons


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
                     progress: bool = True, compression: Optional[str] = None) -> ExtractSummary:
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
    compression : {None, "gzip", "lzf"}
        Lossless compression of ``/features`` in the final file (see :func:`write_features`; it does not
        change the numbers, so an existing output with the same settings is kept as it is).

    Returns
    -------
    ExtractSummary
    """
    from .._util.device import resolve_device
    from ..data.paths import AudioResolver

    t0 = time.perf_counter()
    meta_csv, audio_root, out = os.fspath(meta_csv), os.fspath(audio_root), os.fspath(out)
    batch_size = check_positive_int("batch_size", batch_size)
    dataset_options(compression, (0,))  # fail early on a bad compression name
    csv_bytes, columns, names = _read_inputs(meta_csv, audio_root)
    resolve_device(device)  # fail early on a bad device name
    settings = settings_hash(csv_bytes, audio_root, config)
    done = _existing_output(out, settings, len(names), overwrite)
    if done is not None:
        return done

    partial = out + ".partial"
    resolve = AudioResolver(audio_root)
    table = path_table(config)
    attrs = {**scattering_attrs(config, table), "method": method}
    with PartialFile.open_or_create(partial, n_rows=len(names), settings=settings, attrs=attrs,
                                    datasets={"features": ((len(table), table.n_frames), np.float32)},
                                    overwrite=overwrite, what="extraction") as store:
        n_resumed = int((store.status() != PENDING).sum())
        with progress_bar(total=len(names), initial=n_resumed, desc="extract", unit="file",
                          enabled=progress) as bar:
            for rows in store.pending_batches(batch_size):
                res = compute_batch(rows, names, resolve=resolve, config=config, device=device, method=method,
                                    batch_size=batch_size)
                store.commit(res.ok_rows, {"features": res.S}, res.failed)
                bar.update(len(rows))
        ok, bad, reasons = finish(store, out, columns, names, config=config, settings=settings, method=method,
                                  compression=compression)
    # Nothing worth keeping if every file failed (e.g. a wrong audio root): the next run starts afresh.
    os.remove(partial)
    failed = [(names[r], reason) for r, reason in zip(bad, reasons)]
    return ExtractSummary(out, len(names), int(ok.size), int(bad.size), n_resumed=n_resumed,
                          seconds=time.perf_counter() - t0, failed=failed)
