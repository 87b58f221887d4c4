import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import soundfile as sf

from scatterxai.audio import load_prepared
from scatterxai.cli import main
from scatterxai.errors import StoreError
from scatterxai.features import FeatureFile, extract_features, write_features
from scatterxai.scattering import path_table, scatter

from .conftest import KILL_AT_FLUSH, SMALL

N_GOOD = 7


@pytest.fixture
def corpus(tmp_path):
    """Seven short tones (one in a nested folder, one stereo at 22.05 kHz), one corrupt and one empty file."""
    root = tmp_path / "audio"
    (root / "nested" / "deeper").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = ["file_name,label,subset,instrument,f0_hz"]
    subsets = ["training", "training", "validation", "test", "training", "test", "training"]
    for i in range(N_GOOD):
        sr = 22050 if i == 3 else 44100
        t = np.arange(int(0.25 * sr)) / sr
        f0 = 110 * 2 ** (i / 3)
        y = (1 + 0.5 * np.sin(2 * np.pi * (4 + i) * t)) * np.sin(2 * np.pi * f0 * t)
        y += 0.01 * rng.standard_normal(len(t))
        if i == 3:
            y = np.stack([y, 0.5 * y], axis=1)
        name = f"note{i}.wav"
        # note5 lives in a nested folder but the CSV gives its base name (as in the SOL tree)
        sf.write(root / ("nested/deeper/" + name if i == 5 else name), y, sr)
        rows.append(f"{name},{i % 5},{subsets[i]},Inst{i % 2},{f0:.3f}")
    (root / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    sf.write(root / "empty.wav", np.zeros(0), 44100)
    rows.insert(3, "corrupt.wav,1,training,Inst0,0")
    rows.append("empty.wav,2,test,Inst1,0")
    csv = tmp_path / "meta.csv"
    csv.write_text("\n".join(rows) + "\n")
    return str(csv), str(root)


def _extract(csv, root, out, **kw):
    return extract_features(csv, root, out, config=SMALL, method="kymatio", progress=False, **kw)


def test_extract_writes_self_describing_file(corpus, tmp_path):
    csv, root = corpus
    out = str(tmp_path / "features.h5")
    summary = _extract(csv, root, out, batch_size=3)
    assert (summary.n_ok, summary.n_failed, summary.n_total) == (N_GOOD, 2, N_GOOD + 2)
    assert not os.path.exists(out + ".partial")
    table = path_table(SMALL)
    with h5py.File(out, "r") as f:  # bare h5py, as a user would
        assert f["features"].shape == (N_GOOD, len(table), table.n_frames)
        assert f["features"].dtype == np.float32 and f["features"].chunks == (1, len(table), table.n_frames)
        for k in ("order", "lambda1_hz", "lambda2_hz", "n1", "n2"):
            np.testing.assert_array_equal(f["paths"][k][()], getattr(table, k))
        names = f["examples/file_name"].asstr()[()]
        assert list(names) == [f"note{i}.wav" for i in range(N_GOOD)]
        assert set(f["examples"]) == {"file_name", "label", "subset", "instrument", "f0_hz", "csv_row"}
        assert f["examples/label"].dtype == np.int64 and f["examples/f0_hz"].dtype == np.float64
        assert sorted(f["failed/file_name"].asstr()[()]) == ["corrupt.wav", "empty.wav"]
        assert all(r for r in f["failed/reason"].asstr()[()])
        assert f.attrs["N"] == SMALL.N and list(f.attrs["Q"]) == [8, 2] and f.attrs["n_frames"] == 128
        S = f["features"][()]
        training = f["examples/subset"].asstr()[()] == "training"
        np.testing.assert_allclose(f["stats/mu"][()], S[training].mean(axis=(0, 2)), rtol=1e-6)
    # coefficients are those of the prepared audio (resampled, mono, standardised)
    ref = scatter(load_prepared(os.path.join(root, "note3.wav"), SMALL), SMALL, method="kymatio").numpy()
    np.testing.assert_allclose(S[3], ref[0], rtol=1e-5, atol=1e-6)
    with FeatureFile(out) as ff:
        assert len(ff) == N_GOOD and ff.config == SMALL
        np.testing.assert_array_equal(ff.labels, [i % 5 for i in range(N_GOOD)])
        np.testing.assert_array_equal(ff.indices("test"), [3, 5])
        np.testing.assert_array_equal(ff.load([5, 0, 5]), S[[5, 0, 5]])
        assert len(ff.failed) == 2
        with pytest.raises(StoreError, match="subset 'nope' has no rows"):
            ff.indices("nope")


def test_rerun_is_a_no_op_and_other_settings_need_overwrite(corpus, tmp_path):
    csv, root = corpus
    out = str(tmp_path / "f.h5")
    _extract(csv, root, out)
    assert _extract(csv, root, out).already_complete
    other = tmp_path / "other.csv"
    other.write_text(open(csv).read().replace("note0.wav,0", "note0.wav,4"))
    with pytest.raises(StoreError, match="other settings"):
        _extract(str(other), root, out)
    assert _extract(str(other), root, out, overwrite=True).n_ok == N_GOOD
    with FeatureFile(out) as ff:
        assert ff.labels[0] == 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")

_KILLER = KILL_AT_FLUSH + textwrap.dedent("""
    import torch
    torch.set_num_threads(1)   # as the resuming test process (one_torch_thread): the same rounding
    from scatterxai.scattering import ScatteringConfig
    from scatterxai.features import extract_features
    extract_features(csv, root, out, config=ScatteringConfig(N=2 ** 13, J=6, Q=(8, 2), T=2 ** 6),
                     method="kymatio", batch_size=2, progress=False)
""")


@pytest.mark.parametrize("kill_at", [3, 4])  # 3: data of batch 2 written, not marked; 4: batch 2 marked
def test_resume_after_sigkill_gives_the_same_file(corpus, tmp_path, kill_at):
    csv, root = corpus
    ref = str(tmp_path / "ref.h5")
    _extract(csv, root, ref, batch_size=2)
    out = str(tmp_path / "killed.h5")
    proc = subprocess.run([sys.executable, "-c", _KILLER, csv, root, out, str(kill_at)], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    assert not os.path.exists(out) and os.path.exists(out + ".partial")
    with h5py.File(out + ".partial", "r") as f:  # readable after the kill
        assert 0 < (f["status"][()] != 0).sum() < N_GOOD + 2
    summary = _extract(csv, root, out, batch_size=2)
    assert summary.n_resumed == (2 if kill_at == 3 else 4) and summary.n_ok == N_GOOD
    with h5py.File(ref, "r") as a, h5py.File(out, "r") as b:
        np.testing.assert_array_equal(a["features"][()], b["features"][()])
        np.testing.assert_array_equal(a["stats/mu"][()], b["stats/mu"][()])
        for k in a["examples"]:
            np.testing.assert_array_equal(a["examples"][k][()], b["examples"][k][()])
        np.testing.assert_array_equal(a["failed/file_name"][()], b["failed/file_name"][()])


def test_malformed_files_raise_store_error(tmp_path):
    bogus = tmp_path / "bogus.h5"
    bogus.write_bytes(b"not hdf5 at all")
    with pytest.raises(StoreError, match="cannot open"):
        FeatureFile(str(bogus))
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.create_dataset("features", data=np.zeros((1, 2, 3)))
    with pytest.raises(StoreError, match="lacks /paths"):
        FeatureFile(str(empty))
    with pytest.raises(StoreError, match="not found"):
        FeatureFile(str(tmp_path / "missing.h5"))


def test_write_features_round_trip(tmp_path, rng):
    table = path_table(SMALL)
    S = rng.random((4, len(table), table.n_frames)).astype(np.float32)
    ex = {"file_name": np.array(["a", "b", "c", "d"], object), "label": np.array([0, 1, 2, 3]),
          "subset": np.array(["training", "test", "training", "validation"], object)}
    write_features(str(tmp_path / "w.h5"), S, ex, SMALL)
    with FeatureFile(str(tmp_path / "w.h5")) as ff:
        np.testing.assert_array_equal(ff.load(), S)
        np.testing.assert_allclose(ff.mu, S[[0, 2]].mean(axis=(0, 2)), rtol=1e-6)
        assert list(ff.examples["file_name"]) == ["a", "b", "c", "d"]


def test_cli_exit_code_when_nothing_succeeds(tmp_path, capsys):
    root = tmp_path / "a"
    root.mkdir()
    (root / "bad.wav").write_bytes(b"junk")
    csv = tmp_path / "m.csv"
    csv.write_text("file_name\nbad.wav\nmissing.wav\n")
    code = main(["extract", str(csv), "--audio-root", str(root), "--out", str(tmp_path / "o.h5"),
                 "--device", "cpu", "--method", "kymatio"])
    assert code == 1
    assert "0 of 2 files extracted, 2 failed" in capsys.readouterr().out
    assert not os.path.exists(tmp_path / "o.h5")
