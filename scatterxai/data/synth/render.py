"""The signal path of one synthetic note: source → body (+ mute) → room → level and noise floor.

* Sustained instruments (winds, brass, bowed strings): a harmonic source read from wavetables at the
  instantaneous phase ∫f(t)dt, so that any pitch trajectory (vibrato, trill glides, drift) costs one table
  look-up per sample.  Two tables (one dynamics step darker and brighter) are cross-faded by a brightness
  control: louder moments and attacks are brighter, as in real instruments.  An alternate pair of tables
  holds the second timbre of trills and key bisbigliandi (another fingering), at the same loudness.
  Breath or bow noise follows the air flow or bow; the technique's own noise (flutter turbulence,
  bow-change scratch, key clicks) is added at the note's ``tech_noise_db`` relative to the tone.
* The harp: two strings tuned to the same pitch, plucked alternately; each octave band of partials has
  its own decay (high partials die first) and its own slightly stretched fundamental (string stiffness:
  f_k = k f0 sqrt(1 + B k²)); a finger/stick click at each pluck.
* Body and mute are a fixed spectral envelope (:func:`scatterxai.instruments.response_db`) made minimum
  phase (causal, as a real body), convolved with a small-room impulse response (early reflections and an
  exponential tail), all in one FFT.
* Level follows the dynamics marking; a noise floor at -78…-62 dBFS is added after it (so pp notes have
  the worse signal-to-noise ratio, as in a studio).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Protocol

import numpy as np
from scipy import fft as sfft
from scipy.signal import lfilter

from .instruments import DYNAMICS, VOWELS, Instrument, harmonic_amplitudes, response_db
from .realism import Performance, apply_performance, mic_db, modes_db, room_ir
from .streams import Rng, substream
from .techniques import modulator_phase, smooth_noise, technique_controls

__all__ = ["SR", "TABLE_SIZE", "render_sustained", "render_plucked", "body_and_room", "sung_vowel", "finish"]

#: sample rate of the synthetic corpus (Hz)
SR = 44100
#: wavetable length (samples per period); holds up to TABLE_SIZE/2 - 1 partials
TABLE_SIZE = 4096


class NoteLike(Protocol):
    """What the renderers read of a note: a :class:`~scatterxai.data.synth.corpus.NoteSpec` (a protocol,
    since that module imports this one)."""

    technique: str
    dynamics: str
    f0_hz: float
    duration_s: float
    tech_noise_db: float

    def params(self) -> dict: ...


#: brightness coupling (dynamics steps per 6 dB of instantaneous level) by excitation
_BRIGHT_COUPLING = {"lip": 1.0, "reed": 0.5, "airjet": 0.5, "bowed": 0.3, "voice": 0.5}


def _table(amplitudes, phases):
    """One period (TABLE_SIZE samples, +1 wrap-around sample) of sum_k a_k sin(2π k x + θ_k)."""
    spec = np.zeros(TABLE_SIZE // 2 + 1, dtype=np.complex128)
    n = min(len(amplitudes), TABLE_SIZE // 2 - 1)
    spec[1:n + 1] = amplitudes[:n] * np.exp(1j * (phases[:n] - np.pi / 2))
    table = sfft.irfft(spec, TABLE_SIZE) * (TABLE_SIZE / 2)
    return np.append(table, table[0])


class _Reader:
    """Linear-interpolation look-up at a phase given in cycles (index computed once, many tables)."""

    def __init__(self, cycles):
        x = (cycles - np.floor(cycles)) * TABLE_SIZE
        self.i = np.minimum(x.astype(np.int64), TABLE_SIZE - 1)
        self.a = x - self.i

    def __call__(self, table):
        return table[self.i] + self.a * (table[self.i + 1] - table[self.i])


def _envelope(t, duration, attack, release, rng, sr):
    """Note envelope: raised-cosine attack, level drift (< 0.5 Hz, ~1 dB), exponential release."""
    rise = 0.5 - 0.5 * np.cos(np.pi * np.clip(t / attack, 0.0, 1.0))
    drift_db = rng.uniform(0.3, 1.5) * smooth_noise(rng, len(t), sr, 0.5) \
        + rng.uniform(-2.0, 2.0) * np.clip(t / max(duration, 1e-3), 0, 1)
    tail = np.exp(-np.maximum(t - duration, 0.0) / release)
    return rise * tail * 10.0 ** (drift_db / 20.0)


def _highpass(x, corner_hz, sr):
    alpha = 1.0 / (1.0 + 2.0 * np.pi * corner_hz / sr)
    return lfilter([alpha, -alpha], [1.0, -alpha], x)


def render_sustained(spec: NoteLike, inst: Instrument, t: np.ndarray, rng: Rng, sr: int = SR, *,
                     variant: Mapping[str, Any], modulated: bool = True, perf: Optional[Performance] = None,
                     prng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Source signal (before body and room) of a wind, brass or bowed-string note.

    Parameters
    ----------
    spec : scatterxai.synth.NoteSpec
    inst : scatterxai.instruments.Instrument
    t : np.ndarray [shape=(n,)]
        Time since the note onset (s).
    rng : np.random.Generator
    variant : dict
        Timbre adjustments of the technique variant (``tilt_add``, ``noise_add_db``, ``comb_beta``,
        ``voice``, ``alt_db``).
    modulated : bool
        False renders the note without its technique (:meth:`Controls.neutral`): every random draw is the
        same, so timbre, noise, room and level match the modulated note.
    perf, prng : Performance and its generator, optional
        Realism of the note (:mod:`.realism`): legato phrase, attack transient, natural vibrato depth.

    Returns
    -------
    x : np.ndarray [shape=(n,), float64]
    """
    n = len(t)
    ctrl, _, _ = technique_controls(spec.technique, t, spec.params(), substream(rng, "technique"), sr)
    if not modulated:
        ctrl = ctrl.neutral()
    if perf is not None:
        apply_performance(ctrl, perf, spec.technique, inst.excitation, t, prng, sr)
    # natural pitch fluctuation of a held note: slow drift (cents) and a little broadband wobble
    wander = rng.uniform(0.02, 0.06) * smooth_noise(rng, n, sr, 0.3) \
        + rng.uniform(0.003, 0.015) * smooth_noise(rng, n, sr, 15.0)
    sounding = (t >= 0) & (t < spec.duration_s)
    pitch = ctrl.pitch_st + wander - wander[sounding].mean()   # f0_hz stays the mean pitch
    f = spec.f0_hz * 2.0 ** (pitch / 12.0)
    cycles = np.cumsum(f) / sr + rng.uniform()
    read = _Reader(cycles)

    attack = rng.uniform(*inst.attack_s)
    release = rng.uniform(*inst.release_s)
    env = _envelope(t, spec.duration_s, attack, release, rng, sr)
    amp = np.maximum(ctrl.amp, 0.0)
    coupling = _BRIGHT_COUPLING[inst.excitation]
    # attacks are brighter; louder instants are brighter (strongly so for brass)
    bright = ctrl.bright + coupling * 20.0 * np.log10(np.maximum(amp, 1e-3)) / 6.0 \
        + 0.8 * np.exp(-np.maximum(t, 0.0) / (2.0 * attack))
    w = np.clip(0.5 + 0.5 * bright, 0.0, 1.0)

    dyn_step = DYNAMICS[spec.dynamics][0]
    n_partials = int(max(1, min(TABLE_SIZE // 2 - 1, 0.45 * sr / f.max())))
    tilt = rng.normal(0.0, 1.0) + variant.get("tilt_add", 0.0)
    beta = variant.get("comb_beta", 0.0)
    ripple = 10.0 ** (rng.normal(0.0, 1.5, n_partials) / 20.0)   # per-partial irregularity
    phases = rng.uniform(0, 2 * np.pi, n_partials)

    def pair(extra_gain):
        dark = harmonic_amplitudes(inst, spec.f0_hz, n_partials, dyn_step=dyn_step - 1.0,
                                   tilt_add_db_oct=tilt, comb_beta=beta)
        bright_ = harmonic_amplitudes(inst, spec.f0_hz, n_partials, dyn_step=dyn_step + 1.0,
                                      tilt_add_db_oct=tilt, comb_beta=beta)
        return (_table(dark * ripple * extra_gain, phases), _table(bright_ * ripple * extra_gain, phases))

    dark_t, bright_t = pair(1.0)
    harm = read(dark_t) + w * read(bright_t - dark_t)
    if ctrl.alt is not None:
        # another fingering: a smooth random reshaping of the spectrum (±alt_db), same phases
        k = np.arange(1, n_partials + 1)
        curve = 10.0 ** (np.interp(np.log2(k), np.linspace(0, np.log2(n_partials + 1), 6),
                                   substream(rng, "alt").normal(0.0, _alt_db(variant, spec, perf), 6)) / 20.0)
        base = harmonic_amplitudes(inst, spec.f0_hz, n_partials, dyn_step=dyn_step, tilt_add_db_oct=tilt,
                                   comb_beta=beta) * ripple
        curve /= np.sqrt(np.sum((base * curve) ** 2) / np.sum(base ** 2))   # same loudness, other colour
        dark_b, bright_b = pair(curve)
        harm_b = read(dark_b) + w * read(bright_b - dark_b)
        harm = harm + ctrl.alt * (harm_b - harm)
    harm *= env * amp

    if variant.get("voice"):
        harm += _voice(spec.f0_hz, pitch, env * amp, substream(rng, "voice"), sr)

    return _with_noises(harm, spec, inst, t, env, ctrl, rng, sr, noise_add_db=variant.get("noise_add_db", 0.0))


def _alt_db(variant, spec, perf):
    """Spread (dB) of the alternate fingering's colour: 2 dB more for trills under ``articulation``."""
    extra = 2.0 if perf is not None and perf.articulation and spec.technique == "trill" else 0.0
    return variant.get("alt_db", 3.0) + extra


def _with_noises(harm, spec, inst, t, env, ctrl, rng, sr, *, noise_add_db):
    """The tone plus breath / bow noise (following the air flow or bow, with an onset burst) and the
    technique's own noise, each at its level relative to the tone."""
    n = len(t)
    noise = _highpass(rng.standard_normal(n), inst.noise_hp_hz, sr)
    onset_burst = 1.0 + rng.uniform(1.0, 6.0) * np.exp(-np.maximum(t, 0.0) / rng.uniform(0.01, 0.04))
    noise *= env * np.maximum(ctrl.noise, 0.0) * onset_burst
    noise_db = rng.uniform(*inst.noise_db) + noise_add_db
    on = (t > 0) & (t < spec.duration_s)
    harm_rms = _rms(harm[on])
    out = harm + 10.0 ** (noise_db / 20.0) * harm_rms / max(_rms(noise[on]), 1e-12) * noise
    if ctrl.tech_noise is not None and spec.tech_noise_db > -100:
        # the technique's own noise, its level (re the tone) measured where the technique is active
        tn = _highpass(substream(rng, "tech_noise").standard_normal(n), inst.noise_hp_hz, sr) * env \
            * ctrl.tech_noise
        active = on & (ctrl.tech_noise > 0.05 * ctrl.tech_noise.max())
        if active.any():
            out += 10.0 ** (spec.tech_noise_db / 20.0) * harm_rms / max(_rms(tn[active]), 1e-12) * tn
    return out


def _voice(f0, pitch, env, rng, sr):
    """A sung tone (tuba players' "flatterzunge-and-voice-unison") in the nearest singable octave."""
    octave = 2.0 ** np.clip(np.round(np.log2(160.0 / f0)), -3, 3)
    f = f0 * octave * 2.0 ** ((pitch + rng.normal(0.0, 0.15)) / 12.0)
    k = np.arange(1, int(4000 / (f0 * octave)) + 2)
    vowel = sum(g * np.exp(-0.5 * (np.log2(k * f0 * octave / c) / 0.15) ** 2)
                for c, g in ((450.0, 1.0), (800.0, 0.6), (2600.0, 0.15)))
    a = (k ** -1.0) * (0.05 + vowel)
    tab = _table(a, rng.uniform(0, 2 * np.pi, len(a)))
    y = _Reader(np.cumsum(f) / sr)(tab)
    return 10.0 ** (rng.uniform(-10.0, -3.0) / 20.0) * env * y / max(_rms(y), 1e-12) * 0.7


def render_plucked(spec: NoteLike, inst: Instrument, t: np.ndarray, rng: Rng, sr: int = SR, *,
                   variant: Mapping[str, Any], modulated: bool = True, perf: Optional[Performance] = None,
                   prng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Source signal of harp bisbigliando / fingertip tremolo: two strings plucked alternately at the
    spec's modulation rate, overlapping decays, octave-band decay times, stretched partials, clicks.

    ``modulated=False``: only the first pluck sounds and its string rings freely (the same random draws
    as the modulated note, the later plucks and the finger contacts at zero weight).  ``perf`` (realism)
    changes nothing here but the window of exact mean rate (an excerpt's plucks before the cut are kept)."""
    p = spec.params()
    phi = modulator_phase(rng, t, p["modulation_hz"], p.get("rate_start_s", p["mod_start_s"]),
                          p.get("rate_end_s", p["mod_end_s"]), jitter=p["jitter"], drift=p["drift"], sr=sr)
    seg = (t >= p["mod_start_s"]) & (t < p["mod_end_s"])
    first = int(np.ceil(phi[seg][0]))
    n_plucks = int(np.floor(phi[seg][-1])) + 1 - first
    times = np.interp(np.arange(first, first + n_plucks), phi[seg], t[seg])
    level = np.exp(rng.normal(0.0, 0.1, n_plucks))
    if not modulated:
        level[1:] = 0.0
    stick = variant.get("stick", False)
    tau1 = float(np.clip(2.5 * np.sqrt(220.0 / spec.f0_hz), 0.4, 6.0)) * rng.uniform(0.7, 1.3)
    release = rng.uniform(*inst.release_s)
    damp = np.exp(-np.maximum(t - spec.duration_s, 0.0) / release)
    drift = 2.0 ** ((rng.uniform(0.01, 0.04) * smooth_noise(rng, len(t), sr, 0.3)) / 12.0)
    dyn_step = DYNAMICS[spec.dynamics][0]
    # the two strings share a design (pluck position, stiffness, spectrum) and differ slightly: a unison
    # tuned by ear (the harpist removes audible beats: the fundamentals beat slower than 1 Hz), ±20 %
    # stiffness, ±0.7 dB spectral ripple, ±0.3 dB level
    n_partials = int(max(1, min(63, 0.45 * sr / (spec.f0_hz * 1.05), 4000.0 / spec.f0_hz)))
    base_amps = harmonic_amplitudes(inst, spec.f0_hz, n_partials, dyn_step=dyn_step,
                                    tilt_add_db_oct=rng.normal(0.0, 1.5) - (3.0 if stick else 0.0),
                                    comb_beta=rng.uniform(0.2, 0.5))
    base_inharm = 10.0 ** rng.uniform(-4.7, -3.5)
    out = np.zeros(len(t))
    for s in (0, 1):
        mine = times[s::2]
        if len(mine) == 0:
            continue
        g_s = substream(rng, f"string{s}")   # own streams: later calls keep their numbers
        f0 = spec.f0_hz + g_s.uniform(-1.0, 1.0) if s else spec.f0_hz
        inharm = base_inharm * g_s.uniform(0.8, 1.2)
        gain = 10.0 ** (g_s.normal(0.0, 0.3) / 20.0)
        amps = base_amps * 10.0 ** (g_s.normal(0.0, 0.7, n_partials) / 20.0)
        phases = g_s.uniform(0, 2 * np.pi, n_partials)
        cycles0 = np.cumsum(f0 * drift) / sr
        j = np.searchsorted(mine, t, side="right") - 1          # last pluck of this string at t
        jj = np.maximum(j, 0)
        dt = np.where(j >= 0, t - mine[jj], 0.0)
        a_now = np.where(j >= 0, level[s::2][jj], 0.0) * gain
        # before re-plucking, the finger (or stick) touches the string and stops it: the vibration dies
        # within a few ms from the contact, 15-50 ms before the next pluck of this string
        contact = np.append(mine[1:] - g_s.uniform(0.015, 0.05, len(mine) - 1), np.inf)
        if not modulated:
            contact[:] = np.inf
        stopped = np.exp(-np.maximum(t - contact[jj], 0.0) / g_s.uniform(0.003, 0.008))
        onset = 1.0 - np.exp(-dt / 0.0015)
        fast_w, fast_tau = g_s.uniform(0.4, 0.7), g_s.uniform(0.03, 0.1)
        for g in range(6):
            k_lo, k_hi = 2 ** g, min(2 ** (g + 1) - 1, n_partials)
            if k_lo > n_partials:
                break
            k_c = np.sqrt(k_lo * k_hi)
            tau = tau1 / (1.0 + 0.35 * (k_c - 1.0))
            a = np.zeros(k_hi + 1)
            a[k_lo:k_hi + 1] = amps[k_lo - 1:k_hi]
            tab = _table(a[1:], phases[:k_hi])
            # a pluck's energy: a fast-decaying part (the "ping") and the ringing string
            e = a_now * onset * stopped * ((1.0 - fast_w) * np.exp(-dt / tau)
                                           + fast_w * np.exp(-dt / min(fast_tau, tau)))
            out += e * _Reader(cycles0 * np.sqrt(1.0 + inharm * k_c ** 2))(tab)
    out *= damp
    # click of finger (or stick) at each pluck
    click = np.zeros(len(t))
    idx = np.clip(np.round((times - t[0]) * sr).astype(np.int64), 0, len(t) - 1)
    click[idx] = level
    tau_c = rng.uniform(0.003, 0.008) if stick else rng.uniform(0.001, 0.003)
    click_env = lfilter([1.0], [1.0, -np.exp(-1.0 / (tau_c * sr))], click)
    noise = _highpass(rng.standard_normal(len(t)), inst.noise_hp_hz, sr) * click_env
    click_db = rng.uniform(-24.0, -14.0) if stick else rng.uniform(-36.0, -24.0)
    on = (t > 0) & (t < spec.duration_s)
    peak_rms = _rms(out[on])
    return out + 10.0 ** (click_db / 20.0) * noise * peak_rms / max(_rms(noise[on]), 1e-12) * 3.0


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def _min_phase_ir(mag_db, n_fft):
    """Minimum-phase impulse response (length n_fft // 2, faded) of a magnitude response given on the
    n_fft // 2 + 1 bins of a real FFT (homomorphic / cepstral method)."""
    log_mag = mag_db * (np.log(10.0) / 20.0)
    cep = sfft.irfft(log_mag, n_fft)
    fold = np.zeros(n_fft)
    fold[0] = cep[0]
    fold[1:n_fft // 2] = 2.0 * cep[1:n_fft // 2]
    fold[n_fft // 2] = cep[n_fft // 2]
    h = sfft.irfft(np.exp(sfft.rfft(fold)), n_fft)[:n_fft // 2]
    fade = np.ones(len(h))
    m = len(h) // 4
    fade[-m:] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, m))
    return h * fade


def _room_ir(rng, sr):
    """Small room: direct sound, 3 early reflections (2–25 ms), exponential diffuse tail (RT60 0.15–0.5 s)
    10–22 dB below the direct sound."""
    rt60 = rng.uniform(0.15, 0.5)
    n = int(rt60 * sr)
    h = np.zeros(n)
    h[0] = 1.0
    for _ in range(3):
        h[int(rng.uniform(0.002, 0.025) * sr)] += rng.uniform(0.05, 0.25) * rng.choice((-1.0, 1.0))
    tt = np.arange(n) / sr
    start = int(0.008 * sr)
    tail = rng.standard_normal(n) * np.exp(-6.9 * tt / rt60)
    tail[:start] = 0.0
    tail *= 10.0 ** (rng.uniform(-22.0, -10.0) / 20.0) / np.sqrt(np.sum(tail ** 2))
    return h + tail


def body_and_room(x: np.ndarray, inst: Instrument, mute: Optional[str], rng: Rng, sr: int = SR, *,
                  perf: Optional[Performance] = None, prng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Filter a source through the body (+ mute) response and a small room (one FFT convolution); with
    realism (``perf``) also the individual instrument's body modes, the microphone and a larger room.

    Parameters
    ----------
    x : np.ndarray [shape=(n,)]
    inst : Instrument
    mute : str or None
    rng : np.random.Generator

    Returns
    -------
    y : np.ndarray [shape=(n,)]
    """
    n_small = 16384
    f = np.fft.rfftfreq(n_small, 1.0 / sr)
    if inst.excitation == "voice":
        inst = sung_vowel(inst, rng)
    coloration = [(2.0 ** rng.uniform(np.log2(100.0), np.log2(10000.0)), rng.uniform(0.5, 1.5),
                   rng.uniform(-1.5, 1.5)) for _ in range(3)]
    db = response_db(inst, mute, f, formant_shift_oct=rng.normal(0.0, 0.03), extra=coloration)
    db += rng.uniform(-0.5, 0.5) * np.log2(np.maximum(f, 20.0) / 1000.0)
    if perf is not None:
        if perf.individual >= 0:
            db += modes_db(inst.name, perf.individual, inst.excitation, f)
        db += mic_db(perf, f)
    db -= db.max()
    body, room = _min_phase_ir(db, n_small), _room_ir(rng, sr)
    if perf is not None and perf.rt60_s > 0:
        room = room_ir(perf, prng, sr)
    n_h = len(body) + len(room) - 1
    m = sfft.next_fast_len(n_h, real=True)
    h = sfft.irfft(sfft.rfft(body, m) * sfft.rfft(room, m), m)[:n_h]
    n_fft = sfft.next_fast_len(len(x) + len(h), real=True)
    y = sfft.irfft(sfft.rfft(x, n_fft) * sfft.rfft(h, n_fft), n_fft)
    return y[:len(x)]


def sung_vowel(inst: Instrument, rng: Rng) -> Instrument:
    """The voice with one of :data:`.instruments.VOWELS` as its body, the formants scaled by the singer's
    tract length (−0.1…+0.25 octave: from long male tracts to short female ones).  Two draws from ``rng``,
    made for voice notes only (every other note's draws are unchanged)."""
    vowel = sorted(VOWELS)[int(rng.integers(len(VOWELS)))]
    scale = 2.0 ** rng.uniform(-0.1, 0.25)
    return dataclasses.replace(inst, formants=tuple((c * scale, w, g) for c, w, g in VOWELS[vowel]))


def finish(y: np.ndarray, dynamics: str, rng: Rng, sr: int = SR) -> np.ndarray:
    """Scale to the peak level of the dynamics marking (±1.5 dB), add the noise floor, keep within ±1."""
    peak_db = DYNAMICS[dynamics][1] + rng.normal(0.0, 1.5)
    y = y * (10.0 ** (peak_db / 20.0) / max(np.max(np.abs(y)), 1e-12))
    floor = _highpass(rng.standard_normal(len(y)), 30.0, sr)
    floor = lfilter([1.0], [1.0, -0.6], floor)           # slightly pink
    floor *= 10.0 ** (rng.uniform(-78.0, -62.0) / 20.0) / _rms(floor)
    return np.clip(y + floor, -0.999, 0.999)
