"""Torch device selection (the one helper here that imports torch)."""

from __future__ import annotations

import platform
from typing import Dict, Union

import torch

from ..errors import ParameterError

__all__ = ["resolve_device", "cpu_description"]


def resolve_device(device: Union[str, torch.device] = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else is passed to :class:`torch.device`."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<i>', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    return dev


#: x86 instruction-set extensions whose presence changes which kernels MKL, oneDNN and numpy run
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile")


def cpu_description() -> Dict[str, str]:
    """The processor this process computes on: ``model`` (its name, from ``/proc/cpuinfo`` on Linux), ``machine``
    (architecture), ``isa`` (which of :data:`ISA_FLAGS` it has, from ``/proc/cpuinfo``: virtual machines often
    report a generic name, and these tell two of them apart) and ``torch_capability`` (the SIMD level of
    torch's CPU kernels, e.g. "AVX512").

    Recorded beside a trained model because the numbers depend on it: MKL's FFT and torch's kernels choose
    their code by processor, so the same command on another CPU differs in the last bits, and training
    carries that difference to other weights.
    """
    info = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    return {"model": info.get("model name") or platform.processor() or "unknown",
            "machine": platform.machine() or "unknown",
            "isa": " ".join(f for f in ISA_FLAGS if f in flags) or "unknown",
            "torch_capability": str(torch.backends.cpu.get_cpu_capability())}
