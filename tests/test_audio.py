import numpy as np
import pytest
import soundfile as sf

from scatterxai.audio import fix_length, load_prepared, prepare, read_audio, resample, to_mono
from scatterxai.errors import AudioError, ParameterError

from .conftest import SMALL


def _peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


def test_resampling_keeps_frequency():
    sr_in = 22050
    t = np.arange(sr_in) / sr_in
    y = np.sin(2 * np.pi * 440 * t)
    out = resample(y, sr_in, 44100)
    assert len(out) == 44100
    assert abs(_peak_hz(out, 44100) - 440) < 2
    x = prepare(y, sr_in, SMALL)
    assert x.shape == (SMALL.N,) and x.dtype == np.float32
    assert abs(_peak_hz(x.astype(float), SMALL.sr) - 440) < 44100 / SMALL.N * 2


def test_stereo_mixdown_and_standardisation():
    rng = np.random.default_rng(1)
    left, right = rng.standard_normal(SMALL.N), rng.standard_normal(SMALL.N)
    x = prepare(np.stack([left, right], axis=1), SMALL.sr, SMALL)
    mono = (left + right) / 2
    np.testing.assert_allclose(x, mono / mono.std(), rtol=1e-5, atol=1e-6)
    assert abs(x.std() - 1) < 1e-5
    np.testing.assert_array_equal(to_mono(left), left)


def test_fix_length_pads_and_truncates():
    np.testing.assert_array_equal(fix_length(np.ones(3), 5), [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(fix_length(np.arange(10), 4), [0, 1, 2, 3])


def test_silent_file_gives_zeros_not_nan(tmp_path):
    p = tmp_path / "silent.wav"
    sf.write(p, np.zeros(1000), 44100)
    x = load_prepared(str(p), SMALL)
    assert np.isfinite(x).all() and not x.any()


def test_bad_files_raise_audio_error(tmp_path):
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage")
    with pytest.raises(AudioError, match="cannot read audio file"):
        read_audio(str(corrupt))
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0), 44100)
    with pytest.raises(AudioError, match="holds no samples"):
        read_audio(str(empty))
    with pytest.raises(AudioError, match="not found"):
        read_audio(str(tmp_path / "missing.wav"))
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.0, np.nan, 0.1]), 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        read_audio(str(nan))
    with pytest.raises(ParameterError, match="sr must be a positive integer"):
        prepare(np.ones(10), 0, SMALL)
