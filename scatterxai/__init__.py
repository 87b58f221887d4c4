"""scatterxai — explain audio classifiers of playing techniques in physical units.

Kymatio's wavelet scattering turns each note into coefficients indexed by carrier frequency λ1 and
modulation rate λ2 (Hz); a small convnet classifies playing techniques; attribution methods (Zennit's
layer-wise relevance propagation and others) send each prediction back onto the (λ1, λ2) plane.

Importing the package is cheap: the public names below are loaded on first access (nothing imports torch
or Kymatio until it is needed).
"""

__version__ = "0.2.0"

import importlib

#: public name → module that defines it (loaded on first access, PEP 562)
_PUBLIC = {
    "ScatterXAIError": "errors", "ParameterError": "errors", "AudioError": "errors", "DataError": "errors",
    "StoreError": "errors", "ModelError": "errors", "LockError": "errors",
    "ClusterError": "errors", "OutputError": "errors",
    "CLASSES": "task",
    "ScatteringConfig": "scattering.config", "PAPER_CONFIG": "scattering.config", "PathTable": "scattering.config",
    "path_table": "scattering.config",
    "compute_mu": "scattering.normalize", "log_normalize": "scattering.normalize",
    "scatter": "scattering.api",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
