"""The study's figures from its files: the paper's Fig. 1 and Fig. 2, confusion matrices, and the single-file
view of an audio-in explanation.

Reads a relevance file (:mod:`scatterxai.io.relevance`) and metrics files (:mod:`scatterxai.model.evaluate`);
draws with :mod:`scatterxai.viz.plots`.  Used by ``scatterxai run``, ``scatterxai figures``, ``scatterxai
explain AUDIO.wav`` and the experiments/ scripts.  Every function that writes files takes ``fmt`` (png,
pdf, svg) and ``dpi`` and passes them to matplotlib.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from .._util.fs import prepare_output
from .._util.log import logger
from .._util.outputs import claims_output
from .._util.types import PathLike
from .._util.validate import check_choice, check_positive_float
from ..data.notes import pitch_hz_from_name
from ..errors import AudioError, ParameterError
from ..explain.base import method_title
from ..io.together import relevance_study
from ..task import INPUT_LABELS
from ..viz.plots import confusion, figure1, figure2, map_edges

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..io.relevance import RelevanceFile
    from ..maps.grid import GridIndex

__all__ = ["make_figures", "relevance_figures", "example_figures", "fig1", "fig2", "example_figure",
           "confusion_figure", "choose_examples", "top_cells", "figure_files", "FIGURE_FILES", "FIGURE_FORMATS",
           "PAPER_KURTOSIS"]

#: formats of the written figures (matplotlib backends that need no display); PDF and SVG are vector files
#: (text and axes as vectors, the map cells rasterised at ``dpi``, which keeps them small)
FIGURE_FORMATS = ("png", "pdf", "svg")
_STEMS = {"fig1": "fig1_examples", "fig2": "fig2_class_maps", "confusion": "confusion"}
#: file names of the figures in the default format (PNG)
FIGURE_FILES = {k: f"{v}.png" for k, v in _STEMS.items()}
#: kurtosis of local maps on the SOL-PMT test split (paper)
PAPER_KURTOSIS = {"epsilon": (13.82, 8.81), "epsilon_plus": (19.22, 13.72)}
#: longest stretch of a recording drawn as a spectrogram in the single-file view (s)
MAX_SPECTROGRAM_S = 60.0


#: the largest figure resolution accepted (dots per inch): a 10-inch figure is then 12,000 pixels wide
MAX_DPI = 1200.0


def check_dpi(dpi: float) -> float:
    """``dpi`` checked to lie in (0, :data:`MAX_DPI`]: larger values make figures of gigapixels (MemoryError)."""
    from ..errors import ParameterError
    dpi = check_positive_float("dpi", dpi)
    if dpi > MAX_DPI:
        raise ParameterError(f"dpi must be at most {MAX_DPI:g} (a 10-inch figure is then {10 * MAX_DPI:,.0f} pixels "
                             f"wide), got {dpi:g}")
    return dpi


def figure_files(fmt: str = "png") -> Dict[str, str]:
    """File name of each figure ("fig1", "fig2", "confusion") in format ``fmt`` (see :data:`FIGURE_FORMATS`)."""
    check_choice("fmt", fmt, FIGURE_FORMATS)
    return {k: f"{v}.{fmt}" for k, v in _STEMS.items()}


def _save(fig, path: str, dpi) -> str:
    """Save and close ``fig`` in the format of ``path``'s extension; vector files carry no creation date, so
    that the same inputs give the same bytes."""
    import matplotlib.pyplot as plt
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt)
    fig.savefig(path, dpi=dpi, format=fmt, metadata=metadata)
    plt.close(fig)
    return path


def _agg_backend():
    import matplotlib
    matplotlib.use("Agg")


def _f0_column(examples: Mapping[str, np.ndarray]) -> np.ndarray:
    if "f0_hz" in examples:
        return np.asarray(examples["f0_hz"], dtype=float)
    return np.array([pitch_hz_from_name(os.path.basename(str(n))) for n in examples["file_name"]])


def choose_examples(labels: np.ndarray, preds: np.ndarray, f0_hz: np.ndarray, n_classes: int, *,
                    target_hz: float = 440.0) -> Dict[int, int]:
    """One example per class for Fig. 1: correctly classified if possible, pitch nearest ``target_hz`` (A4).

    Returns
    -------
    dict class index → row index (classes without examples are absent)
    """
    labels, preds, f0 = np.asarray(labels), np.asarray(preds), np.asarray(f0_hz, float)
    dist = np.where(np.isfinite(f0) & (f0 > 0), np.abs(np.log2(np.where(f0 > 0, f0, 1) / target_hz)), np.inf)
    chosen = {}
    for c in range(n_classes):
        rows = np.flatnonzero(labels == c)
        if rows.size == 0:
            continue
        correct = rows[preds[rows] == c]
        pool = correct if correct.size else rows
        chosen[c] = int(pool[np.argmin(dist[pool])])
    return chosen


def drawn_methods(rf, methods: Optional[Sequence[str]]) -> List[str]:
    """Methods drawn as map rows: those asked for, else the paper's two when present, else all."""
    if methods:
        missing = [m for m in methods if m not in rf.methods]
        if missing:
            raise ParameterError(f"methods {missing} are not in {rf.path}; it holds {list(rf.methods)}")
        return list(methods)
    paper = [m for m in ("epsilon", "epsilon_plus") if m in rf.methods]
    return paper if len(paper) == 2 else list(rf.methods)


def _aggregate_method(rf, method: Optional[str]) -> str:
    if method is not None:
        return drawn_methods(rf, [method])[0]
    return "epsilon_plus" if "epsilon_plus" in rf.methods else rf.methods[-1]


def _audio_resolver(rf, audio_root):
    from ..data.paths import AudioResolver
    # names accepted at extraction
    return AudioResolver(audio_root or rf.attrs.get("audio_root") or os.getcwd(), allow_outside=True)


def _window_audio(rf, k: int, resolve, config) -> np.ndarray:
    """The window the model saw for row ``k`` (zeros, with a message, if the audio has moved)."""
    from ..audio import read_window
    start = float(rf.examples["start_s"][k]) if "start_s" in rf.examples else 0.0
    try:
        return read_window(resolve(str(rf.examples["file_name"][k])), config, start_s=start)[0]
    except AudioError as e:
        logger.info("spectrogram left empty: %s (pass the audio root)", e)
        return np.zeros(config.N)


def _rows_of(rf, examples) -> List[int]:
    """Row indices from ints, or from file names (full or base names)."""
    names = [str(n) for n in rf.examples["file_name"]]
    rows = []
    for e in examples:
        if isinstance(e, (int, np.integer)) or (isinstance(e, str) and e.strip().isdigit()):
            k = int(e)
            if not 0 <= k < len(rf):
                raise ParameterError(f"example {k} is not a row of {rf.path} (0..{len(rf) - 1})")
            rows.append(k)
            continue
        match = [i for i, n in enumerate(names) if n == e or os.path.basename(n) == os.path.basename(str(e))]
        if not match:
            raise ParameterError(f"example {e!r} is neither a row index nor a file name in {rf.path} "
                                 f"(e.g. {os.path.basename(names[0])!r})")
        rows.append(match[0])
    return rows


def fig1(rf: RelevanceFile, *, examples: Optional[Sequence[Union[int, str]]] = None,
         methods: Optional[Sequence[str]] = None, audio_root: Optional[PathLike] = None) -> Figure:
    """The paper's Fig. 1 for a relevance file: one column per example (default: one per class, correctly
    classified if possible, pitch nearest A4), rows spectrogram, model input and one local map per method.

    Parameters
    ----------
    rf : scatterxai.io.RelevanceFile
    examples : sequence of int or str, optional
        Row indices or file names to draw.
    methods : sequence of str, optional
        Default: LRP-ε and LRP-[ε,z+] when the file has both, else every method.
    audio_root : str, optional
        Where the audio files are (default: the relevance file's ``audio_root`` attribute).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..scattering.config import ScatteringConfig
    methods = drawn_methods(rf, methods)
    config = ScatteringConfig.from_dict(rf.attrs)
    labels = np.asarray(rf.labels if rf.labels is not None else rf.examples["pred"], dtype=np.int64)
    preds = np.asarray(rf.examples["pred"], dtype=np.int64)
    f0 = _f0_column(rf.examples)
    if examples is None:
        rows = list(choose_examples(labels, preds, f0, len(rf.classes)).values())
    else:
        rows = _rows_of(rf, examples)
    S_mean = rf.features(np.unique(rows)).mean(axis=-1)
    S_of = {k: S_mean[i] for i, k in enumerate(np.unique(rows))}
    local = {m: rf.local(m) for m in methods}
    resolve = _audio_resolver(rf, audio_root)
    columns = []
    for k in rows:
        ok = "" if preds[k] == labels[k] else f" (predicted {rf.classes[preds[k]]})"
        f0_text = f", {f0[k]:.0f} Hz" if np.isfinite(f0[k]) else ""
        start = f" @ {float(rf.examples['start_s'][k]):.1f} s" if "start_s" in rf.examples else ""
        columns.append(dict(title=f"{rf.classes[labels[k]]}{ok}\n{os.path.basename(str(rf.examples['file_name'][k]))}"
                            f"{start}{f0_text}", audio=_window_audio(rf, k, resolve, config), sr=config.sr,
                            f0_hz=f0[k], S=rf.to_grid(S_of[k]), lambda1_hz=rf.grid.lambda1_hz,
                            lambda2_hz=rf.grid.lambda2_hz, maps=[rf.to_grid(local[m][k]) for m in methods]))
    return figure1(columns, rule_titles=[method_title(m) for m in methods])


def fig2(rf: RelevanceFile, *, method: Optional[str] = None) -> Figure:
    """The paper's Fig. 2: class-mean model input and top-n aggregated relevance of ``method`` (default
    LRP-[ε,z+] when present), for every class with examples (grouped as the file's aggregate is)."""
    method = _aggregate_method(rf, method)
    groups = np.asarray(rf.labels if rf.labels is not None else rf.examples["pred"], dtype=np.int64)
    present = [c for c in range(len(rf.classes)) if np.any(groups == c)]
    S_mean = rf.features().mean(axis=-1)
    mean_S = np.stack([rf.to_grid(S_mean[groups == c].mean(axis=0)) for c in present])
    agg = rf.to_grid(rf.aggregate(method).astype(float))[present]
    return figure2(mean_S, agg, rf.grid.lambda1_hz, rf.grid.lambda2_hz, [rf.classes[c] for c in present],
                   top_n=int(rf.attrs.get("top_n", 5)), rule_title=method_title(method))


def confusion_figure(metrics: Mapping[str, Mapping]) -> Figure:
    """Confusion matrices, one column per model: counts on top, the row-normalised shares (%) below — each
    true class's row sums to 100 %, so the diagonal is the per-class accuracy, whatever the class sizes.
    ``metrics`` maps a name (e.g. "s1") to a metrics dict with ``confusion_matrix``, ``classes`` and
    ``macro_accuracy``."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(metrics), figsize=(4.6 * len(metrics), 8.4), layout="constrained",
                             squeeze=False)
    im = None
    for j, (name, m) in enumerate(metrics.items()):
        macro = m.get("macro_accuracy")
        acc = f"macro accuracy {100 * macro:.1f} %" if macro is not None and np.isfinite(macro) else ""
        label = INPUT_LABELS.get(name, name)
        confusion(m["confusion_matrix"], m["classes"], ax=axes[0, j],
                  title=f"{label}: {acc}".rstrip(": ") + "\n(counts)")
        im = confusion(m["confusion_matrix"], m["classes"], ax=axes[1, j], normalize=True,
                       title=f"{label}: % of each true class\n(row-normalised; diagonal = per-class accuracy)")
    fig.colorbar(im, ax=axes, shrink=0.5, label="share of the true class")
    return fig


def _relevance_metrics(rf) -> Optional[dict]:
    """Confusion and macro accuracy of the explained model on the explained rows (None without labels)."""
    if rf.labels is None:
        return None
    y, p, n = np.asarray(rf.labels, np.int64), np.asarray(rf.examples["pred"], np.int64), len(rf.classes)
    cm = np.zeros((n, n), np.int64)
    np.add.at(cm, (y, p), 1)
    support = cm.sum(axis=1)
    macro = float(np.mean(np.diag(cm)[support > 0] / support[support > 0])) if support.any() else float("nan")
    return {"confusion_matrix": cm.tolist(), "classes": list(rf.classes), "macro_accuracy": macro}


@claims_output("out_dir", kind="figures", inputs={"relevance": "relevance input", "audio_root": "audio root",
                                                  "metrics_paths": "metrics"},
               study=lambda ba: relevance_study(ba.arguments["relevance"]))
def relevance_figures(relevance: PathLike, out_dir: PathLike, *,
                      examples: Optional[Sequence[Union[int, str]]] = None, methods: Optional[Sequence[str]] = None,
                      aggregate_method: Optional[str] = None, audio_root: Optional[PathLike] = None,
                      metrics_paths: Optional[Mapping[str, str]] = None, fmt: str = "png",
                      dpi: float = 80, overwrite: bool = False) -> Dict[str, str]:
    """Write Fig. 1, Fig. 2 and the confusion matrices of a relevance file (``scatterxai figures``).

    Parameters
    ----------
    relevance : str
    out_dir : str
        Written as a whole under the output rule (:mod:`scatterxai._util.outputs`; created with at most one
        missing folder above it).
    examples, methods, audio_root : see :func:`fig1`
    aggregate_method : str, optional
        Method of Fig. 2 (see :func:`fig2`).
    metrics_paths : mapping name → metrics.json, optional
        Confusion matrices to draw (e.g. ``{"s1": …, "s1s2": …}``); default: the explained model on the
        explained rows, when the file has labels.
    fmt : {"png", "pdf", "svg"}
    dpi : float
        Resolution of raster output (and of the rasterised maps inside vector output), at most
        :data:`MAX_DPI`.
    overwrite : bool
        Replace an output of another kind or study.

    Returns
    -------
    dict figure name → path
    """
    from ..io.relevance import RelevanceFile
    _agg_backend()
    names = figure_files(fmt)
    dpi = check_dpi(dpi)
    written = {}
    with RelevanceFile(relevance) as rf:
        written["fig1"] = _save(fig1(rf, examples=examples, methods=methods, audio_root=audio_root),
                                os.path.join(out_dir, names["fig1"]), dpi)
        written["fig2"] = _save(fig2(rf, method=aggregate_method), os.path.join(out_dir, names["fig2"]), dpi)
        if metrics_paths:
            metrics = {}
            for name, path in metrics_paths.items():
                with open(path, encoding="utf-8") as fh:
                    metrics[name] = json.load(fh)
        else:
            m = _relevance_metrics(rf)
            metrics = {} if m is None else {str(rf.attrs.get("model_input", "model")): m}
    if metrics:
        written["confusion"] = _save(confusion_figure(metrics), os.path.join(out_dir, names["confusion"]), dpi)
    return written


def make_figures(relevance: PathLike, metrics_paths: Mapping[str, str], *, audio_root: str, out_dir: str,
                 rules: Sequence[str] = ("epsilon", "epsilon_plus"), aggregate_rule: str = "epsilon_plus",
                 dpi: float = 80,
                 fmt: str = "png") -> dict:
    """The pipeline's figures: Fig. 1 (``rules``), Fig. 2 (``aggregate_rule``) and the confusion matrices of
    ``metrics_paths`` ({"s1": path, "s1s2": path}); see :func:`relevance_figures`."""
    return relevance_figures(relevance, out_dir, methods=list(rules), aggregate_method=aggregate_rule,
                             audio_root=audio_root, metrics_paths=metrics_paths, fmt=fmt, dpi=dpi, overwrite=True)


# ------------------------------------------------------------------------------------ the single-file view

def top_cells(local: np.ndarray, grid: GridIndex, n: int = 3) -> List[dict]:
    """The ``n`` paths of highest relevance, named in Hz.

    Parameters
    ----------
    local : np.ndarray [shape=(C,)]
        A local map (or a mean of local maps).
    grid : scatterxai.maps.GridIndex
    n : int

    Returns
    -------
    list of dict with ``lambda1_hz``, ``lambda2_hz`` (0 for S1 paths), ``order``, ``relevance``, ``path``
    """
    local = np.asarray(local, dtype=float)
    order = np.argsort(-np.where(np.isfinite(local), local, -np.inf), kind="stable")[:n]
    return [{"path": int(i), "lambda1_hz": float(grid.lambda1_hz[grid.row[i]]),
             "lambda2_hz": float(grid.lambda2_hz[grid.col[i]]), "order": 1 if grid.col[i] == 0 else 2,
             "relevance": float(local[i])} for i in order]


def _hz(value: float) -> str:
    return f"{value:.0f} Hz" if value >= 100 else f"{value:.1f} Hz" if value >= 10 else f"{value:.2f} Hz"


def _cell_text(cell: dict) -> str:
    return f"λ1 = {_hz(cell['lambda1_hz'])}, " + ("S1" if cell["order"] == 1 else f"λ2 = {_hz(cell['lambda2_hz'])}")


def _mark(ax, cells, grid) -> None:
    _, _, x_s1 = map_edges(grid.lambda1_hz, grid.lambda2_hz)
    for i, cell in enumerate(cells, start=1):
        x = x_s1 if cell["order"] == 1 else cell["lambda2_hz"]
        ax.plot([x], [cell["lambda1_hz"]], marker="o", ms=9, mfc="none", mec="lime", mew=1.4)
        ax.annotate(str(i), (x, cell["lambda1_hz"]), xytext=(5, 4), textcoords="offset points", color="lime",
                    fontsize=8, fontweight="bold")


def _file_profile(rf: RelevanceFile, rows: np.ndarray, methods: Sequence[str], duration_s: float) -> Optional[dict]:
    """Keyword arguments of :func:`~scatterxai.viz.plots.relevance_in_time` for one file (None for a
    relevance file without ``/time_profile``, written before version 0.3)."""
    from ..maps.time_profile import file_time_profile
    if rf.time_profile(methods[0]) is None:
        return None
    starts = np.asarray(rf.examples["start_s"], dtype=float)[rows]
    profiles, t = {}, None
    for m in methods:
        t, v = file_time_profile(rf.time_profile(m, rows), starts, rf.frame_times, duration_s)
        profiles[method_title(m)] = v
    return dict(time_s=t, profiles=profiles, window_starts=starts, duration_s=duration_s)


def example_figure(rf: RelevanceFile, index: int, *, methods: Optional[Sequence[str]] = None, top: int = 3,
                   audio_root: Optional[PathLike] = None) -> Figure:
    """The single-file view of an audio-in explanation (Fig. 1 for one recording): spectrogram, model
    input and one relevance map per method on the (λ1, λ2) plane, the ``top`` cells of the last method
    marked and named in Hz, the predicted class with its probability, and the relevance over time of every
    method (summed over paths, each scaled by its largest absolute value; frames inside the file).

    For a file cut into windows, the maps and the model input are means over its windows (every window
    explains the file's class), the spectrogram shows the recording (its first :data:`MAX_SPECTROGRAM_S`
    seconds) and dotted lines mark the windows' starts in the time panel.

    Parameters
    ----------
    rf : scatterxai.io.RelevanceFile
        Written by :func:`scatterxai.explain.explain_files` (it has ``/files``).
    index : int
        File index.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ..audio import load_signal
    from ..scattering.config import ScatteringConfig
    files = rf.files()
    if files is None:
        raise ParameterError(f"{rf.path} holds no per-file explanations (/files); draw it with fig1")
    methods = drawn_methods(rf, methods)
    config = ScatteringConfig.from_dict(rf.attrs)
    rows = np.flatnonzero(np.asarray(rf.examples["file_index"]) == index)
    path, n_seg = str(files["file_name"][index]), int(files["n_segments"][index])
    if n_seg == 1:
        audio = _window_audio(rf, int(rows[0]), _audio_resolver(rf, audio_root), config)
    else:
        try:
            audio = load_signal(path, config.sr, max_s=MAX_SPECTROGRAM_S)
        except AudioError as e:
            logger.info("spectrogram left empty: %s", e)
            audio = np.zeros(config.N)
    prob = files["probability"][index]
    pred = int(files["pred"][index])
    others = ", ".join(f"{rf.classes[c]} {prob[c]:.2f}" for c in np.argsort(-prob)[1:3])
    maps = [files[f"local/{m}"][index] for m in methods]
    cells = top_cells(maps[-1], rf.grid, top)
    mean = f"mean of {n_seg} windows: " if n_seg > 1 else ""
    column = dict(title=f"{os.path.basename(path)}\n{mean}{rf.classes[pred]} (p = {prob[pred]:.2f}; {others})",
                  audio=audio, sr=config.sr, f0_hz=float("nan"),
                  S=rf.to_grid(rf.features(rows).mean(axis=(0, 2))), lambda1_hz=rf.grid.lambda1_hz,
                  lambda2_hz=rf.grid.lambda2_hz, maps=[rf.to_grid(m) for m in maps],
                  profile=_file_profile(rf, rows, methods, float(files["duration_s"][index])))
    titles = [method_title(m) for m in methods]
    fig = figure1([column], rule_titles=titles)
    fig.set_size_inches(5.0, fig.get_size_inches()[1] + 0.6)
    # one column: panel titles instead of the row labels left of the panels (which would be cut off)
    panels = fig.axes[:2 + len(methods)]  # the colour bars come after all panels
    for ax, title in zip(panels[1:], ["model input (time average)"] + titles):
        for text in list(ax.texts):
            text.remove()
        ax.set_title(title, fontsize=9)
    for text in list(panels[0].texts):
        text.remove()
    for ax in panels[2:]:
        _mark(ax, cells, rf.grid)
    fig.suptitle(f"top {method_title(methods[-1])} cells:\n"
                 + "\n".join(f"{i}. {_cell_text(c)}" for i, c in enumerate(cells, start=1)), fontsize=8)
    return fig


def example_figures(relevance: PathLike, out_dir: PathLike, *, methods: Optional[Sequence[str]] = None, top: int = 3,
                    fmt: str = "png", dpi: float = 100, audio_root: Optional[PathLike] = None) -> List[str]:
    """Write :func:`example_figure` of every file of an audio-in relevance file as ``out_dir/<name>.<fmt>``
    (``<name>`` is the audio file's base name without extension; ``-2``, ``-3``… for repeated names).

    Returns
    -------
    list of str — the written paths, in file order.
    """
    from ..io.relevance import RelevanceFile
    _agg_backend()
    out_dir = prepare_output(out_dir, is_dir=True)
    suffix = "." + figure_files(fmt)["fig1"].rsplit(".", 1)[1]
    dpi = check_dpi(dpi)
    written, taken = [], set()
    with RelevanceFile(relevance) as rf:
        files = rf.files()
        if files is None:
            raise ParameterError(f"{relevance} holds no per-file explanations (/files); use relevance_figures")
        for i, name in enumerate(files["file_name"]):
            stem = os.path.splitext(os.path.basename(str(name)))[0]
            unique, n = stem, 1
            while unique in taken:
                n += 1
                unique = f"{stem}-{n}"
            taken.add(unique)
            fig = example_figure(rf, i, methods=methods, top=top, audio_root=audio_root)
            written.append(_save(fig, os.path.join(out_dir, unique + suffix), dpi))
    return written
