"""Figures of the comparison study: what is drawn, not how it looks."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from scatterxai.errors import ParameterError
from scatterxai.maps.compare_study import compare_study, study_values
from scatterxai.viz.compare import agreement_matrix, metric_boxplot


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_metric_boxplot_one_box_per_nonempty_group():
    values = {"lrp": {"trill": {"js": np.array([0.1, 0.3, np.nan])}, "vibrato": {"js": np.array([])}},
              "ig": {"trill": {"js": np.array([0.2, 0.4])}, "vibrato": {"js": np.array([0.5])}}}
    between = {"lrp": {"js": np.array([0.6, 0.7])}, "ig": {"js": np.array([0.65])}}
    _, ax = plt.subplots()
    artists = metric_boxplot(values, "js", between=between, ax=ax)
    assert len(artists["boxes"]) == 5  # lrp/vibrato is empty
    medians = sorted(float(np.mean(m.get_ydata())) for m in artists["medians"])
    np.testing.assert_allclose(medians, [0.2, 0.3, 0.5, 0.65, 0.65])  # NaN dropped from lrp/trill
    assert [t.get_text() for t in ax.get_xticklabels()] == ["trill", "vibrato", "between classes"]
    assert ax.get_ylabel() == "js (nats)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lrp", "ig"]
    plt.figure()
    metric_boxplot(values, "js", methods=["ig"])
    assert plt.gca().get_legend() is None and len(plt.gca().patches) == 2
    with pytest.raises(ParameterError, match="metric must be one of"):
        metric_boxplot(values, "cosine")
    with pytest.raises(ParameterError, match="methods must be"):
        metric_boxplot(values, "js", methods=["occlusion"])


def test_agreement_matrix_cells():
    between = {"a|b": {"js": {"mean": 0.2, "std": 0.0, "n_pairs": 3}, "kl": {"mean": 1.0, "std": 0, "n_pairs": 3}},
               "a|c": {"js": {"mean": 0.4, "std": 0.0, "n_pairs": 3}, "kl": {"mean": 2.0, "std": 0, "n_pairs": 3}},
               "c|a": {"js": {"mean": 0.4, "std": 0.0, "n_pairs": 3}, "kl": {"mean": 3.0, "std": 0, "n_pairs": 3}}}
    im = agreement_matrix(between, "js")
    np.testing.assert_allclose(im.get_array().filled(np.nan), [[0, 0.2, 0.4], [0.2, 0, np.nan], [0.4, np.nan, 0]])
    plt.figure()
    im = agreement_matrix(between, "kl", methods=["c", "b", "a"])
    # asymmetric: (b, a) not computed stays blank; (c, a) and (a, c) both computed
    np.testing.assert_allclose(im.get_array().filled(np.nan), [[0, np.nan, 3], [np.nan, 0, np.nan], [2, 1, 0]])
    assert len(plt.gca().texts) == 6
    with pytest.raises(ParameterError, match="'a|b'"):
        agreement_matrix({"abc": {"js": 0.1}}, "js")
    with pytest.raises(ParameterError, match="has no 'emd'"):
        agreement_matrix(between, "emd")


def test_figures_from_a_real_study(rng):
    t = {"order": np.array([1, 2, 2] * 4), "lambda1_hz": np.repeat([100.0, 200, 400, 800], 3),
         "lambda2_hz": np.array([np.nan, 4.0, 8.0] * 4)}
    labels = np.array([0, 0, 0, 1, 1])
    maps = {"m1": rng.normal(size=(5, 12)), "m2": rng.normal(size=(5, 12))}
    values = study_values(maps, labels, ["x", "y"], t, metrics=["emd", "kl"])
    metric_boxplot(values["within_class"], "emd", between=values["between_class"])
    plt.figure()
    im = agreement_matrix(compare_study(maps, labels, ["x", "y"], t, metrics=["emd"])["between_methods"], "emd")
    expected = np.nanmean(values["between_methods"]["m1|m2"]["emd"])
    assert im.get_array()[0, 1] == pytest.approx(expected) and im.get_array()[1, 0] == pytest.approx(expected)
    plt.figure()
    assert agreement_matrix(values["between_methods"], "emd").get_array()[0, 1] == pytest.approx(expected)
