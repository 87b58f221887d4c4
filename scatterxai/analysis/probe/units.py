"""Per-unit matching (Slizovskaia et al.): which single unit tracks a descriptor? — pure numpy.

Definitions
-----------
unit correlation
    Pearson r of every unit's activation (a column of A [shape=(n, units)]) with a scalar descriptor
    d [shape=(n,)] across notes; Spearman r is the Pearson r of the ranks (average ranks for ties).
    A constant unit (e.g. a dead ReLU) has r = NaN.  Notes with NaN d are dropped.
best unit
    argmax over units of |r| (two-sided: a unit may track d with either sign), NaN units ignored.
max-statistic permutation null
    d is shuffled across notes n_permutations times; each shuffle records max over units of |r|.  The
    best unit's p = (1 + #{null ≥ |r_best|}) / (1 + n_permutations) controls the family-wise error over
    all units (Nichols & Holmes 2002): it is the p-value of "some unit tracks d", not of one preselected
    unit.
"""

from __future__ import annotations

import logging
from typing import Dict, Sequence

import numpy as np
import scipy.stats

from ...errors import ParameterError

__all__ = ["best_unit", "unit_correlations", "units_study"]

logger = logging.getLogger("scatterxai")

METHODS = ("pearson", "spearman")

#: permuted correlations are computed in blocks of at most this many (permutation × unit) values
_BLOCK = 2 ** 22


def _inputs(A, d) -> tuple[np.ndarray, np.ndarray, int]:
    """A as float64 (n, units) and d as float64 (n,), rows with NaN d dropped; returns the drop count."""
    d = np.asarray(d, dtype=np.float64)
    if d.ndim != 1:
        raise ParameterError(f"d must be a 1-D descriptor (one value per note), got shape {d.shape}")
    A = np.asarray(A, dtype=np.float64)
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2 or A.shape[0] != d.shape[0] or A.shape[1] < 1:
        raise ParameterError(f"A must have shape (n, units) with n = {d.shape[0]} notes, got {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ParameterError(f"A holds {int(np.sum(~np.isfinite(A)))} non-finite activations")
    if np.any(np.isinf(d)):
        raise ParameterError("d holds infinite values")
    keep = ~np.isnan(d)
    if not keep.all():
        logger.info("units: dropped %d of %d notes with NaN descriptor", int((~keep).sum()), keep.size)
    A, d = A[keep], d[keep]
    if d.shape[0] < 3:
        raise ParameterError(f"need at least 3 notes with a finite descriptor, got {d.shape[0]}")
    if np.ptp(d) == 0:
        raise ParameterError(f"the descriptor is constant ({d[0]!r}) over the notes: no correlation "
                             "is defined")
    return A, d, int((~keep).sum())


def _unit_columns(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centred unit-norm columns (zeros for constant ones) and the mask of constant columns."""
    constant = np.ptp(M, axis=0) == 0
    Z = M - M.mean(axis=0)
    norms = np.linalg.norm(Z, axis=0)
    norms[constant] = 1.0
    Z /= norms
    Z[:, constant] = 0.0
    return Z, constant


def _ranks(M: np.ndarray) -> np.ndarray:
    return scipy.stats.rankdata(M, axis=0)


def _correlations(A: np.ndarray, d: np.ndarray) -> np.ndarray:
    Z, constant = _unit_columns(A)
    z, _ = _unit_columns(d[:, None])
    r = np.clip(Z.T @ z[:, 0], -1.0, 1.0)
    r[constant] = np.nan
    return r


def unit_correlations(A: np.ndarray, d: np.ndarray) -> dict[str, np.ndarray]:
    """Pearson and Spearman correlation of every unit with a scalar descriptor.

    Parameters
    ----------
    A : np.ndarray [shape=(n, units)]
        Activations, one row per note (e.g. a layer's channels time-averaged).
    d : np.ndarray [shape=(n,)]
        Descriptor per note, in any units; NaN marks unknown values (those notes are dropped).

    Returns
    -------
    dict
        ``pearson`` and ``spearman`` [shape=(units,)] (NaN for constant units), ``n`` (notes used),
        ``n_dropped`` (notes with NaN d).
    """
    A, d, dropped = _inputs(A, d)
    return {"pearson": _correlations(A, d), "spearman": _correlations(_ranks(A), _ranks(d)),
            "n": d.shape[0], "n_dropped": dropped}


def best_unit(A: np.ndarray, d: np.ndarray, *, n_permutations: int = 200, seed: int = 0,
              method: str = "pearson") -> dict:
    """The unit that best tracks a descriptor, with a max-statistic permutation p-value.

    Parameters
    ----------
    A : np.ndarray [shape=(n, units)]
        Activations, one row per note.
    d : np.ndarray [shape=(n,)]
        Descriptor per note; NaN marks unknown values (those notes are dropped).
    n_permutations : int ≥ 1
        Shuffles of d for the null of max |r| over units.
    seed : int
        Seed of ``numpy.random.default_rng`` drawing the permutations.
    method : {"pearson", "spearman"}
        Correlation used for the match and the null.

    Returns
    -------
    dict
        ``unit`` (column index of the best unit), ``r`` (its signed correlation), ``p`` (family-wise
        permutation p-value), ``null`` [shape=(n_permutations,)] (max |r| per shuffle), ``method``,
        ``n``, ``n_dropped``.
    """
    if method not in METHODS:
        raise ParameterError(f"method must be one of {METHODS}, got {method!r}")
    if int(n_permutations) != n_permutations or n_permutations < 1:
        raise ParameterError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    A, d, dropped = _inputs(A, d)
    if method == "spearman":
        A, d = _ranks(A), _ranks(d)
    Z, constant = _unit_columns(A)
    if constant.all():
        raise ParameterError(f"all {A.shape[1]} units are constant over the notes: no best unit")
    z = _unit_columns(d[:, None])[0][:, 0]
    r = np.clip(Z.T @ z, -1.0, 1.0)
    r[constant] = np.nan
    unit = int(np.nanargmax(np.abs(r)))
    observed = abs(float(r[unit]))

    # permuting d permutes its standardised version: one (block × n)(n × units) product per block
    rng = np.random.default_rng(seed)
    n_perm = int(n_permutations)
    null = np.empty(n_perm)
    block = max(1, _BLOCK // A.shape[1])
    for start in range(0, n_perm, block):
        stop = min(n_perm, start + block)
        D = np.stack([z[rng.permutation(z.shape[0])] for _ in range(stop - start)])
        null[start:stop] = np.abs(D @ Z).max(axis=1)  # constant units have zero columns: |r| = 0
    p = (1 + int(np.sum(null >= observed - 1e-12))) / (1 + n_perm)
    return {"unit": unit, "r": float(r[unit]), "p": p, "null": null, "method": method,
            "n": d.shape[0], "n_dropped": dropped}


def units_study(acts: Dict[str, np.ndarray], layers: Sequence[str], Y: np.ndarray, names: Sequence[str], *,
                n_permutations: int = 200, seed: int = 0) -> dict:
    """Unit correlations and the best unit (with its permutation p) of every layer for every descriptor.

    Parameters
    ----------
    acts : dict of str → np.ndarray [shape=(n, units)]
        Time-averaged activations of each layer.
    layers : sequence of str
    Y : np.ndarray [shape=(n, m)]
        Descriptor values (NaN where unknown), column j for ``names[j]``.
    names : sequence of str
    n_permutations, seed
        Of :func:`best_unit`.

    Returns
    -------
    dict
        layer → descriptor → {"pearson", "spearman", "unit", "r", "p"}; descriptors with fewer than 3
        values, constant ones and those no unit correlates with (all NaN) are left out.
    """
    out = {}
    for layer in layers:
        out[layer] = {}
        for j, name in enumerate(names):
            y = Y[:, j]
            if np.sum(np.isfinite(y)) < 3 or np.nanmax(y) == np.nanmin(y):
                continue
            corr = unit_correlations(acts[layer], y)
            if np.all(np.isnan(corr["pearson"])):
                continue
            best = best_unit(acts[layer], y, n_permutations=n_permutations, seed=seed)
            out[layer][name] = {**corr, **{k: best[k] for k in ("unit", "r", "p")}}
    return out
