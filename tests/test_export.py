"""Relevance export: explain() → RELEVANCE.h5 read back with bare h5py, the reader, the summary, atomicity."""

import h5py
import numpy as np
import pytest
import torch

from scatterxai import cli, maps
from scatterxai.errors import OutputError, ParameterError
from scatterxai.explain import attribute, explain
from scatterxai.features import FeatureFile, write_features
from scatterxai.io.relevance import RelevanceFile, format_summary
from scatterxai.model import ConvNet, load_model, save_model
from scatterxai.scattering import path_table
from scatterxai.task import CLASSES

from .conftest import SMALL

K_ALL = 16


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A features file (SMALL config) and two random-weight models reading all paths or S1 only."""
    root = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(0)
    table = path_table(SMALL)
    S = rng.gamma(2.0, 1.0, size=(K_ALL, len(table), table.n_frames)).astype(np.float32)
    examples = {
        "file_name": np.array([f"note_{i:02d}.wav" for i in range(K_ALL)], dtype=object),
        "label": np.arange(K_ALL) % 5,
        "subset": np.array(["training"] * 6 + ["test"] * 10, dtype=object),
        "modulation_hz": np.where(np.arange(K_ALL) == 9, np.nan, rng.uniform(4, 32, K_ALL)),
        "instrument": np.array(["Vn", "Fl"] * (K_ALL // 2), dtype=object),
    }
    features = root / "features.h5"
    write_features(features, S, examples, SMALL, classes=CLASSES)  # integer labels are named by a class list
    with FeatureFile(features) as ff:
        mu = ff.mu
    models = {}
    for name, channels in (("s1s2", np.arange(len(table))), ("s1", table.s1)):
        torch.manual_seed(1)
        net = ConvNet(len(channels), n_classes=5)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
        config = {"input": name, "n_channels": len(channels), "channels": channels, "n_paths": len(table),
                  "mu": mu[channels], "c": 0.1, "classes": list(CLASSES), "scattering": SMALL.to_dict(),
                  "paths": {k: np.asarray(getattr(table, k))[channels] for k in table.FIELDS}}
        models[name] = save_model(net, root / f"model_{name}", config)
    return {"root": root, "features": features, "models": models, "table": table, "examples": examples}


@pytest.fixture(scope="module")
def exported(data):
    out = data["root"] / "RELEVANCE.h5"
    explain(data["features"], model_dir=data["models"]["s1s2"], methods="epsilon,epsilon_plus", out=out,
            top_n=3, batch_size=4, progress=False)
    return out


def test_export_read_back_with_bare_h5py(data, exported):
    model = load_model(data["models"]["s1s2"])
    with FeatureFile(data["features"]) as ff:
        rows = ff.indices("test")
        x = model.prepare(ff.load(rows))
        logits = model.logits(ff.load(rows))
    labels = data["examples"]["label"][rows]
    table = data["table"]
    with h5py.File(exported, "r") as f:
        np.testing.assert_array_equal(f["features"][()], x.numpy())
        assert f["features"].dtype == np.float32
        np.testing.assert_allclose(f["examples/logits"][()], logits, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(f["examples/pred"][()], logits.argmax(axis=1))
        np.testing.assert_array_equal(f["examples/explained"][()], f["examples/pred"][()])
        np.testing.assert_array_equal(f["examples/label"][()], labels)
        assert list(f["examples/file_name"].asstr()[()]) == [f"note_{i:02d}.wav" for i in rows]
        assert list(f["examples/instrument"].asstr()[()]) == list(data["examples"]["instrument"][rows])
        for k in table.FIELDS:
            np.testing.assert_array_equal(f[f"paths/{k}"][()], getattr(table, k))
        assert f.attrs["target"] == "pred" and f.attrs["epsilon"] == 1e-6 and f.attrs["top_n"] == 3
        assert list(f.attrs["rules"]) == ["epsilon", "epsilon_plus"]
        assert list(f.attrs["classes"]) == list(CLASSES)
        assert f.attrs["model_checksum"] == model.checksum
        assert f.attrs["N"] == SMALL.N and f.attrs["J"] == SMALL.J and list(f.attrs["Q"]) == [8, 2]
        for key in ("scatterxai_version", "zennit_version", "kymatio_version", "torch_version"):
            assert f.attrs[key]
        modulation = data["examples"]["modulation_hz"][rows]
        for rule in ("epsilon", "epsilon_plus"):
            res = attribute(model.net, x, method=rule, batch_size=4)
            R = f[f"relevance/{rule}"][()]
            assert R.shape == x.shape and R.dtype == np.float32
            np.testing.assert_allclose(R, res.relevance, rtol=1e-5, atol=1e-5 * np.abs(R).max())
            local = f[f"local/{rule}"][()]
            np.testing.assert_allclose(local, R.mean(axis=-1), rtol=1e-5, atol=1e-9)
            agg = f[f"aggregate/{rule}"]
            assert agg.attrs["top_n"] == 3 and agg.attrs["grouped_by"] == "label"
            np.testing.assert_array_equal(agg[()], maps.topn_aggregate(local, labels, 5, n=3))
            np.testing.assert_allclose(f[f"kurtosis/{rule}"][()], maps.map_kurtosis(local))
            np.testing.assert_allclose(f[f"conservation/{rule}"][()], res.conservation, rtol=1e-4)
            loc = f[f"localisation/{rule}"][()]
            np.testing.assert_array_equal(loc, maps.localisation(local, table, modulation))
            assert np.isnan(loc[list(rows).index(9)]) and np.isfinite(np.delete(loc, list(rows).index(9))).all()


def test_readme_snippet_redraws_maps(data, exported):
    # the README's bare-h5py recipe, verbatim in logic
    with h5py.File(exported, "r") as f:
        rule, k = "epsilon_plus", 2
        row, col = f["grid/row"][()], f["grid/col"][()]
        lam1, lam2 = f["grid/lambda1_hz"][()], f["grid/lambda2_hz"][()]
        grid = np.full((lam1.size, lam2.size), np.nan)
        grid[row, col] = f[f"local/{rule}"][k]
        agg = np.full((len(f.attrs["classes"]), lam1.size, lam2.size), np.nan)
        agg[:, row, col] = f[f"aggregate/{rule}"][()]
        local = f[f"local/{rule}"][k]
        aggregate = f[f"aggregate/{rule}"][()]
    expected, l1, l2 = maps.grid_layout(local, data["table"])
    np.testing.assert_array_equal(grid, expected)
    np.testing.assert_array_equal(lam1, l1)
    np.testing.assert_array_equal(lam2, l2)
    np.testing.assert_array_equal(agg, maps.grid_layout(aggregate, data["table"])[0])
    with RelevanceFile(exported) as rf:
        np.testing.assert_array_equal(rf.to_grid(local), grid)


def test_reader_and_summary(data, exported):
    with RelevanceFile(exported) as rf:
        assert rf.rules == ("epsilon", "epsilon_plus") and rf.classes == CLASSES and len(rf) == 10
        labels = rf.labels
        summary = rf.summary()
        assert summary["grouped_by"] == "label" and summary["n_examples"] == 10
        for rule in rf.rules:
            s = summary["rules"][rule]
            kurt = rf.kurtosis(rule)
            assert s["kurtosis"]["mean"] == pytest.approx(kurt.mean())
            assert s["kurtosis"]["std"] == pytest.approx(kurt.std())
            np.testing.assert_allclose(s["kurtosis"]["per_class"]["mean"],
                                       [kurt[labels == c].mean() for c in range(5)])
            share = maps.s1_share(rf.relevance(rule), rf.paths)
            assert s["s1_share"]["mean"] == pytest.approx(share.mean())
            np.testing.assert_allclose(rf.s1_share(rule, block=3), share)
            loc = rf.localisation(rule)
            assert s["localisation"]["mean"] == pytest.approx(np.nanmean(loc)) and s["localisation"]["n"] == 9
            misses = rf.localisation_misses(rule)
            assert misses["n"] == 9 and misses["localised"] == int(np.nansum(loc))
            assert misses["misses"] == misses["near_f0"] + misses["above"] + misses["below"] == 9 - np.nansum(loc)
        table = format_summary(summary, rf.classes)
        assert "| epsilon_plus | kurtosis |" in table and "localised" in table and "vibrato" in table
        with pytest.raises(ParameterError, match="method 'lrp0' is not in"):
            rf.local("lrp0")


def test_true_target_s1_model_and_cli(data, tmp_path):
    out = tmp_path / "s1.h5"
    code = cli.main(["explain", str(data["features"]), "--model", str(data["models"]["s1"]), "--rules", "lrp0",
                     "--out", str(out), "--target", "true", "--subset", "all", "--top-n", "2"])
    assert code == 0
    with RelevanceFile(out) as rf:
        assert len(rf) == K_ALL and rf.attrs["target"] == "true"
        np.testing.assert_array_equal(rf.examples["explained"], data["examples"]["label"])
        assert rf.localisation("lrp0") is None  # an S1 model has no modulation axis
        assert rf.localisation_misses("lrp0") is None
        assert rf.grid.shape == (len(data["table"].s1), 1) and np.all(rf.paths["order"] == 1)
        assert rf.summary()["rules"]["lrp0"]["localisation"] is None


def test_errors_and_atomic_write(data, tmp_path, monkeypatch):
    out = tmp_path / "R.h5"
    with pytest.raises(ParameterError, match="unknown attribution method 'gamma'"):
        explain(data["features"], model_dir=data["models"]["s1s2"], methods=["gamma"], out=out, progress=False)
    with pytest.raises(ParameterError, match=r"target must be one of \['pred', 'true'\], got 'x'"):
        explain(data["features"], model_dir=data["models"]["s1s2"], methods=["epsilon"], out=out, target="x",
                progress=False)
    out.write_bytes(b"not ours")   # a file scatterxai did not write is never replaced
    with pytest.raises(OutputError, match="something scatterxai did not write"):
        explain(data["features"], model_dir=data["models"]["s1s2"], methods=["epsilon"], out=out, progress=False)
    assert out.read_bytes() == b"not ours"
    out.unlink()
    explain(data["features"], model_dir=data["models"]["s1s2"], methods=["epsilon"], out=out, progress=False)
    previous = out.read_bytes()   # an earlier result
    import scatterxai.explain.export as export
    calls = []

    def failing(*args, **kwargs):
        calls.append(kwargs["method"])
        if len(calls) == 2:
            raise RuntimeError("simulated crash")
        return attribute(*args, **kwargs)

    monkeypatch.setattr(export, "attribute", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        explain(data["features"], model_dir=data["models"]["s1s2"], methods=["epsilon", "epsilon_plus"], out=out,
                progress=False)
    assert out.read_bytes() == previous  # the old file is intact, no partial file remains
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R.h5"]
    with RelevanceFile(out) as rf:
        assert list(rf.methods) == ["epsilon"]
