"""Audio in: read a file, mix to mono, resample, fix the length, normalise.

Documented fix-ups (not errors): any sample rate is resampled to the configured one (polyphase, SciPy);
multi-channel audio is averaged to mono; signals shorter than N are zero-padded at the end and longer ones
truncated; the signal is divided by its standard deviation (+1e-10), so a silent file gives zeros, never
NaN.  Errors (:class:`~scatterxai.errors.AudioError`): unreadable or corrupt files, files with no samples,
non-finite samples.
"""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from ._util.validate import check_positive_int
from .errors import AudioError, ParameterError

__all__ = ["read_audio", "to_mono", "resample", "fix_length", "standardize", "prepare", "load_prepared",
           "STD_EPS", "DEFAULT_SR", "DEFAULT_N"]

#: added to the standard deviation before division (companion code)
STD_EPS = 1e-10
#: the paper's sample rate and signal length (those of ``scatterxai.PAPER_CONFIG``)
DEFAULT_SR, DEFAULT_N = 44100, 2 ** 18


def read_audio(path):
    """Read an audio file.

    Returns
    -------
    y : np.ndarray [shape=(n_samples, n_channels), float64]
    sr : int
        Sample rate in Hz.
    """
    if not os.path.isfile(path):
        raise AudioError(f"audio file not found: {path}")
    try:
        y, sr = sf.read(path, dtype="float64", always_2d=True)
    except Exception as e:  # libsndfile raises RuntimeError/LibsndfileError/TypeError for corrupt input
        raise AudioError(f"cannot read audio file {path}: {e}") from None
    if y.shape[0] == 0:
        raise AudioError(f"audio file {path} holds no samples")
    if not np.isfinite(y).all():
        raise AudioError(f"audio file {path} holds NaN or inf samples")
    return y, int(sr)


def to_mono(y) -> np.ndarray:
    """Average channels: (n,) or (n, channels) → (n,)."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        return y
    if y.ndim != 2:
        raise ParameterError(f"audio must have shape (n,) or (n, channels), got {y.shape}")
    return y.mean(axis=1)


def resample(y, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling of a mono signal from ``sr_in`` to ``sr_out`` Hz (identity if equal)."""
    if sr_in <= 0 or sr_out <= 0:
        raise ParameterError(f"sample rates must be positive, got {sr_in} → {sr_out}")
    if sr_in == sr_out:
        return np.asarray(y, dtype=np.float64)
    ratio = Fraction(int(sr_out), int(sr_in))
    return resample_poly(np.asarray(y, dtype=np.float64), ratio.numerator, ratio.denominator)


def fix_length(y, n: int) -> np.ndarray:
    """Truncate or zero-pad (at the end) to exactly ``n`` samples."""
    y = np.asarray(y)
    if y.shape[-1] >= n:
        return y[..., :n]
    pad = [(0, 0)] * (y.ndim - 1) + [(0, n - y.shape[-1])]
    return np.pad(y, pad)


def standardize(y) -> np.ndarray:
    """Divide by the standard deviation (+1e-10): silent input stays zero, never NaN."""
    y = np.asarray(y, dtype=np.float64)
    return y / (y.std(axis=-1, keepdims=True) + STD_EPS)


def prepare(y, sr: int, config=None, *, sr_out: int = DEFAULT_SR, n: int = DEFAULT_N) -> np.ndarray:
    """Mono, resample to ``sr_out`` Hz, fix the length to ``n`` samples, standardise.

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
    return standardize(fix_length(y, n)).astype(np.float32)


def load_prepared(path, config=None, *, sr_out: int = DEFAULT_SR, n: int = DEFAULT_N) -> np.ndarray:
    """:func:`read_audio` then :func:`prepare`: a file → (n,) float32 ready for scattering."""
    y, sr = read_audio(path)
    return prepare(y, sr, config, sr_out=sr_out, n=n)
