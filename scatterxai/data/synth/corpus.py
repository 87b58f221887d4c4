"""The embedded synthetic playing-technique corpus: per-note specs, rendering, and the corpus writer.

The real SOL-PMT audio is licensed, so first runs, tests and benchmarks use notes this module makes.  The
corpus follows SOL-PMT's profile: the instrument × technique counts of
``data/sol-pmt-instrument-by-technique.csv`` times ``scale`` (at least one note per non-zero cell), and
for each note a SOL-PMT note of that cell (``data/SOL-0.9HQ-PMT_meta.csv``) gives the technique variant
("ordinario-to-flatterzunge", "sul-ponticello-tremolo", ...), the pitch and the dynamics, so that techniques
are tied to instruments, registers and dynamics as in the real data.

Per note (:class:`NoteSpec`): every parameter is drawn from ``np.random.default_rng([seed, index])`` —
modulation rate and depths, duration (2–8 s), onset offset, tuning; :func:`render_note` draws the rest
(timbre variation, noise, room) from ``default_rng([seed, index, 1])``.  The performance and recording
conditions (:mod:`.realism`: excerpts, phrases, natural vibrato, room, noise, microphone, body modes) come
from ``default_rng([seed, index, 2])`` and, when rendering, ``([seed, index, 3, k])``; with every factor
off (``realism="none"``) a note is the studio note of SYNTH_VERSION 3, bit for bit.  A note therefore depends only on
(seed, index) and on its SOL profile row, never on the other notes: generation parallelises and an
interrupted run is completed by running it again.

Files (:func:`synthesize_corpus`): ``OUT_DIR/audio/<index>_<SOL name>.wav`` — 44.1 kHz mono 16-bit PCM
(half the size of float, and its quantisation noise, −98 dBFS, lies far below the synthesised noise floor
of −78…−62 dBFS, so nothing measurable is lost) — and ``OUT_DIR/meta.csv``: the SOL-PMT columns plus the
ground truth of each note (:data:`GROUND_TRUTH_COLUMNS`).  ``OUT_DIR/synth.json`` records the settings,
so that a re-run with other settings in the same directory fails instead of mixing two corpora.

Ground truth: ``f0_hz`` is the (lower, main) note's fundamental; ``modulation_hz`` the mean rate of the
pattern over the modulated segment: vibrato and flatterzunge modulator frequency, trill full up-down
cycles per second, tremolo strokes per second, bisbigliando repetitions (plucks or fingering changes) per
second.  ``fm_depth_st``: vibrato peak deviation, trill interval, key-bisbigliando detuning, flutter
roughness (semitones; 0 for tremolo and harp).  ``am_depth``: nominal relative depth of the amplitude
pattern (1 for harp plucks).  ``tech_noise_db``: level of the technique's own noise (flutter turbulence,
bow-change scratch, key clicks) relative to the tone, where the technique is active (-200: none).
``mod_start_s``/``mod_end_s``: modulated segment from the note onset; ``modulated_fraction`` its share
of the sounding part the file holds.  Then the conditions of :data:`.realism.PERFORMANCE_COLUMNS`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..._util.fs import atomic_path
from ..._util.log import progress as progress_bar
from ..._util.outputs import claim_output
from ..._util.types import PathLike
from ..._util.validate import check_choice, check_positive_float, check_positive_int, check_seed
from ...audio import write_wav
from ...errors import DataError, ParameterError
from ...task import CLASSES, DEFAULT_SCALE
from ..meta import META_COLUMNS, write_meta_csv
from ..notes import midi_hz, midi_name, note_midi
from ..split import split_622
from .instruments import DYNAMICS, INSTRUMENTS, PLAYER_ONLY, parse_instrument
from .profile import PROFILE_CSV, profile_counts, sol_rows
from .realism import (
    DEFAULT_REALISM,
    Performance,
    Realism,
    RealismLike,
    add_background,
    cut_excerpt,
    draw_performance,
    log_uniform,
    parse_realism,
    performance_columns,
    performance_overrides,
    render_span,
    sung_depth,
)
from .render import SR, body_and_room, finish, render_plucked, render_sustained
from .streams import STREAM_MODES, SplitStreams, substream
from .techniques import ranged

__all__ = ["NoteSpec", "VARIANTS", "GROUND_TRUTH_COLUMNS", "PROFILE_CSV", "SYNTH_VERSION", "DEFAULT_SCALE",
           "make_note_spec", "render_note", "write_note", "plan_corpus", "corpus_columns", "synthesize_corpus",
           "profile_counts"]

#: bumped whenever the synthesis changes the audio of a given (seed, index)
SYNTH_VERSION = 4
#: meta.csv columns after the SOL-PMT ones
GROUND_TRUTH_COLUMNS = ("f0_hz", "modulation_hz", "dynamics", "mute", "pitch", "duration_s", "onset_s",
                        "mod_start_s", "mod_end_s", "modulated_fraction", "fm_depth_st", "am_depth",
                        "tech_noise_db", "source_file", "note_index")

# SOL technique variants: class, and timbre or segment adjustments.  "in"/"out": the technique starts
# late / stops early (ordinario-to-X / X-to-ordinario); comb: bow position range (fraction of the string).
VARIANTS: Dict[str, dict] = {
    "vibrato": dict(technique="vibrato"),
    "trill-major-second-up": dict(technique="trill", interval=2.0),
    "trill-minor-second-up": dict(technique="trill", interval=1.0),
    "double-trill-major-second-up": dict(technique="trill", interval=2.0, alt_db=5.0),
    "double-trill-minor-second-up": dict(technique="trill", interval=1.0, alt_db=5.0),
    "tremolo": dict(technique="tremolo"),
    "ordinario-to-tremolo": dict(technique="tremolo", transition="in"),
    "tremolo-to-ordinario": dict(technique="tremolo", transition="out"),
    "sul-ponticello-tremolo": dict(technique="tremolo", comb=(0.02, 0.05), tilt_add=-4.0, noise_add_db=6.0),
    "sul-tasto-tremolo": dict(technique="tremolo", comb=(0.15, 0.25), tilt_add=4.0, noise_add_db=-2.0),
    "artificial-harmonic-tremolo": dict(technique="tremolo", tilt_add=14.0, noise_add_db=5.0),
    "tremolo-with-fingertips": dict(technique="tremolo"),
    "bisbigliando": dict(technique="bisbigliando", alt_db=1.5),
    "bisbigliando-with-stick": dict(technique="bisbigliando", stick=True, alt_db=1.5),
    "flatterzunge": dict(technique="flatterzunge"),
    "ordinario-to-flatterzunge": dict(technique="flatterzunge", transition="in"),
    "flatterzunge-to-ordinario": dict(technique="flatterzunge", transition="out"),
    "flatterzunge-and-voice-unison": dict(technique="flatterzunge", voice=True),
    "flatterzunge-stopped": dict(technique="flatterzunge", mute="stopped", tilt_add=-4.0),
    "flatterzunge-no-mouthpiece": dict(technique="flatterzunge", tilt_add=8.0, noise_add_db=20.0),
    "flatterzunge-high-register": dict(technique="flatterzunge"),
    "flatterzunge-open": dict(technique="flatterzunge", mute="wah"),
    "flatterzunge-closed": dict(technique="flatterzunge", mute="wah-closed"),
}

# Per-technique parameter ranges (uniform unless noted): rate Hz, depths, irregularity, onset delay.
_RATES = {"vibrato": (4.0, 7.0), "trill": (5.0, 10.0), "tremolo": (8.0, 16.0), "bisbigliando": (6.0, 12.0),
          "flatterzunge": (20.0, 35.0)}
_TRILL_RATES = {"bowed": (5.5, 9.0), "lip": (5.5, 8.5), "reed": (6.0, 10.0), "airjet": (6.0, 10.0)}
# level (dB re the tone) of the technique's own noise: flutter turbulence, bow-change scratch, key clicks
_TECH_NOISE_DB = {"vibrato": (-200.0, -200.0), "trill": (-46.0, -32.0), "tremolo": (-26.0, -12.0),
                  "bisbigliando": (-40.0, -26.0), "flatterzunge": (-24.0, -8.0)}


@dataclass(frozen=True)
class NoteSpec:
    """Everything that defines one synthetic note (the ground truth is read from here).

    Build with :func:`make_note_spec`; render with :func:`render_note`.  Times in seconds from the note
    onset, frequencies in Hz, depths as documented in the module docstring.
    """

    index: int
    seed: int
    instrument: str
    technique_original: str
    technique: str
    pitch: str
    dynamics: str
    mute: str
    f0_hz: float
    duration_s: float
    onset_s: float
    modulation_hz: float
    fm_depth_st: float
    am_depth: float
    mod_start_s: float
    mod_end_s: float
    ramp_s: float
    jitter: float
    drift: float
    tech_noise_db: float
    source_file: str = ""
    performance: Optional[Performance] = None

    @property
    def label(self) -> int:
        return CLASSES.index(self.technique)

    @property
    def family(self) -> str:
        return parse_instrument(self.instrument)[0].family

    @property
    def modulated_fraction(self) -> float:
        """Share of the sounding part of the note, within the file, that is modulated."""
        a, b = self.file_span
        sounding = min(self.duration_s, b) - max(0.0, a)
        return (min(self.mod_end_s, b) - max(self.mod_start_s, a)) / sounding

    @property
    def file_span(self) -> tuple:
        """(start, end) of the note's part the file holds, in seconds from the note onset (−inf, inf for a
        whole note)."""
        p = self.performance
        return (-np.inf, np.inf) if p is None else (p.excerpt_start_s, p.excerpt_end_s)

    @property
    def file_name(self) -> str:
        base = self.source_file or (f"{parse_instrument(self.instrument)[0].code}-"
                                    f"{self.technique_original}-{self.pitch}-{self.dynamics}.wav")
        return f"{self.index:05d}_{base.replace(' ', '_')}"

    def params(self) -> dict:
        """Parameters of :func:`scatterxai.techniques.technique_controls`."""
        p = {k: getattr(self, k) for k in ("modulation_hz", "fm_depth_st", "am_depth", "mod_start_s",
                                            "mod_end_s", "duration_s", "ramp_s", "jitter", "drift",
                                            "tech_noise_db")}
        if self.performance is not None:
            # the mean rate is exact over the part of the modulated segment that the file holds
            a, b = self.file_span
            p.update(rate_start_s=max(self.mod_start_s, a), rate_end_s=min(self.mod_end_s, b),
                     rate_trend=self.performance.rate_trend, articulation=self.performance.articulation)
        return p


def make_note_spec(instrument: str, technique_original: str, *, pitch: Optional[str] = None,
                   dynamics: str = "mf", seed: int = 0, index: int = 0, source_file: str = "",
                   duration_s: Optional[float] = None, realism: RealismLike = None) -> NoteSpec:
    """Draw the parameters of one note.

    Parameters
    ----------
    instrument : str
        SOL-PMT instrument name, mute included ("Violin-sordina", "Trumpet-C-harmon", ...).
    technique_original : str
        A key of :data:`VARIANTS` (SOL's technique name).
    pitch : str, optional
        Note name ("A4", "C#1"); default: drawn from the instrument's range.
    dynamics : {"pp", "p", "mf", "f", "ff", "fff"}
    seed, index : int
        The note's random draws come from ``np.random.default_rng([seed, index])``.
    source_file : str
        SOL file the note imitates (used in the file name).
    duration_s : float, optional
        Fixes the duration (s, ≥ 1.5) instead of drawing it; the other draws are unchanged.
    realism : str or Realism, optional
        Performance and recording conditions (:mod:`.realism`), drawn from ``default_rng([seed, index, 2])``;
        None or "none": the note as without them (every draw above unchanged).  With a share
        (``"all-room@0.5"``) the note gets the factors or none, as :meth:`.Realism.for_note` decides.

    Returns
    -------
    NoteSpec
    """
    inst, mute = parse_instrument(instrument)
    if technique_original not in VARIANTS:
        raise ParameterError(f"unknown technique {technique_original!r}; valid: {sorted(VARIANTS)}")
    if dynamics not in DYNAMICS:
        raise ParameterError(f"dynamics must be one of {list(DYNAMICS)}, got {dynamics!r}")
    variant = VARIANTS[technique_original]
    technique = variant["technique"]
    rng = np.random.default_rng([int(seed), int(index)])
    lo, hi = inst.midi_range
    if pitch is None:
        pitch = midi_name(int(rng.integers(lo + 6, hi - 5)))
    midi = note_midi(pitch)
    if not lo <= midi <= hi:
        raise ParameterError(f"pitch {pitch} is outside the range of {inst.name} "
                             f"({midi_name(lo)}–{midi_name(hi)})")
    f0 = float(midi_hz(midi)) * 2.0 ** (rng.uniform(-8.0, 8.0) / 1200.0)   # tuning of the day
    duration = float(np.exp(rng.uniform(np.log(2.0), np.log(8.0))))
    if duration_s is not None:
        if not isinstance(duration_s, (int, float)) or not 1.5 <= duration_s <= 60.0:
            raise ParameterError(f"duration_s must be a number of seconds in [1.5, 60], got {duration_s!r}")
        duration = float(duration_s)
    onset = rng.uniform(0.02, 0.3)
    rate = rng.uniform(*(_TRILL_RATES.get(inst.excitation, _RATES["trill"]) if technique == "trill"
                         else _RATES[technique]))
    jitter, drift = rng.uniform(0.03, 0.12), rng.uniform(0.01, 0.03)
    tech_noise_db = rng.uniform(*_TECH_NOISE_DB[technique])
    realism = parse_realism(realism).for_note(seed, index)
    fm, am, start, ramp, jitter = _technique_draws(rng, technique, variant, inst.excitation, jitter,
                                                   articulated="articulation" in realism)
    prng = np.random.default_rng([int(seed), int(index), 2]) if realism else None
    if prng is not None:
        drift, fm, start, ramp, duration = performance_overrides(
            realism, prng, technique=technique, rate_hz=rate, transition=bool(variant.get("transition")),
            fixed_duration=duration_s is not None, values=(drift, fm, start, ramp, duration),
            sung=inst.excitation == "voice")
    end = duration
    if inst.excitation == "plucked":
        start, end = 0.0, duration - rng.uniform(0.3, 1.2)   # the strings ring out after the last pluck
        if prng is not None:
            end = max(end, min(duration, 3.0 / rate))
    if variant.get("transition") == "in":
        start, ramp = rng.uniform(0.3, 0.6) * duration, rng.uniform(0.1, 0.4)
    elif variant.get("transition") == "out":
        end, ramp = rng.uniform(0.4, 0.7) * duration, rng.uniform(0.1, 0.4)
    mute = variant.get("mute", mute)
    perf = None if prng is None else draw_performance(
        realism, prng, technique=technique, excitation=inst.excitation, duration_s=duration, onset_s=onset,
        rate_hz=rate, mod_start_s=start, mod_end_s=end, release_s=max(inst.release_s))
    return NoteSpec(index=int(index), seed=int(seed), instrument=instrument,
                    technique_original=technique_original, technique=technique, pitch=pitch,
                    dynamics=dynamics, mute=mute or "none", f0_hz=f0, duration_s=duration, onset_s=onset,
                    modulation_hz=rate, fm_depth_st=float(fm), am_depth=float(am), mod_start_s=float(start),
                    mod_end_s=float(end), ramp_s=float(ramp), jitter=jitter, drift=drift,
                    tech_noise_db=float(tech_noise_db), source_file=source_file, performance=perf)


#: peak deviation (semitones) of an instrumentalist's vibrato, drawn log-uniformly (a singer's:
#: :data:`.realism.SUNG_DEPTH_ST`)
VIBRATO_DEPTH_ST = (0.1, 0.45)


def _technique_draws(rng, technique, variant, excitation, jitter, *, articulated=False):
    """(fm_depth_st, am_depth, mod_start_s, ramp_s, jitter) of a technique, in the corpus' draw order.
    ``articulated`` (realism factor ``articulation``): the amplitude depth of trill, tremolo and flutter
    moved from the studio range to the one measured on real notes (the same draw, :func:`.techniques.ranged`)."""
    fm, ramp, start = 0.0, 0.02, 0.0
    if technique == "vibrato":
        fm = log_uniform(rng, *VIBRATO_DEPTH_ST)
        if excitation == "voice":
            fm = sung_depth(fm, VIBRATO_DEPTH_ST)
        am = rng.uniform(0.0, 0.12) if excitation == "lip" else rng.uniform(0.03, 0.3)
        start, ramp = rng.uniform(0.05, 0.5), rng.uniform(0.15, 0.5)
    elif technique == "trill":
        fm, am = variant["interval"], ranged(rng, (0.0, 0.15), (0.1, 0.6), articulated)
        start = rng.uniform(0.08, 0.4)
    elif technique == "tremolo":
        am, start = ranged(rng, (0.3, 0.95), (0.7, 0.99), articulated), rng.uniform(0.0, 0.03)
    elif technique == "bisbigliando":
        jitter = rng.uniform(0.05, 0.15)
        if excitation == "plucked":
            am = 1.0
        else:
            am, fm = rng.uniform(0.3, 0.7), rng.uniform(0.02, 0.08)
    else:  # flatterzunge
        am, fm = ranged(rng, (0.3, 0.95), (0.1, 0.9), articulated), rng.uniform(0.01, 0.08)
        start, ramp = rng.uniform(0.0, 0.05), 0.03
    return fm, am, start, ramp, jitter


def render_note(spec: NoteSpec, *, sr: int = SR, streams: str = "shared", modulated: bool = True) -> np.ndarray:
    """Audio of one note: source → body (+ mute) → room → level → noise floor.

    Parameters
    ----------
    spec : NoteSpec
    sr : int
        Sample rate (Hz).
    streams : {"shared", "split"}
        "shared" (the corpus): every draw comes, in turn, from ``default_rng([seed, index, 1])``.
        "split" (controlled variations, :mod:`.sweep`): every draw has its own stream
        (:class:`.streams.SplitStreams`), so that notes whose specs differ in one parameter share their
        timbre, noise and room draws.  Both are deterministic functions of the spec.
    modulated : bool
        ``False`` renders the same note without its technique (no pitch, amplitude, timbre or noise
        pattern; the harp plucks once and rings): every random draw is the one of the modulated note, so
        instrument, pitch, timbre variation, noise, room and level match.  This is the baseline "same note,
        modulation removed" that only synthetic notes have (Integrated Gradients, ``docs/analysis.md``).

    Returns
    -------
    y : np.ndarray [shape=(n,), float64]
        Mono, within ±1; n = (onset + duration + release and room tail) · sr.
    """
    check_choice("streams", streams, STREAM_MODES)
    inst, _ = parse_instrument(spec.instrument)
    variant = dict(VARIANTS[spec.technique_original])
    rng = (np.random.default_rng([spec.seed, spec.index, 1]) if streams == "shared"
           else SplitStreams.for_note(spec.seed, spec.index))
    if inst.excitation == "bowed":
        variant.setdefault("comb", (0.07, 0.14))
    if "comb" in variant:
        variant["comb_beta"] = substream(rng, "comb").uniform(*variant["comb"])
    tail_s = max(inst.release_s) * 3.0 + 0.4
    perf = spec.performance
    if perf is None:
        n = int(round((spec.onset_s + spec.duration_s + tail_s) * sr))
        t = np.arange(n) / sr - spec.onset_s
        prngs = [None] * 3
    else:
        t0, t1 = render_span(perf, onset_s=spec.onset_s, duration_s=spec.duration_s, tail_s=tail_s)
        t = np.arange(int(round((t1 - t0) * sr))) / sr + t0
        prngs = [np.random.default_rng([spec.seed, spec.index, 3, k]) for k in range(3)]
    render = render_plucked if inst.excitation == "plucked" else render_sustained
    x = render(spec, inst, t, rng, sr, variant=variant, modulated=modulated, perf=perf, prng=prngs[0])
    y = body_and_room(x, inst, None if spec.mute == "none" else spec.mute, substream(rng, "room"), sr,
                      perf=perf, prng=prngs[1])
    y = finish(y, spec.dynamics, substream(rng, "finish"), sr)
    if perf is None:
        return y
    y = np.clip(add_background(y, perf, prngs[2], sr), -0.999, 0.999)
    return cut_excerpt(y, perf, -t[0], sr)


# ----------------------------------------------------------------------------------------------------
# the corpus

#: the largest corpus scale (10 × SOL-PMT's 5,564 notes); the command line has the same bound
MAX_SCALE = 10.0


def plan_corpus(*, scale: float = DEFAULT_SCALE, seed: int = 0,
                realism: RealismLike = DEFAULT_REALISM) -> List[NoteSpec]:
    """Specs of every note of the corpus, in index order (``realism``: see :func:`make_note_spec`).

    Each non-zero cell of the profile gets max(1, round(count · scale)) notes, imitating SOL-PMT notes of
    that cell picked evenly through the cell's list (sorted by variant, pitch and dynamics) from a seeded
    random offset, so that variants, registers and dynamics keep their SOL proportions.  The realism factor
    ``common`` gives the vibrato cells :data:`COMMON_VIBRATO` times their notes, the extra ones after all
    others.
    """
    scale = check_positive_float("scale", scale)
    if scale > MAX_SCALE:   # the specs alone grow with the scale: 1e9 would fill any memory
        raise ParameterError(f"scale must be at most {MAX_SCALE:g} (≈ {5564 * MAX_SCALE:,.0f} notes, ~0.5 MB of "
                             f"audio each), got {scale:g}")
    realism = parse_realism(realism)
    rows = sol_rows()
    specs, extra = [], []
    for cell_number, (_, inst, tech, count) in enumerate(profile_counts()):
        cell = rows.get((inst, tech))
        if not cell:
            raise DataError(f"the SOL-PMT meta CSV has no {tech} notes of {inst} but the profile has {count}")
        n = max(1, int(round(count * scale)))
        _add_cell_notes(specs, inst, cell, n, [int(seed), 1_000_003, cell_number], seed=seed, realism=realism)
        if "common" in realism and tech == "vibrato":
            extra.append((cell_number, inst, cell, n))
    # ``common``: (COMMON_VIBRATO - 1) × each vibrato cell's notes more, after every profile note (whose
    # indices, and so draws, stay as they were), picked evenly through the cell from another offset
    for cell_number, inst, cell, n in extra:
        _add_cell_notes(specs, inst, cell, (COMMON_VIBRATO - 1) * n, [int(seed), 1_000_033, cell_number],
                        seed=seed, realism=realism)
    return specs


def _add_cell_notes(specs: List[NoteSpec], inst: str, cell, n: int, offset_seed, *, seed: int,
                    realism: Realism) -> None:
    """Append ``n`` notes imitating the SOL-PMT notes of one profile cell, picked evenly through the cell's
    list from a random offset (``default_rng(offset_seed)``), numbered from ``len(specs)``."""
    offset = np.random.default_rng(offset_seed).uniform()
    for j in range(n):
        orig, pitch, dyn, name = cell[int((j + offset) * len(cell) / n) % len(cell)]
        player, pitch, name = _player(realism, seed, len(specs), VARIANTS[orig]["technique"], inst, pitch, name)
        specs.append(make_note_spec(player, orig, pitch=pitch, dynamics=dyn, seed=seed, index=len(specs),
                                    source_file=name, realism=realism))


#: the ``common`` factor's vibrato notes per SOL-PMT vibrato note
COMMON_VIBRATO = 3


#: instruments that play a vibrato in performance under the ``players`` factor: every sustained one, the
#: singing voice (:data:`.instruments.PLAYER_ONLY`) included
VIBRATO_PLAYERS = tuple(sorted(name for name, i in INSTRUMENTS.items() if i.excitation != "plucked"))
#: share of the ``players`` vibratos that are sung (a choice: singers are common vibrato players, and a
#: uniform draw over 14 players would give the voice about 4 of the 58 vibratos of the demo's scale)
SUNG_SHARE = 0.25
_INSTRUMENTAL_PLAYERS = tuple(p for p in VIBRATO_PLAYERS if p not in PLAYER_ONLY)


def _player(realism: Realism, seed, index, technique, instrument, pitch, source_file):
    """(instrument, pitch, source_file) of note ``index``: the profile's, or with the ``players`` factor, for
    a vibrato, the voice (:data:`SUNG_SHARE` of them) or an instrument drawn uniformly from the other
    :data:`VIBRATO_PLAYERS`, and a pitch from its range (``default_rng([seed, index, 6])``, a stream no other
    draw uses; the SOL file is then not imitated)."""
    if technique != "vibrato" or "players" not in realism.for_note(seed, index):
        return instrument, pitch, source_file
    rng = np.random.default_rng([int(seed), int(index), 6])
    sung, k = rng.uniform() < SUNG_SHARE, int(rng.integers(len(_INSTRUMENTAL_PLAYERS)))
    inst = INSTRUMENTS["Voice" if sung else _INSTRUMENTAL_PLAYERS[k]]
    lo, hi = inst.midi_range
    return inst.name, midi_name(int(rng.integers(lo + 6, hi - 5))), ""


def corpus_columns(specs: Sequence[NoteSpec], *, seed: int = 0) -> Dict[str, np.ndarray]:
    """meta.csv columns of a list of specs: SOL-PMT columns (6:2:2 split per class per instrument) then
    :data:`GROUND_TRUTH_COLUMNS`."""
    labels = np.array([s.label for s in specs], dtype=np.int64)
    instruments = np.array([s.instrument for s in specs], dtype=object)
    cols = {
        "instrument family": np.array([s.family for s in specs], dtype=object),
        "instrument": instruments,
        "technique original": np.array([s.technique_original for s in specs], dtype=object),
        "modulation technique": np.array([s.technique for s in specs], dtype=object),
        "file_name": np.array([s.file_name for s in specs], dtype=object),
        "subset": split_622(labels, groups=instruments, seed=seed),
        "label": labels,
    }
    for name in GROUND_TRUTH_COLUMNS:
        attr = "index" if name == "note_index" else name
        values = [getattr(s, attr) for s in specs]
        cols[name] = np.array(values, dtype=object if isinstance(values[0], str) else None)
    cols.update(performance_columns([s.performance for s in specs], [_file_span(s) for s in specs]))
    assert tuple(cols)[:len(META_COLUMNS)] == META_COLUMNS
    return cols


def _file_span(spec: NoteSpec) -> tuple:
    """(start, end) of the note its file holds, s from the onset: −onset_s for a file that holds the
    onset, duration_s for a file that holds the note's end."""
    a, b = spec.file_span
    return max(a, -spec.onset_s), min(b, spec.duration_s)


def write_note(spec: NoteSpec, path: PathLike, *, streams: str = "shared") -> str:
    """Render one note to a 16-bit WAV at ``path`` (temporary name, then rename: a file that exists is
    complete).  ``streams``: see :func:`render_note`."""
    path = os.fspath(path)
    with atomic_path(path, suffix=".part") as tmp:
        write_wav(tmp, render_note(spec, streams=streams), SR)
    return path


def _write_note(args):
    write_note(*args)
    return args[0].index


def synthesize_corpus(out_dir: PathLike, *, scale: float = DEFAULT_SCALE, seed: int = 0, jobs: int = 1,
                      progress: bool = True, realism: RealismLike = DEFAULT_REALISM) -> str:
    """Write the synthetic corpus: ``out_dir/audio/*.wav`` and ``out_dir/meta.csv``.

    Resumable: notes whose WAV exists are kept; meta.csv is written last (atomically).

    Parameters
    ----------
    out_dir : str
        Created if missing (its parent must exist).  One process at a time writes it (``OUT_DIR.lock``).
    scale : float
        Fraction of the SOL-PMT counts (default :data:`DEFAULT_SCALE` ≈ 1,670 notes; 0.1 ≈ 560; 1 = 5,564).
    seed : int
    jobs : int
        Worker processes.
    progress : bool
        Show a progress bar.
    realism : str or Realism
        Performance and recording conditions (:mod:`.realism`): "noise+mic+articulation+players+common" (default:
        :data:`scatterxai.task.DEFAULT_REALISM`), "none" (studio notes as in SYNTH_VERSION 3, bit for bit),
        "all", factor names joined by ",", "all-<factor>", and any of them with "@P" (a share P of the notes).

    Returns
    -------
    meta_csv : str
        Path of ``out_dir/meta.csv``.
    """
    jobs = check_positive_int("jobs", jobs)
    seed = check_seed("seed", seed)
    realism = parse_realism(realism)
    specs = plan_corpus(scale=scale, seed=seed, realism=realism)
    with claim_output(out_dir, kind="corpus", option="OUT_DIR") as claim:   # the output rule (README)
        return _synthesize(claim.path, specs, scale=scale, seed=seed, jobs=jobs, progress=progress,
                           realism=realism.name)


def _synthesize(out_dir: str, specs, *, scale, seed, jobs, progress, realism) -> str:
    audio_dir = os.path.join(out_dir, "audio")
    os.makedirs(audio_dir, exist_ok=True)
    settings = {"scale": float(scale), "seed": int(seed), "synth_version": SYNTH_VERSION,
                "sample_rate": SR, "n_notes": len(specs), "realism": realism}
    manifest = os.path.join(out_dir, "synth.json")
    if os.path.exists(manifest):
        try:
            with open(manifest, encoding="utf-8") as f:
                previous = json.load(f)
        except (OSError, ValueError, RecursionError) as e:
            raise DataError(f"cannot read {manifest} ({e}); delete it or use another directory") from None
        if previous != settings:
            raise DataError(f"{out_dir} holds a corpus made with {previous}; this run asks for {settings}. "
                            f"Use another directory or delete it")
    else:
        with atomic_path(manifest) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump(settings, f, indent=1)
    for name in os.listdir(audio_dir):
        if name.endswith(".part"):   # left by an interrupted run
            os.remove(os.path.join(audio_dir, name))
    todo = [(s, os.path.join(audio_dir, s.file_name)) for s in specs
            if not os.path.exists(os.path.join(audio_dir, s.file_name))]
    with progress_bar(total=len(specs), initial=len(specs) - len(todo), enabled=progress, desc="synth",
                      unit="note") as bar:
        if jobs == 1 or len(todo) < 2:
            for item in todo:
                _write_note(item)
                bar.update()
        else:
            # fork where available: workers need only numpy/scipy, and re-importing the package (and
            # torch with it) in spawned workers costs seconds each
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            with multiprocessing.get_context(method).Pool(min(jobs, len(todo))) as pool:
                for _ in pool.imap_unordered(_write_note, todo, chunksize=1):
                    bar.update()
    return write_meta_csv(os.path.join(out_dir, "meta.csv"), corpus_columns(specs, seed=seed))
