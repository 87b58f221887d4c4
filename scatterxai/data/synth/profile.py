"""The SOL-PMT profile the corpus follows: instrument × technique counts and, per cell, the SOL notes
(variant, pitch, dynamics, file name) the synthetic notes imitate."""

from __future__ import annotations

import functools
import os
from typing import Dict, List, Optional, Tuple

from ...task import CLASSES
from ..loaders import SOL_META_CSV
from ..meta import read_meta_csv
from ..notes import note_midi, sol_pitch_and_dynamics
from .instruments import DYNAMICS

__all__ = ["PROFILE_CSV", "profile_counts", "sol_rows"]

#: instrument × technique counts of SOL-PMT (package data)
PROFILE_CSV = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "sol-pmt-instrument-by-technique.csv")


@functools.lru_cache(maxsize=1)
def sol_rows() -> Dict[Tuple[str, str], List[Tuple[str, Optional[str], str, str]]]:
    """SOL-PMT notes grouped by (instrument, class): lists of (technique original, pitch, dynamics,
    file name), pitch None where the file name has none."""
    cols = read_meta_csv(SOL_META_CSV)
    rows = {}
    for inst, tech, orig, name in zip(cols["instrument"], cols["modulation technique"],
                                      cols["technique original"], cols["file_name"]):
        pitch, dyn = sol_pitch_and_dynamics(name)
        if pitch is None:
            dyn = name.rsplit("-", 1)[-1].split(".")[0]
        rows.setdefault((inst, tech), []).append((orig, pitch, dyn if dyn in DYNAMICS else "mf", name))
    for key in rows:
        rows[key].sort(key=lambda r: (r[0], -1 if r[1] is None else note_midi(r[1]), r[2], r[3]))
    return rows


def profile_counts() -> List[tuple]:
    """The SOL-PMT instrument × technique table: [(family, instrument, technique, count), ...]."""
    cols = read_meta_csv(PROFILE_CSV)
    out = []
    for i, inst in enumerate(cols["instrument"]):
        for tech in CLASSES:
            if int(cols[tech][i]) > 0:
                out.append((str(cols["instrument family"][i]), str(inst), tech, int(cols[tech][i])))
    return out
