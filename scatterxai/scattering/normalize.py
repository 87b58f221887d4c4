"""Log compression of scattering coefficients: the network input log1p(S / (c·μ + 1e-8)) (companion code).

Works on numpy arrays without importing torch; torch tensors are accepted too.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError

__all__ = ["compute_mu", "log_normalize", "LOG_C", "MU_EPS"]

#: constant c of the log compression log1p(S / (c·μ + 1e-8)) (companion code)
LOG_C = 0.1
#: additive floor of the log compression's denominator
MU_EPS = 1e-8


def _is_tensor(x) -> bool:
    # duck typing keeps torch out of this module's imports
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def compute_mu(S, axis=0) -> np.ndarray:
    """Mean of each coefficient's time average over examples: μ [shape=(C,)] from S [shape=(K, C, T)]."""
    S = S.detach().cpu().numpy() if _is_tensor(S) else np.asarray(S)
    if S.ndim != 3 or S.shape[0] == 0:
        raise ParameterError(f"S must have shape (K, C, T) with K >= 1, got {S.shape}")
    return S.mean(axis=(0, 2), dtype=np.float64)


def log_normalize(S, mu, c: float = LOG_C):
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
