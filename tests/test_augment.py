"""Audio-domain augmentation: the signal transforms measured on test tones, and the augmented rows of
``extract --augment K`` (flagged, training only, μ unchanged, removed again without --augment)."""

import numpy as np
import pytest
import soundfile as sf

from scatterxai.errors import ParameterError
from scatterxai.features import FeatureFile, extract_features
from scatterxai.features.augment import PARAM_COLUMNS, AugmentConfig, augment_signal, draw_params
from scatterxai.model.crossval import _Plan

from .conftest import SMALL

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SR = 8000


def _peak_hz(y, sr):
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return np.fft.rfftfreq(y.size, 1 / sr)[spec.argmax()]


def test_pitch_shift_noise_and_reverberation_measured():
    t = np.arange(2 * SR) / SR
    y = np.sin(2 * np.pi * 440 * t)
    rng = np.random.default_rng(0)
    up = augment_signal(y, SR, shift_semitones=0.5, rt60_s=0.0, wet=0.0, snr_db=120, rng=rng)
    assert _peak_hz(up, SR) == pytest.approx(440 * 2 ** (0.5 / 12), abs=1.0)
    assert up.size == pytest.approx(y.size / 2 ** (0.5 / 12), abs=2)   # tape-style: shorter by the same ratio
    noisy = augment_signal(y, SR, shift_semitones=0.0, rt60_s=0.0, wet=0.0, snr_db=20, rng=rng)
    assert np.mean((noisy - y) ** 2) / np.mean(y ** 2) == pytest.approx(0.01, rel=0.1)
    burst = np.zeros(SR)
    burst[:80] = 1.0
    wet = augment_signal(burst, SR, shift_semitones=0.0, rt60_s=0.5, wet=1.0, snr_db=120, rng=rng)
    tail = wet[SR // 4:SR // 2]
    assert np.mean(tail ** 2) > 1e3 * np.mean(burst[SR // 4:SR // 2] ** 2 + 1e-12)   # a reverberant tail
    assert np.mean(wet[int(0.45 * SR):int(0.5 * SR)] ** 2) < np.mean(wet[int(0.05 * SR):int(0.1 * SR)] ** 2)
    a = augment_signal(y, SR, shift_semitones=0.2, rt60_s=0.3, wet=0.3, snr_db=30, rng=np.random.default_rng(1))
    b = augment_signal(y, SR, shift_semitones=0.2, rt60_s=0.3, wet=0.3, snr_db=30, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)


def test_draw_params_ranges():
    cfg = AugmentConfig(copies=3, seed=4)
    p = draw_params([10.0, 0.1, 3.0], 1.0, cfg)
    assert p["augmented"].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3] and p["source"].tolist() == [0, 1, 2] * 3
    assert (p["aug_start_s"][p["source"] == 1] == 0).all()           # shorter than the window: first window
    assert (p["aug_start_s"][p["source"] == 0] <= 9.0).all() and p["aug_start_s"][p["source"] == 0].std() > 0
    assert (np.abs(p["aug_shift_semitones"]) <= 0.5).all() and (p["aug_snr_db"] >= 20).all()
    assert {k: v.tolist() for k, v in p.items()} == {k: v.tolist() for k, v in draw_params([10.0, 0.1, 3.0], 1.0,
                                                                                            cfg).items()}
    with pytest.raises(ParameterError):
        AugmentConfig(copies=0)
    with pytest.raises(ParameterError):
        AugmentConfig(snr_db=(40, 20))


def test_extract_augment_rows_are_training_only(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    rng = np.random.default_rng(0)
    rows = ["file_name,label,subset"]
    for i in range(6):
        kind, subset = ("am", "fm")[i % 2], ("training", "training", "validation", "validation", "test", "test")[i]
        t = np.arange(int(0.5 * 44100)) / 44100
        y = np.sin(2 * np.pi * (300 + 50 * i) * t) * (1 + 0.5 * np.sin(2 * np.pi * 6 * t) * (kind == "am"))
        sf.write(audio / f"n{i}.wav", 0.3 * y + 1e-3 * rng.standard_normal(t.size), 44100)
        rows.append(f"n{i}.wav,{kind},{subset}")
    (tmp_path / "meta.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "f.h5"
    extract_features(tmp_path / "meta.csv", audio, tmp_path / "plain.h5", config=SMALL, progress=False)
    summary = extract_features(tmp_path / "meta.csv", audio, out, config=SMALL, progress=False,
                               augment=AugmentConfig(copies=2, seed=1))
    assert summary.n_augmented == 12 and summary.n_ok == 6 and "12 augmented copies" in summary.describe()
    with FeatureFile(out) as ff, FeatureFile(tmp_path / "plain.h5") as pf:
        aug = np.asarray(ff.examples["augmented"])
        assert len(ff) == 18 and aug.tolist() == [0] * 6 + [1] * 6 + [2] * 6
        assert all(np.isnan(ff.examples[k][:6]).all() and np.isfinite(ff.examples[k][6:]).all()
                   for k in PARAM_COLUMNS)
        np.testing.assert_array_equal(ff.load(np.arange(6)), pf.load())   # the recordings themselves unchanged
        np.testing.assert_array_equal(ff.mu, pf.mu)                       # μ without the copies
        assert not np.allclose(ff.load(np.arange(6, 12)), pf.load())
        assert ff.indices("test").tolist() == [4, 5] and ff.indices("all").tolist() == list(range(6))
        assert sorted(ff.indices("training").tolist()) == [0, 1, 6, 7, 12, 13]   # copies of training rows only
        assert list(ff.examples["file_name"][6:12]) == list(ff.examples["file_name"][:6])
        assert '"copies": 2' in ff.attrs["augmentation"]
        plan = _Plan(ff, 3, 0, None)     # cross-validation: copies follow their recording, in training only
        for k in range(3):
            parts = plan.parts(k)
            assert not aug[parts["test"]].any() and not aug[parts["validation"]].any()
            assert set(ff.examples["file_name"][parts["training"]]).isdisjoint(ff.examples["file_name"][parts["test"]])
    # the same command does nothing more; without --augment the copies are removed
    again = extract_features(tmp_path / "meta.csv", audio, out, config=SMALL, progress=False,
                             augment=AugmentConfig(copies=2, seed=1))
    assert again.already_complete and again.n_augmented == 12
    extract_features(tmp_path / "meta.csv", audio, out, config=SMALL, progress=False)
    with FeatureFile(out) as ff:
        assert len(ff) == 6 and "augmented" not in ff.examples
