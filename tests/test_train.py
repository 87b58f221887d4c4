"""Tests of scatterxai.train: metrics, Table 1, training on a separable toy set, determinism, evaluation."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from scatterxai import cli
from scatterxai.errors import ModelError, ParameterError
from scatterxai.features import FeatureFile, write_features
from scatterxai.model import (
    TrainConfig,
    class_weights,
    classification_metrics,
    confusion_matrix,
    evaluate_model,
    input_channels,
    load_model,
    metrics_markdown,
    table1,
    train_model,
)
from scatterxai.scattering import ScatteringConfig, path_table

from .conftest import SMALL

CLASSES = ["vibrato", "trill", "tremolo", "bisbigliando", "flatterzunge"]
FAST = TrainConfig(max_epochs=12, patience=12)


# ------------------------------------------------------------------------------------------- metrics

def test_confusion_and_metrics_hand_made_case():
    # vibrato: 3 examples, 2 right; trill: 2 examples, both right; tremolo: 1, wrong (→ trill);
    # bisbigliando: 4, 1 right; flatterzunge: 0 examples (absent), but once predicted.
    y_true = [0, 0, 0, 1, 1, 2, 3, 3, 3, 3]
    y_pred = [0, 0, 1, 1, 1, 1, 3, 4, 0, 0]
    cm = confusion_matrix(y_true, y_pred, 5)
    assert cm.tolist() == [[2, 1, 0, 0, 0], [0, 2, 0, 0, 0], [0, 1, 0, 0, 0], [2, 0, 0, 1, 1], [0] * 5]
    m = classification_metrics(y_true, y_pred, CLASSES)
    acc = m["per_class_accuracy"]
    assert acc["vibrato"] == pytest.approx(2 / 3) and acc["trill"] == 1.0 and acc["tremolo"] == 0.0
    assert acc["bisbigliando"] == 0.25 and math.isnan(acc["flatterzunge"])
    assert m["macro_accuracy"] == pytest.approx((2 / 3 + 1 + 0 + 0.25) / 4)
    assert m["overall_accuracy"] == pytest.approx(5 / 10)
    assert m["absent_classes"] == ["flatterzunge"] and m["n_examples"] == 10
    assert m["class_counts"] == {"vibrato": 3, "trill": 2, "tremolo": 1, "bisbigliando": 4, "flatterzunge": 0}
    md = metrics_markdown(dict(m, input="s1", subset="test"))
    assert "| vibrato | 3 | 66.67 |" in md and "| flatterzunge | 0 | — |" in md
    assert "absent from this subset" in md and "| bisbigliando | 2 | 0 | 0 | 1 | 1 |" in md


def test_confusion_matrix_rejects_bad_labels():
    with pytest.raises(ParameterError, match=r"y_pred holds labels in \[0, 5\]"):
        confusion_matrix([0, 1], [0, 5], 5)
    with pytest.raises(ParameterError, match="equal length"):
        confusion_matrix([0, 1], [0], 5)


def test_class_weights_and_channels():
    w = class_weights([0, 0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3], 5)
    np.testing.assert_allclose(w, [2.0, 4.0, 8.0, 1.0, 0.0])
    table = path_table(SMALL)
    np.testing.assert_array_equal(input_channels(table, "s1"), np.flatnonzero(table.order == 1))
    assert len(input_channels(table, "s1s2")) == len(table)
    with pytest.raises(ParameterError, match="'s2'"):
        input_channels(table, "s2")


def test_train_config_is_frozen_and_validated():
    cfg = TrainConfig()
    assert (cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.grad_clip) == (32, 1e-3, 0.1, 3.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 0.1
    with pytest.raises(ParameterError, match="patience"):
        TrainConfig(patience=0)


def _metrics(input, accs):
    m = classification_metrics([0], [0], CLASSES)
    m["per_class_accuracy"] = dict(zip(CLASSES, accs))
    m["macro_accuracy"] = float(np.nanmean(accs))
    m["input"], m["absent_classes"] = input, []
    return m


def test_table1(tmp_path):
    s1 = _metrics("s1", [0.725, 0.7033, 0.9223, 0.8833, 0.7961])
    s1s2 = _metrics("s1s2", [0.975, 0.9856, 0.998, 0.9833, 1.0])
    text = table1(s1, s1s2)
    lines = text.strip().splitlines()
    assert lines[0] == "| input | vibrato | trill | tremolo | bisbigliando | flatterzunge | macro |"
    assert lines[2] == "| S1 | 72.50 | 70.33 | 92.23 | 88.33 | 79.61 | 80.60 |"
    assert lines[3] == "| S1+S2 | 97.50 | 98.56 | 99.80 | 98.33 | 100.00 | 98.84 |"
    # same table from metrics.json files (with NaN written as null)
    s1["per_class_accuracy"]["vibrato"] = None
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "metrics.json").write_text(json.dumps(dict(s1, absent_classes=["vibrato"])))
    (tmp_path / "b.json").write_text(json.dumps(s1s2))
    text = table1(tmp_path / "a", tmp_path / "b.json", paper=True)
    assert "| S1 | — | 70.33 |" in text and "absent from the evaluated subset (vibrato)" in text
    assert "| S1+S2 (paper, SOL-PMT) | 97.50 | 98.56 | 99.80 | 98.33 | 100.00 | 98.84 |" in text
    with pytest.raises(ParameterError, match="expects the 's1' metrics"):
        table1(s1s2, s1)


# ------------------------------------------------------------------------------------------- training

def make_separable(path, *, seed=0, per_class=(12, 4, 4), config=SMALL):
    """Gamma noise; class k multiplies one S1 channel and one block of S2 channels (separable by both)."""
    table = path_table(config)
    rng = np.random.default_rng(seed)
    s1, s2 = table.s1, table.s2
    blocks = np.array_split(s2, 5)
    S, labels, subsets = [], [], []
    for k in range(5):
        for subset, n in zip(("training", "validation", "test"), per_class):
            x = rng.gamma(2.0, 1.0, size=(n, len(table), table.n_frames))
            x[:, s1[3 * k]] *= 6.0
            x[:, blocks[k]] *= 6.0
            S.append(x)
            labels += [k] * n
            subsets += [subset] * n
    S = np.concatenate(S).astype(np.float32)
    examples = {"file_name": np.array([f"n{i:03d}.wav" for i in range(len(labels))], dtype=object),
                "label": np.array(labels), "subset": np.array(subsets, dtype=object)}
    write_features(path, S, examples, config, classes=CLASSES)
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_separable(tmp_path_factory.mktemp("toy") / "features.h5")


@pytest.fixture(scope="module")
def trained(toy, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "s1s2"
    model = train_model(toy, input="s1s2", out_dir=out, seed=3, device="cpu", progress=False, config=FAST)
    return out, model


def test_training_reaches_high_accuracy_and_records_config(toy, trained, tmp_path):
    out, model = trained
    cfg = json.loads((out / "config.json").read_text())
    for key in ("input", "n_channels", "channels", "mu", "c", "classes", "scattering", "paths", "seed",
                "history", "n_params", "scatterxai_version", "train_config", "class_weights", "best_epoch"):
        assert key in cfg
    with FeatureFile(toy) as ff:
        np.testing.assert_array_equal(cfg["mu"], ff.mu)           # μ of the training split, all channels
        assert cfg["scattering"] == ff.config.to_dict() and cfg["n_channels"] == len(ff.table)
    assert cfg["seed"] == 3 and cfg["train_config"]["batch_size"] == 32 and cfg["c"] == 0.1
    assert len(cfg["history"]) == cfg["epochs_run"] and 1 <= cfg["best_epoch"] <= cfg["epochs_run"]
    assert cfg["history"][-1]["train_loss"] < cfg["history"][0]["train_loss"]
    m = evaluate_model(toy, model_dir=out, out_dir=tmp_path / "eval", device="cpu")
    assert m["macro_accuracy"] >= 0.9 and m["subset"] == "test" and m["n_examples"] == 20
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    for key in ("input", "n_params", "classes", "per_class_accuracy", "macro_accuracy", "overall_accuracy",
                "confusion_matrix", "subset", "n_examples", "predictions"):
        assert saved[key] == m[key] or key == "predictions"
    assert np.sum(saved["confusion_matrix"]) == 20 and saved["input"] == "s1s2"
    assert (tmp_path / "eval" / "metrics.md").read_text() == m["markdown"]
    # predictions are consistent with the saved model's logits
    logits = model.logits(FeatureFile(toy).load(saved["predictions"]["row"]))
    np.testing.assert_array_equal(logits.argmax(1), saved["predictions"]["predicted"])


def test_s1_training_and_cli(toy, tmp_path, capsys):
    assert cli.main(["train", str(toy), "--input", "s1", "--out", str(tmp_path / "m"), "--seed", "1",
                     "--device", "cpu", "--max-epochs", "12"]) == 0
    err = capsys.readouterr().err  # progress is logged to stderr
    assert "epoch   1/12" in err and "train acc" in err
    assert cli.main(["evaluate", str(toy), "--model", str(tmp_path / "m"), "--out", str(tmp_path / "e"),
                     "--device", "cpu"]) == 0
    assert "| **macro** |" in capsys.readouterr().out
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert m["input"] == "s1" and m["n_params"] == load_model(tmp_path / "m").config["n_params"]
    assert m["macro_accuracy"] >= 0.8


def test_determinism_and_rng_hygiene(toy, trained, tmp_path):
    out, model = trained
    torch.manual_seed(123)
    state = torch.get_rng_state()
    flag = torch.are_deterministic_algorithms_enabled()
    again = train_model(toy, input="s1s2", out_dir=tmp_path / "again", seed=3, device="cpu", progress=False,
                        config=FAST)
    assert torch.equal(torch.get_rng_state(), state)        # the caller's RNG is untouched
    assert torch.are_deterministic_algorithms_enabled() == flag
    a, b = model.net.state_dict(), again.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert again.checksum == model.checksum
    h1 = json.loads((out / "config.json").read_text())["history"]
    h2 = again.config["history"]
    assert [r["val_loss"] for r in h1] == [r["val_loss"] for r in h2]
    threads = torch.get_num_threads()
    other = train_model(toy, input="s1s2", out_dir=tmp_path / "other", seed=4, device="cpu", progress=False,
                        config=dataclasses.replace(FAST, max_epochs=1), threads=1)
    assert not torch.equal(other.net.state_dict()["conv0.weight"], a["conv0.weight"])
    assert other.config["torch_threads"] == 1 and torch.get_num_threads() == threads
    # the processor is recorded: another CPU's kernels change the last bits, so a reader can tell runs apart
    assert set(other.config["cpu"]) == {"model", "machine", "isa", "torch_capability"}
    assert other.config["cpu"]["torch_capability"] == torch.backends.cpu.get_cpu_capability()


def test_incompatible_features_raise_model_error(trained, tmp_path):
    out, _ = trained
    other = ScatteringConfig(N=2 ** 13, J=5, Q=(8, 2), T=2 ** 6)
    path = make_separable(tmp_path / "other.h5", per_class=(1, 1, 2), config=other)
    with pytest.raises(ModelError, match="scattering parameters"):
        evaluate_model(path, model_dir=out, out_dir=tmp_path / "e", device="cpu")


def test_absent_class_in_subset(toy, trained, tmp_path):
    # evaluate on a file whose test subset lacks a class: NaN accuracy, macro over present classes
    out, _ = trained
    with FeatureFile(toy) as ff:
        keep = np.flatnonzero(~((ff.labels == 4) & (ff.examples["subset"] == "test")))
        S, ex = ff.load(keep), {k: v[keep] for k, v in ff.examples.items()}
    write_features(tmp_path / "f.h5", S, ex, SMALL, classes=CLASSES)
    with pytest.warns(RuntimeWarning, match="absent"):
        m = evaluate_model(tmp_path / "f.h5", model_dir=out, out_dir=tmp_path / "e", device="cpu")
    assert math.isnan(m["per_class_accuracy"]["flatterzunge"]) and m["absent_classes"] == ["flatterzunge"]
    assert m["macro_accuracy"] == pytest.approx(np.mean([m["per_class_accuracy"][c] for c in CLASSES[:4]]))
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["per_class_accuracy"]["flatterzunge"] is None
