"""Maps on the (λ1, λ2) plane: grid layout, top-n aggregation, kurtosis, localisation, S1 share."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.stats

from scatterxai import maps
from scatterxai.errors import ParameterError
from scatterxai.scattering import path_table

from .conftest import SMALL


def tiny_table():
    """Hand-made table: two carriers (n1 = 0 at 1000 Hz, n1 = 1 at 500 Hz), two rates (n2 = 3 at 8 Hz,
    n2 = 2 at 16 Hz); carrier 500 Hz has only the 8 Hz path."""
    nan = np.nan
    return {"order": np.array([1, 1, 2, 2, 2]),
            "lambda1_hz": np.array([1000.0, 500.0, 1000.0, 1000.0, 500.0]),
            "lambda2_hz": np.array([nan, nan, 16.0, 8.0, 8.0]),
            "n1": np.array([0, 1, 0, 0, 1]), "n2": np.array([-1, -1, 2, 3, 3])}


def test_grid_layout_by_hand():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    grid, lam1, lam2 = maps.grid_layout(values, tiny_table())
    np.testing.assert_array_equal(lam1, [500.0, 1000.0])
    np.testing.assert_array_equal(lam2, [0.0, 8.0, 16.0])
    expected = np.array([[2.0, 5.0, np.nan],
                         [1.0, 4.0, 3.0]])
    np.testing.assert_array_equal(grid, expected)


def test_grid_round_trip_on_a_scattering_table(rng):
    table = path_table(SMALL)
    values = rng.normal(size=(3, 2, len(table)))
    grid, lam1, lam2 = maps.grid_layout(values, table)
    g = maps.grid_index(table)
    assert grid.shape == (3, 2, len(lam1), len(lam2)) == (3, 2) + g.shape
    assert len(lam1) == np.unique(table.n1).size and len(lam2) == 1 + np.unique(table.n2[table.s2]).size
    assert np.all(np.diff(lam1) > 0) and lam2[0] == 0 and np.all(np.diff(lam2) > 0)
    assert np.isnan(grid).sum() == 6 * (grid[0, 0].size - len(table))
    np.testing.assert_array_equal(maps.grid_values(grid, table), values)
    # every S1 path sits in column 0 of its carrier's row; S2 paths at their (λ1, λ2)
    np.testing.assert_allclose(lam1[g.row], table.lambda1_hz)
    np.testing.assert_allclose(lam2[g.col][table.s2], table.lambda2_hz[table.s2])
    assert np.all(g.col[table.s1] == 0)
    # a mapping (as read from /paths) gives the same layout
    grid2, _, _ = maps.grid_layout(values, table.arrays())
    np.testing.assert_array_equal(grid, grid2)


def test_grid_errors():
    table = tiny_table()
    with pytest.raises(ParameterError, match=r"shape \(\.\.\., C\) with C = 5"):
        maps.grid_layout(np.zeros(4), table)
    with pytest.raises(ParameterError, match=r"grid must have shape \(\.\.\., 2, 3\)"):
        maps.grid_values(np.zeros((3, 3)), table)
    bad = dict(table, n2=np.array([-1, -1, 3, 3, 3]), lambda2_hz=np.array([np.nan, np.nan, 8, 8, 8.0]))
    with pytest.raises(ParameterError, match="share a"):
        maps.grid_index(bad)
    with pytest.raises(ParameterError, match="missing"):
        maps.grid_index({"order": table["order"]})


def test_local_map_is_the_time_average(rng):
    R = rng.normal(size=(4, 5, 7))
    np.testing.assert_allclose(maps.local_map(R), R.mean(axis=-1))
    with pytest.raises(ParameterError, match=r"\(\.\.\., C, T\)"):
        maps.local_map(np.zeros(3))


def test_topn_aggregate_by_hand():
    local = np.array([[5.0, 4.0, 3.0, 0.0, -1.0],   # class 0: top-2 → paths 0, 1
                      [0.0, 9.0, 1.0, 8.0, 2.0],    # class 0: top-2 → 1, 3
                      [-5.0, -4.0, -3.0, -2.0, -1.0],  # class 2: top-2 → 4, 3 (largest, not largest |R|)
                      [1.0, 1.0, 1.0, 0.0, 0.0]])   # class 2: tie → lower index first: 0, 1
    labels = np.array([0, 0, 2, 2])
    agg = maps.topn_aggregate(local, labels, 3, n=2)
    np.testing.assert_array_equal(agg, [[1, 2, 0, 1, 0],
                                        [0, 0, 0, 0, 0],
                                        [1, 1, 0, 1, 1]])
    assert agg.sum() == 2 * len(local)
    np.testing.assert_array_equal(maps.topn_aggregate(local, labels, 3, n=5).sum(axis=1), [10, 0, 10])
    with pytest.raises(ParameterError, match=r"n must be an integer in \[1, 5\], got 6"):
        maps.topn_aggregate(local, labels, 3, n=6)
    with pytest.raises(ParameterError, match=r"lie in \[0, 2\)"):
        maps.topn_aggregate(local, labels, 2)


def test_kurtosis_on_hand_made_maps():
    flat_ish = np.array([1.0, -1.0, 1.0, -1.0])       # two-point distribution: Fisher kurtosis −2
    spike = np.zeros(100)
    spike[7] = 1.0                                     # one peak among n values: n − 5 + 1/(n − 1)
    k = maps.map_kurtosis(np.stack([flat_ish, flat_ish * 3]))
    np.testing.assert_allclose(k, [-2.0, -2.0])
    np.testing.assert_allclose(maps.map_kurtosis(spike), 100 - 5 + 1 / 99)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 50))
    np.testing.assert_allclose(maps.map_kurtosis(x), scipy.stats.kurtosis(x, axis=1))
    assert np.isnan(maps.map_kurtosis(np.ones(5)))


def test_class_summary():
    values = np.array([1.0, 3.0, 10.0, np.nan, 4.0])
    labels = np.array([0, 0, 1, 1, 2])
    s = maps.class_summary(values, labels, 4)
    assert s["n"] == 4 and s["mean"] == pytest.approx(4.5) and s["std"] == pytest.approx(np.std([1, 3, 10, 4]))
    np.testing.assert_array_equal(s["per_class"]["mean"], [2.0, 10.0, 4.0, np.nan])
    np.testing.assert_array_equal(s["per_class"]["std"], [1.0, 0.0, 0.0, np.nan])
    np.testing.assert_array_equal(s["per_class"]["n"], [2, 1, 1, 0])


def test_localisation_on_a_hand_made_map():
    table = tiny_table()
    #            S1(1000) S1(500) 1000/16Hz 1000/8Hz 500/8Hz
    local = np.array([[9.0, 0.0, 0.1, 2.0, 0.0],    # S1 is largest, but the top S2 path is at 8 Hz
                      [0.0, 0.0, 3.0, 1.0, 0.0],    # top S2 at 16 Hz
                      [0.0, 0.0, 3.0, 1.0, 0.0],
                      [0.0, 0.0, 0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(maps.peak_modulation_hz(local, table), [8.0, 16.0, 16.0, 8.0])
    f_m = np.array([5.0, 5.0, 8.0, np.nan])
    loc = maps.localisation(local, table, f_m)
    # 8 vs 5 Hz: 0.68 octave → hit; 16 vs 5: 1.68 → miss; 16 vs 8: exactly 1 octave → hit; NaN → excluded
    np.testing.assert_array_equal(loc, [1.0, 0.0, 1.0, np.nan])
    np.testing.assert_array_equal(maps.localisation(local, table, f_m, octaves=0.5), [0.0, 0.0, 0.0, np.nan])
    score = maps.class_summary(loc, np.array([0, 0, 1, 1]), 2)
    assert score["mean"] == pytest.approx(2 / 3) and score["n"] == 3
    np.testing.assert_array_equal(score["per_class"]["mean"], [0.5, 1.0])
    # misses: example 1 peaks at 16 Hz, 1.68 octaves above 5 Hz; with F0 = 20 Hz it counts as "near F0"
    assert maps.localisation_misses(local, table, f_m) == dict(n=3, localised=2, misses=1, near_f0=0, above=1,
                                                               below=0)
    f0 = np.array([440.0, 20.0, 440.0, 440.0])
    assert maps.localisation_misses(local, table, f_m, f0)["near_f0"] == 1
    # rates 40 Hz (16 Hz peak: 1.3 octaves below) and 1 Hz (8 Hz peak: 3 octaves above)
    assert maps.localisation_misses(local, table, np.array([5.0, 40.0, 8.0, 1.0])) == dict(
        n=4, localised=2, misses=2, near_f0=0, above=1, below=1)
    with pytest.raises(ParameterError, match=r"f0_hz must have shape \(4,\)"):
        maps.localisation_misses(local, table, f_m, f0[:2])
    s1_only = {k: v[:2] for k, v in table.items()}
    with pytest.raises(ParameterError, match="no second-order paths"):
        maps.localisation(local[:, :2], s1_only, f_m)
    with pytest.raises(ParameterError, match=r"modulation_hz must have shape \(4,\)"):
        maps.localisation(local, table, f_m[:2])


def test_s1_share():
    table = tiny_table()
    R = np.zeros((2, 5, 2))
    R[0, 0] = [1.0, -1.0]     # |S1| = 2
    R[0, 3] = [3.0, 3.0]      # |S2| = 6
    R[1, 2] = [1.0, 1.0]      # S2 only
    np.testing.assert_allclose(maps.s1_share(R, table), [0.25, 0.0])
    np.testing.assert_allclose(maps.s1_share(R, table, mode="positive"), [1 / 7, 0.0])
    assert np.isnan(maps.s1_share(np.zeros((5, 3)), table))
    with pytest.raises(ParameterError, match="mode must be"):
        maps.s1_share(R, table, mode="signed")


def test_maps_does_not_import_torch():
    # scatterxai/__init__ imports the scattering module (torch): load the package namespace bare
    code = ("import importlib.util, sys, types; pkg = types.ModuleType('scatterxai'); pkg.__path__ = "
            "[__import__('os').path.dirname(importlib.util.find_spec('scatterxai').origin)]; "
            "sys.modules['scatterxai'] = pkg; import scatterxai.maps; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
