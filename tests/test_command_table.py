"""Every command of the CLI table, read from the parser (a new command is covered without editing this file):

* the output rule — ``--out`` at each input, at its folder and inside it is refused (exit 2), inputs unchanged;
* bounds — every numeric option has explicit bounds; values outside them (and NaN, inf) are refused;
* fault injection — a full disk (a small tmpfs filled mid-write) and a read-only output folder give exit
  status ≠ 0 with one clear line, and the previous output is intact.
"""

import argparse
import contextlib
import math
import os
import shutil
import subprocess

import pytest

from scatterxai import cli

from ._world import tree_digest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PARSER = cli.build_parser()
COMMANDS = next(a for a in PARSER._actions if isinstance(a, argparse._SubParsersAction)).choices
#: world paths by input kind
WORLD_KEY = {"meta_csv": "meta_csv", "audio_root": "audio_root", "features": "features", "model": "model",
             "relevance": "relevance", "descriptors": "descriptors", "audio": "audio", "features_or_audio": "features",
             "permuted_model": "model_s1", "sol_root": "audio_root"}
#: values of required options that have neither choices nor a numeric type
EXAMPLES = {"technique": "tremolo"}
#: options that keep a command small enough for a test (the tiny world; settings of no interest here)
FAST = {"extract": ["--overwrite"], "describe": ["--max-seconds", "0.2", "--max-notes", "3", "--overwrite"],
        "quality": ["--permuted-epochs", "0", "--max-examples", "2", "--random-orders", "5"],
        "probe": ["--subset", "all", "--untrained-seeds", "1", "--permutations", "2"],
        "sweep": ["--factor", "dynamics", "--values", "pp", "ff"], "compare": ["--metrics", "mean_diff,kl"],
        "figures": ["--dpi", "30"], "explain": ["--subset", "all", "--methods", "epsilon"],
        "synth": ["--scale", "0.002", "--jobs", "1"], "train": ["--input", "s1", "--max-epochs", "1"],
        "evaluate": ["--subset", "all"], "auralise": [], "run": None,
        "explore": None}   # run, explore: the world has no run directory; their own tests cover them
#: options of the second run of the fault-injection test, so that the command writes again (not "complete")
AGAIN = {"describe": ["--max-notes", "2"]}


def _inputs(sp):
    return [a for a in sp._actions if getattr(a, "scatterxai_input", None)]


def _output(sp):
    return next((a for a in sp._actions if getattr(a, "scatterxai_output", None)), None)


def _flag(action):
    return action.option_strings[0] if action.option_strings else None


def _argv(name, world, *, runnable=False):
    """A command line without the output: every input of the world (``runnable``: not the optional inputs that
    would change what it computes), required options filled in."""
    sp, argv, tail = COMMANDS[name], [name], []
    for a in _inputs(sp):
        if runnable and (a.scatterxai_input in ("permuted_model", "sol_root") or a.dest == "init"):
            continue   # optional inputs that change what the command computes (train --init: fine-tuning)
        value = world.get(WORLD_KEY.get(a.scatterxai_input, ""))
        if value is None:
            continue
        if name == "auralise" and a.dest in ("relevance", "audio_root"):
            continue   # auralise takes AUDIO --model, or --relevance --example --audio-root
        (tail if a.option_strings else argv).extend([_flag(a), value] if a.option_strings else [value])
    for a in sp._actions:
        if a.required and not getattr(a, "scatterxai_input", None) and not getattr(a, "scatterxai_output", None):
            if a.option_strings and _flag(a) in (FAST.get(name) or []):
                continue
            value = (a.choices and list(a.choices)[0]) or (getattr(a.type, "bounds", None) and
                                                           str(max(1, int(a.type.bounds[0]))))
            value = value or EXAMPLES.get(a.dest)
            assert value is not None, f"{name} {_flag(a)}: add an example value to EXAMPLES"
            tail.extend([_flag(a), value] if a.option_strings else [value])
    if "--device" in sp._option_string_actions:
        tail += ["--device", "cpu"]
    return argv + tail + (FAST.get(name) or [])


def _with_out(name, argv, out):
    a = _output(COMMANDS[name])
    return argv + ([_flag(a), str(out)] if a.option_strings else [str(out)])


def _main(argv, capsys):
    rc = cli.main([str(v) for v in argv])
    return rc, capsys.readouterr().err


def _one_line(err, name):
    lines = [line for line in err.splitlines() if line.startswith(f"scatterxai {name}: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def study(world, tmp_path_factory):
    """A copy of the world (a command that broke the rule would write into it)."""
    root = tmp_path_factory.mktemp("table")
    for name in ("study", "corpus", "models"):
        shutil.copytree(os.path.join(world["root"], name), root / name)
    return {k: (v.replace(world["root"], str(root)) if isinstance(v, str) else v) for k, v in world.items()}


# --------------------------------------------------------------------------------------------- the table

def test_every_command_names_its_output_and_inputs():
    path_like = ("FEATURES", "MODEL", "RELEVANCE", "R.h5", "F.h5", "DESCRIPTORS", "CSV", "AUDIO", "INPUT", "DIR",
                 "PATH")
    for name, sp in COMMANDS.items():
        assert _output(sp) is not None, f"{name}: mark its output with cliargs.output_arg"
        for a in sp._actions:
            marked = getattr(a, "scatterxai_input", None) or getattr(a, "scatterxai_output", None)
            if any(k in str(a.metavar or "") for k in path_like):
                assert marked, f"{name} {a.dest}: mark this path with cliargs.input_arg (or output_arg)"


CASES = [(name, a.dest, where) for name, sp in COMMANDS.items() for a in _inputs(sp)
         for where in ("is", "folder", "inside")]


@pytest.mark.parametrize("name,dest,where", CASES)
def test_no_command_writes_at_an_input_its_folder_or_inside_it(study, capsys, name, dest, where):
    action = next(a for a in _inputs(COMMANDS[name]) if a.dest == dest)
    target = study.get(WORLD_KEY.get(action.scatterxai_input, ""))
    if target is None:
        pytest.skip(f"the world has no {action.scatterxai_input}")
    absent = [a.dest for a in _inputs(COMMANDS[name]) if a.required and not a.option_strings
              and study.get(WORLD_KEY.get(a.scatterxai_input, "")) is None]
    if absent:
        pytest.skip(f"the world has no {absent} for {name}")
    argv = _argv(name, study)
    if target not in argv:   # an optional input of the other mode (auralise --relevance)
        argv = argv[:1] + [_flag(action), target] + argv[1:] if action.option_strings else argv
    out = {"is": target, "folder": os.path.dirname(target), "inside": os.path.join(target, "x")}[where]
    before = {k: tree_digest(study[k]) for k in WORLD_KEY.values()}
    rc, err = _main(_with_out(name, argv, out), capsys)
    assert rc == 2, err
    _one_line(err, name)
    assert {k: tree_digest(study[k]) for k in WORLD_KEY.values()} == before


#: option types that parse words, not numbers (a list of names)
WORDS = (cli._realism, cli._baseline_list)
NUMERIC = [(name, a.dest) for name, sp in COMMANDS.items() for a in sp._actions
           if a.type not in (None, str, *WORDS) and a.option_strings and not isinstance(a.type, argparse.FileType)]


@pytest.mark.parametrize("name,dest", NUMERIC)
def test_every_numeric_option_is_bounded(name, dest):
    action = next(a for a in COMMANDS[name]._actions if a.dest == dest)
    bounds = getattr(action.type, "bounds", None)
    if bounds is None:   # e.g. --max-pairs N|all: its type must still refuse what is out of range
        bounds = (1, 10 ** 7, False)
    lo, hi, lo_open = bounds
    assert math.isfinite(hi), f"{name} {_flag(action)}: no upper bound"
    for bad in ("nan", "inf", "-inf", "1e300", str(hi * 10 + 1), str(lo - 1)) + ((str(lo),) if lo_open else ()):
        with pytest.raises(argparse.ArgumentTypeError):
            action.type(bad)
    assert action.type(str(hi)) == hi or float(action.type(str(hi))) == hi


# ------------------------------------------------------------------------------------------ fault injection

def _size(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


@contextlib.contextmanager
def _tmpfs(where, size):
    os.makedirs(where)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield str(where)
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


FAULT_COMMANDS = [name for name in COMMANDS if FAST.get(name, []) is not None]


def _files(path):
    """relative path → sha256 of every file of an output (a file: itself)."""
    if os.path.isfile(path):
        return {".": tree_digest(path)}
    return {os.path.relpath(os.path.join(d, f), path): tree_digest(os.path.join(d, f))
            for d, _, fs in os.walk(path) for f in fs}


def _intact(before, out, updated):
    after = _files(out)
    if updated:   # an output resumed in place (synth): what was there is unchanged
        return all(after.get(k) == v for k, v in before.items())
    return after == before


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
@pytest.mark.parametrize("name", FAULT_COMMANDS)
def test_a_full_disk_and_a_read_only_folder_keep_the_previous_output(study, tmp_path, capsys, name):
    from scatterxai._util.outputs import KINDS
    argv = _argv(name, study, runnable=True)
    kind = _output(COMMANDS[name]).scatterxai_output
    kind = "relevance" if callable(kind) else kind
    out_name = "out" if KINDS[kind].is_dir else "out.h5"
    first = tmp_path / out_name
    rc, err = _main(_with_out(name, argv, first), capsys)
    assert rc == 0, err
    size = _size(first)
    page = 4096
    with _tmpfs(tmp_path / "disk", (2 * size) // page * page + 16 * page) as disk:
        out = os.path.join(disk, out_name)
        subprocess.run(["cp", "-a", str(first), out], check=True)
        if KINDS[kind].update:   # resumed in place: remove half its work so that there is something to write
            notes = sorted(os.listdir(os.path.join(out, "audio")))
            for n in notes[::2]:
                os.remove(os.path.join(out, "audio", n))
        before = _files(out)
        # fill the disk: a quarter of the output's size stays free (the new output cannot fit)
        st = os.statvfs(disk)
        with open(os.path.join(disk, "filler"), "wb") as fh:
            fh.write(b"\0" * max(st.f_bavail * st.f_frsize - size // 4, 0))
        rc, err = _main(_with_out(name, argv + AGAIN.get(name, []), out), capsys)
        assert rc != 0, f"{name} succeeded on a full disk"
        line = _one_line(err, name)
        assert disk in line and "No space left on device" in line, line
        assert _intact(before, out, KINDS[kind].update)
        os.remove(os.path.join(disk, "filler"))
        subprocess.run(["mount", "-o", "remount,ro", disk], check=True)
        before = _files(out)
        rc, err = _main(_with_out(name, argv + AGAIN.get(name, []), out), capsys)
        assert rc != 0, f"{name} succeeded in a read-only folder"
        assert "Read-only file system" in _one_line(err, name)
        assert _files(out) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_run_on_a_full_disk_and_a_read_only_folder_keeps_what_it_has(study, tmp_path, capsys):
    """``run`` (resumed in place, so it has its own case): its features do not fit on the disk — one clear line;
    again — what the first run finished (the data stage) is unchanged; read-only — the same."""
    assert "run" in COMMANDS
    argv = ["run", "--meta", study["meta_csv"], "--audio-root", study["audio_root"], "--max-epochs", "1",
            "--device", "cpu"]
    with _tmpfs(tmp_path / "disk", 64 * 4096) as disk:
        out = os.path.join(disk, "run")
        rc, err = _main(argv + ["--out", out], capsys)
        assert rc != 0
        line = _one_line(err, "run")
        assert disk in line and "No space left on device" in line, line
        kept = {k: v for k, v in _files(out).items() if not k.endswith((".partial", ".lock"))}
        assert "data/meta.csv" in kept
        rc, err = _main(argv + ["--out", out], capsys)
        assert rc != 0 and "No space left on device" in _one_line(err, "run")
        assert _intact(kept, out, updated=True)
        subprocess.run(["mount", "-o", "remount,ro", disk], check=True)
        rc, err = _main(argv + ["--out", out], capsys)
        assert rc != 0 and "Read-only file system" in _one_line(err, "run")
        assert _intact(kept, out, updated=True)
