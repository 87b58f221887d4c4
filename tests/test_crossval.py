"""Small studies: grouped stratified folds, the bootstrap spread, cross-validated training and its model
directory, out-of-fold evaluation and relevance, fine-tuning with a new head, BatchNorm recalibration, the
architecture presets, and a model applied to features that name a subset of its classes."""

import json
import os
import shutil

import h5py
import numpy as np
import pytest
import torch

from scatterxai.cli import main
from scatterxai.errors import DataError, ModelError, ParameterError
from scatterxai.explain import explain
from scatterxai.features import FeatureFile, write_features
from scatterxai.model import (
    ConvNet,
    InitSpec,
    TrainConfig,
    count_parameters,
    evaluate_model,
    load_model,
    train_crossval,
    train_model,
)
from scatterxai.model.batchnorm import recalibrate
from scatterxai.model.crossval import FOLDS_DIR, load_fold
from scatterxai.model.finetune import FROZEN_MODULES, head_mode
from scatterxai.model.folds import assign_folds, fold_parts, group_keys
from scatterxai.model.spread import bootstrap_interval
from scatterxai.scattering import path_table

from .conftest import SMALL

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUICK = TrainConfig(max_epochs=3, patience=3)


def write_study_features(path, *, classes=("a", "b", "c"), per_class=8, players=None, seed=0):
    """Random coefficients scaled by the class (learnable in a few epochs); text labels; one file per row;
    optional ``player`` column; no subset column given (the split is drawn)."""
    table = path_table(SMALL)
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(classes)), per_class)
    S = (rng.random((len(y), len(table), table.n_frames)) * (1 + 2 * y)[:, None, None]).astype(np.float32)
    columns = {"file_name": np.array([f"{classes[c]}_{i}.wav" for i, c in enumerate(y)], object),
               "label": np.array([classes[c] for c in y], object)}
    if players is not None:
        columns["player"] = np.array([f"p{i % players}" for i in range(len(y))], object)
    from scatterxai.data.split import split_622
    columns["subset"] = split_622(y, seed=0)
    write_features(str(path), S, columns, SMALL, classes=list(classes), attrs={"split": "drawn"})
    return str(path)


# ------------------------------------------------------------------------------------------------ folds

def test_group_keys_player_column_file_fallback_and_explicit_column():
    ex = {"file_name": np.array(["x.wav", "x.wav", "y.wav", "z.wav"], object),
          "player": np.array(["ann", "ann", "", "bob"], object), "room": np.array(["r1", "r2", "r1", "r2"], object)}
    groups, column = group_keys(ex)
    assert column == "player" and groups[0] == groups[1] == "player:ann" and groups[2] == "file_name:y.wav"
    groups, column = group_keys(ex, "room")
    assert column == "room" and groups[0] == groups[2] != groups[1]
    groups, column = group_keys({"file_name": ex["file_name"]})
    assert column == "file_name" and groups[0] == groups[1] != groups[2]   # windows of one file: one group
    with pytest.raises(ParameterError, match="'studio' is not among"):
        group_keys(ex, "studio")


def test_folds_keep_groups_together_stratify_and_rotate():
    labels = np.repeat([0, 1, 2], 20)
    groups = np.array([f"g{i // 2}" for i in range(60)])   # 30 groups of two rows
    augmented = np.zeros(60, int)
    augmented[::7] = 1
    folds = assign_folds(labels, groups, 5, seed=3, augmented=augmented)
    assert np.array_equal(folds, assign_folds(labels, groups, 5, seed=3, augmented=augmented))
    for g in set(groups):
        assert len(set(folds[groups == g])) == 1
    for k in range(5):   # every class in every fold (20 notes of each class in 10 groups)
        assert set(labels[folds == k]) == {0, 1, 2}
    tested = []
    for k in range(5):
        p = fold_parts(folds, k, 5, augmented=augmented)
        assert not set(p["training"]) & set(p["validation"]) and not set(p["training"]) & set(p["test"])
        assert set(folds[p["test"]]) == {k} and set(folds[p["validation"]]) == {(k + 1) % 5}
        assert not augmented[p["test"]].any() and not augmented[p["validation"]].any()
        assert set(p["training"]) | set(p["validation"]) | set(p["test"]) >= set(np.flatnonzero(augmented == 0))
        tested += p["test"].tolist()
    assert sorted(tested) == np.flatnonzero(augmented == 0).tolist()   # each recording tested exactly once
    with pytest.raises(DataError, match="at least 5 groups"):
        assign_folds(labels, np.array(["a", "b", "c", "d"] * 15), 5)
    with pytest.raises(ParameterError):
        assign_folds(labels, groups, 2)


def test_bootstrap_resamples_recordings_within_classes():
    y = np.array([0] * 20 + [1] * 4)
    pred = y.copy()
    assert bootstrap_interval(y, pred, np.arange(24), 2)["macro_accuracy"] == [1.0, 1.0]
    # class 0: two recordings of ten windows each, one all right, one all wrong
    pred[10:20] = 1
    by_window = bootstrap_interval(y, pred, np.arange(24), 2, seed=1)["overall_accuracy"]
    by_file = bootstrap_interval(y, pred, np.array([0] * 10 + [1] * 10 + [2, 3, 4, 5]), 2, seed=1)["overall_accuracy"]
    assert by_file[1] - by_file[0] > 2 * (by_window[1] - by_window[0])   # windows of one file are not independent
    assert by_file[0] == pytest.approx(4 / 24) and by_file[1] == pytest.approx(1.0)
    assert bootstrap_interval(y, pred, np.arange(24), 2, seed=1) == bootstrap_interval(y, pred, np.arange(24), 2,
                                                                                         seed=1)


# ---------------------------------------------------------------------------------------- cross-validation

@pytest.fixture(scope="module")
def cv_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("cv")
    features = write_study_features(root / "features.h5", players=12)
    model_dir = root / "cv"
    train_crossval(features, input="s1s2", out_dir=model_dir, folds=4, seed=0, device="cpu", progress=False,
                   config=QUICK, arch="small")
    return root, features, model_dir


def test_a_crossval_model_directory_is_recognised_and_replaced_by_a_rerun(cv_study, tmp_path):
    """A cross-validated model directory holds metrics.json and folds/ beside model.pt and has no marker: it is
    a model directory (not an evaluation folder, whose files it also holds), so training again into it works,
    and another kind needs --overwrite, named with the right article."""
    from scatterxai._util.outputs import check_output, identify
    root, features, model_dir = cv_study
    again = tmp_path / "cv"
    shutil.copytree(model_dir, again)
    assert {"metrics.json", "folds", "model.pt"} <= set(os.listdir(again))
    have = identify(again, is_dir=True)
    assert (have.kind, have.stray) == ("model", None)
    with pytest.raises(Exception, match="is a model directory, not an evaluation folder; pass --overwrite"):
        check_output(again, kind="evaluation")
    train_crossval(features, input="s1s2", out_dir=again, folds=4, seed=0, device="cpu", progress=False,
                   config=QUICK, arch="small")
    assert load_model(again, device="cpu").config["crossval"]["folds"] == 4


def test_crossval_directory_folds_metrics_and_final_model(cv_study):
    root, features, model_dir = cv_study
    final = load_model(model_dir, device="cpu")
    cv = final.config["crossval"]
    assert cv["folds"] == 4 and cv["group_by"] == "player" and cv["n_groups"] == 12
    assert final.config["arch"]["name"] == "small" and final.config["train_config"]["bn_recalibrate"] is True
    assert final.config["epochs_run"] == cv["final"]["epochs"] == int(np.median([f["best_epoch"]
                                                                              for f in cv["fold_models"]]))
    with FeatureFile(features) as ff:
        players = np.asarray(ff.examples["player"])
    tested = []
    for f in cv["fold_models"]:
        fold = load_fold(model_dir, final, f["fold"], device="cpu")
        info = fold.config["fold"]
        train_rows = set(range(24)) - set(info["test_rows"]) - set(info["validation_rows"])
        assert not set(players[info["test_rows"]]) & set(players[sorted(train_rows)])   # players never straddle
        assert fold.config["n_training"] == len(train_rows)
        tested += info["test_rows"]
    assert sorted(tested) == list(range(24))
    metrics = json.loads((model_dir / "metrics.json").read_text())
    s = metrics["spread"]["macro_accuracy"]
    assert len(s["per_fold"]) == 4 and s["interval"][0] <= s["pooled"] <= s["interval"][1]
    assert s["pooled"] == metrics["macro_accuracy"] and metrics["n_examples"] == 24
    assert sorted(metrics["predictions"]["row"]) == list(range(24))
    md = (model_dir / "metrics.md").read_text()
    assert "Test notes per class and fold" in md and "95 % interval" in md
    # a fold model replaced by another one (consistent in itself) is refused: the final config records it
    copy = root / "cv_copy"
    shutil.copytree(model_dir, copy)
    shutil.rmtree(copy / FOLDS_DIR / "2")
    shutil.copytree(copy / FOLDS_DIR / "3", copy / FOLDS_DIR / "2")
    with pytest.raises(ModelError, match="is not the fold model"):
        load_fold(copy, load_model(copy, device="cpu"), 2, device="cpu")


def test_out_of_fold_evaluation_and_relevance(cv_study, tmp_path):
    """Every note of the cross-validated study is predicted and explained by a model that did not train on
    it: the fold that tested it, whose logits the relevance file holds."""
    root, features, model_dir = cv_study
    final = load_model(model_dir, device="cpu")
    metrics = evaluate_model(features, model_dir=model_dir, out_dir=tmp_path / "eval", device="cpu")
    assert metrics["n_examples"] == 24 and "spread" in metrics and metrics["subset"].startswith("out-of-fold")
    saved = json.loads((model_dir / "metrics.json").read_text())
    pred_of = dict(zip(saved["predictions"]["row"], saved["predictions"]["predicted"]))
    assert metrics["predictions"]["predicted"] == [pred_of[r] for r in metrics["predictions"]["row"]]
    rel = explain(features, model_dir=model_dir, out=tmp_path / "rel.h5", methods=["epsilon_plus"], device="cpu",
                  progress=False)
    with h5py.File(rel, "r") as f, FeatureFile(features) as ff:
        assert f.attrs["out_of_fold"] and len(f["examples/cv_fold"]) == 24
        fold_of = f["examples/cv_fold"][()]
        logits = f["examples/logits"][()]
        relevance = f["relevance/epsilon_plus"][()]
        for k in range(1, 5):
            model = load_fold(model_dir, final, k, device="cpu")
            rows = np.flatnonzero(fold_of == k)
            assert sorted(rows.tolist()) == sorted(model.config["fold"]["test_rows"])   # never trained on them
            np.testing.assert_allclose(logits[rows], model.logits(ff.load(rows)), rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(f["features"][rows], model.prepare(ff.load(rows)).numpy(), rtol=1e-6)
        assert np.isfinite(relevance).all()
    # on other data the final model explains every row
    other = write_study_features(tmp_path / "other.h5", seed=5)
    rel = explain(other, model_dir=model_dir, out=tmp_path / "rel_other.h5", methods=["epsilon"], device="cpu",
                  progress=False, subset="all")
    with h5py.File(rel, "r") as f, FeatureFile(other) as ff:
        assert "cv_fold" not in f["examples"]
        np.testing.assert_allclose(f["examples/logits"][()], final.logits(ff.load(np.arange(24))), rtol=1e-5, atol=1e-5)


def test_cli_train_folds_and_run_options(tmp_path):
    features = write_study_features(tmp_path / "f.h5", per_class=5)
    out = tmp_path / "m"
    assert main(["-q", "train", features, "--input", "s1", "--out", str(out), "--folds", "3", "--arch", "small",
                 "--max-epochs", "2", "--device", "cpu", "--bn-recalibrate", "off", "--dropout", "0.2"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["crossval"]["group_by"] == "file_name" and cfg["arch"]["dropout"] == 0.2
    assert cfg["train_config"]["bn_recalibrate"] is False
    with pytest.raises(SystemExit):
        main(["-q", "train", features, "--input", "s1", "--out", str(tmp_path / "x"), "--folds", "2"])
    assert main(["-q", "train", features, "--input", "s1", "--out", str(tmp_path / "x"), "--group-by", "player"]) == 2
    assert main(["-q", "train", features, "--input", "s1", "--out", str(tmp_path / "x"), "--freeze-conv"]) == 2


# ---------------------------------------------------------------------------------------------- fine-tuning

def test_head_mode():
    assert head_mode(["b", "a"], ["a", "b"]) == ("same", {0: 1, 1: 0})
    assert head_mode(["c", "a"], ["a", "b", "c"]) == ("subset", {0: 2, 1: 0})
    assert head_mode(["a", "z"], ["a", "b"]) == ("new", {0: 0})
    assert head_mode(["a", "b"], ["a", "b"], new_head=True) == ("new", {})


def test_init_with_a_new_head_keeps_the_frozen_convolutions(tmp_path):
    pre_dir = tmp_path / "pre"
    train_model(write_study_features(tmp_path / "pre.h5", classes=("a", "b", "c")), input="s1s2", out_dir=pre_dir,
                device="cpu", progress=False, config=QUICK, arch="small")
    pre = load_model(pre_dir, device="cpu")
    new = write_study_features(tmp_path / "new.h5", classes=("c", "z"), per_class=6, seed=2)
    out = tmp_path / "tuned"
    main(["-q", "train", new, "--init", str(pre_dir), "--freeze-conv", "--out", str(out), "--max-epochs", "2",
          "--device", "cpu", "--init-mu", "data"])
    tuned = load_model(out, device="cpu")
    init = tuned.config["init"]
    assert tuned.classes == ("c", "z") and init["head"] == "new" and init["head_rows_copied"] == {"c": "c"}
    assert init["frozen"] == list(FROZEN_MODULES) and init["weights_sha256"] == pre.checksum
    assert tuned.config["input"] == "s1s2" and tuned.config["arch"] == pre.config["arch"]
    for name in FROZEN_MODULES:   # parameters and running statistics as pretrained
        for k, v in getattr(pre.net, name).state_dict().items():
            assert torch.equal(v, getattr(tuned.net, name).state_dict()[k]), (name, k)
    assert not torch.equal(pre.net.fc1.weight, tuned.net.fc1.weight)
    with FeatureFile(new) as ff:   # μ of the new training rows (init-mu data), not the pretrained μ
        np.testing.assert_allclose(tuned.mu, ff.mu[tuned.channels])
    assert not np.allclose(tuned.mu, pre.mu)
    # a subset of the pretrained classes keeps their head rows; the pretrained μ by default; CV works too
    sub = write_study_features(tmp_path / "sub.h5", classes=("b", "a"), per_class=6, seed=3)
    tuned = train_crossval(sub, input=None, out_dir=tmp_path / "cv", folds=3, init=InitSpec(str(pre_dir)),
                           device="cpu", progress=False, config=QUICK)
    assert tuned.config["init"]["head"] == "same" or tuned.config["init"]["head"] == "subset"
    assert tuned.config["init"]["head_rows_copied"] == {"b": "b", "a": "a"}
    np.testing.assert_array_equal(tuned.mu, pre.mu)
    with pytest.raises(ParameterError, match="keeps its input"):
        train_model(sub, input="s1", out_dir=tmp_path / "bad", init=str(pre_dir), device="cpu", progress=False)


# --------------------------------------------------------------------------------------- small data network

def test_batchnorm_recalibration_uses_the_whole_training_set_and_spares_frozen_layers():
    torch.manual_seed(0)
    net = ConvNet(16, 3, arch="small")
    x = torch.randn(40, 16, 8) * 3 + 2
    before = net.conv0.weight.detach().clone()
    frozen_stats = {k: v.clone() for k, v in net.bn0.state_dict().items()}
    recalibrate(net, x, frozen=["bn0"])
    # the input BatchNorm's statistics are those of the 40 examples × 8 frames exactly (one batch)
    np.testing.assert_allclose(net.input_bn.running_mean, x.mean(dim=(0, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.input_bn.running_var, x.var(dim=(0, 2), unbiased=True), rtol=1e-4)
    for k, v in frozen_stats.items():
        assert torch.equal(net.bn0.state_dict()[k], v)
    assert torch.equal(net.conv0.weight, before) and not net.training
    h = net.relu0(net.bn0(net.conv0(net.input_bn(x))))
    assert torch.isfinite(h).all()


def test_architecture_presets():
    assert count_parameters(ConvNet(1200, 5)) == 2_068_289
    small = ConvNet(1200, 5, arch="small")
    assert 30_000 < count_parameters(small) < 36_000 and small.conv0.kernel_size == (3,)
    assert [n for n, _ in small.named_children()] == [n for n, _ in ConvNet(1200, 5).named_children()]
    with pytest.raises(ParameterError, match="unknown architecture"):
        ConvNet(74, 5, arch="huge")


# ---------------------------------------------------------------------------------- classes of new recordings

def test_model_applies_to_features_naming_a_subset_of_its_classes(tmp_path):
    model_dir = tmp_path / "m"
    train_model(write_study_features(tmp_path / "train.h5", classes=("a", "b", "c")), input="s1", out_dir=model_dir,
                device="cpu", progress=False, config=QUICK)
    model = load_model(model_dir, device="cpu")
    sub = write_study_features(tmp_path / "sub.h5", classes=("c", "a"), per_class=4, seed=9)
    m = evaluate_model(sub, model_dir=model_dir, out_dir=tmp_path / "e", subset="all", device="cpu")
    with FeatureFile(sub) as ff:
        names = np.array(ff.classes)[ff.labels]
    assert m["classes"] == ["a", "b", "c"] and m["absent_classes"] == ["b"]
    assert [model.classes[i] for i in m["predictions"]["label"]] == names.tolist()   # re-indexed by name
    rel = explain(sub, model_dir=model_dir, out=tmp_path / "r.h5", methods=["epsilon"], subset="all", device="cpu",
                  progress=False, target="true")
    with h5py.File(rel, "r") as f:
        assert list(f.attrs["classes"]) == ["a", "b", "c"]
        assert [("a", "b", "c")[i] for i in f["examples/label"][()]] == names.tolist()
    other = write_study_features(tmp_path / "other.h5", classes=("a", "q"), per_class=4)
    with pytest.raises(ModelError, match=r"\['q'\] are not among them.*extract --classes"):
        evaluate_model(other, model_dir=model_dir, out_dir=tmp_path / "e2", subset="all", device="cpu")
    assert main(["-q", "evaluate", other, "--model", str(model_dir), "--out", str(tmp_path / "e3"), "--subset",
                 "all", "--device", "cpu"]) == 2
    assert not os.path.exists(tmp_path / "e3" / "metrics.json")


# ------------------------------------------------------------------------------------------------ guidance

def test_small_study_rule_and_warnings(tmp_path, caplog):
    from scatterxai.model.guidance import SMALL_STUDY, count_warnings, is_small
    assert is_small(SMALL_STUDY - 1) and not is_small(SMALL_STUDY)
    # the demo (1,789 notes) trains as before; small studies recalibrate BatchNorm
    assert TrainConfig().resolved(1789).bn_recalibrate is False and TrainConfig().resolved(72).bn_recalibrate is True
    assert TrainConfig(bn_recalibrate="off").resolved(72).bn_recalibrate is False
    with pytest.raises(ParameterError, match="bn_recalibrate"):
        TrainConfig(bn_recalibrate="sometimes")
    assert count_warnings({"training": [12, 10], "test": [5, 6]}, ["a", "b"]) == []
    (msg,) = count_warnings({"training": [12, 3], "test": [1, 6]}, ["a", "b"], where="fold 2")
    assert msg.startswith("fold 2:") and "training (b 3; fewer than 10)" in msg and "test (a 1; fewer than 5)" in msg
    features = write_study_features(tmp_path / "f.h5", per_class=6)
    with caplog.at_level("WARNING", logger="scatterxai"):
        train_model(features, input="s1", out_dir=tmp_path / "m", device="cpu", progress=False, config=QUICK)
    text = caplog.text
    assert "18 recordings is a small study" in text and "--folds 5" in text and "--arch small" in text
    assert "few notes of some classes" in text
