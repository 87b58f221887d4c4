"""Property-based test of ``scatterxai extract`` (issue #18): random meta CSVs and random bytes as audio.

Whatever the input: the command ends with exit status 0 (something extracted), 1 (nothing could be read) or
2 (a ScatterXAIError, reported in one line), never a traceback; every row is either extracted or listed as
failed; an output that existed before is untouched unless the run succeeded with ``--overwrite``.
"""

import csv
import functools
import io
import os
import re
import tempfile

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scatterxai import cli, features
from scatterxai.features import FeatureFile, extract_features

from .conftest import SMALL

_GOOD = "good.wav"

# One torch thread: these tiny transforms gain nothing from more, and lose a lot on a busy machine.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


cells = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
names = st.one_of(
    st.sampled_from([_GOOD, "junk0.wav", "junk1.wav", "riff.wav", "missing.wav", "", "../good.wav",
                     "/etc/hostname", "sub/../good.wav", "good.wav/"]),
    cells)
column_names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)


@st.composite
def meta_csvs(draw):
    """(CSV text, number of data rows) — mostly well-formed CSVs with random columns, sometimes raw text."""
    if draw(st.integers(0, 9)) == 0:
        text = draw(st.text(max_size=80))
        return text, None
    extra = draw(st.lists(column_names, max_size=3, unique=True))
    header = ["file_name"] + [c for c in extra if c.strip() != "file_name"]
    n = draw(st.integers(1, 5))
    rows = [[draw(names)] + [draw(cells) for _ in header[1:]] for _ in range(n)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")   # fields holding \r or \n are quoted (not with "\n" alone)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue(), n


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """A features file from an earlier, unrelated extraction (the output the user already has)."""
    d = tmp_path_factory.mktemp("prev")
    (d / "audio").mkdir()
    t = np.arange(SMALL.N) / 22050
    sf.write(d / "audio" / "a.wav", np.sin(2 * np.pi * 330 * t), 22050)
    (d / "m.csv").write_text("file_name\na.wav\n")
    extract_features(d / "m.csv", d / "audio", d / "prev.h5", config=SMALL, device="cpu", progress=False)
    return _Bytes(open(d / "prev.h5", "rb").read())


class _Bytes(bytes):
    def __repr__(self):   # keeps hypothesis' report of a failing example short
        return f"<{len(self)} bytes of an earlier features file>"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(meta=meta_csvs(), junk=st.lists(st.binary(max_size=300), min_size=3, max_size=3),
       overwrite=st.booleans(), existing=st.booleans())
def test_extract_never_tracebacks_and_loses_nothing(meta, junk, overwrite, existing, previous, monkeypatch,
                                                    capsys):
    text, n_rows = meta
    monkeypatch.setattr(features, "extract_features", functools.partial(extract_features, config=SMALL))
    with tempfile.TemporaryDirectory() as d:
        root = os.path.join(d, "audio")
        os.makedirs(os.path.join(root, "sub"))
        t = np.arange(SMALL.N // 2) / 22050
        sf.write(os.path.join(root, _GOOD), np.sin(2 * np.pi * 440 * t), 22050)
        for i, b in enumerate(junk[:2]):
            open(os.path.join(root, f"junk{i}.wav"), "wb").write(b)
        open(os.path.join(root, "riff.wav"), "wb").write(b"RIFF\x24\x00\x00\x00WAVEfmt " + junk[2])
        meta_csv, out = os.path.join(d, "meta.csv"), os.path.join(d, "out.h5")
        with open(meta_csv, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        if existing:
            open(out, "wb").write(previous)
        argv = ["extract", meta_csv, "--audio-root", root, "--out", out, "--device", "cpu", "-q"]
        code = cli.main(argv + (["--overwrite"] if overwrite else []))   # anything else than these raises
        captured = capsys.readouterr()
        event(f"exit status {code}")
        assert code in (0, 1, 2), captured
        assert "Traceback" not in captured.err
        replaced = code == 0 and (overwrite or not existing)
        if existing and not replaced:
            assert open(out, "rb").read() == previous
        if code == 2:   # one error line, after any warnings (e.g. repeated CSV rows)
            lines = captured.err.splitlines()
            assert lines[-1].startswith("scatterxai extract: error: "), captured.err
            assert all(ln.startswith("warning: ") for ln in lines[:-1]), captured.err
            return
        head = re.search(r"(\d+) of (\d+) files extracted, (\d+) failed", captured.out)
        if head:
            n_ok, n_total, n_failed = map(int, head.groups())
        else:   # "already complete": only with the earlier file and the same settings, impossible here
            raise AssertionError(captured.out)
        assert n_ok + n_failed == n_total and (n_rows is None or n_total <= n_rows)
        reported = [ln for ln in captured.out.splitlines() if ln.startswith("  failed: ")]
        assert len(reported) == min(n_failed, 20)
        if code == 1:   # nothing could be read: every row failed, nothing written
            assert n_ok == 0 and (existing or not os.path.exists(out))
        else:
            with FeatureFile(out) as ff:
                done = ff.examples["csv_row"].tolist()
                failed = ff._f["failed/csv_row"][()].tolist()
                assert sorted(done + failed) == list(range(n_total))
                assert (len(done), len(ff.failed)) == (n_ok, n_failed)
                assert np.isfinite(ff.load()).all()
        assert not [f for f in os.listdir(d) if f.endswith((".partial", ".lock", ".tmp"))]
