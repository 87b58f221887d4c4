"""``scatterxai explore``: write the explorer of a run (see :mod:`scatterxai.explore`)."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .. import __version__
from .._util.jsonio import jsonable, write_json
from .._util.log import logger
from .._util.outputs import claim_output
from .._util.types import PathLike
from .._util.validate import check_positive_int
from ..errors import AudioError, DataError, ParameterError
from . import data as page
from .media import AUDIO_FORMATS, SPECTROGRAM, auralised_parts, log_spectrogram, note_audio
from .select import REASONS, select_notes

__all__ = ["ExploreConfig", "explore", "EXPLORER_FILES", "STATIC_FILES", "selection_text"]

#: the explorer's own files (besides ``data/note-*.js`` and ``audio/``)
EXPLORER_FILES = {"index": "index.html", "data": "data/index.js", "summary": "explore.json"}
#: files copied from the package (``scatterxai/explore/static``) into the explorer
STATIC_FILES = {"index.html": "index.html", "explorer.js": "static/explorer.js", "explorer.css": "static/explorer.css"}
_STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
#: the method the page shows first when the run has it (the paper's composite rule)
DEFAULT_METHOD = "epsilon_plus"


@dataclass(frozen=True)
class ExploreConfig:
    """Settings of :func:`explore`.

    Parameters
    ----------
    notes : int
        At most this many notes per class (misclassified first; :func:`scatterxai.explore.select.select_notes`).
    methods : tuple of str, optional
        Methods shown (default: every method of the relevance file).
    auralise : "all" or tuple of str
        Methods whose relevant part and complement are resynthesised and written as audio ("all": every
        shown method; ``()``: none).  Each costs one re-weighting of every note's decomposition.
    audio : bool
        Write audio at all (the note itself included) and draw spectrograms from it.
    audio_format : {"ogg", "wav"}
        Ogg Vorbis (small) or 16-bit WAV.
    """

    notes: int = 3
    methods: Optional[Tuple[str, ...]] = None
    auralise: Union[str, Tuple[str, ...]] = "all"
    audio: bool = True
    audio_format: str = "ogg"

    def __post_init__(self):
        check_positive_int("notes", self.notes)
        if self.methods is not None:
            object.__setattr__(self, "methods", _names("methods", self.methods))
        if self.auralise != "all":
            object.__setattr__(self, "auralise", _names("auralise", self.auralise, empty_ok=True))
        if self.audio_format not in AUDIO_FORMATS:
            raise ParameterError(f"audio_format must be one of {list(AUDIO_FORMATS)}, got {self.audio_format!r}")


def _names(name: str, value, *, empty_ok: bool = False) -> Tuple[str, ...]:
    items = tuple(v.strip() for v in value.split(",") if v.strip()) if isinstance(value, str) else tuple(value)
    if not all(isinstance(v, str) for v in items) or (not items and not empty_ok):
        raise ParameterError(f"{name} must be method names (comma-separated or a sequence), got {value!r}")
    return items


def selection_text(per_class: int, n_notes: int, n_total: int, grouped_by: str) -> str:
    """How the shown notes were chosen, in one sentence (on the page and in the report)."""
    group = "true class" if grouped_by == "label" else "predicted class (the data have no labels)"
    first = ("misclassified notes first (most confident mistake first), then correctly classified ones spread "
             "over the range of confidence" if grouped_by == "label" else "spread over the range of confidence")
    return (f"{n_notes} of the {n_total} explained notes: at most {per_class} per {group}, {first}; notes that "
            f"every shown method explained are preferred.")


# ------------------------------------------------------------------------------------------------ inputs

def _inputs(run_dir: PathLike, audio_root: Optional[PathLike]) -> Tuple[str, str, Optional[str]]:
    """(run directory, relevance file, audio root or None), checked."""
    run_dir = os.path.abspath(os.fspath(run_dir))
    if not os.path.isdir(run_dir):
        raise ParameterError(f"RUN_DIR {run_dir} is not a directory; give the --out directory of scatterxai run")
    relevance = os.path.join(run_dir, "relevance.h5")
    if not os.path.isfile(relevance):
        raise DataError(f"{run_dir} holds no relevance.h5; explore reads a finished run (scatterxai run --out "
                        f"{run_dir}), or at least its explain stage")
    if audio_root is not None:
        audio_root = os.path.abspath(os.fspath(audio_root))
        if not os.path.isdir(audio_root):
            raise ParameterError(f"--audio-root {audio_root} is not a directory")
    return run_dir, relevance, audio_root


def _audio_root(rf, run_dir: str, audio_root: Optional[str]) -> Optional[str]:
    """The audio root: given, else the relevance file's, else the run's synthetic corpus (None if absent)."""
    for candidate in (audio_root, rf.attrs.get("audio_root"), os.path.join(run_dir, "data", "audio")):
        if candidate and os.path.isdir(str(candidate)):
            return os.path.abspath(str(candidate))
    return None


def _methods(rf, config: ExploreConfig) -> Tuple[List[str], List[str]]:
    """(shown methods, auralised methods), checked against the file."""
    shown = list(config.methods or rf.methods)
    missing = [m for m in shown if m not in rf.methods]
    if missing:
        raise ParameterError(f"methods {missing} are not in {rf.path}; it holds {list(rf.methods)}")
    if not config.audio:
        return shown, []
    aural = shown if config.auralise == "all" else list(config.auralise)
    missing = [m for m in aural if m not in shown]
    if missing:
        raise ParameterError(f"auralise {missing}: not among the shown methods {shown}")
    return shown, aural


# ------------------------------------------------------------------------------------------------ writing

def _write_js(path: str, call: str, obj: Any) -> int:
    """``SXAI.<call>(<json>);`` — data a page opened from file:// can load with a script tag."""
    text = json.dumps(jsonable(obj), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"SXAI.{call}({text});\n")
    return len(text)


def _copy_static(out: str) -> None:
    for src, dst in STATIC_FILES.items():
        os.makedirs(os.path.dirname(os.path.join(out, dst)) or out, exist_ok=True)
        shutil.copyfile(os.path.join(_STATIC_DIR, src), os.path.join(out, dst))


def _note_media(out: str, note: Mapping[str, Any], local: Mapping[str, np.ndarray], rf, config, resolve,
                aural: Sequence[str], fmt: str, timings: Dict[str, float]) -> Dict[str, Any]:
    """Spectrogram and audio of one note: ``{"spectrogram": …, "audio": …}`` or ``{"audio_error": …}``."""
    from ..audio import read_window
    k = note["row"]
    start = float(note.get("start_s") or 0.0)
    if resolve is None:
        return {"audio_error": "the run's audio folder was not found (scatterxai explore --audio-root DIR)"}
    try:
        x = read_window(resolve(note["file_name"]), config, start_s=start)[0]
    except AudioError as e:
        logger.warning("explorer: no audio for %s (%s)", note["file_name"], e)
        return {"audio_error": str(e)}
    t0 = time.perf_counter()
    spec = log_spectrogram(x, config.sr)
    t1 = time.perf_counter()
    maps = {m: np.asarray(local[m][k], dtype=np.float64) for m in aural}
    _, parts = auralised_parts(x, maps, rf.paths, config)
    t2 = time.perf_counter()
    audio = note_audio(os.path.join(out, "audio"), f"n{note['id']:04d}", x, parts, int(config.sr),
                       methods=list(maps), fmt=fmt)
    timings["spectrogram"] += t1 - t0
    timings["auralise"] += t2 - t1
    timings["encode"] += time.perf_counter() - t2
    return {"spectrogram": {"image": page.encode_array(spec["image"], "u1"), "n_rows": spec["image"].shape[0],
                            "n_frames": spec["image"].shape[1], "freqs_hz": spec["freqs_hz"],
                            "times_s": spec["times_s"], "range_db": spec["range_db"],
                            "duration_s": len(x) / config.sr},
            "audio": audio}


def _build(out: str, run_dir: str, rf, config: ExploreConfig, audio_root: Optional[str], progress: bool) -> dict:
    from ..io.hdf5 import read_config
    t_start = time.perf_counter()
    shown, aural = _methods(rf, config)
    scattering = read_config(rf.attrs, "relevance", rf.path)
    probs = page.probabilities(rf.logits)
    preds = np.asarray(rf.examples["pred"], dtype=np.int64)
    eligible = np.zeros(len(rf), bool)
    eligible[rf.common_rows(shown)] = True
    selection = select_notes(preds, probs[np.arange(len(rf)), preds], labels=rf.labels, eligible=eligible,
                             n_classes=len(rf.classes), per_class=config.notes)
    notes = page.note_rows(rf, selection, probs)
    local = {m: rf.local(m) for m in shown}
    kurtosis = {m: rf.kurtosis(m) for m in shown}
    root = _audio_root(rf, run_dir, audio_root) if config.audio else None
    resolve = None
    if root is not None:
        from ..data.paths import AudioResolver
        resolve = AudioResolver(root, allow_outside=True)   # the names the run's extraction accepted
    _copy_static(out)
    timings = {"spectrogram": 0.0, "auralise": 0.0, "encode": 0.0}
    iterator = notes
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(notes, desc="explore", unit="note")
    for note in iterator:
        detail = page.note_detail(rf, note, local, probs, kurtosis)
        if config.audio:
            detail.update(_note_media(out, note, local, rf, scattering, resolve, aural, config.audio_format,
                                      timings))
        else:
            detail["audio_error"] = "this explorer was written without audio (--no-audio)"
        _write_js(os.path.join(out, "data", f"note-{note['id']:04d}.js"), "addNote", detail)
    grouped_by = "label" if rf.labels is not None else "pred"
    header = {
        "title": os.path.basename(run_dir), "run_dir": run_dir, "version": __version__,
        "classes": list(rf.classes), "grouped_by": grouped_by,
        "methods": [{"name": m, "title": page.method_title(m), "n_explained": len(rf.explained_rows(m)),
                     "auralised": m in aural} for m in shown],
        "default_method": DEFAULT_METHOD if DEFAULT_METHOD in shown else shown[0],
        "explained": "the predicted class" if rf.attrs.get("target", "pred") == "pred" else "the true class",
        "subset": rf.attrs.get("subset"), "n_total": len(rf), "per_class": config.notes,
        "selection": selection_text(config.notes, len(notes), len(rf), grouped_by),
        "reasons": REASONS, "notes": notes, "grid": page.grid_data(rf),
        "scattering": {"sr": scattering.sr, "N": scattering.N, "window_s": scattering.N / scattering.sr},
        "spectrogram": SPECTROGRAM, "audio_format": config.audio_format if config.audio else None,
        "audio_root_found": root is not None,
        "classes_view": page.class_view(rf, shown), "methods_view": page.methods_view(run_dir),
        "colormaps": {"viridis": page.colormap_hex("viridis"), "magma": page.colormap_hex("magma")},
        "timings": {**timings, "total": time.perf_counter() - t_start}}
    _write_js(os.path.join(out, EXPLORER_FILES["data"]), "load", header)
    summary = {"n_notes": len(notes), "per_class": config.notes, "methods": shown, "auralised": aural,
               "selection": header["selection"], "rows": [n["row"] for n in notes],
               "bytes": _folder_size(out), "timings": {**timings, "total": time.perf_counter() - t_start},
               "audio_root": root, "config": asdict(config)}
    write_json(os.path.join(out, EXPLORER_FILES["summary"]), summary)
    return summary


def _folder_size(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)


def explore(run_dir: PathLike, out: Optional[PathLike] = None, config: Optional[ExploreConfig] = None, *,
            audio_root: Optional[PathLike] = None, progress: bool = False, overwrite: bool = False) -> Dict[str, Any]:
    """Write the explorer of a run: ``OUT/index.html`` and its data, scripts and audio (no server needed).

    Parameters
    ----------
    run_dir : str
        The output directory of ``scatterxai run`` (``relevance.h5``; ``compare/``, ``quality/`` and the run's
        audio when present).
    out : str, optional
        The explorer's directory (default ``RUN_DIR/explorer``), written as a whole (replaced if it exists).
        Written under the output rule (:mod:`scatterxai._util.outputs`): never one of the inputs (the
        relevance file, the comparison and quality folders, the audio), never containing one; another kind of
        folder is replaced only with ``overwrite``.
    config : ExploreConfig, optional
    audio_root : str, optional
        Where the notes' audio files are (default: the relevance file's ``audio_root``, else
        ``RUN_DIR/data/audio``); without audio the page has maps but no spectrograms or players.
    progress : bool
    overwrite : bool
        Replace an output folder of another kind that scatterxai wrote.

    Returns
    -------
    dict
        The contents of ``OUT/explore.json`` — ``n_notes``, ``rows`` (rows of the relevance file shown),
        ``selection`` (how they were chosen, one sentence), ``methods``, ``auralised``, ``bytes`` (size of the
        folder), ``timings`` (seconds spent on spectrograms, auralisation, audio encoding, in all) — plus
        ``index`` (path of index.html), ``out`` and ``seconds``.
    """
    from ..io.relevance import RelevanceFile
    config = config or ExploreConfig()
    run_dir, relevance, audio_root = _inputs(run_dir, audio_root)
    out = os.path.abspath(out if out is not None else os.path.join(run_dir, "explorer"))
    t0 = time.perf_counter()
    with RelevanceFile(relevance) as rf:
        inputs = {"run directory": run_dir, "relevance input": relevance,
                  "audio root": _audio_root(rf, run_dir, audio_root), "comparison": os.path.join(run_dir, "compare"),
                  "quality checks": os.path.join(run_dir, "quality")}
        with claim_output(out, kind="explorer", inputs=inputs, overwrite=overwrite) as claim:
            summary = _build(claim.tmp, run_dir, rf, config, audio_root, progress)
    seconds = time.perf_counter() - t0
    logger.info("explorer: %d notes, %.1f MB, %.1f s (auralisation %.1f s) → %s", summary["n_notes"],
                summary["bytes"] / 1e6, seconds, summary["timings"]["auralise"],
                os.path.join(out, EXPLORER_FILES["index"]))
    return {**summary, "index": os.path.join(out, EXPLORER_FILES["index"]), "out": out, "seconds": seconds}
