"""The scattering configuration and the table of kept paths (no torch: importable by maps/ and viz/).

Kymatio is the definition: its ``meta()`` gives each coefficient's order, centre frequencies and filter
indices.  The package keeps the paths with carrier frequency λ1 ≥ ``fmin_hz`` (1,200 of 1,286 for the paper
configuration: 74 first-order S1 + 1,126 second-order S2).
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Tuple

import numpy as np

# ``kymatio.torch`` imports the 3-D frontend, which needs ``scipy.special.sph_harm`` (removed in SciPy
# 1.17); these 1-D modules import cleanly on their own, and without torch.
from kymatio.scattering1d.frontend.base_frontend import ScatteringBase1D
from kymatio.scattering1d.utils import compute_meta_scattering

from .._util.validate import check_int, is_integer
from ..errors import ParameterError
from ..task import PATH_FIELDS

__all__ = ["ScatteringConfig", "PAPER_CONFIG", "PathTable", "path_table", "PATH_FIELDS", "R_PSI", "SIGMA0",
           "ALPHA", "frame_bounds", "MAX_N", "MAX_Q", "MAX_SR"]

#: Kymatio's Morlet filter-bank constants (defaults of ``ScatteringBase1D.build``), recorded in exports
R_PSI, SIGMA0, ALPHA = math.sqrt(0.5), 0.1, 5.0
#: largest signal length accepted (≈ 95 s at 44.1 kHz; building Kymatio's filters for it takes seconds,
#: and they grow with N: a bound keeps a corrupt file attribute from asking for terabytes)
MAX_N = 2 ** 22
#: largest number of wavelets per octave accepted
MAX_Q = 64
#: largest sample rate accepted (Hz)
MAX_SR = 768_000


@dataclass(frozen=True)
class ScatteringConfig:
    """Parameters of the scattering front end (paper defaults).

    Parameters
    ----------
    sr : int
        Sample rate in Hz that audio is resampled to.
    N : int
        Fixed signal length in samples (2^18 ≈ 5.9 s at 44.1 kHz); at most :data:`MAX_N` = 2^22.
    J : int
        Maximum log2-scale of the wavelets (at most log2 N).
    Q : tuple of two ints
        Wavelets per octave at first and second order.  An int ``q`` means ``(q, 1)`` as in Kymatio;
        lists and numpy integers are converted.
    T : int
        Temporal support of the low-pass filter in samples (frame hop; 2^13 ≈ 186 ms).
    fmin_hz : float
        Paths whose first-order centre frequency λ1 is below this are dropped (inaudible carriers).
    """

    sr: int = 44100
    N: int = 2 ** 18
    J: int = 13
    Q: Tuple[int, int] = (8, 2)
    T: int = 2 ** 13
    fmin_hz: float = 32.0

    def __post_init__(self):
        q = self.Q
        if isinstance(q, (numbers.Integral, np.integer)):
            q = (int(q), 1)
        try:
            q = tuple(q)
        except TypeError:
            raise ParameterError(f"Q must be an int or a pair of ints (Q1, Q2), got {self.Q!r}") from None
        if len(q) == 1:
            q = (q[0], 1)
        if len(q) != 2 or not all(is_integer(v) for v in q):
            raise ParameterError(f"Q must be an int or a pair of ints (Q1, Q2), got {self.Q!r}")
        q = (int(q[0]), int(q[1]))
        object.__setattr__(self, "Q", q)
        for name in ("sr", "N", "J", "T"):
            object.__setattr__(self, name, check_int(name, getattr(self, name)))
        try:
            object.__setattr__(self, "fmin_hz", float(self.fmin_hz))
        except (TypeError, ValueError):
            raise ParameterError(f"fmin_hz must be a number of Hz, got {self.fmin_hz!r}") from None
        if min(q) < 1 or max(q) > MAX_Q:
            raise ParameterError(f"Q values must be in [1, {MAX_Q}], got {q}")
        if not 0 < self.sr <= MAX_SR:
            raise ParameterError(f"sr must be a positive number of Hz up to {MAX_SR}, got {self.sr}")
        if not 1 <= self.N <= MAX_N:
            raise ParameterError(f"N must be in [1, {MAX_N} = 2**22] samples, got {self.N}")
        if self.T < 1 or self.T & (self.T - 1):
            raise ParameterError(f"T must be a power of two >= 1, got {self.T}")
        if self.N < self.T:
            raise ParameterError(f"N must be >= T (the low-pass support), got N={self.N}, T={self.T}")
        if not 1 <= self.J <= math.log2(self.N):
            raise ParameterError(f"J must be in [1, log2(N) = {math.log2(self.N):g}], got {self.J}")
        if not 0 <= self.fmin_hz < self.sr / 2:
            raise ParameterError(f"fmin_hz must be in [0, sr/2 = {self.sr / 2}), got {self.fmin_hz}")

    @property
    def log2_T(self) -> int:
        return int(math.log2(self.T))

    def kymatio_kwargs(self) -> dict:
        """Keyword arguments of ``kymatio`` 's ``Scattering1D`` for this configuration."""
        return dict(J=self.J, shape=self.N, Q=self.Q, T=self.T, max_order=2)

    def to_dict(self) -> dict:
        """Plain JSON/HDF5-friendly dict (``Q`` as a list)."""
        d = asdict(self)
        d["Q"] = list(self.Q)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScatteringConfig:
        """Rebuild from :meth:`to_dict` output or from HDF5 attributes (extra keys are ignored)."""
        try:
            return cls(sr=d["sr"], N=d["N"], J=d["J"], Q=tuple(int(v) for v in np.ravel(d["Q"])),
                       T=d["T"], fmin_hz=d["fmin_hz"])
        except KeyError as e:
            raise ParameterError(f"scattering parameters lack {e.args[0]!r}; "
                                 f"expected keys sr, N, J, Q, T, fmin_hz") from None
        except ParameterError:
            raise
        except (TypeError, ValueError, OverflowError) as e:
            raise ParameterError(f"scattering parameters are not valid: {e}") from None


PAPER_CONFIG = ScatteringConfig()


@dataclass(frozen=True)
class PathTable:
    """Metadata of the kept scattering paths, one entry per coefficient (parallel arrays, shape (C,)).

    Attributes
    ----------
    order : np.ndarray [shape=(C,), int]
        1 or 2.
    lambda1_hz, lambda2_hz : np.ndarray [shape=(C,), float]
        Centre frequencies (Hz) of the first- and second-order wavelets; λ2 is NaN for order 1.
    n1, n2 : np.ndarray [shape=(C,), int]
        Kymatio filter indices (``meta()['n']``); n2 = -1 for order 1.
    j1, j2 : np.ndarray [shape=(C,), int]
        Kymatio dyadic scales; j2 = -1 for order 1.
    kymatio_index : np.ndarray [shape=(C,), int]
        Position of each kept path in Kymatio's full output (order 0 included).
    n_frames : int
        Number of time frames of each coefficient.
    n_total : int
        Number of coefficients Kymatio computes (all orders), to check its output against.
    """

    order: np.ndarray
    lambda1_hz: np.ndarray
    lambda2_hz: np.ndarray
    n1: np.ndarray
    n2: np.ndarray
    j1: np.ndarray
    j2: np.ndarray
    kymatio_index: np.ndarray
    n_frames: int
    n_total: int

    FIELDS = PATH_FIELDS

    def __len__(self) -> int:
        return len(self.order)

    @property
    def s1(self) -> np.ndarray:
        """Indices (into the kept paths) of first-order coefficients."""
        return np.flatnonzero(self.order == 1)

    @property
    def s2(self) -> np.ndarray:
        """Indices (into the kept paths) of second-order coefficients."""
        return np.flatnonzero(self.order == 2)

    def arrays(self) -> Dict[str, np.ndarray]:
        """The public columns ``order, lambda1_hz, lambda2_hz, n1, n2`` as a dict (HDF5 ``/paths``)."""
        return {name: getattr(self, name) for name in self.FIELDS}

    def matches(self, arrays: Mapping[str, np.ndarray]) -> bool:
        """True if ``arrays`` (a mapping like :meth:`arrays`) describes exactly these paths."""
        try:
            return all(np.allclose(np.asarray(arrays[k]), getattr(self, k), rtol=1e-9, atol=0, equal_nan=True)
                       and np.shape(arrays[k]) == getattr(self, k).shape for k in self.FIELDS)
        except KeyError:
            return False


@functools.lru_cache(maxsize=8)
def frame_bounds(config: ScatteringConfig) -> Tuple[int, int, int, int]:
    """(pad_left, pad_right, start, end) of Kymatio's padding and of its output frames (no filters built)."""
    base = ScatteringBase1D(**config.kymatio_kwargs())
    base.build()
    return base.pad_left, base.pad_right, base.ind_start[base.log2_T], base.ind_end[base.log2_T]


@functools.lru_cache(maxsize=8)
def path_table(config: ScatteringConfig = PAPER_CONFIG) -> PathTable:
    """Table of the kept paths (order ≥ 1 and λ1 ≥ ``config.fmin_hz``), in Kymatio's output order.

    Cheap: uses Kymatio's ``compute_meta_scattering`` without building filters.
    """
    meta = compute_meta_scattering(config.J, config.Q, config.T, 2, R_PSI, SIGMA0, ALPHA)
    order = np.asarray(meta["order"])
    xi = np.asarray(meta["xi"], dtype=float)
    n = np.asarray(meta["n"], dtype=float)
    j = np.asarray(meta["j"], dtype=float)
    lam1 = xi[:, 0] * config.sr
    keep = np.flatnonzero((order >= 1) & (lam1 >= config.fmin_hz))
    if keep.size == 0:
        raise ParameterError(f"no scattering path has λ1 >= fmin_hz={config.fmin_hz} Hz "
                             f"for {config}; lower fmin_hz")

    def as_int(a):
        return np.where(np.isnan(a), -1, a).astype(np.int64)

    _, _, start, end = frame_bounds(config)
    return PathTable(order=order[keep].astype(np.int64), lambda1_hz=lam1[keep],
                     lambda2_hz=xi[keep, 1] * config.sr, n1=as_int(n[keep, 0]), n2=as_int(n[keep, 1]),
                     j1=as_int(j[keep, 0]), j2=as_int(j[keep, 1]), kymatio_index=keep,
                     n_frames=end - start, n_total=len(order))

