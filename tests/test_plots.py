import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from scatterxai.data.notes import pitch_hz_from_name
from scatterxai.errors import ParameterError  # noqa: E402
from scatterxai.maps import grid_layout  # noqa: E402
from scatterxai.report import choose_examples  # noqa: E402
from scatterxai.scattering import PAPER_CONFIG, path_table  # noqa: E402
from scatterxai.viz import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _paper_grid():
    t = path_table(PAPER_CONFIG)
    v = np.where(t.order == 1, 0.5, np.exp(-np.log2(t.lambda2_hz / 8) ** 2 - np.log2(t.lambda1_hz / 440) ** 2))
    return grid_layout(v, t)


def test_map_edges_place_s1_left_of_every_lambda2_cell():
    _, lam1, lam2 = _paper_grid()
    y, x, x_s1 = plots.map_edges(lam1, lam2)
    assert len(y) == len(lam1) + 1 and len(x) == len(lam2) + 2  # + the blank column after S1
    assert np.all(np.diff(y) > 0) and np.all(np.diff(x) > 0)
    assert np.all((lam1 > y[:-1]) & (lam1 < y[1:]))
    assert np.all((lam2[1:] > x[2:-1]) & (lam2[1:] < x[3:]))
    assert x[0] < x_s1 < x[1] < x[2]
    with pytest.raises(ParameterError, match="must start with 0"):
        plots.map_edges(lam1, lam2[1:])


def test_lambda_map_draws_on_the_current_axes_and_returns_the_artist():
    grid, lam1, lam2 = _paper_grid()
    mesh = plots.lambda_map(grid, lam1, lam2, f0_hz=440)
    ax = plt.gca()
    assert mesh in ax.collections
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["0", "1", "8", "64", "512", "4096"]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    lo, hi = ax.get_ylim()
    assert lo >= 32 and hi <= 22050
    with pytest.raises(ParameterError, match="grid has shape"):
        plots.lambda_map(grid[:, 1:], lam1, lam2)


def test_symmetric_limits_for_signed_relevance():
    grid, lam1, lam2 = _paper_grid()
    fig, ax = plt.subplots()
    mesh = plots.lambda_map(grid - 0.2, lam1, lam2, ax=ax, symmetric=True, cmap="RdBu_r", colorbar=False)
    vmin, vmax = mesh.get_clim()
    assert vmin == -vmax and vmax == pytest.approx(np.nanmax(np.abs(grid - 0.2)))


def test_spectrogram_and_confusion():
    sr = 8000
    t = np.arange(sr) / sr
    fig, (a, b) = plt.subplots(1, 2)
    mesh = plots.spectrogram(np.sin(2 * np.pi * 440 * t), sr, ax=a, n_fft=1024, hop=256)
    assert mesh in a.collections and a.get_ylim() == (32.0, 4000.0)
    im = plots.confusion([[3, 1], [0, 4]], ["a", "b"], ax=b, title="t")
    np.testing.assert_allclose(im.get_array(), [[0.75, 0.25], [0, 1]])
    with pytest.raises(ParameterError, match="cm must have shape"):
        plots.confusion([[1, 2]], ["a", "b"])


def test_paper_figures_have_no_empty_panels():
    grid, lam1, lam2 = _paper_grid()
    sr = 8000
    audio = np.sin(2 * np.pi * 440 * np.arange(sr) / sr)
    cols = [dict(title=f"c{i}", audio=audio, sr=sr, f0_hz=440.0, S=grid, maps=[grid - 0.1, grid],
                 lambda1_hz=lam1, lambda2_hz=lam2) for i in range(3)]
    fig = plots.figure1(cols)
    assert all(ax.collections for ax in fig.axes if ax.get_label() != "<colorbar>")
    fig = plots.figure2(np.stack([grid] * 3), np.stack([np.nan_to_num(grid) * 3] * 3), lam1, lam2,
                        ["a", "b", "c"])
    assert len([ax for ax in fig.axes if ax.collections and ax.get_label() != "<colorbar>"]) == 6


def test_pitch_from_sol_names():
    assert pitch_hz_from_name("Vn-trem-A4-mf-1c.wav") == pytest.approx(440)
    assert pitch_hz_from_name("Fl-trill-maj2-G#6-mf.wav") == pytest.approx(440 * 2 ** (23 / 12))
    assert pitch_hz_from_name("Cb-trem-C#1-pp.wav") == pytest.approx(34.65, abs=0.01)
    assert np.isnan(pitch_hz_from_name("noise.wav"))


def test_choose_examples_prefers_correct_and_nearest_a4():
    labels = np.array([0, 0, 0, 1, 1])
    preds = np.array([0, 0, 1, 0, 0])
    f0 = np.array([110.0, 880.0, 440.0, 440.0, 300.0])
    assert choose_examples(labels, preds, f0, 3) == {0: 1, 1: 3}
