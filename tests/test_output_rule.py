"""Issue 26: nothing a user has is lost, in every command — one regression test per data-destroying case of the
issue's table and per output defect (each failed on the code before the output rule)."""

import json
import os
import shutil

import pytest

from scatterxai import cli

from ._world import tree_digest

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(argv, capsys):
    """(exit status, stderr) of ``scatterxai ARGV`` in this process."""
    rc = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, err


def one_line_error(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(f"scatterxai {command}: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def study(world, tmp_path):
    """A writable copy of the world's study folder, corpus and models."""
    for name in ("study", "corpus", "models"):
        shutil.copytree(os.path.join(world["root"], name), tmp_path / name)
    return {k: (v.replace(world["root"], str(tmp_path)) if isinstance(v, str) else v) for k, v in world.items()}


# ------------------------------------------------------------------------------------ the table

def test_explain_never_replaces_a_features_file_of_another_study(study, tmp_path, capsys):
    other = tmp_path / "other.h5"
    shutil.copyfile(study["features"], other)
    before = tree_digest(other)
    rc, err = run(["explain", study["features"], "--model", study["model"], "--out", other, "--subset", "all",
                   "--device", "cpu"], capsys)
    assert rc == 2 and "features file, not a relevance file; pass --overwrite" in one_line_error(err, "explain")
    assert tree_digest(other) == before


def _sweep(model, out=None):
    return ["sweep", "--model", model, "--factor", "dynamics", "--technique", "tremolo", "--values", "pp", "ff",
            "--device", "cpu"] + ([] if out is None else ["--out", out])


def test_sweep_never_replaces_a_run_directory(study, tmp_path, capsys):
    run_dir = tmp_path / "run"
    (run_dir / ".stages").mkdir(parents=True)
    (run_dir / ".stages" / "extract.json").write_text("{}")
    shutil.copyfile(study["features"], run_dir / "features.h5")
    shutil.copyfile(study["relevance"], run_dir / "relevance.h5")
    before = tree_digest(run_dir)
    rc, err = run(_sweep(study["model"], run_dir), capsys)
    assert rc == 2 and "is a run directory, not a sweep folder" in one_line_error(err, "sweep")
    assert tree_digest(run_dir) == before


def test_sweep_never_writes_into_a_corpus(study, tmp_path, capsys):
    data = tmp_path / "corpus"
    before = tree_digest(data)
    rc, err = run(_sweep(study["model"], data), capsys)
    assert rc == 2 and "is a corpus folder, not a sweep folder" in one_line_error(err, "sweep")
    assert tree_digest(data) == before


@pytest.mark.parametrize("name", ["reference.wav", "relevant.wav"])
def test_auralise_never_overwrites_its_input_recording(study, tmp_path, capsys, name):
    o = tmp_path / "o"
    o.mkdir()
    shutil.copyfile(study["audio"], o / name)
    before = tree_digest(o)
    rc, err = run(["auralise", o / name, "--model", study["model"], "--out", o, "--device", "cpu"], capsys)
    assert rc == 2 and "contains the audio input" in one_line_error(err, "auralise")
    assert tree_digest(o) == before


@pytest.mark.parametrize("target", ["meta_csv", "features", "audio"])
def test_describe_never_replaces_an_input_even_with_overwrite(study, capsys, target):
    before = {k: tree_digest(study[k]) for k in ("meta_csv", "features", "audio_root")}
    rc, err = run(["describe", study["meta_csv"], "--audio-root", study["audio_root"], "--features",
                   study["features"], "--out", study[target], "--overwrite", "--max-seconds", "0.2"], capsys)
    assert rc == 2 and "even with --overwrite" in one_line_error(err, "describe")
    assert {k: tree_digest(study[k]) for k in before} == before


def test_a_symlinked_lock_is_never_written_through(study, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, tmp_path / "r.h5.lock")
    rc, err = run(["explain", study["features"], "--model", study["model"], "--out", tmp_path / "r.h5",
                   "--subset", "all", "--device", "cpu"], capsys)
    assert rc == 2 and "symbolic link" in one_line_error(err, "explain")
    assert victim.read_text() == "precious"


def test_a_symlinked_partial_temporary_file_is_never_written_through(study, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, tmp_path / "d.h5.partial.tmp")
    rc, err = run(["describe", study["meta_csv"], "--audio-root", study["audio_root"], "--out", tmp_path / "d.h5",
                   "--max-seconds", "0.2", "--max-notes", "2"], capsys)
    assert rc == 0, err
    assert victim.read_text() == "precious"


# ------------------------------------------------------------------------------------- the output defects

def _commands_with_out_dir(s):
    return {"auralise": ["auralise", s["audio"], "--model", s["model"], "--device", "cpu"],
            "compare": ["compare", s["relevance"], "--metrics", "mean_diff", "--max-pairs", "2"],
            "quality": ["quality", s["features"], "--model", s["model"], "--relevance", s["relevance"],
                        "--permuted-epochs", "0", "--max-examples", "2", "--device", "cpu"],
            "sweep": _sweep(s["model"]),
            "probe": ["probe", s["features"], "--descriptors", s["descriptors"], "--model", s["model"],
                      "--subset", "all", "--untrained-seeds", "1", "--permutations", "2", "--device", "cpu"]}


@pytest.mark.parametrize("command", ["auralise", "compare", "quality", "sweep", "probe"])
def test_out_an_existing_file_is_one_clear_error(study, tmp_path, capsys, command):
    existing = tmp_path / "existing.txt"
    existing.write_text("mine")
    rc, err = run(_commands_with_out_dir(study)[command] + ["--out", existing], capsys)
    assert rc == 2 and "not a directory" in one_line_error(err, command)
    assert existing.read_text() == "mine"


@pytest.mark.parametrize("command", ["auralise", "compare", "quality", "sweep", "describe"])
def test_out_in_a_missing_tree_creates_nothing(study, tmp_path, capsys, command):
    argv = (["describe", study["meta_csv"], "--audio-root", study["audio_root"], "--max-seconds", "0.2"]
            if command == "describe" else _commands_with_out_dir(study)[command])
    out = tmp_path / "a" / "b" / "c" / ("d.h5" if command == "describe" else "d")
    rc, err = run(argv + ["--out", out], capsys)
    assert rc == 2 and "at most one missing folder" in one_line_error(err, command)
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("command", ["auralise", "quality", "sweep"])
def test_no_command_writes_into_a_model_directory(study, capsys, command):
    before = tree_digest(study["model"])
    rc, err = run(_commands_with_out_dir(study)[command] + ["--out", os.path.join(study["model"], "x")], capsys)
    assert rc == 2 and "lies inside the model directory" in one_line_error(err, command)
    assert tree_digest(study["model"]) == before


@pytest.mark.parametrize("command", ["quality", "compare", "probe", "sweep", "auralise", "describe"])
def test_every_writer_holds_the_output_lock(study, tmp_path, capsys, command):
    """Another writer holds OUT.lock (an flock: held here on another open file, as another process would)."""
    from scatterxai._util.fs import output_lock
    out = tmp_path / ("d.h5" if command == "describe" else "out")
    argv = (["describe", study["meta_csv"], "--audio-root", study["audio_root"], "--max-seconds", "0.2",
             "--overwrite"] if command == "describe" else _commands_with_out_dir(study)[command])
    with output_lock(out):
        rc, err = run(argv + ["--out", out], capsys)
    assert rc == 2 and f"being written by process {os.getpid()}" in one_line_error(err, command)
    assert not out.exists()


def test_quality_refuses_features_of_another_study(study, tmp_path, capsys):
    from .conftest import write_toy_features
    other = write_toy_features(tmp_path / "other.h5", K=12, subsets=("training", "validation", "test", "test"))
    argv = _commands_with_out_dir(study)["quality"]
    argv[1] = other
    rc, err = run(argv + ["--out", tmp_path / "q"], capsys)
    assert rc == 2 and "made from another features file" in one_line_error(err, "quality")
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize("kind", ["silent", "one_sample"])
def test_explaining_a_note_with_nothing_in_it_warns(study, tmp_path, capsys, kind):
    import numpy as np
    import soundfile as sf
    path = tmp_path / f"{kind}.wav"
    sf.write(path, np.zeros(22050 if kind == "silent" else 1, np.float32) + (0 if kind == "silent" else 0.5), 22050)
    rc, err = run(["explain", path, "--model", study["model"], "--out", tmp_path / "o", "--device", "cpu"], capsys)
    assert rc == 0, err
    assert ("is silent" if kind == "silent" else "holds 1 sample") in err


def test_a_directory_output_is_replaced_whole_and_reports_what_it_holds(study, tmp_path, capsys):
    """Two compare runs into one folder: the second replaces the first as a whole (no stale figure of an
    earlier run stays), and what each run prints is what its folder holds."""
    out = tmp_path / "c"
    argv = _commands_with_out_dir(study)["compare"] + ["--out", out]
    assert run(argv, capsys)[0] == 0
    (out / "stale.png").write_bytes(b"x")   # a figure left by an earlier version (which wrote no marker)
    if (out / ".scatterxai.json").exists():
        (out / ".scatterxai.json").unlink()
    assert run(argv[:2] + ["--metrics", "kl", "--max-pairs", "2", "--out", out], capsys)[0] == 0
    assert not (out / "stale.png").exists()
    with open(out / "compare.json") as fh:
        assert "kl" in json.dumps(json.load(fh)) and not (tmp_path / "c.lock").exists()


def test_interrupted_directory_output_leaves_the_previous_one(study, tmp_path, capsys, monkeypatch):
    out = tmp_path / "c"
    argv = _commands_with_out_dir(study)["compare"] + ["--out", out]
    assert run(argv, capsys)[0] == 0
    before = tree_digest(out)
    import scatterxai.analysis.compare as compare

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(compare, "_figures", interrupted)
    assert run(argv[:2] + ["--metrics", "kl", "--max-pairs", "2", "--out", out], capsys)[0] == 130
    assert tree_digest(out) == before
    assert sorted(os.listdir(tmp_path)) == ["c", "corpus", "models", "study"]


# ------------------------------------------------------------------------------- figures of an S1 model

def test_every_figure_of_an_s1_model_is_drawn(study, tmp_path, capsys):
    """The demo's own S1 model: explain a note, figures of its relevance file, auralise (IndexError before)."""
    s = study
    rc, err = run(["explain", s["audio"], "--model", s["model_s1"], "--out", tmp_path / "e", "--device", "cpu"],
                  capsys)
    assert rc == 0, err
    assert (tmp_path / "e" / "n0.png").stat().st_size > 0
    rc, err = run(["figures", s["relevance_s1"], "--out", tmp_path / "f", "--dpi", "40"], capsys)
    assert rc == 0, err
    assert {"fig1_examples.png", "fig2_class_maps.png"} <= set(os.listdir(tmp_path / "f"))
    rc, err = run(["auralise", s["audio"], "--model", s["model_s1"], "--out", tmp_path / "a", "--device", "cpu"],
                  capsys)
    assert rc == 0, err
    assert (tmp_path / "a" / "map.png").stat().st_size > 0


# ----------------------------------------------------------------------- extract: a resumed summary

def test_a_resumed_extraction_counts_the_long_files_of_every_run(tmp_path, monkeypatch):
    """Four files longer than the window, interrupted after the first batch of two: the resumed run's summary
    names all four (it named the two of its own run)."""
    import numpy as np
    import soundfile as sf

    import scatterxai.features.extract as extract_mod
    from scatterxai.features import extract_features

    from .conftest import SMALL
    root = tmp_path / "audio"
    root.mkdir()
    rows = ["file_name,label"]
    for i in range(4):
        sf.write(root / f"long{i}.wav", np.sin(np.arange(3 * SMALL.N) * (0.05 + 0.01 * i)), SMALL.sr)
        rows.append(f"long{i}.wav,{i % 2}")
    meta = tmp_path / "meta.csv"
    meta.write_text("\n".join(rows) + "\n")
    real, calls = extract_mod.compute_batch, [0]

    def interrupted_after_one(*a, **k):
        calls[0] += 1
        if calls[0] > 1:
            raise KeyboardInterrupt
        return real(*a, **k)

    def extract():
        return extract_features(meta, root, tmp_path / "f.h5", config=SMALL, device="cpu", progress=False,
                                batch_size=2)

    monkeypatch.setattr(extract_mod, "compute_batch", interrupted_after_one)
    with pytest.raises(KeyboardInterrupt):
        extract()
    monkeypatch.setattr(extract_mod, "compute_batch", real)
    summary = extract()
    assert summary.n_resumed == 2
    assert sorted(summary.truncated) == [f"long{i}.wav" for i in range(4)]
    assert "4 file(s) are longer than" in summary.describe()
