"""``scatterxai describe``: the descriptors of every note (or a bounded subset) of a meta CSV → HDF5, resumable.

The work follows extraction's three steps (:mod:`scatterxai.features.extract`), the seam a distributed back
end uses:

1. **plan rows** — :func:`select_rows` (which notes) and :meth:`PartialFile.pending_batches` (which of them
   are still to do);
2. **compute a batch** — :func:`compute_batch`: read each note and compute its audio descriptors (no file
   is written: worker processes run this and return arrays);
3. **commit a batch** — :meth:`PartialFile.commit` (only the parent process writes).

Audio descriptors (pYIN, ≈ 0.3–0.5 s per note on a CPU core) go to ``OUT.partial``, so a killed run resumes
where it stopped; a note that cannot be read or described is listed in ``/failed`` with the reason.  The
scattering descriptors are cheap and computed at the end from ``--features`` (matched to the notes by
``file_name``; a name the features file lists twice is disambiguated by ``csv_row``); notes the features
file lacks get NaN.  ``OUT`` is written to a temporary name and renamed, so it is either absent or complete.

Which part of a note is described: the first ``max_seconds`` of the file as read (mono, at its own sample
rate, not standardised) — by default the scattering window N / sr (5.94 s for the paper configuration),
i.e. what the network sees; only that part is decoded.  0 describes the whole file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..._util.log import logger
from ..._util.log import progress as progress_bar
from ..._util.outputs import claims_output
from ..._util.types import DaskSpec, PathLike
from ..._util.validate import check_float, check_int, check_positive_float, check_positive_int
from ...errors import ParameterError, ScatterXAIError, StoreError
from ...io.partial import PENDING, PartialFile
from ...scattering.config import PAPER_CONFIG
from .descriptors import (
    AUDIO_DESCRIPTORS,
    AUDIO_VECTORS,
    C1_HZ,
    C8_HZ,
    SCATTERING_DESCRIPTORS,
    envelope_axis,
    mel_axis,
    modulation_axis,
)
from .store import DescriptorFile, match_notes, write_descriptors

__all__ = ["DescribeConfig", "DescribeSummary", "BatchResult", "compute_batch", "select_rows", "describe_notes",
           "DESCRIBE_VERSION"]

#: bumped whenever the descriptors of a given note change (2: the audio vectors mel_spectrum, envelope_spectrum)
DESCRIBE_VERSION = 2


@dataclass(frozen=True)
class DescribeConfig:
    """Settings of :func:`describe_notes`.

    Parameters
    ----------
    subset : str, optional
        Describe only the rows of this subset (``subset`` column of the meta CSV), e.g. "test".
    max_notes : int, optional
        Describe at most this many notes, spread over classes and instruments
        (:func:`scatterxai.data.split.spread_subset` on the ``label`` and ``instrument`` columns).
    seed : int
        Seed of that choice.
    max_seconds : float, optional
        Seconds described from the start of each file; None: the scattering window N / sr of the
        features file (the paper's 5.94 s without one); 0: the whole file.
    fmin_hz, fmax_hz : float
        pYIN's search range (C1–C8).
    jobs : int
        Worker processes (fork) computing descriptors; results are committed by the parent.
    batch_size : int
        Notes per task (and per commit).
    """

    subset: Optional[str] = None
    max_notes: Optional[int] = None
    seed: int = 0
    max_seconds: Optional[float] = None
    fmin_hz: float = C1_HZ
    fmax_hz: float = C8_HZ
    jobs: int = 1
    batch_size: int = 4

    def __post_init__(self):
        if self.max_notes is not None:
            check_positive_int("max_notes", self.max_notes)
        check_int("seed", self.seed, low=0)
        if self.max_seconds is not None:
            check_float("max_seconds", self.max_seconds, low=0)
        check_positive_float("fmin_hz", self.fmin_hz)
        check_positive_float("fmax_hz", self.fmax_hz)
        if not self.fmin_hz < self.fmax_hz:
            raise ParameterError(f"fmin_hz must be below fmax_hz, got {self.fmin_hz} and {self.fmax_hz}")
        check_positive_int("jobs", self.jobs)
        check_positive_int("batch_size", self.batch_size)

    def result_settings(self) -> dict:
        """The settings that determine the numbers (not jobs or batch size)."""
        return {k: v for k, v in asdict(self).items() if k not in ("jobs", "batch_size")}


@dataclass
class DescribeSummary:
    """What :func:`describe_notes` did."""

    out: str
    n_selected: int
    n_ok: int
    n_failed: int
    n_resumed: int = 0
    seconds: float = 0.0
    already_complete: bool = False
    failed: List[tuple] = field(default_factory=list)

    def describe(self) -> str:
        if self.already_complete:
            head = f"{self.out}: already complete with these settings ({self.n_ok} notes); nothing to do"
        else:
            head = (f"{self.out}: {self.n_ok} of {self.n_selected} notes described, {self.n_failed} failed"
                    + (f", {self.n_resumed} resumed from an interrupted run" if self.n_resumed else "")
                    + f" ({self.seconds:.1f} s)")
        lines = [head] + [f"  failed: {name}: {reason}" for name, reason in self.failed[:20]]
        if len(self.failed) > 20:
            lines.append(f"  ... and {len(self.failed) - 20} more (see /failed in the file)")
        return "\n".join(lines)


# ------------------------------------------------------------------------------- plan / compute / commit

def select_rows(columns: Dict[str, np.ndarray], config: DescribeConfig) -> np.ndarray:
    """Rows of the meta CSV to describe (increasing): the subset, then at most ``max_notes`` of it."""
    from ...data.split import spread_subset
    n = len(columns["file_name"])
    rows = np.arange(n, dtype=np.int64)
    if config.subset is not None:
        if "subset" not in columns:
            raise StoreError(f"the meta CSV has no 'subset' column; cannot select subset {config.subset!r}")
        sub = np.asarray(columns["subset"]).astype(str)
        rows = np.flatnonzero(sub == config.subset)
        if rows.size == 0:
            raise StoreError(f"subset {config.subset!r} has no rows; present: {sorted(set(sub))}")
    if config.max_notes is not None:
        labels = columns["label"][rows] if "label" in columns else np.zeros(rows.size)
        groups = columns["instrument"][rows] if "instrument" in columns else None
        rows = rows[spread_subset(labels, config.max_notes, groups=groups, seed=config.seed)]
    return rows


@dataclass
class BatchResult:
    """Output of :func:`compute_batch`: audio descriptors of the rows that worked, reasons for the others."""

    ok_rows: List[int]
    values: Dict[str, np.ndarray]     # name → (len(ok_rows),) or (len(ok_rows), d) float64
    failed: List[Tuple[int, str]]     # (row, reason)


def compute_batch(rows: Sequence[int], paths: Sequence[str], *, resolve: Callable[[str], str], max_seconds: float,
                  fmin_hz: float = C1_HZ, fmax_hz: float = C8_HZ) -> BatchResult:
    """Read ``paths[r]`` for every ``r`` in ``rows`` and compute its audio descriptors.

    Parameters
    ----------
    rows : sequence of int
        Row numbers (of the partial file) to compute.
    paths : sequence of str
        ``file_name`` of every row.
    resolve : callable
        ``file_name`` → audio path (:class:`scatterxai.data.AudioResolver`).
    max_seconds : float
        Seconds described from the start of each file (0: all of it).

    Returns
    -------
    BatchResult
        Unreadable or indescribable notes (:class:`AudioError`, a :class:`ParameterError` for a note
        shorter than one analysis frame, a numerical failure) are failures with their reason, not errors.
    """
    from ...audio import audio_info, read_audio, to_mono
    from .descriptors import audio_descriptors

    ok_rows, values, failed = [], {k: [] for k in AUDIO_DESCRIPTORS}, []
    for r in rows:
        try:
            path = resolve(paths[r])
            # only the described part is decoded (a long recording is not read whole)
            frames = int(round(max_seconds * audio_info(path)[1])) if max_seconds > 0 else -1
            y, sr = read_audio(path, frames=frames)
            d = audio_descriptors(to_mono(y), sr, fmin=fmin_hz, fmax=fmax_hz)
        except (ScatterXAIError, ValueError, ArithmeticError, np.linalg.LinAlgError) as e:
            failed.append((int(r), f"{type(e).__name__}: {e}"))
            continue
        ok_rows.append(int(r))
        for k in AUDIO_DESCRIPTORS:
            values[k].append(d[k])
    return BatchResult(ok_rows, {k: np.asarray(v, np.float64).reshape((len(ok_rows), *_row_shape(k)))
                                 for k, v in values.items()}, failed)


def _row_shape(name: str) -> tuple:
    """Shape of one note's value of an audio descriptor: () or (d,)."""
    return (AUDIO_VECTORS[name],) if name in AUDIO_VECTORS else ()


def _settings_hash(csv_bytes: bytes, audio_root: str, rows: np.ndarray, settings: dict) -> str:
    h = hashlib.sha256(csv_bytes)
    h.update(json.dumps({"audio_root": os.path.abspath(audio_root), "rows": rows.tolist(),
                         "version": DESCRIBE_VERSION, **settings}, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _features_identity(features: Optional[str]) -> Tuple[str, float, str]:
    """(settings hash of the features file or "", its window N / sr in s or NaN, path or "")."""
    if features is None:
        return "", float("nan"), ""
    from ..._util.fs import file_sha256
    from ...features.store import FeatureFile
    with FeatureFile(features) as ff:
        ident = ff.attrs.get("settings_sha256") or file_sha256(features)
        window = ff.config.N / ff.config.sr
    return str(ident), window, os.path.abspath(features)


def _subset_from_features(features: str, names: Sequence[str]) -> np.ndarray:
    """The subset of each meta-CSV row as the features file records it (a split drawn at extraction, for a
    CSV without a ``subset`` column); "" for rows the features file does not hold."""
    from ...features.store import FeatureFile
    with FeatureFile(features) as ff:
        if "subset" not in ff.examples:
            raise StoreError(f"neither the meta CSV nor {features} has a 'subset' column; describe all notes "
                             f"(subset=None) or extract with a split")
        subset = np.asarray(ff.examples["subset"]).astype(str)
        if "csv_row" in ff.examples:   # segments: several rows per note, all in the note's subset
            by_row = dict(zip(np.asarray(ff.examples["csv_row"]).tolist()[::-1], subset[::-1]))
            return np.array([by_row.get(r, "") for r in range(len(names))], dtype=object)
        by_name = dict(zip(np.asarray(ff.examples["file_name"]).astype(str)[::-1], subset[::-1]))
    return np.array([by_name.get(str(n), "") for n in names], dtype=object)


def _scattering_part(features: str, names: Sequence[str], csv_rows: np.ndarray):
    """Scattering descriptors of the notes (NaN where the features file lacks a note), and the axes."""
    from ...features.store import FeatureFile
    from .descriptors import scattering_descriptors
    with FeatureFile(features) as ff:
        paths = ff.table.arrays()
        lam2 = modulation_axis(paths)
        s1 = np.asarray(paths["order"]) == 1
        K = len(names)
        values = {"s1_energy": np.full((K, int(s1.sum())), np.nan),
                  "modulation_spectrum": np.full((K, lam2.size), np.nan),
                  "modulation_peak_hz": np.full(K, np.nan), "s2_s1_ratio": np.full(K, np.nan)}
        where = match_notes(ff.examples["file_name"], ff.examples.get("csv_row"), names, csv_rows)
        have = np.flatnonzero(where >= 0)
        if have.size < K:
            logger.warning("%d of %d described notes are not in %s: their scattering descriptors are NaN",
                           K - have.size, K, features)
        for start in range(0, have.size, 64):
            block = have[start:start + 64]
            d = scattering_descriptors(ff.load(where[block]), paths)
            for k in SCATTERING_DESCRIPTORS:
                values[k][block] = d[k]
    return values, {"s1_energy": np.asarray(paths["lambda1_hz"])[s1], "modulation_spectrum": lam2}


def _existing(out: str, settings: str, features_id: str, overwrite: bool) -> Optional[DescribeSummary]:
    if not os.path.exists(out):
        return None
    try:
        with DescriptorFile(out) as df:
            same = (df.attrs.get("settings_sha256") == settings
                    and df.attrs.get("features_settings_sha256", "") == features_id)
            n_ok, failed, n_sel = len(df), df.failed, int(df.attrs.get("n_selected", len(df)))
    except StoreError:
        same = False
    if same:
        return DescribeSummary(out, n_sel, n_ok, len(failed), already_complete=True, failed=failed)
    if not overwrite:
        raise StoreError(f"{out} exists and was made with other settings (meta CSV, audio root, features file "
                         f"or describe settings); choose another --out or pass --overwrite")
    return None


def _read_inputs(meta_csv: str, audio_root: str):
    from ...data.meta import read_meta_csv
    if not os.path.isdir(audio_root):
        raise StoreError(f"audio root is not a directory: {audio_root}")
    columns = read_meta_csv(meta_csv)
    if "file_name" not in columns:
        raise StoreError(f"{meta_csv} has no 'file_name' column; columns are {sorted(columns)}")
    names = [str(v) for v in columns["file_name"]]
    if not names:
        raise StoreError(f"{meta_csv} lists no files")
    with open(meta_csv, "rb") as fh:
        return fh.read(), columns, names


def _compute_one(rows, names, root, max_seconds, fmin_hz, fmax_hz):
    """Top-level (picklable) task for worker processes (one BLAS thread each: the workers fill the cores)."""
    from threadpoolctl import threadpool_limits

    from ...data.paths import AudioResolver
    with threadpool_limits(1):
        return compute_batch(rows, names, resolve=AudioResolver(root), max_seconds=max_seconds, fmin_hz=fmin_hz,
                             fmax_hz=fmax_hz)


@claims_output("out", kind="descriptors", option="--out",
               inputs={"meta_csv": "meta CSV", "audio_root": "audio root", "features": "features input"})
def describe_notes(meta_csv: PathLike, audio_root: PathLike, out: PathLike, *, features: Optional[PathLike] = None,
                   config: DescribeConfig = DescribeConfig(), overwrite: bool = False, progress: bool = True,
                   dask: DaskSpec = None) -> DescribeSummary:
    """Descriptors of the notes of a meta CSV → descriptors HDF5 (resumable; layout in
    :mod:`scatterxai.analysis.describe.store`).

    Parameters
    ----------
    meta_csv : str
        CSV with at least a ``file_name`` column; every column is copied to ``/examples``.
    audio_root : str
        Directory ``file_name`` is relative to (looked up by base name below it otherwise).
    out : str
        Output path (the output rule, :mod:`scatterxai._util.outputs`: never an input, even with
        ``overwrite``; one writer at a time, ``OUT.lock``).  Complete with the same settings: nothing is
        done; other settings: a :class:`StoreError` unless ``overwrite``.
    features : str, optional
        Features file of the same notes, for the scattering descriptors.
    config : DescribeConfig
    overwrite : bool
        Discard an output or interrupted run made with other settings.
    progress : bool
    dask : str or distributed.Client, optional
        Describe the batches on a Dask cluster instead of ``config.jobs`` local processes: ``"local:N"``, a
        scheduler address or a Client (README, "Many machines").  The workers read the audio at the
        driver's absolute ``audio_root``; this process writes.  The numbers are those of ``jobs`` > 1 (one
        BLAS thread per note).

    Returns
    -------
    DescribeSummary
    """
    from ..._util.cluster import check_dask

    dask = check_dask(dask)
    t0 = time.perf_counter()
    meta_csv, audio_root, out = os.fspath(meta_csv), os.fspath(audio_root), os.fspath(out)
    plan = _plan(meta_csv, audio_root, None if features is None else os.fspath(features), config)
    done = _existing(out, plan.settings, plan.features_id, overwrite)
    if done is not None:
        return done

    partial = out + ".partial"
    attrs = {"max_seconds": plan.max_seconds, "fmin_hz": config.fmin_hz, "fmax_hz": config.fmax_hz,
             "csv_rows": plan.rows}
    with PartialFile.open_or_create(partial, n_rows=len(plan.rows), settings=plan.settings, attrs=attrs,
                                    datasets={k: (_row_shape(k), np.float64) for k in AUDIO_DESCRIPTORS},
                                    overwrite=overwrite, what="description") as store:
        n_resumed = int((store.status() != PENDING).sum())
        with progress_bar(total=len(plan.rows), initial=n_resumed, desc="describe", unit="note",
                          enabled=progress) as bar:
            def commit(res: BatchResult):
                store.commit(res.ok_rows, res.values, res.failed)
                bar.update(len(res.ok_rows) + len(res.failed))

            _compute_batches(list(store.pending_batches(config.batch_size)), commit, plan, audio_root, config,
                             dask=dask, kept=f"the notes done so far are kept in {partial}: re-run to resume")
        ok, bad, reasons = store.outcome()
        values = {k: store.dataset(k)[()][ok] for k in AUDIO_DESCRIPTORS}
    failed = [(plan.sel_names[r], reason) for r, reason in zip(bad, reasons)]
    if ok.size == 0:  # nothing worth keeping (e.g. a wrong audio root): the next run starts afresh
        os.remove(partial)
        return DescribeSummary(out, len(plan.rows), 0, int(bad.size), n_resumed=n_resumed,
                               seconds=time.perf_counter() - t0, failed=failed)
    _write_output(out, plan, config, values, ok, bad, reasons)
    os.remove(partial)
    return DescribeSummary(out, len(plan.rows), int(ok.size), int(bad.size), n_resumed=n_resumed,
                           seconds=time.perf_counter() - t0, failed=failed)


@dataclass
class _Plan:
    """What :func:`describe_notes` works on: the meta CSV's columns, the rows to describe, their settings."""

    columns: Dict[str, np.ndarray]
    names: List[str]                 # file_name of every CSV row
    rows: np.ndarray                 # CSV rows to describe
    settings: str                    # hash of everything that determines the numbers
    max_seconds: float
    features: Optional[str]
    features_id: str
    features_path: str

    @property
    def sel_names(self) -> List[str]:
        """file_name of each described row (row k of the partial file)."""
        return [self.names[r] for r in self.rows]


def _plan(meta_csv: str, audio_root: str, features: Optional[str], config: DescribeConfig) -> _Plan:
    """Step 1, plan rows: read the CSV, pick the rows, and hash the settings."""
    csv_bytes, columns, names = _read_inputs(meta_csv, audio_root)
    features_id, window, features_path = _features_identity(features)
    max_seconds = config.max_seconds
    if max_seconds is None:
        max_seconds = window if np.isfinite(window) else PAPER_CONFIG.N / PAPER_CONFIG.sr
    if config.subset is not None and "subset" not in columns and features is not None:
        columns = {**columns, "subset": _subset_from_features(features, columns["file_name"])}
    rows = select_rows(columns, config)
    settings = _settings_hash(csv_bytes, audio_root, rows, {**config.result_settings(), "max_seconds": max_seconds})
    return _Plan(columns, names, rows, settings, max_seconds, features, features_id, features_path)


def _compute_batches(batches: List[np.ndarray], commit: Callable[[BatchResult], None], plan: _Plan, audio_root: str,
                     config: DescribeConfig, *, dask, kept: str) -> None:
    """Step 2, compute the pending batches — on a Dask cluster, in this process, or in ``config.jobs`` worker
    processes — and hand each result to ``commit`` (step 3, in this process)."""
    from ...data.paths import AudioResolver
    sel_names = plan.sel_names
    options = dict(max_seconds=plan.max_seconds, fmin_hz=config.fmin_hz, fmax_hz=config.fmax_hz)
    if dask is not None and batches:
        from ..._util.cluster import dask_client, describe_rows, map_chunks
        with dask_client(dask) as client:
            for _, res in map_chunks(client, _compute_one, batches, name="describe", kept=kept,
                                     describe=lambda b: describe_rows(b, [sel_names[r] for r in b]),
                                     names=sel_names, root=os.path.abspath(audio_root), **options):
                commit(res)
    elif config.jobs == 1 or len(batches) < 2:
        resolve = AudioResolver(audio_root)
        for b in batches:
            commit(compute_batch(b, sel_names, resolve=resolve, **options))
    else:
        task = functools.partial(_compute_one, names=sel_names, root=audio_root, **options)
        # fork where available: workers inherit the imported librosa/numba (spawn re-imports them)
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with multiprocessing.get_context(method).Pool(min(config.jobs, len(batches))) as pool:
            for res in pool.imap_unordered(task, batches, chunksize=1):
                commit(res)


def _write_output(out: str, plan: _Plan, config: DescribeConfig, values: Dict[str, np.ndarray], ok: np.ndarray,
                  bad: np.ndarray, reasons: Sequence[str]) -> None:
    """The descriptors file of the described notes (scattering descriptors added from the features file)."""
    import librosa

    from ... import __version__
    sel_names = plan.sel_names
    csv_ok = plan.rows[ok]
    examples = {k: np.asarray(v)[csv_ok] for k, v in plan.columns.items()}
    examples["csv_row"] = csv_ok
    axes = {"mel_spectrum": mel_axis(), "envelope_spectrum": envelope_axis()}
    if plan.features is not None:
        scat, scat_axes = _scattering_part(plan.features, [plan.names[r] for r in csv_ok], csv_ok)
        values = {**values, **scat}
        axes.update(scat_axes)
    write_descriptors(out, values, examples, axes=axes,
                      failed={"file_name": np.array([sel_names[r] for r in bad], dtype=object),
                              "reason": np.array(reasons, dtype=object), "csv_row": plan.rows[bad]},
                      attrs={"settings_sha256": plan.settings, "features": plan.features_path,
                             "features_settings_sha256": plan.features_id, "max_seconds": plan.max_seconds,
                             "fmin_hz": config.fmin_hz, "fmax_hz": config.fmax_hz,
                             "subset": config.subset or "", "max_notes": config.max_notes or 0,
                             "seed": config.seed, "n_selected": len(plan.rows), "descriptor_version": DESCRIBE_VERSION,
                             "scatterxai_version": __version__, "librosa_version": librosa.__version__})
