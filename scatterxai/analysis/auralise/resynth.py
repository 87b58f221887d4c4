"""Resynthesise the part of a note that a relevance map keeps (auralisation, ``docs/analysis.md``,
"Auralisation"; after Choi et al. 2016).

Scattering has no closed-form inverse, so the note is rebuilt from its first-order wavelet signals, whose
envelopes are split into the pieces that the scattering paths measure:

1. **Carrier bands.**  ``U1(λ1) = x ∗ ψ_λ1 = e · c`` with envelope ``e = |U1|`` and carrier ``c = U1 / |U1|``
   (unit modulus, original phase; c = 0 where U1 = 0).
2. **Envelope split.**  ``e = e ∗ φ ∗ φ̃ + Σ_λ2 Re(e ∗ ψ_λ2 ∗ ψ̃_λ2)``: the low-pass part matches the S1 path
   (λ1) and each band matches the S2 path (λ1, λ2).  ``φ`` and ``ψ_λ2`` are Kymatio's own low-pass and
   second-order filters; the duals divide by the Littlewood–Paley sum of that bank *including φ*, so that
   in Fourier the parts are ``ê(ω) · h_b(ω)`` with ``h_b = ½(ĝ_b(ω)² + ĝ_b(−ω)²) / LP2(ω)`` and
   ``Σ_b h_b = 1``: with all weights 1 the split is exact.
3. **Weighting.**  ``ê = Σ_b w_b · part_b`` with one weight per (λ1, part) cell taken from the path weights.
4. **Synthesis.**  ``y = Σ_λ1 Re(ψ̃_λ1 ∗ (ê · c))`` with ``ψ̃ = ψ̂ / LP1``, ``LP1(ω) = ½ Σ (ψ̂(ω)² + ψ̂(−ω)²)``,
   which inverts the first-order bank exactly for a real x (``x = Σ Re(ψ̃ ∗ x ∗ ψ)``) wherever it covers ω.

Design choices
--------------
* **Filters**: Kymatio's ``scattering_filter_factory`` called with the padded length and constants of
  ``ScatteringBase1D.build`` for the configuration (level 0, the full-rate filters).  Filter indices are
  Kymatio's ``n1``, ``n2`` of :func:`path_table`.  Built in float64 (≈ 6 s for the paper's configuration),
  the filters on their supports are kept in the on-disk cache (:mod:`scatterxai.scattering.cache`, kind
  ``auralise-bank``, ~75 MB for the paper's configuration), so that a later process reads them in a
  fraction of a second; :func:`prepare_bank` fills it (``scatterxai run`` does so in the background).
* **Rate**: like Kymatio, each carrier band is processed subsampled, by the largest power of two D at which
  the spectrum of U1 (ψ̂1's support down to 1e-13 of its peak) folds without overlap into at most a quarter
  of the decimated band; U1 is then exact on its samples, and only the far tail of |U1|'s spectrum (above
  the decimated Nyquist) aliases, as in Kymatio's own S2.  The envelope split is the same partition
  restricted to the decimated bins.  A band whose weights are all 1 is not split at all (Σ h_b = 1).
* **Borders**: the signal is reflect-padded exactly as Kymatio pads it, processed circularly at the padded
  length and cropped back to N samples.
* **Coverage floor**: both Littlewood–Paley sums are clipped below at ``1e-3`` of their maximum before
  dividing, so frequencies that a bank hardly covers (below the lowest ψ1, within a few Hz of DC or of
  Nyquist) are attenuated rather than amplified.  Elsewhere all-ones resynthesis is exact up to rounding.
* **Parts that no kept path describes** — every part of a carrier band with λ1 < ``fmin_hz``, and envelope
  bands with j2 ≤ j1 (rates above what Kymatio computes for that λ1) — take the weight ``outside``.
  :func:`auralise` uses ``outside = 0`` for the relevant part (it holds *only* what the map keeps),
  ``outside = 1`` for the complement and the reference, so that relevant + complement = reference.
* **λ2 resolution**: with Q2 = 2 neighbouring λ2 filters overlap, so a modulation at a λ2 centre is shared
  by the nearest band (h ≈ 0.82 at 8 Hz for ``sr = 8000, J = 11``) and its two half-octave neighbours
  (≈ 0.09 each): keeping only the nearest λ2 column keeps ≈ 82 % of an AM depth, the three nearest ≈ 100 %.
  Hence **"keeping the band of a rate f_m"** (:func:`band_weights`) means the S1 terms (the envelopes'
  low-pass part) plus every S2 path whose λ2 lies within ±½ octave of f_m — the octave band centred on
  f_m, two or three λ2 columns at Q2 = 2 —, at every λ1.  It keeps 95–100 % of an AM depth wherever f_m
  falls between λ2 centres (0.76–0.80 of 0.8 for 6–11.3 Hz at ``sr = 8000, J = 11``; tested).
* **Weights** are in [0, 1]; :func:`relevance_mask` makes them from a local map as
  ``max(R, 0) / max_paths max(R, 0)`` (default), i.e. the most relevant path is kept whole.
* **Limitation**: the carrier keeps the original phase, so frequency modulation (vibrato, trill) lives in
  ``c`` and is not removed by zeroing S2 weights; only envelope (amplitude) modulation is selected by λ2.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import numbers
from dataclasses import dataclass
from typing import NamedTuple, Optional, Tuple

import numpy as np
from kymatio.scattering1d.filter_bank import scattering_filter_factory
from kymatio.scattering1d.frontend.base_frontend import ScatteringBase1D

from ...errors import ParameterError
from ...scattering import ScatteringConfig, path_table
from ...scattering.cache import cache_key, cache_missing, cached

__all__ = [
    "LP_FLOOR",
    "MASK_MODES",
    "Auralisation",
    "auralise",
    "auralise_maps",
    "band_energy_share",
    "band_weights",
    "energy_share",
    "envelope_modulation",
    "relevance_mask",
    "resynthesise",
    "spectral_centroid_hz",
]

logger = logging.getLogger("scatterxai")

#: Littlewood–Paley sums are clipped below at this fraction of their maximum before dividing
LP_FLOOR = 1e-3
#: filter values below this fraction of a filter's peak are dropped from its stored support
_SUPPORT_TOL = 1e-13


@dataclass(frozen=True)
class _Bank:
    """Filters of one configuration on their supports (FFT bins of the padded signal)."""

    n_padded: int
    pad_left: int
    pad_right: int
    psi1_idx: list[np.ndarray]   # per n1: full-rate FFT bins where ψ̂1 is non-negligible
    psi1_val: list[np.ndarray]   # ψ̂1 on those bins
    dual1_val: list[np.ndarray]  # ψ̂1 / LP1 on those bins
    decimation: list[int]        # per n1: the envelope of band n1 is processed at rate 1 / decimation
    parts: dict[int, list[tuple[np.ndarray, np.ndarray]]]  # decimation → per part (φ, n2 = 0, 1…): (rfft bins, h)
    partition_exact: bool        # Σ_b h_b = 1 at every frequency (the LP2 floor never binds)

    @property
    def n_psi1(self) -> int:
        return len(self.psi1_idx)

    @property
    def n_parts(self) -> int:
        return len(self.parts[1])


def _support(h: np.ndarray):
    idx = np.flatnonzero(np.abs(h) > _SUPPORT_TOL * np.abs(h).max())
    return idx, h[idx]


def _symmetric_square(h: np.ndarray) -> np.ndarray:
    """½(ĥ(ω)² + ĥ(−ω)²) on the full FFT grid: what Re(g̃ ∗ h ∗ ·) passes for a real signal."""
    return 0.5 * (h ** 2 + np.roll(h[::-1], 1) ** 2)


def _divide_floored(num: np.ndarray, lp: np.ndarray) -> np.ndarray:
    return num / np.maximum(lp, LP_FLOOR * lp.max())


def _decimation(idx: np.ndarray, n: int) -> int:
    """Largest power of two D such that the cyclic arc holding ``idx`` spans at most n / (4D) bins.

    Then U1 = x ∗ ψ1 is exactly represented by its samples every D (its spectrum folds without overlap),
    and the main band of its envelope (|ω| ≤ the arc's width) lies below the decimated Nyquist n / (2D).
    """
    gaps = np.diff(np.concatenate([idx, idx[:1] + n]))
    span = n - gaps.max() + 1
    D = 1
    while n // (2 * D) >= 2 * span and D < n // 4:
        D *= 2
    return D


@functools.lru_cache(maxsize=2)
def _bank(config: ScatteringConfig) -> _Bank:
    """The bank of ``config``: from this process's memory, else the on-disk cache, else built (and stored)."""
    return cached(_bank_key(config), lambda: _build_bank(config), to_arrays=_bank_to_arrays,
                  from_arrays=lambda arrays: _bank_from_arrays(arrays, config))


def bank_missing(config: ScatteringConfig) -> bool:
    """Whether the on-disk cache could hold, but does not yet hold, the bank of ``config`` (False without a
    cache: there is nothing to prepare)."""
    return cache_missing(_bank_key(config))


def prepare_bank(config: dict) -> None:
    """Build the bank of ``config`` (a :meth:`ScatteringConfig.to_dict`) into the on-disk cache.  ``scatterxai
    run`` calls it in a background process before its explorer stage, which auralises notes."""
    _bank(ScatteringConfig(**config))


def _bank_key(config: ScatteringConfig) -> dict:
    with open(__file__, "rb") as fh:     # the bank's code: a cached bank is not reused once it changes
        code = hashlib.sha256(fh.read()).hexdigest()[:16]
    return cache_key("auralise-bank", config=config.to_dict(), code=code)


def _base(config: ScatteringConfig) -> ScatteringBase1D:
    base = ScatteringBase1D(**config.kymatio_kwargs())
    base.build()
    return base


def _build_bank(config: ScatteringConfig) -> _Bank:
    # Kymatio's own bank for this configuration (~6 s for the paper's)
    base = _base(config)
    n_pad = base._N_padded
    phi_f, psi1_f, psi2_f = scattering_filter_factory(n_pad, base.J, base.Q, base.T, r_psi=base.r_psi,
                                                      sigma0=base.sigma0, alpha=base.alpha, max_subsampling=0)
    psi1 = [np.asarray(p["levels"][0], dtype=np.float64) for p in psi1_f]
    lp1 = sum(_symmetric_square(h) for h in psi1)
    psi1_idx, psi1_val, dual1_val = [], [], []
    for h in psi1:
        idx, val = _support(h)
        psi1_idx.append(idx)
        psi1_val.append(val)
        dual1_val.append(_divide_floored(val, lp1[idx]))
    del psi1
    half = n_pad // 2 + 1
    sq = [_symmetric_square(np.asarray(p["levels"][0], dtype=np.float64))[:half]
          for p in [phi_f] + list(psi2_f)]
    lp2 = sum(sq)
    full = [_support(_divide_floored(s, lp2)) for s in sq]
    total = np.zeros(half)
    for idx, val in full:
        total[idx] += val
    decimation = [_decimation(idx, n_pad) for idx in psi1_idx]
    return _Bank(n_padded=n_pad, pad_left=base.pad_left, pad_right=base.pad_right, psi1_idx=psi1_idx,
                 psi1_val=psi1_val, dual1_val=dual1_val, decimation=decimation,
                 parts=_parts_by_rate(full, decimation, n_pad),
                 partition_exact=bool(np.abs(total - 1).max() < 1e-9))


def _parts_by_rate(full, decimation, n_pad):
    # at rate 1/D the envelope's rfft has bins 0 … n_pad / (2D): the same partition, restricted to them
    return {D: [(idx[idx <= n_pad // (2 * D)], val[idx <= n_pad // (2 * D)]) for idx, val in full]
            for D in sorted(set(decimation) | {1})}


def _bank_to_arrays(bank: _Bank) -> dict:
    """The bank as flat arrays (each list concatenated, with its offsets); the parts at rate 1 give the
    others."""
    full = bank.parts[1]
    return {"psi1_idx": np.concatenate(bank.psi1_idx), "psi1_val": np.concatenate(bank.psi1_val),
            "dual1_val": np.concatenate(bank.dual1_val),
            "psi1_offsets": np.cumsum([0] + [len(a) for a in bank.psi1_idx]),
            "parts_idx": np.concatenate([i for i, _ in full]), "parts_val": np.concatenate([v for _, v in full]),
            "parts_offsets": np.cumsum([0] + [len(i) for i, _ in full]),
            "decimation": np.asarray(bank.decimation, dtype=np.int64),
            "padding": np.asarray([bank.n_padded, bank.pad_left, bank.pad_right], dtype=np.int64),
            "partition_exact": np.asarray(bank.partition_exact)}


def _bank_from_arrays(arrays: dict, config: ScatteringConfig) -> _Bank:
    """The inverse of :func:`_bank_to_arrays`, checked against ``config`` (raises on any inconsistency: the
    cache then rebuilds the bank)."""
    base = _base(config)
    padding = [int(v) for v in arrays["padding"]]
    if padding != [base._N_padded, base.pad_left, base.pad_right]:
        raise ValueError(f"padding {padding} is not the configuration's")

    def split(kind, *names):
        offsets = arrays[f"{kind}_offsets"]
        if offsets[0] != 0 or np.any(np.diff(offsets) < 0) or any(len(arrays[n]) != offsets[-1] for n in names):
            raise ValueError(f"inconsistent {kind} offsets")
        return [np.split(arrays[n], offsets[1:-1]) for n in names]

    psi1_idx, psi1_val, dual1_val = split("psi1", "psi1_idx", "psi1_val", "dual1_val")
    parts_idx, parts_val = split("parts", "parts_idx", "parts_val")
    decimation = [int(d) for d in arrays["decimation"]]
    if len(decimation) != len(psi1_idx):
        raise ValueError(f"{len(decimation)} decimations for {len(psi1_idx)} first-order filters")
    n_pad = padding[0]
    return _Bank(n_padded=n_pad, pad_left=padding[1], pad_right=padding[2], psi1_idx=psi1_idx, psi1_val=psi1_val,
                 dual1_val=dual1_val, decimation=decimation,
                 parts=_parts_by_rate(list(zip(parts_idx, parts_val)), decimation, n_pad),
                 partition_exact=bool(arrays["partition_exact"]))


def _check_config(config) -> ScatteringConfig:
    if not isinstance(config, ScatteringConfig):
        raise ParameterError(f"config must be a ScatteringConfig, got {type(config).__name__}")
    return config


def _check_signal(x, config: ScatteringConfig) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "iuf":
        raise ParameterError(f"x must be a real numeric array, got dtype {x.dtype}")
    if x.shape != (config.N,):
        raise ParameterError(f"x must have shape (N,) = ({config.N},) for this configuration, got {x.shape}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise ParameterError("x contains NaN or inf values")
    return x


def _check_fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ParameterError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _weight_grid(weights, config: ScatteringConfig, outside: float, n_psi1: int, n_parts: int) -> np.ndarray:
    """Path weights (C,) → one weight per (n1, part) cell [shape=(n_psi1, 1 + n_psi2)]; part 0 is φ."""
    table = path_table(config)
    w = np.asarray(weights)
    if w.dtype.kind not in "iufb" or w.shape != (len(table),):
        raise ParameterError(f"weights must be a real array of shape (C,) = ({len(table)},) aligned with "
                             f"path_table(config), got shape {w.shape} and dtype {w.dtype}")
    w = w.astype(np.float64)
    if not np.isfinite(w).all() or w.min() < 0 or w.max() > 1:
        raise ParameterError(f"weights must lie in [0, 1], got values in [{np.nanmin(w)}, {np.nanmax(w)}]")
    grid = np.full((n_psi1, n_parts), outside)
    grid[table.n1, np.where(table.order == 1, 0, table.n2 + 1)] = w
    return grid


def _resynthesise_many(x: np.ndarray, grids: np.ndarray, bank: _Bank) -> np.ndarray:
    """Resynthesis of x for several weight grids at once [shape=(S, n_psi1, n_parts)] → (S, N)."""
    n_pad, n_sets = bank.n_padded, grids.shape[0]
    X = np.fft.fft(np.pad(x, (bank.pad_left, bank.pad_right), mode="reflect"))
    Z = np.zeros((n_sets, n_pad), dtype=np.complex128)
    for n1 in range(bank.n_psi1):
        rows = grids[:, n1, :]
        idx, D = bank.psi1_idx[n1], bank.decimation[n1]
        spec = X[idx] * bank.psi1_val[n1]
        whole = (rows == 1).all(axis=1) & bank.partition_exact
        for s in np.flatnonzero(whole):
            # all weights 1: ê = e since the parts sum to 1, so ê·c = U1, whose spectrum is ``spec``
            Z[s, idx] += spec * bank.dual1_val[n1]
        todo = np.flatnonzero(~whole & rows.any(axis=1))
        if todo.size == 0:
            continue
        # U1 sampled every D: its spectrum folded onto n_pad / D bins (no overlap, see _decimation)
        m = n_pad // D
        fold = idx % m
        spec_d = np.zeros(m, dtype=np.complex128)
        spec_d[fold] = spec / D
        U = np.fft.ifft(spec_d)
        e = np.abs(U)
        c = np.divide(U, e, out=np.zeros_like(U), where=e > 0)
        E = np.fft.rfft(e)
        parts = bank.parts[D]
        for s in todo:
            gain = np.zeros(m // 2 + 1)
            for b in np.flatnonzero(rows[s]):
                gain[parts[b][0]] += rows[s, b] * parts[b][1]
            V = np.fft.fft(np.fft.irfft(E * gain, n=m) * c)
            # unfold: the kept band of ê·c (ψ̃1's support) maps one-to-one onto the folded bins
            Z[s, idx] += D * V[fold] * bank.dual1_val[n1]
    y = np.fft.ifft(Z, axis=-1).real
    return y[:, bank.pad_left:bank.pad_left + x.shape[0]]


def resynthesise(x: np.ndarray, weights: np.ndarray, config: ScatteringConfig, *, outside: float = 0.0) -> np.ndarray:
    """Rebuild a note keeping each scattering path's share of its envelope in proportion to a weight.

    Parameters
    ----------
    x : np.ndarray [shape=(N,)]
        Prepared signal of exactly ``config.N`` samples (any real dtype; computed in float64).
    weights : np.ndarray [shape=(C,)]
        Weight in [0, 1] of each kept path, aligned with :func:`scatterxai.scattering.path_table`: an S1
        path (λ1) weighs the low-pass part of the envelope of carrier band λ1, an S2 path (λ1, λ2) its λ2
        band.
    config : ScatteringConfig
        Scattering configuration whose Kymatio filter bank is used.
    outside : float in [0, 1]
        Weight of the parts no kept path describes (carrier bands with λ1 < ``config.fmin_hz``; envelope
        bands with j2 ≤ j1).  0 keeps only what the weights select; 1 keeps these parts whole.

    Returns
    -------
    y : np.ndarray [shape=(N,), float64]
        Same scale as ``x``: all-ones weights with ``outside=1`` return ``x`` (band-limited to the first-order
        bank's coverage).  Linear in the weights.

    Notes
    -----
    Builds Kymatio's filter bank once per configuration (~6 s for the paper's), then reads it from the
    on-disk cache (module docstring, "Filters").
    """
    config = _check_config(config)
    x = _check_signal(x, config)
    bank = _bank(config)
    grid = _weight_grid(weights, config, _check_fraction(outside, "outside"), bank.n_psi1, bank.n_parts)
    return _resynthesise_many(x, grid[None], bank)[0]


def band_weights(config: ScatteringConfig, rate_hz: float, *, octaves: float = 0.5,
                 s1: bool = True) -> np.ndarray:
    """Path weights that keep the modulation band of ``rate_hz`` (see "λ2 resolution" above).

    Parameters
    ----------
    config : ScatteringConfig
    rate_hz : float
        Modulation rate f_m (Hz).
    octaves : float
        Half-width of the band: S2 paths with |log2(λ2 / f_m)| ≤ ``octaves`` get weight 1.
    s1 : bool
        Also keep the S1 terms (the low-pass part of every envelope, without which a band is a modulation
        without a carrier level).

    Returns
    -------
    weights : np.ndarray [shape=(C,), float64]
        0 or 1, aligned with ``path_table(config)``.
    """
    table = path_table(_check_config(config))
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, numbers.Real) or not rate_hz > 0:
        raise ParameterError(f"rate_hz must be a positive number of Hz, got {rate_hz!r}")
    if isinstance(octaves, bool) or not isinstance(octaves, numbers.Real) or not octaves > 0:
        raise ParameterError(f"octaves must be a positive number, got {octaves!r}")
    s2 = table.order == 2
    with np.errstate(invalid="ignore", divide="ignore"):
        near = np.abs(np.log2(np.where(s2, table.lambda2_hz, 1.0) / rate_hz)) <= octaves + 1e-12
    return ((s2 & near) | (bool(s1) & (table.order == 1))).astype(np.float64)


def _positive(local):
    return np.maximum(local, 0.0)


#: how a local map is turned into a non-negative score per path before normalisation
MASK_MODES = {"positive": _positive, "absolute": np.abs}


def relevance_mask(local_map: np.ndarray, *, mode: str = "positive", top: Optional[int] = None) -> np.ndarray:
    """Path weights in [0, 1] from a local relevance map.

    Parameters
    ----------
    local_map : np.ndarray [shape=(C,)]
        One relevance value per kept path (time average of R, :func:`scatterxai.maps.local_map`).
    mode : {"positive", "absolute"}
        Score of a path: ``max(R, 0)`` (what speaks *for* the explained class) or ``|R|``.
    top : int or None
        None: weights = score / max score (the most relevant path gets 1).  An int k ≥ 1: binary mask,
        1 on the k paths of highest score (only paths with a score > 0), 0 elsewhere.

    Returns
    -------
    weights : np.ndarray [shape=(C,), float64]
        All zeros (with a log warning) if no path has a score > 0.
    """
    local = np.asarray(local_map)
    if local.ndim != 1 or local.dtype.kind not in "iuf" or local.size == 0:
        raise ParameterError(f"local_map must be a non-empty real array of shape (C,), got shape "
                             f"{local.shape} and dtype {local.dtype}")
    if not np.isfinite(local).all():
        raise ParameterError("local_map contains NaN or inf values")
    if mode not in MASK_MODES:
        raise ParameterError(f"mode must be one of {sorted(MASK_MODES)}, got {mode!r}")
    score = MASK_MODES[mode](local.astype(np.float64))
    if score.max() <= 0:
        logger.warning("relevance_mask: no path has a %s score > 0; the mask is empty", mode)
        return np.zeros_like(score)
    if top is None:
        return score / score.max()
    if isinstance(top, bool) or not isinstance(top, (numbers.Integral, np.integer)) or top < 1:
        raise ParameterError(f"top must be None or an integer >= 1, got {top!r}")
    weights = np.zeros_like(score)
    keep = np.argsort(-score, kind="stable")[:int(top)]
    weights[keep[score[keep] > 0]] = 1.0
    return weights


class Auralisation(NamedTuple):
    """Three signals of one note, same length and scale: ``relevant + complement == reference``."""

    relevant: np.ndarray
    complement: np.ndarray
    reference: np.ndarray


def auralise(x: np.ndarray, local_map: np.ndarray, config: ScatteringConfig, *, mode: str = "positive",
             top: Optional[int] = None) -> Auralisation:
    """What the network used, what it did not, and the all-ones resynthesis they add up to.

    Parameters
    ----------
    x : np.ndarray [shape=(N,)]
        Prepared note of ``config.N`` samples.
    local_map : np.ndarray [shape=(C,)]
        Local relevance map of the note, aligned with ``path_table(config)``.
    config : ScatteringConfig
    mode, top
        Passed to :func:`relevance_mask`.

    Returns
    -------
    Auralisation
        ``relevant``: weights w, parts outside the map at 0; ``complement``: weights 1 − w, parts outside the
        map at 1; ``reference``: all weights 1 (≈ x).  Each [shape=(N,), float64], on the scale of ``x``
        (no normalisation), so that energies compare directly.
    """
    config = _check_config(config)
    x = _check_signal(x, config)
    weights = relevance_mask(local_map, mode=mode, top=top)
    bank = _bank(config)
    grids = np.stack([_weight_grid(weights, config, 0.0, bank.n_psi1, bank.n_parts),
                      _weight_grid(1.0 - weights, config, 1.0, bank.n_psi1, bank.n_parts),
                      _weight_grid(np.ones_like(weights), config, 1.0, bank.n_psi1, bank.n_parts)])
    return Auralisation(*_resynthesise_many(x, grids, bank))


def auralise_maps(x: np.ndarray, local_maps: np.ndarray, config: ScatteringConfig, *, mode: str = "positive",
                  top: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The relevant parts of one note for several maps (e.g. one per attribution method), and the reference.

    The note's wavelet decomposition (its carrier bands and their envelopes) is computed once and re-weighted
    per map, so M maps cost one decomposition plus M weightings rather than M calls of :func:`auralise`; the
    reference (all weights 1) costs almost nothing.  The complement of map m is ``reference − relevant[m]``:
    the resynthesis is linear in the weights, so this equals :func:`auralise`'s complement up to rounding.

    Parameters
    ----------
    x : np.ndarray [shape=(N,)]
        Prepared note of ``config.N`` samples.
    local_maps : np.ndarray [shape=(M, C)]
        Local relevance maps aligned with ``path_table(config)``.
    config : ScatteringConfig
    mode, top
        Passed to :func:`relevance_mask`.

    Returns
    -------
    reference : np.ndarray [shape=(N,), float64]
    relevant : np.ndarray [shape=(M, N), float64]
        On the scale of ``x``, as in :func:`auralise`.
    """
    config = _check_config(config)
    x = _check_signal(x, config)
    maps = np.asarray(local_maps)
    if maps.ndim != 2:
        raise ParameterError(f"local_maps must have shape (M, C), got {maps.shape}")
    bank = _bank(config)
    grids = [_weight_grid(np.ones(maps.shape[1]), config, 1.0, bank.n_psi1, bank.n_parts)]
    grids += [_weight_grid(relevance_mask(m, mode=mode, top=top), config, 0.0, bank.n_psi1, bank.n_parts)
              for m in maps]
    y = _resynthesise_many(x, np.stack(grids), bank)
    return y[0], y[1:]


# --- measurements of what a resynthesised part keeps ------------------------------------------------------

def _check_audio(y, name: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iuf" or y.size < 2:
        raise ParameterError(f"{name} must be a real array of shape (n,) with n >= 2, got shape {y.shape} "
                             f"and dtype {y.dtype}")
    if not np.isfinite(y).all():
        raise ParameterError(f"{name} contains NaN or inf values")
    return y.astype(np.float64)


def _check_rate(sr) -> float:
    if isinstance(sr, bool) or not isinstance(sr, numbers.Real) or not sr > 0:
        raise ParameterError(f"sr must be a positive number of Hz, got {sr!r}")
    return float(sr)


def _power_spectrum(y: np.ndarray, sr: float):
    return np.fft.rfftfreq(y.size, 1.0 / sr), np.abs(np.fft.rfft(y)) ** 2


def energy_share(y: np.ndarray, ref: np.ndarray) -> float:
    """Energy of ``y`` relative to ``ref``: Σ y² / Σ ref² (e.g. relevant part over reference)."""
    y, ref = _check_audio(y), _check_audio(ref, "ref")
    if y.shape != ref.shape:
        raise ParameterError(f"y and ref must have the same shape, got {y.shape} and {ref.shape}")
    total = float(np.sum(ref ** 2))
    if total == 0:
        raise ParameterError("ref has zero energy; pass the reference resynthesis of a non-silent note")
    return float(np.sum(y ** 2)) / total


def spectral_centroid_hz(y: np.ndarray, sr: float) -> float:
    """Energy-weighted mean frequency of the whole signal, Σ f |Y(f)|² / Σ |Y(f)|² (Hz); NaN if silent.

    Power weighting (not librosa's magnitude weighting) so that it agrees with :func:`energy_share` and
    :func:`band_energy_share`: it is where the kept energy lies.
    """
    f, p = _power_spectrum(_check_audio(y), _check_rate(sr))
    total = p.sum()
    return float(np.sum(f * p) / total) if total > 0 else float("nan")


def band_energy_share(y: np.ndarray, sr: float, f_max: float, *, f_min: float = 0.0) -> float:
    """Share of the energy of ``y`` at frequencies f_min ≤ f < f_max (Hz); NaN if ``y`` is silent."""
    sr = _check_rate(sr)
    if not (isinstance(f_max, numbers.Real) and isinstance(f_min, numbers.Real) and 0 <= f_min < f_max):
        raise ParameterError(f"need 0 <= f_min < f_max (Hz), got f_min={f_min!r}, f_max={f_max!r}")
    f, p = _power_spectrum(_check_audio(y), sr)
    total = p.sum()
    if total == 0:
        return float("nan")
    return float(p[(f >= f_min) & (f < f_max)].sum() / total)


def envelope_modulation(y: np.ndarray, sr: float, *, fmin: float = 2.0, fmax: float = 40.0) -> Tuple[float, float]:
    """Rate and depth of the strongest amplitude modulation (``docs/analysis.md``, "Descriptors").

    The Hilbert envelope E(t) = |y + i·H(y)| is Hann-windowed and its spectrum zero-padded ×8 (so that the
    peak is read within 1/16 of a bin); the rate is the spectral peak f_m in [fmin, fmax] Hz and the depth
    2|E(f_m)| / E(0), which equals m for E = A(1 + m cos 2π f_m t).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
    sr : float
        Sample rate (Hz).
    fmin, fmax : float
        Search band of the modulation rate (Hz).

    Returns
    -------
    rate_hz, depth : float
        NaN, NaN if ``y`` is silent.
    """
    from scipy.signal import hilbert

    y, sr = _check_audio(y), _check_rate(sr)
    if not (isinstance(fmin, numbers.Real) and isinstance(fmax, numbers.Real) and 0 < fmin < fmax < sr / 2):
        raise ParameterError(f"need 0 < fmin < fmax < sr/2 = {sr / 2} Hz, got fmin={fmin!r}, fmax={fmax!r}")
    env = np.abs(hilbert(y)) * np.hanning(y.size)
    n_fft = 8 * (1 << int(np.ceil(np.log2(y.size))))
    spec = np.abs(np.fft.rfft(env, n=n_fft))
    f = np.fft.rfftfreq(n_fft, 1.0 / sr)
    if spec[0] == 0:
        return float("nan"), float("nan")
    band = np.flatnonzero((f >= fmin) & (f <= fmax))
    if band.size == 0:
        raise ParameterError(f"the band [{fmin}, {fmax}] Hz holds no frequency bin for n = {y.size} at "
                             f"sr = {sr} Hz; widen it")
    k = band[np.argmax(spec[band])]
    return float(f[k]), float(2.0 * spec[k] / spec[0])
