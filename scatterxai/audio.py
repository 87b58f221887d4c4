"""Audio in: read a file, mix to mono, resample, fix the length, normalise; cut long recordings into windows.

Documented fix-ups (not errors): any sample rate is resampled to the configured one (polyphase, SciPy);
multi-channel audio is averaged to mono; signals longer than N are truncated and shorter ones are
*continued* to N samples (:func:`continue_signal`, below); the signal is divided by its standard deviation
(+1e-10), so a silent file gives zeros, never NaN.  Errors (:class:`~scatterxai.errors.AudioError`):
unreadable or corrupt files, files with no samples, non-finite samples.

Short signals.  The scattering reads an abrupt end as amplitude modulation: a note cut off mid-sound and
followed by silence puts energy at every modulation rate λ2 (measured on the paper's configuration, a
1.5-s excerpt of a steady 880-Hz tone zero-padded to N has 53× the S2 energy at λ2 = 2–40 Hz of the same
tone filling the window — as much as a vibrato has; a 200-ms raised-cosine fade still leaves 30×, a
mirror extension 4×).  So a signal shorter than N is continued with its own sound: from the last stretch
it repeats a loop that starts where its waveform best matches its last 50 ms, joined by a 50-ms crossfade,
each repetition scaled by the level ratio between the end and the loop's start — a sustained sound goes on
as it sounded (same measurement: 1.00×, and 0.94–1.03× for a vibrato or tremolo excerpt), a note that
dies away keeps dying away at its own rate.  Signals of N samples or more are untouched by this (only
truncated, as always).  The transform itself extends every window by reflection at its two ends (Kymatio's
padding), so a window's start is never an edge.

Only the frames a window needs are decoded (:func:`read_window`): the first N samples' worth of a
1-hour recording, not the hour (plus a few samples beyond the window when resampling, so that the
result is identical to resampling the whole file and then cutting).  A file longer than the window is
either truncated (its duration tells the caller, who warns) or cut into consecutive windows
(:func:`segment_starts`).
"""

from __future__ import annotations

import errno
import os
from fractions import Fraction
from typing import TYPE_CHECKING, Optional, Tuple

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ._util.types import PathLike
from ._util.validate import check_positive_int
from .errors import AudioError, ParameterError

if TYPE_CHECKING:
    from .scattering.config import ScatteringConfig

__all__ = ["read_audio", "audio_info", "to_mono", "resample", "fix_length", "continue_signal", "standardize",
           "prepare", "load_prepared", "read_window", "segment_starts", "load_signal", "STD_EPS", "DEFAULT_SR",
           "DEFAULT_N", "PREPARATION"]

#: added to the standard deviation before division (companion code)
STD_EPS = 1e-10
#: the paper's sample rate and signal length (those of ``scatterxai.PAPER_CONFIG``)
DEFAULT_SR, DEFAULT_N = 44100, 2 ** 18
#: how :func:`prepare` lengthens a short signal (recorded in features files: it changes their numbers)
PREPARATION = "continue-loop-v1"
#: crossfade of the loop that continues a short signal, and the stretch whose waveform it matches (s)
CROSSFADE_S = 0.05
#: the stretch over which the levels of the signal's end and of the loop's start are compared (s)
LEVEL_S = 0.25


def read_audio(path: PathLike, *, start: int = 0, frames: int = -1) -> Tuple[np.ndarray, int]:
    """Read an audio file, or ``frames`` frames of it from frame ``start`` (only those are decoded).

    Returns
    -------
    y : np.ndarray [shape=(n_samples, n_channels), float64]
    sr : int
        Sample rate in Hz.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioError(f"audio file not found: {path}")
    try:
        with sf.SoundFile(path) as f:
            sr = f.samplerate
            if start:
                f.seek(min(int(start), f.frames))
            y = f.read(frames, dtype="float64", always_2d=True)
    except Exception as e:  # libsndfile raises RuntimeError/LibsndfileError/TypeError for corrupt input
        raise AudioError(f"cannot read audio file {path}: {e}") from None
    if y.shape[0] == 0:
        raise AudioError(f"audio file {path} holds no samples" + (f" from frame {start}" if start else ""))
    if not np.isfinite(y).all():
        raise AudioError(f"audio file {path} holds NaN or inf samples")
    return y, int(sr)


def audio_info(path: PathLike) -> Tuple[float, int]:
    """Duration and sample rate from the file's header (nothing is decoded).

    Returns
    -------
    duration_s : float
    sr : int
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioError(f"audio file not found: {path}")
    try:
        info = sf.info(path)
    except Exception as e:
        raise AudioError(f"cannot read audio file {path}: {e}") from None
    if info.samplerate <= 0:
        raise AudioError(f"audio file {path} has sample rate {info.samplerate}")
    return info.frames / info.samplerate, int(info.samplerate)


def to_mono(y: np.ndarray) -> np.ndarray:
    """Average channels: (n,) or (n, channels) → (n,)."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        return y
    if y.ndim != 2:
        raise ParameterError(f"audio must have shape (n,) or (n, channels), got {y.shape}")
    return y.mean(axis=1)


def resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling of a mono signal from ``sr_in`` to ``sr_out`` Hz (identity if equal)."""
    if sr_in <= 0 or sr_out <= 0:
        raise ParameterError(f"sample rates must be positive, got {sr_in} → {sr_out}")
    if sr_in == sr_out:
        return np.asarray(y, dtype=np.float64)
    ratio = Fraction(int(sr_out), int(sr_in))
    return resample_poly(np.asarray(y, dtype=np.float64), ratio.numerator, ratio.denominator)


def fix_length(y: np.ndarray, n: int) -> np.ndarray:
    """Truncate or zero-pad (at the end) to exactly ``n`` samples."""
    y = np.asarray(y)
    if y.shape[-1] >= n:
        return y[..., :n]
    pad = [(0, 0)] * (y.ndim - 1) + [(0, n - y.shape[-1])]
    return np.pad(y, pad)


def _loop_start(y: np.ndarray, w: int) -> int:
    """Start s of the loop that continues ``y``: ``y[s - w:s]`` is the stretch of the signal's first half
    whose waveform best matches its last ``w`` samples (normalised cross-correlation), so
    that ``y[s]`` is a natural successor of ``y[-1]``; the loop ``y[s:]`` is at least half the signal."""
    from scipy.signal import correlate
    m = y.shape[-1]
    last = m - max(m // 2, w)            # loop start s ≤ last, so the loop y[s:] keeps ≥ half the signal
    head = y[:last]                      # candidate stretches y[j:j + w], j = s - w ∈ [0, last - w]
    tail = y[m - w:]
    dot = correlate(head, tail, mode="valid")
    # energy of each stretch y[j:j + w]: differences of running sums, O(m) where a convolution with a box of
    # w ones is O(m·w) (≈ 20 ms, 7 % of a short demo note's extraction on one core).  Summed in extended
    # precision (x86's 64-bit mantissa; float64 elsewhere), and an all-zero stretch gets exactly 0 either way;
    # on 16-bit audio the sums are exact, the same as the convolution's.
    run = np.concatenate(([0.0], np.cumsum(head.astype(np.longdouble) ** 2)))
    energy = (run[w:] - run[:-w]).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ncc = dot / np.sqrt(np.maximum(energy, 0.0) * float(tail @ tail))
    ncc[~np.isfinite(ncc)] = -np.inf     # silent stretches match nothing
    return int(np.argmax(ncc)) + w


def continue_signal(y: np.ndarray, n: int, *, sr: int, crossfade_s: float = CROSSFADE_S,
                    level_s: float = LEVEL_S) -> np.ndarray:
    """Lengthen a signal shorter than ``n`` samples to ``n`` by continuing it with its own sound.

    The continuation repeats the loop ``y[s:]`` whose start ``s`` follows the stretch that best matches
    the signal's last ``crossfade_s`` seconds (normalised cross-correlation over the signal's first half,
    so the loop holds at least its second half); the last ``crossfade_s`` seconds are crossfaded (raised
    cosine) into that stretch so the joins are seamless.  Repetition k is scaled by g^k, g = the RMS of the
    last ``level_s`` s divided by the larger of the RMS of the ``level_s`` s before ``s`` and half the
    loop's RMS, at most 1: a sustained sound continues at its level, a decaying one keeps decaying at its
    own rate, and a note that has died away (whose loop would replay its onset) stays nearly silent.
    A signal with fewer than 8 crossfade samples, or whose last stretch is silent, is zero-padded instead
    (nothing to continue).

    Parameters
    ----------
    y : np.ndarray [shape=(m,)]
        Mono signal.
    n : int
        Target length (samples); a signal of ``n`` samples or more is truncated, as by :func:`fix_length`.
    sr : int
        Sample rate of ``y`` (Hz), to convert ``crossfade_s`` and ``level_s``.
    crossfade_s, level_s : float
        Crossfade (and matched stretch) length, and the length over which levels are compared (s); both
        are shortened to a quarter of the signal for very short signals.

    Returns
    -------
    np.ndarray [shape=(n,), float64]
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1:
        raise ParameterError(f"continue_signal takes a mono signal of shape (m,), got {y.shape}")
    m = y.shape[0]
    if m >= n:
        return y[:n]
    w = min(int(round(crossfade_s * sr)), m // 4)
    if w < 8 or not np.any(y[m - w:]):
        return fix_length(y, n)
    s = _loop_start(y, w)
    k = max(1, min(int(round(level_s * sr)), s, m // 4))
    end = np.sqrt(np.mean(y[m - k:] ** 2))
    before, loop_level = np.sqrt(np.mean(y[s - k:s] ** 2)), np.sqrt(np.mean(y[s:] ** 2))
    # the end's level against the loop start's (a decay goes on decaying) and against the whole loop: a loop
    # more than twice as loud as the end holds a note's onset, matched in the quiet before it, and is not
    # replayed at full level (the factor 2 leaves sustained sounds, whose levels agree within a few %, alone)
    g = min(1.0, end / before, 2.0 * end / loop_level) if before > 0 and loop_level > 0 else 0.0
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(w) + 0.5) / w)
    loop = y[s:].copy()
    loop[-w:] = (1 - ramp) * y[m - w:] + ramp * g * y[s - w:s]
    reps = -(-(n - s) // loop.size)
    gains = g ** np.arange(reps, dtype=np.float64)
    return np.concatenate([y[:s], (gains[:, None] * loop[None, :]).ravel()])[:n]


def standardize(y: np.ndarray) -> np.ndarray:
    """Divide by the standard deviation (+1e-10): silent input stays zero, never NaN."""
    y = np.asarray(y, dtype=np.float64)
    return y / (y.std(axis=-1, keepdims=True) + STD_EPS)


def prepare(y: np.ndarray, sr: int, config: Optional[ScatteringConfig] = None, *, sr_out: int = DEFAULT_SR,
            n: int = DEFAULT_N) -> np.ndarray:
    """Mono, resample to ``sr_out`` Hz, truncate to ``n`` samples or continue a shorter signal to ``n``
    (:func:`continue_signal`), standardise.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,) or (n_samples, channels)]
    sr : int
        Sample rate of ``y`` in Hz.
    config : object with ``sr`` and ``N`` attributes, optional
        E.g. a :class:`scatterxai.ScatteringConfig`: its ``sr`` and ``N`` replace ``sr_out`` and ``n``.
    sr_out, n : int
        Target sample rate (Hz) and length (samples); default the paper's 44,100 Hz and 2**18.

    Returns
    -------
    x : np.ndarray [shape=(n,), float32]
    """
    if config is not None:
        sr_out, n = config.sr, config.N
    sr = check_positive_int("sr", sr)
    sr_out, n = check_positive_int("sr_out", sr_out), check_positive_int("n", n)
    y = to_mono(y)
    if y.size == 0:
        raise AudioError("audio holds no samples")
    if not np.isfinite(y).all():
        raise AudioError("audio holds NaN or inf samples")
    y = resample(y, sr, sr_out)
    return standardize(continue_signal(y, n, sr=sr_out)).astype(np.float32)


def _frames_needed(n: int, sr_in: int, sr_out: int) -> int:
    """Input frames that determine the first ``n`` output samples of :func:`resample` exactly."""
    if sr_in == sr_out:
        return n
    ratio = Fraction(int(sr_out), int(sr_in))
    up, down = ratio.numerator, ratio.denominator
    half_len = 10 * max(up, down)  # scipy.signal.resample_poly's default Kaiser filter, in upsampled samples
    return -(-(n * down + half_len) // up) + 2


def read_window(path: PathLike, config: Optional[ScatteringConfig] = None, *, start_s: float = 0.0,
                sr_out: int = DEFAULT_SR, n: int = DEFAULT_N) -> Tuple[np.ndarray, float]:
    """One window of a file ready for scattering, decoding only the frames it needs.

    Parameters
    ----------
    path : str
    config : object with ``sr`` and ``N`` attributes, optional
        E.g. a :class:`scatterxai.ScatteringConfig` (replaces ``sr_out`` and ``n``).
    start_s : float
        Start of the window in the file (s).
    sr_out, n : int
        Target sample rate (Hz) and window length (samples).

    Returns
    -------
    x : np.ndarray [shape=(n,), float32]
        Mono, resampled, cut or continued to ``n`` samples (:func:`continue_signal`), standardised.
    duration_s : float
        Duration of the whole file (s): longer than ``n / sr_out`` means the window does not cover it.
    """
    if config is not None:
        sr_out, n = config.sr, config.N
    sr_out, n = check_positive_int("sr_out", sr_out), check_positive_int("n", n)
    duration_s, sr_in = audio_info(path)
    start = int(round(float(start_s) * sr_in))
    y, sr = read_audio(path, start=start, frames=_frames_needed(n, sr_in, sr_out))
    return prepare(y, sr, sr_out=sr_out, n=n), duration_s


def load_prepared(path: PathLike, config: Optional[ScatteringConfig] = None, *, sr_out: int = DEFAULT_SR,
                  n: int = DEFAULT_N) -> np.ndarray:
    """The first window of a file (mono, resampled, length ``n``, standardised): (n,) float32.

    Only the frames the window needs are decoded (see :func:`read_window`, which also returns the file's
    duration); the result equals :func:`prepare` of the whole file.
    """
    return read_window(path, config, sr_out=sr_out, n=n)[0]


def segment_starts(duration_s: float, window_s: float) -> np.ndarray:
    """Starts (s) of the consecutive windows that cover a recording.

    Windows start at 0, w, 2w, …; the last one ends at the end of the recording (it overlaps its
    predecessor rather than being zero-padded), so no sample is dropped and none is invented.  A
    recording no longer than a window has one window, at 0.

    Returns
    -------
    starts : np.ndarray [shape=(n_windows,), float64]
    """
    duration_s, window_s = float(duration_s), float(window_s)
    if not window_s > 0:
        raise ParameterError(f"window_s must be positive, got {window_s}")
    # a remainder below one sample of a 1 MHz clock is rounding, not audio
    n = max(1, int(np.ceil(duration_s / window_s - 1e-6)))
    starts = np.arange(n, dtype=np.float64) * window_s
    starts[-1] = max(0.0, min(starts[-1], duration_s - window_s))
    return starts


def load_signal(path: PathLike, sr_out: int, *, start_s: float = 0.0, max_s: Optional[float] = None) -> np.ndarray:
    """Mono signal resampled to ``sr_out`` Hz, from ``start_s`` for at most ``max_s`` seconds (for plots).

    Returns
    -------
    y : np.ndarray [shape=(n,), float64]
    """
    _, sr_in = audio_info(path)
    frames = -1 if max_s is None else int(np.ceil(float(max_s) * sr_in))
    y, sr = read_audio(path, start=int(round(float(start_s) * sr_in)), frames=frames)
    return resample(to_mono(y), sr, sr_out)


#: a file shorter than this share of the window has too little signal to explain (a warning says so)
MIN_WINDOW_SHARE = 1 / 16


def nothing_to_explain(path: PathLike, x: np.ndarray, window_s: float) -> Optional[str]:
    """A warning when a note has nothing to explain, else None: ``x`` (its prepared window(s)) is silent, or
    the file holds less than :data:`MIN_WINDOW_SHARE` of the window (then most of the window is what the
    preparation of short inputs filled in — the file's own sound continued, or zeros — not the recording).

    A classifier still outputs a class for such input, and attribution methods still a map: both describe
    the filled-in window, not a note.
    """
    if not np.any(np.asarray(x)):
        return f"{path} is silent (every sample is 0): its prediction and relevance describe no signal"
    duration_s, sr = audio_info(path)
    if duration_s < MIN_WINDOW_SHARE * window_s:
        n = int(round(duration_s * sr))
        return (f"{path} holds {n} sample{'s' if n != 1 else ''} ({duration_s:.3g} s) of the model's "
                f"{window_s:.2f} s window: its prediction and relevance describe mostly what the preparation "
                f"filled in, not the recording")
    return None


def write_wav(path: PathLike, y: np.ndarray, sr: int, *, subtype: str = "PCM_16") -> str:
    """Write a WAV file; a write error is an ``OSError`` naming ``path`` (libsndfile reports a full disk or a
    read-only folder as "System error.", without its errno: the file system is checked at once)."""
    import soundfile as sf
    path = os.fspath(path)
    try:
        sf.write(path, y, int(sr), subtype=subtype, format="WAV")
    except (RuntimeError, sf.SoundFileError) as e:
        from ._util.outputs import _device_problem
        problem = _device_problem(path)
        if problem is None:
            raise AudioError(f"cannot write {path}: {e}") from None
        code = errno.EROFS if problem.startswith("Read-only") else errno.ENOSPC
        raise OSError(code, problem, path) from None
    return path
