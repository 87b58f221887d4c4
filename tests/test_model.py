"""Tests of scatterxai.model: architecture, input preparation, weights-only save/load, compatibility."""

import json

import numpy as np
import pytest
import torch

from scatterxai.errors import ModelError, ParameterError
from scatterxai.features import FeatureFile, write_features
from scatterxai.model import CONFIG_FILE, WEIGHTS_FILE, ConvNet, count_parameters, load_model, prepare_input, save_model
from scatterxai.scattering import ScatteringConfig, log_normalize, path_table

from .conftest import SMALL

ORDER = ["input_bn", "conv0", "bn0", "relu0", "pool0", "conv1", "bn1", "relu1", "pool1", "conv2", "bn2",
         "relu2", "gap", "flatten", "dropout", "fc1", "relu3", "fc2"]


def expected_params(c_in, n_classes=5):
    """Parameter count written out layer by layer (independent of the module code)."""
    c_ref = c_in // 4
    c0, c1, c2 = c_ref // 2, c_ref, 2 * c_ref
    bn = 2 * (c_in + c0 + c1 + c2)
    convs = c_in * c0 * 7 + c0 * c1 * 5 + c1 * c2 * 3
    dense = c2 * 64 + 64 + 64 * n_classes + n_classes
    return bn + convs + dense


@pytest.mark.parametrize("c_in, n", [(1200, 2_068_289), (74, 10_383)])
def test_parameter_counts_match_paper(c_in, n):
    net = ConvNet(c_in)
    assert count_parameters(net) == n == expected_params(c_in)


def test_module_order_and_distinct_instances():
    net = ConvNet(74)
    assert [name for name, _ in net.named_children()] == ORDER
    relus = [m for name, m in net.named_children() if name.startswith("relu")]
    assert len({id(m) for m in relus}) == 4
    assert net.conv0.kernel_size == (7,) and net.conv1.kernel_size == (5,) and net.conv2.kernel_size == (3,)
    assert net.conv0.bias is None and net.conv1.bias is None and net.conv2.bias is None
    assert (net.conv0.out_channels, net.conv1.out_channels, net.conv2.out_channels) == (9, 18, 36)
    assert net.dropout.p == 0.5 and net.fc1.out_features == 64


@pytest.mark.parametrize("c_in, t", [(1200, 32), (74, 32), (249, 128)])
def test_output_shape(c_in, t):
    net = ConvNet(c_in, n_classes=5).eval()
    with torch.no_grad():
        assert net(torch.randn(3, c_in, t)).shape == (3, 5)


def test_bad_input_shape_and_arguments():
    net = ConvNet(74)
    with pytest.raises(ParameterError, match=r"\(batch, 74, T\)"):
        net(torch.randn(2, 75, 32))
    with pytest.raises(ParameterError, match="n_channels"):
        ConvNet(3)
    with pytest.raises(ParameterError, match="n_classes"):
        ConvNet(74, n_classes=1)


def test_prepare_input_matches_log_normalize_float64():
    rng = np.random.default_rng(0)
    S = rng.gamma(2.0, 1.0, size=(4, 20, 16)).astype(np.float32)
    channels = np.array([3, 0, 17])
    mu = S[:, channels].mean(axis=(0, 2), dtype=np.float64)
    x = prepare_input(S, channels, mu, 0.1, chunk=3)
    ref = np.log1p(S[:, channels].astype(np.float64) / (0.1 * mu[:, None] + 1e-8))
    assert x.dtype == torch.float32 and x.shape == (4, 3, 16)
    np.testing.assert_allclose(x.numpy(), ref, rtol=1e-6)
    np.testing.assert_array_equal(x.numpy(), log_normalize(S[:, channels].astype(np.float64), mu, 0.1)
                                  .astype(np.float32))
    with pytest.raises(ParameterError, match="channel indices"):
        prepare_input(S, [20], mu[:1])


# ------------------------------------------------------------------------------------- model directory

@pytest.fixture(scope="module")
def features(tmp_path_factory):
    table = path_table(SMALL)
    rng = np.random.default_rng(1)
    K = 12
    S = rng.gamma(2.0, 1.0, size=(K, len(table), table.n_frames)).astype(np.float32)
    examples = {"file_name": np.array([f"f{i}.wav" for i in range(K)], dtype=object),
                "label": np.arange(K) % 5, "subset": np.array(["training"] * 6 + ["test"] * 6, dtype=object)}
    path = tmp_path_factory.mktemp("feat") / "features.h5"
    write_features(path, S, examples, SMALL)
    return path


def _model_config(ff, channels):
    table = ff.table
    return {"input": "s1" if len(channels) < len(table) else "s1s2", "n_channels": len(channels),
            "channels": channels, "n_paths": len(table), "mu": ff.mu[channels], "c": 0.1,
            "classes": list(ff.classes), "scattering": ff.config.to_dict(),
            "paths": {k: getattr(table, k)[channels] for k in ("order", "lambda1_hz", "lambda2_hz", "n1", "n2")},
            "seed": 0, "history": []}


@pytest.fixture()
def saved(features, tmp_path):
    with FeatureFile(features) as ff:
        channels = ff.table.s1
        torch.manual_seed(0)
        net = ConvNet(len(channels))
        # non-trivial BatchNorm statistics, so that eval-mode round trip exercises the buffers
        net.train()
        net(prepare_input(ff.load(), channels, ff.mu[channels]))
        net.eval()
        save_model(net, tmp_path / "m", _model_config(ff, channels))
        S = ff.load()
    return tmp_path / "m", net, S, channels


def test_save_load_round_trip_identical_logits(saved):
    model_dir, net, S, channels = saved
    model = load_model(model_dir, device="cpu")
    assert not model.net.training
    with torch.no_grad():
        ref = net(model.prepare(S)).numpy()
    np.testing.assert_array_equal(model.logits(S), ref)
    # batching changes float32 summation order only
    np.testing.assert_allclose(model.logits(S, batch_size=5), ref, rtol=1e-5, atol=1e-6)
    # already-selected channels give the same input
    np.testing.assert_array_equal(model.logits(S[:, channels]), ref)
    cfg = json.loads((model_dir / CONFIG_FILE).read_text())
    assert cfg["n_params"] == count_parameters(net)
    assert np.isnan(model.paths["lambda2_hz"]).all() and cfg["paths"]["lambda2_hz"][0] is None
    assert len(model.checksum) == 64 and model.checksum[:12] in repr(model)


def test_prepare_rejects_wrong_channel_count(saved):
    model = load_model(saved[0], device="cpu")
    with pytest.raises(ModelError, match="expects 249"):
        model.prepare(np.ones((2, 100, 128), np.float32))


class _Payload:
    """Unpickling this object would create a marker file (stand-in for arbitrary code execution)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_refuses_pickled_object(saved, tmp_path):
    model_dir = saved[0]
    marker = tmp_path / "executed"
    torch.save({"conv0.weight": _Payload(str(marker))}, model_dir / WEIGHTS_FILE)
    with pytest.raises(ModelError, match="model.pt does not match config.json"):   # caught by the checksum
        load_model(model_dir, device="cpu")
    cfg = json.loads((model_dir / CONFIG_FILE).read_text())
    del cfg["weights_sha256"]   # as in a directory written before checksums: weights_only refuses it
    (model_dir / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="not a plain tensor state dict"):
        load_model(model_dir, device="cpu")
    assert not marker.exists()


def test_load_errors(saved, tmp_path):
    model_dir = saved[0]
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nowhere")
    cfg = json.loads((model_dir / CONFIG_FILE).read_text())
    # weights of another architecture
    cfg_bad = dict(cfg, n_channels=cfg["n_channels"] + 4, channels=list(range(cfg["n_channels"] + 4)),
                   mu=[1.0] * (cfg["n_channels"] + 4))
    (model_dir / CONFIG_FILE).write_text(json.dumps(cfg_bad))
    with pytest.raises(ModelError, match="does not describe a valid ConvNet"):
        load_model(model_dir)
    (model_dir / CONFIG_FILE).write_text(json.dumps({k: v for k, v in cfg.items() if k != "mu"}))
    with pytest.raises(ModelError, match="lacks \\['mu'\\]"):
        load_model(model_dir)
    (model_dir / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        load_model(model_dir)


def test_check_compatible(saved, features, tmp_path):
    model_dir = saved[0]
    model = load_model(model_dir, device="cpu")
    model.check_compatible(features)              # same features: no error
    other = ScatteringConfig(N=2 ** 13, J=6, Q=(8, 1), T=2 ** 6)
    table = path_table(other)
    path = tmp_path / "other.h5"
    write_features(path, np.ones((2, len(table), table.n_frames), np.float32),
                   {"file_name": np.array(["a", "b"], dtype=object)}, other)
    with pytest.raises(ModelError, match="scattering parameters"):
        model.check_compatible(path)
    # same scattering parameters, different path metadata (e.g. a model from another package version)
    cfg = json.loads((model_dir / CONFIG_FILE).read_text())
    cfg["paths"]["lambda1_hz"][0] *= 1.5
    (model_dir / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="path table differs.*'lambda1_hz'"):
        load_model(model_dir, device="cpu").check_compatible(features)
