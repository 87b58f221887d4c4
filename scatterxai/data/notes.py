"""Note names (scientific pitch notation, A4 = 440 Hz): the one parser of the package.

Used by the synthetic corpus (pitches of the SOL-PMT profile), by figures (the F0 of a SOL file name when
the data carry no ``f0_hz`` column) and by sweeps.  Sharps and flats, octaves -1 to 9: ``"A4"``,
``"C#1"``, ``"Bb3"``.
"""

from __future__ import annotations

import os
import re
from typing import Optional, Tuple, Union

import numpy as np

from ..errors import ParameterError

__all__ = ["note_midi", "midi_name", "midi_hz", "pitch_hz_from_name", "sol_pitch_and_dynamics",
           "NOTE_PATTERN", "DYNAMICS_MARKS"]

_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_STEP = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
#: a note name: letter, optional accidental, octave
NOTE_PATTERN = r"[A-G](?:#|b)?-?\d"
_NOTE = re.compile(rf"^({NOTE_PATTERN})$")
#: dynamics markings of SOL file names
DYNAMICS_MARKS = ("pp", "p", "mf", "f", "ff", "fff")
# pitch then dynamics between dashes, as SOL names them: "Vn-trem-A#4-mf-...wav"
_SOL_NAME = re.compile(rf"-({NOTE_PATTERN})-({'|'.join(DYNAMICS_MARKS)})(?=[-. ])")
# a pitch anywhere in a file name, delimited by - _ . or the name's ends
_IN_NAME = re.compile(rf"(?:^|[-_])({NOTE_PATTERN})(?=[-_.]|$)")


def note_midi(name: str) -> int:
    """MIDI number of a note name: ``'A4'`` → 69, ``'C#1'`` → 25, ``'Bb3'`` → 58."""
    text = str(name).strip()
    if not _NOTE.match(text):
        raise ParameterError(f"pitch must be a note name like 'A4', 'C#1' or 'Bb3', got {name!r}")
    accidental = {"#": 1, "b": -1}.get(text[1], 0)
    octave = int(text[1 + (accidental != 0):])
    return 12 * (octave + 1) + _STEP[text[0]] + accidental


def midi_name(midi: int) -> str:
    """69 → ``'A4'`` (sharps)."""
    return f"{_NOTE_NAMES[int(midi) % 12]}{int(midi) // 12 - 1}"


def midi_hz(midi: Union[float, np.ndarray]) -> Union[float, np.ndarray]:
    """Equal temperament, A4 = 440 Hz (arrays welcome)."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def pitch_hz_from_name(name: str) -> float:
    """Fundamental frequency (Hz) of the pitch written in a file name (``Vn-trem-A#4-mf.wav`` → 466.2);
    NaN if the name holds no pitch."""
    m = _IN_NAME.search(os.path.basename(str(name)))
    return float(midi_hz(note_midi(m.group(1)))) if m else float("nan")


def sol_pitch_and_dynamics(file_name: str) -> Tuple[Optional[str], Optional[str]]:
    """(pitch, dynamics) of a SOL file name (``"...-A#4-mf-..."``), or (None, None) without that pattern."""
    m = _SOL_NAME.search(str(file_name))
    return (m.group(1), m.group(2)) if m else (None, None)
