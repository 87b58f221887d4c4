"""Extraction: the scattering of every file in a meta CSV → a features file, batched, resumable.

:func:`extract_features` runs named steps: :meth:`_Job.prepare` (arguments, the output rule, the meta CSV,
labels and settings — nothing written), :func:`.plan._plan` (what the existing output and partial file allow:
compute, resume, retry, relabel or nothing), :func:`_compute_and_commit` and :func:`_summary`.  The work of
:func:`_compute_and_commit` is split into three steps, the seam a distributed back end uses:

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
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._util.log import logger
from .._util.log import progress as progress_bar
from .._util.outputs import check_output, claim_output
from .._util.types import DaskSpec, Device, PathLike
from .._util.validate import check_choice, check_positive_int, check_seed
from ..io.hdf5 import scattering_attrs
from ..io.netcdf import dataset_options
from ..io.partial import PENDING, PartialFile, settings_digest
from ..scattering.config import PAPER_CONFIG, ScatteringConfig, path_table
from .augment import AugmentConfig, sync_augmentation
from .batch import BatchResult, compute_batch
from .plan import (  # noqa: F401
    SegmentPlan,
    _plan,
    _read_inputs,
    _relabel,
    _seed_from_output,
    extraction_settings,
    finish,
    labels_hash,
    settings_hash,
)
from .store import FeatureFile

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
    n_augmented: int = 0

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
        if self.n_augmented:
            lines.append(f"  {self.n_augmented} augmented copies (training only; column 'augmented')")
        if self.truncated:
            lines.append(f"  {len(self.truncated)} file(s) are longer than the {self.window_s:.2f} s window and "
                         f"only their first {self.window_s:.2f} s were used (e.g. {self.truncated[0]}); "
                         f"--segments cuts long files into consecutive windows")
        return "\n".join(lines)


def extract_features(meta_csv: PathLike, audio_root: PathLike, out: PathLike, *,
                     config: ScatteringConfig = PAPER_CONFIG, device: Device = "auto", batch_size: int = 8,
                     method: str = "fast", overwrite: bool = False, classes: Optional[Sequence[str]] = None,
                     seed: int = 0, segments: bool = False, retry_failed: bool = False,
                     allow_outside_root: bool = False, if_changed: str = "error",
                     compression: Optional[str] = None, progress: bool = True,
                     dask: DaskSpec = None, jobs: Optional[int] = None,
                     augment: Optional[AugmentConfig] = None) -> ExtractSummary:
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
        processes here), a scheduler address (``"tcp://host:8786"``) or a Client; this process writes.
        Default: processes of this machine (``jobs``).
    jobs : int, optional
        Worker processes of this machine computing the batches (default 1: this process; the command line's
        default is one per core).
        Every batch is computed with one torch thread — in a worker, in this process and on Dask's workers —
        so the file is the same, bit for bit, whatever ``jobs`` and ``dask``.
    augment : AugmentConfig, optional
        Append augmented copies of every row, for training only (:mod:`scatterxai.features.augment`); an
        existing output gets exactly these copies (None: its copies are removed).

    Returns
    -------
    ExtractSummary
    """
    t0 = time.perf_counter()
    job = _Job.prepare(meta_csv, audio_root, out, config=config, device=device, batch_size=batch_size,
                       method=method, overwrite=overwrite, classes=classes, seed=seed, segments=segments,
                       allow_outside_root=allow_outside_root, if_changed=if_changed, compression=compression,
                       dask=dask, jobs=jobs)
    with claim_output(job.out, kind="features", inputs=job.inputs, overwrite=overwrite) as claim:   # the rule
        job.out, job.partial = claim.path, claim.path + PARTIAL_SUFFIX
        state = _plan(job.out, job.partial, job.digest, job.labels, overwrite=overwrite, retry_failed=retry_failed,
                      if_changed=if_changed)
        if state in ("complete", "relabel"):
            return _unchanged(job, state, augment, progress)
        outcome = _compute_and_commit(job, state, retry_failed=retry_failed, progress=progress)
        n_aug = _augment(job, augment, progress) if outcome.ok.size else 0
    return _summary(job, outcome, time.perf_counter() - t0, n_aug)


@dataclass
class _Job:
    """An extraction, planned: validated settings, the meta CSV read, labels decided, settings hashed."""

    meta_csv: str
    audio_root: str
    out: str
    config: ScatteringConfig
    device: Device
    batch_size: int
    method: str
    segments: bool
    allow_outside_root: bool
    compression: Optional[str]
    dask: DaskSpec
    csv_bytes: bytes
    columns: Dict[str, np.ndarray]
    names: List[str]
    info: object            # LabelInfo
    settings: dict
    overwrite: bool = False
    jobs: int = 1
    partial: str = ""

    @classmethod
    def prepare(cls, meta_csv, audio_root, out, *, config, device, batch_size, method, overwrite, classes, seed,
                segments, allow_outside_root, if_changed, compression, dask, jobs=None) -> _Job:
        """Check every argument and the output rule, read the meta CSV and decide labels (nothing written)."""
        from .._util.cluster import check_dask
        from .._util.device import resolve_device
        meta_csv, audio_root, out = os.fspath(meta_csv), os.fspath(audio_root), os.fspath(out)
        batch_size = check_positive_int("batch_size", batch_size)
        seed = check_seed("seed", seed)
        check_choice("method", method, ("fast", "kymatio"))
        check_choice("if_changed", if_changed, ("error", "replace"))
        dataset_options(compression, (0,))  # fail early on a bad compression name
        dask = check_dask(dask)
        inputs = {"meta CSV": meta_csv, "audio root": audio_root}
        check_output(out, kind="features", inputs=inputs, overwrite=overwrite, create=False)   # before reading
        csv_bytes, columns, names, info = _read_inputs(meta_csv, audio_root, classes=classes, seed=seed)
        dev = resolve_device(device)  # fail early on a bad device name
        jobs = check_positive_int("jobs", jobs if jobs is not None else 1)
        if dev.type != "cpu":
            jobs = 1   # one process drives the GPU
        settings = extraction_settings(csv_bytes, audio_root, config, method, allow_outside_root, bool(segments))
        return cls(meta_csv, audio_root, out, config, device, batch_size, method, bool(segments),
                   bool(allow_outside_root), compression, dask, csv_bytes, columns, names, info, settings,
                   bool(overwrite), jobs)

    def is_overwrite(self, state: str) -> bool:
        """Start the partial file afresh: asked for, or seeded from the output to retry its failed rows."""
        return self.overwrite or state == "retry"

    @property
    def inputs(self) -> dict:
        return {"meta CSV": self.meta_csv, "audio root": self.audio_root}

    @property
    def digest(self) -> Tuple[str, str]:
        return settings_digest(self.settings)

    @property
    def labels(self) -> str:
        return labels_hash(self.info)

    @property
    def label_attrs(self) -> dict:
        return {**{k: v for k, v in self.info.attrs().items() if k != "classes"}, "labels_sha256": self.labels}

    @property
    def window_s(self) -> float:
        return self.config.N / self.config.sr


def _augment(job: _Job, augment: Optional[AugmentConfig], progress: bool) -> int:
    """Give the output exactly the augmented copies of ``augment`` (:func:`.augment.sync_augmentation`)."""
    return sync_augmentation(job.out, job.audio_root, augment, device=job.device, method=job.method,
                             batch_size=job.batch_size, allow_outside_root=job.allow_outside_root, progress=progress)


def _unchanged(job: _Job, state: str, augment: Optional[AugmentConfig], progress: bool) -> ExtractSummary:
    """The output holds these coefficients already: rewrite its labels if they changed, and its augmented
    copies if ``augment`` changed; nothing else."""
    if state == "relabel":
        _relabel(job.out, job.columns, job.names, job.label_attrs, job.info.classes)
    n_aug = _augment(job, augment, progress)
    with FeatureFile(job.out) as ff:
        n, failed = len(ff.indices("all")), ff.failed
    return ExtractSummary(job.out, len(job.names), n, len(failed), already_complete=state == "complete",
                          relabelled=state == "relabel", failed=failed, window_s=job.window_s, n_augmented=n_aug)


@dataclass
class _Outcome:
    """What :func:`_compute_and_commit` did: rows done and failed (store rows), truncated rows (of every run
    that filled the partial file), rows resumed from an interrupted run, and the segment plan."""

    ok: np.ndarray
    bad: np.ndarray
    reasons: List[str]
    truncated: np.ndarray
    n_resumed: int
    n_rows: int
    plan: Optional[SegmentPlan]
    row_names: List[str]


#: the note that marks a done row of the partial file whose file was longer than the window
TRUNCATED = "truncated"


def _compute_and_commit(job: _Job, state: str, *, retry_failed: bool, progress: bool) -> _Outcome:
    """Compute the pending rows (serially, or on Dask workers) and commit them to the partial file as they
    come; then write the final file from the partial file and remove it."""
    from .._util.cluster import dask_client
    from ..data.paths import AudioResolver
    resolve = AudioResolver(job.audio_root, allow_outside=job.allow_outside_root)
    plan = SegmentPlan.of(job.names, resolve, job.config) if job.segments else None
    row_names = job.names if plan is None else [job.names[r] for r in plan.csv_row]
    starts = None if plan is None else plan.start_s
    table = path_table(job.config)
    attrs = {**scattering_attrs(job.config, table), "method": job.method}
    n_rows = len(row_names)
    with PartialFile.open_or_create(job.partial, n_rows=n_rows, settings=job.settings, attrs=attrs,
                                    datasets={"features": ((len(table), table.n_frames), np.float32)},
                                    overwrite=job.is_overwrite(state), retry_failed=retry_failed,
                                    what="extraction") as store:
        if state == "retry":
            _seed_from_output(store, job.out, plan)
        n_resumed = int((store.status() != PENDING).sum())
        use_dask = job.dask is not None and n_resumed < n_rows
        with progress_bar(total=n_rows, initial=n_resumed, desc="extract",
                          unit="file" if plan is None else "window", enabled=progress) as bar, \
                (dask_client(job.dask) if use_dask else contextlib.nullcontext()) as client:
            batches = store.pending_batches(job.batch_size)
            if use_dask:   # the same batches, computed on the workers; committed here as they come
                from .workers import dask_batches
                results = dask_batches(client, batches, row_names, starts, resolve=resolve, config=job.config,
                                       device=job.device, method=job.method, batch_size=job.batch_size,
                                       kept=f"the rows done so far are kept in {job.partial}: re-run to resume")
            elif min(job.jobs, store.n_pending_batches(job.batch_size)) > 1:   # processes of this machine
                from .workers import local_batches
                results = local_batches(min(job.jobs, store.n_pending_batches(job.batch_size)), batches, row_names,
                                        starts, resolve=resolve, config=job.config, device=job.device,
                                        method=job.method, batch_size=job.batch_size)
            else:   # this process, one torch thread per batch as on the workers
                results = _serial(batches, row_names, starts, job, resolve)
            for rows, res in results:
                store.commit(res.ok_rows, {"features": res.S}, res.failed,
                             notes=[(r, TRUNCATED) for r in res.truncated])
                bar.update(len(rows))
        truncated = store.noted(TRUNCATED)
        ok, bad, reasons = finish(store, job.out, job.columns, job.names, config=job.config, settings=job.digest,
                                  method=job.method, classes=job.info.classes, plan=plan,
                                  attrs={**job.label_attrs, "segments": job.segments,
                                         "audio_root": os.path.abspath(job.audio_root)},
                                  compression=job.compression)
    # Nothing worth keeping if every file failed (e.g. a wrong audio root): the next run starts afresh.
    os.remove(job.partial)
    return _Outcome(ok, bad, reasons, truncated, n_resumed, n_rows, plan, row_names)


def _serial(batches, row_names, starts, job: _Job, resolve):
    """``(rows, BatchResult)`` of every batch computed in this process with one torch thread (the thread count
    of every worker, so that the file does not depend on ``jobs`` or ``dask``)."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for rows in batches:
            yield rows, compute_batch(rows, row_names, resolve=resolve, config=job.config, device=job.device,
                                      method=job.method, batch_size=job.batch_size, starts=starts)
    finally:
        torch.set_num_threads(threads)


def _summary(job: _Job, o: _Outcome, seconds: float, n_augmented: int = 0) -> ExtractSummary:
    truncated = [o.row_names[r] for r in sorted(o.truncated)]
    if truncated:
        logger.warning("warning: %d file(s) are longer than the transform's window (%.2f s) and only their first "
                       "%.2f s were used, e.g. %s; --segments (segments=True) cuts them into consecutive "
                       "windows instead", len(truncated), job.window_s, job.window_s, truncated[0])
    bad_csv = o.bad if o.plan is None else np.unique(o.plan.csv_row[o.bad])
    failed = [(o.row_names[r], reason) for r, reason in zip(o.bad, o.reasons)]
    n_ok_files = int(o.ok.size) if o.plan is None else int(np.unique(o.plan.csv_row[o.ok]).size)
    return ExtractSummary(job.out, len(job.names), n_ok_files, int(bad_csv.size), n_resumed=o.n_resumed,
                          seconds=seconds, failed=failed, truncated=truncated, window_s=job.window_s,
                          n_rows=o.n_rows, n_augmented=n_augmented)
