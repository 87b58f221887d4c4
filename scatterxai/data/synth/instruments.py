"""Source-filter models of the 14 SOL-PMT instruments, of their mutes, and of a singing voice.

Each instrument is a harmonic source (partial amplitudes as a function of harmonic number and frequency:
spectral slope, clarinet's weak even harmonics, the bow- or pluck-position comb of strings) followed by a
fixed body filter (formants, radiation low and high cuts, a fixed set of narrow body resonances that makes
every instrument an individual) and optionally a mute (a further spectral filter).  Dynamics change the
source slope (louder is brighter; brass most of all).  The numbers are rough textbook values (Fletcher &
Rossing, *The Physics of Musical Instruments*; Meyer, *Acoustics and the Performance of Music*): the aim
is plausible, distinct timbres with the right kind of dependence on pitch and dynamics, not a replica.

The singing voice (``Voice``, :data:`PLAYER_ONLY`) is not in SOL-PMT: only the ``players`` realism factor
gives it notes (vibratos, as singers sing them).  Its "body" is a vowel: a glottal source falling 10 dB per
octave through the vowel's formants F1–F3 and the singer's formant near 2.9 kHz (Sundberg, *The Science of
the Singing Voice*; male formant centres after Peterson & Barney 1952), one of :data:`VOWELS` per note, the
tract length varying from singer to singer.  The formants stay put while a vibrato sweeps the partials
across them, so each partial's amplitude follows the frequency modulation, as in sung vibrato.

Pure functions: :func:`harmonic_amplitudes` and :func:`response_db` return arrays; nothing here draws
random numbers except from a generator it is given.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ...errors import ParameterError

__all__ = ["Instrument", "INSTRUMENTS", "MUTES", "FAMILY_MUTES", "DYNAMICS", "parse_instrument", "harmonic_amplitudes",
           "response_db", "VOWELS", "PLAYER_ONLY"]

#: dynamics markings → (source-slope step, peak level in dBFS of the written file)
DYNAMICS: Dict[str, Tuple[float, float]] = {
    "pp": (-2.0, -28.0), "p": (-1.0, -22.0), "mf": (0.0, -16.0), "f": (1.0, -11.0), "ff": (2.0, -7.0),
    "fff": (2.5, -5.0),
}

@dataclass(frozen=True)
class Instrument:
    """Source-filter parameters of one instrument (without mute).

    Attributes
    ----------
    name, family, code : str
        SOL instrument name, family folder and file-name prefix (e.g. "Violin", "Strings", "Vn").
    excitation : {"bowed", "plucked", "reed", "airjet", "lip", "voice"}
    midi_range : (int, int)
        Lowest and highest MIDI note (real range, within C#1–B7 as in SOL-PMT).
    tilt_db_oct : float
        Source spectral slope at mf above ``knee_hz`` (dB per octave, positive = falling).
    knee_hz : float
        The slope starts at max(knee_hz, f0) (brass: flat up to the bell's cutoff).
    dyn_tilt_db_oct : float
        Slope decrease per dynamics step (pp = -2 … ff = +2): how much brighter louder playing is.
    even_db, even_cut_hz : float
        Gain of even harmonics below ``even_cut_hz`` (clarinet's cylindrical bore), 0 elsewhere.
    formants : tuple of (centre Hz, width octaves, gain dB)
        Log-Gaussian bumps of the body response (negative gain = anti-resonance).
    lo_cut_hz, hi_cut_hz : float
        Radiation limits (second-order roll-off below / above).
    noise_db : (float, float)
        Range of breath / bow noise level relative to the harmonic tone (dB).
    noise_hp_hz : float
        Corner of the noise's first-order high-pass.
    attack_s, release_s : (float, float)
        Ranges of the note's attack and release times.
    size : float
        Body size relative to the family's reference (scales formants and mutes).
    """

    name: str
    family: str
    code: str
    excitation: str
    midi_range: Tuple[int, int]
    tilt_db_oct: float
    knee_hz: float
    dyn_tilt_db_oct: float
    formants: Tuple[Tuple[float, float, float], ...]
    lo_cut_hz: float
    hi_cut_hz: float
    noise_db: Tuple[float, float]
    noise_hp_hz: float
    attack_s: Tuple[float, float]
    release_s: Tuple[float, float]
    even_db: float = 0.0
    even_cut_hz: float = 0.0
    size: float = 1.0


_VIOLIN_FORMANTS = ((280.0, 0.15, 5.0), (470.0, 0.25, 8.0), (1400.0, 0.3, -6.0), (2600.0, 0.5, 9.0))


def _strings(name, code, midi_range, size, lo_cut):
    return Instrument(name, "Strings", code, "bowed", midi_range, tilt_db_oct=6.0, knee_hz=0.0,
                      dyn_tilt_db_oct=1.2,
                      formants=tuple((f * size, w, g) for f, w, g in _VIOLIN_FORMANTS),
                      lo_cut_hz=lo_cut, hi_cut_hz=5000.0 * size ** 0.5, noise_db=(-40.0, -24.0),
                      noise_hp_hz=1500.0 * size ** 0.5, attack_s=(0.04, 0.15), release_s=(0.08, 0.3),
                      size=size)


#: sung vowels: (centre Hz, width octaves, gain dB) of F1, F2, F3 and the singer's formant (male centres; a
#: singer's tract length scales them per note, see :func:`.render.body_and_room`)
VOWELS: Dict[str, Tuple[Tuple[float, float, float], ...]] = {
    "a": ((730.0, 0.15, 20.0), (1090.0, 0.12, 17.0), (2440.0, 0.1, 10.0), (2900.0, 0.15, 16.0)),
    "e": ((530.0, 0.15, 20.0), (1840.0, 0.12, 14.0), (2480.0, 0.1, 10.0), (2900.0, 0.15, 16.0)),
    "i": ((270.0, 0.15, 20.0), (2290.0, 0.12, 14.0), (3010.0, 0.1, 10.0), (2900.0, 0.15, 14.0)),
    "o": ((570.0, 0.15, 20.0), (840.0, 0.12, 17.0), (2410.0, 0.1, 8.0), (2900.0, 0.15, 16.0)),
    "u": ((300.0, 0.15, 20.0), (870.0, 0.12, 14.0), (2240.0, 0.1, 6.0), (2900.0, 0.15, 12.0)),
}

INSTRUMENTS: Dict[str, Instrument] = {i.name: i for i in (
    Instrument("Flute", "Flutes", "Fl", "airjet", (59, 98), 13.0, 0.0, 2.0, ((900.0, 0.8, 3.0),),
               230.0, 4000.0, (-26.0, -12.0), 800.0, (0.04, 0.12), (0.08, 0.25)),
    Instrument("Clarinet-Bb", "Clarinets", "BbCl", "reed", (50, 96), 7.0, 0.0, 1.5,
               ((1500.0, 0.7, 3.0), (3200.0, 0.5, 4.0)), 130.0, 5000.0, (-45.0, -30.0), 1500.0,
               (0.02, 0.07), (0.06, 0.2), even_db=-18.0, even_cut_hz=1800.0),
    Instrument("Oboe", "Oboes", "Ob", "reed", (58, 93), 4.0, 0.0, 1.5,
               ((1150.0, 0.35, 10.0), (2900.0, 0.4, 6.0)), 300.0, 6000.0, (-45.0, -32.0), 1500.0,
               (0.02, 0.07), (0.06, 0.2)),
    Instrument("Bassoon", "Bassoons", "Bn", "reed", (34, 77), 5.0, 0.0, 1.5,
               ((480.0, 0.35, 12.0), (1200.0, 0.35, 7.0), (2800.0, 0.5, 3.0)), 55.0, 3500.0,
               (-45.0, -32.0), 1200.0, (0.03, 0.09), (0.06, 0.2)),
    Instrument("Alto-Sax", "Saxophones", "ASax", "reed", (49, 82), 4.5, 0.0, 1.8,
               ((650.0, 0.5, 7.0), (1800.0, 0.45, 5.0), (3800.0, 0.5, 2.0)), 130.0, 5000.0,
               (-40.0, -26.0), 1500.0, (0.02, 0.08), (0.06, 0.2)),
    Instrument("Horn", "Horns", "Hn", "lip", (34, 78), 14.0, 300.0, 3.0, ((450.0, 0.6, 4.0),),
               60.0, 3000.0, (-50.0, -38.0), 1000.0, (0.02, 0.08), (0.08, 0.25), size=0.6),
    Instrument("Trumpet-C", "Trumpets", "TpC", "lip", (54, 85), 11.0, 1000.0, 3.0,
               ((1300.0, 0.6, 4.0), (2600.0, 0.5, 3.0)), 230.0, 6000.0, (-50.0, -38.0), 1500.0,
               (0.015, 0.06), (0.06, 0.2), size=1.0),
    Instrument("Tenor-Trombone", "Trombones", "TTbn", "lip", (38, 75), 12.0, 500.0, 3.0,
               ((550.0, 0.6, 4.0), (1200.0, 0.5, 2.0)), 75.0, 4500.0, (-50.0, -38.0), 1200.0,
               (0.02, 0.07), (0.08, 0.25), size=0.7),
    Instrument("Bass-Tuba", "Tubas", "BBTb", "lip", (28, 66), 14.0, 220.0, 3.0, ((250.0, 0.6, 5.0),),
               38.0, 2000.0, (-48.0, -36.0), 800.0, (0.03, 0.1), (0.1, 0.3), size=0.45),
    _strings("Violin", "Vn", (55, 107), 1.0, 190.0),
    _strings("Viola", "Va", (48, 107), 0.8, 125.0),
    _strings("Violoncello", "Vc", (36, 100), 0.45, 62.0),
    _strings("Contrabass", "Cb", (28, 89), 0.28, 40.0),
    Instrument("Harp", "PluckedStrings", "Hp", "plucked", (24, 103), 12.0, 0.0, 1.2,
               ((180.0, 0.6, 4.0), (600.0, 0.7, 3.0)), 50.0, 4000.0, (-60.0, -50.0), 2000.0,
               (0.001, 0.004), (0.1, 0.4)),
    Instrument("Voice", "Voices", "Vo", "voice", (40, 84), 10.0, 0.0, 2.0, VOWELS["a"], 90.0, 5000.0,
               (-45.0, -28.0), 1500.0, (0.05, 0.15), (0.08, 0.25)),
)}

#: instruments of the synthesiser that SOL-PMT does not hold: no profile cell plays them, only the
#: ``players`` realism factor (:data:`.corpus.VIBRATO_PLAYERS`)
PLAYER_ONLY = ("Voice",)

# Mutes as spectral filters: (high-pass Hz, high-pass order, low-pass Hz, low-pass order,
# formants ((Hz, width octaves, gain dB), ...), level dB).  Frequencies are for the reference size
# (violin, trumpet) and scale with Instrument.size.
_MuteFilter = Tuple[float, int, float, int, Tuple[Tuple[float, float, float], ...], float]
MUTES: Dict[str, _MuteFilter] = {
    # string mute: extra mass on the bridge damps the bridge hill (2–4 kHz)
    "sordina": (0.0, 0, 6000.0, 1, ((2600.0, 0.8, -9.0), (1000.0, 0.6, -3.0)), -4.0),
    # heavy practice mute: most of the radiation above 1 kHz is gone
    "sordina-piombo": (0.0, 0, 1600.0, 2, ((2600.0, 1.0, -12.0),), -10.0),
    # horn mute (straight-like): thin, nasal
    "horn-sordina": (250.0, 2, 7000.0, 1, ((1800.0, 0.4, 5.0), (3500.0, 0.5, 3.0)), -6.0),
    # hand-stopped horn: brassy, nasal, weak low partials
    "stopped": (400.0, 2, 0.0, 0, ((3000.0, 0.5, 9.0),), -8.0),
    "straight": (450.0, 2, 0.0, 0, ((1800.0, 0.35, 7.0), (4500.0, 0.5, 2.0)), -6.0),
    "cup": (250.0, 2, 1800.0, 2, ((700.0, 0.5, 6.0),), -8.0),
    "harmon": (900.0, 3, 6000.0, 1, ((1700.0, 0.3, 10.0), (3500.0, 0.4, 4.0)), -8.0),
    "wah": (700.0, 3, 5000.0, 1, ((1500.0, 0.3, 9.0),), -8.0),            # open
    "wah-closed": (500.0, 3, 2500.0, 2, ((800.0, 0.35, 8.0),), -10.0),
}


#: mutes each family can take (SOL-PMT's, plus the variants its technique names select)
FAMILY_MUTES = {"Strings": ("sordina", "sordina-piombo"), "Horns": ("horn-sordina", "stopped"),
                "Trumpets": ("cup", "straight", "harmon", "wah", "wah-closed"),
                "Trombones": ("cup", "straight", "harmon", "wah", "wah-closed")}


def parse_instrument(name: str) -> Tuple[Instrument, Optional[str]]:
    """SOL-PMT instrument name → (instrument model, mute name or None).

    "Violin-sordina-piombo" → (Violin, "sordina-piombo"); "Trumpet-C-cup" → (Trumpet-C, "cup");
    "Horn-sordina" → (Horn, "horn-sordina").
    """
    for base in sorted(INSTRUMENTS, key=len, reverse=True):
        if name == base:
            return INSTRUMENTS[base], None
        if name.startswith(base + "-"):
            mute = name[len(base) + 1:]
            if base == "Horn" and mute == "sordina":
                mute = "horn-sordina"
            if mute not in FAMILY_MUTES.get(INSTRUMENTS[base].family, ()):
                break
            return INSTRUMENTS[base], mute
    raise ParameterError(f"unknown instrument {name!r}; valid: {sorted(INSTRUMENTS)}, or "
                         f"<instrument>-<mute> with mutes {FAMILY_MUTES} by family (the horn's is "
                         f"'Horn-sordina')")


def harmonic_amplitudes(inst: Instrument, f0: float, n_partials: int, *, dyn_step: float = 0.0,
                        tilt_add_db_oct: float = 0.0, comb_beta: float = 0.0) -> np.ndarray:
    """Linear amplitudes of the source's partials 1..n (before the body filter).

    Parameters
    ----------
    inst : Instrument
    f0 : float
        Fundamental in Hz.
    n_partials : int
    dyn_step : float
        Dynamics step (pp = -2, mf = 0, ff = 2); also used for within-note brightness changes.
    tilt_add_db_oct : float
        Added to the slope (per-note variation, playing position).
    comb_beta : float
        Bow or pluck position as a fraction of the string length; partials near multiples of 1/beta are
        weak (Helmholtz motion / plucked string); 0 disables the comb.

    Returns
    -------
    a : np.ndarray [shape=(n_partials,), float64]
        Amplitudes, fundamental region ~1.
    """
    k = np.arange(1, n_partials + 1, dtype=np.float64)
    f = k * f0
    slope = max(inst.tilt_db_oct - inst.dyn_tilt_db_oct * dyn_step + tilt_add_db_oct, 1.0)
    knee = max(inst.knee_hz, f0)
    db = -slope * np.log2(np.maximum(f / knee, 1.0))
    if inst.even_db:
        # smooth transition to normal even harmonics above the tone-hole lattice cutoff
        w = 1.0 / (1.0 + (f / inst.even_cut_hz) ** 4)
        db = db + np.where(k % 2 == 0, inst.even_db * w, 0.0)
    a = 10.0 ** (db / 20.0)
    if comb_beta > 0:
        a = a * (0.12 + 0.88 * np.abs(np.sin(np.pi * k * comb_beta)))
    return a


def _bumps_db(f, formants, scale=1.0):
    out = np.zeros_like(f)
    lf = np.log2(np.maximum(f, 1.0))
    for centre, width, gain in formants:
        out += gain * np.exp(-0.5 * ((lf - np.log2(centre * scale)) / width) ** 2)
    return out


def _pass_db(f, corner, order, high):
    """Butterworth-like magnitude in dB: high-pass (high=True) or low-pass at ``corner``."""
    if corner <= 0 or order <= 0:
        return np.zeros_like(f)
    ratio = corner / np.maximum(f, 1.0) if high else np.maximum(f, 1.0) / corner
    return -10.0 * np.log10(1.0 + ratio ** (2 * order))


def _fingerprint_db(inst: Instrument, f):
    """A fixed set of narrow body resonances, the same for every note of an instrument (one violin, one
    horn...), drawn from a generator seeded by the instrument's name."""
    rng = np.random.default_rng(zlib.crc32(inst.name.encode()))
    lo, hi = np.log2(max(inst.lo_cut_hz, 60.0)), np.log2(min(inst.hi_cut_hz, 6000.0))
    if inst.excitation in ("bowed", "plucked"):   # wooden bodies: many narrow plate and air modes
        n, width, gain = 10, (0.04, 0.15), 5.0
    else:                                          # bores and bells: broad, gentle irregularities
        n, width, gain = 5, (0.1, 0.3), 3.0
    formants = [(2.0 ** rng.uniform(lo, hi), rng.uniform(*width), rng.uniform(-gain, gain))
                for _ in range(n)]
    return _bumps_db(f, formants)


def response_db(inst: Instrument, mute: Optional[str], f: np.ndarray, *, formant_shift_oct: float = 0.0,
                extra: Sequence[Tuple[float, float, float]] = ()) -> np.ndarray:
    """Body (+ mute) magnitude response in dB at frequencies ``f`` (Hz).

    Parameters
    ----------
    inst : Instrument
    mute : str or None
        A key of :data:`MUTES`.
    f : np.ndarray [shape=(F,)]
    formant_shift_oct : float
        Shift of the main formants (per-note variation: player, embouchure, microphone).
    extra : sequence of (Hz, width octaves, gain dB)
        Further bumps (per-note recording coloration).

    Returns
    -------
    db : np.ndarray [shape=(F,)]
    """
    f = np.asarray(f, dtype=np.float64)
    db = _bumps_db(f, inst.formants, 2.0 ** formant_shift_oct) + _fingerprint_db(inst, f)
    db += _pass_db(f, inst.lo_cut_hz, 2, True) + _pass_db(f, inst.hi_cut_hz, 2, False)
    db += _bumps_db(f, extra)
    if mute is not None:
        hp, hp_order, lp, lp_order, formants, level = MUTES[mute]
        s = inst.size if inst.family != "Horns" else 1.0  # the horn mutes are given for the horn itself
        db += _pass_db(f, hp * s, hp_order, True) + _pass_db(f, lp * s, lp_order, False)
        db += _bumps_db(f, formants, s) + level
    return db
