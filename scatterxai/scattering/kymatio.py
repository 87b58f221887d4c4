"""Kymatio's own ``Scattering1D`` restricted to the kept paths, and the per-process filter-bank cache."""

from __future__ import annotations

import copy
import functools

import torch
from kymatio.scattering1d.frontend.torch_frontend import ScatteringTorch1D

from ..errors import ScatterXAIError
from .config import PathTable, ScatteringConfig, path_table

__all__ = ["KymatioScattering", "kymatio_module"]


@functools.lru_cache(maxsize=4)
def kymatio_module(config: ScatteringConfig) -> ScatteringTorch1D:
    # Building the paper filter bank takes ~10 s: done once per process and configuration.
    module = ScatteringTorch1D(**config.kymatio_kwargs())
    n_meta = len(module.meta()["order"])
    if module.output_size() != n_meta:
        raise ScatterXAIError(f"Kymatio reports {module.output_size()} coefficients but meta() describes "
                              f"{n_meta}; this Kymatio version is not supported")
    return module


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
    def build(cls, config: ScatteringConfig, device: torch.device, dtype: torch.dtype):
        module = kymatio_module(config)
        if device.type != "cpu" or dtype != torch.float32:
            # nn.Module.to() works in place: copy so that the cached CPU module stays float32 on the CPU.
            module = copy.deepcopy(module).to(device=device, dtype=dtype)
        return cls(module, path_table(config)).to(device)

