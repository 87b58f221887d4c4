"""The fast path's plan: which filter bins, low-pass matrices and output channels the executor uses.

Pure numpy (no torch): :func:`plan_fast` reads a Kymatio filter bank and returns a :class:`FastPlan`,
which :class:`scatterxai.scattering.fast.FastScattering` executes (see that module for the method).
:func:`plan_to_arrays` / :func:`plan_from_arrays` turn a plan into plain named arrays and back, exactly,
for the on-disk cache (:mod:`scatterxai.scattering.cache`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Tuple

import numpy as np

from ..errors import ParameterError, ScatterXAIError

if TYPE_CHECKING:
    from kymatio.scattering1d.frontend.base_frontend import ScatteringBase1D

    from .config import PathTable

__all__ = ["FastPlan", "Run", "plan_fast", "support_runs", "lowpass_frames", "lowpass_freq", "plan_to_arrays",
           "plan_from_arrays"]


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


def support_runs(h: np.ndarray, m_dst: int, *, rtol: float) -> List[Tuple[int, int, int, bool, np.ndarray, bool]]:
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


def lowpass_frames(phi: np.ndarray, m_out: int, t0: int, n_frames: int, *,
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


def lowpass_freq(phi: np.ndarray, m_out: int, t0: int, n_frames: int, *, rtol: float) -> np.ndarray:
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


def plan_fast(k: ScatteringBase1D, table: PathTable, *, rtol: float, lowpass_rtol: float) -> FastPlan:
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


def _mirror_length(raw_runs) -> int:
    """How many of the lowest rfft bins conjugate runs read (the length of the reversed copy)."""
    return max([s0 + n for _, s0, n, conj, _, _ in raw_runs if conj], default=0)


# ------------------------------------------------------------------------------------- plan ↔ arrays

def _runs_list(f: _Filter) -> list:
    return [[r.d0, r.s0, r.n, int(r.conj), r.offset, int(r.accumulate)] for r in f.runs]


def plan_to_arrays(plan: FastPlan) -> Dict[str, np.ndarray]:
    """A plan as named numpy arrays: ``structure`` (the nested tuples as a JSON string), ``weights``,
    ``channels`` and one ``buffer:<name>`` per low-pass buffer; :func:`plan_from_arrays` inverts it exactly."""
    groups = [dict(m1=g.m1, filters=[_runs_list(f) for f in g.filters], lowpass=g.lowpass, channels=g.channels,
                   mirror=g.mirror, second=[dict(n_rows=s.n_rows, m2=s.m2, runs=_runs_list(s.filt),
                                                 lowpass=s.lowpass, channels=s.channels) for s in g.second])
              for g in plan.groups]
    head = dict(N=plan.N, pad_left=plan.pad_left, pad_right=plan.pad_right, n_frames=plan.n_frames,
                m_out=plan.m_out, n_channels=plan.n_channels, mirror=plan.mirror, rtol=plan.rtol, groups=groups,
                frames={k: None if v is None else [v.start, v.stop] for k, v in plan.frames.items()},
                buffers=sorted(plan.buffers))
    arrays = {"structure": np.array(json.dumps(head)), "weights": np.asarray(plan.weights),
              "channels": np.asarray(plan.channels)}
    arrays.update({f"buffer:{k}": np.asarray(v) for k, v in plan.buffers.items()})
    return arrays


def plan_from_arrays(arrays: Mapping[str, np.ndarray]) -> FastPlan:
    """The :class:`FastPlan` of :func:`plan_to_arrays` output, checked for consistency (raises
    :class:`ScatterXAIError` on any mismatch: every run reads weights, bins and channels that exist)."""
    head = json.loads(str(arrays["structure"]))
    weights, channels = np.asarray(arrays["weights"]), np.asarray(arrays["channels"])
    buffers = {k: np.asarray(arrays[f"buffer:{k}"]) for k in head["buffers"]}

    def check(ok, what):
        if not ok:
            raise ScatterXAIError(f"inconsistent fast-path plan: {what}")

    check(weights.ndim == 2 and weights.shape[1] == 2 and weights.dtype == np.float64, "weights")
    check(channels.ndim == 1 and channels.dtype == np.int64 and channels.size == head["n_channels"]
          and np.array_equal(np.sort(channels), np.arange(head["n_channels"])), "channels")

    def filt(runs, m_dst) -> _Filter:
        out = []
        for d0, s0, n, conj, offset, acc in runs:
            check(n > 0 and 0 <= d0 and d0 + n <= m_dst and s0 >= 0 and 0 <= offset
                  and offset + n <= len(weights), f"run {[d0, s0, n, offset]} on {m_dst} bins")
            out.append(Run(int(d0), int(s0), int(n), bool(conj), int(offset), bool(acc)))
        return _Filter(tuple(out))

    groups = []
    for g in head["groups"]:
        check(g["lowpass"] in buffers, f"low-pass buffer {g['lowpass']}")
        second = []
        for s in g["second"]:
            check(s["lowpass"] in buffers and s["lowpass"] + "_rows" in buffers
                  and s["lowpass"] in head["frames"], f"low-pass buffer {s['lowpass']}")
            second.append(_SecondOrder(int(s["n_rows"]), int(s["m2"]), filt(s["runs"], s["m2"]), s["lowpass"],
                                       int(s["channels"])))
        groups.append(_Group(int(g["m1"]), tuple(filt(r, g["m1"]) for r in g["filters"]), g["lowpass"],
                             int(g["channels"]), tuple(second), int(g["mirror"])))
    frames = {k: None if v is None else slice(int(v[0]), int(v[1])) for k, v in head["frames"].items()}
    return FastPlan(N=int(head["N"]), pad_left=int(head["pad_left"]), pad_right=int(head["pad_right"]),
                    n_frames=int(head["n_frames"]), m_out=int(head["m_out"]), n_channels=int(head["n_channels"]),
                    mirror=int(head["mirror"]), rtol=float(head["rtol"]), groups=tuple(groups), weights=weights,
                    channels=channels, buffers=buffers, frames=frames)
