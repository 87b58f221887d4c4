"""tools/install.py: pip's configuration carried over to uv (the Makefile's installer)."""

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("tools_install", Path(__file__).parents[1] / "tools" / "install.py")
install = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install)


def test_config_list_precedence_env_over_install_over_global():
    out = "\n".join([
        "global.cert='/etc/ssl/certs/ca-certificates.crt'",
        "global.extra-index-url='file:///opt/a/simple file:///opt/b/simple'",
        "global.find-links='/global/wheels'",
        "install.find-links='/install/wheels'",
        ":env:.find-links='/env/wheels'",
        "global.index-url='https://mirror.example/simple'",
        "install.constraint='/etc/c.txt'",
        ":env:.default-timeout='180'",
        "not a config line",
    ])
    cfg = install.parse_config_list(out)
    assert cfg["find-links"] == "/env/wheels"
    assert cfg["constraint"] == "/etc/c.txt"
    assert cfg["extra-index-url"] == "file:///opt/a/simple file:///opt/b/simple"
    assert cfg["cert"] == "/etc/ssl/certs/ca-certificates.crt"
    # the line without "section.option=" is skipped; options of other sections would be too
    assert set(cfg) == {"cert", "extra-index-url", "find-links", "index-url", "constraint", "default-timeout"}


def test_uv_arguments_choose_the_same_releases_as_pip():
    args = install.uv_arguments({"extra-index-url": "file:///opt/a/simple file:///opt/b/simple",
                                 "index-url": "https://mirror.example/simple", "find-links": "/w",
                                 "constraint": "/etc/c.txt", "no-index": "false", "default-timeout": "180"})
    # pip takes the best release over all indexes; uv's default would stop at the first index that has it
    assert args[:2] == ["--index-strategy", "unsafe-best-match"]
    pairs = list(zip(args[2::2], args[3::2]))
    assert pairs == [("--index-url", "https://mirror.example/simple"),
                     ("--extra-index-url", "file:///opt/a/simple"), ("--extra-index-url", "file:///opt/b/simple"),
                     ("--find-links", "/w"), ("--constraint", "/etc/c.txt")]
    assert install.uv_arguments({"no-index": "true"})[2:] == ["--no-index"]


def test_native_checks_pass_in_this_environment_and_report_a_failure():
    import sys
    # the environment the tests run in was installed by tools/install.py: soundfile must load libsndfile
    assert install.check_native(sys.executable) == {}
    failed = install.check_native(sys.executable, {"fake": "raise OSError(\"cannot load library 'libfake.so'\")",
                                                   "fine": "import json"})
    assert list(failed) == ["fake"]
    assert failed["fake"] == "OSError: cannot load library 'libfake.so'"
