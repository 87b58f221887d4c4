"""Auralisation: resynthesis from the first-order wavelet signals, masks and the measurements of its parts."""

import logging

import numpy as np
import pytest
from kymatio.scattering1d.frontend.base_frontend import ScatteringBase1D

from scatterxai.analysis.auralise import resynth
from scatterxai.analysis.auralise.resynth import (
    _bank,
    auralise,
    auralise_maps,
    band_energy_share,
    band_weights,
    energy_share,
    envelope_modulation,
    relevance_mask,
    resynthesise,
    spectral_centroid_hz,
)
from scatterxai.errors import ParameterError
from scatterxai.scattering import path_table

from .conftest import SLOW_MOD, SMALL

SR = SLOW_MOD.sr
T = np.arange(SLOW_MOD.N) / SR


def snr_db(y, x):
    return 10 * np.log10(np.sum(x ** 2) / np.sum((y - x) ** 2))


def am_tone(depth=0.8, rate=8.0, fc=1000.0):
    return (1 + depth * np.cos(2 * np.pi * rate * T)) * np.sin(2 * np.pi * fc * T)


def s1_weights(table):
    return (table.order == 1).astype(float)


def lambda2_columns(table, hz, k):
    """Weights 1 on the S2 paths of the k λ2 columns nearest ``hz`` (log distance), for every λ1."""
    lam2 = np.unique(table.lambda2_hz[table.order == 2])
    nearest = lam2[np.argsort(np.abs(np.log2(lam2 / hz)))[:k]]
    return np.isin(table.lambda2_hz, nearest).astype(float), nearest


# --- filter bank -------------------------------------------------------------------------------------------

def test_bank_is_kymatios_filter_bank():
    base = ScatteringBase1D(**SMALL.kymatio_kwargs())
    base.build()
    base.create_filters()
    bank = _bank(SMALL)
    assert bank.n_padded == base._N_padded and bank.pad_left == base.pad_left
    assert bank.n_psi1 == len(base.psi1_f) and bank.n_parts == 1 + len(base.psi2_f)
    for n1, filt in enumerate(base.psi1_f):
        full = filt["levels"][0]
        np.testing.assert_array_equal(bank.psi1_val[n1], full[bank.psi1_idx[n1]])
        rest = np.delete(full, bank.psi1_idx[n1])
        assert np.abs(rest).max(initial=0) < 1e-12 * np.abs(full).max()


def _same_bank(a, b):
    assert (a.n_padded, a.pad_left, a.pad_right, a.decimation, a.partition_exact) == \
        (b.n_padded, b.pad_left, b.pad_right, b.decimation, b.partition_exact)
    for field in ("psi1_idx", "psi1_val", "dual1_val"):
        x, y = getattr(a, field), getattr(b, field)
        assert len(x) == len(y) and all(np.array_equal(u, v) for u, v in zip(x, y)), field
    assert sorted(a.parts) == sorted(b.parts)
    for D in a.parts:
        assert len(a.parts[D]) == len(b.parts[D])
        assert all(np.array_equal(i, k) and np.array_equal(v, w) for (i, v), (k, w) in zip(a.parts[D], b.parts[D]))


def test_bank_is_read_back_from_the_disk_cache_unchanged(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SCATTERXAI_CACHE_DIR", str(tmp_path))
    _bank.cache_clear()
    assert resynth.bank_missing(SLOW_MOD)
    resynth.prepare_bank(SLOW_MOD.to_dict())                       # what the run's background process does
    assert not resynth.bank_missing(SLOW_MOD)
    (stored,) = tmp_path.glob("auralise-bank-*.npz")
    _bank.cache_clear()
    built = resynth._build_bank(SLOW_MOD)
    _same_bank(_bank(SLOW_MOD), built)                              # read from the file
    x = am_tone()
    _bank.cache_clear()
    np.testing.assert_array_equal(resynthesise(x, s1_weights(path_table(SLOW_MOD)), SLOW_MOD),
                                  resynth._resynthesise_many(x, _grid_s1(built)[None], built)[0])
    # a file whose arrays do not fit the configuration is rebuilt, with a warning
    arrays = dict(np.load(stored))
    arrays["padding"] = arrays["padding"] + 1
    np.savez(stored, **arrays)
    _bank.cache_clear()
    with caplog.at_level(logging.WARNING, logger="scatterxai"):
        _same_bank(_bank(SLOW_MOD), built)
    assert "inconsistent" in caplog.text and "padding" in caplog.text
    _bank.cache_clear()
    monkeypatch.setenv("SCATTERXAI_CACHE_DIR", "off")
    assert not resynth.bank_missing(SLOW_MOD)                      # no cache: nothing to prepare


def _grid_s1(bank):
    return resynth._weight_grid(s1_weights(path_table(SLOW_MOD)), SLOW_MOD, 0.0, bank.n_psi1, bank.n_parts)


def test_envelope_split_is_a_partition_of_unity():
    # Σ_b h_b = 1 where the second-order Littlewood–Paley sum (φ included) is above the floor
    bank = _bank(SLOW_MOD)
    total = np.zeros(bank.n_padded // 2 + 1)
    for idx, val in bank.parts[1]:
        total[idx] += val
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    assert bank.partition_exact


# --- resynthesis -------------------------------------------------------------------------------------------

def test_all_ones_returns_the_note():
    x = sum(np.sin(2 * np.pi * 220 * k * T) / k for k in range(1, 8)) * np.exp(-T)
    y = resynthesise(x, np.ones(len(path_table(SLOW_MOD))), SLOW_MOD, outside=1)
    assert y.shape == x.shape and y.dtype == np.float64
    assert snr_db(y, x) >= 30


def test_keeping_the_f0_carrier_band_suppresses_the_third_harmonic():
    f0 = 200.0
    mix = np.sin(2 * np.pi * f0 * T) + np.sin(2 * np.pi * 3 * f0 * T)
    table = path_table(SLOW_MOD)
    n1 = table.n1[np.argmin(np.abs(np.log2(table.lambda1_hz / f0)))]
    y = resynthesise(mix, (table.n1 == n1).astype(float), SLOW_MOD)
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    f = np.fft.rfftfreq(y.size, 1 / SR)
    a1, a3 = spec[np.argmin(np.abs(f - f0))], spec[np.argmin(np.abs(f - 3 * f0))]
    assert a1 > 0.1 * np.abs(np.fft.rfft(mix * np.hanning(y.size))).max()
    assert 20 * np.log10(a3 / a1) <= -20


def test_s1_terms_alone_remove_an_8_hz_amplitude_modulation():
    x = am_tone()
    rate, depth = envelope_modulation(resynthesise(x, np.ones(len(path_table(SLOW_MOD))), SLOW_MOD, outside=1),
                                      SR)
    assert abs(depth - 0.8) < 0.01 and abs(rate - 8) < 0.1
    _, depth = envelope_modulation(resynthesise(x, s1_weights(path_table(SLOW_MOD)), SLOW_MOD), SR)
    assert depth < 0.2


def test_the_nearest_lambda2_column_keeps_its_share_of_the_modulation():
    x = am_tone()
    table = path_table(SLOW_MOD)
    # the nearest λ2 column alone: its share h(8 Hz) of the split, read from the filters (≈ 0.82 at Q2 = 2,
    # the two half-octave neighbours carry the rest), predicts the kept depth
    band, (lam2,) = lambda2_columns(table, 8.0, 1)
    bank = _bank(SLOW_MOD)
    n2 = table.n2[table.lambda2_hz == lam2][0]
    h = np.zeros(bank.n_padded // 2 + 1)
    idx, val = bank.parts[1][1 + n2]
    h[idx] = val
    share = h[round(8.0 * bank.n_padded / SR)]
    _, depth = envelope_modulation(resynthesise(x, s1_weights(table) + band, SLOW_MOD), SR)
    assert 0.7 < share < 0.9
    assert abs(depth - 0.8 * share) < 0.03
    # with its two neighbours the 8 Hz band is whole again
    band3, _ = lambda2_columns(table, 8.0, 3)
    rate, depth = envelope_modulation(resynthesise(x, s1_weights(table) + band3, SLOW_MOD), SR)
    assert abs(depth - 0.8) <= 0.1 and abs(rate - 8) < 0.1


@pytest.mark.parametrize("rate", [8.0, 7.0, 11.3])
def test_the_octave_band_of_the_rate_keeps_the_modulation(rate):
    # "keeping the 8 Hz band" = S1 terms + the S2 paths within ±½ octave of 8 Hz (band_weights); also for
    # rates between λ2 centres (7 Hz: two columns) and near one (11.3 Hz)
    x = am_tone(rate=rate)
    weights = band_weights(SLOW_MOD, rate)
    table = path_table(SLOW_MOD)
    kept = np.unique(table.lambda2_hz[(weights == 1) & (table.order == 2)])
    assert 2 <= kept.size <= 3 and np.all(np.abs(np.log2(kept / rate)) <= 0.5)
    assert np.all(weights[table.order == 1] == 1)
    measured_rate, depth = envelope_modulation(resynthesise(x, weights, SLOW_MOD), SR)
    assert abs(depth - 0.8) <= 0.1 and abs(measured_rate - rate) < 0.1
    # without the S1 terms most of the two sidebands remain ((m²/2) / (1 + m²/2) of the energy of x; the
    # low-pass φ holds a few % of them) and nothing else
    sidebands = energy_share(resynthesise(x, band_weights(SLOW_MOD, rate, s1=False), SLOW_MOD), x)
    assert 0.8 * 0.32 / 1.32 < sidebands < 0.32 / 1.32 + 0.01


def test_outside_weight_selects_parts_no_path_describes():
    # a 20 Hz tone lies below fmin_hz = 32 Hz: no kept path describes it
    x = np.sin(2 * np.pi * 20 * T)
    C = len(path_table(SLOW_MOD))
    assert energy_share(resynthesise(x, np.ones(C), SLOW_MOD), x) < 0.01
    assert energy_share(resynthesise(x, np.zeros(C), SLOW_MOD, outside=1), x) > 0.9


def test_auralise_relevant_plus_complement_is_the_reference(rng):
    x = am_tone() + 0.3 * np.sin(2 * np.pi * 330 * T)
    table = path_table(SLOW_MOD)
    local = rng.standard_normal(len(table))
    parts = auralise(x, local, SLOW_MOD)
    relevant, complement, reference = parts
    np.testing.assert_allclose(relevant + complement, reference, rtol=0, atol=1e-10 * np.abs(reference).max())
    np.testing.assert_allclose(reference, resynthesise(x, np.ones(len(table)), SLOW_MOD, outside=1),
                               rtol=0, atol=1e-12 * np.abs(reference).max())
    np.testing.assert_allclose(relevant, resynthesise(x, relevance_mask(local), SLOW_MOD),
                               rtol=0, atol=1e-12 * np.abs(reference).max())
    # a planted map: S1 paths for, everything else against → the relevant part is the S1-only resynthesis
    planted = np.where(table.order == 1, 1.0, -1.0)
    relevant, complement, reference = auralise(x, planted, SLOW_MOD)
    assert envelope_modulation(relevant, SR)[1] < 0.2
    # …and the complement holds the AM sidebands: (m²/4) / (½(1 + m²/2) + ½·0.3²) of the energy
    assert energy_share(complement, reference) == pytest.approx(0.16 / (0.66 + 0.045), abs=0.02)


def test_auralise_maps_equals_auralise_per_map(rng):
    """One decomposition re-weighted per map gives auralise()'s parts for each map, complement included."""
    x = am_tone() + 0.3 * np.sin(2 * np.pi * 330 * T)
    table = path_table(SLOW_MOD)
    maps = np.stack([rng.standard_normal(len(table)), np.where(table.order == 1, 1.0, -1.0),
                     -np.ones(len(table))])   # the last one keeps nothing (empty mask)
    reference, relevant = auralise_maps(x, maps, SLOW_MOD)
    assert relevant.shape == (3, SLOW_MOD.N)
    for m, rel in zip(maps, relevant):
        parts = auralise(x, m, SLOW_MOD)
        tol = 1e-10 * np.abs(parts.reference).max()
        np.testing.assert_allclose(rel, parts.relevant, rtol=0, atol=tol)
        np.testing.assert_allclose(reference - rel, parts.complement, rtol=0, atol=tol)
    np.testing.assert_allclose(reference, parts.reference, rtol=0, atol=1e-12 * np.abs(reference).max())
    assert not relevant[2].any()
    with pytest.raises(ParameterError, match="shape"):
        auralise_maps(x, maps[0], SLOW_MOD)


def test_resynthesise_rejects_bad_input():
    C = len(path_table(SLOW_MOD))
    with pytest.raises(ParameterError, match="shape"):
        resynthesise(np.zeros(100), np.ones(C), SLOW_MOD)
    with pytest.raises(ParameterError, match=r"\[0, 1\]"):
        resynthesise(np.zeros(SLOW_MOD.N), np.full(C, 1.5), SLOW_MOD)
    with pytest.raises(ParameterError, match=r"shape \(C,\)"):
        resynthesise(np.zeros(SLOW_MOD.N), np.ones(C - 1), SLOW_MOD)
    with pytest.raises(ParameterError, match="outside"):
        resynthesise(np.zeros(SLOW_MOD.N), np.ones(C), SLOW_MOD, outside=2)
    with pytest.raises(ParameterError, match="ScatteringConfig"):
        resynthesise(np.zeros(SLOW_MOD.N), np.ones(C), {"N": SLOW_MOD.N})


# --- masks -------------------------------------------------------------------------------------------------

def test_relevance_mask_modes():
    local = np.array([2.0, -4.0, 1.0, 0.0])
    np.testing.assert_array_equal(relevance_mask(local), [1, 0, 0.5, 0])
    np.testing.assert_array_equal(relevance_mask(local, mode="absolute"), [0.5, 1, 0.25, 0])
    np.testing.assert_array_equal(relevance_mask(local, top=2), [1, 0, 1, 0])
    np.testing.assert_array_equal(relevance_mask(local, top=4), [1, 0, 1, 0])  # never keeps score 0


def test_relevance_mask_empty_and_errors(caplog):
    with caplog.at_level(logging.WARNING, logger="scatterxai"):
        np.testing.assert_array_equal(relevance_mask(np.array([-1.0, 0.0])), [0, 0])
    assert "empty" in caplog.text
    with pytest.raises(ParameterError, match="mode"):
        relevance_mask(np.ones(3), mode="negative")
    with pytest.raises(ParameterError, match="top"):
        relevance_mask(np.ones(3), top=0)
    with pytest.raises(ParameterError, match=r"shape \(C,\)"):
        relevance_mask(np.ones((3, 2)))


# --- measurements ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth, rate", [(0.8, 8.0), (0.3, 7.3), (0.5, 27.0)])
def test_envelope_modulation_closed_form(depth, rate):
    measured_rate, measured_depth = envelope_modulation(am_tone(depth, rate, fc=700.0), SR)
    assert abs(measured_rate - rate) < 0.05
    assert abs(measured_depth - depth) < 0.01


def test_envelope_modulation_of_silence_and_bad_band():
    assert np.isnan(envelope_modulation(np.zeros(1000), SR)).all()
    with pytest.raises(ParameterError, match="fmin"):
        envelope_modulation(np.ones(1000), SR, fmin=50, fmax=40)


def test_spectral_measurements_of_two_tones():
    n = 8000
    t = np.arange(n) / SR
    f1, f2 = 500.0, 2000.0  # whole numbers of periods: no leakage
    y = 3 * np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t)
    assert spectral_centroid_hz(y, SR) == pytest.approx((9 * f1 + f2) / 10, abs=1e-6)
    assert band_energy_share(y, SR, 1000.0) == pytest.approx(0.9, abs=1e-9)
    assert band_energy_share(y, SR, 4000.0, f_min=1000.0) == pytest.approx(0.1, abs=1e-9)
    assert energy_share(y / 2, y) == pytest.approx(0.25)
    assert np.isnan(spectral_centroid_hz(np.zeros(n), SR))
    with pytest.raises(ParameterError, match="zero energy"):
        energy_share(y, np.zeros(n))
    with pytest.raises(ParameterError, match="f_max"):
        band_energy_share(y, SR, 0.0)


def test_subsampled_carrier_bands_match_full_rate(monkeypatch, rng):
    t = np.arange(SMALL.N) / SMALL.sr
    x = sum(np.sin(2 * np.pi * 440 * k * t) / k for k in range(1, 12)) * (1 + 0.6 * np.cos(2 * np.pi * 90 * t))
    x = x + 0.05 * rng.standard_normal(SMALL.N)
    weights = relevance_mask(rng.standard_normal(len(path_table(SMALL))))
    assert max(_bank(SMALL).decimation) > 1
    y = resynthesise(x, weights, SMALL)
    _bank.cache_clear()
    monkeypatch.setattr(resynth, "_decimation", lambda idx, n: 1)
    try:
        y_full_rate = resynthesise(x, weights, SMALL)
    finally:
        _bank.cache_clear()
    assert 10 * np.log10(np.sum((y - y_full_rate) ** 2) / np.sum(y_full_rate ** 2)) < -40
