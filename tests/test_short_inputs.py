"""Short inputs prepared on purpose (issue #21): a signal shorter than the window is continued with its own
sound (:func:`scatterxai.audio.continue_signal`), so its edges add no modulation; signals at least as long
as the window are prepared exactly as before.  Physical criteria on the scattering, no model."""

import numpy as np
import pytest
import soundfile as sf

from scatterxai.audio import continue_signal, fix_length, prepare, read_window, standardize
from scatterxai.scattering import path_table, scatter

from .conftest import SLOW_MOD, SMALL

SR, N = SLOW_MOD.sr, SLOW_MOD.N    # 8 kHz, 4.1-s window, λ2 from ~1 Hz


def _tone(dur_s, f0=262.0, *, vib=(0.0, 0.0), am=(0.0, 0.0), sr=SR):
    """A harmonic tone (8 partials, 1/k), optionally with vibrato (rate Hz, ± cents) or tremolo (rate, depth)."""
    t = np.arange(int(dur_s * sr)) / sr
    inst = f0 * 2 ** (vib[1] / 1200 * np.sin(2 * np.pi * vib[0] * t))
    phase = 2 * np.pi * np.cumsum(inst) / sr
    rng = np.random.default_rng(0)
    y = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 9))
    return y * (1 + am[1] * np.sin(2 * np.pi * am[0] * t))


def _excerpt(y, start_s=1.0, dur_s=1.5):
    return y[int(start_s * SR):int((start_s + dur_s) * SR)]


@pytest.fixture(scope="module")
def band_energy():
    """S2 energy at λ2 in a band relative to the S1 energy (both summed over paths and frames) of: each tone
    filling the window, its 1.5-s excerpt zero-padded (the former preparation) and prepared; one batch."""
    tones = {"steady": _tone(6.0), "vibrato": _tone(6.0, vib=(5.5, 35.0)), "tremolo": _tone(6.0, am=(12.0, 0.3))}
    signals, keys = [], []
    for name, y in tones.items():
        ex = _excerpt(y)
        for how, x in (("whole", prepare(y, SR, SLOW_MOD)), ("zero-padded", standardize(fix_length(ex, N))),
                       ("prepared", prepare(ex, SR, SLOW_MOD))):
            signals.append(x)
            keys.append((name, how))
    table = path_table(SLOW_MOD)
    S = scatter(np.stack(signals).astype(np.float32), SLOW_MOD).cpu().numpy().astype(np.float64)
    s1 = S[:, table.order == 1].sum(axis=(1, 2))

    def energy(name, how, lo_hz, hi_hz):
        band = (table.order == 2) & (table.lambda2_hz >= lo_hz) & (table.lambda2_hz <= hi_hz)
        i = keys.index((name, how))
        return S[i, band].sum() / s1[i]
    return energy


@pytest.mark.parametrize("kind", ["steady", "vibrato"])
def test_a_short_excerpt_gains_no_modulation_from_its_edges(kind, band_energy):
    """S2 at λ2 = 2–40 Hz of a 1.5-s excerpt, prepared, is that of the tone filling the window; zero-padded
    (the former preparation) it is several times more for a steady tone, 1.5× more for a vibrato."""
    whole, naive, prepared = (band_energy(kind, how, 2.0, 40.0) for how in ("whole", "zero-padded", "prepared"))
    assert 0.8 < prepared / whole < 1.25
    assert naive / prepared > (4.0 if kind == "steady" else 1.3)


def test_a_short_vibrato_is_not_made_tremolo_like_by_its_edges(band_energy):
    """What the edges add to a 1.5-s vibrato at tremolo rates (λ2 = 8–16 Hz), as the AM depth of a 12-Hz
    tremolo that would put the same S2 energy there: ≈ 0 prepared, a few % zero-padded."""
    whole, naive, prepared = (band_energy("vibrato", how, 8.0, 16.0) for how in ("whole", "zero-padded", "prepared"))
    tremolo = band_energy("tremolo", "prepared", 8.0, 16.0)
    assert 0.9 < tremolo / band_energy("tremolo", "whole", 8.0, 16.0) < 1.1   # a tremolo excerpt stays one

    def depth(e):   # S2 grows linearly with a small AM depth: a 0.3-deep tremolo puts `tremolo` there
        return 0.3 * (e - whole) / tremolo
    assert abs(depth(prepared)) < 0.005
    assert depth(naive) > 0.01


def test_a_pure_tone_continues_as_itself():
    """A sinusoid whose period is a whole number of samples is continued exactly (loop on a period)."""
    t = np.arange(4000) / SR
    y = np.sin(2 * np.pi * 250.0 * t + 0.3)         # 32 samples per period
    out = continue_signal(y, N, sr=SR)
    full = np.sin(2 * np.pi * 250.0 * np.arange(N) / SR + 0.3)
    np.testing.assert_allclose(out, full, atol=1e-9)


def test_a_decaying_note_keeps_decaying():
    """A note that dies away is continued by quieter and quieter repetitions: the continuation is never
    louder than the note's end, and its level falls."""
    t = np.arange(int(1.5 * SR)) / SR
    y = _tone(1.5) * 10 ** (-2.5 * t)                # −50 dB/s
    out = continue_signal(y, N, sr=SR)
    rms = lambda z: np.sqrt(np.mean(z ** 2))         # noqa: E731
    end = rms(y[-400:])
    blocks = [rms(out[i:i + 4000]) for i in range(len(y), N - 4000, 4000)]
    assert blocks[0] <= 1.2 * end and all(b2 < b1 for b1, b2 in zip(blocks, blocks[1:]))


def test_a_finished_note_is_not_replayed():
    """A note between two stretches of quiet noise (as a file with silence before the onset and after the
    release): the best match of its quiet end is the quiet start, so the loop holds the whole note — it
    must not be replayed at full level: the continuation stays within twice the level of the end."""
    rng = np.random.default_rng(5)
    t = np.arange(int(1.5 * SR)) / SR
    body = _tone(1.5) * np.minimum(t / 0.03, 1) * 10 ** (-2.0 * t)      # −30 dB over the note
    floor = 1e-3 * body.std()
    y = np.r_[np.zeros(int(0.3 * SR)), body, np.zeros(int(0.4 * SR))] + floor * rng.standard_normal(
        int(2.2 * SR))
    out = continue_signal(y, N, sr=SR)
    rms = lambda z: np.sqrt(np.mean(z ** 2))         # noqa: E731
    assert rms(out[len(y):]) < 2.2 * rms(y[-int(0.25 * SR):]) < 1e-2 * rms(body)


def test_loop_start_energies_match_the_direct_window_sums():
    """The stretches' energies come from running sums: the loop start is the one the direct sums
    (np.convolve with a box) give, on 16-bit audio and on float signals with silence, a fade and noise."""
    from scipy.signal import correlate

    from scatterxai.audio import _loop_start

    def direct(y, w):
        m = y.shape[-1]
        head, tail = y[:m - max(m // 2, w)], y[m - w:]
        with np.errstate(invalid="ignore", divide="ignore"):
            ncc = correlate(head, tail, mode="valid") / np.sqrt(np.convolve(head * head, np.ones(w), "valid")
                                                                * float(tail @ tail))
        ncc[~np.isfinite(ncc)] = -np.inf
        return int(np.argmax(ncc)) + w

    rng = np.random.default_rng(7)
    t = np.arange(int(1.2 * SR)) / SR
    tone = _tone(1.2) * np.minimum(t / 0.2, 1) * (1 + 0.3 * np.sin(2 * np.pi * 5.5 * t))
    signals = [np.round(tone * 2 ** 15) / 2 ** 15,                                    # 16-bit
               np.r_[np.zeros(3000), 1e-6 * rng.standard_normal(2000), tone],         # silence, quiet noise
               tone + 1e-4 * rng.standard_normal(t.size), rng.standard_normal(5000)]
    for y in signals:
        for w in (16, 200, len(y) // 4):
            assert _loop_start(y, w) == direct(y, w)


def test_nothing_to_continue_is_zero_padded():
    np.testing.assert_array_equal(continue_signal(np.ones(20), 100, sr=SR), fix_length(np.ones(20), 100))
    y = np.r_[np.ones(3000), np.zeros(1000)]         # ends in digital silence
    np.testing.assert_array_equal(continue_signal(y, N, sr=SR), fix_length(y, N))
    x = prepare(np.zeros(500), SR, SLOW_MOD)
    assert np.isfinite(x).all() and not x.any()


def test_signals_as_long_as_the_window_are_prepared_as_before(tmp_path):
    """Bit for bit the former preparation (truncate, standardise) for signals of N samples or more, from
    arrays and from files (also resampled ones)."""
    rng = np.random.default_rng(3)
    for m in (SMALL.N, SMALL.N + 1, 3 * SMALL.N):
        y = rng.standard_normal(m)
        np.testing.assert_array_equal(prepare(y, SMALL.sr, SMALL),
                                      standardize(fix_length(y, SMALL.N)).astype(np.float32))
    path = tmp_path / "long.wav"
    y = rng.standard_normal(3 * SMALL.N) * 0.1
    sf.write(path, y, 22050, subtype="FLOAT")
    from scatterxai.audio import read_audio, resample, to_mono
    raw, sr = read_audio(str(path))
    old = standardize(fix_length(resample(to_mono(raw), sr, SMALL.sr), SMALL.N)).astype(np.float32)
    np.testing.assert_array_equal(read_window(str(path), SMALL)[0], old)
