"""The one output rule (scatterxai._util.outputs.claim_output) and the link-safe temporary/lock files."""

import errno
import json
import os

import h5py
import numpy as np
import pytest

from scatterxai._util.fs import atomic_path, output_lock
from scatterxai._util.outputs import MARKER, check_output, claim_output, claims_output, identify
from scatterxai.errors import LockError, OutputError, ParameterError
from scatterxai.io.hdf5 import atomic_h5


def _tree(folder):
    return {os.path.relpath(os.path.join(d, n), folder): open(os.path.join(d, n), "rb").read()
            for d, _, names in os.walk(folder) for n in names}


def test_a_directory_output_is_written_whole_and_marked(tmp_path):
    out = tmp_path / "q"
    with claim_output(out, kind="quality") as claim:
        assert claim.tmp != str(out) and not out.exists()
        open(claim.file("quality.json"), "w").write("{}")
    info = json.loads((out / MARKER).read_text())
    assert info["kind"] == "quality" and info["files"] == ["quality.json"]
    assert not (tmp_path / "q.lock").exists()
    with pytest.raises(RuntimeError):   # a failure leaves the previous output as it was
        with claim_output(out, kind="quality") as claim:
            open(claim.file("quality.json"), "w").write("half")
            raise RuntimeError("killed")
    assert (out / "quality.json").read_text() == "{}"
    assert sorted(os.listdir(tmp_path)) == ["q"]


@pytest.mark.parametrize("where", ["is", "folder", "inside"])
def test_inputs_are_never_outputs(tmp_path, where):
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.h5").write_bytes(b"features")
    (data / "m").mkdir()
    out = {"is": data / "m", "folder": data, "inside": data / "m" / "q"}[where]
    for overwrite in (False, True):
        with pytest.raises(ParameterError, match="(is|contains|lies inside) the model directory|contains the"):
            with claim_output(out, kind="quality", overwrite=overwrite,
                              inputs={"features input": str(data / "f.h5"), "model directory": str(data / "m")}):
                pass
    assert (data / "f.h5").read_bytes() == b"features"


def test_file_output_equal_to_an_input_or_its_sidecars_is_refused(tmp_path):
    f = tmp_path / "f.h5"
    f.write_bytes(b"x")
    with pytest.raises(ParameterError, match="is the features input"):
        check_output(f, kind="relevance", inputs={"features input": str(f)}, overwrite=True)
    os.link(f, tmp_path / "hard.h5")   # the same file under another name
    with pytest.raises(ParameterError, match="is the features input"):
        check_output(tmp_path / "hard.h5", kind="relevance", inputs={"features input": str(f)}, overwrite=True)
    # the output's lock or temporary name is an input
    with pytest.raises(ParameterError, match="is the meta CSV"):
        check_output(str(tmp_path / "m"), kind="relevance", inputs={"meta CSV": str(tmp_path / "m.lock")})


def test_what_scatterxai_did_not_write_is_never_replaced(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputError, match="did not write"):
        check_output(mine, kind="figures", overwrite=True)
    f = tmp_path / "notes.h5"
    f.write_text("not hdf5")
    with pytest.raises(OutputError, match="did not write"):
        check_output(f, kind="relevance", overwrite=True)


def test_another_kind_needs_overwrite_and_a_users_file_in_our_folder_is_kept(tmp_path):
    out = tmp_path / "c"
    with claim_output(out, kind="compare") as claim:
        open(claim.file("compare.json"), "w").write("{}")
    with pytest.raises(OutputError, match="is a compare folder, not a quality folder; pass --overwrite"):
        check_output(out, kind="quality")
    check_output(out, kind="quality", overwrite=True)
    (out / "my_notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="holds 'my_notes.txt'"):
        check_output(out, kind="compare", overwrite=True)


def test_another_study_needs_overwrite(tmp_path):
    out = tmp_path / "q"
    with claim_output(out, kind="quality", study="A") as claim:
        open(claim.file("quality.json"), "w").write("{}")
    check_output(out, kind="quality", study="A")
    with pytest.raises(OutputError, match="another study"):
        check_output(out, kind="quality", study="B")
    check_output(out, kind="quality", study="B", overwrite=True)


def test_folders_of_earlier_versions_are_recognised(tmp_path):
    old = tmp_path / "sweep"
    (old / "audio").mkdir(parents=True)
    for name in ("sweep.json", "meta.csv", "features.h5", "tracking.png", "features.h5.lock"):
        (old / name).write_text("x")
    assert identify(old, is_dir=True).kind == "sweep"
    (tmp_path / "run" / ".stages").mkdir(parents=True)
    assert identify(tmp_path / "run", is_dir=True).kind == "run"
    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "fig1.png").write_text("x")
    assert identify(tmp_path / "figs", is_dir=True).kind == "figures"


def test_a_second_writer_is_refused_and_claims_nest(tmp_path):
    out = tmp_path / "s"
    with claim_output(out, kind="sweep") as outer:
        with pytest.raises(LockError, match="being written by process"):
            with output_lock(out):
                pass
        with claim_output(os.path.join(outer.tmp, "features.h5"), kind="features") as inner:
            assert inner.path == os.path.join(outer.tmp, "features.h5")   # passes through: no lock of its own
        assert outer.final({"f": [os.path.join(outer.tmp, "x.png")]}) == {"f": [str(out / "x.png")]}


def test_decorator_replaces_the_output_argument_and_maps_the_result(tmp_path):
    @claims_output("out_dir", kind="compare", inputs={"relevance": "relevance input"})
    def compare(relevance, out_dir):
        path = os.path.join(out_dir, "compare.json")
        open(path, "w").write(relevance)
        return {"json": path}

    result = compare("r", str(tmp_path / "c"))
    assert result == {"json": str(tmp_path / "c" / "compare.json")}
    with pytest.raises(ParameterError, match="contains the relevance input"):
        compare(str(tmp_path / "c" / "compare.json"), str(tmp_path / "c"))


def test_missing_tree_and_wrong_type(tmp_path):
    with pytest.raises(ParameterError, match="does not exist; scatterxai creates an output and at most one"):
        check_output(tmp_path / "a" / "b" / "c" / "d", kind="quality")
    assert not (tmp_path / "a").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ParameterError, match="not a directory"):
        check_output(tmp_path / "file", kind="quality")
    with pytest.raises(ParameterError, match="is a directory"):
        check_output(tmp_path, kind="relevance")


# ------------------------------------------------------------------ temporary and lock files never follow links

def test_a_symlinked_lock_never_writes_its_target(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, tmp_path / "r.h5.lock")
    with pytest.raises(LockError, match="symbolic link"):
        with output_lock(tmp_path / "r.h5"):
            pass
    assert victim.read_text() == "precious"


def test_a_symlinked_temporary_file_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, tmp_path / "d.h5.tmp")
    with atomic_h5(tmp_path / "d.h5") as f:
        f["x"] = np.arange(3)
    assert victim.read_text() == "precious"
    with h5py.File(tmp_path / "d.h5", "r") as f:
        assert f["x"][()].tolist() == [0, 1, 2]
    os.symlink(victim, tmp_path / "j.json.tmp")
    with atomic_path(tmp_path / "j.json") as tmp, open(tmp, "w") as fh:
        fh.write("{}")
    assert victim.read_text() == "precious" and (tmp_path / "j.json").read_text() == "{}"


def test_a_full_disk_in_hdf5_is_one_error_after_a_clean_close(tmp_path, monkeypatch):
    """HDF5 never sees the write error (it would leave the file open and may crash at exit): the guarded
    file records it and raises it once the file is closed; the temporary file is removed."""
    (tmp_path / "r.h5").write_bytes(b"previous")
    real = os.pwrite
    written = []

    def pwrite(fd, data, offset):
        if sum(written) > 4096:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(data))
        return real(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    with pytest.raises(OSError) as e:
        with atomic_h5(tmp_path / "r.h5") as f:
            for i in range(20):
                f.create_dataset(f"d{i}", data=np.random.default_rng(i).random(4000))
    assert e.value.errno == errno.ENOSPC
    assert (tmp_path / "r.h5").read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["r.h5"]


def test_write_errors_in_a_claim_are_one_output_error(tmp_path):
    (tmp_path / "q").mkdir()
    with pytest.raises(OutputError, match=r"cannot write the quality folder .*q: No space left on device; the "
                                          r"previous .* is unchanged"):
        with claim_output(tmp_path / "q", kind="quality") as claim:
            raise OSError(errno.ENOSPC, "No space left on device", os.path.join(claim.tmp, "quality.json"))
    assert os.listdir(tmp_path) == ["q"]
