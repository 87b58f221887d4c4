"""``scatterxai describe``: layout, values in the right rows, failures listed, resume after SIGKILL, features."""

import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import soundfile as sf

from scatterxai.analysis.describe.descriptors import AUDIO_DESCRIPTORS, AUDIO_VECTORS, DESCRIPTORS, modulation_axis
from scatterxai.analysis.describe.run import DescribeConfig, describe_notes
from scatterxai.analysis.describe.store import DescriptorFile, match_notes
from scatterxai.cli import main
from scatterxai.data.split import spread_subset
from scatterxai.errors import ParameterError, StoreError
from scatterxai.features import extract_features
from scatterxai.scattering import path_table

from .conftest import KILL_AT_FLUSH, SMALL

SR = 16000
N_GOOD = 5


def am_tone(f0, rate, *, dur=1.3, depth=0.5):
    t = np.arange(int(dur * SR)) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 4))
    return 0.3 * (1 + depth * np.cos(2 * np.pi * rate * t)) * x / np.abs(x).max()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Five AM tones of distinct f0 and rate (ground truth in the CSV), a corrupt, an empty and a 5-ms file."""
    tmp = tmp_path_factory.mktemp("describe")
    root = tmp / "audio"
    (root / "deep").mkdir(parents=True)
    rows = ["file_name,label,subset,instrument,f0_hz,modulation_hz"]
    for i in range(N_GOOD):
        f0, rate = 150.0 * 2 ** (i / 2), 5.0 + 3 * i
        sub = "deep/" if i == 2 else ""  # found by base name
        sf.write(root / f"{sub}tone{i}.wav", am_tone(f0, rate), SR)
        rows.append(f"tone{i}.wav,{i % 3},{'test' if i % 2 else 'training'},Inst{i % 2},{f0},{rate}")
    (root / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    sf.write(root / "empty.wav", np.zeros(0), SR)
    sf.write(root / "short.wav", am_tone(440.0, 8.0)[:80], SR)
    rows[2:2] = ["corrupt.wav,1,test,Inst0,0,0"]
    rows += ["empty.wav,2,test,Inst1,0,0", "short.wav,0,training,Inst0,440,8"]
    csv = tmp / "meta.csv"
    csv.write_text("\n".join(rows) + "\n")
    return str(csv), str(root), tmp


def _describe(csv, root, out, **kw):
    config = DescribeConfig(**{"max_seconds": 0.0, "batch_size": 2, **kw.pop("config", {})})
    return describe_notes(csv, root, out, config=config, progress=False, **kw)


@pytest.fixture(scope="module")
def reference(corpus):
    csv, root, tmp = corpus
    out = str(tmp / "ref.h5")
    return _describe(csv, root, out), out


def test_layout_values_and_failures(corpus, reference):
    csv, root, tmp = corpus
    summary, out = reference
    assert (summary.n_selected, summary.n_ok, summary.n_failed) == (N_GOOD + 3, N_GOOD, 3)
    assert not os.path.exists(out + ".partial")
    with h5py.File(out, "r") as f:   # bare h5py, as a user would
        assert set(f["descriptors"]) == set(AUDIO_DESCRIPTORS)     # no features file: no scattering part
        for name in AUDIO_DESCRIPTORS:
            ds = f["descriptors"][name]
            assert ds.shape == (N_GOOD, *([AUDIO_VECTORS[name]] if name in AUDIO_VECTORS else [])), name
            assert ds.dtype == np.float64
            assert (ds.attrs["unit"], ds.attrs["description"]) == DESCRIPTORS[name]
        assert set(f["examples"]) == {"file_name", "label", "subset", "instrument", "f0_hz", "modulation_hz",
                                      "csv_row"}
        names = list(f["examples/file_name"].asstr()[()])
        assert names == [f"tone{i}.wav" for i in range(N_GOOD)]
        np.testing.assert_array_equal(f["examples/csv_row"][()], [0, 2, 3, 4, 5])
        failed = dict(zip(f["failed/file_name"].asstr()[()], f["failed/reason"].asstr()[()]))
        assert set(failed) == {"corrupt.wav", "empty.wav", "short.wav"}
        assert "AudioError" in failed["corrupt.wav"] and "no samples" in failed["empty.wav"]
        assert "fewer than one analysis frame" in failed["short.wav"]
        np.testing.assert_array_equal(sorted(f["failed/csv_row"][()]), [1, 6, 7])
        # each note's values sit in its own row: f0 within 20 cents, AM rate within 5 % of the truth
        f0, rate = f["descriptors/f0_hz"][()], f["descriptors/am_rate_hz"][()]
        assert np.all(np.abs(1200 * np.log2(f0 / f["examples/f0_hz"][()])) < 20), f0
        np.testing.assert_allclose(rate, f["examples/modulation_hz"][()], rtol=0.05)
    with DescriptorFile(out) as df:
        assert len(df) == N_GOOD and df.names == AUDIO_DESCRIPTORS and len(df.failed) == 3
        assert df.unit("fm_depth_cents") == "cents"
        with pytest.raises(ParameterError, match="not in"):
            df.values("s1_energy")
    # same settings: nothing to do; other settings: refuse unless overwrite
    assert _describe(csv, root, out).already_complete
    with pytest.raises(StoreError, match="other settings"):
        _describe(csv, root, out, config={"max_notes": 3})


_KILLER = KILL_AT_FLUSH + textwrap.dedent("""
    from scatterxai.analysis.describe.run import DescribeConfig, describe_notes
    describe_notes(csv, root, out, config=DescribeConfig(max_seconds=0.0, batch_size=2), progress=False)
""")


def test_resume_after_sigkill_gives_the_same_file(corpus, reference):
    csv, root, tmp = corpus
    out = str(tmp / "killed.h5")
    proc = subprocess.run([sys.executable, "-c", _KILLER, csv, root, out, "3"], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()     # killed after batch 2's data, before its marks
    assert not os.path.exists(out) and os.path.exists(out + ".partial")
    with h5py.File(out + ".partial", "r") as f:
        assert (f["status"][()] != 0).sum() == 2
    summary = _describe(csv, root, out)
    assert summary.n_resumed == 2 and summary.n_ok == N_GOOD and summary.n_failed == 3
    with h5py.File(reference[1], "r") as a, h5py.File(out, "r") as b:
        for name in AUDIO_DESCRIPTORS:
            np.testing.assert_array_equal(a["descriptors"][name][()], b["descriptors"][name][()])
        for k in a["examples"]:
            np.testing.assert_array_equal(a["examples"][k][()], b["examples"][k][()])
        for k in a["failed"]:
            np.testing.assert_array_equal(a["failed"][k][()], b["failed"][k][()])


def test_scattering_part_from_features(corpus):
    """With --features: S1 energies, modulation spectrum (with its λ2 axis), peak and ratio; NaN for notes the
    features file lacks; the default window is the features' N / sr.  Through the CLI, with two processes."""
    csv, root, tmp = corpus
    lines = open(csv).read().splitlines()
    part = tmp / "part.csv"
    part.write_text("\n".join(lines[:4]) + "\n")      # tone0, corrupt, tone1, tone2
    feats = str(tmp / "f.h5")
    extract_features(str(part), root, feats, config=SMALL, method="kymatio", progress=False)
    out = str(tmp / "with_features.h5")
    code = main(["-q", "describe", csv, "--audio-root", root, "--out", out, "--features", feats, "--subset", "test",
                 "--jobs", "2", "--batch-size", "1"])
    assert code == 0
    table = path_table(SMALL)
    with DescriptorFile(out) as df:
        names = list(df.examples["file_name"])
        assert names == ["tone1.wav", "tone3.wav"]            # test rows that could be read
        assert df.attrs["max_seconds"] == pytest.approx(SMALL.N / SMALL.sr)
        s1, M = df.values("s1_energy"), df.values("modulation_spectrum")
        assert s1.shape == (2, int(np.sum(table.order == 1))) and df.unit("s1_energy") == "scattering units"
        np.testing.assert_array_equal(df.axis("modulation_spectrum"), modulation_axis(table))
        assert M.shape == (2, modulation_axis(table).size)
        assert np.all(np.isfinite(s1[0])) and np.all(np.isnan(s1[1]))      # tone3 has no features
        assert np.isfinite(df.values("s2_s1_ratio")[0]) and np.isnan(df.values("modulation_peak_hz")[1])
        assert df.axis("modulation_spectrum")[np.nanargmax(M[0])] == df.values("modulation_peak_hz")[0]


def test_spread_subset_balances_classes_and_groups():
    labels = np.repeat([0, 1, 2], [30, 6, 30])
    groups = np.array([f"g{i % 5}" for i in range(66)])
    rows = spread_subset(labels, 20, groups=groups, seed=1)
    assert rows.size == 20 and np.all(np.diff(rows) > 0)
    counts = np.bincount(labels[rows])
    assert counts[1] == 6 and abs(counts[0] - counts[2]) <= 1     # the small class gives all it has
    for c in (0, 2):
        assert len(set(groups[rows][labels[rows] == c])) == 5       # every instrument of the class appears
    np.testing.assert_array_equal(rows, spread_subset(labels, 20, groups=groups, seed=1))
    np.testing.assert_array_equal(spread_subset(labels, 100), np.arange(66))
    with pytest.raises(ParameterError, match="positive integer"):
        spread_subset(labels, 0)


def test_match_notes():
    idx = match_notes(["a", "b", "a", "c"], [0, 1, 2, 3], ["a", "c", "x", "a"], [2, 3, 9, 5])
    np.testing.assert_array_equal(idx, [2, 3, -1, -1])   # repeated name: csv_row decides; no match: -1
    np.testing.assert_array_equal(match_notes(["a", "b"], None, ["b", "a"]), [1, 0])


def test_only_the_described_part_is_decoded(corpus, monkeypatch):
    """With max_seconds, compute_batch decodes only that part of a file (a long recording is not read whole)
    and describes what it decoded: the same values as the file cut to max_seconds beforehand."""
    import scatterxai.audio as audio
    from scatterxai.analysis.describe.run import compute_batch
    csv, root, tmp = corpus
    long_dir = tmp / "long"
    long_dir.mkdir(exist_ok=True)
    sf.write(long_dir / "long.wav", am_tone(220.0, 6.0, dur=12.0), SR)
    sf.write(long_dir / "cut.wav", am_tone(220.0, 6.0, dur=12.0)[:int(1.5 * SR)], SR)
    read = []
    original = audio.read_audio
    monkeypatch.setattr(audio, "read_audio",
                        lambda path, **kw: read.append(kw.get("frames", -1)) or original(path, **kw))
    res = compute_batch([0, 1], [str(long_dir / "long.wav"), str(long_dir / "cut.wav")], resolve=lambda p: p,
                        max_seconds=1.5, fmin_hz=32.0, fmax_hz=4000.0)
    assert read == [int(1.5 * SR)] * 2 and res.ok_rows == [0, 1] and not res.failed
    for k, v in res.values.items():
        np.testing.assert_array_equal(v[0], v[1], err_msg=k)
