"""Control maps: explanations that know the class, the input or nothing, for every map-level score — pure numpy.

A score of an explanation (localisation, the share of relevance in the rate band, within-class tracking,
deletion …) means little on its own: a map that ignores the note may score as well.  Each control below is
a local map of the same shape as a method's maps, (K, C) over the paths of a path table, so that any score
or ordering can be computed for it exactly as for a method.

constant
    Every note gets the same map, peaked at one λ2 column: the column chosen on the **training** notes
    (:func:`fit_prior`) as the one whose λ2 lies within ±``octaves`` of the most training notes' rates (ties:
    the column nearest, in octaves, to the median training rate).  It knows the corpus, not the note.
class_prior
    Each note gets the map peaked at the λ2 column nearest (in octaves) to the **median training rate of its
    predicted class**.  It knows the decision, not the note: within a class it cannot follow the note.  A
    class without training rate falls back to the constant map's column.
input
    The network input itself, time-averaged: x̄[p] = mean_t x[p, t] (what the model reads: log-normalised
    scattering).  It knows the note, not the model.
standardised_input
    The time-averaged input standardised per path, (x̄[p] − m[p]) / s[p], with the training statistics of
    the network's input normalisation (its input BatchNorm): what the first layer sees.
random
    Independent standard normal values per note and path (seeded, note k from the stream ``(seed, k)``):
    knows nothing.
other_class
    For known-bad tests of a method: note k gets the method's own map of a (seeded) random note of another
    class (:func:`other_class_map`).

Peaked maps (constant, class-prior) are 1 on every second-order path of the chosen column and negative
elsewhere: −ε·(1 + d) on the other second-order paths, d their distance in octaves to the chosen λ2, and
−ε·(2 + d_max) on first-order paths (ε = :data:`TIE_STEP`).  So their peak and their positive part are the
column alone (localisation, rate-band share), while an ordering by them (deletion, insertion) takes the
column first, then the columns outward from it, then S1; paths of one column tie (ties are broken by the
caller, e.g. in seeded random order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np

from .._util.validate import check_choice, check_int, check_positive_int
from ..errors import ParameterError
from .grid import PathsLike, path_columns

__all__ = ["CONTROLS", "ControlPrior", "fit_prior", "column_map", "constant_map",
           "class_prior_map", "input_map", "standardised_input_map", "random_map", "other_class_map",
           "control_maps", "TIE_STEP"]

#: the controls of every map-level score, in report order
CONTROLS = ("constant", "class_prior", "input", "standardised_input", "random")
#: step of the negative values that order the paths outside a peaked map's column
TIE_STEP = 1e-3


@dataclass(frozen=True)
class ControlPrior:
    """What the constant and class-prior maps know, chosen on training notes (:func:`fit_prior`).

    Attributes
    ----------
    constant_hz : float
        λ2 (Hz) of the constant map's column.
    constant_training_localisation : float
        Share of training notes whose rate lies within ±``octaves`` of ``constant_hz``.
    class_rate_hz : np.ndarray [shape=(n_classes,)]
        Median training rate (Hz) of each class (NaN: no training note with a rate).
    n_training : int
        Training notes with a finite, positive rate.
    octaves : float
        Tolerance the constant column was chosen for.
    """

    constant_hz: float
    constant_training_localisation: float
    class_rate_hz: np.ndarray
    n_training: int
    octaves: float = 1.0

    def as_dict(self) -> dict:
        """JSON-ready fields."""
        return {"constant_hz": float(self.constant_hz),
                "constant_training_localisation": float(self.constant_training_localisation),
                "class_rate_hz": [None if not np.isfinite(v) else float(v) for v in self.class_rate_hz],
                "n_training": int(self.n_training), "octaves": float(self.octaves)}


def _s2_columns(table: PathsLike):
    cols = path_columns(table)
    s2 = cols["order"] == 2
    if not s2.any():
        raise ParameterError("the path table has no second-order paths: no λ2 column for a control map")
    lam2 = cols["lambda2_hz"].astype(float)
    return cols, s2, np.unique(lam2[s2])


def fit_prior(modulation_hz: np.ndarray, labels: np.ndarray, n_classes: int, table: PathsLike, *,
              octaves: float = 1.0) -> ControlPrior:
    """Choose the constant map's column and the class-prior rates on training notes.

    Parameters
    ----------
    modulation_hz : array [shape=(N,)]
        True modulation rate (Hz) of each training note; NaN or ≤ 0: no rate (left out).
    labels : array of int [shape=(N,)]
        Class of each training note, in [0, n_classes).
    n_classes : int
    table : PathTable or mapping of path columns
        The paths of the maps to build (their λ2 columns are the candidates).
    octaves : float
        Tolerance of the localisation score the constant column maximises.

    Returns
    -------
    ControlPrior
    """
    f = np.asarray(modulation_hz, dtype=float)
    y = np.asarray(labels)
    n_classes = check_positive_int("n_classes", n_classes)
    if f.ndim != 1 or y.shape != f.shape:
        raise ParameterError(f"modulation_hz and labels must be 1-D of equal length, got {f.shape} and {y.shape}")
    if y.size and (y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= n_classes):
        raise ParameterError(f"labels must be integers in [0, {n_classes}), got {y[:5]} (dtype {y.dtype})")
    if not (np.isscalar(octaves) and octaves > 0):
        raise ParameterError(f"octaves must be a positive number, got {octaves!r}")
    ok = np.isfinite(f) & (f > 0)
    if not ok.any():
        raise ParameterError("no training note has a finite, positive modulation_hz: the constant and "
                             "class-prior controls need the training notes' rates")
    f, y = f[ok], y[ok].astype(np.int64)
    _, _, lam2 = _s2_columns(table)
    dist = np.abs(np.log2(lam2[:, None] / f[None, :]))          # (n_λ2, N) octaves
    hits = (dist <= octaves + 1e-12).mean(axis=1)
    near_median = np.abs(np.log2(lam2 / np.median(f)))
    best = np.lexsort((near_median, -hits))[0]
    rates = np.array([np.median(f[y == c]) if (y == c).any() else np.nan for c in range(n_classes)])
    return ControlPrior(constant_hz=float(lam2[best]), constant_training_localisation=float(hits[best]),
                        class_rate_hz=rates, n_training=int(f.size), octaves=float(octaves))


def column_map(target_hz: np.ndarray, table: PathsLike) -> np.ndarray:
    """Maps peaked at the λ2 column nearest (in octaves) to each target rate (see the module docstring).

    Parameters
    ----------
    target_hz : array [shape=(K,)]
        Positive, finite rates (Hz).
    table : PathTable or mapping of path columns

    Returns
    -------
    np.ndarray [shape=(K, C), float64]
    """
    t = np.asarray(target_hz, dtype=float)
    if t.ndim != 1 or not (np.isfinite(t) & (t > 0)).all():
        raise ParameterError(f"target_hz must be a 1-D array of finite positive rates, got {t[:5]} "
                             f"(shape {t.shape})")
    cols, s2, lam2 = _s2_columns(table)
    chosen = lam2[np.argmin(np.abs(np.log2(lam2[None, :] / t[:, None])), axis=1)]       # (K,)
    lam = np.where(s2, cols["lambda2_hz"].astype(float), 1.0)
    d = np.abs(np.log2(lam[None, :] / chosen[:, None]))                                  # (K, C)
    d_max = float(np.log2(lam2.max() / lam2.min()))
    out = np.where(s2[None, :], -TIE_STEP * (1.0 + d), -TIE_STEP * (2.0 + d_max))
    out[s2[None, :] & (d < 1e-9)] = 1.0
    return out


def constant_map(n_notes: int, table: PathsLike, lambda2_hz: float) -> np.ndarray:
    """The same peaked map for ``n_notes`` notes: (n_notes, C)."""
    n_notes = check_int("n_notes", n_notes, low=0)
    return column_map(np.full(n_notes, float(lambda2_hz)), table)


def class_prior_map(pred: np.ndarray, prior: ControlPrior, table: PathsLike) -> np.ndarray:
    """Maps peaked at the median training rate of each note's predicted class: (K,) → (K, C).

    A class without a training rate gets the constant map's column."""
    pred = np.asarray(pred)
    n = len(prior.class_rate_hz)
    if pred.ndim != 1 or (pred.size and (pred.dtype.kind not in "iu" or pred.min() < 0 or pred.max() >= n)):
        raise ParameterError(f"pred must be a 1-D integer array of classes in [0, {n}), got {pred[:5]}")
    rates = np.asarray(prior.class_rate_hz, dtype=float)[pred.astype(np.int64)]
    return column_map(np.where(np.isfinite(rates), rates, prior.constant_hz), table)


def input_map(x: np.ndarray) -> np.ndarray:
    """The network input as a local map: (K, C, T) → time average (K, C); (K, C) is returned as float64."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 3:
        return x.mean(axis=-1)
    if x.ndim == 2:
        return x.copy()
    raise ParameterError(f"x must have shape (K, C, T) or (K, C), got {x.shape}")


def standardised_input_map(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(time-averaged input − mean) / std per path: (K, C[, T]), (C,), (C,) → (K, C)."""
    xm = input_map(x)
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    if mean.shape != (xm.shape[1],) or std.shape != mean.shape or not (std > 0).all():
        raise ParameterError(f"mean and std must have shape ({xm.shape[1]},) with std > 0, got {mean.shape}, "
                             f"{std.shape}")
    return (xm - mean) / std


def random_map(n_notes: int, n_paths: int, *, seed: int = 0) -> np.ndarray:
    """Standard normal maps (n_notes, n_paths); note k from ``default_rng([seed, k])`` (independent of
    which other notes are scored)."""
    n_notes = check_int("n_notes", n_notes, low=0)
    n_paths = check_positive_int("n_paths", n_paths)
    seed = check_int("seed", seed, low=0)
    out = np.empty((n_notes, n_paths))
    for k in range(n_notes):
        out[k] = np.random.default_rng([seed, k]).standard_normal(n_paths)
    return out


def other_class_map(local: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Each note's map replaced by the map of a random note of another class (a known-bad explanation).

    Parameters
    ----------
    local : np.ndarray [shape=(K, C)]
    labels : array [shape=(K,)]
        Class of each note; at least two classes.
    seed : int
        Note k draws from ``default_rng([seed, k])``.

    Returns
    -------
    np.ndarray [shape=(K, C)]
    """
    local = np.asarray(local, dtype=float)
    labels = np.asarray(labels)
    if local.ndim != 2 or labels.shape != (local.shape[0],):
        raise ParameterError(f"local must be (K, C) and labels (K,), got {local.shape} and {labels.shape}")
    if np.unique(labels).size < 2:
        raise ParameterError("other_class_map needs notes of at least two classes")
    src = np.empty(labels.size, dtype=np.int64)
    for k, c in enumerate(labels):
        others = np.flatnonzero(labels != c)
        src[k] = others[np.random.default_rng([seed, k]).integers(others.size)]
    return local[src]


def control_maps(x: np.ndarray, pred: np.ndarray, prior: Optional[ControlPrior], table: PathsLike, *,
                 input_mean: Optional[np.ndarray] = None, input_std: Optional[np.ndarray] = None,
                 seed: int = 0, names: Sequence[str] = CONTROLS) -> Dict[str, np.ndarray]:
    """Every control map of a set of notes, each (K, C) like a method's local maps.

    Parameters
    ----------
    x : np.ndarray [shape=(K, C, T) or (K, C)]
        The network input of the notes (a relevance file's ``/features``, or its time average).
    pred : array of int [shape=(K,)]
        Predicted class of each note (the class-prior map).
    prior : ControlPrior or None
        From :func:`fit_prior` on the training notes; None (no rates: not a ground-truth corpus) leaves out
        ``constant`` and ``class_prior``.
    table : PathTable or mapping of path columns
        The paths of ``x`` (C of them).
    input_mean, input_std : array [shape=(C,)], optional
        Training statistics of the input per path (the input BatchNorm's running mean and √variance);
        without them ``standardised_input`` is left out.
    seed : int
        Seed of the random map.
    names : sequence of str
        Controls to build (default :data:`CONTROLS`).

    Returns
    -------
    dict
        control name → np.ndarray [shape=(K, C), float64], in the order of ``names`` (those that can be built).
    """
    x = np.asarray(x)
    cols = path_columns(table)
    if x.ndim not in (2, 3) or x.shape[1] != len(cols["order"]):
        raise ParameterError(f"x must have shape (K, C[, T]) with C = {len(cols['order'])} paths, got {x.shape}")
    K, C = x.shape[:2]
    if np.shape(pred) != (K,):
        raise ParameterError(f"pred must have shape ({K},), got {np.shape(pred)}")
    out = {}
    for name in names:
        check_choice("control", name, CONTROLS)
        if name == "constant" and prior is not None:
            out[name] = constant_map(K, table, prior.constant_hz)
        elif name == "class_prior" and prior is not None:
            out[name] = class_prior_map(pred, prior, table)
        elif name == "input":
            out[name] = input_map(x)
        elif name == "standardised_input" and input_mean is not None and input_std is not None:
            out[name] = standardised_input_map(x, input_mean, input_std)
        elif name == "random":
            out[name] = random_map(K, C, seed=seed)
    return out
