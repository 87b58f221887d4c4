"""Figures of controlled variations: tracking (measured against true, log-log) and invariance profiles.

Plot functions take ``ax=None`` and return the artist; nothing here saves files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence

import numpy as np

from ..errors import ParameterError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.collections import PathCollection
    from matplotlib.container import ErrorbarContainer

__all__ = ["tracking", "invariance_profile"]


def _plt():
    import matplotlib.pyplot as plt
    return plt


def tracking(true_hz: np.ndarray, measured_hz: np.ndarray, *, ax: Optional[Axes] = None, label: Optional[str] = None,
             identity: bool = True, marker: str = "o", **kwargs: Any) -> PathCollection:
    """Measured frequency (e.g. λ2 of peak relevance) against the true one, both axes log2, with y = x.

    Parameters
    ----------
    true_hz, measured_hz : array [shape=(K,)]
    label : str, optional
        Legend entry of the points.
    identity : bool
        Draw the identity line over the range of ``true_hz`` (once per axes).

    Returns
    -------
    matplotlib.collections.PathCollection
    """
    plt = _plt()
    x, y = np.asarray(true_hz, float), np.asarray(measured_hz, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ParameterError(f"true_hz and measured_hz must be 1-D of the same length, got {x.shape}, {y.shape}")
    ax = plt.gca() if ax is None else ax
    points = ax.scatter(x, y, label=label, marker=marker, alpha=0.75, **kwargs)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    if identity and not getattr(ax, "_scatterxai_identity", False):
        finite = x[np.isfinite(x) & (x > 0)]
        if finite.size:
            lo, hi = finite.min() / 1.2, finite.max() * 1.2
            ax.plot([lo, hi], [lo, hi], color="0.4", ls="--", lw=1, label="identity", zorder=0)
            ax._scatterxai_identity = True
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    return points


def invariance_profile(profile: Mapping[str, Mapping[str, float]], *, ax: Optional[Axes] = None,
                       label: Optional[str] = None, layers: Optional[Sequence[str]] = None, offset: float = 0.0,
                       **kwargs: Any) -> ErrorbarContainer:
    """Mean ± std Pearson r per layer, layers in order along x.

    Parameters
    ----------
    profile : mapping layer → {"mean", "std", ...}
        As in ``sweep.json`` (``"invariance"``).
    label : str, optional
        Legend entry (e.g. the factor).
    layers : sequence of str, optional
        Layers to draw, in this order (default: the profile's order).
    offset : float
        Horizontal shift of the points (to draw several profiles side by side).

    Returns
    -------
    matplotlib.container.ErrorbarContainer
    """
    plt = _plt()
    layers = list(profile) if layers is None else list(layers)
    missing = [name for name in layers if name not in profile]
    if missing:
        raise ParameterError(f"layers {missing} are not in the profile; it has {list(profile)}")
    ax = plt.gca() if ax is None else ax
    x = np.arange(len(layers)) + offset
    mean = np.array([profile[name]["mean"] for name in layers], float)
    std = np.array([profile[name]["std"] for name in layers], float)
    artist = ax.errorbar(x, mean, yerr=std, marker="o", capsize=3, label=label, **kwargs)
    ax.set_xticks(np.arange(len(layers)), layers, rotation=30, ha="right")
    ax.set_ylabel("Pearson r between notes")
    ax.set_ylim(min(-0.05, np.nanmin(mean - std) - 0.05) if np.isfinite(mean).any() else -0.05, 1.05)
    ax.axhline(1.0, color="0.8", lw=0.8, zorder=0)
    return artist
