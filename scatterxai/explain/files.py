"""``scatterxai explain AUDIO.wav …``: explain a trained model on audio files directly (no CSV, no features file).

Each file is read, prepared and scattered with the model's own scattering configuration (recorded in its
``config.json``), classified and attributed; :func:`explain_files` writes ``OUT_DIR/relevance.h5`` (the
layout of :mod:`scatterxai.io.relevance`, with ``/features`` computed on the fly) and
``OUT_DIR/predictions.json``.  The figure of each file is drawn by
:func:`scatterxai.report.example_figures` (the command does both).

A file longer than the transform's window (N / sr seconds, 5.94 s for the paper's configuration) is
truncated to its first window with a warning, unless ``segments=True``: then it is cut into consecutive
windows (:func:`scatterxai.audio.segment_starts`), each explained as a row of the file (columns
``file_index``, ``segment``, ``start_s``), and the file's prediction is the mean of its windows' class
probabilities, its map the mean of their local maps.  Per file, the relevance file holds::

    /files/file_name      (F,) str      the audio file (absolute path)
    /files/duration_s     (F,) float64  its duration
    /files/n_segments     (F,) int64    windows explained (1 without segments)
    /files/probability    (F, n_classes) float64  mean over its windows of softmax(logits)
    /files/pred           (F,) int64    argmax of that mean
    /files/local/<method> (F, C) float32  mean over its windows of the local map
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


def _file_groups(file_index: np.ndarray, n_files: int, methods: Sequence[str], plan):
    """The ``extra`` writer of :func:`write_relevance`: per-file means in ``/files``."""
    from ..io.hdf5 import write_column

    def write(f):
        prob = softmax(f["examples/logits"][()])
        mean_prob = np.stack([prob[file_index == i].mean(axis=0) for i in range(n_files)])
        g = f.create_group("files")
        write_column(g, "file_name", np.array([p for p, _, _ in plan], dtype=object))
        g.create_dataset("duration_s", data=np.array([d for _, d, _ in plan], dtype=np.float64))
        g.create_dataset("n_segments", data=np.array([len(s) for _, _, s in plan], dtype=np.int64))
        g.create_dataset("probability", data=mean_prob)
        g.create_dataset("pred", data=mean_prob.argmax(axis=1).astype(np.int64))
        for m in methods:
            local = f[f"local/{m}"][()]
            g.create_dataset(f"local/{m}", data=np.stack([local[file_index == i].mean(axis=0)
                                                          for i in range(n_files)]).astype(np.float32))
    return write


def _summary(model, model_dir, plan, file_index, segment, start_s, prob, window_s, segments, inputs) -> dict:
    classes = list(model.classes)

    def probs(p):
        return {c: round(float(v), 6) for c, v in zip(classes, p)}

    files = []
    for i, (path, duration_s, _) in enumerate(plan):
        rows = np.flatnonzero(file_index == i)
        mean = prob[rows].mean(axis=0)
        files.append({"file": os.fspath(inputs[i]), "path": path, "duration_s": round(float(duration_s), 4),
                      "n_segments": int(rows.size), "truncated": bool(not segments and duration_s > window_s + 1e-3),
                      "predicted": classes[int(mean.argmax())], "probabilities": probs(mean),
                      "segments": [{"segment": int(segment[r]), "start_s": round(float(start_s[r]), 4),
                                    "predicted": classes[int(prob[r].argmax())], "probabilities": probs(prob[r])}
                                   for r in rows]})
    return {"model_dir": os.path.abspath(os.fspath(model_dir)), "model_sha256": model.checksum,
            "model_input": model.config.get("input"), "classes": classes, "window_s": window_s,
            "segments": bool(segments), "aggregation": "mean of the windows' class probabilities",
            "files": files}


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
        mean local map); otherwise such files are truncated to their first window, with a warning.
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

    file_index = np.concatenate([np.full(len(s), i, np.int64) for i, (_, _, s) in enumerate(plan)])
    segment = np.concatenate([np.arange(len(s), dtype=np.int64) for _, _, s in plan])
    start_s = np.concatenate([s for _, _, s in plan]).astype(np.float64)
    S = _scatter_rows(plan, scfg, device=model.device, batch_size=8, progress=progress)
    x = model.prepare(S)
    del S
    examples = {"file_name": np.array([plan[i][0] for i in file_index], dtype=object), "file_index": file_index,
                "segment": segment, "start_s": start_s,
                "duration_s": np.array([plan[i][1] for i in file_index], dtype=np.float64)}
    attrs = scattering_attrs(scfg, path_table(scfg))
    attrs.update(source="audio", segments=bool(segments), window_s=window_s, features_file="")
    relevance = write_relevance(out_dir / "relevance.h5", x, examples, attrs, model,
                                with_settings(config, {"subset": None}), progress=progress,
                                extra=_file_groups(file_index, len(plan), config.methods, plan))
    from ..io.relevance import RelevanceFile
    with RelevanceFile(relevance) as rf:
        prob = softmax(rf.logits)
    summary = _summary(model, model_dir, plan, file_index, segment, start_s, prob, window_s, segments, inputs)
    predictions = out_dir / "predictions.json"
    write_json(predictions, summary)
    return FilesResult(relevance, predictions, summary)
