"""Every attribution method through the explain stage (NaN rows for a subset method), the unmodulated
baseline of synthetic notes, and the compare command end to end."""

import json

import h5py
import numpy as np
import pytest
import torch

from scatterxai import cli
from scatterxai.analysis.compare import CompareConfig, compare_relevance
from scatterxai.audio import load_prepared
from scatterxai.data.synth import corpus_columns, make_note_spec, render_note, write_note
from scatterxai.errors import ParameterError
from scatterxai.explain import ExplainConfig, attribute, available_methods, explain, stratified_rows
from scatterxai.explain.baselines import note_specs, synthetic_features
from scatterxai.features import FeatureFile, write_features
from scatterxai.io.relevance import RelevanceFile, format_summary
from scatterxai.maps.compare_study import compare_study
from scatterxai.model import ConvNet, load_model, save_model
from scatterxai.scattering import ScatteringConfig, path_table, scatter
from scatterxai.task import CLASSES

#: smaller than the suite's SMALL (89 paths × 32 frames): ten methods run here
SMALL = ScatteringConfig(N=2 ** 12, J=5, Q=(4, 2), T=2 ** 7)
K_ALL = 20


def _model(root, name, table, mu, seed=1):
    torch.manual_seed(seed)
    net = ConvNet(len(table), n_classes=5)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    config = {"input": "s1s2", "n_channels": len(table), "channels": np.arange(len(table)), "n_paths": len(table),
              "mu": mu, "c": 0.1, "classes": list(CLASSES), "scattering": SMALL.to_dict(),
              "paths": {k: np.asarray(getattr(table, k)) for k in table.FIELDS}}
    return save_model(net, root / name, config)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("methods")
    rng = np.random.default_rng(0)
    table = path_table(SMALL)
    S = rng.gamma(2.0, 1.0, size=(K_ALL, len(table), table.n_frames)).astype(np.float32)
    examples = {"file_name": np.array([f"n{i:02d}.wav" for i in range(K_ALL)], dtype=object),
                "label": np.arange(K_ALL) % 5, "subset": np.array(["test"] * K_ALL, dtype=object),
                "modulation_hz": rng.uniform(4, 32, K_ALL)}
    features = root / "features.h5"
    write_features(features, S, examples, SMALL, classes=CLASSES)
    with FeatureFile(features) as ff:
        mu = ff.mu
    return {"root": root, "features": features, "model": _model(root, "model", table, mu), "table": table}


@pytest.fixture(scope="module")
def exported(data):
    out = data["root"] / "R.h5"
    config = ExplainConfig(methods=available_methods(), batch_size=8,
                           method_params={"integrated_gradients": {"steps": 8}, "smoothgrad": {"n": 3}},
                           max_per_class={"integrated_gradients": 2, "smoothgrad": 2})
    explain(data["features"], model_dir=data["model"], out=out, config=config, progress=False)
    return out


def test_stratified_rows():
    groups = np.array([0, 1, 0, 0, 2, 0, 1, 0])
    np.testing.assert_array_equal(stratified_rows(groups, None), np.arange(8))
    # class 0 has rows 0, 2, 3, 5, 7: two of them at positions ⌊(i + ½)·5/2⌋ = 1, 3 → rows 2, 5
    np.testing.assert_array_equal(stratified_rows(groups, 2), [1, 2, 4, 5, 6])
    np.testing.assert_array_equal(stratified_rows(groups, 5), np.arange(8))


def test_every_method_exported_with_nan_rows_for_a_subset(data, exported):
    model = load_model(data["model"])
    with h5py.File(exported, "r") as f:
        x = f["features"][()]
        assert list(f.attrs["methods"]) == available_methods()
        assert list(f.attrs["rules"]) == available_methods("lrp")
        assert {"lrp0", "epsilon", "epsilon_plus", "epsilon_conv_zplus_dense"} <= set(f.attrs["rules"])
        for group in ("relevance", "local", "aggregate", "kurtosis", "conservation", "localisation",
                      "explained_rows"):
            assert sorted(f[group]) == sorted(available_methods())
        assert list(f["completeness"]) == ["integrated_gradients"]
        assert f["relevance/integrated_gradients"].attrs["steps"] == 8
        assert f["relevance/integrated_gradients"].attrs["baseline"] == "zero"
        assert f["relevance/smoothgrad"].attrs["noise_level"] == 0.1
        assert f["relevance/occlusion"].attrs["groups"] == "lambda2"
        assert f["relevance/occlusion"].attrs["fill"] == "training_mean"
        assert f["relevance/deconvnet"].attrs["layer"] == "logit"
        assert f["relevance/epsilon_plus"].attrs["conv"] == "zplus"
        rows = stratified_rows(f["examples/label"][()], 2)
        assert len(rows) == 10
        np.testing.assert_array_equal(f["explained_rows/integrated_gradients"][()], rows)
        np.testing.assert_array_equal(f["explained_rows/gradient"][()], np.arange(K_ALL))
        assert f["relevance/integrated_gradients"].attrs["n_explained"] == 10
        others = np.setdiff1d(np.arange(K_ALL), rows)
        for group in ("relevance", "local", "kurtosis", "conservation", "localisation", "completeness"):
            values = f[f"{group}/integrated_gradients"][()]
            assert np.isnan(values[others]).all(), group
            assert np.isfinite(values[rows]).all(), group
        assert f["aggregate/integrated_gradients"][()].sum() == 10 * 5
        # the exported maps are the methods' own, on the explained rows, for the explained class
        explained = f["examples/explained"][()]
        for name, params in (("gradient", {}), ("integrated_gradients", {"steps": 8}), ("smoothgrad", {"n": 3}),
                             ("occlusion", {"paths": model.paths, "mean_input": model.mean_input()})):
            r = rows if name in ("integrated_gradients", "smoothgrad") else np.arange(K_ALL)
            res = attribute(model.net, x[r], method=name, target=explained[r], batch_size=8, **params)
            np.testing.assert_allclose(f[f"relevance/{name}"][()][r], res.relevance, rtol=1e-4,
                                       atol=1e-5 * np.abs(res.relevance).max())
        comp = f["completeness/integrated_gradients"][()][rows]
        assert np.median(np.abs(comp - 1)) < 0.2   # 8 steps: roughly complete
        # NaN rows occupy no space: the IG dataset stores only its 10 chunks
        assert f["relevance/integrated_gradients"].id.get_storage_size() <= 10 * x[0].nbytes


def test_reader_ignores_nan_rows(data, exported):
    with RelevanceFile(exported) as rf:
        rows = rf.explained_rows("integrated_gradients")
        np.testing.assert_array_equal(rf.common_rows(), rows)
        np.testing.assert_array_equal(rf.common_rows(["gradient", "epsilon"]), np.arange(K_ALL))
        summary = rf.summary()
        s = summary["rules"]["integrated_gradients"]
        assert s["n_explained"] == 10 and s["kurtosis"]["n"] == 10
        assert s["kurtosis"]["mean"] == pytest.approx(np.nanmean(rf.kurtosis("integrated_gradients")))
        assert s["s1_share"]["n"] == 10 and s["completeness"]["n"] == 10
        assert summary["rules"]["gradient"]["completeness"] is None
        assert rf.localisation_misses("integrated_gradients")["n"] == 10
        assert "IG completeness" in format_summary(summary, rf.classes)


def test_method_options_and_errors(data, tmp_path):
    out = tmp_path / "d.h5"
    code = cli.main(["explain", str(data["features"]), "--model", str(data["model"]), "--methods",
                     "deconvnet,occlusion", "--deconvnet-layer", "conv1", "--deconvnet-channel", "3",
                     "--occlusion-groups", "cell", "--occlusion-fill", "zero", "--out", str(out), "-q"])
    assert code == 0
    with h5py.File(out, "r") as f:
        assert f["relevance/deconvnet"].attrs["layer"] == "conv1" and f["relevance/deconvnet"].attrs["channel"] == 3
        assert f["relevance/occlusion"].attrs["groups"] == "cell" and f["relevance/occlusion"].attrs["fill"] == "zero"
        assert list(f.attrs["rules"]) == []
    with pytest.raises(ParameterError, match="--ig-steps is a parameter of integrated_gradients"):
        cli._explain_config(cli.build_parser().parse_args(
            ["explain", "F", "--model", "M", "--out", "O", "--ig-steps", "5"]))
    with pytest.raises(ParameterError, match="max_per_class names methods"):
        ExplainConfig(methods=["epsilon"], max_per_class={"smoothgrad": 3})
    with pytest.raises(ParameterError, match="explain.. cannot supply"):
        explain(data["features"], model_dir=data["model"], out=out, methods=["integrated_gradients"],
                method_params={"integrated_gradients": {"baseline": "given"}}, progress=False)
    # every method and every option with a flag is on the command line; the defaults --help shows are the
    # methods' own
    from scatterxai.explain import REGISTRY, get_explainer
    explain_parser = cli.build_parser()._subparsers._group_actions[0].choices["explain"]
    helps = {a.dest: a.help for a in explain_parser._actions}
    assert all(m in helps["methods"] for m in available_methods())
    options = cli.method_options()
    assert {(m, p.name) for m, p in options.values()} == {
        (m, p.name) for m in available_methods() for p in REGISTRY[m].parameters if p.flag}
    assert options["ig_steps"][0] == "integrated_gradients" and options["deconvnet_channel"][1].name == "channel"
    for dest, (method, param) in options.items():
        if method != "occlusion" and param.default is not None:
            assert f"[{get_explainer(method).params().get(param.name, param.default)}]" in helps[dest], dest


def test_compare_command_end_to_end(data, exported, tmp_path):
    out = tmp_path / "cmp"
    code = cli.main(["compare", str(exported), "--out", str(out), "--max-pairs", "6", "--emd-max-pairs", "2",
                     "--methods", "epsilon_plus,gradient,integrated_gradients", "--mode", "abs", "-q"])
    assert code == 0
    result = json.loads((out / "compare.json").read_text())
    assert result["metrics"] == ["mean_diff", "kl", "js", "emd", "emd_lambda1", "emd_lambda2"]
    assert result["normalisation"] == "abs" and result["rows"] == 10
    assert sorted(result["between_methods"]) == ["epsilon_plus|gradient", "epsilon_plus|integrated_gradients",
                                                 "gradient|integrated_gradients"]
    leaf = result["within_class"]["gradient"]["vibrato"]
    assert set(leaf) == set(result["metrics"]) and set(leaf["js"]) == {"mean", "std", "n_pairs"}
    assert leaf["js"]["n_pairs"] == 1                      # 2 notes per class among the common rows
    assert result["n_available"]["between_class"] == 40 and result["between_class"]["gradient"]["js"]["n_pairs"] <= 6
    assert result["between_class"]["gradient"]["emd"]["n_pairs"] <= 2
    assert 0 < result["between_methods"]["epsilon_plus|gradient"]["js"]["mean"] <= np.log(2)
    assert result["between_methods"]["epsilon_plus|gradient"]["js"]["n_pairs"] == 6
    # the numbers are those of the study function on the common rows
    with RelevanceFile(exported) as rf:
        rows = rf.common_rows()
        local = {m: rf.local(m)[rows] for m in ("epsilon_plus", "gradient", "integrated_gradients")}
        expected = compare_study(local, rf.labels[rows], rf.classes, rf.paths, metrics=["js"], max_pairs=6,
                                 mode="abs")
    assert result["between_methods"]["epsilon_plus|gradient"]["js"] == \
        pytest.approx(expected["between_methods"]["epsilon_plus|gradient"]["js"])
    md = (out / "compare.md").read_text()
    assert "| Integrated Gradients | `integrated_gradients` | 10 |" in md and "JS to LRP-[ε,z+]" in md
    assert (out / "compare_boxplots.png").stat().st_size > 0 and (out / "compare_agreement.png").stat().st_size > 0
    # the pipeline's setting: the costly 2-D EMD only between methods, for the pairs with one method
    scoped = compare_relevance(exported, tmp_path / "scoped", CompareConfig(
        methods=("gradient", "epsilon_plus", "occlusion"), max_pairs=4, emd_max_pairs=3,
        emd_scope="between_methods", emd_reference="epsilon_plus", mode="abs"), figures=True)
    assert sorted(scoped["between_methods"]) == ["epsilon_plus|occlusion", "gradient|epsilon_plus",
                                                 "gradient|occlusion"]
    assert scoped["between_methods"]["gradient|epsilon_plus"]["emd"]["n_pairs"] == 3
    assert scoped["between_methods"]["epsilon_plus|occlusion"]["emd"]["n_pairs"] == 3
    assert "emd" not in scoped["between_methods"]["gradient|occlusion"]
    assert scoped["between_methods"]["gradient|occlusion"]["js"]["n_pairs"] == 4
    assert "emd" not in scoped["within_class"]["gradient"]["trill"] and "emd" not in scoped["between_class"]["gradient"]
    assert scoped["within_class"]["gradient"]["trill"]["emd_lambda2"]["n_pairs"] == 4
    md = (tmp_path / "scoped" / "compare.md").read_text()
    assert "the 2-D EMD only between methods, only for the pairs with epsilon_plus, on at most 3" in md
    assert "| gradient | `gradient` | 20 |" in md
    with pytest.raises(ParameterError, match="reference must be one of the compared methods"):
        compare_relevance(exported, out, CompareConfig(methods=("gradient", "epsilon"), reference="lrp0"),
                          figures=False)


# ---------------------------------------------------------------------------------------------- baseline

@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Three synthetic notes (one with a drawn pitch, one with every realism factor) → WAVs, meta columns,
    features (SMALL), a model."""
    root = tmp_path_factory.mktemp("synthetic")
    specs = [make_note_spec("Violin", "tremolo", pitch="A4", seed=3, index=0, source_file="Vn-trem-A4-mf.wav"),
             make_note_spec("Flute", "flatterzunge", pitch=None, seed=3, index=1),
             make_note_spec("Clarinet-Bb", "trill-minor-second-up", pitch="C5", seed=3, index=2, realism="all")]
    columns = corpus_columns(specs, seed=3)
    columns["subset"] = np.array(["test"] * 3, dtype=object)
    signals = []
    for spec in specs:
        path = root / spec.file_name
        write_note(spec, path)
        signals.append(load_prepared(str(path), SMALL))
    S = scatter(np.stack(signals), SMALL, device="cpu").numpy()
    features = root / "features.h5"
    write_features(features, S, columns, SMALL, classes=CLASSES)
    with FeatureFile(features) as ff:
        mu = ff.mu
        examples = ff.examples
    return {"root": root, "specs": specs, "S": S, "features": features, "examples": examples,
            "model": _model(root, "model", path_table(SMALL), mu)}


def test_unmodulated_rendering_keeps_the_note_and_removes_the_technique():
    spec = make_note_spec("Violin", "tremolo", pitch="A4", seed=0, index=7)
    y = render_note(spec)
    y0 = render_note(spec, modulated=False)
    np.testing.assert_array_equal(render_note(spec, modulated=True), y)
    assert y0.shape == y.shape

    def am_depth(signal):   # envelope spectrum at the tremolo rate over the modulated segment
        from scipy.signal import hilbert
        sr = 44100
        seg = np.abs(hilbert(signal))[int((spec.onset_s + 0.3) * sr):int((spec.onset_s + spec.duration_s - 0.3) * sr)]
        spectrum, freqs = np.abs(np.fft.rfft(seg)), np.fft.rfftfreq(len(seg), 1 / sr)
        k = np.argmin(np.abs(freqs - spec.modulation_hz))
        return 2 * spectrum[k - 3:k + 4].max() / spectrum[0]

    assert am_depth(y) > 10 * am_depth(y0)


def test_synthetic_features_reproduce_the_corpus_and_the_baseline_differs(synthetic):
    examples = synthetic["examples"]
    specs = note_specs(examples, seed=3)
    assert specs == synthetic["specs"]
    S = synthetic_features(examples, SMALL, seed=3, modulated=True, device="cpu")
    np.testing.assert_allclose(S, synthetic["S"], rtol=1e-4, atol=1e-6 * np.abs(S).max())
    S0 = synthetic_features(examples, SMALL, seed=3, device="cpu")
    assert S0.shape == S.shape and not np.allclose(S0, S, rtol=0.05)
    with pytest.raises(Exception, match="not reproduced by the synthetic generator with seed 4"):
        note_specs(examples, seed=4)


def test_integrated_gradients_with_the_unmodulated_baseline(synthetic):
    out = synthetic["root"] / "R.h5"
    code = cli.main(["explain", str(synthetic["features"]), "--model", str(synthetic["model"]), "--methods",
                     "integrated_gradients", "--ig-baseline", "unmodulated", "--synth-seed", "3", "--ig-steps", "4",
                     "--out", str(out), "-q"])
    assert code == 0
    model = load_model(synthetic["model"])
    x0 = model.prepare(synthetic_features(synthetic["examples"], SMALL, seed=3, device="cpu"))
    with h5py.File(out, "r") as f:
        attrs = f["relevance/integrated_gradients"].attrs
        assert attrs["baseline"] == "unmodulated" and attrs["synth_seed"] == 3 and attrs["steps"] == 4
        x = f["features"][()]
        res = attribute(model.net, x, method="integrated_gradients", steps=4, baseline="given",
                        per_example={"baseline": x0}, target=f["examples/explained"][()])
        np.testing.assert_allclose(f["relevance/integrated_gradients"][()], res.relevance, rtol=1e-4,
                                   atol=1e-5 * np.abs(res.relevance).max())
        np.testing.assert_allclose(f["completeness/integrated_gradients"][()], res.completeness, rtol=1e-4)
