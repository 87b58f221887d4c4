"""Linear centred kernel alignment (CKA) between two representations of the same notes — pure numpy.

Definitions
-----------
X [shape=(n, p)] and Y [shape=(n, q)] hold one row per note (a 1-D array is one column).  Columns are
centred first: Xc = X − mean(X, axis=0); K = Xc Xcᵀ and L = Yc Ycᵀ are the centred linear Gram matrices,
d_K = diag(K) and S_K = tr(K) = ‖Xc‖²_F.

linear CKA (Kornblith et al. 2019, eq. 5)
    ‖YcᵀXc‖²_F / (‖XcᵀXc‖_F ‖YcᵀYc‖_F) = tr(KL) / (‖K‖_F ‖L‖_F)  — the biased HSIC ratio.  It is
    biased upwards for finite n: for independent isotropic Gaussian data it is ≈ √(pq / ((n+p)(n+q)))
    (0.14 at n = 200, p = 1000, q = 5; 0.83 at p = q = 1000).
debiased CKA
    The same ratio with the unbiased HSIC estimator of Song et al. (2012) (Gram diagonals zeroed),
    HSIC₁(K, L) = [tr(K̃L̃) + 1ᵀK̃1 · 1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3)),  K̃ = K − diag(K),
    as in Kornblith et al. (2019) and Nguyen et al. (2021).  For centred features K1 = 0, so
    n(n−3) HSIC₁ = tr(KL) − n/(n−2) · d_K·d_L + S_K S_L / ((n−1)(n−2)): it needs tr(KL) and the two
    diagonals only.  (The estimator is invariant to shifting the features, so centring changes nothing.)
    It is ≈ 0 (± ~0.01 at n = 200) for independent data and can be slightly negative.
permutation null
    Rows of Y are shuffled (200 times by default); p = (1 + #{null ≥ observed}) / (1 + n_permutations).
    Only tr(K L_π) and d_K·d_L[π] change under a permutation, so each shuffle costs either one
    (r_L × n)(n × r_K) product of factors with r = min(features, n) columns (feature space) or one gather
    of the n × n Gram (Gram space), whichever is cheaper; factors and Grams are built once.

Undefined values (a representation with no variance, or a non-positive debiased self-HSIC, which can
happen for tiny n) are returned as NaN with a warning on the ``scatterxai`` logger.
"""

from __future__ import annotations

import logging

import numpy as np

from ...errors import ParameterError

__all__ = ["cka_permutation_test", "debiased_cka", "linear_cka", "linear_cka_gram"]

logger = logging.getLogger("scatterxai")

#: permuted cross terms use Gram space when r_K · r_L > _GRAM_FACTOR · n (r = min(features, n)): gathering
#: the n² entries of a permuted Gram costs about as much as 70–240 · n² multiply-adds of a BLAS product
#: (measured, single thread, n = 334 and 1,000)
_GRAM_FACTOR = 100


def _as_matrix(X, name: str) -> np.ndarray:
    """X as a float64 (n, p) array: 1-D → one column; finite values required."""
    A = np.asarray(X, dtype=np.float64)
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2 or A.shape[0] < 2 or A.shape[1] < 1:
        raise ParameterError(f"{name} must have shape (n, features) with n ≥ 2 notes, got {np.shape(X)}")
    if not np.all(np.isfinite(A)):
        raise ParameterError(f"{name} holds {int(np.sum(~np.isfinite(A)))} non-finite values; "
                             "drop or impute those notes first")
    return A


class _Centred:
    """Column-centred features reduced to what CKA needs: Gram diagonal, traces, a factor, the Gram.

    ``factor`` F has the centred Gram K = F Fᵀ with r = min(p, n) columns at most (the centred features
    themselves when p ≤ n, else V √Λ from the eigendecomposition of K), so cross terms cost n · r_K · r_L
    whatever p is; ``gram`` is K (built lazily when p ≤ n).
    """

    def __init__(self, X, name: str):
        A = _as_matrix(X, name)
        x = A - A.mean(axis=0)
        self.n, self.p = x.shape
        self.diag = np.einsum("ij,ij->i", x, x)  # d_K
        self.total = float(self.diag.sum())  # S_K = tr(K)
        if self.p <= self.n:
            self.factor, self._gram = x, None
            self.trace_sq = float(np.sum((x.T @ x) ** 2))  # tr(K²) = ‖XcᵀXc‖²_F
        else:
            self._gram = x @ x.T
            w, V = np.linalg.eigh(self._gram)
            keep = w > max(float(w[-1]), 0.0) * self.n * np.finfo(float).eps
            self.factor = V[:, keep] * np.sqrt(w[keep])
            self.trace_sq = float(np.sum(w[keep] ** 2))  # tr(K²) = Σ λ²

    @property
    def rank(self) -> int:
        return self.factor.shape[1]

    @property
    def gram(self) -> np.ndarray:
        if self._gram is None:
            self._gram = self.factor @ self.factor.T
        return self._gram


def _pair(X, Y, *, min_n: int) -> tuple[_Centred, _Centred]:
    a, b = _Centred(X, "X"), _Centred(Y, "Y")
    if a.n != b.n:
        raise ParameterError(f"X and Y must describe the same notes (same number of rows), "
                             f"got {a.n} and {b.n}")
    if a.n < min_n:
        raise ParameterError(f"need at least {min_n} notes, got n = {a.n}")
    return a, b


def _use_gram(a: _Centred, b: _Centred) -> bool:
    return a.rank * b.rank > _GRAM_FACTOR * a.n


def _cross_trace(a: _Centred, b: _Centred, perm=None, *, gram: bool) -> float:
    """tr(K L_π) with L_π the Gram of Y's rows permuted by ``perm`` (identity if None)."""
    if gram:
        if perm is None:
            return float(np.vdot(a.gram, b.gram))
        # Σ_ij K_ij L_π(i)π(j) = ⟨K[π⁻¹], L[:, π]⟩: a contiguous row gather and one column gather
        return float(np.vdot(a.gram[np.argsort(perm)], b.gram[:, perm]))
    f = b.factor if perm is None else b.factor[perm]
    return float(np.sum((f.T @ a.factor) ** 2))


def _hsic1_scaled(trace_kl: float, dd: float, s_k: float, s_l: float, n: int) -> float:
    """n(n−3) · HSIC₁ for centred Grams from tr(KL), d_K·d_L and the two traces S_K, S_L."""
    return trace_kl - n / (n - 2) * dd + s_k * s_l / ((n - 1) * (n - 2))


def _denominator(a: _Centred, b: _Centred, debiased: bool) -> float:
    if debiased:
        hk = _hsic1_scaled(a.trace_sq, float(a.diag @ a.diag), a.total, a.total, a.n)
        hl = _hsic1_scaled(b.trace_sq, float(b.diag @ b.diag), b.total, b.total, b.n)
        ok = hk > 0 and hl > 0
        den = np.sqrt(hk * hl) if ok else np.nan
    else:
        den = np.sqrt(a.trace_sq * b.trace_sq)
        ok = den > 0
    if not ok:
        logger.warning("CKA undefined: a representation has %s; returning NaN",
                       "a non-positive debiased self-HSIC" if debiased else "no variance")
        return np.nan
    return float(den)


def _numerator(a: _Centred, b: _Centred, perm, *, debiased: bool, gram: bool) -> float:
    t = _cross_trace(a, b, perm, gram=gram)
    if not debiased:
        return t
    d_l = b.diag if perm is None else b.diag[perm]
    return _hsic1_scaled(t, float(a.diag @ d_l), a.total, b.total, a.n)


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Linear CKA of two representations of the same notes (biased HSIC ratio).

    Parameters
    ----------
    X : np.ndarray [shape=(n, p) or (n,)]
        One row per note (e.g. a layer's activations, flattened or time-averaged).
    Y : np.ndarray [shape=(n, q) or (n,)]
        The same notes in another representation (descriptors, another layer).

    Returns
    -------
    float
        ‖YcᵀXc‖²_F / (‖XcᵀXc‖_F ‖YcᵀYc‖_F) ∈ [0, 1] on column-centred X, Y; NaN when either has no
        variance.  Computed in feature or Gram space, whichever is cheaper.
    """
    a, b = _pair(X, Y, min_n=2)
    den = _denominator(a, b, debiased=False)
    return float(_numerator(a, b, None, debiased=False, gram=_use_gram(a, b)) / den)


def debiased_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Debiased linear CKA: the CKA ratio with Song et al.'s unbiased HSIC estimator.

    Parameters
    ----------
    X : np.ndarray [shape=(n, p) or (n,)]
    Y : np.ndarray [shape=(n, q) or (n,)]
        Two representations of the same n ≥ 4 notes.

    Returns
    -------
    float
        HSIC₁(K, L) / √(HSIC₁(K, K) HSIC₁(L, L)); ≈ 0 for independent data (may be slightly negative),
        1 for X = Y.  NaN when a self-HSIC estimate is not positive.
    """
    a, b = _pair(X, Y, min_n=4)
    den = _denominator(a, b, debiased=True)
    return float(_numerator(a, b, None, debiased=True, gram=_use_gram(a, b)) / den)


def _as_gram(K, name: str) -> np.ndarray:
    G = np.asarray(K, dtype=np.float64)
    if G.ndim != 2 or G.shape[0] != G.shape[1] or G.shape[0] < 2:
        raise ParameterError(f"{name} must be a square (n, n) Gram matrix with n ≥ 2, got {np.shape(K)}")
    if not np.all(np.isfinite(G)):
        raise ParameterError(f"{name} holds non-finite values")
    if not np.allclose(G, G.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(G).max()))):
        raise ParameterError(f"{name} must be symmetric (a Gram matrix), max |G − Gᵀ| = "
                             f"{float(np.abs(G - G.T).max()):.3g}")
    return G


def _hsic1_gram(K: np.ndarray, L: np.ndarray) -> float:
    """n(n−3) · HSIC₁(K, L) by Song et al.'s formula on any (uncentred) Grams."""
    n = K.shape[0]
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0.0)
    np.fill_diagonal(Lt, 0.0)
    rk, rl = Kt.sum(axis=1), Lt.sum(axis=1)
    return float(np.vdot(Kt, Lt) + rk.sum() * rl.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (rk @ rl))


def linear_cka_gram(K: np.ndarray, L: np.ndarray, *, debiased: bool = False) -> float:
    """CKA from two Gram matrices (e.g. X Xᵀ and Y Yᵀ of uncentred features, or any kernel).

    Used to check the feature-space formulas; also serves non-linear kernels.

    Parameters
    ----------
    K, L : np.ndarray [shape=(n, n)]
        Symmetric Gram matrices of the same n notes; they need not be centred.
    debiased : bool
        False: biased HSIC with centred Grams, tr(HKH · HLH) / (‖HKH‖_F ‖HLH‖_F), H = I − 11ᵀ/n.
        True: Song et al.'s unbiased HSIC₁ (diagonals zeroed, no centring), n ≥ 4.

    Returns
    -------
    float
        The CKA value, NaN when undefined.
    """
    K, L = _as_gram(K, "K"), _as_gram(L, "L")
    n = K.shape[0]
    if L.shape[0] != n:
        raise ParameterError(f"K and L must describe the same notes, got shapes {K.shape} and {L.shape}")
    if debiased:
        if n < 4:
            raise ParameterError(f"debiased CKA needs at least 4 notes, got n = {n}")
        hk, hl = _hsic1_gram(K, K), _hsic1_gram(L, L)
        if not (hk > 0 and hl > 0):
            logger.warning("CKA undefined: non-positive debiased self-HSIC; returning NaN")
            return float("nan")
        return _hsic1_gram(K, L) / float(np.sqrt(hk * hl))

    def centre(G):
        G = G - G.mean(axis=0, keepdims=True)
        return G - G.mean(axis=1, keepdims=True)

    Kc, Lc = centre(K), centre(L)
    den = float(np.linalg.norm(Kc) * np.linalg.norm(Lc))
    if not den > 0:
        logger.warning("CKA undefined: a Gram matrix has no variance; returning NaN")
        return float("nan")
    return float(np.vdot(Kc, Lc)) / den


def cka_permutation_test(X: np.ndarray, Y: np.ndarray, *, n_permutations: int = 200, seed: int = 0,
                         debiased: bool = True) -> tuple[float, float]:
    """CKA and its p-value under a null of no association (rows of Y shuffled).

    Parameters
    ----------
    X : np.ndarray [shape=(n, p) or (n,)]
    Y : np.ndarray [shape=(n, q) or (n,)]
        Two representations of the same notes.
    n_permutations : int ≥ 1
        Number of shuffles of Y's rows.
    seed : int
        Seed of ``numpy.random.default_rng`` drawing the permutations.
    debiased : bool
        Report (and test) debiased CKA (default) or the biased linear CKA.

    Returns
    -------
    value : float
        The observed CKA (:func:`debiased_cka` or :func:`linear_cka`).
    p : float
        (1 + #{null ≥ value}) / (1 + n_permutations), in [1/(1 + n_permutations), 1]; NaN when the
        value is NaN.
    """
    if int(n_permutations) != n_permutations or n_permutations < 1:
        raise ParameterError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    a, b = _pair(X, Y, min_n=4 if debiased else 2)
    den = _denominator(a, b, debiased=debiased)
    gram = _use_gram(a, b)
    value = _numerator(a, b, None, debiased=debiased, gram=gram) / den
    if not np.isfinite(value):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    null = np.array([_numerator(a, b, rng.permutation(a.n), debiased=debiased, gram=gram) / den
                     for _ in range(int(n_permutations))])
    # a tolerance so that a permutation reproducing the observed pairing counts as "≥" despite rounding
    exceed = int(np.sum(null >= value - 1e-12))
    return float(value), (1 + exceed) / (1 + int(n_permutations))
