"""Figures of the probe study: layer × descriptor heat maps (probe R², CKA), trained beside untrained.

Plot functions take ``ax=None`` and return the artist; nothing here saves files.  No torch import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ParameterError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.image import AxesImage

__all__ = ["layer_heatmap", "trained_untrained_heatmaps"]


def _plt():
    import matplotlib.pyplot as plt  # imported lazily: the package does not need a display to load
    return plt


def layer_heatmap(values: ArrayLike, layers: Sequence[str], columns: Sequence[str], *, ax: Axes | None = None,
                  vmin: float = 0.0, vmax: float = 1.0, cmap: str = "viridis", title: str | None = None,
                  annotate: bool = True, fmt: str = "{:.2f}") -> AxesImage:
    """A layer × descriptor matrix as a heat map, each cell annotated with its value.

    Parameters
    ----------
    values : array-like [shape=(n_layers, n_columns)]
        NaN cells are left blank.
    layers, columns : sequence of str
        Row and column labels.
    ax : matplotlib.axes.Axes, optional
    vmin, vmax : float
        Colour range (values outside are clipped in colour, not in the annotation).
    cmap : str
    title : str, optional
    annotate : bool
        Write each value in its cell.
    fmt : str
        Format of the annotations.

    Returns
    -------
    matplotlib.image.AxesImage
    """
    plt = _plt()
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(layers), len(columns)):
        raise ParameterError(f"values must have shape (len(layers), len(columns)) = ({len(layers)}, "
                             f"{len(columns)}), got {values.shape}")
    if ax is None:
        ax = plt.gca()
    im = ax.imshow(np.ma.masked_invalid(values), vmin=vmin, vmax=vmax, cmap=cmap, aspect="auto",
                   interpolation="nearest")
    ax.set_xticks(range(len(columns)), labels=list(columns), rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(layers)), labels=list(layers), fontsize=8)
    if annotate:
        mid = (vmin + vmax) / 2
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=6,
                        color="black" if v > mid else "white")
    if title:
        ax.set_title(title, fontsize=9)
    return im


def trained_untrained_heatmaps(trained: ArrayLike, untrained: ArrayLike, layers: Sequence[str],
                               columns: Sequence[str], *, axes: Sequence[Axes] | None = None, label: str = "",
                               vmin: float = 0.0, vmax: float = 1.0,
                               cmap: str = "viridis") -> tuple[AxesImage, AxesImage]:
    """Two heat maps side by side with one colour scale: trained network (left), untrained mean (right).

    Parameters
    ----------
    trained, untrained : array-like [shape=(n_layers, n_columns)]
    layers, columns : sequence of str
    axes : pair of matplotlib.axes.Axes, optional
        Default: a new figure with two panels.
    label : str
        What the values are (colour-bar label and titles).
    vmin, vmax, cmap
        As :func:`layer_heatmap`.

    Returns
    -------
    tuple of two matplotlib.image.AxesImage
    """
    plt = _plt()
    if axes is None:
        width = max(6.0, 1.0 + 0.5 * len(columns)) * 2
        _, axes = plt.subplots(1, 2, figsize=(width, 1.4 + 0.45 * len(layers)), constrained_layout=True)
    if len(axes) != 2:
        raise ParameterError(f"axes must be a pair of Axes, got {len(axes)}")
    ims = tuple(layer_heatmap(v, layers, columns, ax=ax, vmin=vmin, vmax=vmax, cmap=cmap,
                              title=f"{label} — {name}".strip(" —"))
                for v, ax, name in ((trained, axes[0], "trained"), (untrained, axes[1], "untrained (mean)")))
    axes[0].figure.colorbar(ims[1], ax=list(axes), shrink=0.9, label=label)
    return ims
