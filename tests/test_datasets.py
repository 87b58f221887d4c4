"""Meta CSV in/out, the 6:2:2 split, and the SOL / generic CSV loaders (on small fake trees)."""

import collections
import os

import numpy as np
import pytest
import soundfile as sf

from scatterxai.data import (
    META_COLUMNS,
    SOL_META_CSV,
    SUBSETS,
    Dataset,
    labels_from_values,
    load_csv,
    load_sol,
    read_meta_csv,
    split_622,
    write_meta_csv,
)
from scatterxai.errors import DataError, ParameterError
from scatterxai.task import CLASSES


def _wav(path, n=441):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sf.write(path, np.zeros(n), 44100, subtype="PCM_16")


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


# ---------------------------------------------------------------------------------------------- CSV


def test_constants():
    assert CLASSES == ("vibrato", "trill", "tremolo", "bisbigliando", "flatterzunge")
    assert META_COLUMNS == ("instrument family", "instrument", "technique original", "modulation technique",
                            "file_name", "subset", "label")


def test_meta_csv_round_trip_keeps_types_and_exact_floats(tmp_path):
    floats = np.array([0.1, 1 / 3, 1e-300, -2.5e10, np.pi])
    cols = {"file_name": np.array(["a.wav", "b, with comma.wav", 'c "quoted".wav', "d.wav", "5.wav"],
                                  dtype=object),
            "label": np.array([0, 1, 2, 3, 4]), "f0_hz": floats,
            "mixed": np.array(["1", "x", "2", "3", "4"], dtype=object)}
    path = write_meta_csv(tmp_path / "m.csv", cols)
    back = read_meta_csv(path)
    assert list(back) == list(cols)
    assert back["label"].dtype == np.int64 and back["label"].tolist() == [0, 1, 2, 3, 4]
    assert back["f0_hz"].dtype == np.float64 and np.array_equal(back["f0_hz"], floats)
    assert back["file_name"].dtype == object and back["file_name"].tolist() == cols["file_name"].tolist()
    assert back["mixed"].dtype == object  # one cell does not parse: the whole column stays text
    assert not os.path.exists(str(path) + f".tmp-{os.getpid()}")


def test_meta_csv_underscored_digits_stay_text(tmp_path):
    _write_text(tmp_path / "m.csv", "file_name,take\na.wav,1_2\nb.wav,3\n")
    back = read_meta_csv(tmp_path / "m.csv")
    assert back["take"].dtype == object and back["take"].tolist() == ["1_2", "3"]


def test_meta_csv_empty_cells_in_a_float_column_are_nan(tmp_path):
    _write_text(tmp_path / "m.csv", "file_name,x\na.wav,1.5\nb.wav,\n")
    back = read_meta_csv(tmp_path / "m.csv")
    assert back["x"].dtype == np.float64 and back["x"][0] == 1.5 and np.isnan(back["x"][1])


@pytest.mark.parametrize("text, match", [
    ("", "is empty"),
    ("file_name,label,label\na.wav,1,2\n", "duplicate column names"),
    ("file_name,label\na.wav,1,7\n", "line 2: 3 fields"),
    ("file_name,,label\na.wav,1,2\n", "empty column name"),
])
def test_meta_csv_errors(tmp_path, text, match):
    _write_text(tmp_path / "m.csv", text)
    with pytest.raises(DataError, match=match):
        read_meta_csv(tmp_path / "m.csv")


def test_meta_csv_missing_file_and_bad_columns(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_meta_csv(tmp_path / "nope.csv")
    with pytest.raises(ParameterError, match="same length"):
        write_meta_csv(tmp_path / "m.csv", {"a": [1, 2], "b": [1]})


def test_labels_from_names_and_indices():
    assert labels_from_values(np.array(["trill", "flatterzunge"], dtype=object)).tolist() == [1, 4]
    assert labels_from_values(np.array([0, 4])).tolist() == [0, 4]
    with pytest.raises(DataError, match=r"\['glissando'\] are not class names"):
        labels_from_values(np.array(["trill", "glissando"], dtype=object))
    with pytest.raises(DataError, match=r"\[5\] are not class indices 0..4"):
        labels_from_values(np.array([1, 5]))


# -------------------------------------------------------------------------------------------- split


def test_split_622_per_cell_and_per_class():
    rng = np.random.default_rng(1)
    labels, groups = [], []
    for c in range(3):
        for g, size in enumerate(rng.integers(1, 40, size=7)):
            labels += [c] * int(size)
            groups += [f"inst{g}"] * int(size)
    labels, groups = np.array(labels), np.array(groups, dtype=object)
    subset = split_622(labels, groups=groups, seed=3)
    assert set(subset) == set(SUBSETS)
    for key in {(c, g) for c, g in zip(labels, groups)} | {(c, None) for c in set(labels)}:
        rows = (labels == key[0]) & ((groups == key[1]) if key[1] is not None else True)
        n = rows.sum()
        counts = collections.Counter(subset[rows])
        for name, share in zip(SUBSETS, (0.6, 0.2, 0.2)):
            assert abs(counts[name] - share * n) < 1.0 + 1e-9, (key, n, counts)
    assert np.array_equal(split_622(labels, groups=groups, seed=3), subset)
    assert not np.array_equal(split_622(labels, groups=groups, seed=4), subset)


def test_split_622_small_cells_still_fill_every_subset():
    # 5 instruments with 1 note each: no cell can be split, but the class appears in all subsets
    subset = split_622(np.zeros(5, dtype=int), groups=np.arange(5), seed=0)
    assert collections.Counter(subset) == {"training": 3, "validation": 1, "test": 1}
    # any class with >= 3 notes is in all three subsets, whatever the seed
    for seed in range(20):
        assert set(split_622(np.zeros(3, dtype=int), groups=np.array([0, 1, 1]), seed=seed)) == set(SUBSETS)


def test_split_622_validates_shapes():
    with pytest.raises(ParameterError, match="shape of labels"):
        split_622(np.zeros(4), groups=np.zeros(3))


# ---------------------------------------------------------------------------------------- SOL loader


def _fake_sol(tmp_path, n_missing=0):
    """A SOL-like tree (family/instrument/technique folders) and a meta CSV with base names."""
    rows = [("Strings", "Violin", "tremolo", "tremolo", "Vn-trem-A4-mf-1c.wav", "training", 2),
            ("Flutes", "Flute", "flatterzunge", "flatterzunge", "Fl-flatt-C5-pp.wav", "test", 4),
            ("Oboes", "Oboe", "vibrato", "vibrato", "Ob-vib-A4-mf.wav", "validation", 0)]
    root = tmp_path / "SOL_0.9_HQ"
    for fam, inst, orig, _, name, _, _ in rows:
        _wav(str(root / fam / inst / orig / name))
    for i in range(n_missing):
        rows.append(("Horns", "Horn", "flatterzunge", "flatterzunge", f"Hn-flatt-missing{i:02d}.wav",
                     "training", 4))
    meta = tmp_path / "meta.csv"
    write_meta_csv(meta, {c: np.array([r[j] for r in rows], dtype=object if j < 6 else None)
                          for j, c in enumerate(META_COLUMNS)})
    return root, meta


def test_load_sol_resolves_nested_base_names(tmp_path):
    root, meta = _fake_sol(tmp_path)
    ds = load_sol(root, meta)
    assert isinstance(ds, Dataset) and len(ds) == 3
    assert ds.labels.tolist() == [2, 4, 0]
    for path, name in zip(ds.audio_paths, ds.columns["file_name"]):
        assert os.path.isabs(path) and os.path.basename(path) == name and os.path.isfile(path)
    assert ds.indices("test").tolist() == [1]


def test_load_sol_lists_missing_files(tmp_path):
    root, meta = _fake_sol(tmp_path, n_missing=12)
    with pytest.raises(DataError, match=r"12 of 15 audio files were not found") as err:
        load_sol(root, meta)
    msg = str(err.value)
    assert "Hn-flatt-missing00.wav" in msg and "Hn-flatt-missing09.wav" in msg
    assert "Hn-flatt-missing10.wav" not in msg and "…" in msg


def test_load_sol_default_meta_is_the_published_split(tmp_path):
    assert os.path.isfile(SOL_META_CSV)
    with pytest.raises(DataError, match=r"5564 of 5564 audio files were not found"):
        load_sol(tmp_path)


def test_load_sol_rejects_bad_columns_and_labels(tmp_path):
    root, meta = _fake_sol(tmp_path)
    cols = read_meta_csv(meta)
    cols["label"][0] = 1  # tremolo labelled as trill
    write_meta_csv(tmp_path / "bad.csv", cols)
    with pytest.raises(DataError, match="disagrees with their modulation technique"):
        load_sol(root, tmp_path / "bad.csv")
    del cols["subset"]
    write_meta_csv(tmp_path / "bad2.csv", cols)
    with pytest.raises(DataError, match=r"lacks the column\(s\) \['subset'\]"):
        load_sol(root, tmp_path / "bad2.csv")
    with pytest.raises(DataError, match="audio directory not found"):
        load_sol(tmp_path / "nowhere", meta)


def test_load_sol_rejects_ambiguous_base_names(tmp_path):
    root, meta = _fake_sol(tmp_path)
    _wav(str(root / "copy" / "Ob-vib-A4-mf.wav"))
    with pytest.raises(DataError, match="match several files"):
        load_sol(root, meta)


# ---------------------------------------------------------------------------------------- CSV loader


def _generic(tmp_path, with_subset=False):
    audio = tmp_path / "audio"
    names = [f"sub/n{i:02d}.wav" for i in range(20)]
    for name in names:
        _wav(str(audio / name))
    techniques = [CLASSES[i % 5] for i in range(20)]
    cols = {"path": np.array(names, dtype=object), "technique": np.array(techniques, dtype=object),
            "player": np.array([f"p{i % 2}" for i in range(20)], dtype=object)}
    if with_subset:
        cols["split"] = np.array([SUBSETS[i % 3] for i in range(20)], dtype=object)
    write_meta_csv(tmp_path / "any.csv", cols)
    return tmp_path / "any.csv", audio


def test_load_csv_names_labels_and_draws_the_split(tmp_path):
    csv_path, audio = _generic(tmp_path)
    ds = load_csv(csv_path, audio_root=audio, path_column="path", label_column="technique",
                  instrument_column="player", seed=1)
    assert ds.labels.tolist() == [i % 5 for i in range(20)]
    assert ds.columns["subset"].tolist() == split_622(ds.labels, groups=ds.columns["player"], seed=1).tolist()
    assert all(os.path.isfile(p) for p in ds.audio_paths)
    assert ds.columns["file_name"][0] == "sub/n00.wav"


def test_load_csv_uses_a_given_subset_column_and_int_labels(tmp_path):
    csv_path, audio = _generic(tmp_path, with_subset=True)
    cols = read_meta_csv(csv_path)
    cols["label"] = labels_from_values(cols.pop("technique"))
    write_meta_csv(csv_path, cols)
    ds = load_csv(csv_path, audio_root=audio, path_column="path", subset_column="split")
    assert ds.columns["subset"].tolist() == [SUBSETS[i % 3] for i in range(20)]


def test_load_csv_finds_base_names_below_the_csv_directory(tmp_path):
    csv_path, audio = _generic(tmp_path)
    cols = read_meta_csv(csv_path)
    cols["path"] = np.array([os.path.basename(p) for p in cols["path"]], dtype=object)
    write_meta_csv(csv_path, cols)
    ds = load_csv(csv_path, path_column="path", label_column="technique")  # root: the CSV's folder
    assert ds.audio_paths[3] == str(audio / "sub" / "n03.wav")


def test_load_csv_errors(tmp_path):
    csv_path, audio = _generic(tmp_path)
    with pytest.raises(DataError, match=r"lacks the column\(s\) \['file_name'\]"):
        load_csv(csv_path, audio_root=audio, label_column="technique")
    with pytest.raises(DataError, match=r"lacks the column\(s\) \['instrument'\]"):
        load_csv(csv_path, audio_root=audio, path_column="path", label_column="technique",
                 instrument_column="instrument")
    # any text labels are classes (intended since the label-set change: they were refused before)
    ds = load_csv(csv_path, audio_root=audio, path_column="path", label_column="player")
    assert ds.classes == ("p0", "p1") and ds.labels.tolist() == [i % 2 for i in range(20)]
    with pytest.raises(DataError, match=r"\['p1'\] are not among the given classes \['p0', 'x'\]"):
        load_csv(csv_path, audio_root=audio, path_column="path", label_column="player", classes=["p0", "x"])
    os.remove(audio / "sub" / "n07.wav")
    with pytest.raises(DataError, match=r"1 of 20 audio files were not found.*n07\.wav"):
        load_csv(csv_path, audio_root=audio, path_column="path", label_column="technique")


def test_to_meta_csv_round_trips_through_load_csv(tmp_path):
    csv_path, audio = _generic(tmp_path)
    ds = load_csv(csv_path, audio_root=audio, path_column="path", label_column="technique", seed=2)
    for relative_to in (None, audio):
        out = ds.to_meta_csv(tmp_path / "out.csv", relative_to=relative_to)
        back = read_meta_csv(out)
        assert list(back)[:3] == ["file_name", "subset", "label"]  # SOL-PMT columns first
        assert os.path.isabs(back["file_name"][0]) == (relative_to is None)
        again = load_csv(out, audio_root=audio)
        assert again.audio_paths == ds.audio_paths
        assert again.columns["subset"].tolist() == ds.columns["subset"].tolist()
        assert again.labels.tolist() == ds.labels.tolist()
    assert again.classes == ds.classes == CLASSES
