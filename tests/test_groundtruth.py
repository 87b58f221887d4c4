"""The ground-truth yardsticks fail known-bad explanations and pass a known-good one.

Synthetic notes on the paper's path table: three classes whose modulation rates each span more than three
octaves (so that knowing the class is not enough), f0 between 100 and 800 Hz.  Known-good: a map planted at
each note's true (f0, rate), blurred and noisy.  Known-bad: a random map, the constant map, the class-prior
map, the input itself (which shows the rate on only some notes), and the planted map of a note of another
class.  Each is scored by :func:`score_maps` against the controls, exactly as the quality stage does.
"""

import numpy as np
import pytest

from scatterxai.analysis.quality import groundtruth as gt
from scatterxai.maps import controls as ctl
from scatterxai.scattering import path_table

TABLE = path_table()
S2 = TABLE.order == 2
L1 = np.log2(TABLE.lambda1_hz)
L2 = np.log2(np.where(S2, TABLE.lambda2_hz, 1.0))
RATE_RANGE = {0: (2.0, 14.0), 1: (4.0, 30.0), 2: (8.0, 64.0)}        # ~3 octaves each


def _notes(n_per_class, rng):
    labels = np.repeat(np.arange(3), n_per_class)
    lo = np.array([RATE_RANGE[c][0] for c in labels])
    hi = np.array([RATE_RANGE[c][1] for c in labels])
    rate = np.exp(rng.uniform(np.log(lo), np.log(hi)))
    f0 = np.exp(rng.uniform(np.log(100), np.log(800), labels.size))
    return labels, rate, f0


def _planted(rate, f0, rng, noise=0.05):
    """Relevance at (λ1 ≈ f0, λ2 ≈ rate), Gaussian in octaves, plus noise: (K, C)."""
    bump = np.exp(-((L1[None] - np.log2(f0)[:, None]) ** 2 + (L2[None] - np.log2(rate)[:, None]) ** 2) / 0.18)
    return np.where(S2[None], bump, 0.3 * np.exp(-(L1[None] - np.log2(f0)[:, None]) ** 2 / 0.18)) \
        + noise * rng.standard_normal((rate.size, S2.size))


def _input(rate, f0, rng):
    """An input that shows the rate on some notes only: a fixed low-λ2 background plus a bump of random height."""
    background = np.where(S2, np.exp(-(L2 - np.log2(2.0)) ** 2 / 0.5), 0.5)[None]
    height = rng.uniform(0.0, 1.6, rate.size)[:, None]
    return background + height * _planted(rate, f0, rng, noise=0.0) + 0.1 * rng.standard_normal((rate.size, S2.size))


@pytest.fixture(scope="module")
def scored():
    rng = np.random.default_rng(0)
    train_labels, train_rate, _ = _notes(60, rng)
    prior = ctl.fit_prior(train_rate, train_labels, 3, TABLE)
    labels, rate, f0 = _notes(40, rng)
    x = _input(rate, f0, rng)
    train_x = _input(train_rate, np.full(train_rate.size, 300.0), rng)
    cmaps = ctl.control_maps(x, labels, prior, TABLE, input_mean=train_x.mean(0), input_std=train_x.std(0), seed=5)
    planted = _planted(rate, f0, rng)
    maps = {"planted": planted, "random": ctl.random_map(rate.size, S2.size, seed=9),
            "constant": cmaps["constant"], "class_prior": cmaps["class_prior"], "input": x,
            "other_class": ctl.other_class_map(planted, labels, seed=1)}
    truth = {"modulation_hz": rate, "f0_hz": f0}
    return gt.score_maps(maps, cmaps, TABLE, truth, labels, 3, n_perm=199, n_boot=300, seed=0), cmaps


def test_the_controls_are_what_they_claim(scored):
    res, cmaps = scored
    loc = res["planted"]["localisation"]
    assert loc["value"] == 1.0 and set(loc["controls"]) == set(ctl.CONTROLS)
    # the class prior knows the class: it localises well, better than the constant and random maps
    c = loc["controls"]
    assert c["class_prior"] > c["constant"] > c["random"] and c["class_prior"] > 0.5
    assert loc["strongest_control"] in ("class_prior", "input", "standardised_input")
    track = res["planted"]["tracking"]["rate_peak"]
    # constant and class-prior maps point at one λ2 per class: they cannot track within a class
    assert track["controls"]["constant"]["rho"] is None and track["controls"]["class_prior"]["rho"] is None
    assert track["controls"]["input"]["rho"] > 0.2                   # the input shows the rate on some notes


def test_a_planted_map_passes_every_yardstick(scored):
    res, _ = scored
    e = res["planted"]
    assert gt.ground_truth_checks(e) == {"localisation_vs_controls": True, "tracking": True}
    assert e["localisation"]["margin_ci"][0] > 0.1
    # the share in the band: above the input and random maps; a peaked map (all its positive relevance on one
    # column) has share 0 or 1, so the class prior is a hard control for any map that spreads relevance
    share = e["rate_band_share"]
    assert share["value"] > max(share["controls"][c] for c in ("input", "standardised_input", "random"))
    for pointer in ("rate_peak", "rate_centroid", "f0_peak", "f0_centroid"):
        t = e["tracking"][pointer]
        assert t["rho"] > 0.8 and t["p"] == pytest.approx(1 / 200), pointer
        assert all(r > 0.5 for r in t["per_class"]["rho"]) and t["per_class"]["n"] == [40, 40, 40]


@pytest.mark.parametrize("bad", ["random", "constant", "class_prior", "input", "other_class"])
def test_known_bad_maps_fail_every_yardstick(scored, bad):
    res, _ = scored
    e = res[bad]
    assert gt.ground_truth_checks(e) == {"localisation_vs_controls": False, "tracking": False}
    assert e["localisation"]["margin"] <= 1e-12 and e["rate_band_share"]["margin_ci"][0] <= 0
    t = e["tracking"]["rate_peak"]
    assert t["rho"] is None or t["margin_ci"][0] <= 0


def test_checks_without_ground_truth():
    assert gt.ground_truth_checks(None) == {"localisation_vs_controls": None, "tracking": None}
