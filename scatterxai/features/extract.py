"""Extraction: the scattering of every file in a meta CSV → a features file, batched, resumable.

The work is split into three steps, the seam a distributed back end uses:

1. **plan rows** — :meth:`PartialFile.pending_batches`: which rows of the meta CSV are still to do;
2. **compute a batch** — :func:`compute_batch` (:mod:`.batch`): read, prepare and scatter the audio of some
   rows (no file is written: workers run this and return arrays);
3. **commit a batch** — :meth:`PartialFile.commit`: write the coefficients, then mark the rows done
   (only the committing process writes).

With ``dask=`` (``--dask``) step 2 runs on Dask workers (:mod:`.workers`), the same batches, and this
process commits them as they complete: the file is the same as a serial run's.

Work goes to ``OUT.partial`` (:class:`scatterxai.io.partial.PartialFile`): a process killed at any moment
(even with SIGKILL) leaves a readable partial file in which every row marked done is complete, and
re-running the same command resumes from it.  The final file is written to a temporary name and renamed
into place, so ``OUT`` is either absent or complete.

Labels and the split are decided here, before any audio is read (:func:`scatterxai.data.prepare_labels`:
text or integer labels → class indices and the class list; the 6:2:2 split drawn with ``seed`` when the CSV
has no ``subset`` column), and recorded in the file.  They do not change the coefficients: extracting
again with another split seed or class list rewrites the file's labels from the existing coefficients.

A file longer than the transform's window (N / sr seconds) is truncated to its first window, with a
warning, unless ``segments=True``: then it is cut into consecutive windows
(:func:`scatterxai.audio.segment_starts`), each a row with ``segment`` and ``start_s`` columns, all
sharing the file's CSV row (and so its subset: the windows of one recording never straddle the split).
"""

from __future__ import annotations

import contextlib
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
from .._util.types import DaskSpec, Device, PathLike
from .._util.validate import check_choice, check_positive_int, check_seed
from ..errors import AudioError, DataError, StoreError
from ..io.hdf5 import is_scatterxai_file, read_config, scattering_attrs
from ..io.netcdf import dataset_options
from ..io.partial import PENDING, PartialFile, describe_change, settings_digest
from ..scattering.config import PAPER_CONFIG, ScatteringConfig, path_table
from .batch import BatchResult, compute_batch
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
    relabelled: bool = False
    truncated: List[str] = field(default_factory=list)
    window_s: float = 0.0
    n_rows: int = 0

    def describe(self) -> str:
        if self.already_complete:
            head = f"{self.out}: already complete with these settings ({self.n_ok} examples); nothing to do"
        elif self.relabelled:
            head = (f"{self.out}: coefficients unchanged ({self.n_ok} examples); labels, classes and split "
                    f"rewritten with the new settings")
        else:
            head = (f"{self.out}: {self.n_ok} of {self.n_total} files extracted, {self.n_failed} failed"
                    + (f", {self.n_resumed} resumed from an interrupted run" if self.n_resumed else "")
                    + f" ({self.seconds:.1f} s)")
        if self.n_rows > self.n_total:
            head += f"; {self.n_rows} windows of {self.window_s:.2f} s (--segments)"
        lines = [head] + [f"  failed: {name}: {reason}" for name, reason in self.failed[:20]]
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more (see /failed in the file)")
        if self.truncated:
            lines.append(f"  {len(self.truncated)} file(s) are longer than the {self.window_s:.2f} s window and "
                         f"only their first {self.window_s:.2f} s were used (e.g. {self.truncated[0]}); "
                         f"--segments cuts long files into consecutive windows")
        return "\n".join(lines)


def extraction_settings(csv_bytes: bytes, audio_root: str, config: ScatteringConfig, method: str = "fast",
                        allow_outside_root: bool = False, segments: bool = False) -> dict:
    """Everything that determines the extracted numbers (hashed into ``settings_sha256``).

    The meta CSV's bytes, the audio root, the scattering configuration, the method (``"fast"`` and
    ``"kymatio"`` differ by up to ~1e-4 relative), whether names outside the audio root are read, whether
    long files are cut into windows, and how short files are lengthened
    (:data:`scatterxai.audio.PREPARATION`: files of earlier versions, which zero-padded them, are not resumed
    or reused).  Not included, because they change only the float32 rounding
    (measured: 2–3e-7 of the largest coefficient between batch sizes 1 and 8): the batch size, the number of
    threads, and the device (assumed, not measured); nor the package versions, which are recorded as
    attributes.  The audio files' contents are not hashed either: after changing audio files, pass
    ``overwrite=True`` (``--overwrite``).  Labels and the split do not change the coefficients: they have
    their own hash (:func:`labels_hash`).
    """
    from ..audio import PREPARATION
    settings = {"meta_csv_sha256": hashlib.sha256(csv_bytes).hexdigest(), "audio_root": os.path.abspath(audio_root),
                "scattering": config.to_dict(), "method": method, "allow_outside_root": bool(allow_outside_root),
                "preparation": PREPARATION}
    if segments:
        settings["segments"] = True
    return settings


def settings_hash(csv_bytes: bytes, audio_root: str, config: ScatteringConfig, method: str = "fast",
                  allow_outside_root: bool = False, segments: bool = False) -> str:
    """sha256 of :func:`extraction_settings` (recorded as ``settings_sha256``)."""
    return settings_digest(extraction_settings(csv_bytes, audio_root, config, method, allow_outside_root,
                                               segments))[0]


def labels_hash(info) -> str:
    """sha256 of the labels, classes and subsets a :class:`~scatterxai.data.LabelInfo` assigns."""
    h = hashlib.sha256(json.dumps({"classes": list(info.classes), "split": info.split,
                                   "seed": info.split_seed, "groups": info.split_groups}).encode())
    for a in (info.labels, info.subset):
        if a is not None:
            h.update(np.asarray(a).astype(str).tobytes())
    return h.hexdigest()


# ------------------------------------------------------------------------------- plan / compute / commit

def finish(store: PartialFile, out: str, columns: Dict[str, np.ndarray], names: Sequence[str], *,
           config: ScatteringConfig, settings: Tuple[str, str], method: str, classes: Sequence[str] = (),
           attrs: Optional[dict] = None, plan: Optional[SegmentPlan] = None,
           compression: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """Write the final features file from the done rows of ``store`` (if any); return (ok rows, failed rows,
    reasons).  ``settings`` is (sha256, JSON) of :func:`extraction_settings`; ``columns`` and ``names`` are per
    CSV row; with a segment ``plan`` the store's rows are windows, mapped to their CSV rows."""
    ok, bad, reasons = store.outcome()
    csv_ok = ok if plan is None else plan.csv_row[ok]
    csv_bad = bad if plan is None else plan.csv_row[bad]
    examples = {k: np.asarray(v)[csv_ok] for k, v in columns.items()}
    if plan is not None:
        examples["segment"], examples["start_s"] = plan.segment[ok], plan.start_s[ok]
    examples["csv_row"] = csv_ok
    if ok.size:
        write_features(out, store.dataset("features"), examples, config, rows=ok, classes=classes or None,
                       failed={"file_name": np.array([names[r] for r in csv_bad], dtype=object),
                               "reason": np.array(reasons, dtype=object), "csv_row": csv_bad},
                       attrs={"settings_sha256": settings[0], "settings_json": settings[1], "method": method,
                              **(attrs or {})}, compression=compression)
    return ok, bad, reasons


@dataclass
class SegmentPlan:
    """The windows of every file of a meta CSV (``--segments``): one row per window."""

    csv_row: np.ndarray   # (R,) int64: the CSV row of each window
    segment: np.ndarray   # (R,) int64: index of the window within its file
    start_s: np.ndarray   # (R,) float64: start of the window in its file (s)

    @classmethod
    def of(cls, names: Sequence[str], resolve, config: ScatteringConfig) -> SegmentPlan:
        """Read every file's duration from its header (unreadable files get one window, which fails later)."""
        from ..audio import audio_info, segment_starts
        csv_row, segment, start_s = [], [], []
        for i, name in enumerate(names):
            try:
                starts = segment_starts(audio_info(resolve(name))[0], config.N / config.sr)
            except AudioError:
                starts = np.zeros(1)
            csv_row += [i] * len(starts)
            segment += range(len(starts))
            start_s += starts.tolist()
        return cls(np.array(csv_row, np.int64), np.array(segment, np.int64), np.array(start_s, np.float64))


# ------------------------------------------------------------------------------------------ the command

#: column names that HDF5 cannot hold as a dataset name, or that the file defines itself
_RESERVED_COLUMNS = (".", "csv_row", "segment", "start_s")


def _read_inputs(meta_csv: str, audio_root: str, *, classes=None, seed: int = 0):
    """(CSV bytes, columns with encoded labels and subsets, file names, LabelInfo)."""
    from ..data.labels import prepare_labels
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
    info = prepare_labels(columns, classes=classes, seed=seed, what=meta_csv)
    return csv_bytes, info.apply(columns), names, info


def _peek(path: str) -> Tuple[Optional[str], int]:
    """(settings_sha256, rows still pending) of a partial file, or (None, 0) if it cannot be read now (the
    partial store then reports why when it opens the file)."""
    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs.get("settings_sha256", "")), int((f["status"][()] == PENDING).sum())
    except (OSError, KeyError, TypeError, ValueError):
        return None, 0


def _plan(out: str, partial: str, settings: Tuple[str, str], labels: str, *, overwrite: bool, retry_failed: bool,
          if_changed: str) -> str:
    """What to do with an existing output and partial file: "compute", "complete" (nothing to do),
    "relabel" (same coefficients, other labels or split) or "retry" (seed a partial file from ``out`` and
    compute its failed rows).  Removes a partial file left after the final rename."""
    sha = settings[0]
    exists = os.path.exists(out)
    if exists and not is_scatterxai_file(out):
        raise StoreError(f"{out} exists and is not a scatterxai file; it is never replaced (choose another --out)")
    if overwrite:
        return "compute"
    p_sha, p_pending = _peek(partial) if os.path.exists(partial) else (None, 0)
    resumable = p_sha == sha and p_pending > 0
    if not exists or resumable:
        if resumable and exists:
            logger.info("resuming %s; it will replace %s when done", partial, out)
        if p_sha not in (None, sha) and if_changed == "replace":
            os.remove(partial)
        return "compute"
    with FeatureFile(out) as ff:
        out_sha, out_json = ff.attrs.get("settings_sha256"), ff.attrs.get("settings_json")
        same_labels = ff.attrs.get("labels_sha256") == labels
        n_failed = len(ff.failed)
    if out_sha != sha:
        if if_changed == "replace":
            if p_sha not in (None, sha):
                os.remove(partial)
            return "compute"
        change = describe_change(out_json, settings[1]) or " (meta CSV, audio root, scattering or method)"
        raise StoreError(f"{out} exists and was made with other settings{change}; choose another --out, or "
                         f"pass --overwrite to replace it")
    if p_sha == sha:   # every row finished: the run was killed between the final rename and this removal
        os.remove(partial)
        logger.info("removed %s, left over from the run that wrote %s", partial, out)
    if retry_failed and n_failed:
        if os.path.exists(partial):
            raise StoreError(f"{partial} holds another interrupted extraction (other settings, or in use); "
                             f"remove it (or pass --overwrite to start over) before retrying the failed rows "
                             f"of {out}")
        return "retry"
    return "complete" if same_labels else "relabel"


def _seed_from_output(store: PartialFile, out: str, plan: Optional[SegmentPlan]) -> None:
    """Copy the rows of a complete ``out`` into a fresh partial file (its failed rows stay pending)."""
    with FeatureFile(out) as ff:
        csv_rows = np.asarray(ff.examples["csv_row"], dtype=np.int64)
        if plan is None:
            rows = csv_rows
        else:  # store rows are windows: (csv row, segment) → position in the plan
            where = {(int(c), int(g)): i for i, (c, g) in enumerate(zip(plan.csv_row, plan.segment))}
            rows = np.array([where[(int(c), int(g))] for c, g in zip(csv_rows, ff.examples["segment"])], np.int64)
        for i in range(0, len(rows), 64):
            store.commit(rows[i:i + 64], {"features": ff.load(np.arange(i, min(i + 64, len(rows))))})


def _relabel(out: str, columns: Dict[str, np.ndarray], names: Sequence[str], attrs: dict, classes) -> int:
    """Rewrite ``out`` with new labels and subsets (and μ of the new training rows), same coefficients."""
    import h5py
    with h5py.File(out, "r") as f:
        ex = f["examples"]
        csv_ok = ex["csv_row"][()]
        examples = {k: np.asarray(v)[csv_ok] for k, v in columns.items()}
        for k in ("segment", "start_s"):
            if k in ex:
                examples[k] = ex[k][()]
        examples["csv_row"] = csv_ok
        bad = f["failed/csv_row"][()] if "failed/csv_row" in f else np.zeros(0, np.int64)
        failed = {"file_name": np.array([names[r] for r in bad], dtype=object),
                  "reason": np.array(f["failed/reason"].asstr()[()], dtype=object), "csv_row": bad}
        keep = {k: f.attrs[k] for k in ("settings_sha256", "method", "segments", "audio_root") if k in f.attrs}
        write_features(out, f["features"], examples, read_config(f.attrs, "scatterxai features"),
                       classes=classes or None, failed=failed, attrs={**keep, **attrs},
                       compression=f["features"].compression)  # as it was written
    return int(csv_ok.size)


def extract_features(meta_csv: PathLike, audio_root: PathLike, out: PathLike, *,
                     config: ScatteringConfig = PAPER_CONFIG, device: Device = "auto", batch_size: int = 8,
                     method: str = "fast", overwrite: bool = False, classes: Optional[Sequence[str]] = None,
                     seed: int = 0, segments: bool = False, retry_failed: bool = False,
                     allow_outside_root: bool = False, if_changed: str = "error",
                     compression: Optional[str] = None, progress: bool = True,
                     dask: DaskSpec = None) -> ExtractSummary:
    """Scattering features of every file listed in a meta CSV → features HDF5 (resumable).

    Parameters
    ----------
    meta_csv : str
        CSV with at least a ``file_name`` column (relative to ``audio_root``; if not found there, the file is
        looked up by base name anywhere under ``audio_root``, as in the SOL tree).  Every column is copied
        to ``/examples``; ``label`` (text or integers) becomes class indices and ``subset`` is drawn when
        absent (:func:`scatterxai.data.prepare_labels`).
    audio_root : str
    out : str
        Output path (created with at most one missing folder above it).  If it exists and was made with the
        same settings (:func:`extraction_settings`), nothing is done (or only its labels are rewritten, when
        ``classes`` or ``seed`` changed them); with other settings a :class:`StoreError` is raised unless
        ``overwrite``.  A file that scatterxai did not write is never replaced.  One process at a time
        writes ``out`` (the lock ``OUT.lock``).
    config : ScatteringConfig
    device, method : see :func:`scatterxai.scattering.get_scattering`
    batch_size : int
        Files transformed at once.
    overwrite : bool
        Start over: discard an interrupted extraction (``OUT.partial``) and replace ``out`` when done.
        Without it, an interrupted extraction with the same settings is resumed (and replaces ``out`` when
        done, whatever ``out`` holds: only an ``overwrite`` run can have left it).
    classes : sequence of str, optional
        The class list (names of integer labels, or the order of text labels); default: from the data.
    seed : int
        Seed of the 6:2:2 split drawn when the CSV has no ``subset`` column (recorded as ``split_seed``).
    segments : bool
        Cut files longer than the window into consecutive windows (one row each) instead of truncating
        them.
    retry_failed : bool
        Extract again the rows that failed (of ``out``, or of an interrupted extraction), keeping the others.
    allow_outside_root : bool
        Read ``file_name`` values that are absolute or contain ``..`` (:class:`~scatterxai.data.AudioResolver`).
    if_changed : {"error", "replace"}
        What to do with an ``out`` or ``OUT.partial`` made with other settings (the pipeline replaces them;
        an interrupted extraction with the same settings is still resumed).
    progress : bool
        Show a progress bar.
    compression : {None, "gzip", "lzf"}
        Lossless compression of ``/features`` in the final file (see :func:`write_features`; it does not
        change the numbers, so an existing output with the same settings is kept as it is).
    dask : str or distributed.Client, optional
        Compute the batches on a Dask cluster (:mod:`scatterxai.features.workers`): ``"local:N"`` (N worker
        processes here), a scheduler address (``"tcp://host:8786"``) or a Client; this process writes.  The
        file is the same as a serial run's with one torch thread.  Default: this process only.

    Returns
    -------
    ExtractSummary
    """
    from .._util.cluster import check_dask, dask_client
    from .._util.device import resolve_device
    from ..data.paths import AudioResolver

    t0 = time.perf_counter()
    meta_csv, audio_root, out = os.fspath(meta_csv), os.fspath(audio_root), os.fspath(out)
    batch_size = check_positive_int("batch_size", batch_size)
    seed = check_seed("seed", seed)
    check_choice("method", method, ("fast", "kymatio"))
    check_choice("if_changed", if_changed, ("error", "replace"))
    dataset_options(compression, (0,))  # fail early on a bad compression name
    dask = check_dask(dask)
    check_not_inputs(out, {"meta CSV": meta_csv, "audio root": audio_root},
                     suffixes=("", TMP_SUFFIX, LOCK_SUFFIX, PARTIAL_SUFFIX, PARTIAL_SUFFIX + TMP_SUFFIX))
    csv_bytes, columns, names, info = _read_inputs(meta_csv, audio_root, classes=classes, seed=seed)
    resolve_device(device)  # fail early on a bad device name
    out = prepare_output(out)
    settings = extraction_settings(csv_bytes, audio_root, config, method, allow_outside_root, bool(segments))
    digest = settings_digest(settings)
    labels = labels_hash(info)
    window_s = config.N / config.sr
    label_attrs = {**{k: v for k, v in info.attrs().items() if k != "classes"}, "labels_sha256": labels}
    partial = out + PARTIAL_SUFFIX
    with output_lock(out, what="features file"):
        state = _plan(out, partial, digest, labels, overwrite=overwrite, retry_failed=retry_failed,
                      if_changed=if_changed)
        if state in ("complete", "relabel"):
            if state == "relabel":
                _relabel(out, columns, names, label_attrs, info.classes)
            with FeatureFile(out) as ff:
                n, failed = len(ff), ff.failed
            return ExtractSummary(out, len(names), n, len(failed), already_complete=state == "complete",
                                  relabelled=state == "relabel", failed=failed, window_s=window_s)
        resolve = AudioResolver(audio_root, allow_outside=allow_outside_root)
        plan = SegmentPlan.of(names, resolve, config) if segments else None
        row_names = names if plan is None else [names[r] for r in plan.csv_row]
        starts = None if plan is None else plan.start_s
        table = path_table(config)
        attrs = {**scattering_attrs(config, table), "method": method}
        n_rows = len(row_names)
        truncated = []
        with PartialFile.open_or_create(partial, n_rows=n_rows, settings=settings, attrs=attrs,
                                        datasets={"features": ((len(table), table.n_frames), np.float32)},
                                        overwrite=overwrite or state == "retry", retry_failed=retry_failed,
                                        what="extraction") as store:
            if state == "retry":
                _seed_from_output(store, out, plan)
            n_resumed = int((store.status() != PENDING).sum())
            use_dask = dask is not None and n_resumed < n_rows
            with progress_bar(total=n_rows, initial=n_resumed, desc="extract",
                              unit="file" if plan is None else "window", enabled=progress) as bar, \
                    (dask_client(dask) if use_dask else contextlib.nullcontext()) as client:
                batches = store.pending_batches(batch_size)
                if use_dask:   # the same batches, computed on the workers; committed here as they come
                    from .workers import dask_batches
                    results = dask_batches(client, batches, row_names, starts, resolve=resolve, config=config,
                                           device=device, method=method, batch_size=batch_size,
                                           kept=f"the rows done so far are kept in {partial}: re-run to resume")
                else:
                    results = ((rows, compute_batch(rows, row_names, resolve=resolve, config=config, device=device,
                                                    method=method, batch_size=batch_size, starts=starts))
                               for rows in batches)
                for rows, res in results:
                    store.commit(res.ok_rows, {"features": res.S}, res.failed)
                    truncated += res.truncated
                    bar.update(len(rows))
            truncated = [row_names[r] for r in sorted(truncated)]
            ok, bad, reasons = finish(store, out, columns, names, config=config, settings=digest, method=method,
                                      classes=info.classes, plan=plan,
                                      attrs={**label_attrs, "segments": bool(segments),
                                             "audio_root": os.path.abspath(audio_root)},
                                      compression=compression)
        # Nothing worth keeping if every file failed (e.g. a wrong audio root): the next run starts afresh.
        os.remove(partial)
    if truncated:
        logger.warning("warning: %d file(s) are longer than the transform's window (%.2f s) and only their first "
                       "%.2f s were used, e.g. %s; --segments (segments=True) cuts them into consecutive "
                       "windows instead", len(truncated), window_s, window_s, truncated[0])
    bad_csv = bad if plan is None else np.unique(plan.csv_row[bad])
    failed = [(row_names[r], reason) for r, reason in zip(bad, reasons)]
    n_ok_files = int(ok.size) if plan is None else int(np.unique(plan.csv_row[ok]).size)
    return ExtractSummary(out, len(names), n_ok_files, int(bad_csv.size), n_resumed=n_resumed,
                          seconds=time.perf_counter() - t0, failed=failed, truncated=truncated,
                          window_s=window_s, n_rows=n_rows)
