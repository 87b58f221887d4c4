"""The synthetic corpus: ground truth against the written audio, profile counts, split, determinism,
resumable writing, errors."""

import collections
import dataclasses
import json
import os

import numpy as np
import pytest
import soundfile as sf
from scipy.ndimage import uniform_filter1d

import scatterxai.data.synth.corpus as synth
from scatterxai.data import META_COLUMNS, SOL_META_CSV, SUBSETS, read_meta_csv
from scatterxai.data.notes import midi_hz, note_midi
from scatterxai.data.synth.corpus import (
    GROUND_TRUTH_COLUMNS,
    VARIANTS,
    make_note_spec,
    plan_corpus,
    profile_counts,
    render_note,
    synthesize_corpus,
    write_note,
)
from scatterxai.data.synth.instruments import INSTRUMENTS, MUTES, PLAYER_ONLY, parse_instrument
from scatterxai.data.synth.realism import DEFAULT_REALISM, PERFORMANCE_COLUMNS
from scatterxai.errors import DataError, ParameterError
from scatterxai.task import CLASSES

SR = 44100


# ---------------------------------------------------------------------------------- analysis helpers
# Independent measurements on the written WAV: they know nothing of the synthesiser's internals.


def _block_mean(x, h):
    m = len(x) // h
    return x[:m * h].reshape(m, h).mean(1)


def _welch_peak(x, fs, fmin, fmax):
    """Frequency of the largest peak of a Welch spectrum (2-s Hann segments, half overlap) of ``x``
    after removing its slow trend (0.5-s moving average)."""
    x = x - uniform_filter1d(x, int(fs * 0.5), mode="nearest")
    m = int(min(2.0 * fs, len(x)))
    n = 16 * m
    P = sum(np.abs(np.fft.rfft(x[i:i + m] * np.hanning(m), n)) ** 2
            for i in range(0, len(x) - m + 1, m // 2))
    f = np.fft.rfftfreq(n, 1 / fs)
    band = (f >= fmin) & (f <= fmax)
    return f[band][np.argmax(P[band])]


def envelope_modulation_peak(y, t0, t1, fmin=2.0, fmax=60.0):
    """Peak of the modulation spectrum: the RMS envelopes (5-ms frames) of smooth octave-spaced bands
    (Hann windows two octaves wide in log-frequency, centred 125 Hz–8 kHz), each Welch-analysed,
    spectra summed over bands.  Smooth band edges matter: a brick-wall edge next to a partial would
    turn a few cents of frequency modulation into amplitude modulation."""
    seg = y[int(t0 * SR):int(t1 * SR)]
    X, f = np.fft.rfft(seg), np.fft.rfftfreq(len(seg), 1 / SR)
    octaves = np.log2(np.maximum(f, 1.0))
    total = 0.0
    for centre in np.log2(125.0) + np.arange(7):
        weight = np.cos(np.pi / 2 * np.clip(octaves - centre, -1, 1)) ** 2
        band = np.fft.irfft(X * weight, len(seg))
        env = np.sqrt(_block_mean(uniform_filter1d(band ** 2, int(0.005 * SR)), 44))
        x = env - uniform_filter1d(env, int(SR / 44 * 0.5), mode="nearest")
        m = int(min(2.0 * SR / 44, len(x)))
        total = total + sum(np.abs(np.fft.rfft(x[i:i + m] * np.hanning(m), 16 * m)) ** 2
                            for i in range(0, len(x) - m + 1, m // 2))
    fr = np.fft.rfftfreq(16 * m, 44 / SR)
    keep = (fr >= fmin) & (fr <= fmax)
    return fr[keep][np.argmax(total[keep])]


def instantaneous_frequency(y, t0, t1, lo, hi):
    """Instantaneous frequency (Hz, 1-ms blocks) of the analytic signal of the band [lo, hi]."""
    seg = y[int(t0 * SR):int(t1 * SR)]
    X, f = np.fft.fft(seg), np.fft.fftfreq(len(seg), 1 / SR)
    X[(f < lo) | (f > hi)] = 0
    phase = np.unwrap(np.angle(np.fft.ifft(X)))
    return _block_mean(np.diff(phase) * SR / (2 * np.pi), 44)


def strongest_harmonic_band(y, f0, ratio):
    """Harmonic k ∈ 1..4 whose band [0.95 k f0, 1.05 k f0 ratio] holds the most energy."""
    P, f = np.abs(np.fft.rfft(y)) ** 2, np.fft.rfftfreq(len(y), 1 / SR)
    return max(range(1, 5), key=lambda k: P[(f > 0.95 * k * f0) & (f < 1.05 * k * f0 * ratio)].sum())


def long_term_spectrum(y):
    P = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    return P, np.fft.rfftfreq(len(y), 1 / SR)


def _written(spec, tmp_path):
    path = write_note(spec, tmp_path / spec.file_name)
    y, sr = sf.read(path, dtype="float64")
    assert sr == SR and y.ndim == 1 and sf.info(path).subtype == "PCM_16"
    return y


def _modulated(spec, skip=0.3):
    """Seconds (in the file) of the modulated segment, without its first ``skip`` s."""
    return spec.onset_s + spec.mod_start_s + skip, spec.onset_s + min(spec.mod_end_s, spec.duration_s)


# ------------------------------------------------------------------------------------ ground truth

AM_CASES = [("Violin", "tremolo", "A4"), ("Viola-sordina", "tremolo", "C4"),
            ("Violoncello", "sul-ponticello-tremolo", "G3"),
            ("Trumpet-C", "flatterzunge", "A4"), ("Flute", "ordinario-to-flatterzunge", "E5"),
            ("Tenor-Trombone-harmon", "flatterzunge", "D4"), ("Clarinet-Bb", "flatterzunge", "G4"),
            ("Harp", "bisbigliando", "A4"), ("Harp", "bisbigliando-with-stick", "E3"),
            ("Alto-Sax", "bisbigliando", "D4"), ("Bass-Tuba", "bisbigliando", "B3")]


@pytest.mark.parametrize("instrument, technique, pitch", AM_CASES)
def test_am_techniques_envelope_peaks_at_modulation_hz(tmp_path, instrument, technique, pitch):
    spec = make_note_spec(instrument, technique, pitch=pitch, seed=3, index=AM_CASES.index(
        (instrument, technique, pitch)), duration_s=4.0)
    y = _written(spec, tmp_path)
    peak = envelope_modulation_peak(y, *_modulated(spec))
    assert abs(peak / spec.modulation_hz - 1) < 0.10, (peak, spec.modulation_hz)


FM_CASES = [("Oboe", "vibrato", "A4"), ("Bassoon", "vibrato", "D3"), ("Tenor-Trombone", "vibrato", "F3"),
            ("Clarinet-Bb", "trill-major-second-up", "C5"), ("Violin", "trill-minor-second-up", "E5"),
            ("Horn", "trill-major-second-up", "F4"), ("Oboe", "double-trill-minor-second-up", "A4")]


@pytest.mark.parametrize("instrument, technique, pitch", FM_CASES)
def test_fm_techniques_pitch_oscillates_at_modulation_hz(tmp_path, instrument, technique, pitch):
    spec = make_note_spec(instrument, technique, pitch=pitch, seed=4, index=FM_CASES.index(
        (instrument, technique, pitch)), duration_s=4.0)
    y = _written(spec, tmp_path)
    ratio = 2.0 ** (spec.fm_depth_st / 12.0) if spec.technique == "trill" else 1.0
    k = strongest_harmonic_band(y, spec.f0_hz, ratio)
    fi = instantaneous_frequency(y, *_modulated(spec), 0.95 * k * spec.f0_hz,
                                 1.05 * k * spec.f0_hz * ratio) / k
    rate = _welch_peak(fi, SR / 44, 2.0, 30.0)
    assert abs(rate / spec.modulation_hz - 1) < 0.10, (rate, spec.modulation_hz)
    if spec.technique == "vibrato":
        # peak deviation of a sinusoid = sqrt(2) × its standard deviation; depth drifts ±15 % per note
        depth_st = 12 * np.log2(1 + np.sqrt(2) * np.std(fi[200:]) / spec.f0_hz)
        assert 0.6 < depth_st / spec.fm_depth_st < 1.4, (depth_st, spec.fm_depth_st)
    else:
        # the pitch alternates between the main note (f0_hz) and the note a second above
        low, high = np.percentile(fi[200:], [15, 85])
        assert abs(low / spec.f0_hz - 1) < 0.015
        assert abs(12 * np.log2(high / low) - spec.fm_depth_st) < 0.3


F0_CASES = [("Violin", "tremolo", "A4"), ("Contrabass", "tremolo", "E2"), ("Flute", "flatterzunge", "D6"),
            ("Bass-Tuba", "flatterzunge", "F#1"), ("Horn", "flatterzunge-stopped", "C4"),
            ("Clarinet-Bb", "flatterzunge", "A#3"), ("Harp", "bisbigliando", "C#2"),
            ("Alto-Sax", "bisbigliando", "F4"), ("Violin-sordina-piombo", "tremolo", "B6")]


@pytest.mark.parametrize("instrument, technique, pitch", F0_CASES)
def test_f0_is_the_spectrum_fundamental(tmp_path, instrument, technique, pitch):
    spec = make_note_spec(instrument, technique, pitch=pitch, seed=5, index=F0_CASES.index(
        (instrument, technique, pitch)), duration_s=3.0)
    assert abs(12 * np.log2(spec.f0_hz / midi_hz(note_midi(pitch)))) < 0.1  # tuned to the written note
    P, f = long_term_spectrum(_written(spec, tmp_path))
    near = (f > spec.f0_hz * 2 ** (-0.8 / 12)) & (f < spec.f0_hz * 2 ** (0.8 / 12))
    peak = f[near][np.argmax(P[near])]
    assert abs(peak / spec.f0_hz - 1) < 0.006, (peak, spec.f0_hz)
    around = (f > 0.6 * spec.f0_hz) & (f < 1.6 * spec.f0_hz)            # mostly the gaps between partials
    assert 10 * np.log10(P[near].max() / np.median(P[around])) > 15     # a real partial, not noise
    sub = (f > spec.f0_hz / 2 * 0.97) & (f < spec.f0_hz / 2 * 1.03)
    assert 10 * np.log10(P[sub].max() / P[near].max()) < -20             # no partial an octave below


def test_vibrato_f0_is_the_centre_of_the_fundamental_band(tmp_path):
    spec = make_note_spec("Bassoon", "vibrato", pitch="C#4", seed=6, index=0, duration_s=3.0)
    P, f = long_term_spectrum(_written(spec, tmp_path))
    near = (f > spec.f0_hz * 2 ** (-0.8 / 12)) & (f < spec.f0_hz * 2 ** (0.8 / 12))
    centre = np.sum(f[near] * P[near]) / np.sum(P[near])
    assert abs(centre / spec.f0_hz - 1) < 0.01


def test_transition_variants_modulate_only_part_of_the_note(tmp_path):
    spec = make_note_spec("Horn", "ordinario-to-flatterzunge", pitch="A3", seed=7, index=0, duration_s=5.0)
    assert 0.3 <= spec.modulated_fraction <= 0.7 and spec.mod_end_s == spec.duration_s
    y = _written(spec, tmp_path)

    def flutter_share(t0, t1):  # envelope fluctuation around the flutter rate, relative to the level
        seg = y[int(t0 * SR):int(t1 * SR)]
        env = np.sqrt(_block_mean(uniform_filter1d(seg ** 2, int(0.005 * SR)), 44))
        return np.std(env - uniform_filter1d(env, 100, mode="nearest")) / env.mean()

    before = flutter_share(spec.onset_s + 0.3, spec.onset_s + spec.mod_start_s - 0.2)
    after = flutter_share(spec.onset_s + spec.mod_start_s + 0.4, spec.onset_s + spec.duration_s - 0.1)
    assert after > 3 * before
    out = make_note_spec("Violin", "tremolo-to-ordinario", pitch="A4", seed=7, index=1, duration_s=5.0)
    assert out.mod_start_s < 0.05 and 0.4 * 5.0 <= out.mod_end_s <= 0.7 * 5.0


def test_technique_noise_fills_the_gaps_between_partials():
    spec = make_note_spec("Trumpet-C", "flatterzunge", pitch="A#3", seed=10, index=0, duration_s=2.0)

    def gap_level(tech_noise_db):  # power between partials 2–8 kHz relative to the partials' power
        P, f = long_term_spectrum(render_note(dataclasses.replace(spec, tech_noise_db=tech_noise_db)))
        band = (f > 2000) & (f < 8000)
        h = f[band] / spec.f0_hz
        gaps = np.abs(h - np.round(h)) > 0.3
        return 10 * np.log10(P[band][gaps].mean() / P[band][~gaps].mean())

    quiet, loud = gap_level(-200.0), gap_level(-10.0)
    assert loud > quiet + 6.0, (quiet, loud)


def test_dynamics_change_level_and_brightness():
    specs = [make_note_spec("Horn", "flatterzunge", pitch="A3", dynamics=d, seed=8, index=0, duration_s=2.0)
             for d in ("pp", "ff")]
    (y_pp, y_ff) = [render_note(s) for s in specs]
    assert 20 * np.log10(np.abs(y_ff).max() / np.abs(y_pp).max()) > 15

    def centroid(y):
        P, f = long_term_spectrum(y)
        return np.sum(f * P) / np.sum(P)

    assert centroid(y_ff) > 1.5 * centroid(y_pp)


def test_mutes_are_spectral_filters():
    a, b = (make_note_spec(i, "flatterzunge", pitch="A#4", seed=9, index=0, duration_s=2.0)
            for i in ("Trumpet-C", "Trumpet-C-harmon"))
    assert a.mute == "none" and b.mute == "harmon"
    (Pa, f), (Pb, _) = long_term_spectrum(render_note(a)), long_term_spectrum(render_note(b))

    def share_below(P, hz):
        return P[f < hz].sum() / P.sum()

    assert share_below(Pb, 700.0) < 0.3 * share_below(Pa, 700.0)  # the harmon mute removes the lows


# --------------------------------------------------------------------------------- profile and split


def test_counts_follow_the_profile():
    cells = profile_counts()
    assert len(cells) == 48 and sum(c[3] for c in cells) == 5564
    for scale in (0.1, 0.013):     # the profile itself: without players and common, which change it on purpose
        specs = plan_corpus(scale=scale, seed=0, realism="articulation")
        got = collections.Counter((s.instrument, s.technique) for s in specs)
        assert got == {(i, t): max(1, int(round(n * scale))) for _, i, t, n in cells}
        assert [s.index for s in specs] == list(range(len(specs)))
    assert len(plan_corpus(scale=0.1, seed=0, realism="articulation")) == 556


def test_full_scale_reproduces_sol_variants_pitches_and_dynamics():
    sol = read_meta_csv(SOL_META_CSV)
    want = collections.Counter((i, o) for i, o in zip(sol["instrument"], sol["technique original"]))
    specs = plan_corpus(scale=1.0, seed=2, realism="articulation")   # SOL-PMT's own profile
    assert collections.Counter((s.instrument, s.technique_original) for s in specs) == want
    assert sorted(s.source_file for s in specs) == sorted(sol["file_name"])
    for s in specs[::97]:
        assert s.pitch in s.source_file and f"-{s.dynamics}" in s.source_file
        lo, hi = parse_instrument(s.instrument)[0].midi_range
        assert lo <= note_midi(s.pitch) <= hi and 25 <= note_midi(s.pitch) <= 107  # C#1..B7


def test_meta_columns_and_split_proportions():
    specs = plan_corpus(scale=0.1, seed=0, realism="none")
    cols = synth.corpus_columns(specs, seed=0)
    assert tuple(cols)[:7] == META_COLUMNS
    assert tuple(cols)[7:] == GROUND_TRUTH_COLUMNS + PERFORMANCE_COLUMNS
    labels, subset = cols["label"], cols["subset"]
    assert [CLASSES[v] for v in labels] == list(cols["modulation technique"])
    for c in range(len(CLASSES)):
        counts = collections.Counter(subset[labels == c])
        n = (labels == c).sum()
        assert set(counts) == set(SUBSETS)
        for name, share in zip(SUBSETS, (0.6, 0.2, 0.2)):
            assert abs(counts[name] - share * n) < 1.0 + 1e-9
    for inst in set(cols["instrument"]):  # per instrument and class: within one note of 6:2:2
        for c in range(len(CLASSES)):
            rows = (cols["instrument"] == inst) & (labels == c)
            counts = collections.Counter(subset[rows])
            for name, share in zip(SUBSETS, (0.6, 0.2, 0.2)):
                assert abs(counts[name] - share * rows.sum()) < 1.0 + 1e-9
    for name in ("modulation_hz", "f0_hz", "duration_s"):
        assert cols[name].dtype == np.float64
    rates = collections.defaultdict(list)
    for t, r in zip(cols["modulation technique"], cols["modulation_hz"]):
        rates[t].append(r)
    assert 4 <= min(rates["vibrato"]) and max(rates["vibrato"]) <= 7
    assert 5 <= min(rates["trill"]) and max(rates["trill"]) <= 10
    assert 8 <= min(rates["tremolo"]) and max(rates["tremolo"]) <= 16
    assert 6 <= min(rates["bisbigliando"]) and max(rates["bisbigliando"]) <= 12
    assert 20 <= min(rates["flatterzunge"]) and max(rates["flatterzunge"]) <= 35
    assert 2 <= cols["duration_s"].min() and cols["duration_s"].max() <= 8
    assert set(cols["mute"]) <= set(MUTES) | {"none"}


def test_every_variant_and_instrument_renders():
    seen = set()
    for s in plan_corpus(scale=1.0, seed=1, realism="none"):
        if s.technique_original in seen:
            continue
        seen.add(s.technique_original)
        y = render_note(dataclasses.replace(s, **_short(s)))
        assert np.isfinite(y).all() and 0.01 < np.abs(y).max() < 1.0
    assert seen == set(VARIANTS)
    assert {parse_instrument(n)[0].name for n in read_meta_csv(synth.PROFILE_CSV)["instrument"]} \
        == set(INSTRUMENTS) - set(PLAYER_ONLY)


def _short(spec):
    """A 1.6-s version of a spec (keeps the modulated segment inside the note)."""
    d = 1.6
    start = min(spec.mod_start_s, 0.5)
    end = d if spec.mod_end_s >= spec.duration_s else max(start + 0.5, min(spec.mod_end_s, d - 0.3))
    return dict(duration_s=d, mod_start_s=start, mod_end_s=end)


# ----------------------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_and_notes_independent_of_each_other(tmp_path):
    plan = plan_corpus(scale=0.1, seed=4, realism="all")
    spec = plan[100]
    alone = make_note_spec(spec.instrument, spec.technique_original, pitch=spec.pitch,
                           dynamics=spec.dynamics, seed=4, index=100, source_file=spec.source_file,
                           realism="all")
    assert alone == spec
    assert plan_corpus(scale=0.1, seed=4, realism="all")[100] == spec
    other = plan_corpus(scale=0.1, seed=5, realism="all")[100]
    assert other.modulation_hz != spec.modulation_hz
    assert spec.performance is not None   # every realism factor on
    default = plan_corpus(scale=0.1, seed=4)[100]   # the default corpus: every factor of DEFAULT_REALISM
    assert default.performance.realism == DEFAULT_REALISM == "noise+mic+articulation+players+common"
    assert default.performance.articulation and default.performance.mic and default.performance.rt60_s == 0
    assert 30 <= default.performance.snr_db <= 60
    assert plan_corpus(scale=0.1, seed=4, realism="none")[100].performance is None
    a = write_note(spec, tmp_path / "a.wav")
    b = write_note(spec, tmp_path / "b.wav")
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()
    y = render_note(spec)
    assert not np.array_equal(y, render_note(dataclasses.replace(spec, index=101))[:len(y)])


def _tiny_plan(monkeypatch):
    specs = [dataclasses.replace(s, **_short(s)) for s in plan_corpus(scale=0.1, seed=0, realism="none")[::140]]
    specs = [dataclasses.replace(s, index=i) for i, s in enumerate(specs)]
    monkeypatch.setattr(synth, "plan_corpus", lambda *, scale, seed, realism: specs)
    return specs


def test_synthesize_corpus_writes_resumes_and_parallelises(tmp_path, monkeypatch):
    specs = _tiny_plan(monkeypatch)
    meta = synthesize_corpus(tmp_path / "a", scale=0.1, seed=0, jobs=1, progress=False)
    cols = read_meta_csv(meta)
    assert list(cols["file_name"]) == [s.file_name for s in specs]
    assert np.allclose(cols["f0_hz"], [s.f0_hz for s in specs], rtol=0, atol=0)
    audio = tmp_path / "a" / "audio"
    first = {n: open(audio / n, "rb").read() for n in cols["file_name"]}
    assert sorted(os.listdir(audio)) == sorted(first)
    with open(tmp_path / "a" / "synth.json") as f:
        assert json.load(f)["n_notes"] == len(specs)

    # an interrupted run: one file missing, a stale temporary file, no meta.csv
    os.remove(audio / specs[2].file_name)
    (audio / "junk.wav.part").write_bytes(b"partial")
    os.remove(meta)
    mtime = os.path.getmtime(audio / specs[0].file_name)
    synthesize_corpus(tmp_path / "a", scale=0.1, seed=0, jobs=2, progress=False)
    assert os.path.getmtime(audio / specs[0].file_name) == mtime     # kept, not redone
    assert sorted(os.listdir(audio)) == sorted(first)
    assert all(open(audio / n, "rb").read() == first[n] for n in first)

    # in parallel from scratch: the same bytes
    synthesize_corpus(tmp_path / "b", scale=0.1, seed=0, jobs=2, progress=False)
    assert all(open(tmp_path / "b" / "audio" / n, "rb").read() == first[n] for n in first)
    with open(tmp_path / "b" / "meta.csv", "rb") as fb, open(meta, "rb") as fa:
        assert fa.read() == fb.read()

    with pytest.raises(DataError, match="holds a corpus made with"):
        synthesize_corpus(tmp_path / "a", scale=0.2, seed=0, progress=False)


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs, match", [
    (dict(instrument="Kazoo"), "unknown instrument 'Kazoo'"),
    (dict(instrument="Violin-cup"), "unknown instrument 'Violin-cup'"),
    (dict(technique_original="col-legno"), "unknown technique 'col-legno'"),
    (dict(dynamics="mp"), "dynamics must be one of"),
    (dict(pitch="C2"), r"outside the range of Violin \(G3–B7\)"),
    (dict(pitch="H4"), "note name like 'A4'"),
    (dict(duration_s=0.5), r"duration_s must be a number of seconds in \[1.5, 60\]"),
])
def test_note_spec_errors(kwargs, match):
    args = dict(instrument="Violin", technique_original="tremolo", pitch="A4")
    args.update(kwargs)
    with pytest.raises(ParameterError, match=match):
        make_note_spec(args.pop("instrument"), args.pop("technique_original"), **args)


def test_corpus_argument_errors(tmp_path):
    with pytest.raises(ParameterError, match="scale must be a positive finite number"):
        plan_corpus(scale=0, seed=0)
    with pytest.raises(ParameterError, match="jobs must be a positive integer"):
        synthesize_corpus(tmp_path, jobs=0)
    with pytest.raises(ParameterError, match=r"seed must be an integer in \[0, 2\*\*32\)"):
        synthesize_corpus(tmp_path, seed=-1)
