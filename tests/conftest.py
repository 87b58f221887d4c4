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
