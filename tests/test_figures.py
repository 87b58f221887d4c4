"""The study's figures: formats and resolution, integer count colour bars, row-normalised confusion."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from scatterxai.errors import ParameterError  # noqa: E402
from scatterxai.report import FIGURE_FILES, figure_files, make_figures  # noqa: E402
from scatterxai.task import CLASSES  # noqa: E402
from scatterxai.viz import plots  # noqa: E402

from ._small_run import make_small_run  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = make_small_run(tmp_path_factory.mktemp("figures"))
    cm = np.diag([4, 5, 6, 7, 0]) + 1
    cm[4] = 0                                              # a class without test examples
    metrics = {}
    for name in ("s1", "s1s2"):
        metrics[name] = out["root"] / f"metrics_{name}.json"
        metrics[name].write_text(json.dumps({"confusion_matrix": cm.tolist(), "classes": list(CLASSES),
                                             "macro_accuracy": 0.5}))
    out["metrics"] = metrics
    return out


def test_confusion_row_normalised_writes_percentages():
    fig, (a, b) = plt.subplots(1, 2)
    cm = [[3, 1, 0], [0, 4, 0], [0, 0, 0]]
    counts = plots.confusion(cm, ["a", "b", "c"], ax=a)
    shares = plots.confusion(cm, ["a", "b", "c"], ax=b, normalize=True)
    np.testing.assert_allclose(shares.get_array(), counts.get_array())        # same colours
    np.testing.assert_allclose(shares.get_array(), [[0.75, 0.25, 0], [0, 1, 0], [0, 0, 0]])
    assert [t.get_text() for t in a.texts][:3] == ["3", "1", "0"]
    assert [t.get_text() for t in b.texts] == ["75.0", "25.0", "0.0", "0.0", "100.0", "0.0", "–", "–", "–"]


def test_count_colour_bar_has_integer_ticks():
    lam1, lam2 = np.array([100.0, 200.0, 400.0]), np.array([0.0, 4.0, 8.0])
    counts = np.array([[0, 1, 3], [2, 0, 1], [np.nan, 0, 3]])
    fig, ax = plt.subplots()
    mesh = plots.lambda_map(counts, lam1, lam2, ax=ax, vmin=0, integer=True)
    fig.canvas.draw()
    ticks = mesh.colorbar.get_ticks()
    assert len(ticks) >= 2 and np.all(ticks == np.round(ticks))
    fig2, ax2 = plt.subplots()
    plain = plots.lambda_map(counts, lam1, lam2, ax=ax2, vmin=0)
    fig2.canvas.draw()
    assert np.any(plain.colorbar.get_ticks() != np.round(plain.colorbar.get_ticks()))   # the default has halves


def test_vector_formats(run, tmp_path):
    # without metrics files, the confusion matrix is the explained model's on the explained rows
    for fmt, metrics in (("pdf", run["metrics"]), ("svg", {})):
        written = make_figures(run["relevance"], metrics, audio_root=str(tmp_path / "no-audio"),
                               out_dir=str(tmp_path / "f"), fmt=fmt, dpi=20)
        names = figure_files(fmt)
        assert written == {k: str(tmp_path / "f" / v) for k, v in names.items()}
        for path in written.values():
            data = open(path, "rb").read()
            assert data.startswith(b"%PDF") if fmt == "pdf" else b"<svg" in data[:2000]
            assert b"CreationDate" not in data and b"<dc:date>" not in data   # same inputs, same bytes


def test_png_resolution(run, tmp_path):
    written = make_figures(run["relevance"], run["metrics"], audio_root=str(tmp_path / "no-audio"),
                           out_dir=str(tmp_path / "f"), dpi=30)
    assert written["fig2"].endswith(FIGURE_FILES["fig2"])
    assert plt.imread(written["fig2"]).shape[:2] == (round(6.6 * 30), round(3.6 * 5 * 30))   # figsize × dpi
    assert plt.imread(written["confusion"]).shape[:2] == (round(8.4 * 30), round(4.6 * 2 * 30))


def test_bad_format_and_dpi(run, tmp_path):
    with pytest.raises(ParameterError, match="fmt must be one of"):
        make_figures(run["relevance"], {}, audio_root=str(tmp_path / "no-audio"), out_dir=str(tmp_path / "f"),
                     fmt="jpg")
    with pytest.raises(ParameterError, match="dpi must be a positive"):
        make_figures(run["relevance"], {}, audio_root=str(tmp_path / "no-audio"), out_dir=str(tmp_path / "f"),
                     dpi=0)
