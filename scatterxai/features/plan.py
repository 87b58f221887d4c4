"""The planning steps of an extraction (:func:`scatterxai.features.extract_features`): the settings that
determine its numbers and their hash, the meta CSV read and checked, what an existing output and partial file
allow (:func:`_plan`), the windows of ``--segments`` (:class:`SegmentPlan`), relabelling, seeding a retry, and
the final write from the partial file (:func:`finish`)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

import h5py
import numpy as np

from .._util.log import logger
from ..errors import AudioError, DataError, StoreError
from ..io.hdf5 import is_scatterxai_file, read_config
from ..io.partial import PENDING, PartialFile, describe_change, settings_digest
from ..scattering.config import ScatteringConfig
from .augment import PARAM_COLUMNS
from .store import FeatureFile, write_features

if TYPE_CHECKING:
    from ..data.labels import LabelInfo

__all__ = ["extraction_settings", "settings_hash", "labels_hash", "finish", "SegmentPlan"]


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


def labels_hash(info: LabelInfo) -> str:
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
    def of(cls, names: Sequence[str], resolve: Callable[[str], str], config: ScatteringConfig) -> SegmentPlan:
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
        real = ff.indices("all")   # augmented copies are added again after the extraction
        csv_rows = np.asarray(ff.examples["csv_row"], dtype=np.int64)[real]
        if plan is None:
            rows = csv_rows
        else:  # store rows are windows: (csv row, segment) → position in the plan
            where = {(int(c), int(g)): i for i, (c, g) in enumerate(zip(plan.csv_row, plan.segment))}
            rows = np.array([where[(int(c), int(g))] for c, g in zip(csv_rows, ff.examples["segment"][real])],
                            np.int64)
        for i in range(0, len(rows), 64):
            store.commit(rows[i:i + 64], {"features": ff.load(real[i:i + 64])})


def _relabel(out: str, columns: Dict[str, np.ndarray], names: Sequence[str], attrs: dict, classes) -> int:
    """Rewrite ``out`` with new labels and subsets (and μ of the new training rows), same coefficients."""
    import h5py
    with h5py.File(out, "r") as f:
        ex = f["examples"]
        csv_ok = ex["csv_row"][()]
        examples = {k: np.asarray(v)[csv_ok] for k, v in columns.items()}
        for k in ("segment", "start_s", "augmented", *PARAM_COLUMNS):   # what the file adds to the CSV's columns
            if k in ex:
                examples[k] = ex[k][()]
        examples["csv_row"] = csv_ok
        bad = f["failed/csv_row"][()] if "failed/csv_row" in f else np.zeros(0, np.int64)
        failed = {"file_name": np.array([names[r] for r in bad], dtype=object),
                  "reason": np.array(f["failed/reason"].asstr()[()], dtype=object), "csv_row": bad}
        keep = {k: f.attrs[k] for k in ("settings_sha256", "method", "segments", "audio_root", "augmentation")
                if k in f.attrs}
        write_features(out, f["features"], examples, read_config(f.attrs, "scatterxai features"),
                       classes=classes or None, failed=failed, attrs={**keep, **attrs},
                       compression=f["features"].compression)  # as it was written
    return int(csv_ok.size)
