"""Control maps for the localisation score — pure numpy (no torch).

A localisation score (:func:`scatterxai.maps.localisation`: is the top second-order relevance within ±1 octave
of the true modulation rate?) says little on its own: each technique's rates span less than an octave, so a
map that ignores the note but knows its class can score high.  The controls below are maps built *without*
the note's relevance and scored by the same functions (:func:`~scatterxai.maps.localisation`,
:func:`scatterxai.analysis.quality.metrics.rate_band_share`), so that an explanation is read against them:

constant map
    All weight on the S2 paths of one λ2 column, the same for every note: the column that localises the
    most notes of a reference set with known rates (:func:`best_constant_lambda2`; the model's training
    notes, so that nothing of the scored notes is used).
class-prior map
    All weight on the λ2 column nearest the median training rate of the note's *predicted* class
    (:func:`class_median_rates`, :func:`column_map`): what knowing the decision alone gives.
the input itself
    The time-averaged model input (:func:`scatterxai.maps.local_map` of it): where the energy, not the
    decision, lies.
chance
    A map spread evenly over the S2 paths: :func:`scatterxai.analysis.quality.metrics.rate_band_chance`.

A column map puts 1 on every S2 path of its column and 0 elsewhere, so its top S2 path is in that column
and its rate-band share is 1 or 0.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from ..errors import ParameterError
from .grid import PathsLike, path_columns
from .summary import LOCALISATION_OCTAVES

__all__ = ["lambda2_columns", "column_map", "best_constant_lambda2", "class_median_rates"]


def lambda2_columns(table: PathsLike) -> np.ndarray:
    """Distinct λ2 (Hz) of the second-order paths, ascending: (n_λ2,) float64."""
    cols = path_columns(table)
    lam2 = cols["lambda2_hz"][cols["order"] == 2].astype(float)
    if lam2.size == 0:
        raise ParameterError("the path table has no second-order paths: no λ2 column to point at")
    return np.unique(lam2)


def column_map(table: PathsLike, rate_hz: np.ndarray) -> np.ndarray:
    """Maps pointing at the λ2 column nearest (in octaves) each rate.

    Parameters
    ----------
    table : PathTable or mapping of path columns
    rate_hz : array [shape=(K,)]
        Rate each map points at (Hz); NaN or ≤ 0 gives a row of NaN (no map).

    Returns
    -------
    np.ndarray [shape=(K, C), float64]
        1 on the second-order paths of the chosen column, 0 on every other path.
    """
    cols = path_columns(table)
    rate = np.atleast_1d(np.asarray(rate_hz, dtype=float))
    if rate.ndim != 1:
        raise ParameterError(f"rate_hz must have shape (K,), got {np.shape(rate_hz)}")
    columns = lambda2_columns(table)
    valid = np.isfinite(rate) & (rate > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.abs(np.log2(columns[None, :] / np.where(valid, rate, 1.0)[:, None]))
    chosen = columns[np.argmin(dist, axis=1)]
    s2 = cols["order"] == 2
    out = (s2[None, :] & (cols["lambda2_hz"][None, :] == chosen[:, None])).astype(float)
    out[~valid] = np.nan
    return out


def best_constant_lambda2(table: PathsLike, modulation_hz: np.ndarray, *,
                          octaves: float = LOCALISATION_OCTAVES) -> Tuple[float, float]:
    """The λ2 column that, pointed at for every note, localises the most notes of a reference set.

    Parameters
    ----------
    table : PathTable or mapping of path columns
    modulation_hz : array [shape=(K,)]
        True rates of the reference notes (Hz; NaN or ≤ 0 are left out), e.g. the training split.
    octaves : float
        Localisation tolerance (as in :func:`scatterxai.maps.localisation`).

    Returns
    -------
    lambda2_hz : float
        The column's λ2 (Hz); among equally good columns, the one nearest (in octaves) the median rate.
    score : float
        Share of the reference notes it localises.
    """
    f_m = np.asarray(modulation_hz, dtype=float).ravel()
    f_m = f_m[np.isfinite(f_m) & (f_m > 0)]
    if f_m.size == 0:
        raise ParameterError("modulation_hz holds no positive finite rate: no reference to choose a column on")
    if not octaves > 0:
        raise ParameterError(f"octaves must be positive, got {octaves!r}")
    columns = lambda2_columns(table)
    hits = (np.abs(np.log2(columns[:, None] / f_m[None, :])) <= octaves + 1e-12).mean(axis=1)
    ties = np.flatnonzero(hits >= hits.max() - 1e-12)
    best = int(ties[np.argmin(np.abs(np.log2(columns[ties] / np.median(f_m))))])
    return float(columns[best]), float(hits[best])


def class_median_rates(labels: np.ndarray, modulation_hz: np.ndarray, n_classes: int) -> np.ndarray:
    """Median true rate (Hz) of each class: (n_classes,) float64, NaN for a class without a rate.

    Parameters
    ----------
    labels : array of int [shape=(K,)]
        Class index of each reference note, in [0, n_classes).
    modulation_hz : array [shape=(K,)]
        Its true rate (Hz); NaN or ≤ 0 are left out.
    n_classes : int
    """
    labels = np.asarray(labels)
    f_m = np.asarray(modulation_hz, dtype=float)
    if labels.shape != f_m.shape or labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise ParameterError(f"labels (int) and modulation_hz must have the same shape (K,), got {labels.shape} "
                             f"({labels.dtype}) and {f_m.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ParameterError(f"labels must lie in [0, {n_classes}), got [{labels.min()}, {labels.max()}]")
    valid = np.isfinite(f_m) & (f_m > 0)
    out = np.full(int(n_classes), np.nan)
    for c in range(int(n_classes)):
        sel = valid & (labels == c)
        if sel.any():
            out[c] = float(np.median(f_m[sel]))
    return out
