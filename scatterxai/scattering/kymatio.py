"""Kymatio's own ``Scattering1D`` restricted to the kept paths, and its filter bank: built once per process
and configuration, and kept in the on-disk cache (:mod:`scatterxai.scattering.cache`) between processes.

The cache stores the float32 filters exactly as Kymatio's module holds them, as their non-zero runs (17 %
of the 298 MB of the paper configuration's bank); the module is then assembled the way Kymatio 0.3's
``ScatteringTorch1D.__init__`` does, with the stored filters in place of ``create_filters``.  The filters'
centre frequencies, widths and scales are recomputed by Kymatio (cheap) and the stored arrays are checked
against the filter bank's structure, so a damaged file is rebuilt rather than used.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import torch
from kymatio.frontend.base_frontend import ScatteringBase
from kymatio.frontend.torch_frontend import ScatteringTorch
from kymatio.scattering1d.filter_bank import compute_params_filterbank
from kymatio.scattering1d.frontend.base_frontend import ScatteringBase1D
from kymatio.scattering1d.frontend.torch_frontend import ScatteringTorch1D

from .._util.log import logger
from .._util.versions import package_version
from ..errors import ScatterXAIError
from .cache import CacheDir, cache_key, cached
from .config import PathTable, ScatteringConfig, path_table

__all__ = ["KymatioScattering", "kymatio_module"]

#: Kymatio versions whose ``ScatteringTorch1D.__init__`` :func:`_module_from_arrays` reproduces
_CACHEABLE_KYMATIO = ("0.3.",)


@functools.lru_cache(maxsize=4)
def kymatio_module(config: ScatteringConfig, *, cache_dir: CacheDir = None) -> ScatteringTorch1D:
    """Kymatio's ``ScatteringTorch1D`` of ``config`` (float32, CPU), built once per process.

    Building the paper filter bank takes ~10 s; with the on-disk cache (``cache_dir``: see
    :func:`scatterxai.scattering.cache.resolve_cache_dir`) later processes read it in a fraction of that.
    """
    def build():
        return ScatteringTorch1D(**config.kymatio_kwargs())

    if package_version("kymatio").startswith(_CACHEABLE_KYMATIO):
        key = cache_key("kymatio-filters", kymatio_kwargs=config.kymatio_kwargs(), dtype="float32")
        module = cached(key, build, to_arrays=_bank_to_arrays,
                        from_arrays=lambda arrays: _module_from_arrays(config, arrays), cache_dir=cache_dir)
    else:
        logger.debug("Kymatio %s: filter bank not cached", package_version("kymatio"))
        module = build()
    n_meta = len(module.meta()["order"])
    if module.output_size() != n_meta:
        raise ScatterXAIError(f"Kymatio reports {module.output_size()} coefficients but meta() describes "
                              f"{n_meta}; this Kymatio version is not supported")
    return module


# ------------------------------------------------------------------------------- filter bank ↔ arrays

_BANKS = ("phi", "psi1", "psi2")


def _filters(module, bank: str) -> list:
    return [module.phi_f] if bank == "phi" else getattr(module, f"{bank}_f")


def _bank_to_arrays(module: ScatteringTorch1D) -> dict:
    """The filter bank as its non-zero runs: ``levels`` (L, 5) int64 rows (bank, filter, level, length,
    number of runs), ``runs`` (R, 2) int64 (start, length), ``values`` float32 (the runs' values in order).

    A bin is "zero" when its float32 bit pattern is all zeros, so the runs rebuild the arrays bit for bit
    (a -0.0 would be kept as a value)."""
    levels, runs, values = [], [], []
    for b, bank in enumerate(_BANKS):
        for i, filt in enumerate(_filters(module, bank)):
            for level, t in enumerate(filt["levels"]):
                a = np.ascontiguousarray(torch.as_tensor(t).detach().cpu().numpy().ravel())
                if a.dtype != np.float32:
                    raise ScatterXAIError(f"Kymatio's filter {bank}[{i}] level {level} is {a.dtype}, expected "
                                          f"float32")
                nonzero = np.concatenate([[0], (a.view(np.uint32) != 0).astype(np.int8), [0]])
                edges = np.flatnonzero(np.diff(nonzero))
                starts, stops = edges[::2], edges[1::2]
                levels.append((b, i, level, a.size, starts.size))
                runs.extend(zip(starts, stops - starts))
                values.extend(a[s:e] for s, e in zip(starts, stops))
    return {"levels": np.array(levels, dtype=np.int64).reshape(-1, 5),
            "runs": np.array(runs, dtype=np.int64).reshape(-1, 2),
            "values": np.concatenate(values) if values else np.zeros(0, np.float32)}


def _expected_levels(m, xi1s, j1s, j2s) -> dict:
    """Number of levels of each filter, by Kymatio's rules (``scattering_filter_factory``)."""
    n = {("phi", 0): min(max(max(j1s), max(j2s)), m.log2_T) + 1}
    n.update({("psi1", i): 1 for i in range(len(xi1s))})
    n.update({("psi2", i): max([j1 for j1 in j1s if j2 > j1], default=0) + 1 for i, j2 in enumerate(j2s)})
    return n


def _module_from_arrays(config: ScatteringConfig, arrays) -> ScatteringTorch1D:
    """Kymatio's module with the stored filters, assembled like ``ScatteringTorch1D.__init__`` (Kymatio 0.3)
    minus ``create_filters``; raises on anything inconsistent with the filter bank's structure."""
    m = ScatteringTorch1D.__new__(ScatteringTorch1D)
    ScatteringTorch.__init__(m)
    ScatteringBase1D.__init__(m, **config.kymatio_kwargs(), backend="torch")
    ScatteringBase1D._instantiate_backend(m, "kymatio.scattering1d.backend.")
    ScatteringBase1D.build(m)

    sigma_min = m.sigma0 / math.pow(2, m.J)
    xi1s, sigma1s, j1s = compute_params_filterbank(sigma_min, m.Q[0], m.alpha, m.r_psi)
    xi2s, sigma2s, j2s = compute_params_filterbank(sigma_min, m.Q[1], m.alpha, m.r_psi)
    bank = {"phi": [{"levels": [], "xi": 0, "sigma": m.sigma0 / m.T, "j": m.log2_T}],
            "psi1": [{"levels": [], "xi": xi, "sigma": s, "j": j} for xi, s, j in zip(xi1s, sigma1s, j1s)],
            "psi2": [{"levels": [], "xi": xi, "sigma": s, "j": j} for xi, s, j in zip(xi2s, sigma2s, j2s)]}

    levels, runs, values = (np.asarray(arrays[k]) for k in ("levels", "runs", "values"))
    if (levels.ndim != 2 or levels.shape[1] != 5 or runs.ndim != 2 or runs.shape[1] != 2
            or levels.dtype != np.int64 or runs.dtype != np.int64 or values.dtype != np.float32
            or levels[:, 4].sum() != len(runs) or runs[:, 1].sum() != values.size):
        raise ScatterXAIError("the filter-bank arrays have inconsistent shapes")
    r = v = 0
    for b, i, level, length, n_runs in levels.tolist():
        filt = bank[_BANKS[b]][i]
        if level != len(filt["levels"]) or length != m._N_padded >> level:
            raise ScatterXAIError(f"filter {_BANKS[b]}[{i}]: level {level} of length {length} is out of order "
                                  f"or of the wrong length (padded length {m._N_padded})")
        a = np.zeros(length, np.float32)
        for start, n in runs[r:r + n_runs].tolist():
            if n < 1 or start < 0 or start + n > length:
                raise ScatterXAIError(f"filter {_BANKS[b]}[{i}]: run ({start}, {n}) outside {length} bins")
            a[start:start + n] = values[v:v + n]
            v += n
        r += n_runs
        filt["levels"].append(a)
    expected = _expected_levels(m, xi1s, j1s, j2s)
    found = {(name, i): len(f["levels"]) for name in _BANKS for i, f in enumerate(bank[name])}
    if found != expected or not np.isfinite(values).all():
        raise ScatterXAIError("the stored filter bank does not have Kymatio's structure")

    m.phi_f, m.psi1_f, m.psi2_f = bank["phi"][0], bank["psi1"], bank["psi2"]
    ScatteringBase._check_filterbanks(m.psi1_f, m.psi2_f)
    m.register_filters()
    return m


class KymatioScattering(torch.nn.Module):
    """Kymatio's ``Scattering1D`` restricted to the kept paths: (B, N) → (B, C, n_frames)."""

    def __init__(self, kymatio_module: ScatteringTorch1D, table: PathTable):
        super().__init__()
        self.kymatio = kymatio_module
        self.table = table
        self.register_buffer("keep", torch.as_tensor(table.kymatio_index), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S = self.kymatio(x)
        if S.shape[-2] != self.table.n_total:
            raise ScatterXAIError(f"Kymatio returned {S.shape[-2]} coefficients, meta() describes "
                                  f"{self.table.n_total}")
        return S.index_select(-2, self.keep)

    @classmethod
    def build(cls, config: ScatteringConfig, device: torch.device, dtype: torch.dtype, *,
              cache_dir: CacheDir = None) -> KymatioScattering:
        module = kymatio_module(config, cache_dir=cache_dir)
        if device.type != "cpu" or dtype != torch.float32:
            # nn.Module.to() works in place: copy so that the cached CPU module stays float32 on the CPU.
            module = copy.deepcopy(module).to(device=device, dtype=dtype)
        return cls(module, path_table(config)).to(device)
