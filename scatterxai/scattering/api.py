"""Scattering of prepared signals: :func:`get_scattering` (a cached module per configuration, device,
dtype and method) and :func:`scatter`.

Two interchangeable methods compute the same coefficients (:data:`METHODS`):

* ``"kymatio"`` — Kymatio's own ``Scattering1D`` followed by selection of the kept paths
  (:mod:`scatterxai.scattering.kymatio`);
* ``"fast"`` — :mod:`scatterxai.scattering.fast`, which computes only the kept paths, multiplies each
  filter on its support only and batches FFTs; equal to Kymatio within 1e-4 relative (tested).

Kymatio 0.3's traps (dtype, contiguity, length, device, ``Q`` given as a list or numpy integers) are
guarded so that users get clear errors or documented fix-ups.
"""

from __future__ import annotations

import functools
import os
from typing import Union

import numpy as np
import torch

from .._util.device import resolve_device
from .._util.validate import check_positive_int
from ..errors import ParameterError
from .cache import CacheDir
from .config import PAPER_CONFIG, ScatteringConfig
from .fast import FastScattering
from .kymatio import KymatioScattering

__all__ = ["get_scattering", "scatter", "METHODS"]

#: scattering implementations by name: each builds a module (B, N) → (B, C_kept, n_frames)
METHODS = {"kymatio": KymatioScattering.build, "fast": FastScattering.build}


@functools.lru_cache(maxsize=8)
def _cached_module(config, device, dtype, method, cache_dir):
    return METHODS[method](config, device, dtype, cache_dir=cache_dir)


def get_scattering(config: ScatteringConfig = PAPER_CONFIG, *, device: Union[str, torch.device] = "auto",
                   method: str = "fast", dtype: torch.dtype = torch.float32,
                   cache_dir: CacheDir = None) -> torch.nn.Module:
    """The scattering module for ``config`` on ``device`` (built once per process and reused).

    What takes time to build (Kymatio's filter bank, ~10 s for the paper configuration; the fast path's
    plan) is read from an on-disk cache when an earlier process stored it
    (:mod:`scatterxai.scattering.cache`).

    Parameters
    ----------
    config : ScatteringConfig
    device : str or torch.device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``…
    method : {"fast", "kymatio"}
        Implementation; both give the same coefficients (see module docstring).
    dtype : torch.float32 or torch.float64
        Precision of filters and computation.
    cache_dir : str, path, None or False
        Directory of the on-disk cache; None: ``$SCATTERXAI_CACHE_DIR``, else ``$XDG_CACHE_HOME/scatterxai``,
        else ``~/.cache/scatterxai``; False: no cache (``SCATTERXAI_CACHE_DIR=off`` does the same).  The
        cached arrays give bit-identical coefficients.
    """
    if not isinstance(config, ScatteringConfig):
        raise ParameterError(f"config must be a ScatteringConfig, got {type(config).__name__}")
    if method not in METHODS:
        raise ParameterError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if dtype not in (torch.float32, torch.float64):
        raise ParameterError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    if not (cache_dir is None or cache_dir is False or isinstance(cache_dir, (str, os.PathLike))):
        raise ParameterError(f"cache_dir must be a directory path, None (default) or False (no cache), "
                             f"got {cache_dir!r}")
    return _cached_module(config, resolve_device(device), dtype, method,
                          cache_dir if cache_dir in (None, False) else os.fspath(cache_dir))


def _as_batch(x, config: ScatteringConfig, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Validate and convert an input signal batch to a contiguous (B, N) tensor of ``dtype`` on ``device``."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError, RuntimeError):
            raise ParameterError(f"input must be a numeric array of shape (N,) or (B, N), got "
                                 f"{type(x).__name__}") from None
    if t.is_complex() or not (t.is_floating_point() or t.dtype in (torch.int8, torch.int16, torch.int32,
                                                                      torch.int64, torch.uint8)):
        raise ParameterError(f"input must be a real numeric array, got dtype {t.dtype}")
    if t.ndim == 1:
        t = t[None]
    if t.ndim != 2:
        raise ParameterError(f"input must have shape (N,) or (B, N), got {tuple(t.shape)}")
    if t.shape[-1] != config.N:
        raise ParameterError(f"input length {t.shape[-1]} does not match the configured N={config.N}; "
                             f"prepare audio with scatterxai.audio.prepare (pads or truncates)")
    # float64 input against float32 filters (Kymatio's default) fails deep inside its backend: cast.
    t = t.to(device=device, dtype=dtype).contiguous()
    if not torch.isfinite(t).all():
        raise ParameterError("input contains NaN or inf values")
    return t


def scatter(x: Union[np.ndarray, torch.Tensor], config: ScatteringConfig = PAPER_CONFIG, *,
            device: Union[str, torch.device] = "auto", method: str = "fast", dtype: torch.dtype = torch.float32,
            batch_size: int = 8, cache_dir: CacheDir = None) -> torch.Tensor:
    """Scattering coefficients of the kept paths.

    Parameters
    ----------
    x : np.ndarray or torch.Tensor [shape=(N,) or (B, N)]
        Prepared signals of exactly ``config.N`` samples (see :func:`scatterxai.audio.prepare`).  Any real
        dtype is accepted and cast to ``dtype``; non-contiguous tensors and tensors on another device are
        copied.
    config : ScatteringConfig
    device, method, dtype, cache_dir
        See :func:`get_scattering`.
    batch_size : int
        Signals transformed at once (memory grows linearly with it).

    Returns
    -------
    S : torch.Tensor [shape=(B, C, n_frames)]
        On ``device``; C = ``len(path_table(config))`` (1,200 for the paper configuration).

    Examples
    --------
    Two signals through a small transform (2**13 samples, J = 6: frames of 2**6 samples):

    >>> from scatterxai import ScatteringConfig, path_table, scatter
    >>> config = ScatteringConfig(N=2**13, J=6, Q=(8, 2), T=2**6)
    >>> x = np.random.default_rng(0).standard_normal((2, config.N))
    >>> S = scatter(x, config, device="cpu")
    >>> tuple(S.shape)
    (2, 249, 128)
    >>> paths = path_table(config)
    >>> int((paths.order == 1).sum()), int((paths.order == 2).sum())    # S1 and S2 paths
    (38, 211)
    >>> bool((S >= 0).all())      # moduli, averaged
    True
    """
    batch_size = check_positive_int("batch_size", batch_size)
    module = get_scattering(config, device=device, method=method, dtype=dtype, cache_dir=cache_dir)
    dev = resolve_device(device)
    t = _as_batch(x, config, dev, dtype)
    # inference mode skips autograd bookkeeping on the thousands of small ops of a forward pass; the
    # result is copied out of it (torch.cat outside the context) so callers get an ordinary tensor.
    with torch.inference_mode():
        out = [module(t[i:i + batch_size]) for i in range(0, t.shape[0], batch_size)]
    return torch.cat(out, dim=0)

