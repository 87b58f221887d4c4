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
  through one FFT call (for long CPU transforms, one call per row or one for all, whichever this process
  measured faster: :class:`_LongFFTChoice`); the
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
filter construction happens once for both methods.  The plan (:mod:`scatterxai.scattering.plan`, pure
numpy) is made from that bank once and kept in the on-disk cache (:mod:`scatterxai.scattering.cache`),
so a later process needs neither the bank nor the planning.  In float32 both implementations round
differently: they agree to ~1e-6 on typical paths and to ~1e-4 on the weakest ones (paths ~1e-7 below
the strongest), which is also how far Kymatio's float32 output is from its float64 output there.

All operations are plain torch operations on the module's device (no numpy, no host copies in
``forward``), so the module runs unchanged on CUDA.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

from .._util.validate import check_positive_int
from ..errors import ParameterError
from . import config as _config_module
from . import plan as _plan_module
from .cache import CacheDir, cache_key, cache_missing, cached
from .config import ScatteringConfig, path_table
from .kymatio import kymatio_module
from .plan import (
    FastPlan,
    _Filter,
    _Group,
    lowpass_frames,
    lowpass_freq,
    plan_fast,
    plan_from_arrays,
    plan_to_arrays,
    support_runs,
)

__all__ = ["FastScattering", "FastPlan", "plan_fast", "cached_plan", "plan_missing", "prepare_plan", "support_runs",
           "lowpass_frames", "lowpass_freq", "DEFAULT_RTOL", "LOWPASS_RTOL"]

#: relative magnitude below which filter bins are dropped, per dtype: the dropped tails are far below the
#: rounding of a float32 FFT (~1e-7 of the spectrum's norm) resp. of float64 arithmetic
DEFAULT_RTOL = {torch.float32: 1e-10, torch.float64: 1e-18}
#: the same for the frame offsets of the low-pass (:func:`lowpass_frames`): Kymatio's float32 low-pass
#: has a rounding floor of ~1e-9 of its peak in time, so in float32 the offsets below 1e-8 (≈ 20 of 64
#: are kept on the paper configuration) are float32 noise; float64 keeps them all, to match Kymatio run
#: in float64 with the same float32 filter values
LOWPASS_RTOL = {torch.float32: 1e-8, torch.float64: 0.0}

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def _plan_code_digest() -> str:
    """sha256 of the planning code (``plan.py``, and ``config.py``, which selects the paths): a cached plan
    is not reused once that code changes."""
    h = hashlib.sha256()
    try:
        for module in (_plan_module, _config_module):
            with open(module.__file__, "rb") as fh:
                h.update(fh.read())
    except OSError:
        from .. import __version__
        return f"scatterxai-{__version__}"
    return h.hexdigest()


def _plan_key(config: ScatteringConfig, rtol: float, lowpass_rtol: float) -> dict:
    return cache_key("fast-plan", config=config.to_dict(), rtol=float(rtol), lowpass_rtol=float(lowpass_rtol),
                     weights_dtype="float64", plan_code=_plan_code_digest())


def cached_plan(config: ScatteringConfig, *, rtol: float, lowpass_rtol: float, cache_dir: CacheDir = None) -> FastPlan:
    """:func:`plan_fast` of ``config`` 's filter bank and path table, read from the on-disk cache when a
    file of the same key exists (:mod:`scatterxai.scattering.cache`; the plan of the paper configuration is
    ~50 MB), else planned and stored."""
    key = _plan_key(config, rtol, lowpass_rtol)
    return cached(key, lambda: plan_fast(kymatio_module(config, cache_dir=cache_dir), path_table(config),
                                         rtol=rtol, lowpass_rtol=lowpass_rtol),
                  to_arrays=plan_to_arrays, from_arrays=lambda arrays: _check_plan(plan_from_arrays(arrays), config),
                  cache_dir=cache_dir)


def plan_missing(config: ScatteringConfig, cache_dir: CacheDir = None) -> bool:
    """Whether the on-disk cache could hold, but does not yet hold, the float32 plan of ``config`` that
    ``FastScattering.build`` reads (False without a cache: there is nothing to prepare)."""
    return cache_missing(_plan_key(config, DEFAULT_RTOL[torch.float32], LOWPASS_RTOL[torch.float32]), cache_dir)


def prepare_plan(config: dict) -> None:
    """Plan ``config`` (a :meth:`ScatteringConfig.to_dict`) in float32 into the on-disk cache, building
    Kymatio's filter bank on the way (≈ 11 s of one core for the paper configuration).  ``scatterxai run``
    calls it in a background process while it synthesises the corpus, so that the extraction workers read
    the plan instead of each building it."""
    cached_plan(ScatteringConfig(**config), rtol=DEFAULT_RTOL[torch.float32],
                lowpass_rtol=LOWPASS_RTOL[torch.float32])


def _check_plan(plan: FastPlan, config) -> FastPlan:
    table = path_table(config)
    if (plan.N, plan.n_channels, plan.n_frames) != (config.N, len(table), table.n_frames):
        raise ParameterError(f"the plan is for N={plan.N}, {plan.n_channels} paths, {plan.n_frames} frames; "
                             f"{config} needs N={config.N}, {len(table)} paths, {table.n_frames} frames")
    return plan


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

    def __init__(self, plan: FastPlan, *, device: torch.device, dtype: torch.dtype, block_bytes: int = 2 ** 23,
                 group_bytes: int = 2 ** 25):
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
    def build(cls, config: ScatteringConfig, device: torch.device, dtype: torch.dtype, *,
              rtol: Optional[float] = None, lowpass_rtol: Optional[float] = None, cache_dir: CacheDir = None,
              **kwargs: int) -> FastScattering:
        """The module for a :class:`~scatterxai.scattering.ScatteringConfig` on ``device``: the plan of
        Kymatio's filter bank (:func:`cached_plan`) and its executor.

        ``rtol`` / ``lowpass_rtol``: filter bins (low-pass frame offsets) below this times the peak are
        dropped (defaults :data:`DEFAULT_RTOL`, :data:`LOWPASS_RTOL`; 0 keeps all).  ``cache_dir``: see
        :func:`scatterxai.scattering.cache.resolve_cache_dir`.  ``kwargs``: ``block_bytes``,
        ``group_bytes`` (see the class)."""
        if dtype not in _COMPLEX:
            raise ParameterError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        plan = cached_plan(config, rtol=DEFAULT_RTOL[dtype] if rtol is None else rtol,
                           lowpass_rtol=LOWPASS_RTOL[dtype] if lowpass_rtol is None else lowpass_rtol,
                           cache_dir=cache_dir)
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


#: on CPU, complex FFTs at least this long are timed both ways (:class:`_LongFFTChoice`); shorter ones always
#: run batched, which was faster on every CPU measured
_ROWWISE_FFT_MIN = 2 ** 17


class _LongFFTChoice:
    """For each length M ≥ :data:`_ROWWISE_FFT_MIN` on CPU: one ``ifft`` call per row, or one for all rows?

    Which is faster depends on the CPU and on MKL.  Measured with torch 2.14's MKL, one thread per process:
    on a Xeon with AVX-512 one row per call took 5–8 ns per point instead of 7–12 batched; on an AMD EPYC
    batching 8 rows was faster (M = 2**17: 5.5 instead of 7.1 ns per point in one process; the whole
    extraction, two processes at once: 0.257 instead of 0.307 s per note).  Both ways give bit-identical results (MKL
    transforms each row alike), so the choice changes only the time.  The first ``2 * trials`` calls of a
    length alternate between the two ways (batched first); the call's time per element is recorded, and from
    then on the way with the smaller median is used.  Per process, per length; no state on disk.
    """

    def __init__(self, trials: int = 3):
        self.trials = trials
        self.times: Dict[int, Tuple[List[float], List[float]]] = {}   # M → (batched, rowwise) s per element
        self.chosen: Dict[int, bool] = {}                              # M → rowwise?

    def rowwise(self, M: int) -> bool:
        """The way to run the next call of length ``M`` (True: one call per row)."""
        if M in self.chosen:
            return self.chosen[M]
        batched, rowwise = self.times.setdefault(M, ([], []))
        return len(rowwise) < len(batched)

    def record(self, M: int, rowwise: bool, seconds_per_element: float) -> None:
        """Record a timed call; decide once both ways have ``trials`` calls."""
        if M in self.chosen:
            return
        times = self.times.setdefault(M, ([], []))
        times[int(rowwise)].append(seconds_per_element)
        if min(len(times[0]), len(times[1])) >= self.trials:
            self.chosen[M] = statistics.median(times[1]) < statistics.median(times[0])


_LONG_FFT = _LongFFTChoice()


def _modulus_ifft(spectrum: torch.Tensor, m_out: int = 1, frames: slice = slice(None)) -> torch.Tensor:
    """``|ifft(spectrum)|`` along the last axis, cut into ``m_out`` frames of which ``frames`` are kept.

    Returns
    -------
    torch.Tensor [shape=(*spectrum.shape[:-1], n_kept_frames, M // m_out)], real (for the default
    ``m_out=1``: all of ``|ifft(spectrum)|``, shape (*spectrum.shape[:-1], 1, M)).
    """
    M = spectrum.shape[-1]
    if spectrum.device.type != "cpu" or M < _ROWWISE_FFT_MIN or spectrum.numel() == M:
        return _batched_modulus_ifft(spectrum, m_out, frames)
    rowwise = _LONG_FFT.rowwise(M)
    timed = M not in _LONG_FFT.chosen
    start = time.perf_counter() if timed else 0.0
    out = (_rowwise_modulus_ifft(spectrum, m_out, frames) if rowwise
           else _batched_modulus_ifft(spectrum, m_out, frames))
    if timed:
        _LONG_FFT.record(M, rowwise, (time.perf_counter() - start) / spectrum.numel())
    return out


def _batched_modulus_ifft(spectrum: torch.Tensor, m_out: int, frames: slice) -> torch.Tensor:
    M = spectrum.shape[-1]
    return _modulus(torch.fft.ifft(spectrum).view(*spectrum.shape[:-1], m_out, M // m_out)[..., frames, :])


def _rowwise_modulus_ifft(spectrum: torch.Tensor, m_out: int, frames: slice) -> torch.Tensor:
    M = spectrum.shape[-1]
    rows = spectrum.reshape(-1, M)
    kept = range(m_out)[frames]
    out = spectrum.real.new_empty(rows.shape[0], len(kept), M // m_out)
    for row, out_row in zip(rows, out):
        _modulus(torch.fft.ifft(row).view(m_out, M // m_out)[frames], out=out_row)
    return out.view(*spectrum.shape[:-1], len(kept), M // m_out)


def _modulus(u: torch.Tensor, out=None) -> torch.Tensor:
    # sqrt(re² + im²) like Kymatio's modulus; 2-3× faster on CPU than torch.abs or torch.hypot, whose
    # overflow guards are useless at these magnitudes.
    m = torch.mul(u.real, u.real, out=out)
    return m.addcmul_(u.imag, u.imag).sqrt_()
