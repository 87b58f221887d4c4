"""Controlled variations: the same synthetic note with one factor changed (``docs/analysis.md``,
"Controlled variations").

A sweep starts from a base note (:func:`base_note`: a technique, an instrument, a pitch, a dynamics and a
seed) and changes one factor at a time (:data:`FACTORS`) over a list of values (:func:`plan_sweep`); the
notes of one *repeat* share every other parameter and every random draw:

* **spec draws** (:func:`make_note_spec`) — :func:`vary` replaces the swept fields of the base spec
  (:func:`dataclasses.replace`) and leaves the others alone; where a factor implies other fields (below)
  they are drawn by :func:`make_note_spec` from the same ``(seed, index)``, so they take the same random
  quantiles;
* **render draws** — sweep notes are rendered with ``streams="split"`` (:mod:`.streams`): every draw of
  the renderer has its own stream, so the timbre, noise and room of a note do not move when the rate or
  f0 changes the size of earlier draws.

Factors and what each changes (besides the file name):

============ ========================================================================================
rate         ``modulation_hz`` (Hz)
f0           ``f0_hz`` (Hz, exactly the value) and ``pitch`` (the nearest note name)
dynamics     ``dynamics`` (a marking: source brightness and peak level)
depth        the technique's main depth: vibrato and trill ``fm_depth_st`` (semitones; for trills the
             interval, and the SOL variant name follows the nearest second), tremolo, key bisbigliando
             and flatterzunge ``am_depth``; the harp's plucks have none
instrument   ``instrument`` and ``mute``; between plucked (harp) and sustained instruments also the
             technique's shape (``fm_depth_st``, ``am_depth``, ``mod_start_s``, ``mod_end_s``,
             ``ramp_s``), which the two renderers read differently
technique    every technique parameter (rate, depths, segment, noise level: each drawn at the same
             quantile as the base's); instrument, pitch, tuning, dynamics, duration, onset stay
============ ========================================================================================

Repeat r of a sweep uses ``index = SWEEP_INDEX + r``, far above any corpus index, so that its draws are
not those of a corpus note.  Files: ``OUT_DIR/audio/*.wav`` and ``OUT_DIR/meta.csv`` as the corpus writes
them (:func:`write_sweep`), with ``subset = "test"`` and three more columns: ``sweep_factor``,
``sweep_value`` (text), ``sweep_repeat``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from ..._util.log import progress as progress_bar
from ..._util.types import PathLike
from ..._util.validate import check_choice, check_int, check_positive_float, check_positive_int
from ...errors import ParameterError
from ...task import CLASSES
from ..meta import write_meta_csv
from ..notes import midi_hz, midi_name, note_midi
from .corpus import _RATES, _TRILL_RATES, VARIANTS, NoteSpec, corpus_columns, make_note_spec, profile_counts, write_note
from .instruments import DYNAMICS, INSTRUMENTS, parse_instrument

__all__ = ["FACTORS", "DEFAULT_VARIANT", "DEPTH_FIELD", "SWEEP_INDEX", "Sweep", "base_note", "vary",
           "default_values", "plan_sweep", "write_sweep", "changed_columns", "corpus_rate_range"]

#: the factors a sweep can vary
FACTORS = ("rate", "f0", "dynamics", "instrument", "depth", "technique")
#: SOL variant played for a technique class when none is given
DEFAULT_VARIANT = {"vibrato": "vibrato", "trill": "trill-major-second-up", "tremolo": "tremolo",
                   "bisbigliando": "bisbigliando", "flatterzunge": "flatterzunge"}
#: the spec field a depth sweep sets, per technique
DEPTH_FIELD = {"vibrato": "fm_depth_st", "trill": "fm_depth_st", "tremolo": "am_depth",
               "bisbigliando": "am_depth", "flatterzunge": "am_depth"}
#: index of repeat 0 (repeat r uses SWEEP_INDEX + r)
SWEEP_INDEX = 1_000_000
#: default values of the continuous factors
RATES_HZ = tuple(4.0 * 2.0 ** (k / 2) for k in range(7))           # 4 … 32 Hz, half-octave steps
DEPTHS = {"vibrato": (0.05, 0.1, 0.2, 0.4, 0.8), "trill": (0.5, 1.0, 1.5, 2.0, 3.0),
          "tremolo": (0.2, 0.4, 0.6, 0.8, 0.95), "bisbigliando": (0.1, 0.3, 0.5, 0.7, 0.9),
          "flatterzunge": (0.2, 0.4, 0.6, 0.8, 0.95)}
F0_SPAN_SEMITONES = 36                                             # three octaves …
F0_STEPS = 7                                                       # … in half-octave steps
# the harp renders only its plucked techniques
_PLUCKED_TECHNIQUES = ("bisbigliando", "tremolo")
_PLUCKED_FIELDS = ("fm_depth_st", "am_depth", "mod_start_s", "mod_end_s", "ramp_s")


def _variant(technique: str) -> str:
    if technique in DEFAULT_VARIANT:
        return DEFAULT_VARIANT[technique]
    if technique in VARIANTS:
        return technique
    raise ParameterError(f"unknown technique {technique!r}; valid: a class {list(CLASSES)} or a SOL variant "
                         f"{sorted(VARIANTS)}")


def _plucked(instrument: str) -> bool:
    return parse_instrument(instrument)[0].excitation == "plucked"


def _check_plays(instrument: str, variant: str):
    technique = VARIANTS[variant]["technique"]
    if _plucked(instrument) and technique not in _PLUCKED_TECHNIQUES:
        raise ParameterError(f"{instrument} is rendered by plucks and plays only {list(_PLUCKED_TECHNIQUES)}, "
                             f"not {technique}")


def _instruments_playing(technique: str) -> List[str]:
    """Unmuted instruments with notes of ``technique`` in SOL-PMT, most notes first."""
    cells = [(count, inst) for _, inst, tech, count in profile_counts() if tech == technique
             and inst in INSTRUMENTS and (not _plucked(inst) or technique in _PLUCKED_TECHNIQUES)]
    return [inst for _, inst in sorted(cells, key=lambda c: (-c[0], c[1]))]


def _default_pitch(instruments: Sequence[str]) -> str:
    """A4 if every instrument plays it, else the middle of the range they share."""
    lo = max(parse_instrument(i)[0].midi_range[0] for i in instruments)
    hi = min(parse_instrument(i)[0].midi_range[1] for i in instruments)
    if lo > hi:
        raise ParameterError(f"the instruments {list(instruments)} share no pitch; sweep fewer of them or "
                             f"give each its own sweep")
    return "A4" if lo <= 69 <= hi else midi_name((lo + hi) // 2)


def corpus_rate_range(technique: str, instrument: Optional[str] = None) -> Tuple[float, float]:
    """The range (Hz) the corpus draws the modulation rate of ``technique`` from (on ``instrument``, whose
    excitation sets the trill's range): what a network trained on the corpus has seen."""
    technique = VARIANTS[_variant(technique)]["technique"]
    if technique == "trill" and instrument is not None:
        return _TRILL_RATES.get(parse_instrument(instrument)[0].excitation, _RATES["trill"])
    return _RATES[technique]


def base_note(technique: str, *, instrument: Optional[str] = None, pitch: Optional[str] = None,
              dynamics: str = "mf", seed: int = 0, repeat: int = 0, duration_s: float = 5.0) -> NoteSpec:
    """The note a sweep starts from.

    Parameters
    ----------
    technique : str
        A class (played as :data:`DEFAULT_VARIANT`) or a SOL variant name (a key of ``VARIANTS``).
    instrument : str, optional
        Default: the unmuted instrument with the most notes of the technique in SOL-PMT (vibrato: trombone,
        trill and tremolo: viola, bisbigliando: harp, flatterzunge: horn).
    pitch : str, optional
        Default: A4, or the middle of the instrument's range if it does not play A4.
    dynamics : str
    seed, repeat : int
        Draws from ``default_rng([seed, SWEEP_INDEX + repeat])``.
    duration_s : float
        Fixed duration (s): 5 s fills most of the 5.9-s analysis window of the paper's scattering.
    """
    variant = _variant(technique)
    cls = VARIANTS[variant]["technique"]
    instrument = instrument or _instruments_playing(cls)[0]
    _check_plays(instrument, variant)
    repeat = check_int("repeat", repeat, low=0)
    return make_note_spec(instrument, variant, pitch=pitch or _default_pitch([instrument]), dynamics=dynamics,
                          seed=check_int("seed", seed, low=0), index=SWEEP_INDEX + repeat,
                          duration_s=duration_s)


def _redraw(spec: NoteSpec, **changes) -> NoteSpec:
    """The spec :func:`make_note_spec` draws for ``spec``'s seed and index with some arguments changed."""
    args = dict(instrument=spec.instrument, technique_original=spec.technique_original, pitch=spec.pitch,
                dynamics=spec.dynamics, seed=spec.seed, index=spec.index, duration_s=spec.duration_s)
    args.update(changes)
    return make_note_spec(args.pop("instrument"), args.pop("technique_original"), **args)


def vary(spec: NoteSpec, factor: str, value: Union[float, str]) -> NoteSpec:
    """``spec`` with one factor set to ``value`` (see the module docstring for what each factor changes).

    Parameters
    ----------
    spec : NoteSpec
    factor : {"rate", "f0", "dynamics", "instrument", "depth", "technique"}
    value : float or str
        Hz for rate and f0 (f0 within the instrument's range); a marking for dynamics; a SOL-PMT instrument
        name; semitones or a relative depth for depth (see :data:`DEPTH_FIELD`); a class or SOL variant
        for technique.
    """
    check_choice("factor", factor, FACTORS)
    if factor == "rate":
        return dataclasses.replace(spec, modulation_hz=check_positive_float("rate", value))
    if factor == "f0":
        f0 = check_positive_float("f0", value)
        inst = parse_instrument(spec.instrument)[0]
        midi = 69 + 12 * math.log2(f0 / 440.0)
        lo, hi = inst.midi_range
        if not lo - 0.5 <= midi <= hi + 0.5:
            raise ParameterError(f"f0 = {f0:g} Hz is outside the range of {inst.name} "
                                 f"({midi_hz(lo):.1f}–{midi_hz(hi):.1f} Hz)")
        return dataclasses.replace(spec, f0_hz=f0, pitch=midi_name(int(round(midi))))
    if factor == "dynamics":
        return dataclasses.replace(spec, dynamics=check_choice("dynamics", value, DYNAMICS))
    if factor == "depth":
        if _plucked(spec.instrument):
            raise ParameterError(f"{spec.instrument} plays its {spec.technique} with plucks, which have no "
                                 f"depth to sweep")
        field = DEPTH_FIELD[spec.technique]
        depth = check_positive_float("depth", value)
        if field == "am_depth" and depth > 1:
            raise ParameterError(f"the depth of {spec.technique} is a relative amplitude depth in (0, 1], "
                                 f"got {depth}")
        changes = {field: depth}
        if spec.technique == "trill":   # the variant names the interval: follow the nearest second
            second = "minor" if depth < 1.5 else "major"
            double = "double-" if spec.technique_original.startswith("double-") else ""
            changes["technique_original"] = f"{double}trill-{second}-second-up"
        return dataclasses.replace(spec, **changes)
    if factor == "instrument":
        _check_plays(value, spec.technique_original)
        drawn = _redraw(spec, instrument=value)      # checks the pitch against the new range
        changes = dict(instrument=value, mute=drawn.mute)
        if _plucked(value) != _plucked(spec.instrument):
            changes.update({k: getattr(drawn, k) for k in _PLUCKED_FIELDS})
        return dataclasses.replace(spec, **changes)
    variant = _variant(value)
    _check_plays(spec.instrument, variant)
    return dataclasses.replace(_redraw(spec, technique_original=variant), f0_hz=spec.f0_hz,
                               source_file=spec.source_file)


def changed_columns(factor: str) -> Tuple[str, ...]:
    """meta.csv columns that notes of one repeat may differ in (besides ``file_name`` and ``sweep_value``)."""
    check_choice("factor", factor, FACTORS)
    return {"rate": ("modulation_hz",), "f0": ("f0_hz", "pitch"), "dynamics": ("dynamics",),
            "depth": ("fm_depth_st", "am_depth", "technique original"),
            "instrument": ("instrument", "instrument family", "mute") + _PLUCKED_FIELDS
            + ("modulated_fraction",),
            "technique": ("technique original", "modulation technique", "label", "mute", "modulation_hz",
                          "fm_depth_st", "am_depth", "tech_noise_db", "mod_start_s", "mod_end_s",
                          "modulated_fraction")}[factor]


def default_values(factor: str, spec: NoteSpec) -> tuple:
    """Values a sweep of ``factor`` from ``spec`` takes when none are given.

    rate: 4–32 Hz in half-octave steps for every technique (beyond each technique's own range, so that
    the fit of relevance against rate has leverage and the predicted class shows where the network's
    classes end); f0: three octaves in half-octave steps, within the instrument's range (centred on the
    base pitch where the range allows); dynamics: pp–ff; instrument: the unmuted SOL-PMT instruments that
    play the technique; depth: :data:`DEPTHS`; technique: every class the instrument can play.
    """
    check_choice("factor", factor, FACTORS)
    if factor == "rate":
        return RATES_HZ
    if factor == "f0":
        lo, hi = parse_instrument(spec.instrument)[0].midi_range
        span = min(F0_SPAN_SEMITONES, hi - lo)
        start = float(np.clip(note_midi(spec.pitch) - span / 2, lo, hi - span))
        return tuple(float(midi_hz(start + span * k / (F0_STEPS - 1))) for k in range(F0_STEPS))
    if factor == "dynamics":
        return ("pp", "p", "mf", "f", "ff")
    if factor == "instrument":
        return tuple(_instruments_playing(spec.technique))
    if factor == "depth":
        return DEPTHS[spec.technique]
    return tuple(c for c in CLASSES if not _plucked(spec.instrument) or c in _PLUCKED_TECHNIQUES)


@dataclass(frozen=True)
class Sweep:
    """The notes of a sweep, repeat-major: note i is ``values[i % n_values]`` of repeat ``i // n_values``.

    Attributes
    ----------
    factor, technique : str
    values : tuple
        The factor's values (one per note of a repeat).
    specs : tuple of NoteSpec
    file_names : tuple of str
    """

    factor: str
    technique: str
    values: tuple
    specs: tuple
    file_names: tuple

    @property
    def n_repeats(self) -> int:
        return len(self.specs) // len(self.values)

    @property
    def repeat(self) -> np.ndarray:
        """Repeat of each note [shape=(n_notes,)]."""
        return np.repeat(np.arange(self.n_repeats), len(self.values))

    @property
    def value_index(self) -> np.ndarray:
        """Index into :attr:`values` of each note [shape=(n_notes,)]."""
        return np.tile(np.arange(len(self.values)), self.n_repeats)


def _label(factor: str, value) -> str:
    if factor in ("rate", "f0"):
        return f"{value:.4g}Hz"
    return f"{value:g}" if factor == "depth" else str(value)


def plan_sweep(technique: str, factor: str, values: Optional[Sequence] = None, *, repeats: int = 1,
               instrument: Optional[str] = None, pitch: Optional[str] = None, dynamics: str = "mf",
               seed: int = 0, duration_s: float = 5.0) -> Sweep:
    """Specs of a sweep: ``repeats`` base notes (:func:`base_note`), each varied over ``values``.

    Parameters
    ----------
    technique : str
        Class or SOL variant of the base notes.
    factor : str
        One of :data:`FACTORS`.
    values : sequence, optional
        Default :func:`default_values`.  Numbers for rate, f0 (Hz) and depth; names otherwise.
    repeats : int
        Base notes (different random draws), each swept over every value.
    instrument, pitch, dynamics, seed, duration_s
        Of the base notes (:func:`base_note`); for an instrument sweep the default pitch is one that
        every swept instrument plays.
    """
    check_choice("factor", factor, FACTORS)
    repeats = check_positive_int("repeats", repeats)
    instrument = instrument or _instruments_playing(VARIANTS[_variant(technique)]["technique"])[0]
    if factor == "instrument" and values is None:
        values = _instruments_playing(VARIANTS[_variant(technique)]["technique"])
    if factor == "instrument" and pitch is None:   # a pitch every instrument of the sweep plays
        pitch = _default_pitch([instrument, *[str(v) for v in values]])
    first = base_note(technique, instrument=instrument, pitch=pitch, dynamics=dynamics, seed=seed,
                      duration_s=duration_s)
    if values is None:
        values = default_values(factor, first)
    values = tuple(float(v) if factor in ("rate", "f0", "depth") else str(v) for v in values)
    if not values:
        raise ParameterError(f"a sweep needs at least one value of {factor}")
    if len(set(values)) != len(values):
        raise ParameterError(f"sweep values repeat: {list(values)}")
    specs, names = [], []
    for r in range(repeats):
        base = first if r == 0 else base_note(technique, instrument=first.instrument, pitch=first.pitch,
                                              dynamics=dynamics, seed=seed, repeat=r, duration_s=duration_s)
        for value in values:
            spec = vary(base, factor, value)
            code = parse_instrument(spec.instrument)[0].code
            names.append(f"{len(names):04d}_r{r}_{factor}-{_label(factor, value)}_{code}-"
                         f"{spec.technique_original}-{spec.pitch}-{spec.dynamics}.wav".replace(" ", "_"))
            specs.append(spec)
    return Sweep(factor=factor, technique=first.technique, values=values, specs=tuple(specs),
                 file_names=tuple(names))


def write_sweep(sweep: Sweep, out_dir: PathLike, *, progress: bool = False) -> str:
    """Render a sweep: ``out_dir/audio/<file name>.wav`` (16-bit, split streams) and ``out_dir/meta.csv``.

    Notes are always rendered again (a note costs ~0.2 s), so a directory reused with other settings
    never mixes sweeps; ``meta.csv`` lists the notes of this sweep only.

    Returns
    -------
    meta_csv : str
    """
    audio_dir = os.path.join(os.path.abspath(os.fspath(out_dir)), "audio")
    os.makedirs(audio_dir, exist_ok=True)
    for spec, name in progress_bar(list(zip(sweep.specs, sweep.file_names)), enabled=progress, desc="sweep",
                                   unit="note"):
        write_note(spec, os.path.join(audio_dir, name), streams="split")
    cols = corpus_columns(list(sweep.specs))
    cols["file_name"] = np.array(sweep.file_names, dtype=object)
    cols["subset"] = np.array(["test"] * len(sweep.specs), dtype=object)
    cols["sweep_factor"] = np.array([sweep.factor] * len(sweep.specs), dtype=object)
    cols["sweep_value"] = np.array([_label(sweep.factor, sweep.values[i]) for i in sweep.value_index],
                                   dtype=object)
    cols["sweep_repeat"] = sweep.repeat.astype(np.int64)
    return write_meta_csv(os.path.join(os.path.dirname(audio_dir), "meta.csv"), cols)
