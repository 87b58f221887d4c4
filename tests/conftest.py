"""Shared fixtures: tiny scattering configurations so that the suite stays fast."""

import os

import numpy as np
import pytest
from hypothesis import settings

from scatterxai.scattering import ScatteringConfig

# CI runs the same examples every time (a failure is reproducible, never a lottery);
# HYPOTHESIS_PROFILE=explore draws new ones
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: tiny configuration for unit tests (249 kept paths, 128 frames)
SMALL = ScatteringConfig(N=2 ** 13, J=6, Q=(8, 2), T=2 ** 6)
#: a configuration long enough to resolve slow modulations (λ2 down to ~1 Hz at 8 kHz)
SLOW_MOD = ScatteringConfig(sr=8000, N=2 ** 15, J=11, Q=(8, 2), T=2 ** 11)


@pytest.fixture
def small_config():
    return SMALL


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True, scope="session")
def scattering_cache(tmp_path_factory):
    """The tests' own on-disk scattering cache (never the user's ``~/.cache/scatterxai``)."""
    old = os.environ.get("SCATTERXAI_CACHE_DIR")
    os.environ["SCATTERXAI_CACHE_DIR"] = str(tmp_path_factory.mktemp("scatterxai-cache"))
    yield
    if old is None:
        os.environ.pop("SCATTERXAI_CACHE_DIR", None)
    else:
        os.environ["SCATTERXAI_CACHE_DIR"] = old


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    float32 sums round differently with other thread counts, so files compared bit for bit across processes
    must be computed with the same count; tiny transforms also gain nothing from more threads."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def write_toy_features(path, *, K: int, subsets, config=SMALL, modulation: bool = False) -> str:
    """A features file of random coefficients scaled by the class (labels 0…4 in turn), so that one epoch
    of training learns something; ``subsets`` repeats over the rows; ``modulation`` adds random
    ``modulation_hz`` (drawn after the coefficients)."""
    from scatterxai.features import write_features
    from scatterxai.scattering import path_table
    table = path_table(config)
    rng = np.random.default_rng(0)
    y = np.arange(K) % 5
    S = (rng.random((K, len(table), table.n_frames)) * (1 + y)[:, None, None]).astype(np.float32)
    columns = {"file_name": np.array([f"n{i}" for i in range(K)], object), "label": y,
               "subset": np.array(list(subsets) * (K // len(subsets)), object)}
    if modulation:
        columns["modulation_hz"] = rng.uniform(4, 30, K)
    write_features(str(path), S, columns, config)
    return str(path)


def train_one_epoch(features: str, model_dir, *, input: str) -> str:
    """A model trained for one epoch (seed 0, CPU) on ``features``."""
    from scatterxai.model import TrainConfig, train_model
    train_model(features, input=input, out_dir=str(model_dir), seed=0, device="cpu", progress=False,
                config=TrainConfig(max_epochs=1))
    return str(model_dir)


#: the head of a script run in a child process, ``python -c KILL_AT_FLUSH + body CSV ROOT OUT KILL_AT``: the
#: child SIGKILLs itself after its KILL_AT-th HDF5 flush (``body`` runs the command that writes)
KILL_AT_FLUSH = """
import os, signal, sys
import h5py
csv, root, out, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
calls = [0]
flush = h5py.File.flush
def killing_flush(self):
    flush(self)
    calls[0] += 1
    if calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
h5py.File.flush = killing_flush
"""


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """A small study with an input of every kind (tests/_world.py), built once per session: never write into
    it (copy what a test modifies)."""
    from ._world import make_world
    return make_world(tmp_path_factory.mktemp("world"))
