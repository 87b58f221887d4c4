"""Wrong inputs give a clear error, never a traceback or a silent wrong result (issue #18)."""

import json
import shutil

import h5py
import numpy as np
import pytest
import soundfile as sf
import torch

from scatterxai import cli
from scatterxai.errors import DataError, ModelError, ParameterError, StoreError
from scatterxai.features import FeatureFile, extract_features
from scatterxai.model import TrainConfig, load_model, prepare_input, train_model
from scatterxai.scattering import ScatteringConfig

from .conftest import SMALL, train_one_epoch, write_toy_features

K = 20


# One torch thread: these tiny transforms gain nothing from more, and lose a lot on a busy machine.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _write(path, config=SMALL, K=K):
    return write_toy_features(path, K=K, subsets=("training", "training", "validation", "test"), config=config)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("v")
    features = _write(d / "f.h5")
    return features, train_one_epoch(features, d / "m", input="s1")


def _mutated(src, dst, fn):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        fn(f)
    return str(dst)


def _replace_features(f, data):
    del f["features"]
    f["features"] = data


# ------------------------------------------------------------------------------ the features file

@pytest.mark.parametrize("change, match", [
    (lambda f: f.attrs.__setitem__("N", 2 ** 40), r"N must be in \[1, 4194304"),
    (lambda f: f.attrs.__delitem__("N"), r"root attribute 'N' missing: not a scatterxai features file"),
    (lambda f: _replace_features(f, np.zeros(10, np.float32)), "/features is a 1-D dataset"),
    (lambda f: (f.__delitem__("features"), f.create_group("features")), "/features is a group"),
    (lambda f: _replace_features(f, h5py.ExternalLink("missing.h5", "/x")), "external link to missing.h5"),
    (lambda f: (f.__delitem__("features"), f.__setitem__("features", h5py.SoftLink("/loop")),
                f.__setitem__("loop", h5py.SoftLink("/features"))), "soft link to /loop"),
    (lambda f: _replace_features(f, f["features"][()].astype(np.float64)), "dtype float64"),
    (lambda f: _replace_features(f, f["features"][()].astype(np.int32)), "dtype int32"),
    (lambda f: f["stats/mu"].__setitem__(0, np.nan), "/stats/mu holds negative, NaN or inf"),
    (lambda f: f["examples"].create_group("nested"), "/examples/nested must be a 1-D dataset"),
])
def test_malformed_features_file(tmp_path, change, match):
    path = _mutated(_write(tmp_path / "ok.h5"), tmp_path / "bad.h5", change)
    with pytest.raises(StoreError, match=match):
        FeatureFile(path)


def test_external_dataset_storage_is_not_read(tmp_path):
    (tmp_path / "raw.bin").write_bytes(b"\0" * 4 * 10)
    path = _mutated(_write(tmp_path / "ok.h5"), tmp_path / "bad.h5", lambda f: f.create_dataset(
        "examples/ext", shape=(10,), dtype=np.float32, external=[(str(tmp_path / "raw.bin"), 0, 40)]))
    with pytest.raises(StoreError, match="keeps its data in other files"):
        FeatureFile(path)


@pytest.mark.parametrize("value", [-5.0, 1e30, np.nan, np.inf])
def test_absurd_feature_values_are_refused(tmp_path, value):
    path = _mutated(_write(tmp_path / "ok.h5"), tmp_path / "bad.h5",
                    lambda f: f["features"].__setitem__((4, 1, 3), value))
    with pytest.raises(DataError, match=r"bad\.h5, training rows: features hold .* at example 2, coefficient"):
        train_model(path, input="s1s2", out_dir=str(tmp_path / "m"), device="cpu", progress=False,
                    config=TrainConfig(max_epochs=1))
    assert not (tmp_path / "m").exists()


def test_tiny_negative_rounding_is_accepted():
    S = np.full((1, 3, 4), 1.0)
    S[0, 0, 0] = -2e-7   # the low-pass filter's rounding on real notes
    assert torch.isfinite(prepare_input(S, [0, 1, 2], [1.0, 1.0, 1.0])).all()


def test_too_few_frames_for_the_network(tmp_path):
    path = _write(tmp_path / "t1.h5", ScatteringConfig(N=2 ** 13, J=6))   # the README's small example: 1 frame
    with pytest.raises(DataError, match="1 time frame.* needs at least 4"):
        train_model(path, input="s1s2", out_dir=str(tmp_path / "m"), device="cpu", progress=False)


# ------------------------------------------------------------------------------------ the model

def _tampered(model_dir, tmp_path, *, config=None, state=None):
    mine = tmp_path / "m"
    shutil.copytree(model_dir, mine)
    cfg = json.loads((mine / "config.json").read_text())
    if state is not None:
        weights = torch.load(mine / "model.pt", weights_only=True)
        state(weights)
        torch.save(weights, mine / "model.pt")
        cfg.pop("weights_sha256")
    if config is not None:
        config(cfg)
    (mine / "config.json").write_text(json.dumps(cfg) if not isinstance(cfg, str) else cfg)
    return mine


@pytest.mark.parametrize("config, match", [
    (lambda c: c.__setitem__("c", 0), r"c \(the log compression constant\) must be a finite number"),
    (lambda c: c.__setitem__("c", 1e308), r"c \(the log compression constant\)"),
    (lambda c: c.__setitem__("mu", [0] * len(c["mu"])), "zero everywhere"),
    (lambda c: c.__setitem__("mu", [1e308] * len(c["mu"])), r"must be finite and in \[0, 1e\+06\]"),
    (lambda c: c.__setitem__("mu", [None] * len(c["mu"])), "must be finite"),
    (lambda c: c.__setitem__("scattering", dict(c["scattering"], N=2 ** 40)), "N must be in"),
])
def test_absurd_model_configuration(trained, tmp_path, config, match):
    with pytest.raises(ModelError, match=match):
        load_model(_tampered(trained[1], tmp_path, config=config), device="cpu")


def test_nan_weights_are_refused(trained, tmp_path):
    mine = _tampered(trained[1], tmp_path, state=lambda w: w["fc2.weight"].fill_(float("nan")))
    with pytest.raises(ModelError, match="NaN or inf weights.*fc2.weight"):
        load_model(mine, device="cpu")


def test_deeply_nested_config_json(trained, tmp_path):
    mine = tmp_path / "m"
    shutil.copytree(trained[1], mine)
    (mine / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelError, match="nested too deeply"):
        load_model(mine, device="cpu")


def test_infinite_epsilon_is_refused():
    from scatterxai.explain import ExplainConfig
    with pytest.raises(ParameterError, match="epsilon must be a positive finite number"):
        ExplainConfig(epsilon=float("inf"))
    with pytest.raises(SystemExit) as e:   # argparse: usage error, status 2
        cli.main(["explain", "f.h5", "--model", "m", "--out", "r.h5", "--epsilon", "inf"])
    assert e.value.code == 2


# ----------------------------------------------------------------------------------------- seeds

def test_seeds_are_bounded_everywhere(trained, tmp_path):
    from scatterxai.data.synth import synthesize_corpus
    from scatterxai.pipeline import RunConfig
    with pytest.raises(ParameterError, match=r"seed must be an integer in \[0, 2\*\*32\)"):
        train_model(trained[0], input="s1", out_dir=str(tmp_path / "m"), seed=2 ** 64, progress=False)
    with pytest.raises(ParameterError, match=r"seed must be an integer in \[0, 2\*\*32\)"):
        RunConfig(seed=2 ** 64)
    with pytest.raises(ParameterError, match=r"seed must be an integer in \[0, 2\*\*32\)"):
        synthesize_corpus(tmp_path / "c", scale=0.01, seed=-1)
    assert not (tmp_path / "m").exists() and not (tmp_path / "c").exists()


# ---------------------------------------------------------------------------------------- the CLI

def test_subset_all_is_accepted_by_evaluate_and_explain(trained, tmp_path, capsys):
    features, model_dir = trained
    assert cli.main(["evaluate", features, "--model", model_dir, "--out", str(tmp_path / "ev"), "--subset", "all",
                     "--device", "cpu", "-q"]) == 0
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["n_examples"] == K
    assert cli.main(["explain", features, "--model", model_dir, "--out", str(tmp_path / "r.h5"), "--subset",
                     "all", "--methods", "epsilon", "--device", "cpu", "-q"]) == 0


def test_cli_output_in_a_missing_tree(trained, tmp_path, capsys):
    features, model_dir = trained
    code = cli.main(["explain", features, "--model", model_dir, "--out", str(tmp_path / "no" / "sub" / "r.h5"),
                     "--device", "cpu", "-q"])
    assert code == 2 and "creates an output and at most one missing folder" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("command, said", [
    ("train", "the model directory was not changed; re-running trains from the start"),
    ("explain", "the output file was not changed; re-running starts over"),
    ("extract", "re-run the same command without --overwrite to resume"),
])
def test_interrupt_says_what_happens(monkeypatch, capsys, command, said):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, f"_cmd_{command}", interrupted)
    argv = {"train": ["train", "f.h5", "--input", "s1", "--out", "m"],
            "explain": ["explain", "f.h5", "--model", "m", "--out", "r.h5"],
            "extract": ["extract", "m.csv", "--audio-root", "a", "--out", "f.h5"]}[command]
    assert cli.main(argv) == 130
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err


def test_interrupt_while_parsing_or_importing(monkeypatch, capsys):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["train"]) == 130
    assert "scatterxai: interrupted" in capsys.readouterr().err
    monkeypatch.undo()
    import builtins
    real = builtins.__import__

    def slow_import(name, *a, **k):   # Ctrl-C while a command imports torch
        if name == "model" or name.endswith("scatterxai.model"):
            raise KeyboardInterrupt
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", slow_import)
    assert cli.main(["train", "f.h5", "--input", "s1", "--out", "m"]) == 130
    assert "interrupted" in capsys.readouterr().err


# ------------------------------------------------------------------------- names outside the audio root

def test_file_names_outside_the_audio_root(tmp_path):
    root, outside = tmp_path / "audio", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    t = np.arange(SMALL.N) / 22050
    for p in (root / "in.wav", outside / "out.wav"):
        sf.write(p, np.sin(2 * np.pi * 440 * t), 22050)
    csv = tmp_path / "m.csv"
    csv.write_text(f"file_name\nin.wav\n../elsewhere/out.wav\n{outside / 'out.wav'}\n{root / 'in.wav'}\n")
    kw = dict(config=SMALL, device="cpu", progress=False)
    summary = extract_features(csv, root, tmp_path / "f.h5", **kw)
    assert (summary.n_ok, summary.n_failed) == (2, 2)
    assert all("points outside the audio root" in reason for _, reason in summary.failed)
    summary = extract_features(csv, root, tmp_path / "g.h5", allow_outside_root=True, **kw)
    assert (summary.n_ok, summary.n_failed) == (4, 0)
