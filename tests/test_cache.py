"""The on-disk cache of the filter bank and of the fast path's plan: bit-identical modules, safe files."""

import logging
import os
import threading

import numpy as np
import pytest
import torch

from scatterxai.errors import ParameterError
from scatterxai.scattering import PAPER_CONFIG, api, cache, scatter
from scatterxai.scattering.fast import DEFAULT_RTOL, LOWPASS_RTOL, cached_plan
from scatterxai.scattering.kymatio import _bank_to_arrays, _module_from_arrays, kymatio_module
from scatterxai.scattering.plan import plan_from_arrays, plan_to_arrays

from .conftest import SMALL

METHODS = ("fast", "kymatio")


# Kymatio's many small ops slow down badly when two OpenMP threads share busy cores
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def fresh():
    """Forget the per-process modules before and after, so that the disk cache is what gets exercised."""
    def clear():
        api._cached_module.cache_clear()
        kymatio_module.cache_clear()
    clear()
    yield clear
    clear()


def _signal(config, n=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, config.N))


def _files(d):
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


# --- where the cache lives -----------------------------------------------------------------------------

def test_cache_directory_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.resolve_cache_dir() == tmp_path / "xdg" / "scatterxai"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")          # XDG: only absolute paths count
    assert cache.resolve_cache_dir() == cache.Path.home() / ".cache" / "scatterxai"
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "env"))
    assert cache.resolve_cache_dir() == tmp_path / "env"
    assert cache.resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"   # the argument wins
    assert cache.resolve_cache_dir(False) is None
    monkeypatch.setenv(cache.CACHE_ENV, "OFF")
    assert cache.resolve_cache_dir() is None
    assert cache.resolve_cache_dir(str(tmp_path)) == tmp_path
    with pytest.raises(ParameterError, match="cache_dir must be a directory path"):
        cache.resolve_cache_dir(3.5)
    with pytest.raises(ParameterError, match="cache_dir must be a directory path"):
        scatter(_signal(SMALL), SMALL, cache_dir=3.5)


def test_keys_record_versions_and_fields():
    k = cache.cache_key("kymatio-filters", kymatio_kwargs=SMALL.kymatio_kwargs(), dtype="float32")
    assert k["format"] == cache.FORMAT_VERSION and k["numpy"] == np.__version__ and k["kymatio"].startswith("0.")
    other = cache.cache_key("kymatio-filters", kymatio_kwargs=SMALL.kymatio_kwargs(), dtype="float64")
    assert cache.cache_file(cache.Path("d"), k) != cache.cache_file(cache.Path("d"), other)
    with pytest.raises(TypeError):
        cache.cache_key("x", bad=object())


# --- bit-identical modules -----------------------------------------------------------------------------

def test_filter_bank_round_trips_bit_for_bit():
    built = kymatio_module(SMALL, cache_dir=False)
    rebuilt = _module_from_arrays(SMALL, _bank_to_arrays(built))
    a, b = dict(built.named_buffers()), dict(rebuilt.named_buffers())
    assert a.keys() == b.keys() and len(a) > 20
    for name in a:
        assert a[name].dtype == b[name].dtype == torch.float32
        assert torch.equal(a[name].view(torch.int32), b[name].view(torch.int32)), name
    for bank in ("psi1_f", "psi2_f"):
        for f, g in zip(getattr(built, bank), getattr(rebuilt, bank)):
            assert (f["xi"], f["sigma"], f["j"]) == (g["xi"], g["sigma"], g["j"])
    assert (built.phi_f["xi"], built.phi_f["sigma"], built.phi_f["j"]) == \
        (rebuilt.phi_f["xi"], rebuilt.phi_f["sigma"], rebuilt.phi_f["j"])
    x = torch.as_tensor(_signal(SMALL), dtype=torch.float32)
    assert torch.equal(built(x), rebuilt(x))


def test_plan_round_trips_exactly():
    plan = cached_plan(SMALL, rtol=DEFAULT_RTOL[torch.float32], lowpass_rtol=LOWPASS_RTOL[torch.float32],
                       cache_dir=False)
    again = plan_from_arrays(plan_to_arrays(plan))
    assert again.groups == plan.groups and again.frames == plan.frames and again.rtol == plan.rtol
    assert np.array_equal(again.weights, plan.weights) and np.array_equal(again.channels, plan.channels)
    assert again.buffers.keys() == plan.buffers.keys()
    assert all(np.array_equal(again.buffers[k], v) and again.buffers[k].dtype == v.dtype
               for k, v in plan.buffers.items())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_second_process_reads_the_cache_and_gives_identical_coefficients(fresh, tmp_path, dtype):
    x = _signal(SMALL)
    first = {m: scatter(x, SMALL, method=m, device="cpu", dtype=dtype, cache_dir=tmp_path) for m in METHODS}
    names = _files(tmp_path)
    assert len([n for n in names if n.startswith("kymatio-filters-")]) == 1
    assert len([n for n in names if n.startswith("fast-plan-")]) == 1
    assert not [n for n in names if n.endswith(".tmp")]
    fresh()  # a "second process": nothing in memory, everything from the files
    stamps = {n: os.stat(tmp_path / n).st_mtime_ns for n in names}
    second = {m: scatter(x, SMALL, method=m, device="cpu", dtype=dtype, cache_dir=tmp_path) for m in METHODS}
    assert {n: os.stat(tmp_path / n).st_mtime_ns for n in names} == stamps   # read, not rewritten
    no_cache = {m: scatter(x, SMALL, method=m, device="cpu", dtype=dtype, cache_dir=False) for m in METHODS}
    for m in METHODS:
        assert torch.equal(first[m], second[m]) and torch.equal(first[m], no_cache[m]), m


def test_a_prepared_plan_is_what_extraction_reads(fresh, tmp_path, monkeypatch):
    """``prepare_plan`` (scatterxai run's background preparation) stores the float32 plan that ``scatter``
    reads; ``plan_missing`` says when it is absent, and is False without a cache (nothing to prepare)."""
    from scatterxai.scattering.fast import plan_missing, prepare_plan
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path))
    assert plan_missing(SMALL)
    prepare_plan(SMALL.to_dict())
    assert not plan_missing(SMALL)
    names = _files(tmp_path)
    assert len([n for n in names if n.startswith("fast-plan-")]) == 1
    fresh()
    stamps = {n: os.stat(tmp_path / n).st_mtime_ns for n in names}
    x = _signal(SMALL)
    from_prepared = scatter(x, SMALL, method="fast", device="cpu")
    assert _files(tmp_path) == names and {n: os.stat(tmp_path / n).st_mtime_ns for n in names} == stamps
    assert torch.equal(from_prepared, scatter(x, SMALL, method="fast", device="cpu", cache_dir=False))
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    assert not plan_missing(SMALL)


def test_disabled_cache_writes_nothing(fresh, tmp_path, monkeypatch):
    scatter(_signal(SMALL), SMALL, method="fast", device="cpu", cache_dir=False)
    monkeypatch.setenv(cache.CACHE_ENV, "off")
    fresh()
    scatter(_signal(SMALL), SMALL, method="fast", device="cpu")
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "env"))
    fresh()
    scatter(_signal(SMALL), SMALL, method="fast", device="cpu")
    assert len(_files(tmp_path / "env")) == 2 and _files(tmp_path) == ["env"]


# --- damaged, foreign and unwritable caches --------------------------------------------------------------

def _damage(path, how):
    data = bytearray(path.read_bytes())
    if how == "garbage":
        path.write_bytes(b"not a zip file at all" * 10)
    elif how == "truncated":
        path.write_bytes(bytes(data[:len(data) // 2]))
    elif how == "bitflip":           # inside the values: only the zip CRC can tell
        data[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(data))
    elif how == "empty":
        path.write_bytes(b"")


@pytest.mark.parametrize("how", ["garbage", "truncated", "bitflip", "empty"])
def test_a_damaged_cache_file_is_rebuilt_with_a_warning(fresh, tmp_path, caplog, how):
    x = _signal(SMALL)
    ref = {m: scatter(x, SMALL, method=m, device="cpu", cache_dir=tmp_path) for m in METHODS}
    for name in _files(tmp_path):
        _damage(tmp_path / name, how)
    fresh()
    with caplog.at_level(logging.WARNING, logger="scatterxai"):
        again = {m: scatter(x, SMALL, method=m, device="cpu", cache_dir=tmp_path) for m in METHODS}
    assert sum("rebuilding" in r.getMessage() for r in caplog.records) == 2
    for m in METHODS:
        assert torch.equal(ref[m], again[m])
    fresh()  # the rebuilt files are valid again: no more warnings
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="scatterxai"):
        scatter(x, SMALL, method="kymatio", device="cpu", cache_dir=tmp_path)
    assert not caplog.records


def test_inconsistent_arrays_under_the_right_key_are_rebuilt(fresh, tmp_path, caplog):
    kymatio_module(SMALL, cache_dir=tmp_path)
    (path,) = tmp_path.iterdir()
    key = cache.cache_key("kymatio-filters", kymatio_kwargs=SMALL.kymatio_kwargs(), dtype="float32")
    arrays = cache.load_arrays(path, key)
    arrays["levels"][3, 3] //= 2                          # a level of the wrong length
    assert cache.save_arrays(path, key, arrays)
    fresh()
    with caplog.at_level(logging.WARNING, logger="scatterxai"):
        m = kymatio_module(SMALL, cache_dir=tmp_path)
    assert any("inconsistent" in r.getMessage() for r in caplog.records)
    x = torch.as_tensor(_signal(SMALL), dtype=torch.float32)
    assert torch.equal(m(x), kymatio_module(SMALL, cache_dir=False)(x))


def test_a_file_holding_another_key_is_not_used(tmp_path, caplog):
    key = cache.cache_key("thing", n=1)
    path = cache.cache_file(tmp_path, key)
    assert cache.save_arrays(path, cache.cache_key("thing", n=2), {"a": np.arange(3)})
    with caplog.at_level(logging.WARNING, logger="scatterxai"):
        assert cache.load_arrays(path, key) is None
    assert "another key" in caplog.text
    built = cache.cached(key, lambda: np.arange(5), to_arrays=lambda a: {"a": a}, from_arrays=lambda d: d["a"],
                         cache_dir=tmp_path)
    assert np.array_equal(cache.load_arrays(path, key)["a"], built)


def test_an_unwritable_cache_only_warns(fresh, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    with caplog.at_level(logging.WARNING, logger="scatterxai"):
        S = scatter(_signal(SMALL), SMALL, method="fast", device="cpu", cache_dir=blocker / "cache")
    assert S.shape[0] == 2 and "cannot write the cache file" in caplog.text


def test_concurrent_writers_never_leave_a_damaged_file(tmp_path):
    key = cache.cache_key("race", n=0)
    path = cache.cache_file(tmp_path, key)
    payloads = [{"a": np.full(200_000, i, np.int64), "b": np.arange(i + 1)} for i in range(6)]
    errors = []

    def write(i):
        try:
            for _ in range(5):
                assert cache.save_arrays(path, key, payloads[i])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def read():
        try:
            for _ in range(40):
                got = cache.load_arrays(path, key)
                if got is not None:   # always one writer's complete payload
                    i = int(got["a"][0])
                    assert np.array_equal(got["a"], payloads[i]["a"])
                    assert np.array_equal(got["b"], payloads[i]["b"])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)] + [threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    got = cache.load_arrays(path, key)
    assert any(np.array_equal(got["a"], p["a"]) for p in payloads)
    assert _files(tmp_path) == [path.name]   # no temporary file left behind
    stale, fresh_tmp = tmp_path / f"{path.name}.123-dead.tmp", tmp_path / f"{path.name}.456-busy.tmp"
    stale.write_bytes(b"half a file")
    fresh_tmp.write_bytes(b"being written")
    os.utime(stale, (0, 0))                  # a killed writer's, long ago
    assert cache.save_arrays(path, key, payloads[0])
    assert _files(tmp_path) == sorted([path.name, fresh_tmp.name])


# --- the paper configuration -----------------------------------------------------------------------------

@pytest.mark.slow
def test_paper_configuration_from_the_cache_is_bit_identical(fresh, tmp_path):
    x = _signal(PAPER_CONFIG, n=1)
    built = {m: scatter(x, PAPER_CONFIG, method=m, device="cpu", cache_dir=tmp_path) for m in METHODS}
    fresh()
    read = {m: scatter(x, PAPER_CONFIG, method=m, device="cpu", cache_dir=tmp_path) for m in METHODS}
    for m in METHODS:
        assert torch.equal(built[m], read[m]), m
