"""Per-example baselines of Integrated Gradients: the same synthetic note rendered without its modulation.

Only synthetic notes have this baseline.  The note is rebuilt from the features file's metadata columns
(``instrument``, ``technique original``, ``pitch``, ``dynamics``, ``note_index``, ``source_file``, and
``realism`` when present: the performance conditions of :mod:`scatterxai.data.synth.realism`) and the
corpus seed with :func:`scatterxai.data.synth.make_note_spec`, checked against the row's ground truth
(``f0_hz``, ``modulation_hz``, ``duration_s``, ``onset_s`` must be reproduced exactly, else the seed or the
data are not those of the corpus), rendered with ``modulated=False`` (:func:`~scatterxai.data.synth.render_note`),
passed through a 16-bit WAV in memory as the corpus files are, prepared (length N, standardised) and scattered with the
features' configuration.  ``modulated=True`` reproduces the features of the corpus itself (tested), which
checks the whole chain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Mapping

import numpy as np

from .._util.log import progress as progress_bar
from .._util.types import Device
from ..errors import DataError

if TYPE_CHECKING:
    import torch

    from ..model.directory import LoadedModel
    from ..scattering.config import ScatteringConfig

__all__ = ["note_specs", "synthetic_features", "baseline_inputs", "SPEC_COLUMNS"]

#: metadata columns a synthetic note is rebuilt from
SPEC_COLUMNS = ("instrument", "technique original", "pitch", "dynamics", "note_index", "source_file")
#: ground-truth columns the rebuilt note must reproduce exactly
_CHECK = ("f0_hz", "modulation_hz", "duration_s", "onset_s")


def _matches(spec, row: Mapping[str, object]) -> bool:
    return all(np.isclose(getattr(spec, k), float(row[k]), rtol=1e-12, atol=0) for k in _CHECK)


def note_specs(examples: Mapping[str, np.ndarray], *, seed: int) -> List:
    """The :class:`~scatterxai.data.synth.NoteSpec` of each row of a synthetic corpus.

    Parameters
    ----------
    examples : dict of str → array [shape=(K,)]
        Metadata columns (``/examples`` of a features file) with :data:`SPEC_COLUMNS` and the ground truth.
    seed : int
        Seed of the synthetic corpus (``synth.json``; ``scatterxai run --seed``).

    Returns
    -------
    list of NoteSpec
    """
    from ..data.synth import make_note_spec

    missing = [c for c in SPEC_COLUMNS + _CHECK if c not in examples]
    if missing:
        raise DataError(f"the unmodulated baseline needs the synthetic corpus' columns; the data lack {missing} "
                        f"(only notes made by `scatterxai synth` have this baseline)")
    specs = []
    for k in range(len(examples["note_index"])):
        row = {c: examples[c][k] for c in SPEC_COLUMNS + _CHECK}
        args = dict(dynamics=str(row["dynamics"]), seed=int(seed), index=int(row["note_index"]),
                    source_file=str(row["source_file"]),
                    realism=str(examples["realism"][k]) if "realism" in examples else None)
        # a SOL name without pitch made the generator draw it (one more random draw): try both
        for pitch in (str(row["pitch"]), None):
            spec = make_note_spec(str(row["instrument"]), str(row["technique original"]), pitch=pitch, **args)
            if _matches(spec, row):
                break
        else:
            raise DataError(f"note {row['note_index']} ({row['source_file']}) is not reproduced by the synthetic "
                            f"generator with seed {seed}: give the corpus seed (synth.json) of these notes")
        specs.append(spec)
    return specs


def _through_wav16(y: np.ndarray, sr: int) -> np.ndarray:
    """``y`` as the corpus' 16-bit WAV files hold it: written and read back in memory with the same codec
    (its quantisation matters for quiet onsets, which standardisation magnifies)."""
    import io

    import soundfile as sf
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, subtype="PCM_16", format="WAV")
    buffer.seek(0)
    return sf.read(buffer, dtype="float64")[0]


def synthetic_features(examples: Mapping[str, np.ndarray], config: ScatteringConfig, *, seed: int,
                       modulated: bool = False, device: Device = "auto", batch_size: int = 8,
                       progress: bool = False) -> np.ndarray:
    """Raw scattering (K, C, T) of the rows' synthetic notes, rendered without (default) or with modulation.

    Parameters
    ----------
    examples : dict of str → array [shape=(K,)]
        See :func:`note_specs`.
    config : ScatteringConfig
        The features' scattering configuration.
    seed : int
        Corpus seed.
    modulated : bool
        False: the baseline (modulation removed); True: the corpus notes themselves.
    device, batch_size, progress
        Scattering device, notes scattered at once, progress bar.

    Returns
    -------
    np.ndarray [shape=(K, C, T), float32]
        Not log-normalised (``LoadedModel.prepare`` turns it into the network input).
    """
    from ..audio import prepare
    from ..data.synth import render_note
    from ..data.synth.render import SR
    from ..scattering.api import scatter
    from ..scattering.config import path_table

    specs = note_specs(examples, seed=seed)
    table = path_table(config)
    out = np.empty((len(specs), len(table), table.n_frames), dtype=np.float32)
    starts = progress_bar(range(0, len(specs), batch_size), enabled=progress, desc="baseline", unit="batch",
                          leave=False)
    for start in starts:
        chunk = specs[start:start + batch_size]
        signals = [prepare(_through_wav16(render_note(s, modulated=modulated), SR), SR, config) for s in chunk]
        out[start:start + len(chunk)] = scatter(np.stack(signals), config, device=device).cpu().numpy()
    return out


def baseline_inputs(examples: Dict[str, np.ndarray], model: LoadedModel, config: ScatteringConfig, *, seed: int,
                    progress: bool = False) -> torch.Tensor:
    """Network input (K, C_in, T) of the unmodulated notes for ``model`` (``LoadedModel``)."""
    S = synthetic_features(examples, config, seed=seed, device=model.device, progress=progress)
    return model.prepare(S)
