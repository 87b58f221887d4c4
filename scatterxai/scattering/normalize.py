"""Log compression of scattering coefficients: the network input log1p(S / (c·μ + 1e-8)) (companion code).

Works on numpy arrays without importing torch; torch tensors are accepted too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar, Union

import numpy as np

from ..errors import ParameterError

if TYPE_CHECKING:
    import torch

#: ``np.ndarray`` or ``torch.Tensor`` (:func:`log_normalize` returns the type it is given).
ArrayT = TypeVar("ArrayT", np.ndarray, "torch.Tensor")

__all__ = ["compute_mu", "log_normalize", "check_raw", "check_log_params", "LOG_C", "MU_EPS", "MAX_COEFFICIENT",
           "MAX_LOG_C"]

#: constant c of the log compression log1p(S / (c·μ + 1e-8)) (companion code)
LOG_C = 0.1
#: additive floor of the log compression's denominator
MU_EPS = 1e-8
#: largest raw coefficient accepted: the audio is standardised (unit variance), which bounds every
#: coefficient by √N (512 for N = 2^18; measured ≤ 3 on real notes); larger values mean the array holds
#: something else
MAX_COEFFICIENT = 1e6
#: largest constant c of the log compression accepted (paper: 0.1)
MAX_LOG_C = 1e6
#: raw coefficients may be slightly negative (rounding of the low-pass filter, ≈ -2e-7); below this share of
#: the denominator c·μ + 1e-8 they are not rounding (and log1p approaches its pole at -1)
_MIN_RATIO = -0.5


def check_log_params(mu: np.ndarray, c: float) -> tuple:
    """(μ as float64, c as float) if they are usable by :func:`log_normalize`, else ParameterError.

    μ: finite, in [0, :data:`MAX_COEFFICIENT`], not all zero; c: finite, in (0, :data:`MAX_LOG_C`].
    """
    try:
        c = float(c)
        mu = np.asarray(mu, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"mu must be an array of numbers and c a number, got c={c!r}") from None
    if not (np.isfinite(c) and 0 < c <= MAX_LOG_C):
        raise ParameterError(f"c (the log compression constant) must be a finite number in (0, {MAX_LOG_C:g}], "
                             f"got {c}")
    if mu.size and not (np.isfinite(mu).all() and mu.min() >= 0 and mu.max() <= MAX_COEFFICIENT):
        bad = mu[~(np.isfinite(mu) & (mu >= 0) & (mu <= MAX_COEFFICIENT))][0]
        raise ParameterError(f"mu (the training mean of each coefficient) must be finite and in "
                             f"[0, {MAX_COEFFICIENT:g}], got {bad}")
    if mu.size and not mu.any():
        raise ParameterError("mu (the training mean of each coefficient) is zero everywhere: no usable data")
    return mu, c


def check_raw(S: np.ndarray, mu: np.ndarray, c: float, *, offset: int = 0) -> None:
    """ParameterError unless raw coefficients S [shape=(K, C, T)] are finite, ≤ :data:`MAX_COEFFICIENT` and
    non-negative up to rounding (S ≥ -0.5·(c·μ + 1e-8)); the message names the first bad value
    (example index counted from ``offset``, coefficient, frame)."""
    S = np.asarray(S)
    den = c * np.asarray(mu, dtype=np.float64)[:, None] + MU_EPS
    bad = ~np.isfinite(S) | (S > MAX_COEFFICIENT) | (S < _MIN_RATIO * den)
    if bad.any():
        k, ch, t = np.argwhere(bad)[0]
        raise ParameterError(f"features hold {float(S[k, ch, t])!r} at example {offset + k}, coefficient {ch}, "
                             f"frame {t} ({int(bad.sum())} bad values): raw scattering coefficients are finite, "
                             f"non-negative up to rounding and below {MAX_COEFFICIENT:g}; the features are "
                             f"corrupt or not raw scattering")


def _is_tensor(x) -> bool:
    # duck typing keeps torch out of this module's imports
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def compute_mu(S: Union[np.ndarray, torch.Tensor], axis: int = 0) -> np.ndarray:
    """Mean of each coefficient's time average over examples: μ [shape=(C,)] from S [shape=(K, C, T)]."""
    S = S.detach().cpu().numpy() if _is_tensor(S) else np.asarray(S)
    if S.ndim != 3 or S.shape[0] == 0:
        raise ParameterError(f"S must have shape (K, C, T) with K >= 1, got {S.shape}")
    return S.mean(axis=(0, 2), dtype=np.float64)


def log_normalize(S: ArrayT, mu: np.ndarray, c: float = LOG_C) -> ArrayT:
    """log1p(S / (c·μ + 1e-8)) with μ broadcast over the time axis.

    Parameters
    ----------
    S : np.ndarray or torch.Tensor [shape=(..., C, T)]
    mu : array [shape=(C,)]
    c : float

    Returns
    -------
    Same type as ``S``, same shape.
    """
    if np.shape(mu)[-1:] != tuple(S.shape[-2:-1]):
        raise ParameterError(f"mu has shape {np.shape(mu)} but S has {S.shape[-2]} coefficients")
    if _is_tensor(S):
        import torch
        m = torch.as_tensor(np.asarray(mu), dtype=S.dtype, device=S.device)[:, None]
        return torch.log1p(S / (c * m + MU_EPS))
    S = np.asarray(S)
    m = np.asarray(mu, dtype=np.float64)[:, None]
    return np.log1p(S / (c * m + MU_EPS)).astype(S.dtype, copy=False)
