"""Audio-domain augmentation of training notes (``scatterxai extract --augment K``).

Each row of a features file gets K augmented copies, appended as extra rows flagged ``augmented`` (1 … K;
0 for the recordings themselves).  A copy is computed from the audio, then scattered like any row:

* **random excerpt** — the window starts anywhere in the file (uniform over [0, duration − window]; the
  file's first window for a file no longer than it);
* **small pitch shift** — tape-style resampling by ±``shift_semitones`` (uniform): carrier and modulation
  rate move together by the same ratio (at ±0.5 semitone, ±3 %, well inside the half-octave λ2 grid), with
  none of the phase-vocoder smearing of transients that a duration-preserving shift adds;
* **reverberation** — convolution with an exponentially decaying Gaussian-noise impulse response of
  reverberation time RT60 (uniform in ``rt60_s``), mixed with the dry note at a wet fraction (uniform in
  ``wet``) of equal power;
* **noise** — white Gaussian noise at a signal-to-noise ratio uniform in ``snr_db`` (dB).

Gain is not applied: the front end divides every window by its standard deviation (:func:`scatterxai.audio.
standardize`), so a gain changes nothing but the noise level relative to the note, which ``snr_db``
already draws.  (audiomentations installs here, but its reverberation needs impulse-response files or
pyroomacoustics, and for the rest it would add five packages for a few lines of numpy and SciPy.)

**Why at extraction rather than during training**: scattering a window of the paper's configuration takes
~0.7 s on one core, so fresh copies every epoch would cost 42 notes × 60 epochs × 0.7 s ≈ 30 min for a
72-note study; computed once, the K copies cost K extractions and serve every fold, seed and architecture.

**Only ever used for training**: augmented rows share their recording's group (its file), so they sit in
the recording's fold; :meth:`scatterxai.features.FeatureFile.indices` returns them with the training rows
only, cross-validation puts them in training parts only, and μ is computed without them.  Every copy's
parameters are columns of ``/examples`` (``augmented``, ``aug_start_s``, ``aug_shift_semitones``,
``aug_rt60_s``, ``aug_wet``, ``aug_snr_db``) and the settings a root attribute (``augmentation``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from .._util.types import Device
from .._util.validate import check_float, check_int, check_seed
from ..errors import AudioError, ParameterError
from ..scattering.config import ScatteringConfig

__all__ = ["AugmentConfig", "draw_params", "augment_signal", "augmented_window", "PARAM_COLUMNS"]

#: the per-copy parameter columns (besides ``augmented``)
PARAM_COLUMNS = ("aug_start_s", "aug_shift_semitones", "aug_rt60_s", "aug_wet", "aug_snr_db")


def _range(name: str, value, low: float, high: float) -> Tuple[float, float]:
    try:
        a, b = (check_float(f"{name}[{i}]", v, low=low, high=high) for i, v in enumerate(value))
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a (low, high) pair, got {value!r}") from None
    if a > b:
        raise ParameterError(f"{name} must be (low, high) with low <= high, got {value!r}")
    return a, b


@dataclass(frozen=True)
class AugmentConfig:
    """Settings of the augmentation (recorded in the features file).

    Parameters
    ----------
    copies : int
        Augmented copies per row (K ≥ 1).
    seed : int
        Seeds every copy's parameters and noise.
    shift_semitones : float
        Largest pitch shift (both directions).
    rt60_s, wet, snr_db : (float, float)
        Ranges of the reverberation time (s), wet fraction and signal-to-noise ratio (dB).
    excerpt : bool
        Draw the window's start anywhere in the file.
    """

    copies: int = 4
    seed: int = 0
    shift_semitones: float = 0.5
    rt60_s: Tuple[float, float] = (0.1, 0.8)
    wet: Tuple[float, float] = (0.0, 0.5)
    snr_db: Tuple[float, float] = (20.0, 40.0)
    excerpt: bool = True

    def __post_init__(self):
        check_int("copies", self.copies, low=1)
        check_seed("seed", self.seed)
        check_float("shift_semitones", self.shift_semitones, low=0.0, high=2.0)
        object.__setattr__(self, "rt60_s", _range("rt60_s", self.rt60_s, 0.0, 5.0))
        object.__setattr__(self, "wet", _range("wet", self.wet, 0.0, 1.0))
        object.__setattr__(self, "snr_db", _range("snr_db", self.snr_db, -20.0, 120.0))

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def draw_params(durations_s: Sequence[float], window_s: float, config: AugmentConfig) -> Dict[str, np.ndarray]:
    """Parameters of the K copies of every row, copy-major: row i's copy k is entry k·n + i.

    Parameters
    ----------
    durations_s : sequence of float [shape=(n,)]
        Duration of each row's file (s).
    window_s : float
        Window length of the transform (s).
    config : AugmentConfig

    Returns
    -------
    dict of np.ndarray [shape=(K·n,)]: ``augmented`` (1 … K), ``source`` (the row), and
    :data:`PARAM_COLUMNS`.
    """
    d = np.asarray(durations_s, dtype=np.float64)
    n, K = len(d), config.copies
    rng = np.random.default_rng([config.seed, 0xA06])
    room = np.maximum(d - window_s, 0.0) if config.excerpt else np.zeros(n)
    return {"augmented": np.repeat(np.arange(1, K + 1), n).astype(np.int64),
            "source": np.tile(np.arange(n), K).astype(np.int64),
            "aug_start_s": np.tile(room, K) * rng.random(K * n),
            "aug_shift_semitones": rng.uniform(-config.shift_semitones, config.shift_semitones, K * n),
            "aug_rt60_s": rng.uniform(*config.rt60_s, K * n),
            "aug_wet": rng.uniform(*config.wet, K * n),
            "aug_snr_db": rng.uniform(*config.snr_db, K * n)}


def _power(y: np.ndarray) -> float:
    return float(np.mean(y ** 2)) + 1e-20


def augment_signal(y: np.ndarray, sr: int, *, shift_semitones: float, rt60_s: float, wet: float, snr_db: float,
                   rng: np.random.Generator) -> np.ndarray:
    """One augmented copy of a mono signal (module docstring): tape shift, reverberation, noise.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono signal at ``sr`` Hz.
    sr : int
    shift_semitones, rt60_s, wet, snr_db : float
    rng : numpy.random.Generator
        Draws the impulse response and the noise.

    Returns
    -------
    np.ndarray [shape=(m,), float64] — m ≈ n / 2^(shift/12) samples at ``sr`` Hz.
    """
    from scipy.signal import fftconvolve, resample_poly
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 1 or y.size == 0:
        raise ParameterError(f"y must be a non-empty 1-D signal, got shape {y.shape}")
    ratio = Fraction(2 ** (float(shift_semitones) / 12)).limit_denominator(200)
    if ratio != 1:   # played faster by `ratio`: fewer samples at the same rate
        y = resample_poly(y, ratio.denominator, ratio.numerator)
    if wet > 0 and rt60_s > 0:
        t = np.arange(int(1.5 * rt60_s * sr) + 1) / sr
        ir = rng.standard_normal(t.size) * np.exp(-6.91 * t / rt60_s)   # −60 dB at t = RT60
        rev = fftconvolve(y, ir)[:y.size]
        rev *= np.sqrt(_power(y) / _power(rev))
        y = (1 - wet) * y + wet * rev
    noise = rng.standard_normal(y.size)
    return y + noise * np.sqrt(_power(y) / 10 ** (float(snr_db) / 10))


def augmented_window(path: str, scattering: ScatteringConfig, params: Dict[str, float], *, seed: int) -> np.ndarray:
    """The augmented window of a file ready for scattering (mono, resampled, length N, standardised).

    Parameters
    ----------
    path : str
        Audio file.
    scattering : ScatteringConfig
        Gives the sample rate and window length N.
    params : dict
        One copy's :data:`PARAM_COLUMNS` values.
    seed : int
        Seeds the copy's impulse response and noise.

    Returns
    -------
    np.ndarray [shape=(N,), float32]
    """
    from ..audio import audio_info, prepare, read_audio, resample, to_mono
    duration_s, sr_in = audio_info(path)
    ratio = 2 ** (float(params["aug_shift_semitones"]) / 12)
    frames = int(np.ceil((scattering.N / scattering.sr) * ratio * sr_in)) + 64
    y, sr = read_audio(path, start=int(round(float(params["aug_start_s"]) * sr_in)), frames=frames)
    y = resample(to_mono(y), sr, scattering.sr)
    if y.size == 0:
        raise AudioError(f"{path}: no samples at {params['aug_start_s']:.2f} s (file of {duration_s:.2f} s)")
    rng = np.random.default_rng([int(seed), 0xA07])
    y = augment_signal(y, scattering.sr, shift_semitones=params["aug_shift_semitones"], rt60_s=params["aug_rt60_s"],
                       wet=params["aug_wet"], snr_db=params["aug_snr_db"], rng=rng)
    return prepare(y, scattering.sr, scattering)


def row_seed(config: AugmentConfig, k: int) -> int:
    """Seed of entry ``k`` of :func:`draw_params` (independent of how rows are batched)."""
    return int(np.random.SeedSequence([config.seed, int(k)]).generate_state(1)[0])



# ------------------------------------------------------------------------------------ the features file

class _Stacked:
    """Rows of a features dataset followed by extra rows: ``S[rows]`` for :func:`write_features`."""

    def __init__(self, first, rows: np.ndarray, extra: np.ndarray):
        self.first, self.rows, self.extra = first, np.asarray(rows, np.int64), extra
        self.shape = (len(self.rows) + len(extra),) + tuple(extra.shape[1:] or first.shape[1:])

    def __getitem__(self, idx):
        idx = np.asarray(idx, dtype=np.int64)
        n = len(self.rows)
        out = np.empty((len(idx),) + self.shape[1:], np.float32)
        head = idx < n
        if head.any():
            src = self.rows[idx[head]]
            order = np.argsort(src)
            block = np.empty((len(src),) + self.shape[1:], np.float32)
            block[order] = self.first[np.sort(src)]
            out[head] = block
        out[~head] = self.extra[idx[~head] - n]
        return out


def _originals(ff) -> np.ndarray:
    if "augmented" not in ff.examples:
        return np.arange(len(ff), dtype=np.int64)
    return np.flatnonzero(np.asarray(ff.examples["augmented"]) == 0).astype(np.int64)


def _scatter_copies(names, params, resolve, ff, config: AugmentConfig, *, device, method, batch_size, progress):
    """Raw scattering (K·n, C, T) of every copy."""
    from .._util.log import progress as progress_bar
    from ..scattering.api import scatter
    out = []
    n = len(params["source"])
    with progress_bar(total=n, desc="augment", unit="copy", enabled=progress) as bar:
        for i in range(0, n, batch_size):
            signals = [augmented_window(resolve(names[params["source"][j]]), ff.config,
                                        {k: params[k][j] for k in PARAM_COLUMNS}, seed=row_seed(config, j))
                       for j in range(i, min(i + batch_size, n))]
            out.append(scatter(np.stack(signals), ff.config, device=device, method=method,
                               batch_size=batch_size).cpu().numpy())
            bar.update(len(signals))
    return np.concatenate(out) if out else np.zeros((0, len(ff.table), ff.table.n_frames), np.float32)


def sync_augmentation(path: str, audio_root: str, config: Optional[AugmentConfig], *, device: Device = "auto",
                      method: str = "fast", batch_size: int = 8, allow_outside_root: bool = False,
                      progress: bool = True) -> int:
    """Give the features file ``path`` exactly the augmented rows of ``config`` (None: none); returns the
    number of augmented rows it holds.  Nothing is rewritten when it already has them."""
    from ..audio import audio_info
    from ..data.paths import AudioResolver
    from ..io.hdf5 import has_link, read_config
    from .store import FeatureFile, write_features
    with FeatureFile(path) as ff:
        recorded = str(ff.attrs.get("augmentation", ""))
        wanted = "" if config is None else config.to_json()
        if recorded == wanted:
            return len(ff) - len(_originals(ff))
        orig = _originals(ff)
        examples = {k: np.asarray(v)[orig] for k, v in ff.examples.items()
                    if k not in ("augmented", *PARAM_COLUMNS)}
        if "label" in examples:
            examples["label"] = ff.labels[orig]
        extra = np.zeros((0, len(ff.table), ff.table.n_frames), np.float32)
        if config is not None:
            resolve = AudioResolver(audio_root, allow_outside=allow_outside_root)
            names = [str(v) for v in examples["file_name"]]
            durations = [audio_info(resolve(nm))[0] for nm in names]
            params = draw_params(durations, ff.config.N / ff.config.sr, config)
            extra = _scatter_copies(names, params, resolve, ff, config, device=device, method=method,
                                    batch_size=batch_size, progress=progress)
            src = params["source"]
            examples = {k: np.concatenate([v, v[src]]) for k, v in examples.items()}
            examples["augmented"] = np.concatenate([np.zeros(len(orig), np.int64), params["augmented"]])
            for k in PARAM_COLUMNS:
                examples[k] = np.concatenate([np.full(len(orig), np.nan), params[k]])
        raw = ff._obj("features")
        attrs = {k: v for k, v in raw.file.attrs.items() if k not in _WRITER_ATTRS}
        attrs["augmentation"] = wanted
        failed = {"file_name": np.array([f for f, _ in ff.failed], dtype=object),
                  "reason": np.array([r for _, r in ff.failed], dtype=object)}
        if has_link(raw.file, "failed/csv_row"):
            failed["csv_row"] = ff._obj("failed/csv_row")[()]
        write_features(path, _Stacked(raw, orig, extra), examples, read_config(ff.attrs, "features"),
                       classes=ff.classes or None, failed=failed, mu=ff.mu, attrs=attrs, compression=raw.compression)
        return len(extra)


#: root attributes :func:`~scatterxai.features.store.write_features` sets itself
_WRITER_ATTRS = ("sr", "N", "J", "Q", "T", "fmin_hz", "n_frames", "r_psi", "sigma0", "alpha", "max_order", "classes",
                 "scatterxai_version", "kymatio_version", "augmentation")
