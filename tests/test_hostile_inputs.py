"""Issue 26: inputs a hostile but realistic user gives — malformed relevance files, names that are not UTF-8,
features files too large to load at once, Dask addresses that are not schedulers, absurd numbers.  Each
test failed on the code before the fix (a traceback, a hang, a wrong value or rc 0)."""

import http.server
import os
import shutil
import socket
import threading
import time
import warnings

import h5py
import numpy as np
import pytest

from scatterxai import cli
from scatterxai.errors import StoreError
from scatterxai.io.relevance import RelevanceFile

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(argv, capsys):
    rc = cli.main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def one_line_error(err, command):
    lines = [line for line in err.splitlines() if line.startswith(f"scatterxai {command}: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ----------------------------------------------------------------------------- malformed relevance files

def _replace(f, name, data):
    del f[name]
    f.create_dataset(name, data=data)


def _soft_link(f):
    del f["local/epsilon"]
    f["local/epsilon"] = h5py.SoftLink("/local/epsilon")        # a link loop


def _external(f):
    del f["relevance/epsilon"]
    f["relevance/epsilon"] = h5py.ExternalLink("/etc/hostname", "/x")


MALFORMED = {
    "soft_link_loop": _soft_link,
    "external_link": _external,
    "local_rows": lambda f: _replace(f, "local/epsilon", f["local/epsilon"][1:]),
    "relevance_2d": lambda f: _replace(f, "relevance/epsilon", f["relevance/epsilon"][:, :, 0]),
    "grid_row_out_of_range": lambda f: _replace(f, "grid/row", f["grid/row"][()] + 10_000),
    "pred_out_of_range": lambda f: _replace(f, "examples/pred", f["examples/pred"][()] + 99),
    "explained_rows_out_of_range": lambda f: _replace(f, "explained_rows/epsilon",
                                                      np.array([0, 10 ** 9], np.int64)),
    "logits_shape": lambda f: _replace(f, "examples/logits", f["examples/logits"][:, :2]),
    "aggregate_shape": lambda f: _replace(f, "aggregate/epsilon", f["aggregate/epsilon"][:1]),
    "paths_length": lambda f: _replace(f, "paths/order", f["paths/order"][:3]),
    "column_length": lambda f: _replace(f, "examples/file_name",
                                        np.array(["a.wav"], dtype=object).astype(h5py.string_dtype())),
    "no_classes": lambda f: f.attrs.__setitem__("classes", np.array([], dtype=object).astype(h5py.string_dtype())),
}


@pytest.fixture
def malformed(world, tmp_path):
    def make(kind):
        path = tmp_path / f"{kind}.h5"
        shutil.copyfile(world["relevance"], path)
        with h5py.File(path, "r+") as f:
            if "explained_rows" not in f:
                f.create_group("explained_rows")
            MALFORMED[kind](f)
        return path
    return make


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_relevance_file_is_one_clear_error(malformed, kind):
    with pytest.raises(StoreError):
        with RelevanceFile(malformed(kind)) as rf:
            for m in rf.methods:   # every accessor the commands use
                rf.local(m), rf.relevance(m, [0]), rf.explained_rows(m), rf.aggregate(m)


@pytest.mark.parametrize("kind", ["soft_link_loop", "grid_row_out_of_range", "pred_out_of_range", "local_rows"])
@pytest.mark.parametrize("command", ["figures", "compare", "quality", "auralise"])
def test_every_relevance_reader_refuses_a_malformed_file(world, malformed, tmp_path, capsys, kind, command):
    r = malformed(kind)
    argv = {"figures": ["figures", r, "--dpi", "30"], "compare": ["compare", r, "--metrics", "mean_diff"],
            "quality": ["quality", world["features"], "--model", world["model"], "--relevance", r,
                        "--permuted-epochs", "0", "--device", "cpu"],
            "auralise": ["auralise", "--relevance", r, "--example", "0", "--audio-root", world["audio_root"],
                         "--method", "epsilon"]}[command]
    rc, err = run(argv + ["--out", tmp_path / "out"], capsys)
    assert rc == 2
    assert r.name in one_line_error(err, command)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------- names that are not UTF-8

@pytest.fixture
def latin1_features(world, tmp_path):
    path = tmp_path / "latin1.h5"
    shutil.copyfile(world["features"], path)
    with h5py.File(path, "r+") as f:
        names = [n.encode() for n in f["examples/file_name"].asstr()[()]]
        names[0] = "vibrato-é.wav".encode("latin-1")   # a name written by a tool that did not use UTF-8
        del f["examples/file_name"]
        f.create_dataset("examples/file_name", data=np.array(names, dtype=object), dtype=h5py.string_dtype())
    return path


@pytest.mark.parametrize("command", ["evaluate", "explain", "train"])
def test_names_that_are_not_utf8_are_decoded_not_fatal(world, latin1_features, tmp_path, capsys, command):
    out = tmp_path / ("r.h5" if command == "explain" else "out")
    argv = {"evaluate": ["evaluate", latin1_features, "--model", world["model"], "--subset", "all"],
            "explain": ["explain", latin1_features, "--model", world["model"], "--subset", "all",
                        "--methods", "epsilon"],
            "train": ["train", latin1_features, "--input", "s1", "--max-epochs", "1"]}[command]
    rc, err = run(argv + ["--out", out, "--device", "cpu"], capsys)
    assert rc == 0, err
    if command == "explain":
        with RelevanceFile(out) as rf:
            assert rf.examples["file_name"][0] == "vibrato-\ufffd.wav"


# ----------------------------------------------------------------------------- a features file of 200,000

@pytest.fixture
def huge_features(world, tmp_path):
    """200,000 notes of the world's configuration, never written (a sparse, chunked file of a few MB): reading
    it whole would need 200,000 × 249 × 128 × 4 bytes = 25 GB."""
    K = 200_000
    path = tmp_path / "huge.h5"
    with h5py.File(world["features"], "r") as src, h5py.File(path, "w") as f:
        f.attrs.update(src.attrs)
        C, T = src["features"].shape[1:]
        f.create_dataset("features", shape=(K, C, T), dtype=np.float32, chunks=(1, C, T), fillvalue=1.0)
        for g in ("paths", "stats"):
            src.copy(g, f)
        subset = np.array(["training", "validation", "test"] * (K // 3) + ["test"] * (K % 3), dtype=object)
        f.create_dataset("examples/file_name", data=np.array([f"n{i}.wav" for i in range(K)], dtype=object),
                         dtype=h5py.string_dtype())
        f.create_dataset("examples/label", data=np.arange(K) % 5)
        f.create_dataset("examples/subset", data=subset, dtype=h5py.string_dtype())
    return path


@pytest.mark.parametrize("command", ["explain", "train", "evaluate"])
def test_a_huge_features_file_is_never_loaded_at_once(world, huge_features, tmp_path, capsys, monkeypatch,
                                                      command):
    import scatterxai._util.memory as memory
    from scatterxai.features.store import FeatureFile
    monkeypatch.setattr(memory, "available_memory", lambda: 2 * 2 ** 30)   # this machine: 2 GiB free
    largest = [0]
    load = FeatureFile.load

    def counting(self, indices=None):
        largest[0] = max(largest[0], len(self) if indices is None else len(np.asarray(indices)))
        if largest[0] > 4096:
            raise AssertionError(f"{largest[0]} rows read at once")
        return load(self, indices)

    monkeypatch.setattr(FeatureFile, "load", counting)
    out = tmp_path / ("r.h5" if command == "explain" else "out")
    argv = {"explain": ["explain", huge_features, "--model", world["model"], "--subset", "all"],
            "train": ["train", huge_features, "--input", "s1s2", "--max-epochs", "1"],
            "evaluate": ["evaluate", huge_features, "--model", world["model"], "--subset", "test"]}[command]
    if command == "evaluate":   # streams: a bounded subset keeps the test short
        with h5py.File(huge_features, "r+") as f:
            subset = f["examples/subset"].asstr()[()]
            subset[subset == "test"] = "other"
            subset[:600] = "test"
            del f["examples/subset"]
            f.create_dataset("examples/subset", data=subset.astype(object), dtype=h5py.string_dtype())
    rc, err = run(argv + ["--out", out, "--device", "cpu"], capsys)
    if command == "evaluate":
        assert rc == 0, err
    else:
        assert rc == 2
        assert "GiB of memory and this machine has 2.0 GiB available" in one_line_error(err, command)
    assert largest[0] <= 4096


# ---------------------------------------------------------------------------------------- Dask addresses

@pytest.fixture
def not_a_scheduler():
    """A TCP server that answers with text, and an HTTP server (which waits for a request)."""
    servers = []

    def text_server():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()

        def serve():
            while True:
                try:
                    c, _ = s.accept()
                except OSError:
                    return
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4)
        threading.Thread(target=serve, daemon=True).start()
        servers.append(s)
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"

    def http_server():
        h = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
        threading.Thread(target=h.serve_forever, daemon=True).start()
        servers.append(h)
        return f"tcp://127.0.0.1:{h.server_address[1]}"

    yield {"text": text_server, "http": http_server}
    for s in servers:
        if isinstance(s, socket.socket):
            s.close()
        else:
            s.shutdown()


@pytest.mark.parametrize("server", ["text", "http"])
def test_a_dask_address_that_is_not_a_scheduler_is_refused_in_time(world, not_a_scheduler, tmp_path, capsys,
                                                                   server):
    pytest.importorskip("distributed")
    import dask
    address = not_a_scheduler[server]()
    t0 = time.monotonic()
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        rc, err = run(["extract", world["meta_csv"], "--audio-root", world["audio_root"], "--out",
                       tmp_path / "f.h5", "--dask", address], capsys)
    assert time.monotonic() - t0 < 30
    assert rc == 2
    assert f"{address} is not a Dask scheduler" in one_line_error(err, "extract")


# ---------------------------------------------------------------------------------------- absurd numbers

@pytest.mark.parametrize("argv", [["synth", "OUT", "--scale", "1e9"], ["explain", "X.h5", "--model", "M", "--out",
                                                                        "OUT", "--epsilon", "1e300"],
                                  ["figures", "R.h5", "--out", "OUT", "--dpi", "100000"]])
def test_absurd_values_are_refused_before_anything_runs(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as e:
        cli.main([a.replace("OUT", str(tmp_path / "o")) for a in argv])
    assert e.value.code == 2
    assert "expected" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_label_of_1e20_is_one_clear_error_without_a_numpy_warning(world, tmp_path, capsys):
    meta = tmp_path / "meta.csv"
    lines = open(world["meta_csv"]).read().splitlines()
    rows = ["file_name,label,subset"] + [f"{r.split(',')[0]},{i % 3},{r.split(',')[2]}"
                                         for i, r in enumerate(lines[1:])]
    rows[2] = rows[2].split(",")[0] + ",1e20," + rows[2].split(",")[2]
    meta.write_text("\n".join(rows) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rc, err = run(["extract", meta, "--audio-root", world["audio_root"], "--out", tmp_path / "f.h5"], capsys)
    assert rc == 2
    assert "1e+20" in one_line_error(err, "extract")
    assert not os.path.exists(tmp_path / "f.h5")
