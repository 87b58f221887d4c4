"""Architecture presets of the convnet: the paper's network, and a smaller one for small studies.

Every preset has the paper's layout (:class:`scatterxai.model.ConvNet`: input BatchNorm, three 'same'
convolutions with BatchNorm, ReLU and two average poolings, global average over time, dropout, two dense
layers), so that every analysis (LRP canonizers, layer activations, probes) reads any of them the same
way; only the widths, kernel sizes, hidden units and dropout differ.

* ``"paper"`` — c_ref = C_in // 4; C0, C1, C2 = c_ref // 2, c_ref, 2·c_ref; kernels 7, 5, 3; 64 hidden
  units; dropout 0.5 (companion code): 2.07 M parameters on S1+S2 (C_in = 1,200), sized for SOL-PMT's
  thousands of notes.
* ``"small"`` — C0, C1, C2 = 8, 16, 32; kernels 3, 3, 3; 32 hidden units; dropout 0.5: 34 K parameters on
  S1+S2 (29 K of them in the first convolution, which must read every scattering path), 5 K on S1.  Meant
  for studies of tens to a few hundred notes, where the paper's network fits the training notes in one
  epoch (see the README, "Small studies").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple, Union

from .._util.validate import check_float, check_int
from ..errors import ParameterError

__all__ = ["Arch", "ARCHS", "get_arch"]


@dataclass(frozen=True)
class Arch:
    """Widths and regularisation of the convnet (recorded in a model directory's config.json).

    Parameters
    ----------
    name : str
        The preset it came from (informative).
    widths : (int, int, int) or None
        Output channels of conv0, conv1, conv2; None: the paper's rule from the input channels C_in,
        (C_in // 8, C_in // 4, C_in // 2).
    kernels : (int, int, int)
        Kernel sizes (frames) of conv0, conv1, conv2.
    hidden : int
        Units of the first dense layer.
    dropout : float
        Dropout probability before the first dense layer, in [0, 1).
    """

    name: str = "paper"
    widths: Optional[Tuple[int, int, int]] = None
    kernels: Tuple[int, int, int] = (7, 5, 3)
    hidden: int = 64
    dropout: float = 0.5

    def __post_init__(self):
        if self.widths is not None:
            object.__setattr__(self, "widths", _triple("widths", self.widths))
        object.__setattr__(self, "kernels", _triple("kernels", self.kernels))
        check_int("hidden", self.hidden, low=1)
        check_float("dropout", self.dropout, low=0.0, high=1.0)
        if self.dropout >= 1:
            raise ParameterError(f"dropout must be in [0, 1), got {self.dropout}")

    def conv_widths(self, n_channels: int) -> Tuple[int, int, int]:
        """(C0, C1, C2) for ``n_channels`` input channels."""
        if self.widths is not None:
            return self.widths
        c_ref = n_channels // 4
        return c_ref // 2, c_ref, 2 * c_ref

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Optional[Mapping]) -> Arch:
        """An Arch from :meth:`to_dict` output; None (model directories written before presets) → paper."""
        if d is None:
            return ARCHS["paper"]
        try:
            return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})
        except TypeError as e:
            raise ParameterError(f"not an architecture description: {dict(d)} ({e})") from None


def _triple(name: str, value) -> Tuple[int, int, int]:
    try:
        t = tuple(check_int(f"{name}[{i}]", v, low=1) for i, v in enumerate(value))
    except TypeError:
        raise ParameterError(f"{name} must be three positive integers, got {value!r}") from None
    if len(t) != 3:
        raise ParameterError(f"{name} must be three positive integers, got {value!r}")
    return t


#: the named presets (``scatterxai train --arch``)
ARCHS = {
    "paper": Arch(),
    "small": Arch(name="small", widths=(8, 16, 32), kernels=(3, 3, 3), hidden=32, dropout=0.5),
}


def get_arch(arch: Union[None, str, Arch, Mapping] = None, *, dropout: Optional[float] = None) -> Arch:
    """A preset by name (None: ``"paper"``), an :class:`Arch`, or its dict; ``dropout`` overrides."""
    if arch is None:
        arch = ARCHS["paper"]
    elif isinstance(arch, str):
        if arch not in ARCHS:
            raise ParameterError(f"unknown architecture {arch!r}; presets are {sorted(ARCHS)}")
        arch = ARCHS[arch]
    elif isinstance(arch, Mapping):
        arch = Arch.from_dict(arch)
    elif not isinstance(arch, Arch):
        raise ParameterError(f"arch must be a preset name {sorted(ARCHS)} or an Arch, got {type(arch).__name__}")
    if dropout is not None:
        arch = dataclasses.replace(arch, dropout=float(dropout))
    return arch
