"""Control signals of the five playing techniques (and of ordinary playing).

Every technique is a pattern repeated at a rate that wanders: the modulator phase Φ(t) (cycles) is the
integral of a rate r(t) = r0 · g(t) / mean(g) with g a positive random process (slow drift plus
cycle-to-cycle jitter), normalised so that the mean rate over the modulated segment is exactly ``r0`` — the
``modulation_hz`` ground truth.  The integer part of Φ numbers the cycles (so each cycle can draw its own
depth or shape) and the fractional part is the position in the cycle.

:func:`technique_controls` turns a technique and its parameters into audio-rate control arrays
(:class:`Controls`) that the renderer applies to a harmonic source: a pitch offset (semitones), an
amplitude multiplier, a brightness offset, a multiplier of the instrument's breath / bow noise, the
envelope of the technique's own noise (flutter turbulence, bow-change scratch, key clicks; its level
relative to the tone is the note's ``tech_noise_db``), and the weight of an alternate timbre (the upper
note of a trill, the second fingering of a bisbigliando).  A presence weight μ(t) ∈ [0, 1] fades the
technique in and out, so that SOL's transition variants ("ordinario-to-flatterzunge") modulate only part of
the note.

Physical models (per note, parameters drawn by the caller):

* vibrato — frequency modulation, slightly non-sinusoidal, with coupled amplitude and brightness
  modulation (breath vibrato), depth building up after the attack;
* trill — the pitch alternates with a note a minor or major second above: square pattern with variable
  duty cycle smoothed by glides of 6–20 ms, an articulation dip at each change, alternate-fingering timbre;
* tremolo — bow strokes: each stroke re-attacks (fast rise, decay to a sustain level, dip at the bow
  reversal), up and down strokes differ, a bow-noise burst and a brightness burst at each reversal;
* bisbigliando (keys, winds) — alternation of two fingerings of the same pitch: small detuning and timbre
  change, an amplitude dip and a key click at each change (the harp's bisbigliando is rendered by plucks
  in :mod:`scatterxai.synth`, driven by the same modulator phase);
* flatterzunge — the tongue (or throat) interrupts the air flow: per-cycle pulse-shaped amplitude dips of
  random depth and duty, turbulent noise bursts at each re-opening, pitch and brightness roughness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Optional, Tuple

import numpy as np

if TYPE_CHECKING:
    from .streams import Rng

__all__ = ["Controls", "smooth_noise", "modulator_phase", "presence", "box_smooth", "remap", "ranged",
           "technique_controls"]


@dataclass
class Controls:
    """Audio-rate control arrays (all shape (n,)).

    Attributes
    ----------
    pitch_st : pitch offset in semitones (added to the note's own drift)
    amp : amplitude multiplier of the harmonic tone (1 = unmodulated)
    bright : brightness offset in dynamics steps (+1 ≈ one marking louder in timbre)
    noise : multiplier of the breath / bow noise
    alt : weight in [0, 1] of the alternate timbre table, or None
    tech_noise : envelope (≥ 0, ~1 where active) of the technique's own noise, or None
    """

    pitch_st: np.ndarray
    amp: np.ndarray
    bright: np.ndarray
    noise: np.ndarray
    alt: Optional[np.ndarray] = None
    tech_noise: Optional[np.ndarray] = None

    def neutral(self) -> Controls:
        """The same controls with the technique removed: no pitch, amplitude or brightness pattern, plain
        breath/bow noise, alternate timbre and technique noise at zero weight.  Optional arrays stay
        arrays (of zeros), so a renderer takes the same code path and draws the same random numbers."""
        n = len(self.amp)
        zero = None if self.alt is None else np.zeros(n)
        return Controls(pitch_st=np.zeros(n), amp=np.ones(n), bright=np.zeros(n), noise=np.ones(n), alt=zero,
                        tech_noise=None if self.tech_noise is None else np.zeros(n))


def smooth_noise(rng: Rng, n: int, sr: float, cutoff_hz: float) -> np.ndarray:
    """Band-limited Gaussian noise of unit standard deviation (linear interpolation of white noise drawn
    at 2·cutoff).  [shape=(n,)]"""
    step = max(sr / (2.0 * cutoff_hz), 1.0)
    m = int(np.ceil(n / step)) + 2
    coarse = rng.standard_normal(m)
    return np.interp(np.arange(n) / step, np.arange(m), coarse)


def remap(value: float, studio: Tuple[float, float], measured: Tuple[float, float]) -> float:
    """``value``, drawn uniformly from the ``studio`` range, moved to the same place in the ``measured``
    range: the realism factor ``articulation`` keeps every studio draw (so the note's later draws are
    unchanged) and moves it to the range measured on real notes."""
    return measured[0] + (value - studio[0]) / (studio[1] - studio[0]) * (measured[1] - measured[0])


def ranged(rng: Rng, studio: Tuple[float, float], measured: Tuple[float, float], articulated: bool) -> float:
    """A uniform draw from ``studio``, moved to ``measured`` when ``articulated`` (:func:`remap`)."""
    value = rng.uniform(*studio)
    return remap(value, studio, measured) if articulated else value


def box_smooth(x: np.ndarray, width: int, passes: int = 2) -> np.ndarray:
    """Centred moving average of ``width`` samples, ``passes`` times (a triangular kernel for 2): smooth
    transitions in O(n)."""
    width = int(width)
    if width < 2:
        return x
    for _ in range(passes):
        c = np.concatenate(([0.0], np.cumsum(x)))
        half = width // 2
        lo = np.clip(np.arange(len(x)) - half, 0, len(x))
        hi = np.clip(np.arange(len(x)) - half + width, 0, len(x))
        x = (c[hi] - c[lo]) / np.maximum(hi - lo, 1)
    return x


def modulator_phase(rng: Rng, t: np.ndarray, rate: float, start: float, end: float, *, jitter: float,
                    drift: float, sr: float, trend: float = 0.0) -> np.ndarray:
    """Phase Φ(t) in cycles of a pattern whose mean rate over [start, end) is exactly ``rate`` Hz.

    Parameters
    ----------
    rng : np.random.Generator
    t : np.ndarray [shape=(n,)]
        Time in seconds (uniform, step 1/sr).
    rate : float
        Mean rate (Hz) over the segment.
    start, end : float
        Segment in seconds; Φ(start) = 0.
    jitter : float
        Standard deviation of the log-rate's fast part (cycle-to-cycle irregularity).
    drift : float
        Standard deviation of the log-rate's slow part (< 0.5 Hz; accelerations).
    trend : float
        Relative change of the rate from ``start`` to ``end`` (0.1: 10 % faster at the end), on top of the
        random parts; the mean over the segment stays ``rate``.

    Returns
    -------
    phi : np.ndarray [shape=(n,)]
    """
    n = len(t)
    log_g = drift * smooth_noise(rng, n, sr, 0.4) + jitter * smooth_noise(rng, n, sr, max(rate / 2, 1.0))
    if trend:
        log_g = log_g + np.log1p(trend) * np.clip((t - start) / max(end - start, 1e-3), 0.0, 1.0)
    g = np.exp(log_g)
    seg = (t >= start) & (t < end)
    if not seg.any():
        seg = np.ones(n, dtype=bool)
    r = rate * g / g[seg].mean()
    phi = np.cumsum(r) / sr
    i0 = int(np.argmax(seg))
    return phi - phi[i0]


def presence(t: np.ndarray, start: float, end: float, ramp_in: float, ramp_out: float,
             note_end: float) -> np.ndarray:
    """Weight μ(t) of the technique: 0 before ``start``, raised-cosine ramps, 1 inside, back to 0 after
    ``end`` unless the technique lasts to the end of the note."""
    mu = np.clip((t - start) / max(ramp_in, 1e-3) + 0.5, 0.0, 1.0)
    if end < note_end - 1e-6:
        mu = mu * np.clip((end - t) / max(ramp_out, 1e-3) + 0.5, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * mu)


def _per_cycle(rng, phi, size_fn):
    """Values drawn per cycle, indexed by the cycle number of each sample."""
    k = int(np.ceil(max(phi.max(), 0.0))) + 2
    values = size_fn(k)
    return values[np.clip(np.floor(phi).astype(np.int64), 0, k - 1)]


def _vibrato(rng, t, phi, mu, p, sr):
    depth = p["fm_depth_st"] * np.exp(0.15 * smooth_noise(rng, len(t), sr, 0.5))
    h2, psi = rng.uniform(0.0, 0.2), rng.uniform(0, 2 * np.pi)
    shape = (np.sin(2 * np.pi * phi) + h2 * np.sin(4 * np.pi * phi + psi)) / (1.0 + h2)
    psi_am = rng.uniform(0, 2 * np.pi)
    am = np.sin(2 * np.pi * phi + psi_am)
    amp = 1.0 + mu * p["am_depth"] * am
    return Controls(pitch_st=mu * depth * shape, amp=amp, bright=mu * 0.5 * p["am_depth"] * am * 4.0,
                    noise=amp)


def _square(phi, duty, glide_samples, gate):
    """Two-state pattern, upper state during the last (1 - duty) of each cycle where ``gate`` holds,
    with smoothed glides."""
    u = phi - np.floor(phi)
    s = ((u >= duty) & gate).astype(np.float64)
    return np.clip(box_smooth(s, glide_samples), 0.0, 1.0)


def _trill(rng, t, phi, mu, p, sr):
    duty = _per_cycle(rng, phi, lambda k: np.clip(rng.normal(rng.uniform(0.42, 0.58), 0.04, k), 0.3, 0.7))
    s = _square(phi, duty, int(rng.uniform(0.006, 0.02) * sr), mu > 0.5)
    change = 4.0 * s * (1.0 - s)  # 1 in the middle of each glide
    up_gain = 10.0 ** (ranged(rng, (-2.0, 1.5), (-6.0, 3.0), p.get("articulation", False)) / 20.0)
    amp = (1.0 + (up_gain - 1.0) * s) * (1.0 - p["am_depth"] * change)
    return Controls(pitch_st=p["fm_depth_st"] * s, amp=amp, bright=0.3 * change, noise=np.ones(len(t)),
                    alt=s, tech_noise=change)


def _tremolo(rng, t, phi, mu, p, sr):
    rate = p["modulation_hz"]
    u = phi - np.floor(phi)
    k = int(np.ceil(max(phi.max(), 0.0))) + 2
    asym = rng.uniform(0.0, 0.25)
    stroke = (1.0 + asym * (np.arange(k) % 2 - 0.5)) * np.exp(rng.normal(0.0, 0.08, k))
    a = stroke[np.clip(np.floor(phi).astype(np.int64), 0, k - 1)]
    art = p.get("articulation", False)
    rise = ranged(rng, (0.003, 0.012), (0.006, 0.025), art) * rate          # in cycles
    fall = ranged(rng, (0.006, 0.025), (0.02, 0.06), art) * rate
    decay = ranged(rng, (0.02, 0.08), (0.02, 0.06), art) * rate
    sustain = ranged(rng, (0.35, 0.85), (0.1, 0.6), art)
    floor = 1.0 - p["am_depth"]
    e = (1.0 - np.exp(-u / rise)) * (sustain + (1.0 - sustain) * np.exp(-u / decay)) \
        * (1.0 - np.exp(-(1.0 - u) / fall))
    e = floor + (1.0 - floor) * a * e
    # bow-change scratch: a burst at each reversal, a little scratch throughout the stroke
    burst = np.exp(-u / (rng.uniform(0.004, 0.015) * rate)) + rng.uniform(0.05, 0.3)
    attack_pitch = rng.uniform(0.0, 0.04) * np.exp(-u / decay)
    return Controls(pitch_st=mu * attack_pitch, amp=1.0 + mu * (e - 1.0),
                    bright=mu * rng.uniform(0.5, 1.5) * np.exp(-u / decay),
                    noise=1.0 + mu * (e - 1.0), tech_noise=mu * burst)


def _bisbigliando_keys(rng, t, phi, mu, p, sr):
    rate = p["modulation_hz"]
    # the fingering changes at every integer of phi: the timbre pattern has period 2 changes
    s = _square(phi / 2.0, 0.5, int(rng.uniform(0.004, 0.012) * sr), mu > 0.5)
    d = np.abs(phi - np.round(phi))                    # distance (cycles) to the nearest change
    width = rng.uniform(0.012, 0.03) * rate
    bump = np.exp(-0.5 * (d / width) ** 2) * mu
    amp = 1.0 - p["am_depth"] * bump
    sign = rng.choice((-1.0, 1.0))
    return Controls(pitch_st=sign * p["fm_depth_st"] * s, amp=amp, bright=-0.5 * bump, noise=amp,
                    alt=s, tech_noise=bump)


def _flatterzunge(rng, t, phi, mu, p, sr):
    rate = p["modulation_hz"]
    u = phi - np.floor(phi)
    duty = _per_cycle(rng, phi, lambda k: np.clip(rng.normal(rng.uniform(0.35, 0.65), 0.06, k), 0.2, 0.85))
    depth = _per_cycle(rng, phi, lambda k: np.clip(p["am_depth"] * np.exp(rng.normal(0, 0.15, k)), 0, 0.98))
    power = rng.uniform(0.7, 1.5)
    inside = u < duty
    closure = np.where(inside, np.sin(np.pi * np.minimum(u / duty, 1.0)) ** power, 0.0)
    amp = 1.0 - mu * depth * closure
    after = np.where(inside, 0.0, np.exp(-(u - duty) / (rng.uniform(0.01, 0.03) * rate)))
    # turbulence: strongest when the tongue lets the air through again, present while open
    turbulence = mu * ((1.0 - closure) * rng.uniform(0.3, 1.0) + rng.uniform(1.0, 3.0) * after)
    fm = p["fm_depth_st"] * (closure - 0.5 * duty)
    return Controls(pitch_st=mu * fm, amp=amp, bright=-mu * rng.uniform(0.5, 1.5) * closure, noise=amp,
                    tech_noise=turbulence)


_TECHNIQUES = {"vibrato": _vibrato, "trill": _trill, "tremolo": _tremolo,
               "bisbigliando": _bisbigliando_keys, "flatterzunge": _flatterzunge}


def technique_controls(technique: str, t: np.ndarray, params: Mapping[str, float], rng: Rng,
                       sr: float) -> Tuple[Controls, Optional[np.ndarray], np.ndarray]:
    """Control signals of one note.

    Parameters
    ----------
    technique : str
        A class name of :data:`scatterxai.datasets.CLASSES`, or "ordinario".
    t : np.ndarray [shape=(n,)]
        Time since the note's onset (seconds; negative before it).
    params : dict
        ``modulation_hz``, ``fm_depth_st``, ``am_depth``, ``mod_start_s``, ``mod_end_s``, ``duration_s``,
        ``ramp_s``, ``jitter``, ``drift``; optionally ``rate_start_s``, ``rate_end_s`` (the part of the
        modulated segment over which the mean rate is exactly ``modulation_hz``; default the segment) and
        ``rate_trend`` (see :func:`modulator_phase`).
    rng : np.random.Generator
    sr : float

    Returns
    -------
    controls : Controls
    phi : np.ndarray [shape=(n,)] or None
        The modulator phase (cycles), None for ordinario.
    mu : np.ndarray [shape=(n,)]
        Presence of the technique.
    """
    n = len(t)
    if technique == "ordinario":
        one = np.ones(n)
        return Controls(np.zeros(n), one, np.zeros(n), one.copy()), None, np.zeros(n)
    phi = modulator_phase(rng, t, params["modulation_hz"], params.get("rate_start_s", params["mod_start_s"]),
                          params.get("rate_end_s", params["mod_end_s"]), jitter=params["jitter"],
                          drift=params["drift"], sr=sr, trend=params.get("rate_trend", 0.0))
    mu = presence(t, params["mod_start_s"], params["mod_end_s"], params["ramp_s"], params["ramp_s"],
                  params["duration_s"])
    return _TECHNIQUES[technique](rng, t, phi, mu, params, sr), phi, mu
