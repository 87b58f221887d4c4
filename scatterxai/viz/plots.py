"""Matplotlib figures from arrays: (λ1, λ2) maps, spectrograms, confusion matrices, the paper's figures.

Plot functions take ``ax=None`` and return the artist; figure builders return the ``Figure``.  Nothing here
saves files (the pipeline and the experiments/ scripts do).  No Kymatio or Zennit import: inputs are plain
arrays, e.g. from :func:`scatterxai.maps.grid_layout` or a relevance HDF5 file.

Map layout (paper Fig. 1): carrier λ1 on the vertical axis, modulation rate λ2 on the horizontal axis, both
logarithmic in Hz; the first-order coefficients S1 form their own column drawn left of the λ2 axis and
labelled "0"; cells without a scattering path are left blank.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import ArrayLike

from ..errors import ParameterError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.collections import QuadMesh
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage

__all__ = ["lambda_map", "spectrogram", "confusion", "relevance_in_time", "figure1", "figure2", "LAMBDA2_TICKS_HZ"]

#: λ2 ticks of the paper's figures (Hz)
LAMBDA2_TICKS_HZ = (1, 8, 64, 512, 4096)
_LAMBDA1_TICKS_HZ = (32, 64, 125, 250, 500, 1000, 2000, 4000, 8000, 16000)


def _plt():
    import matplotlib.pyplot as plt  # imported lazily: the package does not need a display to load
    return plt


def _log_edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges between increasing positive centres: geometric midpoints, ends extrapolated."""
    c = np.asarray(centres, dtype=float)
    if c.size == 1:
        return np.array([c[0] / 2 ** 0.25, c[0] * 2 ** 0.25])
    mid = np.sqrt(c[:-1] * c[1:])
    return np.concatenate([[c[0] ** 2 / mid[0]], mid, [c[-1] ** 2 / mid[-1]]])


def map_edges(lambda1_hz, lambda2_hz):
    """Edges (Hz) of the grid cells for :func:`lambda_map`, and the x position of the S1 column's label.

    Returns
    -------
    y_edges : np.ndarray [shape=(n_λ1 + 1,)]
    x_edges : np.ndarray [shape=(n_cols + 1,)]
        The S1 column (λ2 = 0) sits left of the lowest λ2 cell, separated by a blank column.
    x_s1 : float
        Where to put the "0" tick.
    """
    lam1 = np.asarray(lambda1_hz, float)
    lam2 = np.asarray(lambda2_hz, float)
    if lam2.size < 1 or lam2[0] != 0:
        raise ParameterError(f"lambda2_hz must start with 0 (the S1 column), got {lam2[:3]}")
    y_edges = _log_edges(lam1)
    if lam2.size == 1:
        x_edges = np.array([0.5, 1.0])
    else:
        e2 = _log_edges(lam2[1:])
        gap = e2[0] / 2 ** 1.0
        # S1 cell [gap / 2^1.5, gap], then a blank one-octave column [gap, e2[0]] (room for the "0" and
        # "1" tick labels), then the λ2 cells
        x_edges = np.concatenate([[gap / 2 ** 1.5, gap], e2])
    x_s1 = np.sqrt(x_edges[0] * x_edges[1])
    return y_edges, x_edges, x_s1


def lambda_map(grid: np.ndarray, lambda1_hz: np.ndarray, lambda2_hz: np.ndarray, *, ax: Optional[Axes] = None,
               cmap: str = "magma", vmin: Optional[float] = None, vmax: Optional[float] = None,
               symmetric: bool = False, f0_hz: Optional[float] = None, colorbar: bool = True,
               label: Optional[str] = None, lambda1_range: Tuple[float, float] = (32.0, 22050.0),
               integer: bool = False) -> QuadMesh:
    """Draw values on the (λ1, λ2) plane.

    Parameters
    ----------
    grid : np.ndarray [shape=(n_λ1, 1 + n_λ2)]
        From :func:`scatterxai.maps.grid_layout`; column 0 is S1; NaN cells are blank.
    lambda1_hz, lambda2_hz : np.ndarray
        Row and column frequencies (Hz); ``lambda2_hz[0] == 0``.
    symmetric : bool
        Colour limits ±max|value| (for signed relevance; use a diverging ``cmap``).
    f0_hz : float, optional
        Draw the fundamental frequency as a horizontal dashed line.
    colorbar : bool
    label : str, optional
        Colour-bar label.
    integer : bool
        The values are counts: colour-bar ticks on integers only.

    Returns
    -------
    matplotlib.collections.QuadMesh
    """
    plt = _plt()
    grid = np.asarray(grid, float)
    lam1, lam2 = np.asarray(lambda1_hz, float), np.asarray(lambda2_hz, float)
    if grid.shape != (lam1.size, lam2.size):
        raise ParameterError(f"grid has shape {grid.shape}, expected ({lam1.size}, {lam2.size}) from the "
                             f"frequency axes")
    ax = plt.gca() if ax is None else ax
    y_edges, x_edges, x_s1 = map_edges(lam1, lam2)
    # insert the blank gap column between S1 and the first λ2 column
    shown = np.concatenate([grid[:, :1], np.full((grid.shape[0], 1), np.nan), grid[:, 1:]], axis=1) \
        if lam2.size > 1 else grid
    finite = shown[np.isfinite(shown)]
    if symmetric:
        m = np.abs(finite).max() if finite.size else 1.0
        vmin, vmax = (-m, m) if vmin is None and vmax is None else (vmin, vmax)
    mesh = ax.pcolormesh(x_edges, y_edges, np.ma.masked_invalid(shown), cmap=cmap, vmin=vmin, vmax=vmax,
                         shading="flat", rasterized=True)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_facecolor("#f2f2f2")
    # an S1-only map (a model of first-order paths) has the S1 column alone: no λ2 ticks
    ticks = [t for t in LAMBDA2_TICKS_HZ if x_edges[2] / 1.2 <= t <= x_edges[-1]] if x_edges.size > 2 else []
    ax.set_xticks([x_s1] + ticks, ["0"] + [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    lo = max(lambda1_range[0], y_edges[0])
    hi = min(lambda1_range[1], y_edges[-1])
    ax.set_ylim(lo, hi)
    yt = [t for t in _LAMBDA1_TICKS_HZ if lo <= t <= hi]
    ax.set_yticks(yt, [f"{t / 1000:g}k" if t >= 1000 else f"{t:g}" for t in yt])
    ax.yaxis.set_minor_locator(plt.NullLocator())
    ax.set_xlabel("λ2 (Hz)")
    ax.set_ylabel("λ1 (Hz)")
    if f0_hz is not None and np.isfinite(f0_hz) and lo <= f0_hz <= hi:
        ax.axhline(f0_hz, color="cyan", ls="--", lw=0.9)
    if colorbar:
        cb = ax.figure.colorbar(mesh, ax=ax, fraction=0.08, pad=0.02)
        if integer:
            from matplotlib.ticker import MaxNLocator
            cb.locator = MaxNLocator(integer=True)
            cb.update_ticks()
        if label:
            cb.set_label(label, fontsize=8)
        cb.ax.tick_params(labelsize=7)
    return mesh


def spectrogram(y: np.ndarray, sr: int, *, ax: Optional[Axes] = None, n_fft: int = 4096, hop: int = 512,
                fmin: float = 32.0, fmax: Optional[float] = None, dynamic_range_db: float = 80.0,
                cmap: str = "magma", colorbar: bool = True) -> QuadMesh:
    """Log-frequency, dB-scaled magnitude spectrogram of a mono signal.

    Returns
    -------
    matplotlib.collections.QuadMesh
    """
    from scipy.signal import stft
    plt = _plt()
    y = np.asarray(y, float)
    if y.ndim != 1 or y.size < 2:
        raise ParameterError(f"y must be a 1-D signal, got shape {y.shape}")
    ax = plt.gca() if ax is None else ax
    f, t, Z = stft(y, fs=sr, nperseg=min(n_fft, y.size), noverlap=min(n_fft, y.size) - hop, boundary=None)
    db = 20 * np.log10(np.abs(Z) + 1e-12)
    db = np.maximum(db, db.max() - dynamic_range_db)
    fmax = sr / 2 if fmax is None else fmax
    keep = (f >= fmin * 0.9) & (f <= fmax)
    mesh = ax.pcolormesh(t, f[keep], db[keep], cmap=cmap, shading="nearest", rasterized=True)
    ax.set_yscale("log")
    ax.set_ylim(fmin, fmax)
    yt = [v for v in _LAMBDA1_TICKS_HZ if fmin <= v <= fmax]
    ax.set_yticks(yt, [f"{v / 1000:g}k" if v >= 1000 else f"{v:g}" for v in yt])
    ax.yaxis.set_minor_locator(plt.NullLocator())
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    if colorbar:
        cb = ax.figure.colorbar(mesh, ax=ax, fraction=0.08, pad=0.02)
        cb.set_label("dB", fontsize=8)
        cb.ax.tick_params(labelsize=7)
    return mesh


def confusion(cm: ArrayLike, classes: Sequence[str], *, ax: Optional[Axes] = None, title: Optional[str] = None,
              cmap: str = "Blues", normalize: bool = False) -> AxesImage:
    """Confusion matrix (rows true, columns predicted), coloured by row-normalised rate.

    Parameters
    ----------
    cm : array-like [shape=(n_classes, n_classes)]
        Counts.
    normalize : bool
        Write each cell's share of its true class in % (the diagonal is the per-class accuracy; "–" for
        a class without examples) instead of the count.

    Returns
    -------
    matplotlib.image.AxesImage
    """
    plt = _plt()
    cm = np.asarray(cm, float)
    n = len(classes)
    if cm.shape != (n, n):
        raise ParameterError(f"cm must have shape ({n}, {n}) for {n} classes, got {cm.shape}")
    ax = plt.gca() if ax is None else ax
    totals = cm.sum(axis=1, keepdims=True)
    rates = cm / np.maximum(totals, 1)
    im = ax.imshow(rates, cmap=cmap, vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if not normalize:
                text = f"{int(cm[i, j])}"
            else:
                text = f"{100 * rates[i, j]:.1f}" if totals[i, 0] else "–"
            ax.text(j, i, text, ha="center", va="center", fontsize=8 if n <= 8 else 6,
                    color="white" if rates[i, j] > 0.6 else "black")
    ax.set_xticks(range(n), classes, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=10)
    return im


def relevance_in_time(time_s: ArrayLike, profiles: Mapping[str, ArrayLike], *, ax: Optional[Axes] = None,
                      window_starts: Optional[ArrayLike] = None, duration_s: Optional[float] = None) -> list:
    """Relevance over time, one line per method, each scaled by its largest absolute value.

    Parameters
    ----------
    time_s : array [shape=(n,)]
        Frame centres (s).
    profiles : mapping title → array [shape=(n,)]
        Relevance summed over paths per frame (e.g. ``predictions.json``'s ``time_profile``).
    window_starts : array, optional
        Starts (s) of the windows a long file was cut into (drawn as dotted lines after the first).
    duration_s : float, optional
        End of the x axis (s).

    Returns
    -------
    list of matplotlib.lines.Line2D
    """
    plt = _plt()
    t = np.asarray(time_s, float)
    ax = plt.gca() if ax is None else ax
    lines = []
    for title, values in profiles.items():
        v = np.asarray(values, float)
        if v.shape != t.shape:
            raise ParameterError(f"profile {title!r} has shape {v.shape}, time_s {t.shape}")
        scale = np.nanmax(np.abs(v)) if np.isfinite(v).any() else 0.0
        lines += ax.plot(t, v / scale if scale > 0 else v, lw=1.0, label=title)
    ax.axhline(0.0, color="0.6", lw=0.5)
    for start in np.asarray(window_starts if window_starts is not None else [], float)[1:]:
        ax.axvline(start, color="0.5", lw=0.6, ls=":")
    ax.set_xlim(0.0, duration_s if duration_s else (t.max() if t.size else 1.0))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("relevance (÷ max |·|)")
    if lines:
        ax.legend(fontsize=7, loc="best", frameon=False)
    return lines


def figure1(columns: Sequence[Mapping[str, Any]], *, rule_titles: Sequence[str] = ("LRP-ε", "LRP-[ε,z+]")) -> Figure:
    """The paper's Fig. 1: one column per class, rows (a) spectrogram, (b) S, (c), (d)… local relevance maps.

    Parameters
    ----------
    columns : list of dict
        One per class, with keys ``title`` (str), ``audio`` (1-D array), ``sr`` (Hz), ``f0_hz`` (float or
        NaN), ``S`` (grid of the time-averaged model input), ``maps`` (one relevance grid per rule),
        ``lambda1_hz``, ``lambda2_hz`` (grid axes); optionally ``profile`` (keyword arguments of
        :func:`relevance_in_time`), drawn in a last row.
    rule_titles : sequence of str
        One per map (the paper: LRP-ε and LRP-[ε,z+]).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    n = len(columns)
    if n == 0:
        raise ParameterError("figure1 needs at least one column")
    n_maps = len(rule_titles)
    timed = any(col.get("profile") for col in columns)
    heights = [3.1] * (2 + n_maps) + ([2.0] if timed else [])
    fig, axes = plt.subplots(len(heights), n, figsize=(3.6 * n, sum(heights) + 0.1), squeeze=False,
                             layout="constrained", gridspec_kw={"height_ratios": heights})
    rows = ["(a) spectrogram", "(b) scattering S1+S2"] + [f"({'cdefghij'[r]}) {t}" for r, t in enumerate(rule_titles)]
    rows += [f"({'cdefghijk'[n_maps]}) relevance in time"] if timed else []
    for j, col in enumerate(columns):
        spectrogram(col["audio"], col["sr"], ax=axes[0, j])
        axes[0, j].set_title(col["title"], fontsize=10)
        lambda_map(col["S"], col["lambda1_hz"], col["lambda2_hz"], ax=axes[1, j], f0_hz=col.get("f0_hz"),
                   label="log1p(S / cμ)")
        for r in range(n_maps):
            lambda_map(col["maps"][r], col["lambda1_hz"], col["lambda2_hz"], ax=axes[2 + r, j], cmap="RdBu_r",
                       symmetric=True, f0_hz=col.get("f0_hz"), label="relevance")
        if timed:
            if col.get("profile"):
                relevance_in_time(ax=axes[-1, j], **col["profile"])
            else:
                axes[-1, j].set_axis_off()
    for i, name in enumerate(rows):
        axes[i, 0].annotate(name, xy=(-0.42, 0.5), xycoords="axes fraction", rotation=90, va="center",
                            ha="center", fontsize=10, fontweight="bold")
    return fig


def figure2(mean_S: np.ndarray, aggregate: np.ndarray, lambda1_hz: np.ndarray, lambda2_hz: np.ndarray,
            classes: Sequence[str], *, top_n: int = 5, rule_title: str = "LRP-[ε,z+]") -> Figure:
    """The paper's Fig. 2: top row class-mean S, bottom row top-n aggregated relevance, one column per class.

    Parameters
    ----------
    mean_S : np.ndarray [shape=(n_classes, n_λ1, 1 + n_λ2)]
        Class means of the time-averaged model input on the grid.
    aggregate : np.ndarray [shape=(n_classes, n_λ1, 1 + n_λ2)]
        Top-n indicator sums on the grid.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    n = len(classes)
    if np.shape(mean_S)[0] != n or np.shape(aggregate)[0] != n:
        raise ParameterError(f"mean_S and aggregate need one map per class ({n}), got "
                             f"{np.shape(mean_S)[0]} and {np.shape(aggregate)[0]}")
    fig, axes = plt.subplots(2, n, figsize=(3.6 * n, 6.6), squeeze=False, layout="constrained")
    for j, name in enumerate(classes):
        lambda_map(mean_S[j], lambda1_hz, lambda2_hz, ax=axes[0, j], label="mean log1p(S / cμ)")
        axes[0, j].set_title(name, fontsize=10)
        lambda_map(aggregate[j], lambda1_hz, lambda2_hz, ax=axes[1, j], cmap="Reds", vmin=0, integer=True,
                   label=f"top-{top_n} count")
    axes[0, 0].annotate("class-mean S", xy=(-0.42, 0.5), xycoords="axes fraction", rotation=90, va="center",
                        ha="center", fontsize=10, fontweight="bold")
    axes[1, 0].annotate(f"top-{top_n} {rule_title}", xy=(-0.42, 0.5), xycoords="axes fraction", rotation=90,
                        va="center", ha="center", fontsize=10, fontweight="bold")
    return fig
