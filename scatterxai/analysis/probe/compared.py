"""The multi-dimensional descriptors the probe study compares with each layer by CKA, and where they come from.

Measured on the audio (:mod:`scatterxai.analysis.describe`): ``audio_descriptors`` (the scalar audio
descriptors — pYIN f0, AM and FM rate and depth, spectral shape — together, z-scored), ``mel_spectrum`` and
``envelope_spectrum``.  Functions of the model input (:data:`FROM_MODEL_INPUT`): ``s1_energy`` is the
time-averaged S1 input before its log compression, ``modulation_spectrum`` an exact sum of the S2 input, and
``input`` the input itself — CKA with them measures how much of its input a layer keeps, not what it
represents of the sound.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

__all__ = ["CKA_DESCRIPTORS", "FROM_MODEL_INPUT", "cka_matrices"]

#: multi-dimensional descriptors compared with layers by CKA: name → description (unknown values — an envelope
#: spectrum of a note too short to measure, a mel band above the Nyquist frequency — are set to the column's
#: mean, where they add nothing to the centred Gram matrix; columns unknown for every note are left out)
CKA_DESCRIPTORS = {
    "audio_descriptors": "the scalar audio descriptors log2 f0, log2 centroid, bandwidth and roll-off, flatness "
                         "(dB), AM and FM depth, log2 AM and FM rate, each z-scored (audio)",
    "mel_spectrum": "mel spectrum of the audio, dB re the loudest band (audio)",
    "envelope_spectrum": "AM depth spectrum of the audio's Hilbert envelope, 2–40 Hz (audio)",
    "s1_energy": "S1 band energies, 20 log10 (dB, floor 100 dB below the largest): the time-averaged S1 input "
                 "before log compression (a function of the model input)",
    "modulation_spectrum": "modulation spectrum M(λ2), 20 log10 (dB, floor 100 dB below the largest): an exact "
                           "sum of the S2 input (a function of the model input)",
    "input": "the model input (log-compressed scattering) averaged over time"}
#: descriptors (CKA and scalar) that are functions of the model input: they measure what a layer keeps of
#: its input, not what it represents of the sound
FROM_MODEL_INPUT = ("s1_energy", "modulation_spectrum", "input", "log2_modulation_peak", "s2_s1_ratio_db")
#: the scalar audio descriptors of "audio_descriptors", with the transform into natural units
_AUDIO_SET = {"f0_hz": "log2", "centroid_hz": "log2", "bandwidth_hz": "log2", "rolloff_hz": "log2",
              "flatness": "db10", "am_depth": None, "fm_depth_cents": None, "am_rate_hz": "log2",
              "fm_rate_hz": "log2"}
#: 100 dB below the largest value
_DB_FLOOR = 1e-5


def _log2(x):
    x = np.asarray(x, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, np.log2(np.where(x > 0, x, 1.0)), np.nan)


def _db10(x):
    x = np.asarray(x, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, 10 * np.log10(np.where(x > 0, x, 1.0)), np.nan)


def _db(x: np.ndarray) -> np.ndarray:
    floor = _DB_FLOOR * max(float(np.nanmax(x)), np.finfo(float).tiny)
    return 20 * np.log10(np.maximum(x, floor))


def _impute(M: np.ndarray) -> np.ndarray:
    """Columns unknown for every note dropped, other unknown values set to their column's mean."""
    M = np.asarray(M, np.float64)
    M = M[:, np.isfinite(M).any(axis=0)]
    mean = np.nanmean(M, axis=0) if M.size else np.zeros(M.shape[1])
    return np.where(np.isfinite(M), M, mean)


def _audio_set(desc: Dict[str, np.ndarray]) -> np.ndarray:
    """The "audio_descriptors" matrix (n, 9): natural units, z-scored, unknown values at the mean (0)."""
    cols = []
    for name, transform in _AUDIO_SET.items():
        v = np.asarray(desc[name], np.float64)
        v = _log2(v) if transform == "log2" else _db10(v) if transform == "db10" else v
        v = np.where(np.isfinite(v), v, np.nan)
        sd = np.nanstd(v) if np.isfinite(v).sum() > 1 else 0.0
        cols.append(np.zeros_like(v) if not sd > 0 else np.nan_to_num((v - np.nanmean(v)) / sd))
    return np.stack(cols, axis=1)


def cka_matrices(desc: Dict[str, np.ndarray], x_mean: np.ndarray) -> Dict[str, np.ndarray]:
    """The multi-dimensional descriptors of :data:`CKA_DESCRIPTORS` (n, d_k) from the descriptor values and
    the time-averaged model input ``x_mean`` (n, C_in)."""
    return {"audio_descriptors": _audio_set(desc), "mel_spectrum": _impute(desc["mel_spectrum"]),
            "envelope_spectrum": _impute(desc["envelope_spectrum"]), "s1_energy": _db(desc["s1_energy"]),
            "modulation_spectrum": _db(desc["modulation_spectrum"]), "input": np.asarray(x_mean, np.float64)}
