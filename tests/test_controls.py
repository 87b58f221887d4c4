"""Control maps (scatterxai.maps.controls): what each knows, and that scores treat them like method maps."""

import numpy as np
import pytest

from scatterxai.errors import ParameterError
from scatterxai.maps import controls
from scatterxai.maps.summary import localisation, peak_modulation_hz
from scatterxai.scattering import path_table

TABLE = path_table()                       # the paper's 1,200 paths (pure numpy)
S2 = TABLE.order == 2
LAM2 = np.unique(TABLE.lambda2_hz[S2])


def test_fit_prior_picks_the_column_that_localises_most_training_notes():
    rates = np.array([4.0, 5.0, 6.0, 7.0, 30.0])            # 4 of 5 within an octave of 5.33 Hz
    prior = controls.fit_prior(rates, np.array([0, 0, 0, 0, 1]), 3, TABLE)
    hits = [np.mean(np.abs(np.log2(lam / rates)) <= 1) for lam in LAM2]
    assert prior.constant_training_localisation == pytest.approx(max(hits))
    assert np.mean(np.abs(np.log2(prior.constant_hz / rates)) <= 1) == pytest.approx(max(hits))
    np.testing.assert_allclose(prior.class_rate_hz[:2], [5.5, 30.0])
    assert np.isnan(prior.class_rate_hz[2]) and prior.n_training == 5
    assert prior.as_dict()["class_rate_hz"][2] is None


def test_fit_prior_breaks_ties_towards_the_median_rate():
    """Columns that localise as many training notes: the one nearest (in octaves) the median rate."""
    rates = np.r_[np.full(8, LAM2[3]), np.full(3, LAM2[-1]), np.nan]
    prior = controls.fit_prior(rates, np.zeros(rates.size, np.int64), 1, TABLE)
    hits = [np.mean(np.abs(np.log2(c / rates[:11])) <= 1 + 1e-12) for c in LAM2]
    tied = [c for c, h in zip(LAM2, hits) if h == max(hits)]
    assert len(tied) > 1 and prior.constant_hz == LAM2[3]
    assert prior.constant_training_localisation == pytest.approx(max(hits)) and prior.n_training == 11


def test_fit_prior_leaves_out_notes_without_rate_and_needs_some():
    prior = controls.fit_prior(np.array([np.nan, 0.0, 8.0]), np.array([0, 1, 1]), 2, TABLE)
    assert prior.n_training == 1 and np.isnan(prior.class_rate_hz[0])
    with pytest.raises(ParameterError, match="modulation_hz"):
        controls.fit_prior(np.array([np.nan, -1.0]), np.array([0, 1]), 2, TABLE)
    with pytest.raises(ParameterError, match="labels"):
        controls.fit_prior(np.array([5.0]), np.array([3]), 2, TABLE)


def test_peaked_maps_have_their_peak_and_positive_part_on_one_column():
    target = np.array([5.0, 12.0, 31.0])
    m = controls.column_map(target, TABLE)
    assert m.shape == (3, TABLE.order.size)
    peak = peak_modulation_hz(m, TABLE)
    np.testing.assert_allclose(peak, [LAM2[np.argmin(np.abs(np.log2(LAM2 / t)))] for t in target])
    for k in range(3):
        pos = m[k] > 0
        assert pos.sum() == (S2 & np.isclose(TABLE.lambda2_hz, peak[k])).sum()
        assert np.all(TABLE.lambda2_hz[pos] == peak[k])
        # outside the column: nearer columns first, S1 last
        assert m[k, ~S2].max() < m[k, S2].min()
    with pytest.raises(ParameterError, match="positive"):
        controls.column_map(np.array([0.0]), TABLE)


def test_class_prior_map_points_at_the_predicted_class_rate():
    prior = controls.fit_prior(np.array([5.0, 5.0, 25.0, 25.0]), np.array([0, 0, 1, 1]), 3, TABLE)
    m = controls.class_prior_map(np.array([1, 0, 2]), prior, TABLE)
    peak = peak_modulation_hz(m, TABLE)
    assert abs(np.log2(peak[0] / 25)) < 0.3 and abs(np.log2(peak[1] / 5)) < 0.3
    assert peak[2] == prior.constant_hz                  # class 2 has no training rate
    # it localises every note whose rate is near its class's median, whatever the note
    assert localisation(m[:2], TABLE, np.array([30.0, 4.0])).tolist() == [1.0, 1.0]


def test_control_maps_shapes_and_what_is_left_out():
    rng = np.random.default_rng(0)
    x = rng.random((4, TABLE.order.size, 3))
    prior = controls.fit_prior(np.array([5.0, 25.0]), np.array([0, 1]), 2, TABLE)
    mean, std = x.mean(axis=(0, 2)), x.std(axis=(0, 2)) + 1
    maps = controls.control_maps(x, np.array([0, 1, 1, 0]), prior, TABLE, input_mean=mean, input_std=std)
    assert list(maps) == list(controls.CONTROLS)
    assert all(v.shape == (4, TABLE.order.size) and np.isfinite(v).all() for v in maps.values())
    np.testing.assert_allclose(maps["input"], x.mean(axis=-1))
    np.testing.assert_allclose(maps["standardised_input"], (x.mean(axis=-1) - mean) / std)
    assert list(controls.control_maps(x, np.zeros(4, int), None, TABLE)) == ["input", "random"]
    with pytest.raises(ParameterError, match="control"):
        controls.control_maps(x, np.zeros(4, int), None, TABLE, names=("nonsense",))


def test_random_map_is_per_note_reproducible():
    a = controls.random_map(3, 10, seed=1)
    b = controls.random_map(5, 10, seed=1)
    np.testing.assert_array_equal(a, b[:3])
    assert not np.allclose(a, controls.random_map(3, 10, seed=2))


def test_other_class_map_takes_a_map_of_another_class():
    local = np.arange(12, dtype=float).reshape(6, 2)
    labels = np.array([0, 0, 1, 1, 2, 2])
    out = controls.other_class_map(local, labels, seed=0)
    src = out[:, 0] // 2
    assert np.all(labels[src.astype(int)] != labels)
    with pytest.raises(ParameterError, match="two classes"):
        controls.other_class_map(local, np.zeros(6, int))
