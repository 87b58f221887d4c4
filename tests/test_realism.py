"""Realism factors of the synthetic corpus: parsing, independent draws, metadata, and ground truth measured
on the rendered audio under performance and recording conditions (excerpts, phrases, natural vibrato,
room, noise, microphone, body modes).  With every factor off the corpus is bit-identical to the studio
corpus: ``tests/test_sweep.py::test_corpus_notes_are_unchanged``."""

import dataclasses

import numpy as np
import pytest
from scipy.ndimage import uniform_filter1d

from scatterxai.data.synth import make_note_spec, plan_corpus, render_note
from scatterxai.data.synth.corpus import corpus_columns
from scatterxai.data.synth.realism import (
    PERFORMANCE_COLUMNS,
    REALISM_FACTORS,
    Realism,
    mic_db,
    modes_db,
    parse_realism,
)
from scatterxai.errors import ParameterError

from .test_synth import (
    SR,
    _block_mean,
    envelope_modulation_peak,
    instantaneous_frequency,
    strongest_harmonic_band,
)


def test_parse_realism():
    assert parse_realism("all").factors == REALISM_FACTORS and parse_realism("all").name == "all"
    assert parse_realism("none") == parse_realism(None) == Realism() and not Realism()
    assert parse_realism("room,excerpt").factors == ("excerpt", "room")      # canonical order
    assert parse_realism("room+excerpt").name == "excerpt+room"
    assert parse_realism("all-room,noise").factors == ("excerpt", "legato", "vibrato", "mic", "timbre", "articulation",
                                                        "players", "common")
    assert parse_realism(["timbre"]).factors == ("timbre",)
    assert parse_realism(parse_realism("all-mic").name) == parse_realism("all-mic")
    for bad in ("reverb", "all-reverb", ["room", "echo"]):
        with pytest.raises(ParameterError, match="unknown realism factor"):
            parse_realism(bad)
    mixed = parse_realism("all-room@0.5")
    assert mixed.share == 0.5
    assert mixed.name == "excerpt+legato+vibrato+noise+mic+timbre+articulation+players+common@0.5"
    assert parse_realism(mixed.name) == mixed and parse_realism("all@1").name == "all"
    for bad in ("all@0", "all@1.5", "all@half", "room@"):
        with pytest.raises(ParameterError, match=r"share after '@'.*\(0, 1\]"):
            parse_realism(bad)


def test_a_mixed_corpus_gives_the_factors_to_a_share_of_the_notes():
    studio = plan_corpus(scale=0.05, seed=0, realism="none")
    mixed = plan_corpus(scale=0.05, seed=0, realism="room,noise@0.3")
    cols = corpus_columns(mixed, seed=0)
    with_factors = cols["realism"] == "room+noise"
    assert set(cols["realism"]) == {"none", "room+noise"} and 0.2 < with_factors.mean() < 0.4
    # the other notes are the studio notes, draw for draw; the share is drawn per note, so it is the same
    # notes whatever the factors
    assert all(a == b for a, b, k in zip(studio, mixed, with_factors) if not k)
    again = corpus_columns(plan_corpus(scale=0.05, seed=0, realism="all@0.3"), seed=0)["realism"] == "all"
    assert np.array_equal(again[:len(with_factors)], with_factors)       # (``common`` adds vibratos after them)


def test_realism_off_is_the_studio_note():
    a = make_note_spec("Oboe", "vibrato", pitch="A4", seed=3, index=7)
    assert a.performance is None
    assert make_note_spec("Oboe", "vibrato", pitch="A4", seed=3, index=7, realism="none") == a
    b = make_note_spec("Oboe", "vibrato", pitch="A4", seed=3, index=7, realism="room")
    # a factor that does not touch the note's parameters leaves them as they were
    assert dataclasses.replace(b, performance=None) == a and b.performance.rt60_s > 0


def test_each_factor_is_drawn_independently_of_the_others():
    for index in range(12):
        full = make_note_spec("Violin", "tremolo", seed=1, index=index, realism="all")
        for factor in REALISM_FACTORS:
            other = make_note_spec("Violin", "tremolo", seed=1, index=index, realism=f"all-{factor}")
            p, q = full.performance, other.performance
            if factor != "excerpt":
                assert (other.duration_s, q.excerpt_start_s, q.excerpt_end_s) == \
                       (full.duration_s, p.excerpt_start_s, p.excerpt_end_s)
            if factor != "room":
                assert (q.rt60_s, q.drr_db) == (p.rt60_s, p.drr_db)
            if factor != "noise":
                assert q.snr_db == p.snr_db
            if factor not in ("legato", "excerpt"):      # a phrase needs time: it depends on the duration
                assert q.legato == p.legato
    alone = make_note_spec("Violin", "tremolo", seed=1, index=3, realism="room")
    assert alone.performance.rt60_s == make_note_spec("Violin", "tremolo", seed=1, index=3,
                                                      realism="all").performance.rt60_s


def test_meta_records_the_conditions_of_every_note():
    specs = plan_corpus(scale=0.05, seed=0, realism="all")
    cols = corpus_columns(specs, seed=0)
    assert all(c in cols for c in PERFORMANCE_COLUMNS) and set(cols["realism"]) == {"all"}
    d = cols["duration_s"]
    assert d.min() < 0.8 and d.max() > 5.94 and np.median(d) < 3.0     # short notes and longer than the window
    start, end = cols["excerpt_start_s"], cols["excerpt_end_s"]
    cut_in, cut_out = start > 0, end < d
    assert 0.15 < cut_in.mean() < 0.45 and 0.15 < cut_out.mean() < 0.6
    assert np.all(start >= -cols["onset_s"]) and np.all(end <= d) and np.all(end > start)
    assert (cols["legato_notes"] > 1).mean() > 0.1 and set(cols["legato_notes"]) <= {1, 2, 3, 4}
    assert 0.2 <= cols["rt60_s"].min() and cols["rt60_s"].max() <= 2.2
    assert 30 <= cols["snr_db"].min() and cols["snr_db"].max() <= 60
    assert set(cols["body_individual"]) == {0, 1, 2}
    off = corpus_columns(plan_corpus(scale=0.05, seed=0, realism="none"), seed=0)
    assert set(off["realism"]) == {"none"} and np.all(off["rt60_s"] == 0) and np.all(off["legato_notes"] == 1)
    assert np.all(off["excerpt_start_s"] == -off["onset_s"]) and np.all(off["excerpt_end_s"] == off["duration_s"])


def _find(instrument, variant, want, realism="all", seed=11, **kwargs):
    """The first note (index 0, 1, …) whose spec satisfies ``want``."""
    for index in range(400):
        spec = make_note_spec(instrument, variant, seed=seed, index=index, realism=realism, **kwargs)
        if want(spec):
            return spec
    raise AssertionError("no such note")


def _in_file(spec, skip=0.3):
    """Seconds (in the file) of the modulated segment the file holds, without its first ``skip`` s."""
    a, b = max(spec.file_span[0], -spec.onset_s), min(spec.file_span[1], spec.duration_s)
    return max(spec.mod_start_s + skip, a) - a, min(spec.mod_end_s, b) - a


def _no_legato(spec):
    return not spec.performance.legato


def test_an_excerpt_starts_inside_the_note_and_keeps_its_rate():
    spec = _find("Violin", "tremolo", lambda s: s.performance.excerpt_start_s > 0.5 and _no_legato(s)
                 and np.subtract(*_in_file(s)[::-1]) > 1.5)
    y = render_note(spec)
    rms = np.sqrt(_block_mean(y ** 2, int(0.02 * SR)))
    assert rms[0] > 0.2 * np.median(rms)                  # no attack: the file starts in the sound
    assert len(y) / SR == pytest.approx(min(spec.file_span[1], spec.duration_s + 3) - spec.file_span[0], abs=2.5)
    peak = envelope_modulation_peak(y, *_in_file(spec))
    assert abs(peak / spec.modulation_hz - 1) < 0.1, (peak, spec.modulation_hz)


@pytest.mark.parametrize("instrument, seed", [("Oboe", 1), ("Bassoon", 2), ("Tenor-Trombone", 3), ("Violin", 4)])
def test_natural_vibrato_keeps_its_mean_rate(instrument, seed):
    # the performance factors only: in a room the reverberant field blurs the measured pitch track (not the
    # played one)
    spec = _find(instrument, "vibrato", lambda s: _no_legato(s) and np.subtract(*_in_file(s)[::-1]) > 2.0,
                 seed=seed, pitch="A4" if instrument != "Bassoon" else "A3", realism="excerpt,vibrato,timbre")
    assert spec.performance.rate_trend != 0 and 0.08 <= spec.fm_depth_st <= 0.7 and spec.mod_start_s >= 0.1
    y = render_note(spec)
    k = strongest_harmonic_band(y, spec.f0_hz, 1.0)
    fi = instantaneous_frequency(y, *_in_file(spec), 0.95 * k * spec.f0_hz, 1.05 * k * spec.f0_hz) / k
    rate = _mean_rate(fi, SR / 44)
    assert abs(rate / spec.modulation_hz - 1) < 0.08, (rate, spec.modulation_hz)


def _mean_rate(x, fs):
    """Mean rate (Hz) of the oscillation of ``x``: cycles between its first and last upward zero crossing
    after a 12-Hz low-pass and removal of the slow trend (0.5-s moving average).  A drifting rate has a
    broad spectral peak; its mean is what the ground truth states."""
    x = uniform_filter1d(x, int(fs / 12))
    x = x - uniform_filter1d(x, int(fs * 0.5), mode="nearest")
    up = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
    return (len(up) - 1) / ((up[-1] - up[0]) / fs)


def test_a_legato_phrase_steps_around_the_main_note():
    spec = _find("Clarinet-Bb", "flatterzunge", lambda s: len(s.performance.legato) == 3
                 and not s.performance.cut, realism="legato", pitch="C5")
    y = render_note(spec)
    (t1, s1), (t2, s2), (_, s0) = spec.performance.legato
    levels = np.array([s0, s1, s2])
    assert 0.0 in levels and len(set(levels)) == 3
    bounds = [0.0, t1, t2, spec.duration_s]
    main = int(np.argmax(np.diff(bounds)))
    assert levels[main] == 0.0                             # f0_hz is the note that lasts longest
    for i, level in enumerate(levels):
        a, b = spec.onset_s + bounds[i] + 0.1, spec.onset_s + bounds[i + 1] - 0.1
        f = spec.f0_hz * 2 ** (level / 12)
        fi = instantaneous_frequency(y, a, b, 0.8 * f, 1.2 * f)
        assert abs(12 * np.log2(np.median(fi) / f)) < 0.3, (i, level)


def test_room_noise_and_microphone():
    base = dict(instrument="Trumpet-C", technique_original="flatterzunge", pitch="A4", seed=5, index=2,
                duration_s=2.0)
    dry = make_note_spec(realism="none", **base)
    wet = make_note_spec(realism="room", **base)
    wet = dataclasses.replace(wet, performance=dataclasses.replace(wet.performance, rt60_s=1.5, drr_db=0.0))
    yd, yw = render_note(dry), render_note(wet)
    end = int((dry.onset_s + dry.duration_s + 0.5) * SR)
    tail = slice(end, end + int(0.3 * SR))
    assert np.sum(yw[tail] ** 2) / np.sum(yw ** 2) > 30 * np.sum(yd[tail] ** 2) / np.sum(yd ** 2)

    noisy = make_note_spec(realism="noise", **base)
    # 35 dB: measurable above the studio renderer's own floor (~48 dB below the note) before the onset
    noisy = dataclasses.replace(noisy, performance=dataclasses.replace(noisy.performance, snr_db=35.0))
    y = render_note(noisy)
    before = y[:int(noisy.onset_s * SR) - 50]
    loud = y[int((noisy.onset_s + 0.5) * SR):int((noisy.onset_s + 1.5) * SR)]
    snr = 10 * np.log10(np.mean(loud ** 2) / np.mean(before ** 2))
    assert abs(snr - noisy.performance.snr_db) < 4, (snr, noisy.performance.snr_db)

    perf = make_note_spec(realism="mic", **base).performance
    f = np.array([20.0, perf.mic[0] / 2, 1000.0, 2 * perf.mic[1]])
    db = mic_db(perf, f)
    assert db[0] < db[2] - 6 and db[1] < db[2] - 3 and db[3] < db[2] - 6


def _partial_am(spec):
    """Mean over partials 2–9 of the amplitude of each partial's envelope oscillation at the vibrato rate
    (or its double), relative to the envelope's mean."""
    y = render_note(spec)
    a = int((spec.onset_s + spec.mod_start_s + spec.ramp_s + 0.3) * SR)
    b = int((spec.onset_s + spec.duration_s - 0.1) * SR)
    X, fr = np.fft.rfft(y[a:b]), np.fft.rfftfreq(b - a, 1 / SR)
    out = []
    for k in range(2, 10):
        band = np.fft.irfft(X * ((fr > (k - 0.4) * spec.f0_hz) & (fr < (k + 0.4) * spec.f0_hz)), b - a)
        env = np.sqrt(_block_mean(band ** 2, 441))           # 100 Hz envelope
        w = np.hanning(len(env))
        E = 2 * np.abs(np.fft.rfft((env - env.mean()) * w)) / w.sum()
        fe = np.fft.rfftfreq(len(env), 0.01)
        out.append(E[(fe > 0.8 * spec.modulation_hz) & (fe < 2.2 * spec.modulation_hz)].max() / env.mean())
    return np.mean(out)


def test_body_modes_turn_vibrato_into_partial_amplitude_modulation():
    f = np.linspace(50.0, 8000.0, 4000)
    a, b = modes_db("Violin", 0, "bowed", f), modes_db("Violin", 1, "bowed", f)
    assert np.array_equal(a, modes_db("Violin", 0, "bowed", f)) and np.abs(a - b).max() > 6
    assert np.ptp(a) > 10 and np.ptp(modes_db("Oboe", 0, "reed", f)) < np.ptp(a)

    for instrument, pitch in (("Violin", "D5"), ("Violoncello", "D3")):
        base = dict(instrument=instrument, technique_original="vibrato", pitch=pitch, seed=2, index=0,
                    duration_s=4.0)
        # the same vibrato (0.3 semitone, no amplitude vibrato of its own) with and without the body modes
        plain, body = (dataclasses.replace(make_note_spec(realism=r, **base), am_depth=0.0, fm_depth_st=0.3)
                       for r in ("none", "timbre"))
        assert _partial_am(body) > 2 * _partial_am(plain)


def _am_at_rate(y, t0, t1, rate):
    """The envelope's component at ``rate`` relative to its mean (Hilbert envelope, 40-Hz low-pass,
    Hann-windowed spectrum, peak within rate/1.25 … 1.25·rate)."""
    from scipy.signal import butter, hilbert, sosfiltfilt
    env = sosfiltfilt(butter(4, 40, fs=SR, output="sos"), np.abs(hilbert(y[int(t0 * SR):int(t1 * SR)])))[::SR // 200]
    e = env / env.mean() - 1.0
    w = np.hanning(len(e))
    spec = np.abs(np.fft.rfft(e * w)) * 2 / w.sum()
    f = np.fft.rfftfreq(len(e), 1 / 200)
    return spec[(f > rate / 1.25) & (f < rate * 1.25)].max()


@pytest.mark.parametrize("instrument, variant", [("Violin", "tremolo"), ("Flute", "trill-major-second-up"),
                                                 ("Trumpet-C", "trill-minor-second-up")])
def test_articulation_deepens_the_amplitude_pattern_and_keeps_every_other_draw(instrument, variant):
    studio, deep = [], []
    for index in range(6):
        a = make_note_spec(instrument, variant, pitch="C4" if instrument != "Violin" else "E4", seed=2,
                           index=index, duration_s=4.0)
        b = make_note_spec(instrument, variant, pitch="C4" if instrument != "Violin" else "E4", seed=2,
                           index=index, duration_s=4.0, realism="articulation")
        # the same note but for its amplitude depth (moved to the same place of the measured range)
        assert dataclasses.replace(b, performance=None, am_depth=a.am_depth) == a and b.performance.articulation
        assert b.am_depth > a.am_depth
        t0 = a.onset_s + max(a.mod_start_s, 0.0) + 0.5
        studio.append(_am_at_rate(render_note(a), t0, t0 + 3.0, a.modulation_hz))
        deep.append(_am_at_rate(render_note(b), t0, t0 + 3.0, a.modulation_hz))
    assert np.median(deep) > 1.3 * np.median(studio), (studio, deep)
    cols = corpus_columns([make_note_spec(instrument, variant, seed=2, index=0, realism="articulation")], seed=0)
    assert cols["realism"][0] == "articulation"


def test_articulation_leaves_the_other_techniques_alone():
    for instrument, variant in (("Oboe", "vibrato"), ("Harp", "bisbigliando"), ("Alto-Sax", "bisbigliando")):
        a = make_note_spec(instrument, variant, seed=4, index=1, duration_s=2.0)
        b = make_note_spec(instrument, variant, seed=4, index=1, duration_s=2.0, realism="articulation")
        assert dataclasses.replace(b, performance=None) == a
        np.testing.assert_array_equal(render_note(a), render_note(b))


def test_players_spread_vibrato_over_the_sustained_instruments_and_leave_every_other_note():
    from scatterxai.data.notes import note_midi
    from scatterxai.data.synth.corpus import VIBRATO_PLAYERS
    from scatterxai.data.synth.instruments import parse_instrument
    studio = plan_corpus(scale=0.1, seed=0, realism="articulation")
    played = plan_corpus(scale=0.1, seed=0, realism="articulation,players")
    assert [s.technique for s in studio] == [s.technique for s in played]       # the profile's class counts
    assert {s.instrument for s in studio if s.technique == "vibrato"} == {"Bassoon", "Oboe", "Tenor-Trombone"}
    vib = [s for s in played if s.technique == "vibrato"]
    assert len({s.instrument for s in vib}) >= 9 and {s.instrument for s in vib} <= set(VIBRATO_PLAYERS)
    assert "Harp" not in VIBRATO_PLAYERS and {"Violin", "Flute", "Alto-Sax"} <= set(VIBRATO_PLAYERS)
    for s in vib:   # a pitch within the new instrument's range, a file name of its own
        lo, hi = parse_instrument(s.instrument)[0].midi_range
        assert lo <= note_midi(s.pitch) <= hi and not s.source_file
    # every other note is the note without the factor, draw for draw and sample for sample
    for a, b in zip(studio, played):
        if a.technique != "vibrato":
            assert dataclasses.replace(b, performance=None) == dataclasses.replace(a, performance=None)
    other = [k for k, s in enumerate(studio) if s.technique != "vibrato"][::60]
    for k in other:
        np.testing.assert_array_equal(render_note(studio[k]), render_note(played[k]))
    assert plan_corpus(scale=0.1, seed=0, realism="articulation,players") == played      # seeded
    cols = corpus_columns(played, seed=0)
    assert set(cols["realism"]) == {"articulation+players"}

    # common: three times the vibrato notes, after the profile's, which stay as they were
    from scatterxai.data.synth.corpus import COMMON_VIBRATO
    common = plan_corpus(scale=0.1, seed=0, realism="articulation,players,common")

    def same(a, b):
        return dataclasses.replace(a, performance=None) == dataclasses.replace(b, performance=None) \
            and dataclasses.replace(a.performance, realism="") == dataclasses.replace(b.performance, realism="")
    assert all(same(a, b) for a, b in zip(played, common))
    assert [s.index for s in common] == list(range(len(common)))
    assert {s.technique for s in common[len(played):]} == {"vibrato"}
    n_vib = sum(s.technique == "vibrato" for s in played)
    assert sum(s.technique == "vibrato" for s in common) == COMMON_VIBRATO * n_vib
    assert {s.instrument for s in common[len(played):]} <= set(VIBRATO_PLAYERS)
    sol = plan_corpus(scale=0.1, seed=0, realism="common")        # without players: SOL's vibrato cells
    assert {s.instrument for s in sol if s.technique == "vibrato"} == {"Bassoon", "Oboe", "Tenor-Trombone"}
    assert plan_corpus(scale=0.1, seed=0, realism="common") == sol
    assert set(cols["instrument"][cols["modulation technique"] == "vibrato"]) == {s.instrument for s in vib}


def test_the_voice_sings_wide_vibratos_through_fixed_vowel_formants():
    from scatterxai.data.synth.corpus import SUNG_SHARE, VIBRATO_PLAYERS
    from scatterxai.data.synth.instruments import INSTRUMENTS, PLAYER_ONLY, VOWELS
    from scatterxai.data.synth.realism import SUNG_DEPTH_ST, sung_depth
    from scatterxai.data.synth.render import sung_vowel

    assert "Voice" in VIBRATO_PLAYERS and "Voice" in PLAYER_ONLY
    # the singer's depth is the instrumentalist's draw moved to the sung range
    base = dict(technique_original="vibrato", pitch="A3", seed=2, index=0, duration_s=4.0, realism="none")
    sung, bowed = make_note_spec("Voice", **base), make_note_spec("Violoncello", **base)
    assert SUNG_DEPTH_ST[0] <= sung.fm_depth_st <= SUNG_DEPTH_ST[1] and bowed.fm_depth_st < 0.45
    assert sung.fm_depth_st == pytest.approx(sung_depth(bowed.fm_depth_st, (0.1, 0.45)))
    assert sung_depth(0.1, (0.1, 0.45)) == pytest.approx(0.3) and sung_depth(0.45, (0.1, 0.45)) == pytest.approx(1.0)
    nat = make_note_spec("Voice", **{**base, "realism": "vibrato"})
    assert SUNG_DEPTH_ST[0] <= nat.fm_depth_st <= SUNG_DEPTH_ST[1]

    # one vowel per note, its formants scaled by the singer's tract
    rng = np.random.default_rng(0)
    vowels = set()
    for _ in range(40):
        fs = sung_vowel(INSTRUMENTS["Voice"], rng).formants
        match = [v for v, ref in VOWELS.items()
                 if np.allclose(fs, [(c * fs[0][0] / ref[0][0], w, g) for c, w, g in ref])]
        assert len(match) == 1 and 2 ** -0.1 - 1e-9 <= fs[0][0] / VOWELS[match[0]][0][0] <= 2 ** 0.25 + 1e-9, fs
        vowels.add(match[0])
    assert vowels == set(VOWELS)

    # the formants stay put while the vibrato sweeps the partials: their amplitudes follow it, without any
    # amplitude vibrato of the singer's own
    steady, voice = (dataclasses.replace(sung, am_depth=0.0, fm_depth_st=d) for d in (0.01, 0.6))
    assert _partial_am(voice) > 0.1 and _partial_am(voice) > 2 * _partial_am(steady)

    # players: about SUNG_SHARE of the vibratos are sung, at pitches a voice reaches
    played = plan_corpus(scale=0.3, seed=0, realism="articulation,players")
    vib = [s for s in played if s.technique == "vibrato"]
    share = np.mean([s.instrument == "Voice" for s in vib])
    assert abs(share - SUNG_SHARE) < 3 * np.sqrt(SUNG_SHARE * (1 - SUNG_SHARE) / len(vib))
    y = render_note(next(s for s in vib if s.instrument == "Voice"))
    assert np.isfinite(y).all() and 0.01 < np.abs(y).max() < 1.0
