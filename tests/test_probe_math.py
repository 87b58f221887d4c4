"""Representation analysis core: CKA, linear probes, per-unit matching — against closed forms and planted signals."""

import itertools
import logging

import numpy as np
import pytest
import scipy.stats
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from scatterxai.analysis.probe import cka as cka_module
from scatterxai.analysis.probe import units as units_module
from scatterxai.analysis.probe.cka import cka_permutation_test, debiased_cka, linear_cka, linear_cka_gram
from scatterxai.analysis.probe.probes import _RowSpace, logistic_probe, ridge_probe
from scatterxai.analysis.probe.units import best_unit, unit_correlations
from scatterxai.errors import ParameterError


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    # small matrices: threads only add contention on the shared 2-core machine
    with threadpool_limits(limits=1):
        yield


def _orthogonal(p, rng):
    Q, R = np.linalg.qr(rng.normal(size=(p, p)))
    return Q * np.sign(np.diag(R))


def _related(rng, n=40, p=12, q=6):
    X = rng.normal(size=(n, p))
    Y = X[:, :4] @ rng.normal(size=(4, q)) + rng.normal(size=(n, q))
    return X, Y


# ---------------------------------------------------------------- CKA


@pytest.mark.parametrize("p", [8, 120])  # features < n and > n (thin-SVD factor)
def test_cka_of_a_representation_with_itself_is_one(rng, p):
    X = rng.normal(size=(40, p))
    assert linear_cka(X, X) == pytest.approx(1.0, abs=1e-12)
    assert debiased_cka(X, X) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka_gram(X @ X.T, X @ X.T) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("p", [12, 90])
def test_cka_invariant_to_orthogonal_maps_scaling_and_shifts(rng, p):
    X, Y = _related(rng, p=p)
    Xt = 3.7 * X @ _orthogonal(p, rng) + rng.normal(size=p) * 10
    Yt = 0.01 * Y @ _orthogonal(Y.shape[1], rng) - 5.0
    for f in (linear_cka, debiased_cka):
        assert f(Xt, Yt) == pytest.approx(f(X, Y), rel=1e-9)


def test_cka_is_symmetric(rng):
    X, Y = _related(rng, p=70)
    for f in (linear_cka, debiased_cka):
        assert f(X, Y) == pytest.approx(f(Y, X), rel=1e-12)


@pytest.mark.parametrize("p,q", [(10, 5), (200, 7), (200, 300), (1, 1)])
def test_feature_space_and_gram_space_agree(rng, p, q):
    n = 40
    X = rng.normal(size=(n, p)) + 3.0  # uncentred: linear_cka centres columns, the Gram version centres K, L
    Y = X[:, :1] * rng.normal(size=q) + rng.normal(size=(n, q))
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    textbook = (np.linalg.norm(Yc.T @ Xc) ** 2
                / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc)))
    assert linear_cka(X, Y) == pytest.approx(textbook, rel=1e-10)
    assert linear_cka_gram(X @ X.T, Y @ Y.T) == pytest.approx(textbook, rel=1e-10)
    assert debiased_cka(X, Y) == pytest.approx(linear_cka_gram(X @ X.T, Y @ Y.T, debiased=True), rel=1e-9)


def test_debiased_cka_matches_brute_force_u_statistic(rng):
    # HSIC₁ is the U-statistic of k_ij l_ij + k_ij l_qr − 2 k_ij l_iq over distinct (i, j, q, r) (Song et al.)
    n = 7
    X = rng.normal(size=(n, 3)) + 5.0
    Y = X[:, :2] @ rng.normal(size=(2, 4)) + rng.normal(size=(n, 4)) - 2.0

    def u(K, L):
        return np.mean([K[i, j] * L[i, j] + K[i, j] * L[q, r] - 2 * K[i, j] * L[i, q]
                        for i, j, q, r in itertools.permutations(range(n), 4)])

    K, L = X @ X.T, Y @ Y.T
    assert debiased_cka(X, Y) == pytest.approx(u(K, L) / np.sqrt(u(K, K) * u(L, L)), rel=1e-9)


@pytest.mark.parametrize("q", [5, 1000])
def test_independent_gaussians_biased_vs_debiased(rng, q):
    # biased CKA ≈ √(pq / ((n+p)(n+q))): 0.143 for q = 5 (the "≈ 0.14"), 0.833 for q = p = 1000
    n, p = 200, 1000
    X, Y = rng.normal(size=(n, p)), rng.normal(size=(n, q))
    assert linear_cka(X, Y) == pytest.approx(np.sqrt(p * q / ((n + p) * (n + q))), abs=0.01)
    assert abs(debiased_cka(X, Y)) < 0.03


@pytest.mark.parametrize("debiased", [True, False])
@pytest.mark.parametrize("p", [6, 150])
def test_permutation_test_matches_brute_force_in_both_spaces(rng, monkeypatch, debiased, p):
    X, Y = _related(rng, n=30, p=p, q=4)
    Y = Y + 3.0 * rng.normal(size=Y.shape)  # weaken the link so that the null is not all below
    f = debiased_cka if debiased else linear_cka
    perm_rng = np.random.default_rng(3)
    null = np.array([f(X, Y[perm_rng.permutation(30)]) for _ in range(40)])
    expected_p = (1 + np.sum(null >= f(X, Y) - 1e-12)) / 41
    for factor in (0, 10 ** 9):  # force Gram space, then feature space
        monkeypatch.setattr(cka_module, "_GRAM_FACTOR", factor)
        value, pv = cka_permutation_test(X, Y, n_permutations=40, seed=3, debiased=debiased)
        assert value == pytest.approx(f(X, Y), rel=1e-10)
        assert pv == pytest.approx(expected_p)


def test_permutation_test_counts_ties_with_the_observed_value(rng):
    # n = 4: some of the 200 shuffles are the identity and reproduce the observed CKA exactly
    X = rng.normal(size=(4, 3))
    perm_rng = np.random.default_rng(0)
    identities = sum(np.array_equal(perm_rng.permutation(4), np.arange(4)) for _ in range(200))
    assert identities > 0
    value, p = cka_permutation_test(X, X, debiased=False)
    assert value == pytest.approx(1.0) and p == pytest.approx((1 + identities) / 201)


def test_permutation_test_dependent_small_p_independent_not(rng):
    X, Y = _related(rng, n=60, p=20, q=5)
    value, p = cka_permutation_test(X, Y, n_permutations=99)
    assert value > 0.15 and p == pytest.approx(1 / 100)
    value, p = cka_permutation_test(X, rng.normal(size=(60, 5)), n_permutations=99)
    assert abs(value) < 0.1 and p > 0.05


def test_cka_errors_and_undefined_values(rng):
    X = rng.normal(size=(20, 3))
    with pytest.raises(ParameterError, match="same number of rows"):
        linear_cka(X, X[:10])
    X_nan = X.copy()
    X_nan[4, 1] = np.nan
    with pytest.raises(ParameterError, match="non-finite"):
        debiased_cka(X_nan, X)
    with pytest.raises(ParameterError, match="symmetric"):
        linear_cka_gram(X @ X.T + np.triu(np.ones((20, 20)), 1), X @ X.T)
    with pytest.raises(ParameterError, match="n_permutations"):
        cka_permutation_test(X, X, n_permutations=0)
    with pytest.raises(ParameterError, match="at least 4 notes"):
        debiased_cka(X[:3], X[:3])
    assert np.isnan(linear_cka(np.ones((20, 4)), X))
    assert np.all(np.isnan(cka_permutation_test(np.ones((20, 4)), X, n_permutations=5)))
    assert linear_cka(X[:, 0], X[:, :1]) == pytest.approx(1.0)  # 1-D input is one column


# ---------------------------------------------------------------- probes


@pytest.mark.parametrize("snr", [1.0, 3.0])
def test_ridge_probe_recovers_planted_snr(rng, snr):
    n, p = 1000, 10
    X = rng.normal(size=(n, p))
    signal = X @ rng.normal(size=p)
    y = signal + rng.normal(size=n) * np.sqrt(signal.var() / snr)
    groups = rng.integers(0, 12, n)
    res = ridge_probe(X, y, groups=groups)
    assert res["r2"] == pytest.approx(snr / (1 + snr), abs=0.05)
    assert res["rmse"] == pytest.approx(np.sqrt(signal.var() / snr), rel=0.1)
    assert res["rmse_mean"] == pytest.approx(y.std(), rel=0.05)
    assert res["n"] == n and res["n_splits"] == 5 and res["alpha"].shape == (5,)
    # natural units: scaling y scales the errors, not R²
    scaled = ridge_probe(X, 1000.0 * y, groups=groups)
    assert scaled["rmse"] == pytest.approx(1000.0 * res["rmse"], rel=1e-6)
    assert scaled["r2"] == pytest.approx(res["r2"], abs=1e-9)


def test_ridge_probe_without_signal_scores_at_most_the_mean(rng):
    n, p = 400, 10
    X = rng.normal(size=(n, p))
    y = rng.permutation(X @ rng.normal(size=p) + rng.normal(size=n))
    assert ridge_probe(X, y, groups=rng.integers(0, 8, n))["r2"] <= 0.02


def test_ridge_probe_grouped_cv_does_not_learn_group_identity(rng):
    # y is a per-group offset; X identifies the group. Leaky (ungrouped) CV would score R² ≈ 1.
    n_groups, per = 10, 30
    groups = np.repeat(np.arange(n_groups), per)
    X = np.eye(n_groups)[groups] * 5 + rng.normal(size=(n_groups * per, n_groups)) * 0.1
    y = rng.normal(size=n_groups)[groups]
    assert ridge_probe(X, y, groups=groups)["r2"] < 0.1


def test_ridge_probe_mean_predictor_is_the_training_fold_mean(rng):
    # two groups at levels 0 and 10, two folds: each note's mean predictor is the other group's mean
    groups = np.repeat([0, 1], 40)
    y = 10.0 * groups + rng.normal(size=80)
    other_mean = np.where(groups == 0, y[groups == 1].mean(), y[groups == 0].mean())
    res = ridge_probe(rng.normal(size=(80, 3)), y, groups=groups, n_splits=2)
    assert res["rmse_mean"] == pytest.approx(np.sqrt(np.mean((y - other_mean) ** 2)), rel=1e-12)
    assert res["rmse_mean"] > 1.5 * y.std()  # not the pooled mean's spread (≈ 5)


def test_ridge_probe_many_features_low_rank_signal(rng):
    # p > n takes the row-space path; a 3-factor representation encodes y
    n, p = 150, 2000
    F = rng.normal(size=(n, 3))
    X = F @ rng.normal(size=(3, p)) + rng.normal(size=(n, p))
    y = F[:, 0] + 0.3 * rng.normal(size=n)
    assert ridge_probe(X, y, groups=rng.integers(0, 10, n))["r2"] > 0.7


def test_row_space_projection_is_exact_for_l2_models(rng):
    n, p = 40, 300
    X, Xnew = rng.normal(size=(n, p)), rng.normal(size=(15, p))
    y = X[:, 0] + rng.normal(size=n)
    plain = make_pipeline(StandardScaler(), Ridge(alpha=3.0)).fit(X, y)
    proj = make_pipeline(StandardScaler(), _RowSpace(), Ridge(alpha=3.0)).fit(X, y)
    assert proj[1].weights_.shape == (n, n - 1)  # centred rows: rank n − 1
    np.testing.assert_allclose(proj[1].transform(proj[0].transform(X)), proj[:2].fit_transform(X), atol=1e-9)
    np.testing.assert_allclose(proj.predict(Xnew), plain.predict(Xnew), rtol=1e-8, atol=1e-10)
    labels = (y > 0).astype(int)
    plain = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, tol=1e-10, max_iter=10000)).fit(X, labels)
    proj = make_pipeline(StandardScaler(), _RowSpace(),
                         LogisticRegression(C=0.1, tol=1e-10, max_iter=10000)).fit(X, labels)
    np.testing.assert_allclose(proj.predict_proba(Xnew), plain.predict_proba(Xnew), atol=1e-5)


def test_ridge_probe_drops_nan_targets_and_reduces_folds(rng, caplog):
    n = 90
    X = rng.normal(size=(n, 4))
    y = X[:, 0] + 0.5 * rng.normal(size=n)
    y[[3, 17, 40]] = np.nan
    groups = np.repeat(["cello", "flute", "oboe"], 30)
    with caplog.at_level(logging.INFO, logger="scatterxai"):
        res = ridge_probe(X, y, groups=groups)
    assert res["n"] == 87 and res["n_dropped"] == 3 and not res["kept"][17]
    assert res["y_pred"].shape == (87,) and res["n_splits"] == 3 and res["n_groups"] == 3
    assert "dropped 3 of 90" in caplog.text and "instead of n_splits = 5" in caplog.text
    with pytest.raises(ParameterError, match="at least 2 groups"):
        ridge_probe(X, y, groups=np.zeros(n))
    with pytest.raises(ParameterError, match="one label per note"):
        ridge_probe(X, y, groups=np.zeros(n - 1))
    with pytest.raises(ParameterError, match="alphas"):
        ridge_probe(X, y, groups=groups, alphas=[1.0, -1.0])


def test_logistic_probe_separable_vs_permuted(rng):
    n, p = 240, 10
    labels = rng.integers(0, 3, n)
    X = rng.normal(size=(n, p)) + 3.0 * rng.normal(size=(3, p))[labels]
    groups = rng.integers(0, 8, n)
    res = logistic_probe(X, labels, groups=groups, Cs=np.logspace(-3, 1, 5))
    assert res["chance"] == pytest.approx(1 / 3) and res["n_classes"] == 3
    assert res["balanced_accuracy"] > 0.9
    null = logistic_probe(X, rng.permutation(labels), groups=groups, Cs=np.logspace(-3, 1, 5))
    assert abs(null["balanced_accuracy"] - 1 / 3) < 0.1


def test_logistic_probe_string_labels_with_missing(rng):
    n = 120
    labels = np.array(["trill", "vibrato"], dtype=object)[rng.integers(0, 2, n)]
    X = rng.normal(size=(n, 5)) + 2.5 * (labels == "trill")[:, None]
    labels[:4] = None
    res = logistic_probe(X, labels, groups=rng.integers(0, 6, n), Cs=np.logspace(-2, 1, 4))
    assert res["n"] == 116 and res["n_dropped"] == 4 and res["chance"] == 0.5
    assert set(res["y_pred"]) <= {"trill", "vibrato"} and res["balanced_accuracy"] > 0.85
    with pytest.raises(ParameterError, match="at least 2 classes"):
        logistic_probe(X, np.full(n, "trill"), groups=rng.integers(0, 6, n))


# ---------------------------------------------------------------- units


def test_unit_correlations_match_scipy(rng):
    n = 50
    d = rng.normal(size=n)
    A = np.column_stack([d + rng.normal(size=n), np.exp(d), rng.normal(size=n), np.full(n, 2.0)])
    res = unit_correlations(A, d)
    for j in range(3):
        assert res["pearson"][j] == pytest.approx(scipy.stats.pearsonr(A[:, j], d)[0], abs=1e-12)
        assert res["spearman"][j] == pytest.approx(scipy.stats.spearmanr(A[:, j], d)[0], abs=1e-12)
    assert res["spearman"][1] == pytest.approx(1.0) and res["pearson"][1] < 0.95  # monotone, not linear
    assert np.isnan(res["pearson"][3]) and np.isnan(res["spearman"][3])  # constant unit


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_best_unit_finds_planted_unit(rng, method):
    n, units = 150, 200
    d = rng.normal(size=n)
    A = rng.normal(size=(n, units))
    A[:, 37] = -d + rng.normal(size=n)  # r ≈ −0.71; negative sign: the match is two-sided
    A[:, 5] = 0.0  # a dead unit
    res = best_unit(A, d, n_permutations=99, method=method)
    assert res["unit"] == 37 and res["r"] < -0.5
    assert res["p"] == pytest.approx(0.01) and res["null"].shape == (99,)


def test_best_unit_on_noise_is_not_significant(rng, monkeypatch):
    n, units = 80, 300
    A, d = rng.normal(size=(n, units)), rng.normal(size=n)
    res = best_unit(A, d, n_permutations=99, seed=1)
    assert res["p"] > 0.05
    # the null's max |r| is the family-wise one: well above a single unit's |r| spread (≈ 1/√n)
    assert np.median(res["null"]) > 2.5 / np.sqrt(n)
    monkeypatch.setattr(units_module, "_BLOCK", 7 * units)  # permutations in blocks of 7: same null
    np.testing.assert_allclose(best_unit(A, d, n_permutations=99, seed=1)["null"], res["null"], rtol=1e-12)


def test_units_drop_nan_descriptor_and_reject_bad_input(rng):
    n = 40
    d = rng.normal(size=n)
    A = np.column_stack([d, rng.normal(size=n)])
    d_nan = d.copy()
    d_nan[[0, 9]] = np.nan
    res = unit_correlations(A, d_nan)
    assert res["n"] == 38 and res["n_dropped"] == 2 and res["pearson"][0] == pytest.approx(1.0)
    with pytest.raises(ParameterError, match="constant"):
        best_unit(A, np.ones(n))
    with pytest.raises(ParameterError, match="method"):
        best_unit(A, d, method="kendall")
    with pytest.raises(ParameterError, match="all 2 units are constant"):
        best_unit(np.zeros((n, 2)), d)
