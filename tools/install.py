"""Install this package with its extras into a virtual environment: with uv when it can, with pip otherwise.

The Makefile runs ``VENV/bin/python tools/install.py '.[test,dask]'`` with the environment's own Python.

Why uv: the dependencies are ~6 GB (torch's CUDA build, which ``import zennit`` needs through torchvision).
pip unpacks them one file after another; uv unpacks in parallel.  Measured on a 2-core machine with the
packages on a local index: 65 s with pip, 20 s with uv, and the same releases (``pip freeze`` compared).

Same releases as pip:
* ``--index-strategy unsafe-best-match``: the newest matching release over every index, as pip picks.  uv's
  default would take a package only from the first index that has it, so a mirror's older releases would win.
* uv does not read pip's configuration.  The options of ``pip config list`` that choose releases (config files
  and ``PIP_*`` variables: index-url, extra-index-url, find-links, constraint, no-index, trusted-host, cert)
  are passed on.  The ``install`` section and then the environment override ``global``, as in pip.

uv's cache is a folder inside the environment, removed after the install.  It sits on the same disk as the
environment, so uv hard-links files rather than copying them, and no 6-GB cache is left in the home directory.

Fallback: if uv cannot be installed or its install fails, pip installs the same requirement (``--no-compile``;
the Makefile byte-compiles afterwards), and the reason is printed.  ``SCATTERXAI_INSTALLER=pip`` forces pip.

One place where uv and pip differ: when a release is on several indexes, uv looks only at the first index's files
of it, while pip takes the most specific wheel over all of them.  A mirror that holds only soundfile's
``py3-none-any`` wheel (which expects the system's libsndfile) beside one with the ``manylinux`` wheel (which
bundles it) therefore gave uv a soundfile that could not load (seen on a fresh machine: ``cannot load library
'libsndfile.so'``).  After uv's install, :data:`NATIVE_CHECKS` imports each such package; one that fails is
reinstalled with pip at the same release, and if it still fails the install stops with the reason.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

#: pip options → (uv option, how many values: "many" splits on whitespace, "flag" takes none)
OPTIONS: Dict[str, tuple] = {
    "index-url": ("--index-url", "one"),
    "extra-index-url": ("--extra-index-url", "many"),
    "find-links": ("--find-links", "many"),
    "constraint": ("--constraint", "many"),
    "trusted-host": ("--allow-insecure-host", "many"),
    "no-index": ("--no-index", "flag"),
}

PIP_QUIET = ["--quiet", "--disable-pip-version-check"]

#: distribution → code that fails when its wheel lacks the native library it needs
NATIVE_CHECKS: Dict[str, str] = {
    "soundfile": "import soundfile; soundfile.__libsndfile_version__",
}


def pip_config(python: str) -> Dict[str, str]:
    """pip's effective option values: :func:`parse_config_list` of ``python -m pip config list``."""
    out = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True).stdout
    return parse_config_list(out)


def parse_config_list(out: str) -> Dict[str, str]:
    """Option values from the output of ``pip config list`` (lines ``section.option='value'``, the section
    ``:env:`` for ``PIP_*`` variables): for each option, ``:env:`` over ``install`` over ``global``, as in pip."""
    found: Dict[str, Dict[str, str]] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        section, dot, name = key.rpartition(".")
        if not sep or not dot:
            continue
        try:
            value = ast.literal_eval(value)
        except (SyntaxError, ValueError):
            continue
        found.setdefault(name, {})[section] = str(value)
    order = ("global", "install", ":env:")   # later wins, as in pip
    return {name: next(sections[s] for s in reversed(order) if s in sections)
            for name, sections in found.items() if any(s in sections for s in order)}


def uv_arguments(config: Dict[str, str]) -> List[str]:
    """uv ``pip install`` options equivalent to pip's release-choosing options in ``config``."""
    args = ["--index-strategy", "unsafe-best-match"]
    for name, (option, kind) in OPTIONS.items():
        value = config.get(name)
        if value is None:
            continue
        if kind == "flag":
            if value.strip().lower() in ("1", "true", "yes", "on"):
                args.append(option)
            continue
        for item in (value.split() if kind == "many" else [value.strip()]):
            args += [option, item]
    return args


def install_with_uv(python: str, requirement: str) -> Optional[str]:
    """Install ``requirement`` with uv; None when done, else why not."""
    try:
        config = pip_config(python)
        # -qq: errors only (a mirror without uv makes pip warn about each index it skips)
        subprocess.run([python, "-m", "pip", "install", *PIP_QUIET, "--quiet", "uv>=0.5"], check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"could not install uv with pip ({exc})"
    uv = Path(python).parent / "uv"
    if not uv.exists():
        return f"uv is not at {uv} after installing it"
    env = dict(os.environ)
    if "cert" in config and "SSL_CERT_FILE" not in env:
        env["SSL_CERT_FILE"] = config["cert"]
    cache = Path(python).parent.parent / ".uv-cache"
    env["UV_CACHE_DIR"] = str(cache)
    try:
        subprocess.run([str(uv), "pip", "install", "--quiet", "--python", python, *uv_arguments(config),
                        "-e", requirement], check=True, env=env)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"uv could not install {requirement} ({exc})"
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return None


def check_native(python: str, checks: Dict[str, str] = NATIVE_CHECKS) -> Dict[str, str]:
    """The packages of ``checks`` whose check fails in ``python``, each with the last line of its error."""
    failed = {}
    for dist, code in checks.items():
        run = subprocess.run([python, "-c", code], capture_output=True, text=True)
        if run.returncode != 0:
            lines = (run.stderr or run.stdout).strip().splitlines()
            failed[dist] = lines[-1] if lines else f"exit code {run.returncode}"
    return failed


def repair_native(python: str, checks: Dict[str, str] = NATIVE_CHECKS) -> Optional[str]:
    """Reinstall with pip, at the installed release, each package whose native check fails; None when all pass
    afterwards, else why not."""
    failed = check_native(python, checks)
    for dist, why in failed.items():
        print(f"tools/install.py: {dist} does not load after uv's install ({why}); "
              f"reinstalling it with pip", file=sys.stderr)
        version = subprocess.run([python, "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
                                 capture_output=True, text=True)
        pinned = f"{dist}=={version.stdout.strip()}" if version.returncode == 0 else dist
        subprocess.run([python, "-m", "pip", "install", *PIP_QUIET, "--force-reinstall", "--no-deps", pinned])
    still = check_native(python, {dist: checks[dist] for dist in failed})
    if still:
        return "; ".join(f"{dist} still does not load ({why})" for dist, why in still.items())
    return None


def main(argv: List[str]) -> int:
    if len(argv) != 1:
        print("usage: VENV/bin/python tools/install.py REQUIREMENT   (e.g. '.[test,dask]')", file=sys.stderr)
        return 2
    python, requirement = sys.executable, argv[0]
    if os.environ.get("SCATTERXAI_INSTALLER", "uv") != "pip":
        why = install_with_uv(python, requirement)
        if why is None:
            why = repair_native(python)
            if why is None:
                return 0
            print(f"tools/install.py: {why}", file=sys.stderr)
            return 1
        print(f"tools/install.py: {why}; installing with pip instead", file=sys.stderr)
    return subprocess.run([python, "-m", "pip", "install", *PIP_QUIET, "--no-compile", "-e", requirement]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
