"""Kymatio's 1-D scattering, the paper's configuration, and the table of kept paths.

Kymatio is the definition: its filter bank, its ``meta()`` and its output order.  This module keeps the
paths with carrier frequency λ1 ≥ ``fmin_hz`` (1,200 of 1,286 for the paper configuration: 74 first-order
S1 + 1,126 second-order S2) and guards Kymatio 0.3's traps (dtype, contiguity, length, device, ``Q``
given as a list or numpy integers) so that users get clear errors or documented fix-ups.

Two interchangeable methods compute the same coefficients:

* ``"kymatio"`` — Kymatio's own ``Scattering1D`` followed by selection of the kept paths;
* ``"fast"`` — :mod:`scatterxai.fast_scattering`, which computes only the kept paths, multiplies each
  filter on its support only and batches FFTs; equal to Kymatio within 1e-4 relative (tested).
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
from dataclasses import asdict, dataclass
from typing import Dict, Tuple

import numpy as np
import torch

# ``kymatio.torch`` imports the 3-D frontend, which needs ``scipy.special.sph_harm`` (removed in
# SciPy 1.17); the 1-D frontend module imports cleanly on its own.
from kymatio.scattering1d.frontend.base_frontend import ScatteringBase1D
from kymatio.scattering1d.frontend.torch_frontend import ScatteringTorch1D
from kymatio.scattering1d.utils import compute_meta_scattering

from .errors import ParameterError, ScatterXAIError

__all__ = ["ScatteringConfig", "PAPER_CONFIG", "PathTable", "path_table", "resolve_device",
           "get_scattering", "scatter", "compute_mu", "log_normalize", "LOG_C", "MU_EPS", "METHODS"]

#: constant c of the log compression log1p(S / (c·μ + 1e-8)) (companion code)
LOG_C = 0.1
#: additive floor of the log compression's denominator
MU_EPS = 1e-8
#: Kymatio's Morlet filter-bank constants (defaults of ``ScatteringBase1D.build``), recorded in exports
R_PSI, SIGMA0, ALPHA = math.sqrt(0.5), 0.1, 5.0


@dataclass(frozen=True)
class ScatteringConfig:
    """Parameters of the scattering front end (paper defaults).

    Parameters
    ----------
    sr : int
        Sample rate in Hz that audio is resampled to.
    N : int
        Fixed signal length in samples (2^18 ≈ 5.9 s at 44.1 kHz).
    J : int
        Maximum log2-scale of the wavelets.
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
        if len(q) != 2 or not all(isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)
                                  for v in q):
            raise ParameterError(f"Q must be an int or a pair of ints (Q1, Q2), got {self.Q!r}")
        q = (int(q[0]), int(q[1]))
        object.__setattr__(self, "Q", q)
        for name in ("sr", "N", "J", "T"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
                raise ParameterError(f"{name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        object.__setattr__(self, "fmin_hz", float(self.fmin_hz))
        if min(q) < 1:
            raise ParameterError(f"Q values must be >= 1, got {q}")
        if self.sr <= 0:
            raise ParameterError(f"sr must be a positive number of Hz, got {self.sr}")
        if self.J < 1:
            raise ParameterError(f"J must be >= 1, got {self.J}")
        if self.T < 1 or self.T & (self.T - 1):
            raise ParameterError(f"T must be a power of two >= 1, got {self.T}")
        if self.N < self.T:
            raise ParameterError(f"N must be >= T (the low-pass support), got N={self.N}, T={self.T}")
        if self.fmin_hz < 0 or self.fmin_hz >= self.sr / 2:
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
    def from_dict(cls, d) -> "ScatteringConfig":
        """Rebuild from :meth:`to_dict` output or from HDF5 attributes (extra keys are ignored)."""
        try:
            return cls(sr=d["sr"], N=d["N"], J=d["J"], Q=tuple(int(v) for v in np.ravel(d["Q"])),
                       T=d["T"], fmin_hz=d["fmin_hz"])
        except KeyError as e:
            raise ParameterError(f"scattering parameters lack {e.args[0]!r}; "
                                 f"expected keys sr, N, J, Q, T, fmin_hz") from None


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

    FIELDS = ("order", "lambda1_hz", "lambda2_hz", "n1", "n2")

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

    def matches(self, arrays) -> bool:
        """True if ``arrays`` (a mapping like :meth:`arrays`) describes exactly these paths."""
        try:
            return all(np.allclose(np.asarray(arrays[k]), getattr(self, k), rtol=1e-9, atol=0, equal_nan=True)
                       and np.shape(arrays[k]) == getattr(self, k).shape for k in self.FIELDS)
        except KeyError:
            return False


@functools.lru_cache(maxsize=8)
def _frame_bounds(config: ScatteringConfig) -> Tuple[int, int, int, int]:
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

    _, _, start, end = _frame_bounds(config)
    return PathTable(order=order[keep].astype(np.int64), lambda1_hz=lam1[keep],
                     lambda2_hz=xi[keep, 1] * config.sr, n1=as_int(n[keep, 0]), n2=as_int(n[keep, 1]),
                     j1=as_int(j[keep, 0]), j2=as_int(j[keep, 1]), kymatio_index=keep,
                     n_frames=end - start, n_total=len(order))


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else is passed to :class:`torch.device`."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<i>', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    return dev


@functools.lru_cache(maxsize=4)
def _kymatio_cpu(config: ScatteringConfig) -> ScatteringTorch1D:
    # Building the paper filter bank takes ~10 s: done once per process and configuration.
    module = ScatteringTorch1D(**config.kymatio_kwargs())
    n_meta = len(module.meta()["order"])
    if module.output_size() != n_meta:
        raise ScatterXAIError(f"Kymatio reports {module.output_size()} coefficients but meta() describes "
                              f"{n_meta}; this Kymatio version is not supported")
    return module


class KymatioScattering(torch.nn.Module):
    """Kymatio's ``Scattering1D`` restricted to the kept paths: (B, N) → (B, C, n_frames)."""

    def __init__(self, kymatio_module: ScatteringTorch1D, table: PathTable):
        super().__init__()
        self.kymatio = kymatio_module
        self.table = table
        self.register_buffer("keep", torch.as_tensor(table.kymatio_index), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S = self.kymatio(x)
        if S.shape[-2] != self.table.n_total:
            raise ScatterXAIError(f"Kymatio returned {S.shape[-2]} coefficients, meta() describes "
                                  f"{self.table.n_total}")
        return S.index_select(-2, self.keep)

    @classmethod
    def build(cls, config: ScatteringConfig, device: torch.device, dtype: torch.dtype):
        module = _kymatio_cpu(config)
        if device.type != "cpu" or dtype != torch.float32:
            # nn.Module.to() works in place: copy so that the cached CPU module stays float32 on the CPU.
            module = copy.deepcopy(module).to(device=device, dtype=dtype)
        return cls(module, path_table(config)).to(device)


def _build_fast(config, device, dtype):
    from .fast_scattering import FastScattering
    return FastScattering.build(config, device, dtype)


#: scattering implementations by name: each builds a module (B, N) → (B, C_kept, n_frames)
METHODS = {"kymatio": KymatioScattering.build, "fast": _build_fast}


@functools.lru_cache(maxsize=8)
def _cached_module(config, device, dtype, method):
    return METHODS[method](config, device, dtype)


def get_scattering(config: ScatteringConfig = PAPER_CONFIG, *, device="auto", method="fast",
                   dtype=torch.float32) -> torch.nn.Module:
    """The scattering module for ``config`` on ``device`` (built once per process and reused).

    Parameters
    ----------
    config : ScatteringConfig
    device : str or torch.device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``…
    method : {"fast", "kymatio"}
        Implementation; both give the same coefficients (see module docstring).
    dtype : torch.float32 or torch.float64
        Precision of filters and computation.
    """
    if not isinstance(config, ScatteringConfig):
        raise ParameterError(f"config must be a ScatteringConfig, got {type(config).__name__}")
    if method not in METHODS:
        raise ParameterError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if dtype not in (torch.float32, torch.float64):
        raise ParameterError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    return _cached_module(config, resolve_device(device), dtype, method)


def _as_batch(x, config: ScatteringConfig, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Validate and convert an input signal batch to a contiguous (B, N) tensor of ``dtype`` on ``device``."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError, RuntimeError):
            raise ParameterError(f"input must be a numeric array of shape (N,) or (B, N), got "
                                 f"{type(x).__name__}") from None
    if t.is_complex() or not (t.is_floating_point() or t.dtype in (torch.int8, torch.int16, torch.int32,
                                                                      torch.int64, torch.uint8)):
        raise ParameterError(f"input must be a real numeric array, got dtype {t.dtype}")
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2:
        raise ParameterError(f"input must have shape (N,) or (B, N), got {tuple(t.shape)}")
    if t.shape[-1] != config.N:
        raise ParameterError(f"input length {t.shape[-1]} does not match the configured N={config.N}; "
                             f"prepare audio with scatterxai.audio.prepare (pads or truncates)")
    # float64 input against float32 filters (Kymatio's default) fails deep inside its backend: cast.
    t = t.to(device=device, dtype=dtype).contiguous()
    if not torch.isfinite(t).all():
        raise ParameterError("input contains NaN or inf values")
    return t


def scatter(x, config: ScatteringConfig = PAPER_CONFIG, *, device="auto", method="fast",
            dtype=torch.float32, batch_size: int = 8) -> torch.Tensor:
    """Scattering coefficients of the kept paths.

    Parameters
    ----------
    x : np.ndarray or torch.Tensor [shape=(N,) or (B, N)]
        Prepared signals of exactly ``config.N`` samples (see :func:`scatterxai.audio.prepare`).  Any real
        dtype is accepted and cast to ``dtype``; non-contiguous tensors and tensors on another device are
        copied.
    config : ScatteringConfig
    device, method, dtype
        See :func:`get_scattering`.
    batch_size : int
        Signals transformed at once (memory grows linearly with it).

    Returns
    -------
    S : torch.Tensor [shape=(B, C, n_frames)]
        On ``device``; C = ``len(path_table(config))`` (1,200 for the paper configuration).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (numbers.Integral, np.integer)) \
            or batch_size < 1:
        raise ParameterError(f"batch_size must be a positive integer, got {batch_size!r}")
    module = get_scattering(config, device=device, method=method, dtype=dtype)
    dev = resolve_device(device)
    t = _as_batch(x, config, dev, dtype)
    # inference mode skips autograd bookkeeping on the thousands of small ops of a forward pass; the
    # result is copied out of it (torch.cat outside the context) so callers get an ordinary tensor.
    with torch.inference_mode():
        out = [module(t[i:i + batch_size]) for i in range(0, t.shape[0], batch_size)]
    return torch.cat(out, dim=0)


def compute_mu(S, axis=0) -> np.ndarray:
    """Mean of each coefficient's time average over examples: μ [shape=(C,)] from S [shape=(K, C, T)]."""
    S = S.detach().cpu().numpy() if isinstance(S, torch.Tensor) else np.asarray(S)
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
    if isinstance(S, torch.Tensor):
        m = torch.as_tensor(np.asarray(mu), dtype=S.dtype, device=S.device)[:, None]
        return torch.log1p(S / (c * m + MU_EPS))
    S = np.asarray(S)
    m = np.asarray(mu, dtype=np.float64)[:, None]
    return np.log1p(S / (c * m + MU_EPS)).astype(S.dtype, copy=False)
