"""Labels, classes and the split in one place; meta-CSV defects (#18's label items); output folders; windows of
long recordings."""

import logging
import os

import h5py
import numpy as np
import pytest
import soundfile as sf

from scatterxai._util.fs import prepare_output
from scatterxai.audio import load_prepared, prepare, read_audio, read_window, segment_starts
from scatterxai.cli import main
from scatterxai.data import encode_labels, prepare_labels, read_meta_csv, split_622
from scatterxai.errors import DataError, ParameterError, StoreError
from scatterxai.features import FeatureFile, extract_features, write_features
from scatterxai.scattering import path_table
from scatterxai.task import CLASSES

from .conftest import SMALL

# ----------------------------------------------------------------------------------------- encode_labels


def test_text_labels_name_their_classes():
    labels, classes = encode_labels(np.array(["plain", "am", "fm", "am"], dtype=object))
    assert classes == ("am", "fm", "plain") and labels.tolist() == [2, 0, 1, 0]
    # names of the paper's classes keep the paper's order, but only those present
    labels, classes = encode_labels(np.array(["tremolo", "vibrato"], dtype=object))
    assert classes == ("vibrato", "tremolo") and labels.tolist() == [1, 0]
    # a given list fixes the order and may name classes without examples
    labels, classes = encode_labels(np.array(["b", "a"], dtype=object), ["b", "a", "c"])
    assert classes == ("b", "a", "c") and labels.tolist() == [0, 1]


def test_integer_labels_are_named_by_a_list_a_name_column_or_their_index():
    assert encode_labels(np.array([0, 2, 1]))[1] == ("0", "1", "2")
    assert encode_labels(np.array([0, 2, 1]), ["x", "y", "z"])[1] == ("x", "y", "z")
    # SOL-PMT's "modulation technique" column names the labels: the paper's five when they match
    names = np.array(["trill", "vibrato", "trill"], dtype=object)
    assert encode_labels(np.array([1, 0, 1]), names=names)[1] == CLASSES
    assert encode_labels(np.array([1, 0]), names=np.array(["up", "down"], dtype=object))[1] == ("down", "up")
    with pytest.raises(DataError, match=r"label 1 is named \['a', 'b'\]"):
        encode_labels(np.array([1, 1, 0]), names=np.array(["a", "b", "c"], dtype=object))


@pytest.mark.parametrize("values, match", [
    (np.array([0.0, 1.5, 2.0]), r"row\(s\) 2 hold \[1\.5\]"),           # was silently class 1 (#18)
    (np.array([0.0, np.nan, 1.0]), r"empty or not a number in row\(s\) 2"),
    (np.array(["a", " ", "b"], dtype=object), r"empty in row\(s\) 2"),
    (np.array([0, -1, 1]), "must be class indices >= 0"),
    (np.array(["only", "only"], dtype=object), "only one class"),
])
def test_bad_labels_are_errors(values, match):
    with pytest.raises(DataError, match=match):
        encode_labels(values)
    with pytest.raises(DataError, match="not indices into the 2 classes"):
        encode_labels(np.array([0, 2]), ["a", "b"])
    with pytest.raises(ParameterError, match="more than once"):
        encode_labels(np.array([0, 1]), ["a", "a"])


# ---------------------------------------------------------------------------------------- prepare_labels

def test_the_split_is_drawn_once_per_class_and_instrument_and_recorded():
    labels = np.array(["am", "fm", "plain"] * 10, dtype=object)
    inst = np.array(["vn", "fl"] * 15, dtype=object)
    info = prepare_labels({"file_name": np.arange(30).astype(str), "label": labels, "instrument": inst}, seed=4)
    assert info.split == "drawn" and info.split_seed == 4 and info.split_groups == "instrument"
    np.testing.assert_array_equal(info.subset, split_622(info.labels, groups=inst, seed=4))
    attrs = info.attrs()
    assert list(attrs["classes"]) == ["am", "fm", "plain"] and attrs["split_ratio"] == "6:2:2"
    given = prepare_labels({"label": labels[:3], "subset": np.array([" test", "training", "validation"], object)})
    assert given.split == "given" and given.subset.tolist() == ["test", "training", "validation"]
    assert prepare_labels({"file_name": np.array(["a"], object)}).split == "none"
    with pytest.raises(DataError, match=r"subset values \['train'\] \(row\(s\) 2\)"):
        prepare_labels({"label": labels[:2], "subset": np.array(["test", "train"], object)})


def test_duplicate_rows_warn(caplog):
    caplog.set_level(logging.WARNING, logger="scatterxai")
    cols = {"file_name": np.array(["a.wav", "b.wav", "a.wav", "b.wav"], object),
            "label": np.array(["x", "y", "x", "x"], object)}
    prepare_labels(cols, what="m.csv")
    assert "1 row(s) repeat an earlier row exactly (row 3 = row 1" in caplog.text
    assert "lists 1 file(s) more than once with different values (e.g. 'b.wav' in rows 2, 4)" in caplog.text


def test_latin1_meta_csv_says_which_encoding_is_expected(tmp_path, capsys):
    path = tmp_path / "meta.csv"
    path.write_bytes("file_name,label\nnote.wav,plain\ncafé.wav,am\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"is not UTF-8 text: byte 0xe9 on line 3 .*Latin-1"):
        read_meta_csv(path)
    (tmp_path / "audio").mkdir()
    assert main(["extract", str(path), "--audio-root", str(tmp_path / "audio"), "--out", str(tmp_path / "f.h5")]) == 2
    assert "not UTF-8" in capsys.readouterr().err


# -------------------------------------------------------------------------------------- extraction

def _notes(tmp_path, rows, durations=None):
    """WAVs (0.3 s, or the given durations) and a meta CSV with the given rows ("name,label[,…]" lines)."""
    audio = tmp_path / "audio"
    audio.mkdir(exist_ok=True)
    for i, line in enumerate(rows[1:]):
        name = line.split(",")[0]
        n = int((durations[i] if durations else 0.3) * 22050)
        sf.write(audio / name, np.sin(np.arange(n) * 0.05 * (i + 1))[:, None].repeat(2, 1), 22050)
    (tmp_path / "meta.csv").write_text("\n".join(rows) + "\n")
    return str(tmp_path / "meta.csv"), str(audio)


def test_extract_refuses_a_label_1_5_before_reading_audio(tmp_path, capsys):
    meta, audio = _notes(tmp_path, ["file_name,label", "a.wav,0", "b.wav,1.5", "c.wav,1"])
    assert main(["extract", meta, "--audio-root", audio, "--out", str(tmp_path / "f.h5")]) == 2
    assert "hold [1.5]" in capsys.readouterr().err and not os.path.exists(tmp_path / "f.h5.partial")


def test_extract_records_classes_and_relabels_without_recomputing(tmp_path):
    rows = ["file_name,label"] + [f"n{i}.wav,{('b', 'a')[i % 2]}" for i in range(10)]
    meta, audio = _notes(tmp_path, rows)
    out = str(tmp_path / "f.h5")
    extract_features(meta, audio, out, config=SMALL, progress=False)
    with FeatureFile(out) as ff:
        assert ff.classes == ("a", "b") and ff.labels.tolist() == [1, 0] * 5
        first, S = ff.examples["subset"], ff.load()
        assert ff.attrs["split"] == "drawn" and ff.attrs["split_seed"] == 0
    # another split seed: the coefficients are kept, labels and split rewritten (no audio read: remove it)
    for name in os.listdir(audio):
        os.remove(os.path.join(audio, name))
    summary = extract_features(meta, audio, out, config=SMALL, seed=3, progress=False)
    assert summary.relabelled and "rewritten" in summary.describe()
    with FeatureFile(out) as ff:
        np.testing.assert_array_equal(ff.load(), S)
        assert ff.attrs["split_seed"] == 3 and ff.examples["subset"].tolist() != first.tolist()
        assert ff.mu.shape == (len(path_table(SMALL)),)
    summary = extract_features(meta, audio, out, config=SMALL, seed=3, classes=["b", "a"], progress=False)
    with FeatureFile(out) as ff:
        assert ff.classes == ("b", "a") and ff.labels.tolist() == [0, 1] * 5
    assert extract_features(meta, audio, out, config=SMALL, seed=3, classes=["b", "a"],
                            progress=False).already_complete


def test_extract_segments_long_files(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="scatterxai")
    meta, audio = _notes(tmp_path, ["file_name,label,subset", "long.wav,x,training", "short.wav,y,test"],
                         durations=[0.5, 0.1])
    window = SMALL.N / SMALL.sr
    out = str(tmp_path / "f.h5")
    extract_features(meta, audio, out, config=SMALL, progress=False)
    assert "1 file(s) are longer than the transform's window (0.19 s)" in caplog.text and "long.wav" in caplog.text
    summary = extract_features(meta, audio, out, config=SMALL, segments=True, overwrite=True, progress=False)
    assert summary.n_rows == 4 and summary.n_ok == 2 and "windows" in summary.describe()
    with FeatureFile(out) as ff:
        ex = ff.examples
        assert ex["segment"].tolist() == [0, 1, 2, 0] and ex["csv_row"].tolist() == [0, 0, 0, 1]
        np.testing.assert_allclose(ex["start_s"], [0, window, 0.5 - window, 0])
        assert ex["subset"].tolist() == ["training"] * 3 + ["test"] and bool(ff.attrs["segments"])
        x = read_window(os.path.join(audio, "long.wav"), SMALL, start_s=window)[0]
    from scatterxai.scattering import scatter
    with FeatureFile(out) as ff:
        np.testing.assert_allclose(ff.load([1])[0], scatter(x, SMALL, device="cpu")[0].numpy(), rtol=1e-5, atol=1e-7)


def test_features_labels_are_checked_when_read(tmp_path):
    table = path_table(SMALL)
    path = tmp_path / "f.h5"
    write_features(path, np.ones((3, len(table), table.n_frames), np.float32),
                   {"file_name": np.array(["a", "b", "c"], object), "label": np.array([0, 3, 1])}, SMALL)
    with FeatureFile(path) as ff:   # integer labels without names: named by their index
        assert ff.classes == ("0", "1", "2", "3")
    with h5py.File(path, "r+") as f:   # files of earlier versions: text or fractional labels
        del f["examples/label"]
        f["examples/label"] = np.array(["trill", "vibrato", "trill"], dtype=object).astype("S")
        f.attrs["classes"] = np.array(CLASSES, dtype=object)
    with FeatureFile(path) as ff:
        assert ff.labels.tolist() == [1, 0, 1]
    with h5py.File(path, "r+") as f:
        del f["examples/label"]
        f["examples/label"] = np.array([0, 1.5, 1])
    with FeatureFile(path) as ff, pytest.raises(StoreError, match=r"non-integer values \[1\.5\]"):
        ff.labels  # noqa: B018


# --------------------------------------------------------------------------------------- output folders

def test_outputs_create_at_most_one_missing_folder(tmp_path, capsys):
    assert prepare_output(tmp_path / "new" / "r.h5") == str(tmp_path / "new" / "r.h5")
    assert os.path.isdir(tmp_path / "new")
    with pytest.raises(ParameterError, match=r"a does not exist"):
        prepare_output(tmp_path / "a" / "sub" / "r.h5")
    assert not os.path.exists(tmp_path / "a")
    prepare_output(tmp_path / "b" / "model", is_dir=True)     # a directory output and its parent
    assert os.path.isdir(tmp_path / "b" / "model")
    with pytest.raises(ParameterError, match="does not exist"):
        prepare_output(tmp_path / "c" / "d" / "model", is_dir=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(ParameterError, match="is not a directory"):
        prepare_output(tmp_path / "file" / "x", is_dir=True)
    # through a command: nothing is created outside the user's intent
    assert main(["figures", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "x" / "y" / "figs")]) == 2
    assert not os.path.exists(tmp_path / "x")


# ------------------------------------------------------------------------------------- long recordings

def test_read_window_decodes_only_what_it_needs_and_equals_the_whole_file(tmp_path):
    rng = np.random.default_rng(0)
    for sr in (22050, 48000, 44100):
        path = str(tmp_path / f"x{sr}.wav")
        sf.write(path, 0.1 * rng.standard_normal((3 * sr, 2)), sr, subtype="PCM_16")
        whole = prepare(*read_audio(path), n=2 ** 16)
        np.testing.assert_array_equal(load_prepared(path, n=2 ** 16), whole)   # bit-identical
        x, duration = read_window(path, n=2 ** 16, start_s=1.0)
        assert duration == pytest.approx(3.0) and x.shape == (2 ** 16,)
    y, _ = read_audio(path, start=44100, frames=100)
    assert y.shape == (100, 2)


def test_segment_starts():
    np.testing.assert_allclose(segment_starts(1.0, 2.0), [0.0])
    np.testing.assert_allclose(segment_starts(4.0, 2.0), [0.0, 2.0])
    np.testing.assert_allclose(segment_starts(5.0, 2.0), [0.0, 2.0, 3.0])   # the last one ends at the end
    with pytest.raises(ParameterError):
        segment_starts(1.0, 0.0)


def test_run_config_data_sources():
    from scatterxai.pipeline import RunConfig
    with pytest.raises(ParameterError, match="--meta needs --audio-root"):
        RunConfig(meta="my.csv")
    with pytest.raises(ParameterError, match="--audio-root needs --meta"):
        RunConfig(audio_root="audio")
    with pytest.raises(ParameterError, match="not both"):
        RunConfig(meta="my.csv", audio_root="audio", sol_root="sol")
    assert RunConfig(meta="my.csv", audio_root="audio").audio_root == "audio"
    assert RunConfig(sol_root="sol").meta is None   # SOL with the published split
