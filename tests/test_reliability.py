"""Nothing a user already has is lost (issue #18): partial files, output locks, atomic model directories,
outputs that are inputs, the extraction settings, --retry-failed / --overwrite and the leftover partial."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import soundfile as sf
import torch

from scatterxai._util.fs import atomic_dir, check_not_inputs, output_lock, prepare_output
from scatterxai.errors import LockError, ModelError, OutputError, ParameterError, StoreError
from scatterxai.features import FeatureFile, extract_features
from scatterxai.features import extract as extract_mod
from scatterxai.io.partial import FAILED, settings_digest

from .conftest import SMALL, train_one_epoch, write_toy_features

# One torch thread: these tiny transforms gain nothing from more, and lose a lot on a busy machine.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _tone(path, i, sr=22050):
    t = np.arange(SMALL.N // 2) / sr
    sf.write(path, np.sin(2 * np.pi * (200 + 40 * i) * t) * (1 + 0.5 * np.sin(2 * np.pi * 5 * t)), sr)


@pytest.fixture
def corpus(tmp_path):
    """Five tones and one corrupt file; labels and a subset column."""
    root = tmp_path / "audio"
    root.mkdir()
    rows = ["file_name,label,subset"]
    for i in range(5):
        _tone(root / f"n{i}.wav", i)
        rows.append(f"n{i}.wav,{i},{'training' if i < 3 else 'test'}")
    (root / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    rows.append("bad.wav,1,training")
    csv = tmp_path / "meta.csv"
    csv.write_text("\n".join(rows) + "\n")
    return str(csv), str(root)


def _extract(csv, root, out, **kw):
    kw.setdefault("method", "fast")
    return extract_features(csv, root, out, config=SMALL, device="cpu", progress=False, batch_size=2, **kw)


def _interrupted(csv, root, out, monkeypatch, after=1, **kw):
    """Run an extraction that is interrupted (KeyboardInterrupt) after ``after`` batches."""
    real = extract_mod.compute_batch
    calls = [0]

    def flaky(*a, **k):
        calls[0] += 1
        if calls[0] > after:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(extract_mod, "compute_batch", flaky)
    with pytest.raises(KeyboardInterrupt):
        _extract(csv, root, out, **kw)
    monkeypatch.setattr(extract_mod, "compute_batch", real)
    assert os.path.exists(out + ".partial") and not os.path.exists(out)


_HOLD = textwrap.dedent("""
    import sys, h5py
    f = h5py.File(sys.argv[1], "r")
    print("open", flush=True)
    sys.stdin.read()
""")


# ------------------------------------------------------------------------ 1. the partial file is kept

def test_partial_open_read_only_elsewhere_is_kept_and_reported(corpus, tmp_path, monkeypatch):
    csv, root = corpus
    out = str(tmp_path / "f.h5")
    _interrupted(csv, root, out, monkeypatch)
    before = open(out + ".partial", "rb").read()
    reader = subprocess.Popen([sys.executable, "-c", _HOLD, out + ".partial"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        assert reader.stdout.readline().strip() == b"open"
        with pytest.raises(StoreError, match=r"f\.h5\.partial is in use by another process"):
            _extract(csv, root, out)
        assert open(out + ".partial", "rb").read() == before
    finally:
        reader.communicate(b"")
    summary = _extract(csv, root, out)        # resumes once the reader is gone
    assert summary.n_resumed == 2 and summary.n_ok == 5 and summary.n_failed == 1


def test_partial_with_a_transient_open_error_is_kept(corpus, tmp_path, monkeypatch):
    csv, root = corpus
    out = str(tmp_path / "f.h5")
    _interrupted(csv, root, out, monkeypatch)
    before = open(out + ".partial", "rb").read()
    real = h5py.File

    def failing(name, mode="r", *a, **k):
        if os.fspath(getattr(name, "path", name)).endswith(".partial") and mode == "r+":   # (a guarded file)
            raise OSError(5, "Input/output error")
        return real(name, mode, *a, **k)

    monkeypatch.setattr(h5py, "File", failing)
    with pytest.raises(StoreError, match="cannot open .*f.h5.partial.*left untouched"):
        _extract(csv, root, out)
    monkeypatch.setattr(h5py, "File", real)
    assert open(out + ".partial", "rb").read() == before
    assert _extract(csv, root, out).n_resumed == 2


@pytest.mark.parametrize("content", ["junk", "other_hdf5"])
def test_a_partial_that_is_not_ours_is_replaced(corpus, tmp_path, content, caplog):
    csv, root = corpus
    out = str(tmp_path / "f.h5")
    if content == "junk":
        (tmp_path / "f.h5.partial").write_bytes(b"\0" * 5000)
    else:
        with h5py.File(out + ".partial", "w") as f:
            f["x"] = np.arange(3)
    assert _extract(csv, root, out).n_ok == 5
    assert "not a partial extraction" in caplog.text


# --------------------------------------------------------------------------------- 2. one writer per output

_LOCKER = textwrap.dedent("""
    import sys
    from scatterxai._util.fs import output_lock
    with output_lock(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.read()
""")


@pytest.fixture
def held_lock():
    procs = []

    def hold(target):
        p = subprocess.Popen([sys.executable, "-c", _LOCKER, str(target)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
        assert p.stdout.readline().strip() == b"locked"
        procs.append(p)
        return p

    yield hold
    for p in procs:
        p.communicate(b"")


def test_second_writer_is_refused_with_the_holders_pid(corpus, tmp_path, held_lock):
    csv, root = corpus
    out = str(tmp_path / "f.h5")
    holder = held_lock(out)
    with pytest.raises(LockError, match=rf"being written by process {holder.pid} on host"):
        _extract(csv, root, out)
    assert not os.path.exists(out + ".partial")


def test_stale_lock_of_a_dead_process_is_taken_over(corpus, tmp_path):
    csv, root = corpus
    out = str(tmp_path / "f.h5")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    (tmp_path / "f.h5.lock").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(),
                                                   "since": 0}))
    assert _extract(csv, root, out).n_ok == 5
    assert not os.path.exists(out + ".lock")


def test_lock_of_another_host_is_not_taken_over(tmp_path):
    target = tmp_path / "f.h5"
    (tmp_path / "f.h5.lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": 0}))
    with pytest.raises(LockError, match="cannot be checked from this host"):
        with output_lock(target):
            pass


def test_lock_is_exclusive_and_released(tmp_path):
    target = tmp_path / "x.h5"
    with output_lock(target) as lock:
        info = json.loads(open(lock).read())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        with pytest.raises(LockError, match="only one scatterxai process"):
            with output_lock(target):
                pass
    assert not os.path.exists(lock)
    with output_lock(target):   # free again
        pass


def test_explain_refuses_a_locked_output(tmp_path, held_lock, trained):
    features, model_dir = trained
    out = tmp_path / "r.h5"
    held_lock(out)
    from scatterxai.explain import explain
    with pytest.raises(LockError):
        explain(features, model_dir=model_dir, out=out, methods=["epsilon"], subset="all", device="cpu",
                progress=False)
    assert not out.exists()


# ---------------------------------------------------------------------- 3. the model directory, atomically

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A features file (random, SMALL) and an S1 model trained for one epoch."""
    d = tmp_path_factory.mktemp("trained")
    features = write_toy_features(d / "f.h5", K=20, subsets=("training", "training", "validation", "test"))
    return features, train_one_epoch(features, d / "m", input="s1")


def test_train_killed_while_saving_leaves_the_old_model(trained, tmp_path, monkeypatch):
    import shutil

    from scatterxai.model import directory, load_model, train_model
    features, model_dir = trained
    mine = str(tmp_path / "m")
    shutil.copytree(model_dir, mine)
    old = load_model(mine, device="cpu")

    def killed(*a, **k):
        raise KeyboardInterrupt   # between model.pt and config.json

    monkeypatch.setattr(directory, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        train_model(features, input="s1", out_dir=mine, seed=1, device="cpu", progress=False, max_epochs=1)
    monkeypatch.undo()
    again = load_model(mine, device="cpu")
    assert again.checksum == old.checksum and again.config == old.config
    assert sorted(os.listdir(tmp_path)) == ["m"]   # no temporary directory or lock left behind


def test_weights_are_checked_against_config(trained, tmp_path):
    import shutil

    from scatterxai.model import load_model
    _, model_dir = trained
    mine = tmp_path / "m"
    shutil.copytree(model_dir, mine)
    cfg = json.loads((mine / "config.json").read_text())
    assert len(cfg["weights_sha256"]) == 64
    state = torch.load(mine / "model.pt", weights_only=True)
    state["fc2.bias"] += 1
    torch.save(state, mine / "model.pt")
    with pytest.raises(ModelError, match="model.pt does not match config.json"):
        load_model(mine, device="cpu")


def test_old_model_directory_without_checksum_still_loads(trained, tmp_path, caplog):
    import shutil

    from scatterxai.model import load_model
    _, model_dir = trained
    mine = tmp_path / "m"
    shutil.copytree(model_dir, mine)
    cfg = json.loads((mine / "config.json").read_text())
    del cfg["weights_sha256"]
    (mine / "config.json").write_text(json.dumps(cfg))
    assert load_model(mine, device="cpu").config["input"] == "s1"
    assert "no weights_sha256" in caplog.text


def test_train_refuses_to_replace_a_directory_that_is_not_a_model(trained, tmp_path):
    from scatterxai.model import train_model
    features, _ = trained
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "thesis.tex").write_text("precious")
    with pytest.raises(OutputError, match="scatterxai did not write .*thesis.tex"):   # the output rule
        train_model(features, input="s1", out_dir=docs, device="cpu", progress=False, max_epochs=1)
    assert (docs / "thesis.tex").read_text() == "precious"


def test_atomic_dir_replaces_as_a_whole(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "old").write_text("1")
    with atomic_dir(d) as tmp:
        open(os.path.join(tmp, "new"), "w").write("2")
        assert os.listdir(d) == ["old"]
    assert os.listdir(d) == ["new"] and sorted(os.listdir(tmp_path)) == ["d"]
    with pytest.raises(RuntimeError):
        with atomic_dir(d) as tmp:
            open(os.path.join(tmp, "newer"), "w").write("3")
            raise RuntimeError
    assert os.listdir(d) == ["new"] and sorted(os.listdir(tmp_path)) == ["d"]


def test_leftovers_of_killed_writers_are_cleaned(tmp_path):
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout)
    (tmp_path / f"d.tmp-{dead}").mkdir()             # killed while filling the new directory
    (tmp_path / f"d.old-{dead}").mkdir()             # killed between the two renames of the fallback swap
    (tmp_path / f"d.old-{dead}" / "old").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "d"):
            raise RuntimeError
    assert os.listdir(tmp_path / "d") == ["old"] and sorted(os.listdir(tmp_path)) == ["d"]
    (tmp_path / "x.h5.tmp").write_bytes(b"half a file")
    with output_lock(tmp_path / "x.h5"):
        assert not (tmp_path / "x.h5.tmp").exists()


# ----------------------------------------------------------------------- 4. an output is never an input

def test_explain_out_equal_to_features_is_refused(trained, tmp_path):
    import shutil

    from scatterxai.explain import explain
    features, model_dir = trained
    mine = str(tmp_path / "f.h5")
    shutil.copy(features, mine)
    before = open(mine, "rb").read()
    with pytest.raises(ParameterError, match="is the features input"):
        explain(mine, model_dir=model_dir, out=mine, methods=["epsilon"], device="cpu", progress=False)
    assert open(mine, "rb").read() == before


def test_other_commands_refuse_their_inputs_as_output(trained, corpus, tmp_path):
    from scatterxai.model import evaluate_model, train_model
    features, model_dir = trained
    csv, root = corpus
    with pytest.raises(ParameterError, match="is the meta CSV"):
        _extract(csv, root, csv)
    with pytest.raises(ParameterError, match="contains the features input"):
        train_model(features, input="s1", out_dir=os.path.dirname(features), device="cpu", progress=False)
    with pytest.raises(ParameterError, match="is the features input"):
        evaluate_model(features, model_dir=model_dir, out_dir=features, device="cpu")
    with pytest.raises(ParameterError, match="would overwrite the model directory"):
        check_not_inputs(model_dir + "/", {"model directory": model_dir}, is_dir=True)
    check_not_inputs(tmp_path / "x.h5", {"features input": features, "model directory": model_dir})


def test_existing_file_that_is_not_ours_is_never_replaced(corpus, tmp_path):
    csv, root = corpus
    mine = tmp_path / "notes.h5"
    mine.write_text("mine")
    with pytest.raises(OutputError, match="scatterxai did not write"):
        _extract(csv, root, str(mine), overwrite=True)
    assert mine.read_text() == "mine"
    with pytest.raises(ParameterError, match="lies inside the audio root"):   # an input is refused first
        _extract(csv, root, os.path.join(root, "n0.wav"), overwrite=True)


# ---------------------------------------------------------------------------------- output folders

def test_output_folders_are_created_one_level_only(tmp_path):
    assert prepare_output(tmp_path / "new" / "f.h5") == str(tmp_path / "new" / "f.h5")
    assert (tmp_path / "new").is_dir()
    with pytest.raises(ParameterError, match="does not exist; scatterxai creates an output and at most one"):
        prepare_output(tmp_path / "a" / "b" / "f.h5")
    assert not (tmp_path / "a").exists()
    prepare_output(tmp_path / "dir", is_dir=True)
    assert (tmp_path / "dir").is_dir()
    prepare_output(tmp_path / "results" / "demo", is_dir=True)   # `make demo` on a fresh clone
    assert (tmp_path / "results" / "demo").is_dir()
    with pytest.raises(ParameterError, match="does not exist"):
        prepare_output(tmp_path / "x" / "y" / "dir", is_dir=True)
    assert not (tmp_path / "x").exists()
    assert prepare_output(tmp_path / "m" / "model", is_dir=True, create=False) == str(tmp_path / "m" / "model")
    assert (tmp_path / "m").is_dir() and not (tmp_path / "m" / "model").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError, match="is not a directory"):
        prepare_output(tmp_path / "file", is_dir=True)


def test_explain_out_in_a_missing_tree_creates_nothing(trained, tmp_path):
    from scatterxai.explain import explain
    features, model_dir = trained
    with pytest.raises(ParameterError, match="does not exist"):
        explain(features, model_dir=model_dir, out=tmp_path / "no" / "sub" / "r.h5", methods=["epsilon"],
                device="cpu", progress=False)
    assert not (tmp_path / "no").exists()
    out = explain(features, model_dir=model_dir, out=tmp_path / "new" / "r.h5", methods=["epsilon"],
                  subset="all", device="cpu", progress=False)
    assert os.path.isfile(out)


# ------------------------------------------------------------------------- 6. settings of the numbers

def test_method_is_part_of_the_settings(corpus, tmp_path, monkeypatch):
    csv, root = corpus
    out = str(tmp_path / "f.h5")
    _interrupted(csv, root, out, monkeypatch, method="fast")
    with pytest.raises(StoreError, match="method"):
        _extract(csv, root, out, method="kymatio")
    _extract(csv, root, out, method="fast")
    with pytest.raises(StoreError, match=r"method: 'fast' → 'kymatio'"):
        _extract(csv, root, out, method="kymatio")
    with FeatureFile(out) as ff:
        assert ff.attrs["method"] == "fast"


def test_a_file_of_an_earlier_preparation_is_not_reused(corpus, tmp_path):
    """Files written before short signals were continued (zero-padded instead) were made with other
    settings: refused with the change named, recomputed with --overwrite (or replaced by ``run``)."""
    csv, root = corpus
    out = str(tmp_path / "f.h5")
    _extract(csv, root, out)
    with h5py.File(out, "r+") as f:   # as the previous version wrote it: no preparation in its settings
        old = json.loads(f.attrs["settings_json"])
        del old["preparation"]
        f.attrs["settings_sha256"], f.attrs["settings_json"] = settings_digest(old)
    with pytest.raises(StoreError, match=r"preparation: None → 'continue-loop-v1'"):
        _extract(csv, root, out)
    assert not _extract(csv, root, out, overwrite=True).already_complete


# ------------------------------------------------------------- 7. retry, start over, leftover partial

def test_retry_failed_and_overwrite(corpus, tmp_path):
    csv, root = corpus
    out = str(tmp_path / "f.h5")
    first = _extract(csv, root, out)
    assert (first.n_ok, first.n_failed) == (5, 1)
    with FeatureFile(out) as ff:
        S_before = ff.load()
    _tone(os.path.join(root, "bad.wav"), 9)           # the user repairs the file
    again = _extract(csv, root, out)
    assert again.already_complete and again.n_failed == 1
    retried = _extract(csv, root, out, retry_failed=True)
    assert (retried.n_ok, retried.n_failed, retried.n_resumed) == (6, 0, 5)
    with FeatureFile(out) as ff:
        assert list(ff.examples["file_name"]) == ["n0.wav", "n1.wav", "n2.wav", "n3.wav", "n4.wav", "bad.wav"]
        np.testing.assert_array_equal(ff.load(np.arange(5)), S_before)
        assert ff.failed == []
    fresh = _extract(csv, root, out, overwrite=True)       # start over, even with the same settings
    assert not fresh.already_complete and fresh.n_resumed == 0 and fresh.n_ok == 6


def test_retry_failed_on_an_interrupted_run(corpus, tmp_path, monkeypatch):
    csv, root = corpus
    out = str(tmp_path / "f.h5")
    for retry, n_failed, n_resumed in ((False, 2, 3), (True, 1, 2)):
        _interrupted(csv, root, out, monkeypatch, after=1)
        with h5py.File(out + ".partial", "r+") as f:   # n4.wav failed for a passing reason
            f["status"][4] = FAILED
            f["reason"][4] = b"a transient error"
        summary = _extract(csv, root, out, retry_failed=retry)
        assert (summary.n_failed, summary.n_resumed) == (n_failed, n_resumed)
        os.remove(out)


def test_partial_left_after_the_final_rename_is_cleaned(corpus, tmp_path, monkeypatch):
    csv, root = corpus
    out = str(tmp_path / "f.h5")
    real = os.remove
    monkeypatch.setattr(extract_mod.os, "remove",
                        lambda p: (_ for _ in ()).throw(KeyboardInterrupt) if p.endswith(".partial") else real(p))
    with pytest.raises(KeyboardInterrupt):
        _extract(csv, root, out)
    monkeypatch.undo()
    assert os.path.exists(out) and os.path.exists(out + ".partial")
    assert _extract(csv, root, out).already_complete
    assert not os.path.exists(out + ".partial")
