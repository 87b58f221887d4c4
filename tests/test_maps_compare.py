"""Map-comparison metrics: closed forms (point masses, shifts, disjoint supports) and the study layout."""

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
import scipy.optimize
import scipy.spatial.distance
import scipy.stats

from scatterxai.errors import ParameterError
from scatterxai.maps.compare import (
    METRICS,
    compare_maps,
    emd,
    emd_lambda1,
    emd_lambda2,
    js,
    kl,
    mean_diff,
    plane_coordinates,
    plane_geometry,
    to_distribution,
)
from scatterxai.maps.compare_study import (
    between_class_pairs,
    compare_study,
    study_values,
    summarise,
    within_class_pairs,
)
from scatterxai.scattering import path_table

from .conftest import SMALL


@pytest.fixture(scope="module")
def small_paths():
    return path_table(SMALL).arrays()


def hand_table():
    """Three λ1 rows (100, 200, 400 Hz), λ2 ∈ {4, 8, 16} Hz (1-octave step), one S1 path per row."""
    order, lam1, lam2 = [], [], []
    for f1 in (100.0, 200.0, 400.0):
        order.append(1), lam1.append(f1), lam2.append(np.nan)
        for f2 in (4.0, 8.0, 16.0):
            order.append(2), lam1.append(f1), lam2.append(f2)
    return {"order": np.array(order), "lambda1_hz": np.array(lam1), "lambda2_hz": np.array(lam2)}


def delta(C, i):
    d = np.zeros(C)
    d[i] = 1.0
    return d


def random_dists(rng, K, C, sparsity=0.5):
    x = rng.random((K, C)) * (rng.random((K, C)) < sparsity)
    x[:, 0] += 1e-3  # every row has mass
    return to_distribution(x)


# --------------------------------------------------------------------------- distributions

def test_to_distribution_modes():
    p = np.array([[-1.0, 1.0, 3.0], [2.0, -2.0, 0.0]])
    np.testing.assert_allclose(to_distribution(p), [[0, 0.25, 0.75], [1, 0, 0]])
    np.testing.assert_allclose(to_distribution(p, mode="abs"), [[0.2, 0.2, 0.6], [0.5, 0.5, 0]])
    np.testing.assert_allclose(to_distribution(p, mode="shift"), [[0, 2 / 6, 4 / 6], [4 / 6, 0, 2 / 6]])


def test_no_mass_gives_nan_rows_and_nan_metrics(small_paths):
    C = len(small_paths["order"])
    P = np.stack([-np.ones(C), np.linspace(-1, 1, C)])
    D = to_distribution(P)
    assert np.isnan(D[0]).all() and np.isfinite(D[1]).all()
    assert np.isnan(to_distribution(np.full((1, C), 3.0), mode="shift")).all()
    r = compare_maps(P, P[::-1], small_paths)
    for name, v in r.items():
        assert v.shape == (2,) and np.isnan(v).all(), name
    s = summarise(r["js"])
    assert math.isnan(s["mean"]) and math.isnan(s["std"]) and s["n_pairs"] == 0


def test_errors(small_paths):
    with pytest.raises(ParameterError, match="mode must be one of"):
        to_distribution(np.ones(3), mode="softmax")
    with pytest.raises(ParameterError, match="finite"):
        to_distribution(np.array([1.0, np.nan]))
    with pytest.raises(ParameterError, match="distributions"):
        js(np.array([1.0, 1.0]), np.array([0.5, 0.5]))
    with pytest.raises(ParameterError, match="metrics must be"):
        compare_maps(np.ones(3), np.ones(3), hand_table(), metrics=["wasserstein"])
    with pytest.raises(ParameterError, match="C = 249"):
        compare_maps(np.ones(12), np.ones(12), small_paths)
    with pytest.raises(ParameterError, match="lambda1_hz"):
        plane_geometry({"order": np.array([1])})
    with pytest.raises(ParameterError, match="needs the path table"):
        METRICS["emd"](delta(3, 0), delta(3, 1))


# --------------------------------------------------------------------------- information metrics

def test_identity_is_zero_for_every_metric(small_paths, rng):
    C = len(small_paths["order"])
    P = rng.normal(size=(3, C))
    for name, v in compare_maps(P, P, small_paths).items():
        np.testing.assert_allclose(v, 0.0, atol=1e-9, err_msg=name)


def test_kl_nonnegative_and_matches_scipy(rng):
    p, q = random_dists(rng, 50, 40), random_dists(rng, 50, 40)
    d = kl(p, q)
    assert d.shape == (50,) and (d >= 0).all() and (d > 1).any()
    full_p, full_q = to_distribution(rng.random((5, 40)) + 0.1), to_distribution(rng.random((5, 40)) + 0.1)
    np.testing.assert_allclose(kl(full_p, full_q), scipy.stats.entropy(full_p, full_q, axis=-1), rtol=1e-9)
    # q misses part of p's support: ε = 1e-12 keeps it finite, ≈ mass · ln(mass / ε)
    np.testing.assert_allclose(kl(np.array([0.5, 0.5, 0]), np.array([1.0, 0, 0])),
                               0.5 * math.log(0.5) + 0.5 * math.log(0.5 / 1e-12), rtol=1e-9)


def test_js_symmetric_bounded_and_matches_scipy_distance_squared(rng):
    p, q = random_dists(rng, 50, 40), random_dists(rng, 50, 40)
    d = js(p, q)
    np.testing.assert_allclose(d, js(q, p), rtol=0, atol=1e-15)
    assert (d >= 0).all() and (d <= math.log(2)).all()
    scipy_distance = scipy.spatial.distance.jensenshannon(p, q, axis=-1)  # natural log: the square root
    np.testing.assert_allclose(d, scipy_distance ** 2, rtol=1e-9)


def test_js_is_ln2_for_disjoint_supports(rng):
    p = to_distribution(np.r_[rng.random(10), np.zeros(10)])
    q = to_distribution(np.r_[np.zeros(10), rng.random(10)])
    assert js(p, q) == pytest.approx(math.log(2), rel=1e-12)


def test_mean_diff_closed_form():
    assert mean_diff(delta(4, 0), delta(4, 1)) == pytest.approx(0.5)
    assert mean_diff(np.full(4, 0.25), delta(4, 3)) == pytest.approx((3 * 0.25 + 0.75) / 4)


# --------------------------------------------------------------------------- geometry and EMD

def test_plane_coordinates_hand_table():
    t = hand_table()
    xy = plane_coordinates(t)
    np.testing.assert_allclose(xy[:4], [[math.log2(100), 1.0], [math.log2(100), 2], [math.log2(100), 3],
                                        [math.log2(100), 4]])  # S1 one step (1 octave) below λ2 = 4 Hz
    assert plane_geometry(t).lambda2_step == 1.0


def test_small_config_lambda2_grid_and_s1_position(small_paths):
    g = plane_geometry(small_paths)
    lam2 = np.unique(small_paths["lambda2_hz"][small_paths["order"] == 2])
    assert len(lam2) >= 6 and g.lambda2_step == pytest.approx(0.5)  # Q2 = 2: half-octave bins
    s1 = small_paths["order"] == 1
    np.testing.assert_allclose(g.coords[s1, 1], math.log2(lam2.min()) - 0.5)
    # several λ2 bins per λ1 row (up to 9 in this config)
    per_row = np.bincount(g.axis_levels[0][~s1])
    assert per_row.max() >= 9


@pytest.mark.parametrize("table", ["hand", "small"])
def test_emd_between_point_masses_is_their_distance(table, small_paths, rng):
    t = hand_table() if table == "hand" else small_paths
    xy = plane_coordinates(t)
    C = len(xy)
    for i, j in [(0, C - 1), (1, 2)] + [tuple(rng.choice(C, 2, replace=False)) for _ in range(4)]:
        p, q = delta(C, i), delta(C, j)
        dx, dy = np.abs(xy[i] - xy[j])
        assert emd(p, q, t) == pytest.approx(math.hypot(dx, dy), abs=1e-9)
        assert emd_lambda1(p, q, t) == pytest.approx(dx, abs=1e-9)
        assert emd_lambda2(p, q, t) == pytest.approx(dy, abs=1e-9)


def test_emd_hand_values():
    t = hand_table()
    # S1 of the 100 Hz row vs (400 Hz, 16 Hz): 2 octaves in λ1, 3 in λ2
    assert emd(delta(12, 0), delta(12, 11), t) == pytest.approx(math.sqrt(13))
    # half the mass moves 1 octave up in λ2
    p = np.array([0.5, 0.5] + [0] * 10)
    q = np.array([0.5, 0, 0.5] + [0] * 9)
    assert emd(p, q, t) == pytest.approx(0.5) and emd_lambda2(p, q, t) == pytest.approx(0.5)
    assert emd_lambda1(p, q, t) == 0.0


@pytest.mark.parametrize("k", [1, 2, 3])
def test_shift_by_k_half_octave_lambda2_bins(k, small_paths, rng):
    """A map moved by k half-octave λ2 bins (every λ1 row) has λ2-EMD = 2-D EMD = k/2, λ1-EMD = 0."""
    order, lam1, lam2 = (small_paths[c] for c in ("order", "lambda1_hz", "lambda2_hz"))
    half_octave = np.unique(lam2[order == 2])[1:]  # above the lowest λ2, bins are ½ octave apart
    assert np.allclose(np.diff(np.log2(half_octave)), 0.5)
    C = len(order)
    p, q = np.zeros(C), np.zeros(C)
    rows = [f for f in np.unique(lam1) if np.isin(half_octave, lam2[(order == 2) & (lam1 == f)]).all()]
    assert len(rows) >= 4
    for f in rows:
        index = {b: np.flatnonzero((order == 2) & (lam1 == f) & (lam2 == b))[0] for b in half_octave}
        mass = rng.random(len(half_octave) - k)
        for b, m in zip(half_octave[:-k], mass):
            p[index[b]] += m
        for b, m in zip(half_octave[k:], mass):
            q[index[b]] += m
    p, q = to_distribution(p), to_distribution(q)
    assert emd_lambda2(p, q, small_paths) == pytest.approx(k / 2, abs=1e-12)
    assert emd_lambda1(p, q, small_paths) == pytest.approx(0, abs=1e-12)
    assert emd(p, q, small_paths) == pytest.approx(k / 2, abs=1e-9)


def test_lambda2_marginal_includes_s1(small_paths):
    order, lam2 = small_paths["order"], small_paths["lambda2_hz"]
    s1 = np.flatnonzero(order == 1)[0]
    lowest = np.flatnonzero(lam2 == np.nanmin(lam2))[0]
    C = len(order)
    assert emd_lambda2(delta(C, s1), delta(C, lowest), small_paths) == pytest.approx(0.5)


def test_emd_batched_equals_per_row_and_symmetric(small_paths, rng):
    C = len(small_paths["order"])
    p, q = random_dists(rng, 3, C, 0.3), random_dists(rng, 3, C, 0.3)
    batched = emd(p, q, small_paths)
    np.testing.assert_allclose(batched, [emd(p[k], q[k], small_paths) for k in range(3)], rtol=1e-12)
    np.testing.assert_allclose(batched, emd(q, p, small_paths), rtol=1e-9)
    # projecting onto an axis is 1-Lipschitz: the 2-D EMD is at least each marginal EMD
    lo = np.maximum(emd_lambda1(p, q, small_paths), emd_lambda2(p, q, small_paths))
    assert (batched >= lo - 1e-9).all() and (batched > lo + 1e-3).any()


def test_emd_matches_an_independent_linear_program(rng):
    """Transport LP solved by SciPy's HiGHS on the hand table (12 paths, 144 flows)."""
    t = hand_table()
    xy = plane_coordinates(t)
    cost = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))
    C = len(xy)
    rows = np.kron(np.eye(C), np.ones(C))  # Σ_j G_ij = p_i
    cols = np.kron(np.ones(C), np.eye(C))  # Σ_i G_ij = q_j
    for _ in range(3):
        p, q = random_dists(rng, 1, C, 0.6)[0], random_dists(rng, 1, C, 0.6)[0]
        lp = scipy.optimize.linprog(cost.ravel(), A_eq=np.vstack([rows, cols]), b_eq=np.r_[p, q],
                                    bounds=(0, None), method="highs")
        assert lp.status == 0 and emd(p, q, t) == pytest.approx(lp.fun, abs=1e-9)


# --------------------------------------------------------------------------- pairs and the study

def test_within_class_pairs_all_and_sampled():
    labels = np.array([0, 1, 0, 0, 2, 1, 0])
    allp = within_class_pairs(labels)
    assert set(allp) == {0, 1, 2}
    np.testing.assert_array_equal(allp[0].index, list(itertools.combinations([0, 2, 3, 6], 2)))
    assert allp[0].n_available == 6 and allp[1].index.tolist() == [[1, 5]] and allp[2].index.shape == (0, 2)
    big = np.repeat([0, 1], [300, 5])
    s = within_class_pairs(big, max_pairs=100, seed=3)
    assert s[0].n_available == 300 * 299 // 2 and len(s[0].index) == 100 and len(s[1].index) == 10
    idx = s[0].index
    assert (idx[:, 0] < idx[:, 1]).all() and (big[idx] == 0).all() and len(np.unique(idx, axis=0)) == 100
    np.testing.assert_array_equal(within_class_pairs(big, max_pairs=100, seed=3)[0].index, idx)
    assert not np.array_equal(within_class_pairs(big, max_pairs=100, seed=4)[0].index, idx)


def test_between_class_pairs_all_and_sampled():
    labels = np.array([0, 1, 0, 2])
    allp = between_class_pairs(labels)
    expected = [(i, j) for i, j in itertools.combinations(range(4), 2) if labels[i] != labels[j]]
    assert allp.index.tolist() == [list(e) for e in expected] and allp.n_available == 5
    big = np.repeat([0, 1, 2], [100, 50, 20])
    s = between_class_pairs(big, max_pairs=500, seed=1)
    assert s.n_available == 100 * 50 + 100 * 20 + 50 * 20 and len(s.index) == 500
    assert (big[s.index[:, 0]] != big[s.index[:, 1]]).all() and len(np.unique(s.index, axis=0)) == 500
    one = between_class_pairs(np.zeros(5, np.int64))
    assert one.n_available == 0 and one.index.shape == (0, 2)
    with pytest.raises(ParameterError, match="max_pairs"):
        between_class_pairs(big, max_pairs=-1)


def test_summarise():
    assert summarise([1.0, 3.0, np.nan]) == {"mean": 2.0, "std": 1.0, "n_pairs": 2}


def test_compare_study_layout_and_counts(small_paths, rng):
    C = len(small_paths["order"])
    labels = np.repeat([0, 1, 2], [5, 4, 1])
    K = len(labels)
    maps = {"lrp": rng.normal(size=(K, C)), "gradient": rng.normal(size=(K, C)), "ig": rng.normal(size=(K, C))}
    classes = ["trill", "vibrato", "tremolo"]
    metrics = ["js", "emd_lambda2", "emd"]
    out = compare_study(maps, labels, classes, small_paths, metrics=metrics, max_pairs=6, seed=0)
    assert set(out) == {"metrics", "normalisation", "within_class", "between_class", "between_methods"}
    assert out["metrics"] == metrics and out["normalisation"] == "positive"
    assert set(out["within_class"]) == set(maps) and set(out["within_class"]["lrp"]) == set(classes)
    n_within = {c: out["within_class"]["ig"][c]["js"]["n_pairs"] for c in classes}
    assert n_within == {"trill": 6, "vibrato": 6, "tremolo": 0}  # C(5,2) = 10 → 6 sampled; C(4,2) = 6
    assert set(out["within_class"]["ig"]["trill"]["emd"]) == {"mean", "std", "n_pairs"}
    assert out["between_class"]["lrp"]["emd"]["n_pairs"] == 6  # 5·4 + 5 + 4 = 29 available
    assert list(out["between_methods"]) == ["lrp|gradient", "lrp|ig", "gradient|ig"]
    assert out["between_methods"]["lrp|ig"]["js"]["n_pairs"] == 6
    ref = compare_study(maps, labels, classes, small_paths, metrics=["js"], reference_method="ig", max_pairs=None)
    assert list(ref["between_methods"]) == ["ig|lrp", "ig|gradient"]
    assert ref["between_methods"]["ig|lrp"]["js"]["n_pairs"] == K and ref["between_class"]["ig"]["js"]["n_pairs"] == 29
    # the summaries are those of the per-pair values; identical methods agree perfectly
    same = study_values({"a": maps["lrp"], "b": maps["lrp"]}, labels, classes, small_paths, metrics=["js", "emd"])
    for name in ("js", "emd"):
        np.testing.assert_allclose(same["between_methods"]["a|b"][name], 0.0, atol=1e-9)
    with pytest.raises(ParameterError, match="reference_method"):
        compare_study(maps, labels, classes, small_paths, reference_method="occlusion")


def test_compare_study_values_match_direct_computation(small_paths, rng):
    C = len(small_paths["order"])
    labels = np.array([0, 0, 1])
    maps = {"m": rng.normal(size=(3, C))}
    v = study_values(maps, labels, ["a", "b"], small_paths, metrics=["kl", "emd_lambda1"])
    direct = compare_maps(maps["m"][0], maps["m"][1], small_paths, metrics=["kl", "emd_lambda1"])
    np.testing.assert_allclose(v["within_class"]["m"]["a"]["kl"], [direct["kl"]])
    np.testing.assert_allclose(v["within_class"]["m"]["a"]["emd_lambda1"], [direct["emd_lambda1"]])


def test_imports_without_torch():
    """The module and its EMD (POT) run with torch made unimportable."""
    code = """
import sys, types, importlib
import importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch blocked")
sys.meta_path.insert(0, Block())
mc = importlib.import_module("scatterxai.maps.compare")
t = {"order": [1, 2, 2], "lambda1_hz": [100.0, 100.0, 100.0], "lambda2_hz": [float("nan"), 4.0, 8.0]}
print(round(float(mc.emd([1.0, 0, 0], [0, 0, 1.0], t)), 9), "torch" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2.0", "False"]
