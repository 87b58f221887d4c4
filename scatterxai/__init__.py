"""scatterxai — explain audio classifiers of playing techniques in physical units.

Kymatio's wavelet scattering turns each note into coefficients indexed by carrier frequency λ1 and
modulation rate λ2 (Hz); a small convnet classifies five periodic modulation techniques; Zennit's
layer-wise relevance propagation sends each prediction back onto the (λ1, λ2) plane.
"""

__version__ = "0.1.0"

from .errors import (AudioError, DataError, ModelError, ParameterError, ScatterXAIError,  # noqa: F401
                     StoreError)
from .datasets import CLASSES  # noqa: F401
from .scattering import (PAPER_CONFIG, PathTable, ScatteringConfig, compute_mu,  # noqa: F401
                         log_normalize, path_table, scatter)
