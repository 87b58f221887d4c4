"""``scatterxai auralise``: listen to what the network used in one note, and measure it.

From an audio file and a model (:func:`auralise_audio`: scattering, then relevance with any registered
method) or from a relevance file written by ``scatterxai explain`` (:func:`auralise_relevance`), the
note's local relevance map becomes path weights (:func:`.resynth.relevance_mask`: positive relevance over
its maximum) and the note is resynthesised (:func:`.resynth.auralise`).  Written to ``OUT_DIR``:

* ``relevant.wav`` — what the map keeps; ``complement.wav`` — the rest; ``reference.wav`` — the all-ones
  resynthesis, which is their sum (≈ the note, band-limited to the filter bank); 32-bit float, one common
  scale (``scale`` in the JSON: file = scale · prepared note, which has unit standard deviation), one
  length (the scattering's N samples at its sample rate);
* ``map.png`` — the relevance map on the (λ1, λ2) plane;
* ``auralise.json`` — the explained class, the mask, the strongest path and the measurements of each
  part (:func:`measure`): energy share of the reference, spectral centroid, share of the energy below
  2 kHz, and the rate and depth of the strongest envelope modulation (2–40 Hz).

Paths the model does not read (e.g. S2 for an S1 model) have no relevance: the relevant part leaves them
out and the complement keeps them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping, Optional, Union

import numpy as np

from ..._util.jsonio import write_json
from ..._util.log import logger
from ..._util.outputs import claims_output
from ..._util.types import Device, PathLike
from ..._util.validate import check_int
from ...errors import ParameterError

if TYPE_CHECKING:
    from ...scattering.config import ScatteringConfig
from .resynth import (
    Auralisation,
    auralise,
    band_energy_share,
    energy_share,
    envelope_modulation,
    spectral_centroid_hz,
)

__all__ = ["AURALISE_FILES", "SPLIT_HZ", "measure", "full_table_map", "auralise_audio", "auralise_relevance"]

AURALISE_FILES = {"relevant": "relevant.wav", "complement": "complement.wav", "reference": "reference.wav",
                  "map": "map.png", "json": "auralise.json"}
#: the measurements report the share of energy below this frequency (Hz)
SPLIT_HZ = 2000.0
_PEAK = 0.9   # peak level of the loudest written part


def measure(parts: Auralisation, sr: float, *, split_hz: float = SPLIT_HZ) -> dict:
    """Measurements of each part: ``{part: {energy_share, centroid_hz, below_<split>_share, am_rate_hz,
    am_depth}}`` (energy share relative to the reference; NaN for a silent part)."""
    out = {}
    key = f"below_{split_hz:g}_hz_share"
    for name in Auralisation._fields:
        y = getattr(parts, name)
        rate, depth = envelope_modulation(y, sr)
        out[name] = {"energy_share": energy_share(y, parts.reference), "centroid_hz": spectral_centroid_hz(y, sr),
                     key: band_energy_share(y, sr, split_hz), "am_rate_hz": rate, "am_depth": depth}
    return out


def full_table_map(local: np.ndarray, paths: Mapping[str, np.ndarray], config: ScatteringConfig) -> np.ndarray:
    """A local map over the model's paths → one over every path of ``path_table(config)`` (0 elsewhere).

    Parameters
    ----------
    local : np.ndarray [shape=(C_in,)]
    paths : mapping with ``order``, ``n1``, ``n2`` [shape=(C_in,)]
        The model's (or the relevance file's) paths.
    config : ScatteringConfig
    """
    from ...scattering import path_table
    table = path_table(config)
    local = np.asarray(local, dtype=np.float64)
    order = np.asarray(paths["order"]).astype(np.int64)
    if local.shape != order.shape:
        raise ParameterError(f"local has shape {local.shape}, the paths {order.shape}")
    key = {(int(o), int(a), int(b) if o == 2 else -1): i
           for i, (o, a, b) in enumerate(zip(table.order, table.n1, table.n2))}
    full = np.zeros(len(table))
    for value, o, a, b in zip(local, order, np.asarray(paths["n1"]), np.asarray(paths["n2"])):
        k = (int(o), int(a), int(b) if o == 2 else -1)
        if k not in key:
            raise ParameterError(f"path (order {o}, n1 {a}, n2 {b}) is not in the scattering configuration "
                                 f"{config}")
        full[key[k]] = value
    return full


def _map_figure(local, paths, path: str, *, title: str, f0_hz=None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...maps.grid import grid_layout
    from ...viz.plots import lambda_map

    grid, lam1, lam2 = grid_layout(np.asarray(local, float), paths)
    fig, ax = plt.subplots(figsize=(4.4, 3.8), layout="constrained")
    lambda_map(grid, lam1, lam2, ax=ax, cmap="RdBu_r", symmetric=True, f0_hz=f0_hz, label="relevance")
    ax.set_title(title, fontsize=8)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _write(x, local, paths, config, out_dir, info: dict, *, mode: str, top, f0_hz=None) -> dict:
    """Resynthesise, write the three WAVs, the map and the JSON; return the JSON's contents."""
    from ...audio import write_wav

    os.makedirs(out_dir, exist_ok=True)
    parts = auralise(x, full_table_map(local, paths, config), config, mode=mode, top=top)
    peak = max(float(np.abs(p).max()) for p in parts)
    scale = _PEAK / peak if peak > 0 else 1.0
    written = {}
    for name in Auralisation._fields:
        written[name] = os.path.join(out_dir, AURALISE_FILES[name])
        write_wav(written[name], (scale * getattr(parts, name)).astype(np.float32), int(config.sr), subtype="FLOAT")
    local = np.asarray(local, float)
    top_path = int(np.argmax(local))
    lam2 = float(np.asarray(paths["lambda2_hz"], float)[top_path])
    result = {**info, "mask": {"mode": mode, "top": top}, "scale": scale, "sr": config.sr,
              "peak_path": {"lambda1_hz": float(np.asarray(paths["lambda1_hz"], float)[top_path]),
                            "lambda2_hz": lam2 if np.isfinite(lam2) else 0.0},
              "measurements": measure(parts, config.sr), "files": written}
    _map_figure(local, paths, os.path.join(out_dir, AURALISE_FILES["map"]), f0_hz=f0_hz,
                title=f"{info.get('note', '')}\nrelevance for {info['explained']} ({info['method']})")
    write_json(os.path.join(out_dir, AURALISE_FILES["json"]), result)
    return result


def _target(target, classes) -> Optional[int]:
    """None for "pred", else the class index of a class name or index."""
    if target == "pred":
        return None
    if isinstance(target, str) and target in classes:
        return classes.index(target)
    try:
        index = int(target)
    except (TypeError, ValueError):
        index = -1
    if not 0 <= index < len(classes):
        raise ParameterError(f"target must be 'pred', a class name {list(classes)} or an index in "
                             f"[0, {len(classes)}), got {target!r}")
    return index


@claims_output("out_dir", kind="auralise", inputs={"audio": "audio input", "model_dir": "model directory"})
def auralise_audio(audio: PathLike, model_dir: PathLike, out_dir: PathLike, *, method: str = "epsilon_plus",
                   target: Union[str, int] = "pred", device: Device = "auto", mode: str = "positive",
                   top: Optional[int] = None, overwrite: bool = False) -> dict:
    """Auralise one audio file with a model (see the module docstring).

    Parameters
    ----------
    audio : str
        Audio file (any rate and channels: prepared as for extraction).
    model_dir : str
        Trained model directory.
    out_dir : str
        Written as a whole under the output rule (:mod:`scatterxai._util.outputs`: never holding the audio
        input, never inside the model directory).
    method : str
        Registered attribution method.
    target : "pred", class name or index
        The class whose relevance is kept.
    device : str
    mode, top
        Mask from the local map (:func:`.resynth.relevance_mask`).

    Returns
    -------
    dict
        The contents of ``auralise.json``.

    Examples
    --------
    What the model of ``toy.model_dir`` (see ``tests/test_examples.py``) finds relevant in a synthetic trill
    (``toy.audio``), as sound; the two parts add up to the resynthesis of the whole note:

    >>> from scatterxai.analysis.auralise.run import auralise_audio
    >>> result = auralise_audio(toy.audio, toy.model_dir, tmp / "trill", device="cpu")
    >>> result["method"], result["predicted"] in ("vibrato", "trill", "tremolo", "bisbigliando", "flatterzunge")
    ('epsilon_plus', True)
    >>> sorted(p.name for p in (tmp / "trill").glob("*.wav"))
    ['complement.wav', 'reference.wav', 'relevant.wav']
    >>> m = result["measurements"]
    >>> bool(abs(m["relevant"]["energy_share"] + m["complement"]["energy_share"] - 1) < 0.5)
    True
    """
    from ...audio import load_prepared, nothing_to_explain
    from ...explain.attribution import attribute
    from ...maps.grid import local_map
    from ...model.directory import load_model
    from ...scattering.api import scatter

    model = load_model(model_dir, device=device)
    config = model.scattering
    x = load_prepared(os.fspath(audio), config)
    why = nothing_to_explain(os.fspath(audio), x, config.N / config.sr)
    if why:
        logger.warning("warning: %s", why)
    S = scatter(x, config, device=model.device).cpu().numpy()
    index = _target(target, model.classes)
    att = attribute(model.net, model.prepare(S), method=method,
                    target="pred" if index is None else np.array([index]), device=model.device)
    info = {"note": os.path.basename(os.fspath(audio)), "audio": os.path.abspath(os.fspath(audio)),
            "model_dir": os.path.abspath(os.fspath(model_dir)), "method": att.method,
            "predicted": model.classes[int(att.logits[0].argmax())],
            "explained": model.classes[int(att.explained[0])]}
    return _write(x, local_map(att.relevance)[0], model.paths, config, out_dir, info, mode=mode, top=top)


@claims_output("out_dir", kind="auralise", inputs={"relevance": "relevance input", "audio_root": "audio root"})
def auralise_relevance(relevance: PathLike, example: int, audio_root: PathLike, out_dir: PathLike, *,
                       method: str = "epsilon_plus", mode: str = "positive", top: Optional[int] = None,
                       overwrite: bool = False) -> dict:
    """Auralise example ``example`` (row of the file) of a relevance file with its stored local map.

    Parameters
    ----------
    relevance : str
        Relevance file (``scatterxai explain``).
    example : int
        Row in the file (0 … K−1).
    audio_root : str
        Directory its ``file_name`` is relative to (or anywhere below, as for extraction).
    out_dir, method, mode, top
        As in :func:`auralise_audio`; ``method`` must be in the file.
    """
    from ...audio import load_prepared
    from ...data.paths import AudioResolver
    from ...io.relevance import RelevanceFile
    from ...scattering.config import ScatteringConfig

    with RelevanceFile(relevance) as rf:
        k = check_int("example", example, low=0, high=len(rf) - 1)
        config = ScatteringConfig.from_dict(rf.attrs)
        local = rf.local(method)[k]
        paths = rf.paths
        ex = {name: col[k] for name, col in rf.examples.items()}
        classes = rf.classes
    name = str(ex["file_name"])
    x = load_prepared(AudioResolver(audio_root)(name), config)
    info = {"note": os.path.basename(name), "relevance": os.path.abspath(os.fspath(relevance)), "example": k,
            "method": method, "predicted": classes[int(ex["pred"])], "explained": classes[int(ex["explained"])]}
    for col in ("label", "f0_hz", "modulation_hz", "instrument"):
        if col in ex:
            info[col] = classes[int(ex[col])] if col == "label" else ex[col]
    f0 = float(ex["f0_hz"]) if "f0_hz" in ex else None
    return _write(x, local, paths, config, out_dir, info, mode=mode, top=top, f0_hz=f0)
