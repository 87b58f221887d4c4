"""Fine-tuning: start training from a pretrained model directory (``scatterxai train --init MODEL_DIR``).

The new network has the pretrained one's architecture, input selection and scattering; its weights start
from the pretrained ones:

* **convolutional part** (input BatchNorm, conv0–conv2 and their BatchNorms, fc1) — copied; with
  ``freeze=True`` the input BatchNorm, the convolutions and their BatchNorms are not trained (their
  parameters get no gradient and their running statistics stay the pretrained ones); fc1 and the head
  are always trained;
* **head** (fc2) — the study's classes F against the pretrained classes P:

  - ``"same"`` — F and P name the same classes: the rows of fc2 are copied (reordered to F's order);
  - ``"subset"`` — F ⊂ P (new recordings without one technique): the rows of F's classes are copied, so
    the fine-tuned model predicts F only;
  - ``"new"`` — F names a class P does not know (or ``new_head=True``): fc2 is initialised afresh, and
    the rows of the classes P knows are copied unless ``new_head=True``.

**Normalisation μ** (the input is log1p(S / (c·μ + 1e-8))): ``mu="pretrained"`` keeps the pretrained
model's μ, so that a sound gives the network the same input as in pretraining; ``mu="data"`` takes μ from
the new training rows, so that the new data arrive at the scale the pretrained layers saw (each
coefficient's mean input ≈ log1p(1/c)).  The default is the one measured better on real recordings (README,
"Fine-tuning"); the choice is recorded in config.json (``init.mu``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .._util.validate import check_choice
from ..errors import ModelError, ParameterError

if TYPE_CHECKING:
    from ..features.store import FeatureFile

__all__ = ["InitSpec", "Pretrained", "MU_CHOICES", "FROZEN_MODULES", "head_mode", "as_init"]

#: where μ of a fine-tuned model comes from
MU_CHOICES = ("pretrained", "data")
#: modules that ``freeze=True`` keeps at their pretrained values (parameters and running statistics)
FROZEN_MODULES = ("input_bn", "conv0", "bn0", "conv1", "bn1", "conv2", "bn2")


@dataclass(frozen=True)
class InitSpec:
    """How to start from a pretrained model.

    Parameters
    ----------
    model_dir : str
        The pretrained model directory (``scatterxai train``).
    freeze : bool
        Keep the convolutional part (:data:`FROZEN_MODULES`) fixed; train fc1 and the head only.
    new_head : bool
        Initialise the head afresh even for classes the pretrained model knows.
    mu : {"pretrained", "data"}
        Normalisation μ of the fine-tuned model (module docstring).
    """

    model_dir: str
    freeze: bool = False
    new_head: bool = False
    mu: str = "pretrained"

    def __post_init__(self):
        object.__setattr__(self, "model_dir", os.fspath(self.model_dir))
        check_choice("mu", self.mu, MU_CHOICES)


def head_mode(study: Sequence[str], pretrained: Sequence[str], *, new_head: bool = False) -> Tuple[str, Dict[int, int]]:
    """How the head starts: (mode, {row of the new head: row of the pretrained head copied into it}).

    Parameters
    ----------
    study : sequence of str
        Classes of the new training data (the new head's rows, in order).
    pretrained : sequence of str
        Classes of the pretrained model.
    new_head : bool
        A fresh head whatever the names.

    Returns
    -------
    mode : {"same", "subset", "new"}
    copied : dict int → int
    """
    study, pretrained = list(study), list(pretrained)
    known = {i: pretrained.index(c) for i, c in enumerate(study) if c in pretrained}
    if new_head:
        return "new", {}
    if len(known) < len(study):
        return "new", known
    return ("same" if set(study) == set(pretrained) else "subset"), known


class Pretrained:
    """A loaded pretrained model, checked against the new training data, that initialises a new network.

    Parameters
    ----------
    spec : InitSpec
    features : FeatureFile
        The new training data (scattering and paths must be the pretrained model's).
    input : str or None
        The requested input selection; None takes the pretrained model's.
    classes : sequence of str
        The new data's classes.
    """

    def __init__(self, spec: InitSpec, features: FeatureFile, input: Optional[str], classes: Sequence[str]):
        from .directory import load_model
        self.spec = spec
        self.model = load_model(spec.model_dir, device="cpu")
        cfg = self.model.config
        if input is not None and input != cfg["input"]:
            raise ParameterError(f"--init {spec.model_dir} was trained on input {cfg['input']!r}; fine-tuning "
                                 f"keeps its input (got --input {input!r}): omit --input or pass {cfg['input']!r}")
        self.input = cfg["input"]
        try:
            self.model.check_compatible(features, classes="ignore")
        except ModelError as e:
            raise ModelError(f"--init {spec.model_dir} cannot start training on {features.path}: {e}") from None
        self.classes = tuple(classes)
        self.mode, self.copied = head_mode(self.classes, self.model.classes, new_head=spec.new_head)
        self.arch = self.model.net.arch

    def apply(self, net: torch.nn.Module) -> List[str]:
        """Copy the pretrained weights into ``net`` (same architecture, head of the new classes); freeze.

        Returns
        -------
        list of str — the frozen modules (empty without ``freeze``).
        """
        src = self.model.net.state_dict()
        body = {k: v for k, v in src.items() if not k.startswith("fc2.")}
        missing, unexpected = net.load_state_dict(body, strict=False)
        if unexpected or sorted(missing) != ["fc2.bias", "fc2.weight"]:
            raise ModelError(f"{self.spec.model_dir} does not fit the new network (missing {missing}, "
                             f"unexpected {unexpected})")
        with torch.no_grad():
            for new, old in self.copied.items():
                net.fc2.weight[new] = src["fc2.weight"][old]
                net.fc2.bias[new] = src["fc2.bias"][old]
        if not self.spec.freeze:
            return []
        for name in FROZEN_MODULES:
            for p in getattr(net, name).parameters():
                p.requires_grad_(False)
        return list(FROZEN_MODULES)

    def mu(self, data_mu: np.ndarray) -> Tuple[np.ndarray, str]:
        """(μ of the fine-tuned model, its description) given μ of the new training rows."""
        if self.spec.mu == "pretrained":
            return self.model.mu.copy(), f"pretrained model {os.path.abspath(self.spec.model_dir)} (init.mu)"
        return data_mu, "training rows of the new data (init.mu = data)"

    def record(self, frozen: Sequence[str]) -> dict:
        """The ``init`` entry of config.json."""
        return {"model_dir": os.path.abspath(self.spec.model_dir), "weights_sha256": self.model.checksum,
                "classes": list(self.model.classes), "input": self.input, "arch": self.arch.to_dict(),
                "head": self.mode, "head_rows_copied": {self.classes[i]: self.model.classes[j]
                                                        for i, j in self.copied.items()},
                "frozen": list(frozen), "mu": self.spec.mu,
                "train_config": self.model.config.get("train_config")}


def as_init(init: Union[None, str, os.PathLike, InitSpec]) -> Optional[InitSpec]:
    """An :class:`InitSpec` from a spec, a model directory path, or None."""
    if init is None or isinstance(init, InitSpec):
        return init
    if isinstance(init, (str, os.PathLike)):
        return InitSpec(os.fspath(init))
    raise ParameterError(f"init must be a model directory or an InitSpec, got {type(init).__name__}")
