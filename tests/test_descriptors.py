"""Per-note descriptors against closed forms and against the synthetic generator's ground truth."""

import numpy as np
import pytest

from scatterxai.analysis.describe.descriptors import (
    AUDIO_DESCRIPTORS,
    DESCRIPTORS,
    ENVELOPE_BANDS,
    SCATTERING_DESCRIPTORS,
    audio_descriptors,
    envelope_axis,
    mel_axis,
    modulation_axis,
    scattering_descriptors,
)
from scatterxai.data.synth import make_note_spec, render_note
from scatterxai.errors import ParameterError
from scatterxai.scattering import path_table, scatter

from .conftest import SLOW_MOD

SR = 44100


def tone(f0_hz, *, dur=2.0, sr=SR, n_harmonics=10, fm_cents=0.0, fm_hz=0.0, am_depth=0.0, am_hz=0.0, amp=0.3):
    """Harmonic tone (partials 1/k below 0.45·sr) with f0(t) = f0 · 2^(fm_cents/1200 · sin 2π fm_hz t) and
    envelope amp · (1 + am_depth · cos 2π am_hz t): its rates and depths are known exactly."""
    t = np.arange(round(dur * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0_hz * 2 ** (fm_cents / 1200 * np.sin(2 * np.pi * fm_hz * t))) / sr
    x = sum(np.sin(k * phase + k) / k for k in range(1, n_harmonics + 1) if k * f0_hz < 0.45 * sr)
    return amp * (1 + am_depth * np.cos(2 * np.pi * am_hz * t)) * x / np.abs(x).max()


def cents(a, b):
    return 1200 * np.log2(a / b)


def test_registry_orders_audio_then_scattering():
    assert AUDIO_DESCRIPTORS + SCATTERING_DESCRIPTORS == tuple(DESCRIPTORS)
    assert AUDIO_DESCRIPTORS[0] == "rms_db" and SCATTERING_DESCRIPTORS[0] == "s1_energy"
    for name, (unit, description) in DESCRIPTORS.items():
        assert unit and description, name
    assert DESCRIPTORS["fm_depth_cents"].unit == "cents" and DESCRIPTORS["am_rate_hz"].unit == "Hz"


def test_rms_db_closed_form_and_gain():
    a = 0.5
    y = tone(440.0, n_harmonics=1, amp=a)
    d = audio_descriptors(y, SR)
    assert list(d) == list(AUDIO_DESCRIPTORS)
    assert d["rms_db"] == pytest.approx(20 * np.log10(a / np.sqrt(2)), abs=0.01)   # full-scale square = 0 dB
    note = render_note(make_note_spec("Violin", "tremolo", pitch="A4", seed=1, index=1, duration_s=2.0))
    ref = audio_descriptors(note, SR)
    for g in (0.3, 2.0 ** -3):
        scaled = audio_descriptors(g * note, SR)
        assert scaled["rms_db"] - ref["rms_db"] == pytest.approx(20 * np.log10(g), abs=1e-9)
        others = [k for k in AUDIO_DESCRIPTORS if k != "rms_db"]
        # a power of two scales every floating-point operation exactly
        np.testing.assert_allclose(np.concatenate([np.atleast_1d(scaled[k]) for k in others]),
                                   np.concatenate([np.atleast_1d(ref[k]) for k in others]),
                                   rtol=0 if g == 2.0 ** -3 else 1e-4,
                                   err_msg=f"gain {g} changed a level-free descriptor")


def test_spectral_shape_closed_forms(rng):
    two = tone(1000.0, n_harmonics=1) + tone(3000.0, n_harmonics=1)
    d = audio_descriptors(two, SR)
    assert d["centroid_hz"] == pytest.approx(2000.0, rel=0.01)
    assert d["bandwidth_hz"] == pytest.approx(1000.0, rel=0.02)     # magnitude-weighted std about 2 kHz
    assert d["rolloff_hz"] == pytest.approx(3000.0, abs=2 * SR / 2048)
    assert d["flatness"] < 1e-3
    noise = 0.1 * rng.standard_normal(SR)
    d = audio_descriptors(noise, SR)
    assert d["flatness"] == pytest.approx(np.exp(-np.euler_gamma), abs=0.02)   # periodogram: exponential bins
    assert d["centroid_hz"] == pytest.approx(SR / 4, rel=0.02)
    assert d["bandwidth_hz"] == pytest.approx(SR / 2 / np.sqrt(12), rel=0.02)   # uniform on [0, sr/2]
    assert d["rolloff_hz"] == pytest.approx(0.85 * SR / 2, rel=0.01)


@pytest.mark.parametrize("fc, rate, depth, sr", [(440.0, 8.0, 0.5, 44100), (1000.0, 13.0, 0.3, 16000),
                                                 (200.0, 30.0, 0.9, 44100)])
def test_am_tone_rate_and_depth(fc, rate, depth, sr):
    d = audio_descriptors(tone(fc, n_harmonics=1, am_depth=depth, am_hz=rate, sr=sr), sr)
    assert d["am_rate_hz"] == pytest.approx(rate, rel=0.005)
    assert d["am_depth"] == pytest.approx(depth, abs=0.01)
    # the envelope spectrum: the AM's depth in the band of its rate, little elsewhere (Hann side lobes)
    band = int(np.searchsorted(envelope_axis() * (40 / 2) ** (0.5 / ENVELOPE_BANDS), rate))
    env = d["envelope_spectrum"]
    assert env[band] == pytest.approx(depth, abs=0.01)        # on the zero-padded grid, not refined
    assert np.max(np.delete(env, [band - 1, band, band + 1] if band else [0, 1])) < 0.05 * depth
    # the mel spectrum: 0 dB in the band of the carrier, far below at the other end of the axis
    mel = d["mel_spectrum"]
    assert np.nanargmax(mel) in np.argsort(np.abs(mel_axis() - fc))[:2] and mel[np.nanargmax(mel)] == 0.0
    assert np.nanmin(mel) < -40 and (np.isnan(mel) == (mel_axis() >= sr / 2)).all()


@pytest.mark.parametrize("f0, rate, depth, rel_depth", [(440.0, 6.0, 50.0, 0.05), (110.0, 5.0, 30.0, 0.05),
                                                        (1000.0, 20.0, 20.0, 0.1)])
def test_fm_tone_rate_and_depth(f0, rate, depth, rel_depth):
    """f0(t) = f0 · 2^(d/1200 · sin 2π f_m t): rate f_m, depth d cents; 20 Hz is resolved (contour ≥ 86 Hz)."""
    d = audio_descriptors(tone(f0, fm_cents=depth, fm_hz=rate), SR)
    assert abs(cents(d["f0_hz"], f0)) < 5
    assert d["fm_rate_hz"] == pytest.approx(rate, rel=0.01)
    assert d["fm_depth_cents"] == pytest.approx(depth, rel=rel_depth)
    assert d["am_depth"] < 0.02


@pytest.mark.parametrize("f0, sr, n_harmonics", [(34.65, 44100, 10), (110.0, 44100, 10), (440.0, 44100, 1),
                                                 (440.0, 44100, 10), (1760.0, 44100, 10), (3951.0, 44100, 10),
                                                 (440.0, 8000, 10), (1000.0, 22050, 10)])
def test_plain_tone_f0(f0, sr, n_harmonics):
    """C#1 to B7, any sample rate: f0 within 20 cents; a steady tone above 40 Hz reads no modulation."""
    d = audio_descriptors(tone(f0, sr=sr, n_harmonics=n_harmonics), sr)
    assert abs(cents(d["f0_hz"], f0)) < 20, d["f0_hz"]
    if f0 > 40:   # below, the envelope and the YIN frames see f0 itself inside the 2–40 Hz band
        assert d["am_depth"] < 0.01
        # librosa's YIN bias wobbles most for a pure sine (a few cents), least for a harmonic tone
        assert d["fm_depth_cents"] < (1.0 if n_harmonics > 1 else 5.0)


@pytest.mark.parametrize("instrument, pitch, index", [("Bassoon", None, 1), ("Tenor-Trombone", None, 5),
                                                      ("Oboe", None, 2)])
def test_synthetic_vibrato_rate_and_f0(instrument, pitch, index):
    spec = make_note_spec(instrument, "vibrato", pitch=pitch, seed=1, index=index, duration_s=3.0)
    d = audio_descriptors(render_note(spec), SR)
    assert d["fm_rate_hz"] == pytest.approx(spec.modulation_hz, rel=0.05)
    assert abs(cents(d["f0_hz"], spec.f0_hz)) < 20


@pytest.mark.parametrize("instrument, index", [("Violin", 1), ("Violoncello", 3), ("Contrabass", 5)])
def test_synthetic_tremolo_rate_and_f0(instrument, index):
    spec = make_note_spec(instrument, "tremolo", seed=1, index=index, duration_s=3.0)
    d = audio_descriptors(render_note(spec), SR)
    assert d["am_rate_hz"] == pytest.approx(spec.modulation_hz, rel=0.05)
    assert abs(cents(d["f0_hz"], spec.f0_hz)) < 20


def test_silence_short_and_bad_input():
    d = audio_descriptors(np.zeros(SR), SR)
    assert d["rms_db"] == -np.inf and all(np.isnan(d[k]).all() for k in AUDIO_DESCRIPTORS[1:])
    short = audio_descriptors(tone(440.0, dur=0.5), SR)   # too short for rates at 2 Hz, not for f0
    assert abs(cents(short["f0_hz"], 440.0)) < 20
    assert np.isnan([short[k] for k in ("am_rate_hz", "am_depth", "fm_rate_hz", "fm_depth_cents")]).all()
    y = tone(440.0, dur=0.5)
    with pytest.raises(ParameterError, match="mono"):
        audio_descriptors(np.stack([y, y]), SR)
    with pytest.raises(ParameterError, match="NaN"):
        audio_descriptors(np.where(np.arange(len(y)) == 3, np.nan, y), SR)
    for sr in (0, -8000, 500, True, float("nan")):
        with pytest.raises(ParameterError, match="sr must be"):
            audio_descriptors(y, sr)
    with pytest.raises(ParameterError, match="fewer than one analysis frame"):
        audio_descriptors(y[:1000], SR)
    with pytest.raises(ParameterError, match="fmin must be below"):
        audio_descriptors(y, 8000, fmin=4500.0)
    with pytest.raises(ParameterError, match="fmax must be"):
        audio_descriptors(y, SR, fmax=0)


# ----------------------------------------------------------------------------------------------------
# scattering descriptors

#: two S1 paths and four S2 paths on three distinct λ2, in a shuffled order
PATHS = {"order": np.array([1, 2, 1, 2, 2, 2]), "lambda2_hz": np.array([np.nan, 4.0, np.nan, 16.0, 4.0, 8.0])}


def test_scattering_descriptors_hand_computed(rng):
    S = rng.random((6, 5))
    d = scattering_descriptors(S, PATHS)
    assert tuple(d) == SCATTERING_DESCRIPTORS
    np.testing.assert_array_equal(modulation_axis(PATHS), [4.0, 8.0, 16.0])
    m = S.mean(axis=1)
    np.testing.assert_allclose(d["s1_energy"], m[[0, 2]])
    np.testing.assert_allclose(d["modulation_spectrum"], [m[1] + m[4], m[5], m[3]])
    assert d["modulation_peak_hz"] == [4.0, 8.0, 16.0][int(np.argmax([m[1] + m[4], m[5], m[3]]))]
    assert d["s2_s1_ratio"] == pytest.approx((S[[1, 3, 4, 5]] ** 2).sum() / (S[[0, 2]] ** 2).sum())
    S[5] += 10.0   # a strong 8 Hz band
    assert scattering_descriptors(S, PATHS)["modulation_peak_hz"] == 8.0
    # batched == per item; a gain scales the energies and leaves the peak and the ratio alone
    batch = np.stack([S, 3.0 * S, np.zeros_like(S)])
    b = scattering_descriptors(batch, PATHS)
    one = scattering_descriptors(S, PATHS)
    np.testing.assert_allclose(b["s1_energy"][:2], [one["s1_energy"], 3 * one["s1_energy"]])
    np.testing.assert_allclose(b["modulation_spectrum"][1], 3 * one["modulation_spectrum"])
    np.testing.assert_allclose(b["modulation_peak_hz"], [8.0, 8.0, np.nan])
    np.testing.assert_allclose(b["s2_s1_ratio"], [one["s2_s1_ratio"]] * 2 + [np.nan])


def test_scattering_descriptors_bad_input(rng):
    with pytest.raises(ParameterError, match=r"shape \(\.\.\., C=6, T\)"):
        scattering_descriptors(rng.random((5, 4)), PATHS)
    with pytest.raises(ParameterError, match="PathTable or a mapping"):
        scattering_descriptors(rng.random((6, 4)), [1, 2, 3])
    with pytest.raises(ParameterError, match="orders must be 1 or 2"):
        modulation_axis({"order": np.array([1, 3]), "lambda2_hz": np.array([np.nan, 2.0])})
    with pytest.raises(ParameterError, match="positive finite lambda2_hz"):
        modulation_axis({"order": np.array([1, 2]), "lambda2_hz": np.array([np.nan, np.nan])})


def test_modulation_peak_of_am_tones():
    """An AM tone's modulation spectrum peaks within half an octave of its rate (λ2 is half-octave)."""
    table = path_table(SLOW_MOD)
    t = np.arange(SLOW_MOD.N) / SLOW_MOD.sr
    rates = (4.0, 16.0)
    x = np.stack([(1 + 0.8 * np.cos(2 * np.pi * r * t)) * np.sin(2 * np.pi * 440.0 * t) for r in rates]
                 + [np.sin(2 * np.pi * 440.0 * t)])
    S = scatter(x / x.std(axis=1, keepdims=True), SLOW_MOD, method="kymatio", device="cpu",
                batch_size=3).numpy()
    d = scattering_descriptors(S, table)
    assert d["s1_energy"].shape == (3, len(table.s1))
    assert d["modulation_spectrum"].shape == (3, len(modulation_axis(table)))
    peaks = d["modulation_peak_hz"][:2]
    assert np.all(np.abs(np.log2(peaks / np.array(rates))) <= 0.5), peaks
    # the path table's arrays (as stored in HDF5) give the same answer
    np.testing.assert_array_equal(scattering_descriptors(S[0], table.arrays())["modulation_spectrum"],
                                  d["modulation_spectrum"][0])
    # a steady tone has far less S2 energy than a deeply modulated one
    assert d["s2_s1_ratio"][2] < 0.01 * d["s2_s1_ratio"][:2].min()
