"""Within-class tracking statistics, permutation p-values and bootstrap intervals (scatterxai.maps.tracking)."""

import numpy as np
import pytest
import scipy.stats

from scatterxai.errors import ParameterError
from scatterxai.maps import tracking
from scatterxai.scattering import path_table

TABLE = path_table()
S2 = TABLE.order == 2


def test_pointed_hz_peak_and_centroid():
    local = np.zeros((2, TABLE.order.size))
    i4 = np.flatnonzero(S2 & np.isclose(TABLE.lambda2_hz, 3.76831055, rtol=1e-6))[0]
    i15 = np.flatnonzero(S2 & np.isclose(TABLE.lambda2_hz, 15.0732422, rtol=1e-6))[0]
    local[0, i4] = 1.0
    local[1, i4], local[1, i15] = 2.0, 1.5
    local[1, 0] = 5.0                      # an S1 path: ignored by λ2, the λ1 peak
    np.testing.assert_allclose(tracking.pointed_hz(local, TABLE, how="peak"), [TABLE.lambda2_hz[i4]] * 2)
    centroid = tracking.pointed_hz(local, TABLE, how="centroid")
    a, b = TABLE.lambda2_hz[i4], TABLE.lambda2_hz[i15]
    np.testing.assert_allclose(centroid, [a, 2 ** ((2 * np.log2(a) + 1.5 * np.log2(b)) / 3.5)])
    assert tracking.pointed_hz(local, TABLE, axis="lambda1")[1] == TABLE.lambda1_hz[0]
    assert np.isnan(tracking.pointed_hz(-np.ones((1, TABLE.order.size)), TABLE, how="centroid")[0])
    with pytest.raises(ParameterError, match="how"):
        tracking.pointed_hz(local, TABLE, how="mode")


def test_spearman_matches_scipy_and_its_p_value_has_the_permutation_floor():
    rng = np.random.default_rng(0)
    t = rng.uniform(4, 8, 30)
    p = t * rng.uniform(0.8, 1.25, 30)
    res = tracking.spearman(t, p, n_perm=199, seed=0)
    assert res["rho"] == pytest.approx(scipy.stats.spearmanr(t, p).statistic)
    assert res["p"] == pytest.approx(1 / 200) and res["n"] == 30
    assert tracking.spearman(t, 1 / t, n_perm=199)["p"] == 1.0           # one-sided: anti-tracking is not tracking
    assert np.isnan(tracking.spearman(t, np.full(30, 5.0))["rho"])       # a constant pointer cannot track
    assert np.isnan(tracking.spearman(t[:3], p[:3])["rho"])              # too few notes


def test_spearman_p_values_are_calibrated_under_the_null():
    rng = np.random.default_rng(1)
    ps = np.array([tracking.spearman(rng.random(12), rng.random(12), n_perm=99, seed=s)["p"] for s in range(200)])
    assert 0.02 < np.mean(ps < 0.1) < 0.2 and 0.4 < ps.mean() < 0.6


def test_within_class_tracking_cannot_be_faked_by_knowing_the_class():
    rng = np.random.default_rng(2)
    groups = np.repeat([0, 1, 2], 20)
    rate = 2.0 ** (groups * 2 + rng.uniform(0, 0.9, 60))                 # classes an octave apart, < 1 octave wide
    class_median = np.array([np.median(rate[groups == c]) for c in range(3)])[groups]
    by_class = tracking.within_class_tracking(rate, class_median, groups, 3, n_perm=199)
    assert scipy.stats.spearmanr(rate, class_median).statistic > 0.9     # across classes it "tracks"
    assert np.isnan(by_class["rho"]) and all(np.isnan(by_class["per_class"]["rho"]))
    # a pointer that follows the class plus noise: high overall ρ, none within classes
    noisy = class_median * 2.0 ** rng.normal(0, 0.2, 60)
    res = tracking.within_class_tracking(rate, noisy, groups, 3, n_perm=199)
    assert abs(res["rho"]) < 0.3 and res["p"] > 0.05
    good = tracking.within_class_tracking(rate, rate * 2.0 ** rng.normal(0, 0.05, 60), groups, 3, n_perm=199)
    assert good["rho"] > 0.8 and good["p"] == pytest.approx(1 / 200) and good["n"] == 60
    assert good["per_class"]["n"] == [20, 20, 20]


def test_bootstrap_intervals():
    rng = np.random.default_rng(3)
    v = rng.normal(1.0, 1.0, 200)
    lo, hi = tracking.bootstrap_mean_ci(v, n_boot=500)
    assert lo < v.mean() < hi and hi - lo == pytest.approx(2 * 1.96 / np.sqrt(200), rel=0.25)
    assert tracking.bootstrap_mean_ci(np.ones(5)) == (1.0, 1.0)
    assert np.isnan(tracking.bootstrap_mean_ci(np.array([np.nan]))[0])
    groups = np.repeat([0, 1], 15)
    t = rng.uniform(1, 2, 30)
    same = tracking.tracking_margin_ci(t, t, t, groups, 2, n_boot=200)
    assert same == {"low": 0.0, "high": 0.0}
    better = tracking.tracking_margin_ci(t, t, rng.uniform(1, 2, 30), groups, 2, n_boot=200)
    assert better["low"] > 0.3
