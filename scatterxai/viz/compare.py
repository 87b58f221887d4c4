"""Figures of the map-comparison study: per-class box plots and a method × method agreement matrix.

Inputs are the dicts of :func:`scatterxai.maps.compare_study.study_values` (per-pair arrays) and
:func:`scatterxai.maps.compare_study.compare_study` (summaries).  Plot functions take ``ax=None`` and return the
artist; nothing here saves files.  No torch import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ParameterError
from ..maps.compare import METRICS
from ..maps.compare_study import summarise

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.image import AxesImage

__all__ = ["agreement_matrix", "metric_boxplot"]


def _plt():
    import matplotlib.pyplot as plt  # imported lazily: the package does not need a display to load
    return plt


def _check_metric(metric: str):
    if metric not in METRICS:
        raise ParameterError(f"metric must be one of {list(METRICS)}, got {metric!r}")
    return METRICS[metric]


def metric_boxplot(values: Mapping, metric: str, *, between: Mapping | None = None,
                   methods: Sequence[str] | None = None, classes: Sequence[str] | None = None,
                   ax: Axes | None = None) -> dict:
    """Box plots of one metric over pairs of notes: a group per class, one box per method.

    Parameters
    ----------
    values : dict
        ``{method: {class: {metric: array (M,)}}}``, i.e. ``study_values(...)["within_class"]``.
    metric : str
        A name of :data:`scatterxai.maps.compare.METRICS`.
    between : dict, optional
        ``{method: {metric: array (M,)}}`` (``study_values(...)["between_class"]``), drawn as a last group
        "between classes", the reference that within-class values should stay below.
    methods, classes : sequence of str, optional
        Subsets and order (default: all, in the dicts' order).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    dict
        The artists of ``Axes.boxplot`` (``"boxes"``, ``"medians"``, ...).  NaN values are dropped; empty
        groups get no box.
    """
    plt = _plt()
    info = _check_metric(metric)
    methods = list(values) if methods is None else list(methods)
    if not methods or any(m not in values for m in methods):
        raise ParameterError(f"methods must be a non-empty subset of {list(values)}, got {methods}")
    classes = list(values[methods[0]]) if classes is None else list(classes)
    groups = [(c, {m: values[m].get(c, {}).get(metric, []) for m in methods}) for c in classes]
    if between is not None:
        groups.append(("between classes", {m: between.get(m, {}).get(metric, []) for m in methods}))
    ax = plt.gca() if ax is None else ax
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    width = 0.8 / len(methods)
    data, positions, colour_of_box = [], [], []
    for g, (_, by_method) in enumerate(groups):
        for k, m in enumerate(methods):
            v = np.asarray(by_method[m], dtype=float).ravel()
            v = v[np.isfinite(v)]
            if v.size:
                data.append(v)
                positions.append(g + (k - (len(methods) - 1) / 2) * width)
                colour_of_box.append(colours[k % len(colours)])
    if not data:
        raise ParameterError(f"no finite value of {metric!r} to plot for methods {methods}")
    artists = ax.boxplot(data, positions=positions, widths=0.9 * width, patch_artist=True, manage_ticks=False,
                         flierprops={"markersize": 2}, medianprops={"color": "black"})
    for box, colour in zip(artists["boxes"], colour_of_box):
        box.set_facecolor(colour)
        box.set_alpha(0.7)
    ax.set_xticks(range(len(groups)), [name for name, _ in groups], rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylabel(f"{metric} ({info.unit})")
    if len(methods) > 1:
        handles = [plt.Rectangle((0, 0), 1, 1, facecolor=colours[k % len(colours)], alpha=0.7)
                   for k in range(len(methods))]
        ax.legend(handles, methods, fontsize=7, frameon=False)
    return artists


def _mean(leaf) -> float:
    return float(leaf["mean"]) if isinstance(leaf, Mapping) else summarise(leaf)["mean"]


def agreement_matrix(between_methods: Mapping, metric: str, *, methods: Sequence[str] | None = None,
                     ax: Axes | None = None, cmap: str = "viridis_r", annotate: bool = True) -> AxesImage:
    """Method × method heat map of the mean distance between two methods' maps of the same note.

    Parameters
    ----------
    between_methods : dict
        ``{"a|b": {metric: summary or array}}``: ``compare_study(...)["between_methods"]`` (leaves
        ``{"mean", "std", "n_pairs"}``) or ``study_values(...)["between_methods"]`` (per-note arrays).
    metric : str
        A name of :data:`scatterxai.maps.compare.METRICS`.
    methods : sequence of str, optional
        Rows/columns and their order (default: in order of appearance in the keys).
    ax : matplotlib.axes.Axes, optional
    cmap : str
        Reversed by default: small distance (agreement) is bright.
    annotate : bool
        Write each cell's value.

    Returns
    -------
    matplotlib.image.AxesImage
        Cell (a, b) holds the "a|b" entry; the diagonal is 0 (D(p, p) = 0).  Where only "a|b" was computed,
        (b, a) mirrors it for symmetric metrics and stays blank for KL (asymmetric).
    """
    plt = _plt()
    info = _check_metric(metric)
    pairs = {}
    for key, leaves in between_methods.items():
        names = str(key).split("|")
        if len(names) != 2:
            raise ParameterError(f"between_methods keys must be 'a|b', got {key!r}")
        if metric not in leaves:
            raise ParameterError(f"between_methods[{key!r}] has no {metric!r}; it has {list(leaves)}")
        pairs[tuple(names)] = _mean(leaves[metric])
    seen = list(dict.fromkeys(n for pair in pairs for n in pair))
    methods = seen if methods is None else list(methods)
    if not methods:
        raise ParameterError("between_methods is empty: nothing to draw")
    index = {m: i for i, m in enumerate(methods)}
    matrix = np.full((len(methods), len(methods)), np.nan)
    np.fill_diagonal(matrix, 0.0)
    for (a, b), value in pairs.items():
        if a in index and b in index:
            matrix[index[a], index[b]] = value
            if info.symmetric and (b, a) not in pairs:
                matrix[index[b], index[a]] = value
    ax = plt.gca() if ax is None else ax
    im = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, vmin=0)
    if annotate:
        for i, j in zip(*np.nonzero(np.isfinite(matrix))):
            r, g, b, _ = im.cmap(im.norm(matrix[i, j]))
            ax.text(j, i, f"{matrix[i, j]:.3g}", ha="center", va="center", fontsize=7,
                    color="white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black")
    ax.set_xticks(range(len(methods)), methods, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(methods)), methods, fontsize=8)
    ax.set_title(f"{metric} between methods ({info.unit}, mean over notes)", fontsize=9)
    return im
