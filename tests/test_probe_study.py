"""The probe study end to end on a tiny model, untrained networks, and the multi-target ridge probe."""

import json
import os

import h5py
import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from scatterxai.analysis.describe.descriptors import AUDIO_DESCRIPTORS, AUDIO_VECTORS
from scatterxai.analysis.describe.store import write_descriptors
from scatterxai.analysis.probe.export import report_section
from scatterxai.analysis.probe.probes import ridge_probe, ridge_probes
from scatterxai.analysis.probe.study import CKA_DESCRIPTORS, TARGETS, ProbeConfig, probe_study
from scatterxai.cli import main
from scatterxai.errors import DataError, ParameterError
from scatterxai.features import write_features
from scatterxai.model import ConvNet, load_model, train_model
from scatterxai.model.activations import layer_activations
from scatterxai.model.untrained import recalibrate_batchnorm, untrained_net
from scatterxai.scattering import path_table

from .conftest import SMALL

CLASSES = 5


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A features file of random scattering, a model trained for one epoch, and descriptors whose log2 f0
    is planted as a linear function of one fc1 unit of the trained model (the other descriptors: noise)."""
    tmp = tmp_path_factory.mktemp("probe")
    rng = np.random.default_rng(0)
    table = path_table(SMALL)
    n = {"training": 60, "validation": 20, "test": 60}
    K = sum(n.values())
    labels = np.tile(np.arange(CLASSES), K // CLASSES)
    S = rng.gamma(2.0, 1.0, (K, len(table), table.n_frames)).astype(np.float32)
    examples = {"file_name": np.array([f"n{i}.wav" for i in range(K)], object), "label": labels,
                "subset": np.array(sum(([s] * k for s, k in n.items()), []), object),
                "instrument": np.array([f"inst{i % 7}" for i in range(K)], object),
                "pitch": np.array([f"A{i % 4 + 2}" for i in range(K)], object), "csv_row": np.arange(K)}
    feats = str(tmp / "features.h5")
    write_features(feats, S, examples, SMALL)
    model_dir = str(tmp / "model")
    train_model(feats, input="s1s2", out_dir=model_dir, max_epochs=1, device="cpu", progress=False, threads=1)
    test = np.flatnonzero(examples["subset"] == "test")
    model = load_model(model_dir, device="cpu")
    fc1 = layer_activations(model.net, model.prepare(S[test]), layers=["fc1"])["fc1"]
    unit = int(np.argmax(fc1.std(axis=0)))
    planted = 8 + (fc1[:, unit] - fc1[:, unit].mean()) / fc1[:, unit].std()
    values = {k: rng.standard_normal((test.size, *([AUDIO_VECTORS[k]] if k in AUDIO_VECTORS else [])))
              for k in AUDIO_DESCRIPTORS}
    values["mel_spectrum"][:, -5:] = np.nan                      # bands above a low sample rate's Nyquist
    values["envelope_spectrum"][:4] = np.nan                     # notes too short for a modulation spectrum
    values["rms_db"] = values["rms_db"] - 20
    for k in ("centroid_hz", "bandwidth_hz", "rolloff_hz", "f0_hz", "am_rate_hz", "fm_rate_hz"):
        values[k] = 2 ** (8 + values[k])
    values["flatness"] = 10 ** (values["flatness"] - 2)
    values["fm_rate_hz"][:3] = np.nan                            # unknown for some notes
    desc_examples = {k: v[test] for k, v in examples.items()}
    desc_examples["f0_hz"] = 2 ** planted                        # ground truth column, as synthetic notes have
    desc_examples["modulation_hz"] = 2 ** (3 + rng.random(test.size))
    descs = str(tmp / "descriptors.h5")
    write_descriptors(descs, values, desc_examples, failed={})   # no scattering part: the probe computes it
    return {"features": feats, "descriptors": descs, "model": model_dir, "unit": unit, "tmp": tmp}


def test_probe_study_end_to_end(study):
    before = [(p["internal_api"], p["num_threads"]) for p in threadpool_info()]
    out = str(study["tmp"] / "out")
    code = main(["-q", "probe", study["features"], "--descriptors", study["descriptors"], "--model", study["model"],
                 "--out", out, "--untrained-seeds", "2", "--permutations", "20", "--device", "cpu", "--jobs", "2"])
    assert code == 0
    assert [(p["internal_api"], p["num_threads"]) for p in threadpool_info()] == before   # BLAS threads restored
    for name in ("probe.h5", "probe.json", "probe.md", "probe_r2.png", "probe_cka.png"):
        assert os.path.exists(os.path.join(out, name)), name
    with open(os.path.join(out, "probe.json")) as fh:
        summary = json.load(fh)
    layers = ["conv0", "conv1", "conv2", "fc1"]
    assert set(summary) == {"layers", "descriptors", "cka", "probe", "technique_probe"}
    assert summary["layers"] == layers
    assert summary["descriptors"] == list(CKA_DESCRIPTORS) + list(TARGETS)
    for layer in layers:
        assert set(summary["cka"][layer]) == set(CKA_DESCRIPTORS) | (set(layers) - {layer})
        for entry in summary["cka"][layer].values():
            assert set(entry) == {"trained", "untrained_mean", "untrained_std", "debiased", "p"}
            assert 1 / 21 <= entry["p"] <= 1
        assert set(summary["probe"][layer]) == set(TARGETS)
        for entry in summary["probe"][layer].values():
            assert set(entry) == {"trained_r2", "trained_rmse", "untrained_r2_mean", "untrained_r2_std", "unit"}
        assert set(summary["technique_probe"][layer]) == {"trained", "untrained_mean"}
    assert summary["probe"]["fc1"]["log2_f0"]["unit"] == "octaves"
    # the planted descriptor: fc1 encodes it linearly, the untrained fc1s do not
    fc1 = summary["probe"]["fc1"]["log2_f0"]
    assert fc1["trained_r2"] > 0.95 and fc1["trained_rmse"] < 0.25
    assert fc1["untrained_r2_mean"] < fc1["trained_r2"] - 0.1
    assert summary["probe"]["fc1"]["rms_db"]["trained_r2"] < 0.2      # noise is not decodable
    assert summary["cka"]["conv1"]["conv2"] == summary["cka"]["conv2"]["conv1"]
    with h5py.File(os.path.join(out, "probe.h5"), "r") as f:
        assert list(f.attrs["networks"]) == ["trained", "untrained_1000", "untrained_1001"]
        u = f["units/fc1/log2_f0"]
        assert u.attrs["best_unit"] == study["unit"] and u.attrs["best_r"] > 0.999
        assert u.attrs["p"] == pytest.approx(1 / 21)
        assert f["probe/fc1/log2_f0/r2"].shape == (3,) and f["probe/input/log2_f0/r2"].shape == (1,)
        assert f["targets/log2_f0"].attrs["source"] == "meta f0_hz"
        assert f["probe/fc1/log2_fm_rate"].attrs["n_dropped"] == 3
        assert f["cka/fc1/s1_energy/debiased"].shape == (3,) and f["cka_training/fc1/debiased"].shape == (2,)
        np.testing.assert_allclose(f["technique/conv0/balanced_accuracy"][0], summary["technique_probe"]["conv0"]
                                   ["trained"])
    md = open(os.path.join(out, "probe.md")).read()
    assert "| log2_f0 (octaves) |" in md and "technique (balanced accuracy)" in md
    # where each CKA descriptor comes from, and the p-value floor of 20 permutations
    assert "| s1_energy | model input |" in md and "| modulation_spectrum | model input |" in md
    assert "| audio_descriptors | audio |" in md and "| mel_spectrum | audio |" in md
    assert "1/21 = 0.048" in md and "(p ≤ 0.048 (floor))" in md
    section = report_section(out, figures_rel="probe")
    assert "CKA audio descriptors" in section and "CKA S1 energy (= input)" in section


def test_cka_descriptors_from_the_audio(study, tmp_path):
    """The audio matrices: scalar descriptors z-scored (unknown values at the mean), vectors with all-unknown
    columns dropped; a descriptors file without the audio vectors (an older version) is refused."""
    from scatterxai.analysis.describe.store import DescriptorFile
    from scatterxai.analysis.probe.compared import cka_matrices
    with DescriptorFile(study["descriptors"]) as df:
        desc = {n: df.values(n) for n in df.names}
        names = df.names
    n = len(desc["f0_hz"])
    desc.update(s1_energy=np.ones((n, 4)), modulation_spectrum=np.ones((n, 5)))   # the probe computes these
    multi = cka_matrices(desc, np.zeros((n, 3)))
    assert list(multi) == list(CKA_DESCRIPTORS)
    a = multi["audio_descriptors"]
    assert a.shape == (n, 9) and np.isfinite(a).all()
    np.testing.assert_allclose(a.mean(axis=0), 0, atol=1e-12)
    f0 = np.log2(desc["f0_hz"])
    np.testing.assert_allclose(a[:, 0], (f0 - f0.mean()) / f0.std())
    fm = np.log2(desc["fm_rate_hz"])
    assert np.all(a[:3, 8] == 0) and a[3:, 8] == pytest.approx((fm[3:] - np.nanmean(fm)) / np.nanstd(fm))
    assert multi["mel_spectrum"].shape == (n, 35) and np.isfinite(multi["mel_spectrum"]).all()
    env = multi["envelope_spectrum"]
    np.testing.assert_allclose(env[:4], np.tile(np.nanmean(desc["envelope_spectrum"], axis=0), (4, 1)))
    none = dict(desc, envelope_spectrum=np.full((n, 12), np.nan))     # e.g. every note shorter than 1 s
    assert cka_matrices(none, np.zeros((n, 3)))["envelope_spectrum"].shape == (n, 0)
    from scatterxai.analysis.probe.study import _cka_entry
    assert np.isnan(_cka_entry(np.ones((n, 2)), np.zeros((n, 0)), permutations=5, seed=0)["p"])
    old = str(tmp_path / "old.h5")
    with DescriptorFile(study["descriptors"]) as df:
        values = {k: df.values(k) for k in names if k not in AUDIO_VECTORS}
        examples = dict(df.examples)
    write_descriptors(old, values, examples, failed={})
    with pytest.raises(DataError, match="describe the notes again"):
        probe_study(study["features"], old, study["model"], ProbeConfig(untrained_seeds=0, n_permutations=2,
                                                                         device="cpu"), progress=False)


def test_flat_pooling_and_pitch_groups(study):
    config = ProbeConfig(pooling="flat", group_by="pitch", untrained_seeds=0, n_permutations=5, max_examples=40,
                         device="cpu")
    res = probe_study(study["features"], study["descriptors"], study["model"], config, progress=False)
    assert len(res["groups"]) == 40 and set(res["groups"]) == {"A2", "A3", "A4", "A5"}
    conv1 = load_model(study["model"]).net.conv1
    assert res["results"]["trained"]["probe"]["conv1"][0]["n"] == 40
    assert len(res["units"]["conv1"]["log2_f0"]["pearson"]) == conv1.out_channels   # units: channels
    with pytest.raises(ParameterError, match="pooling"):
        ProbeConfig(pooling="max")


def test_untrained_networks_and_recalibration():
    x = torch.randn(12, 40, 16) * 3 + 1
    state = torch.random.get_rng_state()
    a = untrained_net(40, 3, seed=5, batchnorm="init")
    assert torch.equal(torch.random.get_rng_state(), state)            # the caller's RNG is untouched
    b = untrained_net(40, 3, seed=5, x=x)                              # recalibrated (default)
    c = untrained_net(40, 3, seed=6, batchnorm="init")
    params = dict(a.named_parameters())
    for name, p in b.named_parameters():
        assert torch.equal(p, params[name]), name                      # same weights, γ and β
    assert not torch.equal(a.conv0.weight, c.conv0.weight)
    for bn in (a.input_bn, a.bn0, a.bn1, a.bn2):                       # init: mean 0, variance 1
        assert torch.all(bn.running_mean == 0) and torch.all(bn.running_var == 1)
    for bn in (b.input_bn, b.bn0, b.bn1, b.bn2):                       # recalibrated: changed
        assert not torch.all(bn.running_mean == 0) and bn.momentum == 0.1
    # one batch: the input BatchNorm's statistics are those of the data (unbiased variance)
    torch.testing.assert_close(b.input_bn.running_mean, x.mean(dim=(0, 2)))
    torch.testing.assert_close(b.input_bn.running_var, x.transpose(0, 1).reshape(40, -1).var(dim=1))
    assert not b.training
    # batches: the average of the batch means
    d = recalibrate_batchnorm(ConvNet(40, 3), x, batch_size=4)
    torch.testing.assert_close(d.input_bn.running_mean, x.mean(dim=(0, 2)))
    with pytest.raises(ParameterError, match="needs the inputs"):
        untrained_net(40, 3, seed=1)


def test_ridge_probes_equal_ridge_probe_per_target():
    rng = np.random.default_rng(3)
    n, alphas = 60, np.logspace(-2, 4, 5)
    groups = rng.integers(0, 9, n)
    for p, clip in ((12, False), (200, False), (12, True)):           # features ≤ and > notes; clipping
        X = rng.standard_normal((n, p))
        X[groups == 3, 0] += 30                                       # a group far outside the others
        Y = np.stack([X[:, :3].sum(axis=1) + s * rng.standard_normal(n) for s in (0.3, 3.0)], axis=1)
        Y[[4, 9], 1] = np.nan                                         # another NaN pattern: other folds
        many = ridge_probes(X, Y, groups=groups, seed=2, alphas=alphas, clip=clip)
        for j, res in enumerate(many):
            ref = ridge_probe(X, Y[:, j], groups=groups, seed=2, alphas=alphas, clip=clip)
            np.testing.assert_array_equal(res["alpha"], ref["alpha"])
            np.testing.assert_allclose(res["y_pred"], ref["y_pred"], rtol=1e-7, atol=1e-9)
            for k in ("r2", "rmse", "rmse_mean"):
                assert res[k] == pytest.approx(ref[k], rel=1e-9, abs=1e-12)
            assert (res["n"], res["n_dropped"]) == (ref["n"], ref["n_dropped"])
    with pytest.raises(ParameterError, match="infinite"):
        ridge_probes(X, np.full((n, 1), np.inf), groups=groups)


def test_clipping_stops_extrapolation_to_an_outlying_group():
    """y = x1 + x0 / 2; one group's x0 is shifted by 40 (an artefact y does not follow).  Unclipped, the probe
    trained on the other groups extrapolates (predictions ≈ 20 off, R² ≪ 0); clipped to the training
    fold's range, its predictions stay within the targets' range."""
    rng = np.random.default_rng(0)
    n = 120
    groups = np.arange(n) % 6
    X = np.stack([rng.standard_normal(n), rng.uniform(-1, 1, n)], axis=1)
    y = X[:, 1] + 0.5 * X[:, 0] + 0.05 * rng.standard_normal(n)
    X[groups == 5, 0] += 40
    plain = ridge_probes(X, y, groups=groups)[0]
    clipped = ridge_probes(X, y, groups=groups, clip=True)[0]
    assert plain["r2"] < -50 and np.max(np.abs(plain["y_pred"])) > 10
    assert clipped["r2"] > 0 and np.max(np.abs(clipped["y_pred"])) < 1.5 * np.max(np.abs(y))


def test_pitch_groups_without_instrument_pitch_or_known_f0():
    """A user's CSV (no instrument or pitch column, no SOL names): groups by the semitone of f0, and a note
    whose f0 is unknown (pYIN found none) is a group of its own instead of an error."""
    from scatterxai.analysis.probe.study import _groups
    examples = {"file_name": np.array(["a.wav", "b.wav", "c.wav", "d.wav"], object)}
    log2_f0 = np.log2(np.array([220.0, 221.0, np.nan, 440.0]))
    groups = _groups(examples, {"log2_f0": log2_f0}, "pitch")
    assert groups[0] == groups[1] and groups[3] != groups[0]
    assert groups[2] not in (groups[0], groups[3])
