"""``scatterxai explain AUDIO.wav …``: explain a trained model on audio files directly (no CSV, no features file).

Each file is read, prepared and scattered with the model's own scattering configuration (recorded in its
``config.json``), classified and attributed; :func:`explain_files` writes ``OUT_DIR/relevance.h5`` (the
layout of :mod:`scatterxai.io.relevance`, with ``/features`` computed on the fly) and
``OUT_DIR/predictions.json``.  The figure of each file is drawn by
:func:`scatterxai.report.example_figures` (the command does both).

A file shorter than the transform's window (N / sr seconds, 5.94 s for the paper's configuration) is
continued with its own sound (:func:`scatterxai.audio.continue_signal`).  A longer file is truncated to
its first window with a warning, unless ``segments=True``: then it is cut into consecutive windows
(:func:`scatterxai.audio.segment_starts`), each explained as a row of the file (columns ``file_index``,
``segment``, ``start_s``).  The file's prediction is the argmax of the mean of its windows' class
probabilities, and **every window explains that class** (``/examples/explained``; ``/examples/pred`` keeps
each window's own prediction), so that the windows' maps and their relevance over time are parts of one
explanation of the file's decision; the file's map is the mean of its windows' local maps.

Where in time relevance lies: ``/time_profile/<method>`` holds, per window and frame, the relevance summed
over paths (the local map's counterpart in time; for the LRP rules with biases removed its sum is the
explained logit); frame t of row k is centred at ``/examples/start_s[k] + /time_s[t]`` seconds of the
file.  Per file, the relevance file holds::

    /files/file_name      (F,) str      the audio file (absolute path)
    /files/duration_s     (F,) float64  its duration
    /files/n_segments     (F,) int64    windows explained (1 without segments)
    /files/probability    (F, n_classes) float64  mean over its windows of softmax(logits)
    /files/pred           (F,) int64    argmax of that mean (the class every window explains)
    /files/local/<method> (F, C) float32  mean over its windows of the local map
    /files/peak_time_s/<method> (F,) float64  centre (s) of the frame of largest summed relevance, among
                                            the frames inside the file

and ``predictions.json`` gives, per file, the relevance over time at frame resolution (``time_profile``:
``time_s`` and one list per method: each frame of the file once, frames beyond its end left out) and, per
window, its total relevance per method.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

import numpy as np

from .._util.jsonio import write_json
from .._util.log import logger
from .._util.log import progress as progress_bar
from .._util.outputs import claims_output
from .._util.types import PathLike
from .._util.validate import with_settings
from ..errors import ParameterError
from .export import ExplainConfig, write_relevance

__all__ = ["explain_files", "FilesResult", "is_features_file", "softmax"]

#: extensions taken for features files when the file does not exist yet (otherwise its content decides)
FEATURE_EXTENSIONS = (".h5", ".hdf5", ".hdf", ".nc")


def is_features_file(path: PathLike) -> bool:
    """Whether ``scatterxai explain`` takes ``path`` for a features file (HDF5 by content, or by extension
    when it cannot be read) rather than for audio."""
    import h5py
    path = os.fspath(path)
    if os.path.isfile(path):
        try:
            return bool(h5py.is_hdf5(path))
        except OSError:
            pass
    return path.lower().endswith(FEATURE_EXTENSIONS)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities [shape=(K, n_classes), float64] from logits [shape=(K, n_classes)]."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class FilesResult:
    """What :func:`explain_files` wrote and found."""

    relevance: Path
    predictions: Path
    summary: dict      # the contents of predictions.json

    def describe(self) -> str:
        """One line per file: predicted class and the class probabilities (text for the terminal)."""
        classes = self.summary["classes"]
        width = max(8, *(len(os.path.basename(f["file"])) for f in self.summary["files"]))
        lines = [f"{'file':<{width}}  {'predicted':<14}" + "".join(f"{c[:10]:>11}" for c in classes)]
        for f in self.summary["files"]:
            probs = "".join(f"{f['probabilities'][c]:>11.3f}" for c in classes)
            seg = f"  (mean of {f['n_segments']} windows)" if f["n_segments"] > 1 else ""
            lines.append(f"{os.path.basename(f['file']):<{width}}  {f['predicted']:<14}{probs}{seg}")
        lines.append(f"relevance: {self.relevance}\npredictions: {self.predictions}")
        return "\n".join(lines)


def _plan(inputs: Sequence[str], window_s: float, segments: bool):
    """Per file: (absolute path, duration, window starts); warns about truncated files."""
    from ..audio import audio_info, segment_starts
    plan, truncated = [], []
    for path in inputs:
        duration_s, _ = audio_info(path)
        if segments:
            starts = segment_starts(duration_s, window_s)
        else:
            starts = np.zeros(1)
            if duration_s > window_s + 1e-3:
                truncated.append(f"{path} ({duration_s:.1f} s)")
        plan.append((os.path.abspath(path), duration_s, starts))
    if truncated:
        logger.warning("warning: %d file(s) are longer than the model's window (%.2f s) and only their first %.2f s "
                       "are explained: %s; --segments cuts them into consecutive windows", len(truncated),
                       window_s, window_s, ", ".join(truncated[:5]) + (", …" if len(truncated) > 5 else ""))
    return plan


def _scatter_rows(plan, config, *, device, batch_size: int, progress: bool) -> np.ndarray:
    """Raw scattering (K, C, T) float32 of every window, read and transformed a batch at a time; warns about
    files with nothing to explain (silent, or a few samples: :func:`scatterxai.audio.nothing_to_explain`)."""
    from ..audio import nothing_to_explain, read_window
    from ..scattering.api import scatter
    rows = [(path, float(s)) for path, _, starts in plan for s in starts]
    out, signal = [], {}
    with progress_bar(total=len(rows), desc="scatter", unit="window", enabled=progress) as bar:
        for i in range(0, len(rows), batch_size):
            chunk = np.stack([read_window(p, config, start_s=s)[0] for p, s in rows[i:i + batch_size]])
            for (p, _), x in zip(rows[i:i + batch_size], chunk):
                signal[p] = signal.get(p, False) or bool(np.any(x))
            out.append(scatter(chunk, config, device=device, batch_size=batch_size).cpu().numpy())
            bar.update(len(chunk))
    for path, _, _ in plan:
        why = nothing_to_explain(path, np.ones(1) if signal[path] else np.zeros(1), config.N / config.sr)
        if why:
            logger.warning("warning: %s", why)
    return np.concatenate(out)


def _frame_times(config) -> np.ndarray:
    """Centres (s) of the scattering frames in a window (the relevance file's ``/time_s``)."""
    from ..scattering.config import frame_bounds, path_table
    pad_left, _, start, _ = frame_bounds(config)
    return ((start + np.arange(path_table(config).n_frames)) * config.T - pad_left) / config.sr


def _time_profiles(f, methods: Sequence[str], block: int = 64) -> dict:
    """Per method, relevance summed over paths: (K, T) float32, read a block of rows at a time."""
    out = {}
    for m in methods:
        ds = f[f"relevance/{m}"]
        out[m] = np.concatenate([ds[i:i + block].sum(axis=1) for i in range(0, ds.shape[0], block)]
                                or [np.zeros((0, ds.shape[2]))]).astype(np.float32)
    return out


def _file_groups(file_index: np.ndarray, n_files: int, methods: Sequence[str], plan, frame_s: np.ndarray,
                 profiles: dict):
    """The ``extra`` writer of :func:`write_relevance`: per-file means in ``/files``, the windows' relevance
    over time in ``/time_profile`` (``profiles`` is filled with the per-file profiles, for the summary)."""
    from ..io.hdf5 import write_column
    from ..maps.time_profile import file_time_profile

    def write(f):
        prob = softmax(f["examples/logits"][()])
        mean_prob = np.stack([prob[file_index == i].mean(axis=0) for i in range(n_files)])
        g = f.create_group("files")
        write_column(g, "file_name", np.array([p for p, _, _ in plan], dtype=object))
        g.create_dataset("duration_s", data=np.array([d for _, d, _ in plan], dtype=np.float64))
        g.create_dataset("n_segments", data=np.array([len(s) for _, _, s in plan], dtype=np.int64))
        g.create_dataset("probability", data=mean_prob)
        g.create_dataset("pred", data=mean_prob.argmax(axis=1).astype(np.int64))
        per_window = _time_profiles(f, methods)
        profiles["window_totals"] = {m: v.sum(axis=1) for m, v in per_window.items()}
        for m in methods:
            local = f[f"local/{m}"][()]
            g.create_dataset(f"local/{m}", data=np.stack([local[file_index == i].mean(axis=0)
                                                          for i in range(n_files)]).astype(np.float32))
            ds = f.create_dataset(f"time_profile/{m}", data=per_window[m])
            ds.attrs["definition"] = "relevance summed over paths, per window and frame"
            peaks = np.full(n_files, np.nan)
            for i, (_, duration_s, starts) in enumerate(plan):
                t, v = file_time_profile(per_window[m][file_index == i], starts, frame_s, duration_s)
                profiles.setdefault(i, {"time_s": t})[m] = v
                finite = np.isfinite(v)
                if finite.any():
                    peaks[i] = t[finite][np.argmax(v[finite])]
            g.create_dataset(f"peak_time_s/{m}", data=peaks)
    return write


def _sig(values, digits: int = 5) -> list:
    """Floats rounded to ``digits`` significant digits (NaN → None in the JSON)."""
    return [float(f"{v:.{digits}g}") for v in np.asarray(values, dtype=float)]


def _summary(model, model_dir, plan, rows: dict, prob, window_s, segments, inputs, profiles: dict) -> dict:
    classes = list(model.classes)
    file_index, totals = rows["file_index"], profiles.pop("window_totals")

    def probs(p):
        return {c: round(float(v), 6) for c, v in zip(classes, p)}

    files = []
    for i, (path, duration_s, _) in enumerate(plan):
        idx = np.flatnonzero(file_index == i)
        mean = prob[idx].mean(axis=0)
        prof = profiles[i]
        peaks = {m: (None if not np.isfinite(v).any() else round(float(prof["time_s"][np.nanargmax(v)]), 4))
                 for m, v in prof.items() if m != "time_s"}
        files.append({"file": os.fspath(inputs[i]), "path": path, "duration_s": round(float(duration_s), 4),
                      "n_segments": int(idx.size), "truncated": bool(not segments and duration_s > window_s + 1e-3),
                      "predicted": classes[int(mean.argmax())], "probabilities": probs(mean),
                      "relevance_peak_s": peaks,
                      "time_profile": {k: (np.round(v, 4).tolist() if k == "time_s" else _sig(v))
                                       for k, v in prof.items()},
                      "segments": [{"segment": int(rows["segment"][r]), "start_s": round(float(rows["start_s"][r]), 4),
                                    "predicted": classes[int(prob[r].argmax())], "probabilities": probs(prob[r]),
                                    "relevance": {m: _sig([t[r]])[0] for m, t in totals.items()}}
                                   for r in idx]})
    return {"model_dir": os.path.abspath(os.fspath(model_dir)), "model_sha256": model.checksum,
            "model_input": model.config.get("input"), "classes": classes, "window_s": window_s,
            "segments": bool(segments), "aggregation": "mean of the windows' class probabilities",
            "explained_class": "the file's predicted class, in every window",
            "time_profile": "relevance summed over paths per frame (s: frame centres in the file)",
            "files": files}


def _rows(plan) -> dict:
    """Per window: file_index, segment, start_s (the rows of the relevance file)."""
    return {"file_index": np.concatenate([np.full(len(s), i, np.int64) for i, (_, _, s) in enumerate(plan)]),
            "segment": np.concatenate([np.arange(len(s), dtype=np.int64) for _, _, s in plan]),
            "start_s": np.concatenate([s for _, _, s in plan]).astype(np.float64)}


def _file_classes(model, x, file_index: np.ndarray, n_files: int, batch_size: int) -> np.ndarray:
    """Per window, the class predicted for its file (argmax of the mean of its windows' probabilities)."""
    from .export import _forward
    prob = softmax(_forward(model.net, x, batch_size))
    pred = np.stack([prob[file_index == i].mean(axis=0) for i in range(n_files)]).argmax(axis=1)
    return pred[file_index].astype(np.int64)


@claims_output("out_dir", kind="explanation", inputs={"inputs": "audio input", "model_dir": "model directory"})
def explain_files(inputs: Union[PathLike, Sequence[PathLike]], *, model_dir: PathLike, out_dir: PathLike,
                  config: Optional[ExplainConfig] = None, segments: bool = False, progress: bool = True,
                  **settings: Any) -> FilesResult:
    """Classify and explain audio files with a trained model: ``relevance.h5`` and ``predictions.json``.

    Parameters
    ----------
    inputs : sequence of str
        Audio files (any format and sample rate soundfile reads; multi-channel audio is mixed to mono).
    model_dir : str or Path
        Model directory (``scatterxai train``); its scattering configuration is used for the features.
    out_dir : str or Path
        Output directory, written as a whole under the output rule (:mod:`scatterxai._util.outputs`: never
        holding an input, one writer at a time, created with at most one missing folder above it).
    config : ExplainConfig, optional
        Methods, top-n, ε, batch size, device (``subset`` does not apply; ``target`` must be "pred": audio
        files carry no labels).
    segments : bool
        Cut files longer than the window into consecutive windows and aggregate them (mean probability,
        every window explaining the file's class, mean local map, relevance over time); otherwise such
        files are truncated to their first window, with a warning.
    progress : bool
    **settings
        Fields of :class:`ExplainConfig` overriding ``config``.

    Returns
    -------
    FilesResult
    """
    from ..io.hdf5 import scattering_attrs
    from ..model.directory import load_model
    from ..scattering.config import path_table

    config = with_settings(config or ExplainConfig(), settings)
    if config.target != "pred":
        raise ParameterError("audio files carry no labels: explain them with target='pred' (--target pred), or "
                             "extract features from a meta CSV with labels to explain the true class")
    inputs: List[str] = [os.fspath(p) for p in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)]
    if not inputs:
        raise ParameterError("give at least one audio file")
    model = load_model(model_dir, device=config.device)
    scfg = model.scattering
    window_s = scfg.N / scfg.sr
    plan = _plan(inputs, window_s, bool(segments))
    out_dir = Path(out_dir)   # the claim's temporary folder (claims_output)

    rows = _rows(plan)
    S = _scatter_rows(plan, scfg, device=model.device, batch_size=8, progress=progress)
    x = model.prepare(S)
    del S
    examples = dict(rows, file_name=np.array([plan[i][0] for i in rows["file_index"]], dtype=object),
                    duration_s=np.array([plan[i][1] for i in rows["file_index"]], dtype=np.float64))
    attrs = scattering_attrs(scfg, path_table(scfg))
    attrs.update(source="audio", segments=bool(segments), window_s=window_s, features_file="",
                 explained_class="the file's predicted class, in every window")
    profiles: dict = {}
    extra = _file_groups(rows["file_index"], len(plan), config.methods, plan, _frame_times(scfg), profiles)
    relevance = write_relevance(out_dir / "relevance.h5", x, examples, attrs, model,
                                with_settings(config, {"subset": None}), progress=progress, extra=extra,
                                explained=_file_classes(model, x, rows["file_index"], len(plan), config.batch_size))
    from ..io.relevance import RelevanceFile
    with RelevanceFile(relevance) as rf:
        prob = softmax(rf.logits)
    summary = _summary(model, model_dir, plan, rows, prob, window_s, segments, inputs, profiles)
    predictions = out_dir / "predictions.json"
    write_json(predictions, summary)
    return FilesResult(relevance, predictions, summary)
