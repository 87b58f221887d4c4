"""Per-note hand-crafted descriptors (``docs/analysis.md``, "Descriptors"): audio measurements and scattering
summaries.

Two pure functions:

* :func:`audio_descriptors` — from a mono signal at any sample rate: level, spectral shape (librosa), f0
  (librosa's pYIN) and the rate and depth of amplitude and frequency modulation, and two vectors — the mel
  spectrum and the envelope's modulation (AM depth) spectrum — measured on the audio, not on the model input;
* :func:`scattering_descriptors` — from one features row (raw scattering S (C, T), not log-compressed) and
  its path table: S1 band energies, the modulation spectrum M(λ2), its peak, the S2/S1 energy ratio.

:data:`DESCRIPTORS` names every output with its unit.  Definitions (ours where the literature leaves room):

Frames.  Spectral descriptors use STFT frames of ≈ 46 ms (2048 samples at 44.1 kHz; at other rates the
power of two nearest 46.4 ms), Hann window, hop a quarter frame, no centring.  A frame is *active* if its
power is within :data:`ACTIVE_DB` = 40 dB of the loudest frame's; per-note values are means over active
frames, so leading silence and the room tail do not count, and the selection does not depend on the gain.
The *active span* runs from the first to the last active frame; modulation and f0 are measured on it.

``rms_db``: 10 log10 of the mean power (mean of y², no window) of the active frames, in dB re a full-scale
square wave (a full-scale sine reads −3.01 dB), on the note as read — before any standardisation — so a gain
g adds exactly 20 log10 g.

``centroid_hz``, ``bandwidth_hz``, ``rolloff_hz``, ``flatness``: librosa's definitions on the STFT magnitude
(centroid: magnitude-weighted mean frequency; bandwidth: magnitude-weighted standard deviation about it;
roll-off: frequency below which 85 % of the magnitude sum lies; flatness: geometric / arithmetic mean of
the power spectrum, with a floor 100 dB below the note's loudest bin).  All gain-invariant.

``am_rate_hz``, ``am_depth``: E = |analytic signal| over the active span, decimated to ≈ 400 Hz (polyphase
low-pass, so that partial beats above 200 Hz do not alias into the band); Ẽ is E linearly detrended (the
note's level and slow drift would leak into the band through the window's side lobes), w a Hann window,
Ẽ_w(f) the Fourier transform of w·Ẽ.  Rate f_m: argmax of |Ẽ_w(f)| over :data:`MOD_BAND_HZ` = 2–40 Hz
(zero-padded FFT, refined by maximising |Ẽ_w(f)| continuously); depth: 2 |Ẽ_w(f_m)| / E_w(0).  For
(1 + m cos 2π f_m t) · carrier, rate f_m and depth m.

``mel_spectrum`` (vector, :data:`MEL_BANDS` values on :func:`mel_axis`): librosa's mel filter bank
(Slaney, :data:`MEL_BANDS` = 40 bands from C1 to :data:`MEL_FMAX_HZ` = 11,025 Hz, whatever the sample rate) on
the STFT power of the active frames, averaged over them, in dB re the note's loudest band (floor −100 dB):
the note's spectral envelope, gain-invariant; NaN for bands centred above the Nyquist frequency.

``envelope_spectrum`` (vector, :data:`ENVELOPE_BANDS` values on :func:`envelope_axis`): the AM depth
spectrum of the Hilbert envelope used for ``am_rate_hz`` — 2 |Ẽ_w(f)| / E_w(0), the depth of a sinusoidal
AM at f — maximised over each of :data:`ENVELOPE_BANDS` = 12 log-spaced bands spanning 2–40 Hz; NaN on
spans shorter than :data:`MIN_SPAN_S`.  A Fourier measurement of the broadband envelope, independent of the
scattering (whose S2 measures wavelet modulation per carrier band, the model's input).

``f0_hz``, ``fm_rate_hz``, ``fm_depth_cents``: librosa's pYIN and YIN in three steps, because pYIN over
C1–C8 at 10-cent resolution costs 4–10 s for a 6-s note (its Viterbi decoding is quadratic in the number
of pitch states).

1. Coarse: pYIN with 1-semitone states at :data:`PYIN_SR` = 44.1 kHz (the audio is resampled for pYIN only),
   frames of two periods of ``fmin``, hop half a frame; m = median f0 of the voiced frames (YIN's median if
   none is: with few states an unvoiced state wins easily, and a noisy flatterzunge may decode as
   unvoiced), refined by YIN on long frames.
2. Fine: pYIN with 10-cent states over m · 2^(±1/2) (a trill's upper note and a vibrato fit; an octave error
   of step 1 is not corrected) on a *commensurate grid*: the note is resampled to the rate near 44.1 kHz at
   which m's period is a whole number (≥ 32) of samples, and the hop is a whole number of periods (or a
   whole fraction of one, below 86 Hz) of at most :data:`PYIN_HOP_S` = 11.6 ms (512 samples at 44.1 kHz).
   The f0 contour is then sampled at ≥ 86 Hz (Nyquist ≥ 43 Hz: FM up to 40 Hz is resolvable, flatterzunge
   roughness included; a hop of 1024 at 44.1 kHz would stop at ≈ 20 Hz), and every frame starts at the same
   phase of a steady note.  This matters because librosa's YIN difference function lacks the frame-end
   energy term: its estimate is biased upwards by ≈ 60/n cents for a sine (≈ 15/n for a harmonic tone; n
   periods per frame) by an amount that depends on the phase at which the frame ends, so with an arbitrary
   hop the bias wobbles from frame to frame and reads as 2 (harmonic tone) to 11 cents (sine) of FM; on
   the grid a steady harmonic tone reads < 1 cent.  Frames span two periods of the lowest searched f0 and
   at least :data:`MIN_FRAME_S` = 10 ms: short, so as not to average FM away (20-Hz FM keeps ≈ 94 % of its
   depth, 30-Hz FM ≈ 87 %).
3. ``f0_hz``: median over the fine pass's voiced frames of YIN on long frames (16 periods, at most 0.25 s:
   bias ≲ 4 cents for a sine, < 1 cent for a harmonic tone).  NaN if no frame is voiced.

The FM contour is the fine pass's, with pYIN's 10-cent bins replaced by YIN's continuous short-frame values
where the two agree within 50 cents (so that a 5-cent vibrato is not quantised): c = 1200 log2(f0(t) /
f0_hz) over the voiced span, unvoiced gaps interpolated linearly, detrended, Hann-windowed; rate: peak of
|C_w(f)| in 2–40 Hz as for AM; depth: 2 |C_w(f_m)| / Σ w, the peak deviation in cents of the sinusoid at
f_m.  For f0(t) = f0 · 2^(d/1200 · sin 2π f_m t), rate f_m and depth d.

Cost (2 shared cores): ≈ 0.5 s for a 6-s note at mid pitch, up to ≈ 2 s for long notes below 60 Hz
(long frames), plus ≈ 1 s once per process (numba loads librosa's compiled functions from its cache next to
librosa), and ≈ 17 s of one core once per environment, the first time numba compiles them
(:func:`warm_up`).

Limits.  Rates need two cycles at 2 Hz: spans shorter than :data:`MIN_SPAN_S` = 1 s give NaN rates and
depths.  The envelope of a harmonic note is periodic at f0, and below 86 Hz the YIN wobble recurs at f0:
for notes below 40 Hz both fall inside the 2–40 Hz band.  An unmodulated note still returns the band's
largest peak (possibly at a band edge) with a small depth: read rates together with depths.  For a trill
``f0_hz`` is the median over both notes.  pYIN may lock onto a subharmonic (a flatterzunge modulated near
f0 / 3).  Per-frame descriptor series sampled at the scattering's frame rate (186 ms) cannot resolve
modulation (Nyquist ≈ 2.7 Hz): rates come from the audio or from λ2, never from such series.

Scattering descriptors (one features row S [shape=(..., C, T)], raw coefficients).  These are functions of
the model input (which is log1p(S / (c·μ)) of the same coefficients): a comparison of a layer with them
measures how much of the input the layer keeps, not what it learned about the sound —
:data:`FROM_MODEL_INPUT` names them, and the probe study says so next to every result that uses them:

* ``s1_energy`` — time mean of each S1 path, in path-table order (Kymatio's, λ1 decreasing); 74 values
  for the paper configuration: exactly the time average of the S1 input before its log compression;
* ``modulation_spectrum`` — M(λ2) = Σ_λ1 mean_t S2(λ1, λ2, t) for each distinct λ2, ascending
  (:func:`modulation_axis`): an exact sum of the S2 input before compression.  Kymatio computes a λ2 only
  for carriers with λ2 < λ1, so high λ2 sum fewer carriers;
* ``modulation_peak_hz`` — the λ2 of the largest M(λ2); NaN for silence;
* ``s2_s1_ratio`` — Σ S2² / Σ S1² over paths and frames ("energy" = sum of squared coefficients); gain-
  invariant, since scattering is 1-homogeneous.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NamedTuple

import librosa
import numpy as np
import scipy.fft
import scipy.optimize
import scipy.signal

from ...errors import ParameterError

if TYPE_CHECKING:
    from ...maps.grid import PathsLike

__all__ = [
    "warm_up",
    "ACTIVE_DB",
    "AUDIO_DESCRIPTORS",
    "AUDIO_VECTORS",
    "C1_HZ",
    "C8_HZ",
    "DESCRIPTORS",
    "ENVELOPE_BANDS",
    "FROM_MODEL_INPUT",
    "MEL_BANDS",
    "MEL_FMAX_HZ",
    "MIN_SPAN_S",
    "MOD_BAND_HZ",
    "PYIN_HOP_S",
    "PYIN_SR",
    "SCATTERING_DESCRIPTORS",
    "Descriptor",
    "audio_descriptors",
    "envelope_axis",
    "mel_axis",
    "modulation_axis",
    "scattering_descriptors",
]

logger = logging.getLogger("scatterxai")

#: default pYIN search range: C1 and C8 (Hz)
C1_HZ, C8_HZ = 32.703195662574829, 4186.009044809578
#: frames quieter than the loudest one by more than this (dB) are left out of per-note means
ACTIVE_DB = 40.0
#: band (Hz) in which modulation rates are sought
MOD_BAND_HZ = (2.0, 40.0)
#: shortest active (voiced) span, in seconds, for which AM (FM) rate and depth are measured
MIN_SPAN_S = 1.0
#: pYIN's nominal sample rate (Hz): the coarse pass runs at it, the fine pass near it (see _fine_grid)
PYIN_SR = 44100
#: hop of the fine pYIN pass (s): 512 samples at 44.1 kHz, contour sampled at 86 Hz
PYIN_HOP_S = 512 / 44100
#: f0_hz comes from YIN frames of this many periods of the note, but at most F0_MAX_FRAME_S seconds
F0_PERIODS, F0_MAX_FRAME_S = 16, 0.25
#: shortest frame of the fine pYIN pass (s): longer frames average fast FM away, shorter ones make
#: librosa's YIN bias fluctuate with the phase at which each frame ends
MIN_FRAME_S = 0.01
#: fewest samples per period of the note in the fine pYIN pass (YIN's parabolic interpolation is biased
#: on coarser grids: +15 cents at 3.9 kHz sampled at 44.1 kHz)
_MIN_PERIOD = 32
#: STFT frame length of the spectral descriptors (s): 2048 samples at 44.1 kHz
FRAME_S = 2048 / 44100
#: roll-off fraction
ROLL_PERCENT = 0.85
#: mel bands of ``mel_spectrum`` and their upper edge (Hz), the same at every sample rate
MEL_BANDS, MEL_FMAX_HZ = 40, 11025.0
#: log-spaced bands of ``envelope_spectrum`` over MOD_BAND_HZ
ENVELOPE_BANDS = 12
#: the Hilbert envelope is decimated to at least this rate (Hz) before its spectrum is taken
_ENV_SR = 400.0
#: zero-padding factor of the modulation spectra before the continuous refinement of the peak
_PAD = 8
#: YIN replaces pYIN's 10-cent-bin value where the two agree within this many cents
_YIN_AGREE_CENTS = 50.0


class Descriptor(NamedTuple):
    """Unit and meaning of one descriptor."""

    unit: str
    description: str


#: every descriptor, audio ones first, in output order
DESCRIPTORS: dict[str, Descriptor] = {
    "rms_db": Descriptor("dB FS", "level of the active frames as read (full-scale square wave = 0 dB)"),
    "centroid_hz": Descriptor("Hz", "spectral centroid (magnitude-weighted mean frequency), mean over active "
                                    "frames"),
    "bandwidth_hz": Descriptor("Hz", "spectral bandwidth (magnitude-weighted std about the centroid), mean "
                                     "over active frames"),
    "flatness": Descriptor("1", "spectral flatness (geometric / arithmetic mean of the power spectrum), mean "
                                "over active frames; 0 for a tone, 0.56 for white noise"),
    "rolloff_hz": Descriptor("Hz", "85 % spectral roll-off, mean over active frames"),
    "f0_hz": Descriptor("Hz", "fundamental frequency: median over pYIN's voiced frames (of long-frame YIN); "
                              "NaN if unvoiced"),
    "am_rate_hz": Descriptor("Hz", "peak of the Hilbert envelope's spectrum in 2–40 Hz"),
    "am_depth": Descriptor("1", "2 |E(f_m)| / E(0) of the Hilbert envelope E (m for (1 + m cos) · carrier)"),
    "fm_rate_hz": Descriptor("Hz", "peak of the spectrum of the detrended pYIN cents contour in 2–40 Hz"),
    "fm_depth_cents": Descriptor("cents", "peak deviation of the f0 contour's sinusoid at fm_rate_hz"),
    "mel_spectrum": Descriptor("dB", "mel band power of the audio's active frames re its loudest band (vector, "
                                     "40 bands C1–11025 Hz)"),
    "envelope_spectrum": Descriptor("1", "AM depth spectrum of the Hilbert envelope, the largest depth in each "
                                         "of 12 log-spaced bands over 2–40 Hz (vector)"),
    "s1_energy": Descriptor("scattering units", "time mean of each S1 path (vector, path-table order)"),
    "modulation_spectrum": Descriptor("scattering units", "M(λ2) = Σ_λ1 mean_t S2 (vector, one value per "
                                                          "distinct λ2, ascending)"),
    "modulation_peak_hz": Descriptor("Hz", "λ2 at the maximum of the modulation spectrum"),
    "s2_s1_ratio": Descriptor("1", "energy ratio Σ S2² / Σ S1² over paths and frames"),
}
#: the vector descriptors measured on the audio, and their lengths
AUDIO_VECTORS: dict[str, int] = {"mel_spectrum": MEL_BANDS, "envelope_spectrum": ENVELOPE_BANDS}
#: names returned by :func:`audio_descriptors` (scalars, then the vectors of AUDIO_VECTORS)
AUDIO_DESCRIPTORS: tuple[str, ...] = tuple(DESCRIPTORS)[:12]
#: names returned by :func:`scattering_descriptors`
SCATTERING_DESCRIPTORS: tuple[str, ...] = tuple(DESCRIPTORS)[12:]
#: descriptors that are functions of the model input (the scattering coefficients it compresses)
FROM_MODEL_INPUT: tuple[str, ...] = SCATTERING_DESCRIPTORS


def mel_axis() -> np.ndarray:
    """Centre frequencies (Hz) of the ``mel_spectrum`` bands [shape=(MEL_BANDS,)]."""
    return librosa.mel_frequencies(MEL_BANDS + 2, fmin=C1_HZ, fmax=MEL_FMAX_HZ)[1:-1]


def _envelope_edges() -> np.ndarray:
    return np.geomspace(MOD_BAND_HZ[0], MOD_BAND_HZ[1], ENVELOPE_BANDS + 1)


def envelope_axis() -> np.ndarray:
    """Geometric centres (Hz) of the ``envelope_spectrum`` bands [shape=(ENVELOPE_BANDS,)]."""
    e = _envelope_edges()
    return np.sqrt(e[:-1] * e[1:])


# ----------------------------------------------------------------------------------------------------
# audio

def _check_audio(y, sr) -> tuple[np.ndarray, float]:
    if isinstance(sr, bool) or not isinstance(sr, (int, float, np.integer, np.floating)) \
            or not np.isfinite(sr) or sr < 1000:
        raise ParameterError(f"sr must be an audio sample rate, a number of Hz >= 1000, got {sr!r}")
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"y must be a real numeric array, got {type(y).__name__}") from None
    if y.ndim != 1:
        raise ParameterError(f"y must be mono, shape (n,), got {y.shape}; mix down first "
                             f"(scatterxai.audio.to_mono)")
    if not np.isfinite(y).all():
        raise ParameterError("y holds NaN or inf samples")
    return y, float(sr)


def _frame_length(sr: float) -> int:
    """Power of two nearest :data:`FRAME_S` seconds (2048 at 44.1 kHz)."""
    return int(2 ** round(np.log2(FRAME_S * sr)))


def _modulation_peak(x: np.ndarray, fs: float, band=MOD_BAND_HZ) -> tuple[float, float, float]:
    """Largest spectral peak of ``x`` (sampled at ``fs`` Hz) in ``band``.

    Returns
    -------
    f : float
        Frequency (Hz) maximising |X_w(f)|, X_w the Fourier transform of w · x̃: x̃ is ``x`` linearly
        detrended, w a Hann window.
    amplitude : float
        2 |X_w(f)| / Σ w: the amplitude of a sinusoid at f.
    mean : float
        Σ w x / Σ w: the windowed mean of ``x``.
    """
    n = len(x)
    w = scipy.signal.windows.hann(n, sym=False)
    mean = float(np.dot(w, x) / w.sum())
    # the linear trend (level, slow drift) would leak into the band through the window's side lobes
    xw = w * scipy.signal.detrend(x)
    n_fft = scipy.fft.next_fast_len(_PAD * n, real=True)
    mag = np.abs(scipy.fft.rfft(xw, n_fft))
    df = fs / n_fft
    hi = min(band[1], fs / 2)
    sel = np.flatnonzero((np.arange(len(mag)) * df >= band[0]) & (np.arange(len(mag)) * df <= hi))
    k = sel[np.argmax(mag[sel])]
    t = np.arange(n) / fs

    def neg_mag(f):
        return -abs(np.dot(xw, np.exp(-2j * np.pi * f * t)))

    # the grid's maximum lies within one (zero-padded) bin of the continuous one
    res = scipy.optimize.minimize_scalar(neg_mag, bounds=(max(k * df - df, band[0]), min(k * df + df, hi)),
                                         method="bounded", options={"xatol": 1e-6 * df})
    f, peak = (res.x, -res.fun) if -res.fun >= mag[k] else (k * df, mag[k])
    return float(f), float(2 * peak / w.sum()), mean


def _band_depths(x: np.ndarray, fs: float) -> np.ndarray:
    """Largest 2 |X_w(f)| / Σ w·x in each ``envelope_spectrum`` band (x̃ detrended, Hann window, zero-padded
    FFT) [shape=(ENVELOPE_BANDS,)]; NaN in bands above fs / 2 or without a bin."""
    n = len(x)
    w = scipy.signal.windows.hann(n, sym=False)
    n_fft = scipy.fft.next_fast_len(_PAD * n, real=True)
    mag = np.abs(scipy.fft.rfft(w * scipy.signal.detrend(x), n_fft))
    f = np.arange(len(mag)) * fs / n_fft
    band = np.searchsorted(_envelope_edges(), f, side="right") - 1
    out = np.full(ENVELOPE_BANDS, np.nan)
    mean = float(np.dot(w, x))
    if mean <= 0:
        return out
    inside = (band >= 0) & (band < ENVELOPE_BANDS)
    np.fmax.at(out, band[inside], 2 * mag[inside] / mean)
    return out


def _mel_spectrum(power: np.ndarray, sr: float, n_fft: int) -> np.ndarray:
    """dB re the loudest band of the mean mel power of the active frames [shape=(MEL_BANDS,)]."""
    import warnings
    with warnings.catch_warnings():   # bands above the Nyquist frequency of a low sample rate are empty
        warnings.simplefilter("ignore", UserWarning)
        fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=MEL_BANDS, fmin=C1_HZ, fmax=MEL_FMAX_HZ)
    m = fb @ power.mean(axis=1)
    db = 10 * np.log10(np.maximum(m / max(m.max(), np.finfo(float).tiny), 1e-10))
    return np.where(mel_axis() < sr / 2, db, np.nan)


def _spectral_shape(y, sr, n_fft, hop, active) -> dict[str, object]:
    S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop, center=False))[:, active]
    S = S / max(S.max(), np.finfo(float).tiny)   # gain-invariant flatness floor (amin re the loudest bin)
    centroid = librosa.feature.spectral_centroid(S=S, sr=sr, n_fft=n_fft)
    return {
        "mel_spectrum": _mel_spectrum(S ** 2, sr, n_fft),
        "centroid_hz": float(centroid.mean()),
        "bandwidth_hz": float(librosa.feature.spectral_bandwidth(S=S, sr=sr, n_fft=n_fft,
                                                                 centroid=centroid).mean()),
        "flatness": float(librosa.feature.spectral_flatness(S=S, amin=1e-10, power=2.0).mean()),
        "rolloff_hz": float(librosa.feature.spectral_rolloff(S=S, sr=sr, n_fft=n_fft,
                                                             roll_percent=ROLL_PERCENT).mean()),
    }


def _am(span, sr) -> dict[str, float]:
    n = len(span)
    env = np.abs(scipy.signal.hilbert(span, N=scipy.fft.next_fast_len(n)))[:n]
    q = max(1, int(sr // _ENV_SR))
    if q > 1:
        env = scipy.signal.resample_poly(env, 1, q)
    rate, amplitude, mean = _modulation_peak(env, sr / q)
    return {"am_rate_hz": rate, "am_depth": amplitude / mean if mean > 0 else np.nan,
            "envelope_spectrum": _band_depths(env, sr / q)}


def _pyin(y, sr, fmin, fmax, *, frame_length, hop_length, resolution):
    f0, voiced, _ = librosa.pyin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame_length,
                                 hop_length=hop_length, resolution=resolution)
    return f0, voiced


def _f0_frame(m: float, lo: float, sr: float) -> int:
    """Even frame length (samples) of the YIN passes that measure f0: F0_PERIODS periods of ``m``, at most
    F0_MAX_FRAME_S, at least two periods of ``lo``.  librosa's difference function lacks the frame-end
    energy term, which biases YIN upwards by ≈ 60 / (periods in the frame) cents for a sine (≈ 15 for a
    harmonic tone): long frames make it small."""
    n = min(F0_PERIODS * sr / m, F0_MAX_FRAME_S * sr)
    return 2 * int(np.ceil(max(n, 2 * sr / lo + 2) / 2))


def _fine_grid(m: float) -> tuple[float, int]:
    """(rate, hop) of the fine pass for a note of median f0 ``m`` Hz.

    The rate makes m's period a whole number P ≥ _MIN_PERIOD of samples, near PYIN_SR; the hop is a whole
    number of periods (m ≥ 1 / PYIN_HOP_S = 86 Hz) or a whole fraction of one (lower notes), at most
    PYIN_HOP_S: every frame then starts at the same phase of a steady note, and the frame rate is ≥ 86 Hz.
    """
    if PYIN_HOP_S * m >= 1:
        period = max(_MIN_PERIOD, round(PYIN_SR / m))
        hop = period * int(PYIN_HOP_S * m)
    else:
        per_period = int(np.ceil(1 / (PYIN_HOP_S * m)))
        period = per_period * max(1, round(PYIN_SR / (m * per_period)))
        hop = period // per_period
    return period * m, hop


def _f0_fm(y, sr, fmin, fmax) -> dict[str, float]:
    out = {"f0_hz": np.nan, "fm_rate_hz": np.nan, "fm_depth_cents": np.nan}
    fmax = min(fmax, sr / 2)
    # coarse pass at PYIN_SR: where is the note?  (1-semitone states: cheap)
    y_c = y if sr == PYIN_SR else librosa.resample(y, orig_sr=sr, target_sr=PYIN_SR)
    n1 = int(2 ** np.ceil(np.log2(2 * PYIN_SR / fmin + 2)))
    f0, voiced = _pyin(y_c, PYIN_SR, fmin, fmax, frame_length=n1, hop_length=n1 // 2, resolution=1.0)
    if voiced.any():
        m = float(np.median(f0[voiced]))
    else:
        # with few states each unvoiced state is likelier than with 10-cent bins, so a noisy note
        # (flatterzunge) may decode as unvoiced: take YIN's median and let the fine pass decide
        logger.debug("coarse pYIN found no voiced frame; starting from YIN's median f0")
        voiced[:] = True
        m = float(np.median(librosa.yin(y_c, fmin=fmin, fmax=fmax, sr=PYIN_SR, frame_length=n1,
                                        hop_length=n1 // 2)))
    lo, hi = max(fmin, m * 2 ** -0.5), min(fmax, m * 2 ** 0.5)
    # the grid must fit the note's period within cents, not a semitone: refine m with long-frame YIN
    m = float(np.median(librosa.yin(y_c, fmin=lo, fmax=hi, sr=PYIN_SR, frame_length=_f0_frame(m, lo, PYIN_SR),
                                    hop_length=n1 // 2)[voiced]))
    # fine pass around m on the commensurate grid, frames of two periods of lo (at least MIN_FRAME_S).
    # With center=True frame i is centred on sample i·hop whatever the frame length, so the YIN passes
    # share pYIN's frames.
    sr_p, hop = _fine_grid(m)
    y_p = librosa.resample(y, orig_sr=sr, target_sr=sr_p)
    n2 = 2 * int(np.ceil(max(sr_p / lo, MIN_FRAME_S / 2 * sr_p))) + 2   # even: librosa pads n // 2 per side
    f_pyin, voiced = _pyin(y_p, sr_p, lo, hi, frame_length=n2, hop_length=hop, resolution=0.1)
    if not voiced.any():
        return out
    # f0: YIN on long frames, median over pYIN's voiced frames (every fourth: frame i of hop 4·hop is
    # frame 4i of hop, and long frames overlap anyway)
    f_long = librosa.yin(y_p, fmin=lo, fmax=hi, sr=sr_p, frame_length=max(n2, _f0_frame(m, lo, sr_p)),
                         hop_length=4 * hop)
    out["f0_hz"] = f0_hz = float(np.median(f_long[voiced[::4]] if voiced[::4].any() else f_long))
    idx = np.flatnonzero(voiced)
    frame_rate = sr_p / hop
    if (idx[-1] - idx[0] + 1) / frame_rate < MIN_SPAN_S:
        return out
    # FM: the short-frame contour, pYIN's 10-cent bins replaced by YIN's continuous values
    f_short = librosa.yin(y_p, fmin=lo, fmax=hi, sr=sr_p, frame_length=n2, hop_length=hop)
    with np.errstate(invalid="ignore", divide="ignore"):
        agree = voiced & (np.abs(1200 * np.log2(f_short / f_pyin)) < _YIN_AGREE_CENTS)
    contour = np.where(agree, f_short, f_pyin)
    cents = np.interp(np.arange(idx[0], idx[-1] + 1), idx, 1200 * np.log2(contour[idx] / f0_hz))
    rate, amplitude, _ = _modulation_peak(cents, frame_rate)
    out["fm_rate_hz"], out["fm_depth_cents"] = rate, amplitude
    return out


def warm_up() -> None:
    """Describe a 1-s vibrato tone, so that numba compiles the librosa functions :func:`audio_descriptors`
    uses and caches them on disk (next to librosa): ≈ 17 s of one core the first time in an environment,
    ≈ 1 s afterwards.  ``scatterxai run`` calls it in a background process while its single-threaded figure
    and comparison stages leave a core idle, so that the describe stage's workers find the cache filled."""
    sr = 22050
    t = np.arange(sr) / sr
    audio_descriptors(0.3 * np.sin(2 * np.pi * 440 * t + 2 * np.sin(2 * np.pi * 6 * t)), sr)


def audio_descriptors(y: np.ndarray, sr: float, *, fmin: float = C1_HZ, fmax: float = C8_HZ) -> dict[str, object]:
    """Descriptors of one note from its audio (definitions in the module docstring).

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono signal as read (not standardised), at least one analysis frame (≈ 46 ms) long.
    sr : number
        Its sample rate (Hz), any from 1 kHz up.
    fmin, fmax : float
        pYIN's search range (Hz), C1–C8 by default; ``fmax`` is clipped to sr/2.

    Returns
    -------
    dict
        :data:`AUDIO_DESCRIPTORS` → float (the vectors of :data:`AUDIO_VECTORS`: np.ndarray), units in
        :data:`DESCRIPTORS`.  Silence gives rms_db = −inf and NaN elsewhere; an unvoiced note NaN f0 and FM;
        spans under :data:`MIN_SPAN_S` NaN rates and depths.
    """
    y, sr = _check_audio(y, sr)
    for name, value in (("fmin", fmin), ("fmax", fmax)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value) or value <= 0:
            raise ParameterError(f"{name} must be a positive number of Hz, got {value!r}")
    fmax_used = min(float(fmax), sr / 2)
    if not float(fmin) < fmax_used:
        raise ParameterError(f"fmin must be below fmax clipped to sr/2 = {fmax_used:g} Hz, got fmin={fmin!r}")
    n_fft = _frame_length(sr)
    hop = n_fft // 4
    if len(y) < n_fft:
        raise ParameterError(f"y has {len(y)} samples, fewer than one analysis frame ({n_fft} samples, "
                             f"{n_fft / sr * 1e3:.0f} ms at {sr:g} Hz)")
    out: dict = dict.fromkeys(AUDIO_DESCRIPTORS, np.nan)
    out.update({k: np.full(n, np.nan) for k, n in AUDIO_VECTORS.items()})
    power = np.mean(librosa.util.frame(y, frame_length=n_fft, hop_length=hop) ** 2, axis=0)
    if power.max() <= 0:
        out["rms_db"] = -np.inf
        return out
    active = power >= power.max() * 10 ** (-ACTIVE_DB / 10)
    out["rms_db"] = float(10 * np.log10(power[active].mean()))
    out.update(_spectral_shape(y, sr, n_fft, hop, active))
    first, last = np.flatnonzero(active)[[0, -1]]
    span = y[first * hop:last * hop + n_fft]
    if len(span) >= MIN_SPAN_S * sr:
        out.update(_am(span, sr))
    out.update(_f0_fm(span, sr, float(fmin), fmax_used))
    return out


# ----------------------------------------------------------------------------------------------------
# scattering

def _path_columns(paths) -> tuple[np.ndarray, np.ndarray]:
    """(order, λ2) of a PathTable, of its ``arrays()`` dict, or of an HDF5 ``/paths`` group."""
    try:
        if hasattr(paths, "order") and hasattr(paths, "lambda2_hz"):
            order, lam2 = paths.order, paths.lambda2_hz
        else:
            order, lam2 = paths["order"], paths["lambda2_hz"]
        order = np.asarray(order)
        lam2 = np.asarray(lam2, dtype=np.float64)
    except (KeyError, TypeError, IndexError, ValueError):
        raise ParameterError(f"paths must be a PathTable or a mapping with 'order' and 'lambda2_hz' arrays, "
                             f"got {type(paths).__name__}") from None
    if order.ndim != 1 or order.shape != lam2.shape:
        raise ParameterError(f"paths 'order' and 'lambda2_hz' must be 1-D of equal length, got "
                             f"{order.shape} and {lam2.shape}")
    if not np.isin(order, (1, 2)).all():
        raise ParameterError(f"path orders must be 1 or 2, got {sorted(set(order.tolist()))}")
    if not (np.isfinite(lam2[order == 2]) & (lam2[order == 2] > 0)).all():
        raise ParameterError("every second-order path needs a positive finite lambda2_hz")
    return order.astype(np.int64), lam2


def modulation_axis(paths: PathsLike) -> np.ndarray:
    """λ2 axis of the modulation spectrum: distinct second-order λ2, ascending.

    Parameters
    ----------
    paths : PathTable or mapping
        With ``order`` and ``lambda2_hz`` arrays [shape=(C,)] (:meth:`PathTable.arrays`, HDF5 ``/paths``).

    Returns
    -------
    np.ndarray [shape=(n_λ2,)], Hz
    """
    order, lam2 = _path_columns(paths)
    return np.unique(lam2[order == 2])


def scattering_descriptors(S: np.ndarray, paths: PathsLike) -> dict[str, object]:
    """Scattering descriptors of one or several features rows (definitions in the module docstring).

    Parameters
    ----------
    S : np.ndarray [shape=(..., C, T)]
        Raw scattering coefficients (not log-compressed), C paths in ``paths`` order.
    paths : PathTable or mapping
        With ``order`` and ``lambda2_hz`` arrays [shape=(C,)].

    Returns
    -------
    dict
        ``s1_energy`` [shape=(..., n_s1)], ``modulation_spectrum`` [shape=(..., n_λ2)] on
        :func:`modulation_axis`, ``modulation_peak_hz`` and ``s2_s1_ratio`` [shape=(...)] — floats when
        ``S`` is a single (C, T) row.  Silence gives NaN peak and ratio.
    """
    order, lam2 = _path_columns(paths)
    S = np.asarray(S, dtype=np.float64)
    if S.ndim < 2 or S.shape[-2] != len(order):
        raise ParameterError(f"S must have shape (..., C={len(order)}, T) to match paths, got {S.shape}")
    if S.shape[-1] == 0:
        raise ParameterError(f"S has no frames: shape {S.shape}")
    s1, s2 = order == 1, order == 2
    mean_t = S.mean(axis=-1)
    axis, which = np.unique(lam2[s2], return_inverse=True)
    member = np.zeros((int(s2.sum()), len(axis)))
    member[np.arange(len(which)), which] = 1.0
    M = mean_t[..., s2] @ member
    with np.errstate(invalid="ignore", divide="ignore"):
        if len(axis):
            peak = np.where(np.isfinite(M).all(axis=-1) & (M.max(axis=-1) > 0),
                            axis[np.argmax(np.nan_to_num(M, nan=-np.inf), axis=-1)], np.nan)
        else:
            peak = np.full(M.shape[:-1], np.nan)
        e1 = np.square(S[..., s1, :]).sum(axis=(-2, -1))
        e2 = np.square(S[..., s2, :]).sum(axis=(-2, -1))
        ratio = np.where(e1 > 0, e2 / e1, np.nan)
    if S.ndim == 2:
        peak, ratio = float(peak), float(ratio)
    return {"s1_energy": mean_t[..., s1], "modulation_spectrum": M, "modulation_peak_hz": peak,
            "s2_s1_ratio": ratio}
