"""Extraction and explanation on Dask (``--dask``, issue #16): the same files as serial runs, nothing lost or
duplicated when a worker or the driver dies, worker failures reported like serial ones."""

import os
import signal
import subprocess
import sys
import textwrap

import distributed
import h5py
import numpy as np
import pytest
import soundfile as sf

from scatterxai._util.cluster import check_dask
from scatterxai.cli import main
from scatterxai.errors import ClusterError, ParameterError
from scatterxai.explain import explain
from scatterxai.features import extract_features

from .conftest import SMALL, train_one_epoch, write_toy_features

N_TONES = 10


# One torch thread here, as in Dask's worker processes (OMP_NUM_THREADS=1): the same rounding.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes (real processes, so that a kill is a real kill)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Ten tones (one three windows long), a corrupt and an empty file; labels and subsets."""
    d = tmp_path_factory.mktemp("dask")
    root = d / "audio"
    root.mkdir()
    sr = 22050
    rows = ["file_name,label,subset"]
    for i in range(N_TONES):
        t = np.arange(SMALL.N // 2 * (5 if i == 6 else 1)) / sr
        sf.write(root / f"n{i}.wav", np.sin(2 * np.pi * (200 + 40 * i) * t) * (1 + 0.5 * np.sin(2 * np.pi * 5 * t)),
                 sr)
        rows.append(f"n{i}.wav,{i % 5},{'training' if i < 6 else 'test'}")
    (root / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    sf.write(root / "empty.wav", np.zeros(0), sr)
    rows[3:3] = ["bad.wav,1,training"]
    rows.append("empty.wav,2,test")
    (d / "meta.csv").write_text("\n".join(rows) + "\n")
    return str(d / "meta.csv"), str(root)


def _extract(csv, root, out, **kw):
    return extract_features(csv, root, out, config=SMALL, device="cpu", batch_size=2, progress=False, **kw)


@pytest.fixture(scope="module")
def serial(corpus, tmp_path_factory):
    """The serial files, without and with --segments."""
    d = tmp_path_factory.mktemp("serial")
    return {seg: _extract(*corpus, str(d / f"s{int(seg)}.h5"), segments=seg).out for seg in (False, True)}


def _deref(f, key, value):
    """Dimension-scale attributes hold object references (file-specific): compare the names they point to."""
    if key == "REFERENCE_LIST":
        return np.array([f"{f[ref].name}:{dim}" for ref, dim in value], dtype=object)
    if key == "DIMENSION_LIST":
        return np.array([",".join(f[ref].name for ref in refs) for refs in value], dtype=object)
    return value


def _contents(path):
    """Every dataset (name → array) and every attribute of a file."""
    data, attrs = {}, {}
    with h5py.File(path, "r") as f:
        attrs["/"] = dict(f.attrs)

        def visit(name, obj):
            attrs[name] = {k: _deref(f, k, v) for k, v in obj.attrs.items()}
            if isinstance(obj, h5py.Dataset):
                data[name] = obj[()]
        f.visititems(visit)
    return data, attrs


#: attributes that record how long a step took (the relevance file's per-method ``seconds``): not data
TIMING_ATTRS = ("seconds",)


def assert_same_file(a, b):
    (da, aa), (db, ab) = _contents(a), _contents(b)
    assert sorted(da) == sorted(db)
    for k, v in da.items():
        assert v.dtype == db[k].dtype and v.shape == db[k].shape, k
        assert np.array_equal(v, db[k], equal_nan=v.dtype.kind == "f"), k   # bit for bit (NaN == NaN)
    assert sorted(aa) == sorted(ab)
    for k in aa:
        assert sorted(aa[k]) == sorted(ab[k]), k
        for name, v in aa[k].items():
            if name not in TIMING_ATTRS:
                assert np.array_equal(np.asarray(v), np.asarray(ab[k][name])), (k, name)


# ------------------------------------------------------------------------------------------ extraction

def test_every_batch_is_computed_with_one_torch_thread_whatever_jobs(corpus, serial, tmp_path, monkeypatch):
    """Issue 26: float32 sums of the paper configuration's long FFTs round differently with other thread
    counts (29 % of coefficients differ in their last bits between one and two threads), so a default
    extraction computes every batch with one torch thread, as Dask's workers do: the file is then the same
    whatever --jobs and --dask (before, a serial run used torch's threads)."""
    import torch

    import scatterxai.features.extract as extract_mod
    seen, real = [], extract_mod.compute_batch

    def recording(*a, **k):
        seen.append(torch.get_num_threads())
        return real(*a, **k)

    monkeypatch.setattr(extract_mod, "compute_batch", recording)
    torch.set_num_threads(2)   # torch's default on this 2-core machine (the fixture set 1)
    try:
        one = _extract(*corpus, str(tmp_path / "one.h5")).out
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    monkeypatch.setattr(extract_mod, "compute_batch", real)
    two = _extract(*corpus, str(tmp_path / "two.h5"), jobs=2).out   # two spawned single-threaded processes
    assert_same_file(one, serial[False])
    assert_same_file(two, serial[False])


@pytest.mark.parametrize("segments", [False, True])
def test_extract_on_dask_is_the_serial_file(corpus, serial, client, tmp_path, segments):
    out = str(tmp_path / "d.h5")
    address = client.scheduler.address if segments else client   # a scheduler address, or a Client
    summary = _extract(*corpus, out, segments=segments, dask=address)
    assert summary.n_failed == 2 and summary.n_ok == N_TONES
    assert_same_file(serial[segments], out)
    with h5py.File(out, "r") as f:   # per-worker failures land in /failed, as serial ones
        assert sorted(f["failed/file_name"].asstr()[()]) == ["bad.wav", "empty.wav"]
    assert not os.path.exists(out + ".partial")


def _kill_once(flag, victim):
    """On a worker: reading ``victim`` kills the worker process (SIGKILL) the first time (flag file)."""
    import scatterxai.audio as audio
    real = getattr(audio, "_real_read_window", audio.read_window)

    def read_window(path, *a, **k):
        if os.path.basename(path) == victim and not os.path.exists(flag):
            open(flag, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return real(path, *a, **k)

    audio._real_read_window, audio.read_window = real, read_window


def _raise_on(victim):
    """On a worker: reading ``victim`` raises an error that is not an AudioError."""
    import scatterxai.audio as audio
    real = getattr(audio, "_real_read_window", audio.read_window)

    def read_window(path, *a, **k):
        if os.path.basename(path) == victim:
            raise RuntimeError(f"boom while reading {victim}")
        return real(path, *a, **k)

    audio._real_read_window, audio.read_window = real, read_window


def _restore():
    import scatterxai.audio as audio
    audio.read_window = getattr(audio, "_real_read_window", audio.read_window)


def test_a_killed_worker_is_replaced_and_its_chunk_recomputed(corpus, serial, client, tmp_path):
    flag = str(tmp_path / "killed")
    client.run(_kill_once, flag, "n4.wav")
    try:
        summary = _extract(*corpus, str(tmp_path / "d.h5"), dask=client)
    finally:
        client.run(_restore)
    assert os.path.exists(flag)   # a worker did die, reading n4.wav
    assert summary.n_ok == N_TONES and summary.n_failed == 2
    assert_same_file(serial[False], summary.out)
    client.wait_for_workers(2, timeout=60)


def test_an_error_on_a_worker_is_a_cluster_error_and_the_run_resumes(corpus, serial, client, tmp_path):
    out = str(tmp_path / "d.h5")
    client.run(_raise_on, "n5.wav")
    try:
        with pytest.raises(ClusterError, match=r"extraction of rows \d+–\d+ \(n5\.wav.*RuntimeError: boom "
                                               r"while reading n5\.wav.*kept in .*d\.h5\.partial"):
            _extract(*corpus, out, dask=client)
    finally:
        client.run(_restore)
    assert os.path.exists(out + ".partial") and not os.path.exists(out)
    summary = _extract(*corpus, out, dask=client)
    assert summary.n_ok == N_TONES
    assert_same_file(serial[False], out)


_DRIVER = textwrap.dedent("""
    import os, signal, sys
    from scatterxai.features import extract_features
    from scatterxai.io.partial import PartialFile
    from scatterxai.scattering import ScatteringConfig
    csv, root, out = sys.argv[1:4]
    commit, n = PartialFile.commit, [0]
    def killing_commit(self, *a, **k):
        commit(self, *a, **k)
        n[0] += 1
        if n[0] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    PartialFile.commit = killing_commit
    if __name__ == "__main__":
        extract_features(csv, root, out, config=ScatteringConfig(N=2 ** 13, J=6, Q=(8, 2), T=2 ** 6), device="cpu",
                         batch_size=2, progress=False, dask="local:2")
""")


def test_resume_after_the_driver_is_killed(corpus, serial, client, tmp_path):
    out = str(tmp_path / "d.h5")
    proc = subprocess.Popen([sys.executable, "-c", _DRIVER, *corpus, out], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)   # its local cluster's processes, if any are left
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert os.path.exists(out + ".partial") and not os.path.exists(out)
    summary = _extract(*corpus, out, dask=client)
    assert summary.n_resumed == 4 and summary.n_ok == N_TONES   # two chunks of two rows were committed
    assert_same_file(serial[False], out)


# ----------------------------------------------------------------------------------------- explanation

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A features file (random, SMALL) and an S1+S2 model trained for one epoch."""
    d = tmp_path_factory.mktemp("trained")
    features = write_toy_features(d / "f.h5", K=30, modulation=True,
                                  subsets=("training", "training", "validation", "test", "training", "test"))
    return features, train_one_epoch(features, d / "m", input="s1s2")


@pytest.mark.parametrize("subset,target", [("all", "pred"), ("test", "true")])
def test_explain_on_dask_is_the_serial_file(trained, client, tmp_path, subset, target):
    features, model_dir = trained
    kw = dict(model_dir=model_dir, methods=["epsilon", "epsilon_plus"], subset=subset, target=target,
              device="cpu", batch_size=4, progress=False)
    explain(features, out=tmp_path / "s.h5", **kw)
    explain(features, out=tmp_path / "d.h5", dask=client, **kw)
    assert_same_file(tmp_path / "s.h5", tmp_path / "d.h5")


def test_explain_on_dask_slow_methods_on_a_stratified_subset(trained, client, tmp_path):
    """Methods limited to n rows per class, and Integrated Gradients' completeness, as serially."""
    features, model_dir = trained
    kw = dict(model_dir=model_dir, methods=["epsilon", "integrated_gradients", "occlusion"], subset="all",
              device="cpu", batch_size=4, progress=False, method_params={"integrated_gradients": {"steps": 8}},
              max_per_class={"integrated_gradients": 2, "occlusion": 3})
    explain(features, out=tmp_path / "s.h5", **kw)
    explain(features, out=tmp_path / "d.h5", dask=client, **kw)
    assert_same_file(tmp_path / "s.h5", tmp_path / "d.h5")
    with h5py.File(tmp_path / "d.h5", "r") as f:
        assert f["explained_rows/integrated_gradients"].shape == (10,)     # 2 per class, 5 classes
        assert np.isfinite(f["completeness/integrated_gradients"][()]).sum() == 10


# ------------------------------------------------------------------------------------------ description

def test_describe_on_dask_is_the_pool_file(corpus, client, tmp_path):
    from scatterxai.analysis.describe.run import DescribeConfig, describe_notes
    meta, root = corpus
    pool = describe_notes(meta, root, str(tmp_path / "p.h5"), config=DescribeConfig(jobs=2, batch_size=3),
                          progress=False)
    dask = describe_notes(meta, root, str(tmp_path / "d.h5"), config=DescribeConfig(jobs=2, batch_size=3),
                          progress=False, dask=client)
    assert (dask.n_ok, dask.n_failed) == (pool.n_ok, pool.n_failed) == (N_TONES, 2)
    assert_same_file(tmp_path / "p.h5", tmp_path / "d.h5")


# ------------------------------------------------------------------------------------------- arguments

@pytest.mark.parametrize("spec", ["local:0", "local:x", "locals", "tcp:/host", "host", "", 3])
def test_bad_dask_values_are_refused(spec):
    with pytest.raises(ParameterError, match="scheduler address"):
        check_dask(spec)


def test_good_dask_values_pass():
    assert [check_dask(s) for s in ("local", "local:3", " tcp://10.0.0.1:8786", "node7:8786")] == [
        "local", "local:3", "tcp://10.0.0.1:8786", "node7:8786"]
    assert check_dask(None) is None


def test_missing_dask_is_a_clear_error(corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ClusterError, match=r"pip install 'scatterxai\[dask\]'"):
        _extract(*corpus, str(tmp_path / "d.h5"), dask="local:2")
    assert not os.listdir(tmp_path)   # refused before anything was written


def test_an_unreachable_scheduler_is_a_clear_error(corpus, tmp_path):
    import dask
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(ClusterError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9 .*dask "
                                              r"scheduler"):
        _extract(*corpus, str(tmp_path / "d.h5"), dask="tcp://127.0.0.1:9")
    assert os.path.exists(tmp_path / "d.h5.partial")   # the run can be resumed (serially, too)


def test_cli_dask_option(corpus, tmp_path, capsys):
    assert main(["extract", corpus[0], "--audio-root", corpus[1], "--out", str(tmp_path / "f.h5"),
                 "--dask", "nowhere"]) == 2
    assert "--dask must be a Dask scheduler address (tcp://host:8786), or local:N" in capsys.readouterr().err
    assert main(["explain", corpus[1] + "/n0.wav", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "o"),
                 "--dask", "local:2"]) == 2
    assert "--dask applies to a features file input" in capsys.readouterr().err
