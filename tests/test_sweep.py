"""Controlled variations: notes that differ in one factor only, invariance and tracking numbers, and the
``scatterxai sweep`` / ``scatterxai auralise`` commands end to end on a tiny model."""

import contextlib
import dataclasses
import json

import h5py
import numpy as np
import pytest
import soundfile as sf
import torch

from scatterxai import cli
from scatterxai.analysis.sweep import (
    hit_rate,
    invariance,
    log_fit,
    pair_correlations,
    peak_lambda1_hz,
    peak_lambda2_hz,
    sweep_pairs,
)
from scatterxai.data import read_meta_csv
from scatterxai.data.synth import FACTORS, corpus_columns, plan_sweep, render_note, vary, write_sweep
from scatterxai.data.synth.instruments import parse_instrument
from scatterxai.data.synth.streams import SplitStreams, substream
from scatterxai.data.synth.sweep import DEPTH_FIELD, SWEEP_INDEX, base_note, changed_columns, default_values
from scatterxai.errors import ParameterError
from scatterxai.explain import Explainer, registered
from scatterxai.model import ConvNet, save_model
from scatterxai.scattering import path_table, scatter
from scatterxai.scattering.normalize import log_normalize
from scatterxai.task import CLASSES

from .conftest import SLOW_MOD, SMALL

# --- the generator -----------------------------------------------------------------------------------------

SMALL_VALUES = {"rate": (5.0, 10.0, 20.0), "f0": (220.0, 330.0, 440.0), "dynamics": ("pp", "mf", "ff"),
                "instrument": ("Violin", "Viola", "Harp"), "depth": (0.3, 0.6, 0.9),
                "technique": ("trill", "tremolo", "flatterzunge")}


@pytest.mark.parametrize("factor", FACTORS)
def test_sweep_notes_differ_only_in_the_swept_factor(factor):
    sweep = plan_sweep("tremolo", factor, SMALL_VALUES[factor], repeats=2, instrument="Viola")
    cols = corpus_columns(list(sweep.specs))
    allowed = set(changed_columns(factor)) | {"file_name", "subset"}
    for r in range(2):
        rows = np.flatnonzero(sweep.repeat == r)
        for name, col in cols.items():
            if name not in allowed:
                assert len({str(v) for v in col[rows]}) == 1, f"{factor} sweep changes {name}"
    # the swept quantity itself takes the values
    first = [sweep.specs[i] for i in np.flatnonzero(sweep.repeat == 0)]
    got = {"rate": [s.modulation_hz for s in first], "f0": [s.f0_hz for s in first],
           "dynamics": [s.dynamics for s in first], "instrument": [s.instrument for s in first],
           "depth": [getattr(s, DEPTH_FIELD["tremolo"]) for s in first],
           "technique": [s.technique for s in first]}[factor]
    assert tuple(got) == SMALL_VALUES[factor]
    # repeats have their own draws
    assert sweep.specs[0].index == SWEEP_INDEX and sweep.specs[len(sweep.values)].index == SWEEP_INDEX + 1
    assert sweep.specs[0].onset_s != sweep.specs[len(sweep.values)].onset_s


def test_only_the_named_fields_change_for_the_continuous_factors():
    base = base_note("vibrato", instrument="Oboe", pitch="A4")
    fields = {f.name for f in dataclasses.fields(base)}
    for factor, value, changed in (("rate", 9.0, {"modulation_hz"}), ("f0", 500.0, {"f0_hz", "pitch"}),
                                   ("dynamics", "ff", {"dynamics"}), ("depth", 0.3, {"fm_depth_st"})):
        new = vary(base, factor, value)
        assert {f for f in fields if getattr(new, f) != getattr(base, f)} == changed
    assert vary(base, "f0", 500.0).pitch == "B4"
    # a technique change keeps instrument, pitch, tuning, dynamics, duration, onset
    trill = vary(base, "technique", "trill")
    assert trill.technique_original == "trill-major-second-up"
    assert (trill.f0_hz, trill.duration_s, trill.onset_s, trill.instrument) == \
        (base.f0_hz, base.duration_s, base.onset_s, base.instrument)
    # to the harp and back: the plucked technique shape comes with the instrument
    harp = vary(base_note("tremolo", instrument="Viola"), "instrument", "Harp")
    assert harp.mod_start_s == 0 and harp.mod_end_s < harp.duration_s


def test_sweep_is_written_like_the_corpus(tmp_path):
    sweep = plan_sweep("flatterzunge", "rate", (8.0, 16.0), instrument="Flute")
    meta = write_sweep(sweep, tmp_path)
    cols = read_meta_csv(meta)
    assert list(cols["file_name"]) == list(sweep.file_names)
    assert list(cols["modulation_hz"]) == [8.0, 16.0]
    assert list(cols["sweep_value"]) == ["8Hz", "16Hz"] and set(cols["subset"]) == {"test"}
    for name in sweep.file_names:
        y, sr = sf.read(tmp_path / "audio" / name)
        assert sr == 44100 and y.ndim == 1 and np.abs(y).max() > 0.01


def test_split_streams_keep_every_other_draw():
    # before the onset a note is its noise floor alone: with split streams it is the same in every note
    # of a rate or f0 sweep (the draws before it changed size); with one shared generator it is not
    for factor, values in (("rate", (6.0, 13.0)), ("f0", (220.0, 311.0))):
        a, b = plan_sweep("trill", factor, values, instrument="Clarinet-Bb").specs
        n0 = int(a.onset_s * 44100) - 8
        ya, yb = render_note(a, streams="split"), render_note(b, streams="split")
        assert ya.shape == yb.shape
        # (equal up to the rounding of the FFT convolution that adds the room)
        np.testing.assert_allclose(ya[:n0], yb[:n0], rtol=0, atol=1e-14)
        assert np.abs(ya[n0:] - yb[n0:]).max() > 1e-3
        assert np.abs(render_note(a)[:n0] - render_note(b)[:n0]).max() > 1e-5


# (corpus index, length, RMS, samples 20000, 50000, 100000) of notes of plan_corpus(scale=0.3, seed=0), as
# rendered by SYNTH_VERSION 3 before sweeps and realism factors existed: the per-call streams, and the
# realism code with every factor off, must leave the corpus alone
CORPUS_NOTES = [
    (0, 173690, 0.02584342101666024, (0.03437576266478868, 0.0094454685928312, 0.02119714575698221)),
    (343, 174791, 0.027204686218990377, (-0.0034621739883534254, -0.04541224822763102, 0.03105218283706127)),
    (963, 171656, 0.049321235880760636, (0.04593315992776758, -0.017969884197215753, -0.02671664835305089)),
]


def test_corpus_notes_are_unchanged():
    from scatterxai.data.synth import plan_corpus
    specs = plan_corpus(scale=0.3, seed=0, realism="none")
    assert all(s.performance is None for s in specs)
    for index, n, rms, samples in CORPUS_NOTES:
        y = render_note(specs[index])
        assert y.shape == (n,)
        assert np.sqrt(np.mean(y ** 2)) == pytest.approx(rms, rel=1e-7)
        np.testing.assert_allclose(y[[20000, 50000, 100000]], samples, rtol=1e-6, atol=1e-12)


def test_split_streams_are_per_call():
    s = SplitStreams((1, 2))
    first = s.normal(size=3)
    s2 = SplitStreams((1, 2))
    s2.normal(size=100)                                  # a longer first call…
    np.testing.assert_array_equal(s.uniform(size=4), s2.uniform(size=4))   # …does not move the second
    np.testing.assert_array_equal(SplitStreams((1, 2)).normal(size=5)[:3], first)   # prefixes agree
    child = substream(s, "room")
    assert child.key != s.key and substream(s, "room").key == child.key
    g = np.random.default_rng(0)
    assert substream(g, "room") is g


def test_default_values():
    spec = base_note("trill", instrument="Viola")
    f0 = np.array(default_values("f0", spec))
    lo, hi = parse_instrument("Viola")[0].midi_range
    assert f0.size == 7 and np.log2(f0[-1] / f0[0]) == pytest.approx(3.0)
    assert 440.0 * 2 ** ((lo - 69.5) / 12) <= f0.min() and f0.max() <= 440.0 * 2 ** ((hi - 68.5) / 12)
    assert default_values("rate", spec)[0] == 4.0 and default_values("rate", spec)[-1] == pytest.approx(32.0)
    assert "Harp" not in default_values("instrument", spec)
    assert "Harp" in default_values("instrument", base_note("tremolo"))
    assert default_values("technique", base_note("bisbigliando")) == ("tremolo", "bisbigliando")


def test_sweep_errors():
    with pytest.raises(ParameterError, match="factor"):
        plan_sweep("trill", "tempo")
    with pytest.raises(ParameterError, match="outside the range"):
        plan_sweep("trill", "f0", (30.0,), instrument="Violin")
    with pytest.raises(ParameterError, match="plucks"):
        plan_sweep("bisbigliando", "depth", instrument="Harp")
    with pytest.raises(ParameterError, match="plays only"):
        plan_sweep("trill", "instrument", ("Harp",))
    with pytest.raises(ParameterError, match="repeat"):
        plan_sweep("trill", "rate", (4.0, 4.0))
    with pytest.raises(ParameterError, match="unknown technique"):
        base_note("glissando")


# --- numbers -----------------------------------------------------------------------------------------------

def test_pair_correlations_and_invariance(rng):
    X = rng.standard_normal((5, 3, 4))
    pairs = sweep_pairs([0, 0, 1, 1, 1])
    assert pairs.tolist() == [[0, 1], [2, 3], [2, 4], [3, 4]]
    r = pair_correlations(X, pairs)
    flat = X.reshape(5, -1)
    np.testing.assert_allclose(r, [np.corrcoef(flat[i], flat[j])[0, 1] for i, j in pairs], atol=1e-12)
    gains = np.stack([flat[0] * g + 2.0 for g in (0.5, 1.0, 4.0)])      # affine copies: r = 1
    assert invariance(gains, sweep_pairs([0, 0, 0])) == {"mean": pytest.approx(1.0), "std": pytest.approx(0.0),
                                                         "n_pairs": 3}
    const = np.vstack([np.ones(12), flat[1]])
    assert invariance(const, [[0, 1]])["n_pairs"] == 0


def test_log_fit_and_peaks():
    true = np.array([4.0, 8.0, 16.0, 32.0])
    fit = log_fit(true, 2 * true ** 0.5)
    assert fit["slope"] == pytest.approx(0.5) and fit["r2"] == pytest.approx(1.0) and fit["intercept"] == \
        pytest.approx(1.0)
    noisy = log_fit(true, true * np.array([1.0, 1.4, 0.7, 1.0]))
    assert 0.5 < noisy["r2"] < 1 and noisy["n"] == 4
    flat = log_fit(true, np.array([8.0, 8.0, 8.0, 8.0 * (1 + 1e-15)]))   # equal up to rounding
    assert np.isnan(flat["r2"]) and flat["slope"] == 0
    assert np.isnan(log_fit(np.full(4, 8.0), true)["slope"])
    table = path_table(SMALL)
    local = np.zeros((2, len(table)))
    local[0, 7], local[1, len(table) - 1] = 1.0, 1.0
    np.testing.assert_array_equal(peak_lambda1_hz(local, table), table.lambda1_hz[[7, len(table) - 1]])


def test_windowed_peaks_and_hit_rate():
    table = path_table(SLOW_MOD)
    local = np.zeros((1, len(table)))
    s2 = np.flatnonzero(table.order == 2)
    fast, slow = s2[np.argmax(table.lambda2_hz[s2])], s2[np.argmin(np.abs(table.lambda2_hz[s2] - 8))]
    local[0, fast], local[0, slow] = 2.0, 1.0
    assert peak_lambda2_hz(local, table)[0] == table.lambda2_hz[fast]
    assert peak_lambda2_hz(local, table, band_hz=(2, 64))[0] == table.lambda2_hz[slow]
    with pytest.raises(ParameterError, match="no second-order path"):
        peak_lambda2_hz(local, table, band_hz=(1e5, 2e5))
    assert hit_rate([4.0, 8.0, 16.0, 32.0], [5.6, 8.0, 8.0, 45.0]) == 0.75


def test_raw_scattering_is_invariant_to_gain_and_the_log_is_not():
    # scattering is 1-homogeneous: gain-scaled notes have r = 1 before the log (not after it)
    spec = plan_sweep("flatterzunge", "dynamics", ("mf",), instrument="Flute").specs[0]
    x = render_note(spec, streams="split")[5000:5000 + SMALL.N]
    notes = np.stack([g * x for g in (0.05, 1.0, 8.0)])
    S = scatter(notes, SMALL, dtype=torch.float64, device="cpu").numpy()
    pairs = sweep_pairs([0, 0, 0])
    assert invariance(S, pairs)["mean"] == pytest.approx(1.0, abs=1e-9)
    mu = S[1].mean(axis=-1)
    assert invariance(log_normalize(S, mu, 0.1), pairs)["mean"] < 0.99


# --- the commands on a tiny model --------------------------------------------------------------------------

TABLE = path_table(SLOW_MOD)
# λ2 ≤ 64 Hz: the modulation range
_S2_LOW = torch.as_tensor((TABLE.order == 2) & (TABLE.lambda2_hz <= 64))


class PlantedRelevance(Explainer):
    """Relevance = the network input on the S2 paths with λ2 ≤ 64 Hz: it peaks where the note modulates."""

    name = "planted_s2_input"
    title = "planted"
    family = "gradient"
    summary = "input on the second-order paths of λ2 ≤ 64 Hz (a test method)"

    @contextlib.contextmanager
    def session(self, model):
        def run(x, target):
            with torch.no_grad():
                out = model(x)
            return out, x * _S2_LOW[None, :, None].to(x.dtype)
        yield run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A random-weight model on the SLOW_MOD scattering (800 paths, λ2 down to ~1 Hz), the planted method,
    and one rate sweep of flatterzunge made with the command."""
    root = tmp_path_factory.mktemp("sweep")
    torch.manual_seed(0)
    C = len(TABLE)
    config = {"input": "s1s2", "n_channels": C, "channels": np.arange(C), "n_paths": C, "mu": np.ones(C),
              "c": 0.1, "classes": list(CLASSES), "scattering": SLOW_MOD.to_dict(),
              "paths": {k: np.asarray(getattr(TABLE, k)) for k in TABLE.FIELDS}}
    model = save_model(ConvNet(C, n_classes=5), root / "model", config)
    out = root / "rate"
    with registered(PlantedRelevance):
        code = cli.main(["-q", "sweep", "--model", str(model), "--factor", "rate", "--technique", "flatterzunge",
                         "--values", "4,8", "16", "32", "--methods", "planted_s2_input,epsilon_plus", "--device",
                         "cpu", "--out", str(out)])
        yield {"root": root, "model": model, "out": out, "code": code}


def test_sweep_command_writes_the_issue_layout(tiny):
    assert tiny["code"] == 0
    out = tiny["out"]
    result = json.loads((out / "sweep.json").read_text())
    assert {"factor", "technique", "values", "notes", "predicted", "tracking", "invariance"} <= set(result)
    assert result["factor"] == "rate" and result["technique"] == "flatterzunge"
    assert result["values"] == [4.0, 8.0, 16.0, 32.0] and len(result["notes"]) == 4
    assert all(p in CLASSES for p in result["predicted"])
    assert set(result["tracking"]) == {"planted_s2_input", "epsilon_plus"}
    for fit in result["tracking"].values():
        assert {"slope", "r2", "peak_hz"} <= set(fit) and len(fit["peak_hz"]) == 4
        assert fit["window"]["lambda2_hz"] == [2.0, 64.0]
    # the planted relevance follows the rate: λ2 of its peak is the λ2 centre nearest the true rate
    planted = result["tracking"]["planted_s2_input"]
    assert planted["slope"] == pytest.approx(1.0, abs=0.1) and planted["r2"] > 0.95
    assert planted["hit_rate"] == 1.0 and planted["window"]["slope"] == planted["slope"]
    assert result["corpus_rate_hz"] == [20.0, 35.0]
    # the controls beside the methods (no training features file: no constant or class-prior map)
    controls = result["tracking_controls"]
    assert list(controls) == ["input", "standardised_input", "random"]
    for fit in [*controls.values(), planted]:
        assert {"slope", "r2", "peak_hz", "hit_rate", "spearman", "p", "window"} <= set(fit)
    assert planted["spearman"] == pytest.approx(1.0) and planted["p"] == pytest.approx(1 / 24, abs=0.03)
    layers = ["input", "input_log", "conv0", "conv1", "conv2", "fc1", "relevance/planted_s2_input",
              "relevance/epsilon_plus"]
    assert list(result["invariance"]) == layers
    for inv in result["invariance"].values():
        assert set(inv) == {"mean", "std", "n_pairs"} and inv["n_pairs"] == 6 and -1 <= inv["mean"] <= 1
    for name in ("meta.csv", "features.h5", "relevance.h5", "activations.h5", "tracking.png", "invariance.png"):
        assert (out / name).is_file()
    assert sorted(p.name for p in (out / "audio").iterdir()) == sorted(result["notes"])
    with h5py.File(out / "activations.h5") as f:
        assert f["activations/fc1"].shape == (4, 64) and f["logits"].shape == (4, 5)


def test_auralise_command_from_audio_and_from_a_relevance_file(tiny, tmp_path):
    t = np.arange(SLOW_MOD.N) / SLOW_MOD.sr
    wav = tmp_path / "am.wav"
    sf.write(wav, 0.3 * (1 + 0.8 * np.cos(2 * np.pi * 8 * t)) * np.sin(2 * np.pi * 500 * t), SLOW_MOD.sr)
    out = tmp_path / "aur"
    assert cli.main(["-q", "auralise", str(wav), "--model", str(tiny["model"]), "--method", "planted_s2_input",
                     "--target", "trill", "--device", "cpu", "--out", str(out)]) == 0
    parts = {name: sf.read(out / f"{name}.wav", dtype="float64") for name in ("relevant", "complement", "reference")}
    assert {sr for _, sr in parts.values()} == {SLOW_MOD.sr}
    assert {y.shape for y, _ in parts.values()} == {(SLOW_MOD.N,)}
    y = {name: v[0] for name, v in parts.items()}
    np.testing.assert_allclose(y["relevant"] + y["complement"], y["reference"], atol=1e-6)
    result = json.loads((out / "auralise.json").read_text())
    assert result["explained"] == "trill" and (out / "map.png").is_file()
    m = result["measurements"]
    assert m["reference"]["energy_share"] == pytest.approx(1.0)
    assert m["reference"]["am_rate_hz"] == pytest.approx(8.0, abs=0.1)
    # the planted map holds S2 paths only: the relevant part has no S1 (carrier-level) terms, so it keeps
    # the modulation sidebands and little else; the complement keeps the carrier
    assert m["relevant"]["energy_share"] < 0.3 < m["complement"]["energy_share"]
    assert result["peak_path"]["lambda2_hz"] > 0
    # the same from the relevance file of the sweep
    out2 = tmp_path / "aur2"
    assert cli.main(["-q", "auralise", "--relevance", str(tiny["out"] / "relevance.h5"), "--example", "1",
                     "--audio-root", str(tiny["out"] / "audio"), "--method", "planted_s2_input",
                     "--out", str(out2)]) == 0
    result = json.loads((out2 / "auralise.json").read_text())
    assert result["example"] == 1 and result["modulation_hz"] == 8.0 and result["label"] == "flatterzunge"
    rel, comp, ref = (sf.read(out2 / f"{n}.wav")[0] for n in ("relevant", "complement", "reference"))
    np.testing.assert_allclose(rel + comp, ref, atol=1e-6)


def test_auralise_command_errors(tiny, tmp_path, capsys):
    assert cli.main(["auralise", "--out", str(tmp_path)]) == 2
    assert "--model" in capsys.readouterr().err
    assert cli.main(["auralise", "--relevance", str(tiny["out"] / "relevance.h5"), "--out", str(tmp_path)]) == 2
    assert "--example" in capsys.readouterr().err
