"""Deletion and insertion of whole paths: the explained logit as the top paths are replaced by a baseline.

The unit replaced is a **path** (λ1, λ2) over all its frames — the unit a reader of a relevance map
interprets.  For each note and each path order (one per attribution method, plus seeded random orders as
the reference), :func:`perturbation_logits` returns the network's logits after replacing the first k_j
paths by the baseline (deletion) or after putting the first k_j paths of the note into the all-baseline
input (insertion).

Baselines (named; :data:`BASELINES`).  A deletion ranking is only defined together with what a deleted path
becomes, and different baselines can rank methods differently (a method whose map is a first-order
prediction of deletion *towards a given baseline* wins under that baseline), so :func:`~.stage.quality`
scores every method under several:

* ``"zero"`` — silence through the same scattering and normalisation: the model input log1p(0 / (c·μ)) = 0;
* ``"training_mean"`` — the **mean of the normalised training inputs of that path**, over the training
  notes and frames, b_p = mean_{n, t} log1p(S_n[p, t] / (c·μ_p + 1e-8)) (:func:`training_mean_input`),
  constant over frames: the value the network saw on average (the input BatchNorm's running mean estimates
  it and maps it to its shift β_p, the network's own neutral point — which is also the reference point of
  LRP-ε on this network, so that LRP-ε ≈ gradient × (x − b) predicts deletion towards it to first order);
* ``"shuffle"`` — the note's own path with its frames in a random order (seeded per note and path,
  :func:`shuffled_input`): the path keeps every value it had, hence its mean, spread and distribution over
  frames, and loses only its temporal order — an input the network could have seen, which tests the
  temporal structure the map claims matters rather than the path's presence;
* ``"mu"`` — the input of a path whose coefficient equals its mean energy, log1p(μ_p / (c·μ_p + 1e-8))
  ≈ log1p(1/c) for every path: far above what most notes have on most paths (their energy is
  concentrated on a few paths, so the mean of the log is well below the log of the mean), so replacing a
  silent path by it *adds* energy; kept for comparison, not scored by default.

Speed.  The convnet's first layers (input BatchNorm, conv0, BatchNorm bn0, in eval mode) are affine in the
input and act on each path separately before summing, so a path's effect on bn0's output does not depend on
the other paths.  For :class:`~scatterxai.model.ConvNet`, the effect of replacing each path is computed once
per note (a grouped convolution), the perturbed bn0 outputs of every step of every order are running sums
of these effects, and only the rest of the network runs per step (tested equal to perturbing the input).
Any other network is run on the perturbed inputs.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..._util.log import progress as progress_bar
from ..._util.types import PathLike
from ..._util.validate import check_choice
from ...errors import ParameterError
from ...model.net import ConvNet
from . import metrics

if TYPE_CHECKING:
    from ...features.store import FeatureFile
    from ...model.directory import LoadedModel

__all__ = ["BASELINES", "training_mean_input", "shuffled_input", "baseline_input", "perturbation_logits",
           "perturbation_study"]

#: baseline kinds of :func:`baseline_input` (module docstring)
BASELINES = ("zero", "training_mean", "shuffle", "mu")


def training_mean_input(features: Union[PathLike, FeatureFile], model: LoadedModel, *,
                        subset: str = "training", chunk: int = 64) -> np.ndarray:
    """Mean network input of each path over the ``subset`` rows of a features file and all frames.

    Parameters
    ----------
    features : str, Path or FeatureFile
    model : LoadedModel
        Gives the channels, μ and c of the network input.
    subset : str
        Rows averaged (the training rows: what the network saw).
    chunk : int
        Rows read at once.

    Returns
    -------
    np.ndarray [shape=(C_in,), float64]
    """
    from ...model.directory import prepare_input
    from ...model.train import open_features
    with open_features(features) as ff:
        model.check_compatible(ff)
        rows = ff.indices(subset)
        acc = np.zeros(len(model.channels), np.float64)
        for i in range(0, rows.size, chunk):
            x = prepare_input(ff.load(rows[i:i + chunk]), model.channels, model.mu, model.c)
            acc += x.numpy().astype(np.float64).sum(axis=(0, 2))
        return acc / (rows.size * ff.table.n_frames)


def shuffled_input(x: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Every path of every note with its frames in a random order: (K, C, T) → (K, C, T).

    Note k uses the stream ``(seed, k)``, one permutation per path, so a note's baseline does not depend on
    which other notes are scored."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ParameterError(f"x must have shape (K, C, T), got {x.shape}")
    out = np.empty_like(x)
    for k in range(x.shape[0]):
        perm = np.random.default_rng([seed, k]).random(x.shape[1:]).argsort(axis=1)
        out[k] = np.take_along_axis(x[k], perm, axis=1)
    return out


def baseline_input(kind: str, *, features: Optional[Union[PathLike, FeatureFile]] = None,
                   model: Optional[LoadedModel] = None, x: Optional[np.ndarray] = None, seed: int = 0) -> np.ndarray:
    """The baseline network input of ``kind`` (module docstring).

    Returns
    -------
    np.ndarray
        [shape=(C_in,)] per path for "zero", "training_mean" and "mu"; [shape=(K, C_in, T)] per note for
        "shuffle" (which needs the notes' inputs ``x`` and the ``seed``).
    """
    check_choice("baseline", kind, BASELINES)
    if kind == "shuffle":
        if x is None:
            raise ParameterError("baseline 'shuffle' needs the notes' network inputs x (K, C, T)")
        return shuffled_input(x, seed=seed)
    if model is None:
        raise ParameterError(f"baseline {kind!r} needs the model (channels, μ, c)")
    if kind == "training_mean":
        if features is None:
            raise ParameterError("baseline 'training_mean' needs the features file (its training rows)")
        return training_mean_input(features, model)
    if kind == "mu":
        return np.log1p(model.mu / (model.c * model.mu + 1e-8))
    return np.zeros(len(model.channels))


# --------------------------------------------------------------------------------------------------------
# one note, several orders

class _ConvNetSplit:
    """A ConvNet as an affine map (input_bn → conv0 → bn0, eval mode) followed by the rest."""

    def __init__(self, net: ConvNet):
        self.net = net
        conv = net.conv0
        if conv.stride != (1,) or conv.groups != 1 or conv.dilation != (1,) or conv.padding != "same" \
                or conv.kernel_size[0] % 2 != 1:
            raise ParameterError("the fast path needs conv0 with stride 1, groups 1, dilation 1 and 'same' "
                                 "padding with an odd kernel")
        bn_in, bn0 = net.input_bn, net.bn0
        self.s_in = bn_in.weight / torch.sqrt(bn_in.running_var + bn_in.eps)
        self.s0 = bn0.weight / torch.sqrt(bn0.running_var + bn0.eps)
        C, c0, k = conv.in_channels, conv.out_channels, conv.kernel_size[0]
        self.C, self.c0 = C, c0
        self.k = k
        self.weight = conv.weight.permute(1, 0, 2)            # (C, c0, k)
        names = [n for n, _ in net.named_children()]
        self.tail = [m for _, m in list(net.named_children())[names.index("bn0") + 1:]]

    def head(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        return n.bn0(n.conv0(n.input_bn(x)))

    def effects(self, delta: torch.Tensor) -> torch.Tensor:
        """Change of bn0's output when path p alone changes by delta[p]: (C, T) → (C, c0, T)."""
        # a per-path convolution as one batched product: windows (C, k, T) of the zero-padded input
        # ('same' padding with an odd kernel and dilation 1, checked in __init__)
        half = self.k // 2
        padded = F.pad(self.s_in[:, None] * delta, (half, half))
        windows = padded.unfold(1, self.k, 1).transpose(1, 2)  # (C, k, T)
        return torch.bmm(self.weight, windows) * self.s0[None, :, None]

    def rest(self, h: torch.Tensor) -> torch.Tensor:
        for m in self.tail:
            h = m(h)
        return h


def _step_masks(orders: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """masks[o, j, p] = path p is among the first ks[j] paths of order o: (O, S, C) bool."""
    pos = np.empty_like(orders)
    np.put_along_axis(pos, orders, np.arange(orders.shape[1])[None], axis=1)
    return pos[:, None, :] < ks[None, :, None]


def _run(fn, inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([fn(inputs[i:i + batch_size]) for i in range(0, inputs.shape[0], batch_size)])


@torch.inference_mode()
def perturbation_logits(net: torch.nn.Module, x: np.ndarray, orders: np.ndarray, ks: np.ndarray,
                        baseline: np.ndarray, *, batch_size: int = 256,
                        fast: Optional[bool] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Logits after deleting / inserting the first k_j paths of each order, for one note.

    Parameters
    ----------
    net : torch.nn.Module
        In eval mode (the caller's network is not modified).
    x : array [shape=(C, T)]
        The note's network input.
    orders : array of int [shape=(O, C)]
        Path orders (each a permutation of the C paths).
    ks : array of int [shape=(S,)]
        Increasing numbers of paths, ks[0] = 0.
    baseline : array [shape=(C,) or (C, T)]
        Network input of a replaced path.
    batch_size : int
        Perturbed inputs run at once.
    fast : bool, optional
        Use the ConvNet fast path (default: when ``net`` is a ConvNet).

    Returns
    -------
    deletion, insertion : np.ndarray [shape=(O, S, n_classes), float64]
        Step 0 is the note itself (deletion) and the all-baseline input (insertion) for every order.
    """
    param = next(net.parameters())
    dev, dtype = param.device, param.dtype
    x = torch.as_tensor(np.asarray(x), dtype=dtype, device=dev)
    C, T = x.shape
    orders = np.asarray(orders, dtype=np.int64)
    ks = np.asarray(ks, dtype=np.int64)
    if orders.ndim != 2 or orders.shape[1] != C or ks.ndim != 1 or ks[0] != 0 or np.any(np.diff(ks) <= 0) \
            or ks[-1] > C:
        raise ParameterError(f"orders must be (O, {C}) and ks increasing from 0 to at most {C}; got "
                             f"{orders.shape} and {ks.tolist()}")
    b = torch.as_tensor(np.asarray(baseline), dtype=dtype, device=dev)
    b = (b[:, None] if b.ndim == 1 else b).expand(C, T)
    fast = isinstance(net, ConvNet) if fast is None else fast
    n_orders, S = orders.shape[0], ks.size
    if fast:
        split = _ConvNetSplit(net)
        h_x, h_b = split.head(x[None])[0], split.head(b[None].contiguous())[0]
        eff = split.effects(b - x).reshape(C, -1)        # effect of deleting each path on bn0's output
        masks = torch.as_tensor(_step_masks(orders, ks[1:]), dtype=dtype, device=dev).reshape(-1, C)
        total = (masks @ eff).reshape((n_orders, S - 1) + h_x.shape)   # summed effects of the first k_j paths
        out = {}
        for mode, (h0, sign) in {"deletion": (h_x, 1.0), "insertion": (h_b, -1.0)}.items():
            first = split.rest(h0[None])
            rest = _run(split.rest, (h0 + sign * total).reshape((-1,) + h0.shape), batch_size)
            out[mode] = torch.cat([first[None].expand(n_orders, 1, -1), rest.reshape(n_orders, S - 1, -1)], dim=1)
    else:
        out = {}
        m = torch.as_tensor(_step_masks(orders, ks), device=dev)[..., None]
        for mode, (keep_b, keep_x) in {"deletion": (b, x), "insertion": (x, b)}.items():
            inputs = torch.where(m, keep_b, keep_x).reshape(n_orders * S, C, T)
            out[mode] = _run(net, inputs, batch_size).reshape(n_orders, S, -1)
    return (out["deletion"].double().cpu().numpy(), out["insertion"].double().cpu().numpy())


# --------------------------------------------------------------------------------------------------------
# many notes, every method

def _curves(logits: np.ndarray, explained: int, pred: int) -> dict:
    """(O, S, n_classes) logits → explained logit, its softmax probability, prediction held: (O, S) each."""
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    return {"logit": logits[..., explained], "prob": p[..., explained],
            "holds": (logits.argmax(axis=-1) == pred).astype(float)}


def perturbation_study(net: torch.nn.Module, x: np.ndarray, local: dict, explained: np.ndarray, pred: np.ndarray,
                       baseline: np.ndarray, *, n_steps: int = 20,
                       max_fraction: float = 0.5, n_random: int = 5, seed: int = 0, batch_size: int = 256,
                       progress: bool = False) -> dict:
    """Deletion and insertion curves of K notes for each method's order and for random orders.

    Parameters
    ----------
    net : torch.nn.Module
    x : np.ndarray [shape=(K, C, T)]
        Network inputs.
    local : dict method → np.ndarray [shape=(K, C)]
        Finite local maps.
    explained, pred : array of int [shape=(K,)]
        The explained class (whose logit is tracked) and the original prediction (whether it holds).
    baseline : array [shape=(C,), (C, T) or (K, C, T)]
        Network input of a replaced path: one for every note, or one per note.
    n_steps, max_fraction : int, float
        Steps k_j = round(j / n_steps · max_fraction · C), j = 0 … n_steps.
    n_random : int
        Random orders per note (seeded by ``seed``, the same for every method).
    seed : int
        Seeds the random orders and the tie-breaking of the relevance orders.

    Returns
    -------
    dict
        ``fraction`` (S,), ``ks`` (S,), ``methods``: {method: {"deletion": curves, "insertion": curves}} and
        ``random``: {"deletion": curves, "insertion": curves}; curves hold ``logit``, ``prob``, ``holds``
        arrays of shape (K, S) for a method and (K, n_random, S) for the random orders.
    """
    x = np.asarray(x)
    K, C, _ = x.shape
    baseline = np.asarray(baseline)
    if baseline.ndim == 3 and baseline.shape != x.shape:
        raise ParameterError(f"a per-note baseline must have the shape of x {x.shape}, got {baseline.shape}")
    methods = list(local)
    ks = metrics.step_counts(C, n_steps, max_fraction)
    method_orders = {m: metrics.relevance_order(local[m], seed=seed) for m in methods}
    rand = metrics.random_orders(K, C, n_random, seed=seed)
    model = copy.deepcopy(net).eval()
    keys = ("logit", "prob", "holds")
    res = {m: {mode: {k: np.empty((K, ks.size)) for k in keys} for mode in ("deletion", "insertion")}
           for m in methods}
    rnd = {mode: {k: np.empty((K, n_random, ks.size)) for k in keys} for mode in ("deletion", "insertion")}
    for n in progress_bar(range(K), enabled=progress, desc="deletion/insertion", unit="note", leave=False):
        orders = np.concatenate([np.stack([method_orders[m][n] for m in methods]), rand[n]])
        dele, ins = perturbation_logits(model, x[n], orders, ks, baseline[n] if baseline.ndim == 3 else baseline,
                                        batch_size=batch_size)
        for mode, logits in (("deletion", dele), ("insertion", ins)):
            cur = _curves(logits, int(explained[n]), int(pred[n]))
            for key in keys:
                for i, m in enumerate(methods):
                    res[m][mode][key][n] = cur[key][i]
                rnd[mode][key][n] = cur[key][len(methods):]
    return {"fraction": ks / C, "ks": ks, "methods": res, "random": rnd}
