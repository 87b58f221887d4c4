"""The scripts of experiments/ end as the command line does: a package error, an I/O error or Ctrl-C gives one
line naming the problem and status 2 (130 for Ctrl-C), not a traceback (scatterxai.cli.run_script)."""

import glob
import os
import subprocess
import sys

import pytest

from scatterxai.cli import run_script
from scatterxai.errors import ModelError

HERE = os.path.dirname(os.path.abspath(__file__))
EXPERIMENTS = sorted(glob.glob(os.path.join(HERE, os.pardir, "experiments", "*.py")))


def _exit(func, capsys):
    with pytest.raises(SystemExit) as e:
        run_script(func, "demo.py")
    return e.value.code, capsys.readouterr().err


def _raise(exc):
    def func():
        raise exc
    return func


@pytest.mark.parametrize("exc, code, line", [
    (ModelError("/m/model.pt not found"), 2, "demo.py: error: /m/model.pt not found\n"),
    (FileNotFoundError(2, "No such file or directory", "/x.wav"), 2,
     "demo.py: error: /x.wav: No such file or directory\n"),
    (MemoryError(), 2, "demo.py: error: out of memory"),
    (KeyboardInterrupt(), 130, "demo.py: interrupted; what it had finished is in its output folder\n"),
])
def test_run_script_reports_one_line_and_a_status(exc, code, line, capsys):
    status, err = _exit(_raise(exc), capsys)
    assert status == code and err.startswith(line) and err.count("\n") == 1


def test_run_script_passes_the_status_and_other_exceptions_through(capsys):
    assert _exit(lambda: 0, capsys) == (0, "")
    assert _exit(lambda: None, capsys) == (None, "")
    with pytest.raises(ZeroDivisionError):      # a bug stays a traceback
        run_script(lambda: 1 / 0)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=os.path.basename)
def test_every_experiment_script_ends_with_run_script(path):
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    main_block = text[text.index('if __name__ == "__main__":'):]
    assert "run_script(main)" in main_block, f"{os.path.basename(path)}: end with scatterxai.cli.run_script(main)"


def test_a_script_given_a_missing_run_says_so_in_one_line(tmp_path):
    script = os.path.join(HERE, os.pardir, "experiments", "seed_ranges.py")
    done = subprocess.run([sys.executable, script, "--run", str(tmp_path / "missing")], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("seed_ranges.py: error: ")
    assert str(tmp_path / "missing") in done.stderr


@pytest.mark.parametrize("script, args", [
    ("real_cv", ["--pretrained", "{missing}", "--real", "{real}", "--out", "{out}"]),
    ("sweeps_and_auralisation", ["--model", "{missing}", "--out", "{out}"]),
])
def test_a_wrong_model_is_refused_before_the_output_folder_is_made(script, args, tmp_path, monkeypatch):
    import importlib
    monkeypatch.syspath_prepend(os.path.join(HERE, os.pardir, "experiments"))
    real = tmp_path / "real"
    real.mkdir()
    (real / "manifest.csv").write_text("file_name,technique,source_repo\n")   # no audio is read
    values = {"missing": str(tmp_path / "no_model"), "real": str(real), "out": str(tmp_path / "out")}
    with pytest.raises(ModelError, match="model.pt not found"):
        importlib.import_module(script).main([a.format(**values) for a in args])
    assert not (tmp_path / "out").exists()
