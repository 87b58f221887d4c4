"""A model trained on a small synthetic corpus with the realism factors recognises short excerpts: a
1.5-s steady vibrato is not turned into a tremolo by its edges, and a 1.5-s tremolo stays a tremolo.

Small on purpose: two classes (any label set works), 24 notes each with every factor on, a scattering at
8 kHz whose window (4.1 s) holds the excerpts with room to spare; the test notes are prepared exactly as
a user's short file is (:func:`scatterxai.audio.prepare`)."""

import numpy as np
import pytest

from scatterxai.audio import prepare
from scatterxai.data import write_meta_csv
from scatterxai.data.synth import make_note_spec, render_note, write_note
from scatterxai.data.synth.corpus import profile_counts
from scatterxai.data.synth.instruments import parse_instrument

from .conftest import SLOW_MOD

SR = 44100
PER_CLASS = 24
SUBSETS = ("training",) * 16 + ("validation",) * 4 + ("test",) * 4


def _corpus(tmp_path):
    """24 vibrato and 24 tremolo notes on the instruments that play them in SOL-PMT (no mutes)."""
    rows = {"file_name": [], "label": [], "subset": []}
    for label, name in enumerate(("vibrato", "tremolo")):
        instruments = [i for _, i, t, _ in profile_counts() if t == name and parse_instrument(i)[1] is None]
        for j in range(PER_CLASS):
            spec = make_note_spec(instruments[j % len(instruments)], name, seed=21, index=100 * label + j,
                                  realism="all")
            write_note(spec, tmp_path / spec.file_name)
            rows["file_name"].append(spec.file_name)
            rows["label"].append(name)
            rows["subset"].append(SUBSETS[j])
    return write_meta_csv(tmp_path / "meta.csv", rows)


def _excerpt(instrument, variant, pitch):
    """1.5 s from 1.0 s of a studio note (realism off: a steady technique), cut hard as a user would."""
    spec = make_note_spec(instrument, variant, pitch=pitch, seed=77, index=0, duration_s=4.0)
    y = render_note(spec)
    return prepare(y[int(1.0 * SR):int(2.5 * SR)], SR, SLOW_MOD)


@pytest.mark.usefixtures("one_torch_thread")
def test_short_excerpts_of_vibrato_and_tremolo_are_recognised(tmp_path):
    import scatterxai as sx
    from scatterxai.features import extract_features
    from scatterxai.model import load_model, train_model

    meta = _corpus(tmp_path)
    extract_features(meta, tmp_path, tmp_path / "f.h5", config=SLOW_MOD, device="cpu", progress=False)
    train_model(tmp_path / "f.h5", input="s1s2", out_dir=tmp_path / "m", seed=0, device="cpu", progress=False)
    model = load_model(tmp_path / "m", device="cpu")
    x = np.stack([_excerpt("Oboe", "vibrato", "A4"), _excerpt("Bassoon", "vibrato", "D3"),
                  _excerpt("Violin", "tremolo", "A4"), _excerpt("Violoncello", "tremolo", "D3")])
    import torch
    with torch.no_grad():
        logits = model.net(model.prepare(sx.scatter(x, SLOW_MOD))).numpy()
    predicted = [model.classes[i] for i in logits.argmax(axis=1)]
    assert predicted == ["vibrato", "vibrato", "tremolo", "tremolo"], predicted
