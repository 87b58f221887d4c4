"""Kymatio's 1-D scattering of the kept paths, computed only where the filters live.

The coefficients are Kymatio's (``scattering1d`` with ``average=True``, ``oversampling=0``), in the order
of :func:`scatterxai.scattering.path_table`; only the arithmetic is reorganised:

* **Only the kept paths.**  First-order filters with λ1 < ``fmin_hz`` (and the second-order paths that
  hang on them) are never computed, nor is order 0.
* **Products on the filter support.**  Kymatio multiplies a spectrum by a filter over the whole padded
  length and then periodises (a mean over ``2**k`` periods) to subsample.  Every Morlet filter is a narrow
  Gaussian in frequency, so the product is non-zero on a few contiguous runs of bins and, thanks to
  Kymatio's anti-aliasing choice of ``j``, the runs land on distinct bins of the subsampled spectrum.
  :func:`support_runs` precomputes these runs (bins whose filter magnitude exceeds ``rtol`` times the
  filter's peak); the forward pass writes ``spectrum[run] * filter[run] / 2**k`` straight into the
  subsampled spectrum (slices, no gather), adding where runs overlap.
* **Real FFTs.**  The padded input and the modulus ``|U1|`` are real: their spectra come from ``rfft``;
  bins at negative frequencies are read as complex conjugates.
* **The low-pass as small matrix products.**  Low-pass filtering, subsampling to ``2**log2_T``, the
  inverse FFT, the real part and ``unpad`` form one linear map from a modulus to the ``n_frames`` output
  frames.  For second order it is applied in time, factored by output frames into a small GEMM and a
  sum along diagonals (:func:`lowpass_frames`; no FFT of ``|U2|``); for first order, whose spectrum
  ``rfft(|U1|)`` is needed anyway for second order, it is a (K+1, n_frames) complex matrix on the K+1
  lowest bins (:func:`lowpass_freq`).
* **Batches and blocks.**  The examples of a chunk and the first-order wavelets sharing a resolution go
  through one FFT call (long CPU transforms, which MKL runs faster one row at a time, excepted); the
  second-order wavelet n2 multiplies every row at once (its filter does not depend on n1).  Chunks and
  blocks have bounded sizes (``group_bytes``, ``block_bytes``), so memory does not grow with the batch.
  The spectra to invert live in one zeroed scratch buffer: each filter writes its runs and clears them
  after the inverse FFT (no full-length zeroing per filter).
* **Only the frames the output reads.**  ``|U2|`` is formed only on the frames that the low-pass of the
  kept output frames reaches (51 of 64 on the paper configuration, float32).

Cost on the paper configuration (2 CPU cores, torch 2.15): ~0.10–0.13 s per example against ~0.5–0.7 s
for Kymatio one example at a time (``benchmarks/bench_scattering.py``).  The FFTs — the inverse FFTs
that Kymatio also computes (one per kept path, at Kymatio's resolution, which equality with Kymatio
fixes) and the rfft of ``|U1|`` — take ~70 % of the time, the modulus ~17 %, the low-pass GEMMs ~5 %;
Kymatio's full-length products and periodisation sums, its complex FFTs of real signals and its FFTs
of ``|U2|`` are gone.

Filters: the module reuses the float32 filter bank of the cached Kymatio module
(``scatterxai.scattering.kymatio.kymatio_module``) rather than rebuilding it in float64.  Those float32 values *are*
the reference's filters, so in float64 the fast path agrees with Kymatio run in float64 to ~1e-12 (the
only remaining differences are rounding and the dropped filter tails below ``rtol``), and the 10-s
filter construction happens once per process for both methods.  In float32 both implementations round
differently: they agree to ~1e-6 on typical paths and to ~1e-4 on the weakest ones (paths ~1e-7 below
the strongest), which is also how far Kymatio's float32 output is from its float64 output there.

All operations are plain torch operations on the module's device (no numpy, no host copies in
``forward``), so the module runs unchanged on CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .._util.validate import check_positive_int
from ..errors import ParameterError, ScatterXAIError
from .config import path_table
from .kymatio import kymatio_module

__all__ = ["FastScattering", "FastPlan", "plan_fast", "support_runs", "lowpass_frames", "lowpass_freq", "DEFAULT_RTOL",
           "LOWPASS_RTOL"]

#: relative magnitude below which filter bins are dropped, per dtype: the dropped tails are far below the
#: rounding of a float32 FFT (~1e-7 of the spectrum's norm) resp. of float64 arithmetic
DEFAULT_RTOL = {torch.float32: 1e-10, torch.float64: 1e-18}
#: the same for the frame offsets of the low-pass (:func:`lowpass_frames`): Kymatio's float32 low-pass
#: has a rounding floor of ~1e-9 of its peak in time, so in float32 the offsets below 1e-8 (≈ 20 of 64
#: are kept on the paper configuration) are float32 noise; float64 keeps them all, to match Kymatio run
#: in float64 with the same float32 filter values
LOWPASS_RTOL = {torch.float32: 1e-8, torch.float64: 0.0}

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


@dataclass(frozen=True)
class Run:
    """A run of consecutive frequency bins on which a filter is kept.

    ``dst[d0 : d0 + n] (+)= src[s0 : s0 + n] * w``, where ``src`` is the ``rfft`` of a real signal or,
    if ``conj``, the reversed copy of its first bins (negative frequencies, to be conjugated: the sign
    of the imaginary weights does it); ``w`` is ``weights[offset : offset + n]`` of the owning module,
    as (re, im) pairs; ``accumulate`` is True when earlier runs already wrote these destination bins
    (aliasing), so the product must be added rather than stored.
    """

    d0: int
    s0: int
    n: int
    conj: bool
    offset: int
    accumulate: bool


def support_runs(h, m_dst: int, *, rtol: float) -> List[Tuple[int, int, int, bool, np.ndarray, bool]]:
    """Runs of the product ``spectrum * h`` periodised onto ``m_dst`` bins, read from an ``rfft``.

    Parameters
    ----------
    h : np.ndarray [shape=(M,), real]
        Filter on the M bins of an M-point DFT (Kymatio's ``levels[k]``, FFT order).
    m_dst : int
        Length of the periodised spectrum (M / 2**k; M must be a multiple of it).
    rtol : float
        Bins with ``|h| <= rtol * max|h|`` are dropped.

    Returns
    -------
    runs : list of (d0, s0, n, conj, w, accumulate)
        Destination start in [0, m_dst), source start in the ``rfft`` bins [0, M/2], length, whether the
        source is the conjugate read backwards (bins above M/2), weights ``h[bins] / (M / m_dst)`` in
        destination order (the 1/2**k is Kymatio's periodisation by a *mean*), and whether the run
        overlaps earlier runs' destinations.
    """
    h = np.asarray(h, dtype=np.float64).ravel()
    M = h.size
    if m_dst < 1 or M % m_dst:
        raise ParameterError(f"m_dst must divide the filter length {M}, got {m_dst}")
    mag = np.abs(h)
    peak = mag.max() if M else 0.0
    if peak == 0:
        return []
    keep = np.flatnonzero(mag > rtol * peak)
    conj = keep > M // 2
    src = np.where(conj, M - keep, keep)
    dst = keep % m_dst
    # A bin accumulates when an earlier bin (in run order) aliases onto the same destination; runs are
    # cut where that changes so that a run either stores into fresh bins or adds to written ones.
    order = np.argsort(dst, kind="stable")
    same = np.concatenate([[False], dst[order][1:] == dst[order][:-1]])
    start = np.maximum.accumulate(np.where(same, 0, np.arange(keep.size)))
    acc = np.empty(keep.size, dtype=bool)
    acc[order] = np.arange(keep.size) > start
    breaks = np.flatnonzero((np.diff(keep) != 1) | (np.diff(dst) != 1) | (np.diff(conj) != 0)
                            | (np.diff(acc) != 0)) + 1
    runs = []
    scale = M // m_dst
    for seg in np.split(np.arange(keep.size), breaks):
        is_conj = bool(conj[seg[0]])
        s0 = int(src[seg[-1]]) if is_conj else int(src[seg[0]])
        runs.append((int(dst[seg[0]]), s0, int(seg.size), is_conj, h[keep[seg]] / scale, bool(acc[seg[0]])))
    return runs


def lowpass_frames(phi, m_out: int, t0: int, n_frames: int, *,
                   rtol: float) -> Tuple[np.ndarray, np.ndarray]:
    """Kymatio's low-pass, subsampling, inverse FFT, real part and unpad, factored by output frames.

    Kymatio computes ``S[t] = Re(ifft_{m_out}(mean over periods of fft(u) * phi))[t0 + t]``, which is
    ``S[t] = sum_n u[n] g((t0 + t) s - n)`` with ``g = Re(ifft_M(phi))`` and ``s = M / m_out`` samples per
    frame.  Cutting ``u`` into ``m_out`` frames of ``s`` samples (``n = f s + r``) gives
    ``S[t] = sum_q P[(t0 + t - q) mod m_out, q]`` with ``P = u.reshape(m_out, s) @ G`` and
    ``G[r, q] = g(q s - r)``: one small GEMM (G fits in cache) instead of an FFT of ``u``.  g is a
    Gaussian a few frames wide, so only a range of Q frame offsets q around 0 is kept.  With the columns
    of G in decreasing q and ``rows`` the frames that the kept offsets reach,
    ``S[t] = sum_j P[rows[t + j], j]``, a sum along diagonals.

    Parameters
    ----------
    phi : np.ndarray [shape=(M,), real]
        Low-pass filter on the M bins of the modulus' DFT (Kymatio's ``phi_f['levels'][k]``).
    m_out : int
        Frames in the padded output (M / m_out = 2**(log2_T - k) samples per frame).
    t0, n_frames : int
        First kept output frame (``ind_start[log2_T]``) and number of frames.
    rtol : float
        Only the contiguous range of frame offsets around the peak whose largest weights exceed ``rtol``
        times the largest of all is kept (0: all offsets).

    Returns
    -------
    G : np.ndarray [shape=(s, Q), float64]
    rows : np.ndarray [shape=(n_frames + Q - 1,), int]
    """
    phi = np.asarray(phi, dtype=np.float64).ravel()
    M = phi.size
    if m_out < 1 or M % m_out:
        raise ParameterError(f"m_out must divide the filter length {M}, got {m_out}")
    s = M // m_out
    g = np.fft.ifft(phi).real
    offsets = np.arange(-(m_out // 2), m_out - m_out // 2)
    big = np.abs(g[(offsets[None, :] * s - np.arange(s)[:, None]) % M]).max(0)
    # the contiguous range of offsets around the peak above rtol: beyond it lies the rounding floor of
    # the float32 filter (~1e-8 of the peak), whose ripples would otherwise widen the range
    lo, hi = (0, m_out - 1) if rtol == 0 else (int(big.argmax()),) * 2
    while lo > 0 and big[lo - 1] > rtol * big.max():
        lo -= 1
    while hi < m_out - 1 and big[hi + 1] > rtol * big.max():
        hi += 1
    q = offsets[lo:hi + 1][::-1]          # decreasing offsets
    G = g[(q[None, :] * s - np.arange(s)[:, None]) % M]
    rows = (t0 - q[0] + np.arange(n_frames + q.size - 1)) % m_out
    return G, rows


def lowpass_freq(phi, m_out: int, t0: int, n_frames: int, *, rtol: float) -> np.ndarray:
    """The same map as :func:`lowpass_frames`, applied to the ``rfft`` of the modulus ``u``.

    Returns
    -------
    A : np.ndarray [shape=(K + 1, n_frames), complex128]
        ``S = Re(rfft(u)[..., :K + 1] @ A)``; bins whose folded weight is ≤ ``rtol`` times the largest are
        dropped (K + 1 ≤ M/2 + 1).
    """
    phi = np.asarray(phi, dtype=np.float64).ravel()
    M = phi.size
    if M % 2:
        raise ParameterError(f"the low-pass filter must have an even number of bins, got {M}")
    c = phi / M
    # Fold the negative frequencies onto the positive ones: u is real, so fft(u)[M - l] = conj(fft(u)[l]),
    # and Re(c conj(U) e^{-iθ}) = c Re(U e^{iθ}) for a real weight c (e^{2πi M t / m_out} = 1).
    half = M // 2
    w = c[:half + 1].copy()
    w[1:half] += c[M - 1:half:-1]
    big = np.flatnonzero(np.abs(w) > rtol * np.abs(w).max())
    K = int(big[-1]) if big.size else 0
    lam = np.arange(K + 1)[:, None]
    t = (t0 + np.arange(n_frames))[None, :]
    return w[:K + 1, None] * np.exp(2j * np.pi * lam * t / m_out)


@dataclass(frozen=True)
class _Filter:
    """Runs of one filter on one destination spectrum (the bins between them stay zero)."""

    runs: Tuple[Run, ...]


@dataclass(frozen=True)
class _SecondOrder:
    """Second-order paths of one first-order group sharing the wavelet n2 (its runs serve every row)."""

    n_rows: int          # rows 0..n_rows-1 of the group (sorted by j1) have j1 < j2
    m2: int              # length of the subsampled spectrum (N_padded / 2**(k1 + k2))
    filt: _Filter
    lowpass: str         # buffer names of the low-pass (``lowpass_frames``): name, name + "_rows"
    channels: int        # offset of the rows' output channels in the ``_channels`` buffer


@dataclass(frozen=True)
class _Group:
    """First-order wavelets subsampled by the same 2**k1."""

    m1: int
    filters: Tuple[_Filter, ...]        # per row
    lowpass: str                        # buffer name of the (K+1, n_frames) complex matrix
    channels: int                       # offset of the rows' S1 channels in ``_channels``
    second: Tuple[_SecondOrder, ...]
    mirror: int                         # rfft bins of |U1| read backwards by conjugate runs


@dataclass(frozen=True)
class FastPlan:
    """What :class:`FastScattering` executes: filter runs, low-pass matrices and output channels (numpy).

    Built by :func:`plan_fast` from a Kymatio filter bank; independent of device and dtype.
    """

    N: int
    pad_left: int
    pad_right: int
    n_frames: int
    m_out: int
    n_channels: int
    mirror: int                      # rfft bins of the padded input read backwards by conjugate runs
    rtol: float
    groups: Tuple[_Group, ...]
    weights: np.ndarray              # (n, 2) real/imaginary weights of every run, concatenated
    channels: np.ndarray             # output channel of every computed row, concatenated
    buffers: Dict[str, np.ndarray]   # low-pass matrices (and the frames they read) by name
    frames: Dict[str, Optional[slice]]


def _check_kymatio(k) -> None:
    if k.oversampling != 0 or not k.average or k.max_order != 2:
        raise ScatterXAIError("FastScattering reproduces Kymatio with average=True, oversampling=0 and "
                              "max_order=2 only")


class _PlanBuilder:
    """Accumulates the runs' weights and the output channels while :func:`plan_fast` walks the bank."""

    def __init__(self):
        self.weights, self.channels = [], []
        self.n_weights = self.n_channels = 0

    def filter(self, raw, mirror: int) -> _Filter:
        runs = []
        for d0, s0, n, conj, w, acc in raw:
            # (re, im) weights: conj(z) * w = (re * w, -im * w); the mirror holds bins backwards.
            self.weights.append(np.stack([w, -w if conj else w], axis=-1))
            runs.append(Run(d0, mirror - s0 - n if conj else s0, n, conj, self.n_weights, acc))
            self.n_weights += n
        return _Filter(tuple(runs))

    def add_channels(self, idx) -> int:
        self.channels.append(np.asarray(idx, dtype=np.int64))
        self.n_channels += len(idx)
        return self.n_channels - len(idx)


def plan_fast(k, table, *, rtol: float, lowpass_rtol: float) -> FastPlan:
    """Plan the fast scattering of the kept paths of ``table`` with Kymatio module ``k``'s filter bank.

    Pure numpy: reads ``k``'s filters (``psi1_f``, ``psi2_f``, ``phi_f``), padding and frame bounds.

    Parameters
    ----------
    k : kymatio ``ScatteringTorch1D`` (or anything with its filter-bank attributes)
    table : PathTable
    rtol, lowpass_rtol : float in [0, 1)
        See :data:`DEFAULT_RTOL`, :data:`LOWPASS_RTOL`.
    """
    for name, value in (("rtol", rtol), ("lowpass_rtol", lowpass_rtol)):
        if not 0 <= float(value) < 1:
            raise ParameterError(f"{name} must be in [0, 1), got {value}")
    rtol, lowpass_rtol = float(rtol), float(lowpass_rtol)
    _check_kymatio(k)
    L = int(k.log2_T)
    phi = [np.asarray(p, dtype=np.float64).ravel() for p in k.phi_f["levels"]]
    n_pad = phi[0].size
    m_out = n_pad >> L
    t0, t1 = int(k.ind_start[L]), int(k.ind_end[L])
    n_frames = t1 - t0
    if n_frames != table.n_frames:
        raise ScatterXAIError(f"Kymatio gives {n_frames} frames, the path table {table.n_frames}")
    j1 = [int(p["j"]) for p in k.psi1_f]
    j2 = [int(p["j"]) for p in k.psi2_f]
    s1 = {int(table.n1[c]): int(c) for c in table.s1}
    s2 = {(int(table.n1[c]), int(table.n2[c])): int(c) for c in table.s2}
    if any(n1 not in s1 for n1, _ in s2):
        raise ScatterXAIError("the path table keeps second-order paths whose first-order path it drops")

    by_k1 = {}
    for n1 in sorted(s1, key=lambda n: (j1[n], n)):
        by_k1.setdefault(min(j1[n1], L), []).append(n1)
    # Raw runs first: the mirror length of each source (how many low bins conjugate runs read
    # backwards) must be known before the runs can address the mirrored copy.
    raw1 = {n1: support_runs(k.psi1_f[n1]["levels"][0], n_pad >> min(j1[n1], L), rtol=rtol) for n1 in s1}
    x_mirror = _mirror_length(r for n1 in s1 for r in raw1[n1])

    b = _PlanBuilder()
    buffers, groups = {}, []
    frames = {}  # frames of |U2| that each low-pass reads, as a slice when they are contiguous
    for k1, rows in sorted(by_k1.items()):
        m1 = n_pad >> k1
        filters = tuple(b.filter(raw1[n1], x_mirror) for n1 in rows)
        name = f"lowpass_hat_{k1}"
        buffers[name] = lowpass_freq(phi[k1], m_out, t0, n_frames, rtol=rtol)
        blocks = []
        for n2 in sorted({n2 for (n1, n2) in s2 if n1 in rows}):
            valid = [(n1, n2) in s2 for n1 in rows]
            n_rows = sum(valid)
            if valid != [True] * n_rows + [False] * (len(rows) - n_rows):
                raise ScatterXAIError(f"second-order paths of n2={n2} are not a prefix of the rows "
                                      f"sorted by j1: unsupported Kymatio path structure")
            k2 = max(min(j2[n2], L) - k1, 0)
            blocks.append((n2, n_rows, k2, support_runs(k.psi2_f[n2]["levels"][k1], m1 >> k2, rtol=rtol)))
        mirror = _mirror_length(r for blk in blocks for r in blk[3])
        second = []
        for n2, n_rows, k2, raw in blocks:
            lname = f"lowpass_{k1 + k2}"
            if lname not in buffers:
                buffers[lname], rows_read = lowpass_frames(phi[k1 + k2], m_out, t0, n_frames, rtol=lowpass_rtol)
                buffers[lname + "_rows"] = rows_read
                contiguous = bool(np.all(np.diff(rows_read) == 1))
                frames[lname] = slice(int(rows_read[0]), int(rows_read[-1]) + 1) if contiguous else None
            second.append(_SecondOrder(n_rows, m1 >> k2, b.filter(raw, mirror), lname,
                                       b.add_channels([s2[(n1, n2)] for n1 in rows[:n_rows]])))
        groups.append(_Group(m1, filters, name, b.add_channels([s1[n1] for n1 in rows]), tuple(second), mirror))
    return FastPlan(N=int(k.shape[0]), pad_left=int(k.pad_left), pad_right=int(k.pad_right), n_frames=n_frames,
                    m_out=m_out, n_channels=len(table), mirror=x_mirror, rtol=rtol, groups=tuple(groups),
                    weights=np.concatenate(b.weights), channels=np.concatenate(b.channels), buffers=buffers,
                    frames=frames)


class FastScattering(torch.nn.Module):
    """Kymatio's scattering of the kept paths: (B, N) → (B, C, n_frames), in ``path_table`` order.

    Build with :meth:`build`; see the module docstring for the method.  The module executes a
    :class:`FastPlan` (made by the pure function :func:`plan_fast`).  Inference only: the forward pass
    writes into preallocated spectra, which autograd does not support.

    Parameters
    ----------
    plan : FastPlan
    device : torch.device
    dtype : torch.float32 or torch.float64
    block_bytes : int
        Size of the largest intermediate spectrum: the wavelets of one resolution are processed in blocks
        of at most this many bytes (at least one wavelet for the examples of a chunk).
    group_bytes : int
        Size of the kept first-order spectra ``rfft(|U1|)`` of one resolution, which sets how many
        examples go through together (at least one): more examples make longer FFT batches for the
        short second-order transforms.  Both bounds keep memory fixed whatever the batch size; the
        defaults (8 and 32 MiB) keep allocations within glibc's 32-MiB mmap threshold, so that freed
        blocks are recycled instead of page-faulting fresh memory (measured: equally fast as 16/64 MiB,
        without the 20k page faults per example).
    """

    def __init__(self, plan: FastPlan, *, device, dtype, block_bytes=2 ** 23, group_bytes=2 ** 25):
        super().__init__()
        if dtype not in _COMPLEX:
            raise ParameterError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        block_bytes = check_positive_int("block_bytes", block_bytes)
        group_bytes = check_positive_int("group_bytes", group_bytes)
        self.dtype, self.rtol = dtype, plan.rtol
        self.block_elements = max(1, block_bytes // _COMPLEX[dtype].itemsize)
        self.group_bytes = group_bytes
        self.N, self.pad_left, self.pad_right = plan.N, plan.pad_left, plan.pad_right
        self.n_frames, self.m_out, self.n_channels, self.mirror = plan.n_frames, plan.m_out, plan.n_channels, \
            plan.mirror
        self._groups, self._frames = plan.groups, dict(plan.frames)
        cdtype = _COMPLEX[dtype]
        self.register_buffer("_weights", torch.as_tensor(plan.weights, dtype=dtype), persistent=False)
        self.register_buffer("_channels", torch.as_tensor(plan.channels), persistent=False)
        for name, value in plan.buffers.items():
            kind = {"c": cdtype, "f": dtype, "i": torch.int64}[value.dtype.kind]
            self.register_buffer(name, torch.as_tensor(value, dtype=kind), persistent=False)
        self.to(device)

    @classmethod
    def build(cls, config, device: torch.device, dtype: torch.dtype, *, rtol=None, lowpass_rtol=None,
              **kwargs) -> FastScattering:
        """The module for a :class:`~scatterxai.scattering.ScatteringConfig` on ``device``: the plan of
        Kymatio's cached filter bank (:func:`plan_fast`) and its executor.

        ``rtol`` / ``lowpass_rtol``: filter bins (low-pass frame offsets) below this times the peak are
        dropped (defaults :data:`DEFAULT_RTOL`, :data:`LOWPASS_RTOL`; 0 keeps all).  ``kwargs``:
        ``block_bytes``, ``group_bytes`` (see the class)."""
        if dtype not in _COMPLEX:
            raise ParameterError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        plan = plan_fast(kymatio_module(config), path_table(config),
                         rtol=DEFAULT_RTOL[dtype] if rtol is None else rtol,
                         lowpass_rtol=LOWPASS_RTOL[dtype] if lowpass_rtol is None else lowpass_rtol)
        return cls(plan, device=device, dtype=dtype, **kwargs)

    def _place(self, dst: torch.Tensor, src: torch.Tensor, mirror: torch.Tensor, filt: _Filter) -> None:
        """``dst = periodise(spectrum * filter)``, written run by run into an all-zero ``dst``.

        ``src`` holds the rfft of the spectrum's real signal and ``mirror`` its first bins reversed
        (negative frequencies); real views turn the conjugation into a sign of the weights.  ``dst`` must
        be zero outside the runs (see :meth:`_clear`): the bins between runs are not written.
        """
        dst, src, mirror = torch.view_as_real(dst), torch.view_as_real(src), torch.view_as_real(mirror)
        for run in filt.runs:
            s = (mirror if run.conj else src)[..., run.s0:run.s0 + run.n, :]
            w = self._weights[run.offset:run.offset + run.n]
            d = dst[..., run.d0:run.d0 + run.n, :]
            if run.accumulate:
                d.addcmul_(s, w)
            else:
                torch.mul(s, w, out=d)

    def _rows_per_block(self, n: int, m: int) -> int:
        """Rows of ``n`` examples' length-``m`` spectra that fit in ``block_bytes`` (at least one)."""
        return max(1, self.block_elements // (n * m))

    @staticmethod
    def _clear(dst: torch.Tensor, filt: _Filter) -> None:
        """Zero the bins :meth:`_place` wrote, so that the buffer is all-zero again (cheaper than zeroing
        the whole spectrum, most of which lies outside the filter's support)."""
        for run in filt.runs:
            dst[..., run.d0:run.d0 + run.n].zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scattering coefficients.

        Parameters
        ----------
        x : torch.Tensor [shape=(B, N)]
            Real signals of the module's dtype, on its device.

        Returns
        -------
        S : torch.Tensor [shape=(B, C, n_frames)]
        """
        if x.ndim != 2 or x.shape[-1] != self.N or x.dtype != self.dtype:
            raise ParameterError(f"FastScattering expects a (B, {self.N}) tensor of {self.dtype}, got "
                                 f"{tuple(x.shape)} {x.dtype}")
        B = x.shape[0]
        x_hat = torch.fft.rfft(F.pad(x[:, None], (self.pad_left, self.pad_right), mode="reflect")[:, 0])
        x_mirror = x_hat[:, :self.mirror].flip(-1)
        out = x.new_empty(B, self.n_channels, self.n_frames)
        for g in self._groups:
            # examples per chunk: the chunk keeps rfft(|U1|) of all its first-order rows
            per_example = len(g.filters) * (g.m1 // 2 + 1) * x_hat.element_size()
            n_ex = min(B, max(1, self.group_bytes // per_example))
            for b0 in range(0, B, n_ex):
                self._group(g, x_hat[b0:b0 + n_ex], x_mirror[b0:b0 + n_ex], out[b0:b0 + n_ex])
        return out

    def _group(self, g: _Group, x_hat, x_mirror, out) -> None:
        """S1 of the rows of group ``g`` and the S2 paths hanging on them, for a chunk of examples.

        Row-major layouts (row, example, bin) keep every block of rows contiguous, so that FFTs write
        straight into ``u1_hat``.  One zeroed scratch buffer holds every spectrum to invert: a filter's
        runs are written into it and cleared after the inverse FFT.
        """
        n, R = x_hat.shape[0], len(g.filters)
        u1_hat = x_hat.new_empty(R, n, g.m1 // 2 + 1)
        step = self._rows_per_block(n, g.m1)
        scratch = x_hat.new_zeros(max([min(step, R) * n * g.m1] + [
            min(self._rows_per_block(n, so.m2), so.n_rows) * n * so.m2 for so in g.second]))
        for r0 in range(0, R, step):
            r1 = min(r0 + step, R)
            spectrum = scratch[:(r1 - r0) * n * g.m1].view(r1 - r0, n, g.m1)
            for i in range(r1 - r0):
                self._place(spectrum[i], x_hat, x_mirror, g.filters[r0 + i])
            torch.fft.rfft(_modulus_ifft(spectrum)[..., 0, :], out=u1_hat[r0:r1])
            for i in range(r1 - r0):
                self._clear(spectrum[i], g.filters[r0 + i])
        A = getattr(self, g.lowpass)
        s1 = torch.matmul(u1_hat[..., :A.shape[0]], A).real
        out.index_copy_(1, self._channels[g.channels:g.channels + R], s1.transpose(0, 1))
        u1_mirror = u1_hat[..., :g.mirror].flip(-1)
        for so in g.second:
            G, rows = getattr(self, so.lowpass), getattr(self, so.lowpass + "_rows")
            frames = self._frames[so.lowpass]
            step = self._rows_per_block(n, so.m2)
            for r0 in range(0, so.n_rows, step):
                r1 = min(r0 + step, so.n_rows)
                u2_hat = scratch[:(r1 - r0) * n * so.m2].view(r1 - r0, n, so.m2)
                self._place(u2_hat, u1_hat[r0:r1], u1_mirror[r0:r1], so.filt)
                if frames is not None:
                    # |U2| only on the frames that reach the kept output frames (a contiguous range)
                    P = torch.matmul(_modulus_ifft(u2_hat, self.m_out, frames), G)
                else:
                    P = torch.matmul(_modulus_ifft(u2_hat, self.m_out), G).index_select(-2, rows)
                self._clear(u2_hat, so.filt)
                s2 = P.unfold(-2, G.shape[1], 1).diagonal(dim1=-2, dim2=-1).sum(-1)
                out.index_copy_(1, self._channels[so.channels + r0:so.channels + r1], s2.transpose(0, 1))


#: on CPU, complex FFTs at least this long run faster one row per call than batched (measured with
#: torch 2.14's MKL: 5-8 ns per point instead of 7-12); shorter ones are faster batched
_ROWWISE_FFT_MIN = 2 ** 17


def _modulus_ifft(spectrum: torch.Tensor, m_out: int = 1, frames: slice = slice(None)) -> torch.Tensor:
    """``|ifft(spectrum)|`` along the last axis, cut into ``m_out`` frames of which ``frames`` are kept.

    Returns
    -------
    torch.Tensor [shape=(*spectrum.shape[:-1], n_kept_frames, M // m_out)], real (for the default
    ``m_out=1``: all of ``|ifft(spectrum)|``, shape (*spectrum.shape[:-1], 1, M)).
    """
    M = spectrum.shape[-1]
    lead = spectrum.shape[:-1]
    if spectrum.device.type != "cpu" or M < _ROWWISE_FFT_MIN or spectrum.numel() == M:
        return _modulus(torch.fft.ifft(spectrum).view(*lead, m_out, M // m_out)[..., frames, :])
    rows = spectrum.reshape(-1, M)
    kept = range(m_out)[frames]
    out = spectrum.real.new_empty(rows.shape[0], len(kept), M // m_out)
    for row, out_row in zip(rows, out):
        _modulus(torch.fft.ifft(row).view(m_out, M // m_out)[frames], out=out_row)
    return out.view(*lead, len(kept), M // m_out)


def _modulus(u: torch.Tensor, out=None) -> torch.Tensor:
    # sqrt(re² + im²) like Kymatio's modulus; 2-3× faster on CPU than torch.abs or torch.hypot, whose
    # overflow guards are useless at these magnitudes.
    m = torch.mul(u.real, u.real, out=out)
    return m.addcmul_(u.imag, u.imag).sqrt_()


def _mirror_length(raw_runs) -> int:
    """How many of the lowest rfft bins conjugate runs read (the length of the reversed copy)."""
    return max([s0 + n for _, s0, n, conj, _, _ in raw_runs if conj], default=0)
