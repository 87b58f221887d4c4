"""Performance and recording conditions of the synthetic corpus ("realism factors").

A studio sample library holds whole notes, played alone, in a dry room, close to a good microphone.  A
researcher's recordings are excerpts of performances: a note starts before the window or stops inside
it, the player slurs to the next note, a vibrato drifts, the room rings, the background hums, the
microphone colours.  Each factor below adds one of these conditions to the corpus; every factor is
seeded per note, recorded per note in ``meta.csv`` (:data:`PERFORMANCE_COLUMNS`), and can be switched off
for an ablation (:class:`Realism`; ``scatterxai synth --realism``).  With every factor off the corpus is
rendered exactly as without this module (tested, bit for bit).

================ ===========================================================================================
factor           what it adds (per note, drawn from ``default_rng([seed, index, 2])``)
================ ===========================================================================================
``excerpt``      note durations 0.35–10 s (log-uniform; at least 2.5 modulation cycles sound) instead of
                 2–8 s; about half of the notes are *excerpts* as a user's segmentation cuts them: the file
                 starts inside the note (p = 0.3: no attack) and/or stops before its end (p = 0.3: no
                 release), with a hard cut (p = 0.3) or a 3–40 ms fade, 0.6–6 s long; files stop at 6.25 s
                 (the transform's window is 5.94 s)
``legato``       a third of the sustained notes are a slurred phrase of 2–4 notes (steps of 1–5 semitones,
                 20–90 ms glides, a small level dip, no re-attack); the technique goes on across the notes
``vibrato``      natural vibrato: rate drifting (slow log-rate s.d. 4–10 %) with a trend over the note
                 (−10…+15 %), depth from 0.08 to 0.7 semitone drifting (s.d. 30 %) and established after a
                 delay (0.1–0.8 s), shaken after each legato change
``room``         a room instead of the near-anechoic booth: stochastic impulse response (early reflections,
                 exponentially decaying noise whose decay is faster at high frequencies), RT60 0.2–2.2 s
                 (log-uniform), direct-to-reverberant ratio −3…+15 dB
``noise``        background noise 30–60 dB below the note (spectrum 1/f^α, α ∈ [0, 2], slow ±2 dB level
                 drift; mains hum at 50 or 60 Hz with harmonics in 30 % of the notes)
``mic``          microphone and channel colouration: low cut 30–160 Hz, high cut 7–20 kHz, a presence
                 bump of ±4 dB at 2–8 kHz, a tilt of ±1 dB/octave
``timbre``       physically informed timbre: each instrument model exists as 3 individual instruments whose
                 dense body modes (wooden bodies: 100 modes of Q 15–80; bores and bells: 12 modes of Q 5–20)
                 colour every note, so that a vibrato's partials sweep across resonances and their amplitudes
                 follow the frequency modulation; attack transients (brass lip scoop, bow and tongue
                 settling, a stronger noise precursor)
``articulation`` the depth of the technique's own amplitude pattern as measured on real notes (the
                 envelope's component at the modulation rate, relative to its mean: real trills 0.11–0.17,
                 bowed tremolos 0.29–0.57, flatterzunge 0.02–0.09; the studio corpus has trills at 0.04–0.21,
                 tremolos at 0.07–0.25): a trill's note changes dip 10–60 % (studio 0–15 %) and its upper note
                 sits −6…+3 dB from the lower (studio −2…+1.5), its other fingering colours by ±5 dB (±7 for
                 double trills; studio ±3 and ±5); tremolo strokes 70–99 % deep (studio 30–95 %) with a
                 6–25 ms rise, a 20–60 ms decay to a sustain of 10–60 % and a 20–60 ms fade at the bow change
                 (studio 3–12 ms, 20–80 ms, 35–85 %, 6–25 ms); flutter depths from 10 % (studio 30–95 %)
``players``      who plays a vibrato: SOL names vibrato a technique only on the instruments whose ordinary
                 sound has none (bassoon, oboe, tenor trombone, the only vibrato cells of SOL-PMT), while strings,
                 flutes, saxophones and voices play vibrato as their ordinary sound; each vibrato note is sung
                 (:data:`.corpus.SUNG_SHARE`: a quarter; the voice of :mod:`.instruments`, one of five vowels,
                 vibrato :data:`SUNG_DEPTH_ST` deep) or played by an instrument drawn uniformly from every
                 other sustained instrument of the corpus (:data:`.corpus.VIBRATO_PLAYERS`), at a pitch
                 drawn from its range, from ``default_rng([seed, index, 6])``; the other techniques keep
                 SOL-PMT's instruments
``common``       vibrato as common as in performance: SOL-PMT's vibrato class is its smallest (190 of 5,564
                 notes, 3.4 %: SOL names vibrato a technique only on bassoon, oboe and trombone), so the
                 vibrato cells get :data:`.corpus.COMMON_VIBRATO` (3) times their notes, appended after every
                 other note (whose indices and draws stay as they were; a mixed corpus ``@P`` adds them
                 whatever P); with ``players`` they are played and sung by anyone
================ ===========================================================================================

Ground truth stays exact under every factor: ``modulation_hz`` is the mean rate of the pattern over the
part of the modulated segment that the file holds; ``f0_hz`` is the fundamental of the main note of a
phrase (the one sounding longest in the file; the others are ``legato_steps`` semitones away);
``excerpt_start_s`` / ``excerpt_end_s`` give the part of the note (seconds from its onset) the file holds:
−``onset_s`` when the file holds the onset, ``duration_s`` when it holds the note's end (and release).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import fft as sfft

from ...errors import ParameterError
from ...task import DEFAULT_REALISM, REALISM_FACTORS
from .techniques import Controls, box_smooth, smooth_noise

__all__ = ["REALISM_FACTORS", "Realism", "Performance", "PERFORMANCE_COLUMNS", "DEFAULT_REALISM", "parse_realism",
           "draw_duration", "draw_performance", "performance_overrides", "performance_columns", "render_span",
           "performance_controls", "apply_performance", "modes_db", "mic_db", "room_ir", "background", "add_background",
           "cut_excerpt", "log_uniform",
           "legato_pitch", "MAX_FILE_S", "INDIVIDUALS", "SUNG_DEPTH_ST", "NATURAL_DEPTH_ST", "sung_depth"]

#: meta.csv columns written for every note (neutral values where a factor is off)
PERFORMANCE_COLUMNS = ("realism", "excerpt_start_s", "excerpt_end_s", "legato_notes", "legato_steps",
                       "vibrato_rate_trend", "rt60_s", "drr_db", "snr_db", "mic_lowcut_hz", "mic_highcut_hz",
                       "body_individual")
#: longest file of the ``excerpt`` factor (s): more than the transform's window of 2**18 samples at 44.1 kHz
MAX_FILE_S = 6.25
#: number of individual instruments per instrument model (``timbre``)
INDIVIDUALS = 3


@dataclass(frozen=True)
class Realism:
    """A set of realism factors (a subset of :data:`REALISM_FACTORS`).

    Build with :func:`parse_realism`: ``"all"``, ``"none"``, names joined by ``,`` or ``+``
    (``"excerpt,room"``), or ``"all-room"`` (every factor but those after ``-``); a suffix ``@p``
    (``"all-room@0.5"``) gives the factors to a share ``p`` of the notes (drawn per note, seeded) and leaves
    the others studio notes: a mixed corpus.
    """

    factors: Tuple[str, ...] = ()
    share: float = 1.0

    def __contains__(self, name: str) -> bool:
        return name in self.factors

    def __bool__(self) -> bool:
        return bool(self.factors)

    @property
    def name(self) -> str:
        """Canonical text: "none", "all" or the factors joined by "+" in :data:`REALISM_FACTORS` order, then
        ``@share`` when the factors go to a share of the notes only."""
        if not self.factors:
            return "none"
        base = "all" if len(self.factors) == len(REALISM_FACTORS) else "+".join(self.factors)
        return base if self.share >= 1.0 else f"{base}@{self.share:g}"

    def for_note(self, seed: int, index: int) -> Realism:
        """The factors of note ``index`` of a corpus: all of them, or none for the notes outside the share
        (decided by ``default_rng([seed, index, 5])``, a stream no other draw uses)."""
        if self.share >= 1.0 or not self.factors:
            return self
        keep = np.random.default_rng([int(seed), int(index), 5]).uniform() < self.share
        return Realism(self.factors) if keep else Realism()


RealismLike = Union[None, str, Realism, Iterable[str]]


def parse_realism(value: RealismLike) -> Realism:
    """A :class:`Realism` from its text, a list of factor names, or None (= "none")."""
    if isinstance(value, Realism):
        return value
    if value is None:
        return Realism()
    if isinstance(value, str):
        text, share = value.strip().lower(), 1.0
        if "@" in text:
            text, _, tail = text.partition("@")
            try:
                share = float(tail)
            except ValueError:
                share = float("nan")
            if not 0.0 < share <= 1.0:
                raise ParameterError(f"the share after '@' in realism {value!r} must be a number in (0, 1], "
                                     f"got {tail!r}")
        minus = ()
        if text.startswith("all-"):
            text, minus = "all", tuple(text[4:].replace("+", ",").split(","))
        names = REALISM_FACTORS if text == "all" else () if text in ("none", "") else \
            tuple(text.replace("+", ",").split(","))
        names = tuple(n for n in names if n not in minus)
        bad = [n for n in names + minus if n not in REALISM_FACTORS]
    else:
        names, share = tuple(str(v) for v in value), 1.0
        bad = [n for n in names if n not in REALISM_FACTORS]
    if bad:
        raise ParameterError(f"unknown realism factor(s) {bad} in {value!r}; valid: 'all', 'none', "
                             f"'all-<factor>' or names joined by ',' among {list(REALISM_FACTORS)}")
    return Realism(tuple(f for f in REALISM_FACTORS if f in names), share)


@dataclass(frozen=True)
class Performance:
    """The realism draws of one note (see the module docstring; times in seconds from the note onset).

    ``legato`` holds (time, semitones re the main note) of each note change; ``room_rt60_s`` 0 means the
    booth of the base renderer; ``snr_db`` inf means no background noise; ``individual`` -1 means the
    base timbre.
    """

    realism: str
    excerpt_start_s: float
    excerpt_end_s: float
    fade_s: float = 0.0
    legato: Tuple[Tuple[float, float], ...] = ()
    glide_s: float = 0.05
    rate_trend: float = 0.0
    depth_trend: float = 0.0
    depth_drift: float = 0.0
    rt60_s: float = 0.0
    drr_db: float = np.inf
    snr_db: float = np.inf
    noise_slope: float = 1.0
    hum_db: float = -np.inf
    hum_hz: float = 50.0
    mic: Tuple[float, ...] = ()
    articulation: bool = False
    individual: int = -1
    attack: Tuple[float, ...] = field(default=())

    @property
    def cut(self) -> bool:
        """Whether the file may be cut (starts inside the note, or stops at a given time)."""
        return np.isfinite(self.excerpt_start_s) or np.isfinite(self.excerpt_end_s)


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """One draw, uniform in log between ``lo`` and ``hi`` (one ``rng.uniform`` call)."""
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def draw_duration(rng: np.random.Generator, *, rate_hz: float, delay_s: float) -> float:
    """Note duration (s) of the ``excerpt`` factor: log-uniform 0.35–10 s, at least 2.5 cycles after
    ``delay_s`` (the start of the modulation)."""
    return max(log_uniform(rng, 0.35, 10.0), delay_s + 2.5 / rate_hz + 0.1)


#: peak deviation (semitones) of a singer's vibrato: wider than an instrumentalist's (about ±0.5–1
#: semitone in the singing-voice literature; 0.72 and 0.45 on two sung vowels of a development set, 0.06–0.22
#: on its 11 instrumental vibratos, measured by ``experiments/vibrato_depth.py``)
SUNG_DEPTH_ST = (0.3, 1.0)
#: peak deviation (semitones) of an instrumentalist's vibrato under the ``vibrato`` factor (log-uniform)
NATURAL_DEPTH_ST = (0.08, 0.7)


def sung_depth(depth: float, instrument_range: Tuple[float, float]) -> float:
    """A vibrato depth drawn log-uniformly from ``instrument_range`` moved to the same place of
    :data:`SUNG_DEPTH_ST` (the draw is the instrumentalist's; only its range differs)."""
    (a, b), (c, d) = np.log(instrument_range), np.log(SUNG_DEPTH_ST)
    return float(np.exp(c + (np.log(depth) - a) * (d - c) / (b - a)))


def performance_overrides(realism: Realism, rng: np.random.Generator, *, technique: str, rate_hz: float,
                          transition: bool, fixed_duration: bool, values: Tuple[float, ...],
                          sung: bool = False) -> Tuple[float, ...]:
    """The note parameters that realism factors redraw: (drift, fm_depth_st, mod_start_s, ramp_s, duration_s).

    ``vibrato`` (vibrato notes): more rate drift (log-rate s.d. 4–10 %), depths 0.08–0.7 semitone
    (log-uniform; sung, ``sung=True``: :data:`SUNG_DEPTH_ST`), established after 0.1–0.8 s over 0.2–0.8 s.
    ``excerpt``: the duration (:func:`draw_duration`; ×2.5 for SOL's transition variants, which modulate
    part of the note), unless the caller fixed it.  ``values`` are the studio note's; every draw happens
    whatever the factors.
    """
    drift, fm, start, ramp, duration = values
    natural = (rng.uniform(0.04, 0.1), log_uniform(rng, *NATURAL_DEPTH_ST), rng.uniform(0.1, 0.8),
               rng.uniform(0.2, 0.8))
    if sung:
        natural = (natural[0], sung_depth(natural[1], NATURAL_DEPTH_ST), *natural[2:])
    if "vibrato" in realism and technique == "vibrato":
        drift, fm, start, ramp = natural
    short = draw_duration(rng, rate_hz=rate_hz, delay_s=start)
    if "excerpt" in realism and not fixed_duration:
        duration = short * (2.5 if transition else 1.0)
    return drift, fm, start, ramp, duration


def render_span(perf: Performance, *, onset_s: float, duration_s: float, tail_s: float) -> Tuple[float, float]:
    """Times (s from the onset) rendered for a note with realism: the file's part of the note, from early
    enough for the room's response to what came before (1.3 RT60 + 0.25 s), to the end of the note's
    release and reverberation tail or the excerpt's end."""
    rt = 1.3 * perf.rt60_s
    a, b = perf.excerpt_start_s, perf.excerpt_end_s
    t0 = -onset_s if not np.isfinite(a) else max(-onset_s, a - rt - 0.25)
    return t0, min(duration_s + tail_s + rt, b)


def draw_performance(realism: Realism, rng: np.random.Generator, *, technique: str, excitation: str,
                     duration_s: float, onset_s: float, rate_hz: float, mod_start_s: float,
                     mod_end_s: float, release_s: float) -> Performance:
    """Draw the realism parameters of one note (every draw happens whatever the factors, so a factor's
    values do not depend on which other factors are on).

    Parameters
    ----------
    realism : Realism
    rng : np.random.Generator
        The note's realism stream, ``default_rng([seed, index, 2])``.
    technique, excitation : str
        Class name and the instrument's excitation ("bowed", "plucked", "reed", "airjet", "lip").
    duration_s, onset_s, rate_hz, mod_start_s, mod_end_s, release_s : float
        The note's duration, onset in the file, modulation rate, modulated segment and the longest
        release of its instrument.

    Returns
    -------
    Performance
    """
    cut_in, cut_out, hard = rng.uniform(size=3) < (0.3, 0.3, 0.3)
    length, where = log_uniform(rng, 0.6, 6.0), rng.uniform()
    fade = 0.0 if hard else log_uniform(rng, 0.003, 0.04)
    start, end = -np.inf, np.inf
    if "excerpt" in realism and (cut_in or cut_out):
        # a window of `length` s inside the note, placed at random
        lo = mod_start_s if cut_in else -onset_s
        hi = duration_s if cut_out else duration_s + release_s
        s = lo + where * max(hi - lo - length, 0.0)
        start, end = (s if cut_in else -np.inf), (s + length if cut_out else np.inf)
        # at least 2.5 cycles of the modulation must sound in it, else the note stays whole
        if min(end, mod_end_s) - max(start, mod_start_s) < 2.5 / rate_hz:
            start, end = -np.inf, np.inf
    if "excerpt" in realism:
        # the transform sees 2**18 samples (5.94 s): a file stops at MAX_FILE_S (unheard) rather than
        # spending synthesis time on what extraction would cut
        end = min(end, (start if np.isfinite(start) else -onset_s) + MAX_FILE_S)
    legato = _draw_legato(rng, duration_s, excitation)
    trend = (rng.uniform(-0.1, 0.15), rng.uniform(-0.3, 0.3), rng.uniform(0.15, 0.35))
    room = (log_uniform(rng, 0.2, 2.2), rng.uniform(-3.0, 15.0))
    noise = (rng.uniform(30.0, 60.0), rng.uniform(0.0, 2.0), rng.uniform(), rng.uniform(-25.0, -10.0),
             rng.choice((50.0, 60.0)))
    mic = (log_uniform(rng, 30.0, 160.0), log_uniform(rng, 7000.0, 20000.0), log_uniform(rng, 2000.0, 8000.0),
           rng.uniform(-4.0, 4.0), rng.uniform(-1.0, 1.0))
    individual = int(rng.integers(INDIVIDUALS))
    attack = (rng.uniform(0.2, 0.8), rng.uniform(0.015, 0.045), rng.uniform(-0.25, 0.25), rng.uniform(0.02, 0.07),
              rng.uniform(2.0, 6.0))
    on = realism.__contains__
    return Performance(
        realism=realism.name, excerpt_start_s=float(start), excerpt_end_s=float(end), fade_s=float(fade),
        legato=legato if on("legato") and excitation != "plucked" else (),
        rate_trend=float(trend[0]) if on("vibrato") and technique == "vibrato" else 0.0,
        depth_trend=float(trend[1]) if on("vibrato") and technique == "vibrato" else 0.0,
        depth_drift=float(trend[2]) if on("vibrato") and technique == "vibrato" else 0.0,
        rt60_s=float(room[0]) if on("room") else 0.0, drr_db=float(room[1]) if on("room") else np.inf,
        snr_db=float(noise[0]) if on("noise") else np.inf, noise_slope=float(noise[1]),
        hum_db=float(noise[3]) if on("noise") and noise[2] < 0.3 else -np.inf, hum_hz=float(noise[4]),
        mic=tuple(float(m) for m in mic) if on("mic") else (), individual=individual if on("timbre") else -1,
        attack=tuple(float(a) for a in attack) if on("timbre") else (), articulation=on("articulation"))


def _draw_legato(rng, duration_s, excitation):
    """Note changes of a slurred phrase: ((time s, semitones re the main note), ...) or ()."""
    use, k = rng.uniform(), int(rng.integers(2, 5))
    fractions = rng.dirichlet(np.full(k, 2.0))
    steps = rng.integers(1, 6, size=k - 1) * rng.choice((-1, 1), size=k - 1)
    if use >= 1.0 / 3.0 or duration_s < 0.8 * k:
        return ()
    times = np.cumsum(fractions)[:-1] * duration_s
    level = np.concatenate(([0], np.cumsum(steps))).astype(np.float64)
    main = int(np.argmax(fractions))
    level -= level[main]
    return tuple((float(t), float(v)) for t, v in zip(times, level[1:])) + ((0.0, float(level[0])),)


def legato_pitch(perf: Performance, t: np.ndarray, sr: float) -> np.ndarray:
    """Pitch offset (semitones) of a slurred phrase: steps at the note changes, smoothed by the glide."""
    if not perf.legato:
        return np.zeros(len(t))
    *changes, (_, first) = perf.legato
    p = np.full(len(t), first)
    for time, level in changes:
        p[t >= time] = level
    return box_smooth(p, int(perf.glide_s * sr))


def legato_changes(perf: Performance) -> np.ndarray:
    """Times (s) of the note changes of a phrase."""
    return np.array([c[0] for c in perf.legato[:-1]])


def performance_columns(perfs: Sequence[Optional[Performance]], spans: Sequence[Tuple[float, float]]) -> dict:
    """meta.csv values of :data:`PERFORMANCE_COLUMNS`.

    Parameters
    ----------
    perfs : list of Performance or None (realism off)
    spans : list of (float, float)
        The part of each note its file holds (s from the note onset; the onset is at −``onset_s``).
    """
    out = {c: [] for c in PERFORMANCE_COLUMNS}
    for p, (a, b) in zip(perfs, spans):
        p = p or Performance("none", -np.inf, np.inf)
        steps = [lv for _, lv in p.legato[:-1]]
        values = (p.realism, float(a), float(b), len(steps) + 1,
                  ";".join(f"{s:+g}" for s in [p.legato[-1][1]] + steps) if steps else "0",
                  p.rate_trend, p.rt60_s, min(p.drr_db, 200.0), min(p.snr_db, 200.0), p.mic[0] if p.mic else 0.0,
                  p.mic[1] if p.mic else 0.0, p.individual)
        for c, v in zip(PERFORMANCE_COLUMNS, values):
            out[c].append(v)
    return {c: np.array(v, dtype=object if isinstance(v[0], str) else None) for c, v in out.items()}


# ------------------------------------------------------------------------------------------------------
# rendering: controls, responses, room, noise, excerpt


def performance_controls(perf: Performance, excitation: str, t: np.ndarray, rng: np.random.Generator,
                         sr: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pitch offset st, amplitude multiplier, noise multiplier, vibrato depth multiplier) of the legato
    phrase, the attack transient and the natural vibrato's depth envelope."""
    n = len(t)
    pitch, amp, noise, depth = legato_pitch(perf, t, sr), np.ones(n), np.ones(n), np.ones(n)
    changes = legato_changes(perf) if perf.legato else np.zeros(0)
    for c in changes:
        dip = np.exp(-0.5 * ((t - c) / 0.03) ** 2)
        amp *= 1.0 - 0.15 * dip
        # the player re-establishes the vibrato after a change
        depth *= 1.0 - 0.7 * np.exp(-np.maximum(t - c, 0.0) / 0.25) * (t >= c)
    if perf.attack:
        scoop, tau, settle, tau_s, burst = perf.attack
        after = np.maximum(t, 0.0)
        if excitation == "lip":
            pitch -= scoop * np.exp(-after / tau)
        elif excitation in ("bowed", "reed", "airjet", "voice"):
            pitch += settle * np.exp(-after / tau_s)
        noise *= 1.0 + burst * np.exp(-after / (2.0 * tau_s))
    if perf.depth_drift:
        span = max(float(t[-1] - max(t[0], 0.0)), 1e-3)
        depth *= np.exp(perf.depth_drift * smooth_noise(rng, n, sr, 0.7)) \
            * (1.0 + perf.depth_trend * np.clip(t / span, 0.0, 1.0))
    return pitch, amp, noise, depth


def apply_performance(ctrl: Controls, perf: Performance, technique: str, excitation: str, t: np.ndarray,
                      rng: np.random.Generator, sr: float) -> None:
    """Apply :func:`performance_controls` to a :class:`~.techniques.Controls` in place: the vibrato's
    depth envelope, then the phrase's and the attack's pitch, amplitude and noise."""
    pitch, amp, noise, depth = performance_controls(perf, excitation, t, rng, sr)
    if technique == "vibrato":
        ctrl.pitch_st = ctrl.pitch_st * depth
    ctrl.pitch_st = ctrl.pitch_st + pitch
    ctrl.amp, ctrl.noise = ctrl.amp * amp, ctrl.noise * noise


def modes_db(name: str, individual: int, excitation: str, f: np.ndarray) -> np.ndarray:
    """Dense body modes (dB) of one individual instrument: a fixed set of resonances per (model,
    individual), seeded by the name.  Wooden bodies: many narrow modes; bores and bells: few broad ones."""
    import zlib
    g = np.random.default_rng([zlib.crc32(name.encode()), 7919, int(individual)])
    if excitation in ("bowed", "plucked"):
        n, q, lo, hi, gain = 100, (15.0, 80.0), 150.0, 7000.0, (-8.0, 12.0)
    else:
        n, q, lo, hi, gain = 12, (5.0, 20.0), 200.0, 5000.0, (-4.0, 6.0)
    fc = np.exp(g.uniform(np.log(lo), np.log(hi), n))
    qs = np.exp(g.uniform(np.log(q[0]), np.log(q[1]), n))
    gains = g.uniform(*gain, n)
    x = (f[:, None] - fc[None, :]) / (fc / (2.0 * qs))[None, :]
    return (gains[None, :] / (1.0 + x ** 2)).sum(axis=1)


def mic_db(perf: Performance, f: np.ndarray) -> np.ndarray:
    """Microphone and channel response (dB) at ``f`` (Hz)."""
    if not perf.mic:
        return np.zeros_like(f)
    low, high, presence, presence_db, tilt = perf.mic
    ff = np.maximum(f, 1.0)
    db = -10.0 * np.log10(1.0 + (low / ff) ** 4) - 10.0 * np.log10(1.0 + (ff / high) ** 8)
    db += presence_db * np.exp(-0.5 * (np.log2(ff / presence) / 0.5) ** 2)
    return db + tilt * np.log2(np.clip(ff, 100.0, 16000.0) / 1000.0)


def room_ir(perf: Performance, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Stochastic room impulse response: the direct sound, 6–12 early reflections (3–40 ms) and a diffuse
    tail of exponentially decaying noise whose decay time falls with frequency (RT60 × 1.3 at 125 Hz …
    × 0.5 at 8 kHz), scaled to the direct-to-reverberant ratio."""
    rt60 = perf.rt60_s
    n = sfft.next_fast_len(int(1.1 * rt60 * 1.3 * sr), real=True)
    h = np.zeros(n)
    h[0] = 1.0
    for _ in range(int(rng.integers(6, 13))):
        h[int(rng.uniform(0.003, 0.04) * sr)] += rng.uniform(0.1, 0.5) * rng.choice((-1.0, 1.0))
    tt = np.arange(n) / sr
    spec = sfft.rfft(rng.standard_normal(n))
    f = sfft.rfftfreq(n, 1.0 / sr)
    # bands two octaves apart: each band's noise decays with its own RT60 (cross-faded on a log-frequency
    # axis)
    centres = 125.0 * 4.0 ** np.arange(4)
    factors = np.interp(np.log2(centres), np.log2([125.0, 1000.0, 8000.0]), [1.3, 1.0, 0.5])
    lf = np.log2(np.maximum(f, 1.0))
    weights = np.exp(-0.5 * ((lf[None, :] - np.log2(centres)[:, None]) / 1.2) ** 2)
    weights /= weights.sum(axis=0, keepdims=True)
    tail = np.zeros(n)
    for w, k in zip(weights, factors):
        tail += sfft.irfft(spec * w, n) * np.exp(-6.9 * tt / (rt60 * k))
    start = int(rng.uniform(0.005, 0.02) * sr)
    tail[:start] = 0.0
    tail *= np.sqrt(np.sum(h ** 2) / max(np.sum(tail ** 2), 1e-20)) * 10.0 ** (-perf.drr_db / 20.0)
    return h + tail


def background(perf: Performance, n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Background noise of unit RMS: 1/f^α noise with a slow level drift, plus mains hum."""
    m = sfft.next_fast_len(n, real=True)
    spec = sfft.rfft(rng.standard_normal(m))
    f = sfft.rfftfreq(m, 1.0 / sr)
    spec *= np.maximum(f, 20.0) ** (-perf.noise_slope / 2.0)
    spec[f < 15.0] = 0.0
    x = sfft.irfft(spec, m)[:n]
    x /= max(float(np.sqrt(np.mean(x ** 2))), 1e-20)
    x *= 10.0 ** (2.0 * smooth_noise(rng, n, sr, 0.3) / 20.0)
    if np.isfinite(perf.hum_db):
        t = np.arange(n) / sr
        hum = sum(a * np.sin(2 * np.pi * k * perf.hum_hz * t + rng.uniform(0, 2 * np.pi))
                  for k, a in ((1, 1.0), (2, 0.5), (3, 0.7), (5, 0.3)))
        x += 10.0 ** (perf.hum_db / 20.0) * hum / np.sqrt(np.mean(hum ** 2))
    return x


def add_background(y: np.ndarray, perf: Performance, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Add the background noise at ``snr_db`` below the RMS of the note's loud part (the 50-ms blocks
    within 20 dB of the loudest)."""
    if not np.isfinite(perf.snr_db):
        return y
    block = int(0.05 * sr)
    power = np.mean(y[:len(y) // block * block].reshape(-1, block) ** 2, axis=1) if len(y) >= block \
        else np.mean(y ** 2, keepdims=True)
    level = float(np.sqrt(np.mean(power[power > 0.01 * power.max()])))
    return y + level * 10.0 ** (-perf.snr_db / 20.0) * background(perf, len(y), rng, sr)


def cut_excerpt(y: np.ndarray, perf: Optional[Performance], onset_s: float, sr: int) -> np.ndarray:
    """The part of the rendered note the file holds, with the segmentation's fades at the cuts."""
    if perf is None or not perf.cut:
        return y
    i0 = 0 if not np.isfinite(perf.excerpt_start_s) else int(round((perf.excerpt_start_s + onset_s) * sr))
    i1 = len(y) if not np.isfinite(perf.excerpt_end_s) else int(round((perf.excerpt_end_s + onset_s) * sr))
    y = y[max(i0, 0):min(i1, len(y))].copy()
    m = min(int(perf.fade_s * sr), len(y) // 2)
    if m > 1:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(m) / m)
        if np.isfinite(perf.excerpt_start_s):
            y[:m] *= ramp
        if np.isfinite(perf.excerpt_end_s):
            y[-m:] *= ramp[::-1]
    return y
