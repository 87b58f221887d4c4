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

import h5py
import numpy as np

from .._util.fs import LOCK_SUFFIX, TMP_SUFFIX, check_not_inputs, output_lock, prepare_output
from .._util.log import logger
from .._util.log import progress as progress_bar
from .._util.validate import check_choice, check_positive_int
from ..errors import AudioError, DataError, StoreError
from ..io.hdf5 import is_scatterxai_file, scattering_attrs
from ..io.partial import PENDING, PartialFile, describe_change, settings_digest
from ..scattering.config import PAPER_CONFIG, ScatteringConfig, path_table
from .store import FeatureFile, write_features

__all__ = ["extract_features", "ExtractSummary", "BatchResult", "compute_batch", "extraction_settings",
           "settings_hash", "finish", "PARTIAL_SUFFIX"]

#: suffix of the interrupted extraction next to the output
PARTIAL_SUFFIX = ".partial"


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


def extraction_settings(csv_bytes: bytes, audio_root: str, config: ScatteringConfig, method: str = "fast",
                        allow_outside_root: bool = False) -> dict:
    """Everything that determines the extracted numbers (hashed into ``settings_sha256``).

    The meta CSV's bytes, the audio root, the scattering configuration, the method (``"fast"`` and
    ``"kymatio"`` differ by up to ~1e-4 relative) and whether names outside the audio root are read.
    Not included, because they change only the float32 rounding (measured: 2–3e-7 of the largest
    coefficient between batch sizes 1 and 8): the batch size, the number of threads, and the device
    (assumed, not measured); nor the package versions, which are recorded as attributes.  The audio files'
    contents are not hashed either: after changing audio files, pass ``overwrite=True`` (``--overwrite``).
    """
    return {"meta_csv_sha256": hashlib.sha256(csv_bytes).hexdigest(), "audio_root": os.path.abspath(audio_root),
            "scattering": config.to_dict(), "method": method, "allow_outside_root": bool(allow_outside_root)}


def settings_hash(csv_bytes: bytes, audio_root: str, config: ScatteringConfig, method: str = "fast",
                  allow_outside_root: bool = False) -> str:
    """sha256 of :func:`extraction_settings` (recorded as ``settings_sha256``)."""
    return settings_digest(extraction_settings(csv_bytes, audio_root, config, method, allow_outside_root))[0]


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
           settings: Tuple[str, str], method: str) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """Write the final features file from the done rows of ``store`` (if any); return (ok rows, failed rows,
    reasons).  ``settings`` is (sha256, JSON) of :func:`extraction_settings`."""
    ok, bad, reasons = store.outcome()
    examples = {k: np.asarray(v)[ok] for k, v in columns.items()}
    examples["csv_row"] = ok
    if ok.size:
        write_features(out, store.dataset("features"), examples, config, rows=ok,
                       failed={"file_name": np.array([names[r] for r in bad], dtype=object),
                               "reason": np.array(reasons, dtype=object), "csv_row": bad},
                       attrs={"settings_sha256": settings[0], "settings_json": settings[1], "method": method})
    return ok, bad, reasons


# ------------------------------------------------------------------------------------------ the command

#: column names that HDF5 cannot hold as a dataset name, or that the file defines itself
_RESERVED_COLUMNS = (".", "csv_row")


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
    for name, values in columns.items():
        if "/" in name or name in _RESERVED_COLUMNS or "\0" in name:
            raise DataError(f"{meta_csv}: column name {name!r} cannot be stored (names must not contain '/' or "
                            f"NUL, nor be one of {list(_RESERVED_COLUMNS)}); rename the column")
        if values.dtype == object:
            bad = [i for i, v in enumerate(values) if "\0" in str(v)]
            if bad:
                raise DataError(f"{meta_csv}: column {name!r} holds a NUL character (data row {bad[0] + 1}); a meta "
                                f"CSV is text: is this file binary or damaged?")
    names = [str(v) for v in columns["file_name"]]
    if not names:
        raise StoreError(f"{meta_csv} lists no files")
    return csv_bytes, columns, names


def _peek(path: str) -> Tuple[Optional[str], int]:
    """(settings_sha256, rows still pending) of a partial file, or (None, 0) if it cannot be read now (the
    partial store then reports why when it opens the file)."""
    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs.get("settings_sha256", "")), int((f["status"][()] == PENDING).sum())
    except (OSError, KeyError, TypeError, ValueError):
        return None, 0


def _legacy_sha(csv_bytes: bytes, audio_root: str, config: ScatteringConfig) -> str:
    """The settings hash of version 0.2.0 (meta CSV, audio root, scattering; the method was not in it)."""
    h = hashlib.sha256(csv_bytes)
    h.update(json.dumps({"audio_root": os.path.abspath(audio_root), "config": config.to_dict()},
                        sort_keys=True).encode())
    return h.hexdigest()


def _plan(out: str, partial: str, settings: Tuple[str, str], n_rows: int, *, overwrite: bool, retry_failed: bool,
          if_changed: str, legacy: str = "", method: str = "") -> Tuple[Optional[ExtractSummary], bool]:
    """What to do with an existing output and partial file: (summary if there is nothing to do, seed the
    partial file from ``out`` for ``retry_failed``).  Removes a partial file left after the final rename."""
    sha = settings[0]
    exists = os.path.exists(out)
    if exists and not is_scatterxai_file(out):
        raise StoreError(f"{out} exists and is not a scatterxai file; it is never replaced (choose another --out)")
    if overwrite:
        return None, False
    p_sha, p_pending = _peek(partial) if os.path.exists(partial) else (None, 0)
    resumable = p_sha == sha and p_pending > 0
    if not exists or resumable:
        if resumable and exists:
            logger.info("resuming %s; it will replace %s when done", partial, out)
        if p_sha not in (None, sha) and if_changed == "replace":
            os.remove(partial)
        return None, False
    with FeatureFile(out) as ff:
        out_sha, out_json = ff.attrs.get("settings_sha256"), ff.attrs.get("settings_json")
        n_done, failed = len(ff), ff.failed
        if out_sha == legacy and legacy and ff.attrs.get("method") == method:
            out_sha = sha   # a file of version 0.2.0 made with these settings (it records its method)
    if out_sha != sha:
        if if_changed == "replace":
            if p_sha not in (None, sha):
                os.remove(partial)
            return None, False
        change = describe_change(out_json, settings[1]) or " (meta CSV, audio root, scattering or method)"
        raise StoreError(f"{out} exists and was made with other settings{change}; choose another --out, or "
                         f"pass --overwrite to replace it")
    if p_sha == sha:   # every row finished: the run was killed between the final rename and this removal
        os.remove(partial)
        logger.info("removed %s, left over from the run that wrote %s", partial, out)
    if retry_failed and failed:
        if os.path.exists(partial):
            raise StoreError(f"{partial} holds another interrupted extraction (other settings, or in use); "
                             f"remove it (or pass --overwrite to start over) before retrying the failed rows "
                             f"of {out}")
        return None, True
    return ExtractSummary(out, n_rows, n_done, len(failed), already_complete=True, failed=failed), False


def _seed_from_output(store: PartialFile, out: str) -> None:
    """Copy the rows of a complete ``out`` into a fresh partial file (its failed rows stay pending)."""
    with FeatureFile(out) as ff:
        rows = np.asarray(ff.examples["csv_row"], dtype=np.int64)
        for i in range(0, len(rows), 64):
            store.commit(rows[i:i + 64], {"features": ff.load(np.arange(i, min(i + 64, len(rows))))})


def extract_features(meta_csv, audio_root, out, *, config: ScatteringConfig = PAPER_CONFIG, device="auto",
                     batch_size: int = 8, method: str = "fast", overwrite: bool = False,
                     retry_failed: bool = False, allow_outside_root: bool = False, if_changed: str = "error",
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
        Output path.  If it exists and was made with the same settings (:func:`extraction_settings`),
        nothing is done; with other settings a :class:`StoreError` is raised unless ``overwrite``.  A file
        that scatterxai did not write is never replaced.  One process at a time writes ``out`` (the lock
        ``OUT.lock``).
    config : ScatteringConfig
    device, method : see :func:`scatterxai.scattering.get_scattering`
    batch_size : int
        Files transformed at once.
    overwrite : bool
        Start over: discard an interrupted extraction (``OUT.partial``) and replace ``out`` when done.
        Without it, an interrupted extraction with the same settings is resumed (and replaces ``out`` when
        done, whatever ``out`` holds: only an ``overwrite`` run can have left it).
    retry_failed : bool
        Extract again the rows that failed (of ``out``, or of an interrupted extraction), keeping the others.
    allow_outside_root : bool
        Read ``file_name`` values that are absolute or contain ``..`` (:class:`~scatterxai.data.AudioResolver`).
    if_changed : {"error", "replace"}
        What to do with an ``out`` or ``OUT.partial`` made with other settings (the pipeline replaces them;
        an interrupted extraction with the same settings is still resumed).
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
    check_choice("method", method, ("fast", "kymatio"))
    check_choice("if_changed", if_changed, ("error", "replace"))
    check_not_inputs(out, {"meta CSV": meta_csv, "audio root": audio_root},
                     suffixes=("", TMP_SUFFIX, LOCK_SUFFIX, PARTIAL_SUFFIX, PARTIAL_SUFFIX + TMP_SUFFIX))
    csv_bytes, columns, names = _read_inputs(meta_csv, audio_root)
    resolve_device(device)  # fail early on a bad device name
    out = prepare_output(out)
    settings = extraction_settings(csv_bytes, audio_root, config, method, allow_outside_root)
    digest = settings_digest(settings)
    partial = out + PARTIAL_SUFFIX
    with output_lock(out, what="features file"):
        done, seed = _plan(out, partial, digest, len(names), overwrite=overwrite, retry_failed=retry_failed,
                           if_changed=if_changed, legacy=_legacy_sha(csv_bytes, audio_root, config), method=method)
        if done is not None:
            return done
        resolve = AudioResolver(audio_root, allow_outside=allow_outside_root)
        table = path_table(config)
        attrs = {**scattering_attrs(config, table), "method": method}
        with PartialFile.open_or_create(partial, n_rows=len(names), settings=settings, attrs=attrs,
                                        datasets={"features": ((len(table), table.n_frames), np.float32)},
                                        overwrite=overwrite or seed, retry_failed=retry_failed,
                                        what="extraction") as store:
            if seed:
                _seed_from_output(store, out)
            n_resumed = int((store.status() != PENDING).sum())
            with progress_bar(total=len(names), initial=n_resumed, desc="extract", unit="file",
                              enabled=progress) as bar:
                for rows in store.pending_batches(batch_size):
                    res = compute_batch(rows, names, resolve=resolve, config=config, device=device,
                                        method=method, batch_size=batch_size)
                    store.commit(res.ok_rows, {"features": res.S}, res.failed)
                    bar.update(len(rows))
            ok, bad, reasons = finish(store, out, columns, names, config=config, settings=digest, method=method)
        # Nothing worth keeping if every file failed (e.g. a wrong audio root): the next run starts afresh.
        os.remove(partial)
    failed = [(names[r], reason) for r, reason in zip(bad, reasons)]
    return ExtractSummary(out, len(names), int(ok.size), int(bad.size), n_resumed=n_resumed,
                          seconds=time.perf_counter() - t0, failed=failed)
