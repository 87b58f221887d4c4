"""Comparing two relevance maps (``docs/analysis.md``, "Comparing maps"; after Chen et al.,
Front. AI 2024) — pure numpy, no torch.

Inputs are *local maps*, one value per scattering path (shape (..., C)), and a path table: a mapping with
arrays ``order`` (1 or 2), ``lambda1_hz`` and ``lambda2_hz`` (NaN for order 1), as
``PathTable.arrays()`` or the ``/paths`` group of an exported HDF5 file (a ``PathTable`` works too).

Definitions
-----------
distribution
    :func:`to_distribution` turns a map into p⁺ ≥ 0 summing to 1 over the paths: ``"positive"``
    max(p, 0) / Σ max(p, 0) (default); ``"abs"`` |p| / Σ |p|; ``"shift"`` (p − min p) / Σ (p − min p).
    A map with no mass (e.g. all ≤ 0 in ``"positive"`` mode, or constant in ``"shift"`` mode) has no
    distribution: its row is NaN and every metric involving it is NaN (not a uniform map: that would claim a
    spread the method never gave).  Summaries skip NaN values and count only the defined pairs.
metrics (on distributions p⁺, q⁺)
    ``mean_diff`` mean over paths of |p⁺ − q⁺| (unit: probability per path; it scales as 1/C).
    ``kl`` KL(p⁺‖q⁺) = Σ p⁺ ln((p⁺ + ε)/(q⁺ + ε)), ε = 1e-12, in nats.  Asymmetric; within-class pairs (i, j)
    with i < j report KL(p_i‖p_j).  ε makes it finite when q⁺ misses part of p⁺'s support; ε can also make
    the sum negative by at most C·ε, so it is clipped at 0.
    ``js`` the Jensen–Shannon **divergence** ½ KL(p⁺‖m) + ½ KL(q⁺‖m), m = (p⁺ + q⁺)/2, in nats, exact
    (no ε: m > 0 wherever p⁺ or q⁺ is), in [0, ln 2], ln 2 for disjoint supports.  SciPy's
    ``scipy.spatial.distance.jensenshannon`` returns the Jensen–Shannon *distance*, its square root.
    ``emd`` earth mover's distance (Wasserstein-1) on the (λ1, λ2) plane, in octaves: the ground distance of
    two paths is the Euclidean distance of their (log2 λ1, log2 λ2) positions; solved exactly by POT's
    ``ot.emd2`` with a cost matrix cached per path table.
    ``emd_lambda1``, ``emd_lambda2`` 1-D Wasserstein-1 distances of the λ1 and λ2 marginals, in octaves:
    the L1 distance of the two cumulative distribution functions along the log2 axis.
S1 position
    First-order paths have no λ2; they are placed one λ2 *step* below the lowest second-order λ2, where the
    step is the median log2 spacing of the distinct second-order λ2 values (Q2 = 2 → ½ octave; 1 octave when
    there are fewer than two distinct λ2).  The λ2 marginal therefore includes S1 at that position.  With no
    second-order path at all, every path sits at log2 λ2 = 0.

The study over a relevance file (pairs within and between classes, between methods) is
:mod:`scatterxai.maps.compare_study`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.spatial.distance
import scipy.special

from .._util.log import logger
from ..errors import ParameterError
from .grid import PathsLike, path_columns

__all__ = ["DISTRIBUTION_MODES", "KL_EPS", "METRICS", "Metric", "PlaneGeometry", "compare_maps", "emd",
           "emd_lambda1", "emd_lambda2", "js", "kl", "mean_diff", "plane_coordinates", "plane_geometry",
           "to_distribution"]


#: how a local map becomes a distribution (name → definition, for reports)
DISTRIBUTION_MODES = {
    "positive": "p+ = max(p, 0) / sum max(p, 0)",
    "abs": "p+ = |p| / sum |p|",
    "shift": "p+ = (p - min p) / sum (p - min p)",
}
#: ε of the KL divergence (``docs/analysis.md``, "Comparing maps")
KL_EPS = 1e-12
#: tolerance on Σ p⁺ = 1 when a metric checks its inputs
_SUM_TOL = 1e-6
#: POT's network simplex stops after this many iterations (its default, 1e5, is too few for 1,200 paths)
_EMD_MAX_ITER = 10_000_000


# --------------------------------------------------------------------------- distributions

def to_distribution(p: np.ndarray, *, mode: str = "positive") -> np.ndarray:
    """Turn local maps into distributions over paths.

    Parameters
    ----------
    p : np.ndarray [shape=(..., C)]
        Local maps (finite values).
    mode : {"positive", "abs", "shift"}
        See :data:`DISTRIBUTION_MODES`.

    Returns
    -------
    np.ndarray [shape=(..., C), float64]
        Non-negative rows summing to 1; a row with no mass is all NaN.
    """
    if mode not in DISTRIBUTION_MODES:
        raise ParameterError(f"mode must be one of {list(DISTRIBUTION_MODES)}, got {mode!r}")
    p = np.asarray(p, dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] == 0:
        raise ParameterError(f"maps must have shape (..., C) with C >= 1 paths, got {p.shape}")
    if not np.isfinite(p).all():
        raise ParameterError(f"maps must be finite; got {int((~np.isfinite(p)).sum())} NaN/inf values")
    if mode == "positive":
        w = np.maximum(p, 0.0)
    elif mode == "abs":
        w = np.abs(p)
    else:
        w = p - p.min(axis=-1, keepdims=True)
    total = w.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = w / total
    out[np.broadcast_to(total <= 0, out.shape)] = np.nan
    return out


def _pair(p, q):
    """Broadcast two distributions (..., C) and check them (NaN rows allowed)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.ndim < 1 or q.ndim < 1 or p.shape[-1] != q.shape[-1]:
        raise ParameterError(f"p and q must have shapes (..., C) with the same C, got {p.shape} and {q.shape}")
    try:
        p, q = np.broadcast_arrays(p, q)
    except ValueError:
        raise ParameterError(f"p and q shapes {p.shape} and {q.shape} do not broadcast") from None
    for name, d in (("p", p), ("q", q)):
        rows = np.isfinite(d).all(axis=-1)
        good = d[rows]
        if (good < 0).any() or (np.abs(good.sum(axis=-1) - 1) > _SUM_TOL).any():
            raise ParameterError(f"{name} must be distributions (>= 0, rows summing to 1, e.g. from "
                                 f"to_distribution); got min {good.min():.3g}, row sums in "
                                 f"[{good.sum(-1).min():.6g}, {good.sum(-1).max():.6g}]")
    return p, q


# --------------------------------------------------------------------------- geometry of the plane

def _path_columns(paths):
    cols = path_columns(paths, fields=("order", "lambda1_hz", "lambda2_hz"))
    cols = [cols["order"], cols["lambda1_hz"], cols["lambda2_hz"]]
    order, lam1, lam2 = cols[0].astype(np.int64), cols[1].astype(float), cols[2].astype(float)
    if order.ndim != 1 or order.size == 0 or lam1.shape != order.shape or lam2.shape != order.shape:
        raise ParameterError(f"path columns must be 1-D arrays of equal, non-zero length, got shapes "
                             f"{order.shape}, {lam1.shape}, {lam2.shape}")
    if not np.isin(order, (1, 2)).all():
        raise ParameterError(f"path orders must be 1 or 2, got {np.unique(order)}")
    s2 = order == 2
    if not (np.isfinite(lam1) & (lam1 > 0)).all() or not (np.isfinite(lam2[s2]) & (lam2[s2] > 0)).all():
        raise ParameterError("lambda1_hz (all paths) and lambda2_hz (order 2) must be finite and > 0 Hz")
    return order, lam1, lam2


def _levels(x: np.ndarray):
    """Distinct positions of x (rounded to 1e-9 octave) and the level of each element."""
    r = np.round(x, 9)
    pos, level = np.unique(r, return_inverse=True)
    return pos, level.reshape(x.shape)


@dataclass(frozen=True, eq=False)
class PlaneGeometry:
    """Positions of the paths on the (log2 λ1, log2 λ2) plane, in octaves.

    Attributes
    ----------
    coords : np.ndarray [shape=(C, 2)]
        (log2 λ1, log2 λ2) of each path; S1 at ``s1_lambda2``.
    lambda2_step : float
        Median log2 spacing of the distinct second-order λ2 (octaves).
    s1_lambda2 : float
        log2 λ2 position given to the first-order paths.
    axis_positions : tuple of two np.ndarray
        Sorted distinct positions on each axis (octaves).
    axis_levels : tuple of two np.ndarray [shape=(C,), int]
        Index of each path's position in ``axis_positions``.
    """

    coords: np.ndarray
    lambda2_step: float
    s1_lambda2: float
    axis_positions: tuple
    axis_levels: tuple

    def cost(self) -> np.ndarray:
        """Ground-distance matrix [shape=(C, C)] in octaves (computed once, then cached)."""
        if "_cost" not in self.__dict__:
            cost = scipy.spatial.distance.cdist(self.coords, self.coords)
            cost.flags.writeable = False  # shared by every caller through the cache
            object.__setattr__(self, "_cost", cost)
        return self.__dict__["_cost"]


_GEOMETRY_CACHE: dict[bytes, PlaneGeometry] = {}
_GEOMETRY_CACHE_SIZE = 4


def plane_geometry(paths: PathsLike) -> PlaneGeometry:
    """The :class:`PlaneGeometry` of a path table (cached by the table's contents)."""
    order, lam1, lam2 = _path_columns(paths)
    key = order.tobytes() + lam1.tobytes() + np.where(order == 2, lam2, 0.0).tobytes()
    geometry = _GEOMETRY_CACHE.get(key)
    if geometry is None:
        s2 = order == 2
        x = np.log2(lam1)
        y = np.zeros(len(order))
        step, s1_y = 1.0, 0.0
        if s2.any():
            y[s2] = np.log2(lam2[s2])
            distinct, _ = _levels(y[s2])
            step = float(np.median(np.diff(distinct))) if len(distinct) > 1 else 1.0
            s1_y = float(distinct[0] - step)
            y[~s2] = s1_y
        (px, lx), (py, ly) = _levels(x), _levels(y)
        geometry = PlaneGeometry(coords=np.stack([x, y], axis=1), lambda2_step=step, s1_lambda2=s1_y,
                                 axis_positions=(px, py), axis_levels=(lx, ly))
        if len(_GEOMETRY_CACHE) >= _GEOMETRY_CACHE_SIZE:
            _GEOMETRY_CACHE.pop(next(iter(_GEOMETRY_CACHE)))
        _GEOMETRY_CACHE[key] = geometry
    return geometry


def plane_coordinates(paths: PathsLike) -> np.ndarray:
    """(log2 λ1, log2 λ2) of every path [shape=(C, 2)], octaves; S1 one λ2 step below the lowest S2."""
    return plane_geometry(paths).coords.copy()


# --------------------------------------------------------------------------- metrics

def mean_diff(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Mean over paths of |p⁺ − q⁺|: distributions [shape=(..., C)] → [shape=(...)]."""
    p, q = _pair(p, q)
    return np.abs(p - q).mean(axis=-1)


def kl(p: np.ndarray, q: np.ndarray, *, eps: float = KL_EPS) -> np.ndarray:
    """KL(p⁺‖q⁺) = Σ p⁺ ln((p⁺ + ε)/(q⁺ + ε)) in nats, clipped at 0: [shape=(..., C)] → [shape=(...)]."""
    if not eps > 0:
        raise ParameterError(f"eps must be > 0, got {eps!r}")
    p, q = _pair(p, q)
    return np.maximum((p * np.log((p + eps) / (q + eps))).sum(axis=-1), 0.0)


def js(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen–Shannon divergence (not SciPy's distance = its square root) in nats, in [0, ln 2].

    Distributions [shape=(..., C)] → [shape=(...)]; exact (0 ln 0 = 0), clipped to [0, ln 2] against rounding.
    """
    p, q = _pair(p, q)
    m = 0.5 * (p + q)
    d = 0.5 * (scipy.special.rel_entr(p, m).sum(axis=-1) + scipy.special.rel_entr(q, m).sum(axis=-1))
    return np.clip(d, 0.0, math.log(2))


def _emd_axis(p, q, paths, axis: int) -> np.ndarray:
    p, q = _pair(p, q)
    geometry = plane_geometry(paths)
    if p.shape[-1] != len(geometry.coords):
        raise ParameterError(f"maps have C = {p.shape[-1]} paths but the path table has {len(geometry.coords)}")
    pos, level = geometry.axis_positions[axis], geometry.axis_levels[axis]
    onehot = np.zeros((len(level), len(pos)))
    onehot[np.arange(len(level)), level] = 1.0
    cdf_gap = np.abs(np.cumsum(p @ onehot, axis=-1) - np.cumsum(q @ onehot, axis=-1))
    return (cdf_gap[..., :-1] * np.diff(pos)).sum(axis=-1)


def emd_lambda1(p: np.ndarray, q: np.ndarray, paths: PathsLike) -> np.ndarray:
    """1-D earth mover's distance of the λ1 marginals (octaves): [shape=(..., C)] → [shape=(...)]."""
    return _emd_axis(p, q, paths, 0)


def emd_lambda2(p: np.ndarray, q: np.ndarray, paths: PathsLike) -> np.ndarray:
    """1-D earth mover's distance of the λ2 marginals, S1 included (octaves): (..., C) → (...)."""
    return _emd_axis(p, q, paths, 1)


def emd(p: np.ndarray, q: np.ndarray, paths: PathsLike) -> np.ndarray:
    """Earth mover's distance on the (log2 λ1, log2 λ2) plane in octaves (POT ``ot.emd2``, exact).

    Distributions [shape=(..., C)] → [shape=(...)], one network-simplex solve per row on the supports of
    the two distributions (NaN rows give NaN).  Cost: ~0.02–0.3 s per pair for 1,200 paths, growing with
    the supports' sizes.
    """
    import ot  # POT is needed only here

    p, q = _pair(p, q)
    geometry = plane_geometry(paths)
    C = len(geometry.coords)
    if p.shape[-1] != C:
        raise ParameterError(f"maps have C = {p.shape[-1]} paths but the path table has {C}")
    cost = geometry.cost()
    flat_p, flat_q = p.reshape(-1, C), q.reshape(-1, C)
    out = np.full(len(flat_p), np.nan)
    for k, (a, b) in enumerate(zip(flat_p, flat_q)):
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            continue
        # paths without mass carry no transport: solving on the two supports only is exact and, for maps
        # whose positive part covers a fraction of the plane, several times faster
        i, j = a > 0, b > 0
        a, b = a[i], b[j]
        # renormalise in float64 so that POT's equal-mass check (6 decimals) never trips on rounding
        value, log = ot.emd2(a / a.sum(), b / b.sum(), np.ascontiguousarray(cost[np.ix_(i, j)]),
                             numItermax=_EMD_MAX_ITER, log=True)
        if log.get("warning"):
            logger.warning("ot.emd2 on pair %d: %s", k, log["warning"])
        out[k] = float(value)
    return out.reshape(p.shape[:-1])


@dataclass(frozen=True)
class Metric:
    """A map-comparison metric: ``metric(p, q, paths)`` on distributions (..., C) → (...)."""

    name: str
    function: Callable
    unit: str
    symmetric: bool
    uses_paths: bool
    description: str

    def __call__(self, p, q, paths=None) -> np.ndarray:
        if self.uses_paths:
            if paths is None:
                raise ParameterError(f"metric {self.name!r} needs the path table (paths=...)")
            return self.function(p, q, paths)
        return self.function(p, q)


#: the comparison metrics by name (see the module docstring)
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("mean_diff", mean_diff, "1/path", True, False, "mean |p+ - q+| over paths"),
    Metric("kl", kl, "nats", False, False, "KL(p+ || q+), eps = 1e-12"),
    Metric("js", js, "nats", True, False, "Jensen-Shannon divergence (not its square root), <= ln 2"),
    Metric("emd", emd, "octaves", True, True, "earth mover's distance on the (log2 l1, log2 l2) plane"),
    Metric("emd_lambda1", emd_lambda1, "octaves", True, True, "1-D EMD of the lambda1 marginals"),
    Metric("emd_lambda2", emd_lambda2, "octaves", True, True, "1-D EMD of the lambda2 marginals (S1 included)"),
)}


def _metric_names(metrics) -> list:
    names = list(METRICS) if metrics is None else ([metrics] if isinstance(metrics, str) else list(metrics))
    bad = [m for m in names if m not in METRICS]
    if bad or not names:
        raise ParameterError(f"metrics must be a non-empty list of {list(METRICS)}, got {metrics!r}")
    return names


def _compare_distributions(p, q, paths, names) -> dict[str, np.ndarray]:
    return {name: np.asarray(METRICS[name](p, q, paths), dtype=np.float64) for name in names}


def compare_maps(P: np.ndarray, Q: np.ndarray, paths: PathsLike, *, metrics: Sequence[str] | None = None,
                 mode: str = "positive") -> dict[str, np.ndarray]:
    """Compare paired local maps with several metrics.

    Parameters
    ----------
    P, Q : np.ndarray [shape=(K, C)] (or any broadcastable (..., C))
        Raw local maps; row k of P is compared with row k of Q.
    paths : mapping or PathTable
        Path table of the C paths.
    metrics : sequence of str, optional
        Names from :data:`METRICS` (default: all).
    mode : {"positive", "abs", "shift"}
        How maps become distributions (:func:`to_distribution`).

    Returns
    -------
    dict
        metric name → np.ndarray [shape=(K,)] (NaN where a map has no mass).
    """
    names = _metric_names(metrics)
    C = len(_path_columns(paths)[0])
    P, Q = to_distribution(P, mode=mode), to_distribution(Q, mode=mode)
    if P.shape[-1] != C or Q.shape[-1] != C:
        raise ParameterError(f"maps must have C = {C} paths (the path table), got {P.shape} and {Q.shape}")
    return _compare_distributions(P, Q, paths, names)
