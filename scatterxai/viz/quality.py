"""Figures of the quality checks: deletion / insertion curves against random orders, randomisation curves.

Inputs are the per-method dicts of ``quality.json`` (:func:`scatterxai.analysis.quality.quality`).  Plot
functions take ``ax=None`` and return the artists; nothing here saves files.  No torch import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ParameterError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.container import ErrorbarContainer
    from matplotlib.lines import Line2D

__all__ = ["perturbation_curves", "randomisation_curves"]

_QUANTITIES = {"logit": "explained logit", "prob": "softmax probability of the explained class",
               "accuracy": "share of notes whose prediction holds"}


def _plt():
    import matplotlib.pyplot as plt  # imported lazily: the package does not need a display to load
    return plt


def _methods(result: Mapping, methods) -> list:
    methods = list(result) if methods is None else list(methods)
    if not methods or any(m not in result for m in methods):
        raise ParameterError(f"methods must be a non-empty subset of {list(result)}, got {methods}")
    return methods


def perturbation_curves(result: Mapping, *, mode: str = "deletion", quantity: str = "logit",
                        methods: Sequence[str] | None = None, labels: Mapping[str, str] | None = None,
                        ax: Axes | None = None) -> list[Line2D]:
    """Mean curve of each method and of the random orders (± one standard deviation of the logit).

    Parameters
    ----------
    result : dict
        ``{method: {"deletion": {"fraction", "logit", "prob", "accuracy", "logit_std"}, "deletion_random":
        {...}, "insertion": ..., "insertion_random": ...}}`` (quality.json).
    mode : {"deletion", "insertion"}
    quantity : {"logit", "prob", "accuracy"}
    methods : sequence of str, optional
    labels : mapping method → legend label, optional
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    list of matplotlib.lines.Line2D
        One line per method, then the random reference.
    """
    plt = _plt()
    if mode not in ("deletion", "insertion") or quantity not in _QUANTITIES:
        raise ParameterError(f"mode must be 'deletion' or 'insertion' and quantity one of {list(_QUANTITIES)}, "
                             f"got {mode!r}, {quantity!r}")
    methods = _methods(result, methods)
    labels = labels or {}
    ax = plt.gca() if ax is None else ax
    lines = []
    for m in methods:
        c = result[m][mode]
        lines += ax.plot(100 * np.asarray(c["fraction"], float), np.asarray(c[quantity], float), marker=".",
                         label=labels.get(m, m))
    r = result[methods[0]][mode + "_random"]
    f, y = 100 * np.asarray(r["fraction"], float), np.asarray(r[quantity], float)
    lines += ax.plot(f, y, color="black", linestyle="--", label="random order (mean)")
    if quantity == "logit":
        sd = np.asarray(r["logit_std"], float)
        ax.fill_between(f, y - sd, y + sd, color="grey", alpha=0.2, linewidth=0)
    verb = "replaced by the baseline" if mode == "deletion" else "inserted into the all-baseline input"
    ax.set_xlabel(f"paths {verb} (% of all paths, top first)")
    ax.set_ylabel(_QUANTITIES[quantity])
    ax.set_title(mode)
    ax.legend(fontsize="small")
    return lines


_MEASURES = {"spearman_abs": "Spearman ρ of abs(map)", "spearman": "Spearman ρ (signed maps)",
             "ssim": "SSIM of abs(map), (λ1, λ2) grid"}


def randomisation_curves(result: Mapping, *, kind: str = "cascading", measure: str = "spearman_abs",
                         methods: Sequence[str] | None = None, labels: Mapping[str, str] | None = None,
                         threshold: float | None = 0.5, ax: Axes | None = None) -> list[ErrorbarContainer]:
    """Similarity (mean over seeds and notes, with its 95 % interval over seeds) between each method's maps of
    the trained and of the randomised network, per randomisation step.

    Parameters
    ----------
    result : dict
        ``{method: {"randomisation": {"steps", "spearman_abs": {"mean", "ci_low", "ci_high"}, "spearman": …,
        "ssim": …}, "randomisation_independent": {...}}}`` (quality.json); methods without randomisation
        (null) are skipped.
    kind : {"cascading", "independent"}
    measure : {"spearman_abs", "spearman", "ssim"}
        Spearman ρ of the absolute maps (what the checks use), of the signed maps, or SSIM.
    threshold : float, optional
        Drawn as a horizontal line (the check's limit).

    Returns
    -------
    list of matplotlib.container.ErrorbarContainer
    """
    plt = _plt()
    key = {"cascading": "randomisation", "independent": "randomisation_independent"}.get(kind)
    if key is None or measure not in _MEASURES:
        raise ParameterError(f"kind must be 'cascading' or 'independent' and measure one of {list(_MEASURES)}, "
                             f"got {kind!r}, {measure!r}")
    methods = [m for m in _methods(result, methods) if result[m].get(key)]
    labels = labels or {}
    ax = plt.gca() if ax is None else ax
    artists = []
    steps = []

    def values(r, field):
        return np.array([np.nan if v is None else v for v in r[measure][field]], float)

    for i, m in enumerate(methods):
        r = result[m][key]
        steps = list(r["steps"])
        x = np.arange(len(steps)) + 0.06 * (i - (len(methods) - 1) / 2)
        y = values(r, "mean")
        err = np.abs(np.stack([y - values(r, "ci_low"), values(r, "ci_high") - y]))
        artists.append(ax.errorbar(x, y, yerr=np.nan_to_num(err), marker="o", capsize=2, label=labels.get(m, m),
                                   linestyle="-" if kind == "cascading" else "none"))
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle=":", linewidth=1)
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xticks(np.arange(len(steps)))
    ax.set_xticklabels(steps, rotation=30)
    ax.set_ylim(-1.05 if measure == "spearman" else -0.05, 1.05)
    ax.set_ylabel(_MEASURES[measure] + " with the trained network's map")
    ax.set_title("cascading randomisation (output → input)" if kind == "cascading"
                 else "one layer randomised at a time")
    if methods:
        ax.legend(fontsize="small")
    return artists
