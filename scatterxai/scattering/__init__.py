"""Wavelet scattering of prepared signals (Kymatio's definition) and the network's log compression.

* :mod:`~scatterxai.scattering.config` — :class:`ScatteringConfig`, :class:`PathTable`, :func:`path_table`
  (no torch);
* :mod:`~scatterxai.scattering.normalize` — :func:`compute_mu`, :func:`log_normalize` (no torch);
* :mod:`~scatterxai.scattering.kymatio` — Kymatio's ``Scattering1D`` on the kept paths, its filter bank;
* :mod:`~scatterxai.scattering.plan` — the fast path's plan, a pure function of the filter bank (no torch);
* :mod:`~scatterxai.scattering.fast` — the same coefficients computed only where the filters live;
* :mod:`~scatterxai.scattering.cache` — the on-disk cache of the filter bank and of the plan (no torch);
* :mod:`~scatterxai.scattering.api` — :func:`get_scattering`, :func:`scatter`.

Importing this package does not import torch; :func:`scatter` and :func:`get_scattering` load it on
first use.
"""

from .config import ALPHA, PAPER_CONFIG, PATH_FIELDS, R_PSI, SIGMA0, PathTable, ScatteringConfig, path_table
from .normalize import LOG_C, MU_EPS, compute_mu, log_normalize

__all__ = ["ScatteringConfig", "PAPER_CONFIG", "PathTable", "path_table", "PATH_FIELDS", "R_PSI", "SIGMA0",
           "ALPHA", "compute_mu", "log_normalize", "LOG_C", "MU_EPS", "scatter", "get_scattering", "METHODS"]


def __getattr__(name):
    if name in ("scatter", "get_scattering", "METHODS"):
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
