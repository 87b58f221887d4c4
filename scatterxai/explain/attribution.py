"""Batched attribution with any registered method: :func:`attribute` → :class:`Attribution`."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch

from .._util.device import resolve_device
from .._util.log import progress as progress_bar
from .._util.types import Device
from .._util.validate import check_positive_int
from ..errors import ParameterError
from .base import Explainer, get_explainer

__all__ = ["Attribution", "attribute"]


@dataclass
class Attribution:
    """Result of :func:`attribute` for K examples.

    Attributes
    ----------
    relevance : np.ndarray [shape=(K, C, T)]
        Input relevance R[path, frame] (float32, or float64 for float64 inputs).
    logits : np.ndarray [shape=(K, n_classes)]
        Network output (for LRP, of the canonized network, which reproduces the original's logits).
    explained : np.ndarray [shape=(K,), int64]
        Index of the explained class of each example.
    explained_logit : np.ndarray [shape=(K,)]
        Its logit: the relevance that enters the network at the top.
    conservation : np.ndarray [shape=(K,)]
        Sum of input relevance / explained logit (NaN where the logit is 0); for LRP below 1 when biases
        absorb relevance.
    method : str
        Registered name of the method.
    params : dict
        Its parameters.
    extras : dict of str → np.ndarray [shape=(K, ...)]
        Further per-example outputs of the method, e.g. ``baseline_logits`` (K, n_classes) of Integrated
        Gradients (the logits at the baseline x′).
    """

    relevance: np.ndarray
    logits: np.ndarray
    explained: np.ndarray
    explained_logit: np.ndarray
    conservation: np.ndarray
    method: str
    params: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)

    @property
    def completeness(self) -> Optional[np.ndarray]:
        """Σ relevance / (f_c(x) − f_c(x′)) per example for methods with a baseline x′ (Integrated
        Gradients; 1 is exact completeness, NaN where the difference is 0), else None."""
        if "baseline_logits" not in self.extras:
            return None
        K = len(self.explained)
        diff = self.explained_logit.astype(np.float64) - self.extras["baseline_logits"][np.arange(K), self.explained]
        total = self.relevance.reshape(K, -1).sum(axis=1, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(diff != 0, total / diff, np.nan)


def _as_input(inputs) -> torch.Tensor:
    if isinstance(inputs, torch.Tensor):
        x = inputs.detach()
    else:
        try:
            x = torch.as_tensor(np.asarray(inputs))
        except (TypeError, ValueError, RuntimeError):
            raise ParameterError(f"inputs must be a numeric array of shape (K, C, T), got "
                                 f"{type(inputs).__name__}") from None
    if x.ndim != 3:
        raise ParameterError(f"inputs must have shape (K, C, T), got {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.to(torch.float32)
    return x


def _targets(target, K: int, n_classes: int):
    """None for "pred", else validated int64 labels (K,)."""
    if isinstance(target, str):
        if target != "pred":
            raise ParameterError(f"target must be 'pred' or an array of K={K} class indices, got {target!r}")
        return None
    labels = np.asarray(target)
    if labels.shape != (K,) or labels.dtype.kind not in "iu":
        raise ParameterError(f"target labels must be an integer array of shape ({K},), got shape "
                             f"{labels.shape} and dtype {labels.dtype}")
    if K and (labels.min() < 0 or labels.max() >= n_classes):
        raise ParameterError(f"target labels must lie in [0, {n_classes}), got values in "
                             f"[{labels.min()}, {labels.max()}]")
    return labels.astype(np.int64)


def private_copy(net: torch.nn.Module, device, dtype) -> torch.nn.Module:
    """A deep copy in eval mode with frozen parameters (canonizers and hooks never touch the caller's net)."""
    model = copy.deepcopy(net).to(device=device, dtype=dtype).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _per_example(explainer, arrays, K: int) -> dict:
    """Validated per-example arrays (K, ...) as tensors, exactly those the explainer needs."""
    arrays = dict(arrays or {})
    needed = explainer.per_example_inputs()
    if sorted(arrays) != sorted(needed):
        raise ParameterError(f"method {explainer.name!r} with {explainer.params()} needs the per-example inputs "
                             f"{list(needed)}, got {sorted(arrays)}")
    out = {}
    for name, value in arrays.items():
        t = _as_input(value) if not isinstance(value, torch.Tensor) else value.detach()
        if t.shape[0] != K:
            raise ParameterError(f"per-example input {name!r} has {t.shape[0]} rows, the inputs have K={K}")
        out[name] = t
    return out


def attribute(net: torch.nn.Module, inputs: Union[np.ndarray, torch.Tensor], *, method: Union[str, Explainer],
              target: Union[str, np.ndarray] = "pred", batch_size: int = 64, device: Device = "auto",
              progress: bool = False, per_example: Optional[Mapping[str, np.ndarray]] = None,
              **params: Any) -> Attribution:
    """Relevance of each input coefficient for the explained logit, in batches.

    Parameters
    ----------
    net : torch.nn.Module
        Network (e.g. :class:`scatterxai.model.ConvNet`) mapping (B, C, T) to logits (B, n_classes); modules
        registered in forward order.  It is not modified: a deep copy in eval mode is explained.
    inputs : np.ndarray or torch.Tensor [shape=(K, C, T)]
        Exactly what the network sees (log-normalised features, see ``LoadedModel.prepare``).  float64
        inputs are explained in float64, anything else in float32.
    method : str or Explainer
        A registered method (:func:`scatterxai.explain.available_methods`), e.g. ``"epsilon_plus"``.
    target : "pred" or array of int [shape=(K,)]
        Explain the predicted class (paper), or the given classes (e.g. the true labels).
    batch_size : int
        Examples attributed at once.
    device : str or torch.device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``…
    progress : bool
        Show a progress bar over batches.
    per_example : dict of str → array [shape=(K, ...)], optional
        Per-example inputs the method needs (:meth:`Explainer.per_example_inputs`), e.g.
        ``{"baseline": x0}`` (K, C, T) for Integrated Gradients with ``baseline="given"``.
    **params
        Parameters of the method (e.g. ``epsilon=1e-6`` for LRP presets).

    Returns
    -------
    Attribution

    Examples
    --------
    LRP-[ε,z+] of a convnet on 16 paths × 8 frames, for the predicted class; in float64, and with the biases
    left out of the rules, relevance is conserved: it sums to the explained logit.

    >>> import torch
    >>> from scatterxai.explain import attribute
    >>> from scatterxai.model import ConvNet
    >>> _ = torch.manual_seed(0)
    >>> net = ConvNet(16, n_classes=3).double().eval()
    >>> x = np.random.default_rng(0).random((4, 16, 8))
    >>> res = attribute(net, x, method="epsilon_plus", epsilon=1e-12, zero_bias=True)
    >>> res.relevance.shape, res.relevance.dtype
    ((4, 16, 8), dtype('float64'))
    >>> bool(np.all(res.explained == res.logits.argmax(axis=1)))
    True
    >>> np.allclose(res.relevance.sum(axis=(1, 2)), res.explained_logit)
    True

    Any registered method, with its parameters, for given classes:

    >>> ig = attribute(net, x, method="integrated_gradients", steps=32, target=np.array([0, 1, 2, 0]))
    >>> ig.explained.tolist(), bool(np.all(np.abs(ig.completeness - 1) < 0.05))
    ([0, 1, 2, 0], True)
    """
    explainer = get_explainer(method, **params)
    batch_size = check_positive_int("batch_size", batch_size)
    if not isinstance(net, torch.nn.Module):
        raise ParameterError(f"net must be a torch.nn.Module, got {type(net).__name__}")
    x_all = _as_input(inputs)
    K = x_all.shape[0]
    n_channels = getattr(net, "n_channels", None)
    if n_channels is not None and x_all.shape[1] != n_channels:
        raise ParameterError(f"inputs have {x_all.shape[1]} channels but the network expects {n_channels}")
    dev = resolve_device(device)
    dtype = torch.float64 if x_all.dtype == torch.float64 else torch.float32
    model = private_copy(net, dev, dtype)
    n_classes = getattr(net, "n_classes", None)
    if n_classes is None:
        with torch.no_grad():
            n_classes = model(x_all[:1].to(dev, dtype)).shape[1]
    labels = _targets(target, K, n_classes)
    extra_inputs = _per_example(explainer, per_example, K)
    extras: dict = {}

    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    relevance = np.empty(tuple(x_all.shape), dtype=np_dtype)
    logits = np.empty((K, n_classes), dtype=np_dtype)
    explained = np.empty(K, dtype=np.int64)
    starts = progress_bar(range(0, K, batch_size), enabled=progress, desc=explainer.name, unit="batch",
                          leave=False)
    with explainer.session(model) as run, torch.enable_grad():
        for start in starts:
            xb = x_all[start:start + batch_size].to(device=dev, dtype=dtype).clone()
            index = None if labels is None else torch.as_tensor(labels[start:start + batch_size], device=dev)
            batch_extra = {k: v[start:start + batch_size].to(device=dev, dtype=dtype) for k, v in extra_inputs.items()}
            output, rel, *info = run(xb, index, **batch_extra)
            stop = start + xb.shape[0]
            for key, value in (info[0] if info else {}).items():
                value = value.detach().cpu().numpy()
                if key not in extras:
                    extras[key] = np.empty((K,) + value.shape[1:], dtype=value.dtype)
                extras[key][start:stop] = value
            relevance[start:stop] = rel.detach().cpu().numpy()
            logits[start:stop] = output.detach().cpu().numpy()
            explained[start:stop] = (output.detach().argmax(dim=1).cpu().numpy() if labels is None
                                     else labels[start:stop])
    explained_logit = logits[np.arange(K), explained]
    total = relevance.reshape(K, -1).sum(axis=1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        conservation = np.where(explained_logit != 0, total / explained_logit, np.nan)
    return Attribution(relevance=relevance, logits=logits, explained=explained,
                       explained_logit=explained_logit, conservation=conservation.astype(np_dtype),
                       method=explainer.name, params=explainer.params(), extras=extras)
