"""What the explorer shows and plays of one note: a log-frequency spectrogram as bytes, and small audio files
of the note and of the parts that each method's map keeps and leaves (:mod:`scatterxai.analysis.auralise`).

Audio is written as Ogg Vorbis (soundfile / libsndfile; ≈ 40–60 kB for a 6-s note, where 16-bit WAV takes
520 kB) and falls back to 16-bit WAV where libsndfile lacks Vorbis.  Every file of one note shares one
scale — the loudest of the note and its parts peaks at :data:`PEAK` — so that loudness compares across the
players: a quiet "relevant" part is a part that holds little of the note's energy.
"""

from __future__ import annotations

import os
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np

from .._util.log import logger
from .._util.types import PathLike
from ..scattering.config import ScatteringConfig

__all__ = ["SPECTROGRAM", "PEAK", "AUDIO_FORMATS", "log_spectrogram", "auralised_parts", "write_audio",
           "note_audio"]

#: spectrogram display: FFT size and hop (samples), rows per octave, lowest frequency (Hz), dynamic range (dB)
SPECTROGRAM = {"n_fft": 4096, "hop": 1024, "rows_per_octave": 16, "fmin_hz": 32.0, "range_db": 80.0}
#: peak level of the loudest audio file of a note
PEAK = 0.9
#: audio formats: name → (soundfile format, subtype, extension)
AUDIO_FORMATS = {"ogg": ("OGG", "VORBIS", ".ogg"), "wav": ("WAV", "PCM_16", ".wav")}


def log_spectrogram(x: np.ndarray, sr: float, *, n_fft: int = SPECTROGRAM["n_fft"], hop: int = SPECTROGRAM["hop"],
                    rows_per_octave: int = SPECTROGRAM["rows_per_octave"], fmin_hz: float = SPECTROGRAM["fmin_hz"],
                    range_db: float = SPECTROGRAM["range_db"]) -> Dict[str, np.ndarray]:
    """Magnitude spectrogram on a log-frequency axis, quantised to bytes for the page.

    Each row is the mean power of the STFT bins between its band edges (or, where a band is narrower than a
    bin, the bin holding its centre frequency), in dB relative to the loudest cell, clipped at ``range_db``
    below it and mapped to 0–255.

    Parameters
    ----------
    x : np.ndarray [shape=(n,)]
    sr : float
        Sample rate (Hz).

    Returns
    -------
    dict
        ``image`` (n_rows, n_frames) uint8 (row 0 = lowest frequency), ``freqs_hz`` (n_rows,) row centres,
        ``times_s`` (n_frames,) frame centres, ``range_db``.
    """
    from scipy.signal import stft

    x = np.asarray(x, dtype=np.float64)
    n_fft = min(n_fft, x.size)
    f, t, Z = stft(x, fs=sr, nperseg=n_fft, noverlap=n_fft - min(hop, n_fft), boundary=None, padded=False)
    power = np.abs(Z) ** 2
    n_rows = max(1, int(np.floor(rows_per_octave * np.log2(sr / 2 / fmin_hz))))
    centres = fmin_hz * 2.0 ** (np.arange(n_rows) / rows_per_octave)
    edges = fmin_hz * 2.0 ** ((np.arange(n_rows + 1) - 0.5) / rows_per_octave)
    lo, hi = np.searchsorted(f, edges[:-1]), np.searchsorted(f, edges[1:])
    nearest = np.clip(np.round(centres / (f[1] - f[0])).astype(np.int64), 0, f.size - 1)
    rows = np.empty((n_rows, power.shape[1]))
    for i in range(n_rows):
        rows[i] = power[lo[i]:hi[i]].mean(axis=0) if hi[i] > lo[i] else power[nearest[i]]
    db = 10 * np.log10(rows + 1e-20)
    db -= db.max()
    image = np.round(255 * (np.clip(db, -range_db, 0) + range_db) / range_db).astype(np.uint8)
    return {"image": image, "freqs_hz": centres, "times_s": t, "range_db": float(range_db)}


def auralised_parts(x: np.ndarray, local_maps: Mapping[str, np.ndarray], paths: Mapping[str, np.ndarray],
                    config: ScatteringConfig) -> Tuple[np.ndarray, Dict[str, Tuple[np.ndarray, np.ndarray]]]:
    """The reference resynthesis and, per method, the relevant part and its complement of one note.

    Parameters
    ----------
    x : np.ndarray [shape=(N,)]
        The prepared note (the window the model saw).
    local_maps : mapping method → np.ndarray [shape=(C_in,)]
        Local maps over the model's paths ``paths`` (a relevance file's ``/local``); NaN maps are skipped.
    paths : mapping with ``order``, ``n1``, ``n2``
    config : ScatteringConfig

    Returns
    -------
    reference : np.ndarray [shape=(N,)]
    parts : dict method → (relevant, complement), each [shape=(N,)]
        Positive relevance over its maximum as weights (:func:`~scatterxai.analysis.auralise.resynth.relevance_mask`);
        complement = reference − relevant.
    """
    from ..analysis.auralise.resynth import auralise_maps
    from ..analysis.auralise.run import full_table_map

    methods = [m for m, v in local_maps.items() if np.isfinite(v).all()]
    full = (np.stack([full_table_map(local_maps[m], paths, config) for m in methods]) if methods
            else np.zeros((0, _n_paths(config))))
    reference, relevant = auralise_maps(x, full, config)
    return reference, {m: (relevant[i], reference - relevant[i]) for i, m in enumerate(methods)}


def _n_paths(config: ScatteringConfig) -> int:
    from ..scattering.config import path_table
    return len(path_table(config))


def write_audio(path_stem: PathLike, y: np.ndarray, sr: int, *, fmt: str = "ogg") -> str:
    """Write a mono signal (already scaled to [−1, 1]) as ``path_stem`` + the format's extension.

    Ogg Vorbis where libsndfile can write it, else 16-bit WAV (with an info message).  Returns the path written.
    """
    import soundfile as sf

    container, subtype, ext = AUDIO_FORMATS[fmt]
    path = os.fspath(path_stem) + ext
    y = np.clip(np.asarray(y, dtype=np.float32), -1.0, 1.0)
    try:
        sf.write(path, y, int(sr), format=container, subtype=subtype)
    except (sf.LibsndfileError, ValueError, TypeError) as e:
        if fmt == "wav":
            raise
        logger.info("cannot write %s (%s); writing 16-bit WAV instead", path, e)
        if os.path.exists(path):
            os.remove(path)
        return write_audio(path_stem, y, sr, fmt="wav")
    return path


def note_audio(folder: PathLike, stem: str, x: np.ndarray, parts: Mapping[str, Tuple[np.ndarray, np.ndarray]],
               sr: int, *, methods: Sequence[str], fmt: str = "ogg") -> Dict[str, object]:
    """Write the note and each method's relevant part and complement, on one scale (see the module docstring).

    Parameters
    ----------
    folder : str
        Where the files go.
    stem : str
        Name prefix of this note's files.
    x : np.ndarray [shape=(N,)]
    parts : dict method → (relevant, complement)
    sr : int
    methods : sequence of str
        Method names in the order of ``parts`` (file names use their index, so any name is safe).

    Returns
    -------
    dict
        ``note``: file name; ``methods``: method → {"relevant", "complement", "energy_share"} (file names
        relative to ``folder`` and the relevant part's share of the reference energy); ``scale``: the factor
        applied to every signal of the note.
    """
    os.makedirs(folder, exist_ok=True)
    signals = [np.asarray(x, float)] + [s for m in methods if m in parts for s in parts[m]]
    peak = max(float(np.abs(s).max()) for s in signals)
    scale = PEAK / peak if peak > 0 else 1.0
    note = os.path.basename(write_audio(os.path.join(folder, f"{stem}-note"), scale * np.asarray(x), sr, fmt=fmt))
    out: Dict[str, object] = {"note": note, "scale": scale, "methods": {}}
    for i, m in enumerate(methods):
        if m not in parts:
            continue
        relevant, complement = parts[m]
        total = float(np.sum((relevant + complement) ** 2))
        out["methods"][m] = {
            "relevant": os.path.basename(write_audio(os.path.join(folder, f"{stem}-m{i}-relevant"),
                                                     scale * relevant, sr, fmt=fmt)),
            "complement": os.path.basename(write_audio(os.path.join(folder, f"{stem}-m{i}-complement"),
                                                       scale * complement, sr, fmt=fmt)),
            "energy_share": float(np.sum(relevant ** 2) / total) if total > 0 else None}
    return out
