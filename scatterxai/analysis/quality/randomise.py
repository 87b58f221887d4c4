"""Sanity checks by randomisation (Adebayo et al. 2018): do the maps depend on what the network learned?

Model-parameter randomisation.  The network's layers are re-initialised from the output down, cumulatively
("cascading": fc2, then fc2 + fc1, …, down to the input BatchNorm, where the whole network is
re-initialised), and one at a time ("independent"); each note's local map of the randomised network is
compared with the original map (:func:`~.metrics.map_similarity`: Spearman ρ of the absolute maps — the
published measure and the primary one —, ρ of the signed maps, SSIM of the absolute maps on the (λ1, λ2)
grid).  The explained class stays the original one.  Every step is redrawn with several seeds
(``seeds``): one draw of a layer can leave a map nearly unchanged or turn it over, so a single draw per
step says little.

Layers (decision, :data:`CONVNET_BLOCKS`).  A convolution and the BatchNorm that follows it are one layer
(the BatchNorm is merged into it for LRP, and its running statistics describe the trained convolution's
output, meaningless for a random one).  The input BatchNorm is the last step: with it the network is
exactly a freshly constructed :class:`~scatterxai.model.ConvNet` in eval mode.  The step before it
("conv0": every weight random, the trained input BatchNorm kept) is the **input normalisation only**
control (:data:`INPUT_NORMALISATION_STEP`): the network knows nothing of the task but standardises its
input as the trained one does, so a map that still resembles the trained network's there follows the
(standardised) input, not the model — the model-randomisation check is made at this step.
Re-initialisation is each module's own ``reset_parameters()`` — PyTorch's default initialisation, the
distribution the network was trained from (``ConvNet`` does not override it); a BatchNorm becomes the
identity (γ = 1, β = 0, running mean 0, variance 1).  With one seed, the random weights of a layer are the
same at every step in which the layer is randomised.

Data randomisation needs a network trained on permuted labels (:mod:`.permuted`); :func:`map_similarity`
compares its maps with the trained network's.
"""

from __future__ import annotations

import copy
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..._util.types import Device
from ...errors import ParameterError
from ...explain.attribution import attribute
from ...explain.base import REGISTRY, Explainer, get_explainer
from ...maps.grid import PathsLike, local_map
from ...model.net import ConvNet
from .metrics import SIMILARITIES
from .metrics import map_similarity as _similarity

__all__ = ["CONVNET_BLOCKS", "INPUT_NORMALISATION_STEP", "default_blocks", "reinitialised_state",
           "randomised_network", "map_similarity", "randomisation_study", "check_step", "explainer_from_attrs",
           "needs_per_example_inputs"]

#: randomisation steps: (step name, names of the modules re-initialised together), in order
Blocks = Sequence[Tuple[str, Sequence[str]]]

#: the ConvNet's layers from the output down: (step name, modules re-initialised together)
CONVNET_BLOCKS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("fc2", ("fc2",)), ("fc1", ("fc1",)), ("conv2", ("conv2", "bn2")), ("conv1", ("conv1", "bn1")),
    ("conv0", ("conv0", "bn0")), ("input_bn", ("input_bn",)))
#: the cascading step at which only the input normalisation is left trained (its block is the last one)
INPUT_NORMALISATION_STEP = "conv0"


def default_blocks(net: torch.nn.Module) -> Tuple[Tuple[str, Tuple[str, ...]], ...]:
    """:data:`CONVNET_BLOCKS` for a ConvNet; otherwise each direct child with parameters or buffers, from the
    last registered to the first."""
    if isinstance(net, ConvNet):
        return CONVNET_BLOCKS
    named = [(n, m) for n, m in net.named_children()
             if any(True for _ in m.parameters()) or any(True for _ in m.buffers())]
    if not named:
        raise ParameterError(f"{type(net).__name__} has no child module with parameters to randomise")
    return tuple((n, (n,)) for n, _ in reversed(named))


def _modules(net: torch.nn.Module, blocks) -> Dict[str, torch.nn.Module]:
    children = dict(net.named_modules())
    out = {}
    for _, names in blocks:
        for n in names:
            if n not in children:
                raise ParameterError(f"{type(net).__name__} has no module {n!r}; modules: {sorted(children)[:12]}")
            if not hasattr(children[n], "reset_parameters"):
                raise ParameterError(f"module {n!r} ({type(children[n]).__name__}) has no reset_parameters()")
            out[n] = children[n]
    return out


def reinitialised_state(net: torch.nn.Module, blocks: Blocks, *, seed: int = 0) -> Dict[str, Dict[str, torch.Tensor]]:
    """Freshly initialised parameters and buffers of every module of ``blocks``: {module: state dict}.

    Drawn in a forked RNG seeded with ``seed`` (the caller's RNG state is untouched), in block order."""
    model = copy.deepcopy(net)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        states = {}
        for name, module in _modules(model, blocks).items():
            module.reset_parameters()
            states[name] = {k: v.detach().clone() for k, v in module.state_dict().items()}
    return states


def randomised_network(net: torch.nn.Module, state: Mapping[str, Mapping[str, torch.Tensor]],
                       modules: Sequence[str]) -> torch.nn.Module:
    """A copy of ``net`` (eval mode) whose ``modules`` hold the re-initialised ``state``."""
    model = copy.deepcopy(net).eval()
    children = dict(model.named_modules())
    for n in modules:
        children[n].load_state_dict(state[n])
    return model


def map_similarity(net: torch.nn.Module, x: np.ndarray, explainer: Explainer, reference: np.ndarray,
                   explained: np.ndarray, *, paths: Optional[PathsLike] = None, batch_size: int = 64,
                   device: Device = "cpu") -> Dict[str, np.ndarray]:
    """Similarity of the local maps of ``net`` (explaining the classes ``explained``) with ``reference``
    (K, C), per note: {"spearman_abs", "spearman", "ssim": (K,)} (:func:`~.metrics.map_similarity`; SSIM
    needs the path table ``paths``, NaN without it)."""
    att = attribute(net, x, method=explainer, target=np.asarray(explained, dtype=np.int64),
                    batch_size=batch_size, device=device)
    return _similarity(local_map(att.relevance), reference, paths)


def check_step(steps: Sequence[str]) -> str:
    """The cascading step the model-randomisation check reads: :data:`INPUT_NORMALISATION_STEP` when the
    cascade ends with the input BatchNorm (a ConvNet), else the last step (every block random)."""
    steps = list(steps)
    if len(steps) > 2 and steps[-1] == "input_bn" and INPUT_NORMALISATION_STEP in steps:
        return INPUT_NORMALISATION_STEP
    return steps[-1]


def _steps(blocks) -> Tuple[list, list]:
    names = [b[0] for b in blocks]
    cascading = [("original", ())] + [(names[i], sum((b[1] for b in blocks[:i + 1]), ()))
                                      for i in range(len(blocks))]
    return cascading, list(blocks)


def randomisation_study(net: torch.nn.Module, x: np.ndarray, explainers: Mapping[str, Explainer], reference: Mapping,
                        explained: np.ndarray, *, blocks: Optional[Blocks] = None, seeds: Sequence[int] = (0,),
                        independent: bool = True, paths: Optional[PathsLike] = None, batch_size: int = 64,
                        device: Device = "cpu") -> dict:
    """Cascading and independent model-parameter randomisation of every method, redrawn with each seed.

    Parameters
    ----------
    net : torch.nn.Module
        The trained network.
    x : np.ndarray [shape=(K, C, T)]
    explainers : dict method → Explainer
    reference : dict method → np.ndarray [shape=(K, C)]
        The trained network's local maps (e.g. from the relevance file).
    explained : array of int [shape=(K,)]
        The explained classes (kept for the randomised networks).
    blocks : sequence of (step name, module names), optional
        Default :func:`default_blocks`.
    seeds : sequence of int
        Seeds of the re-initialisation; every step is redrawn with each.
    independent : bool
        Also randomise one layer at a time.
    paths : PathTable or mapping, optional
        Path table of the maps' paths (SSIM on the (λ1, λ2) grid; NaN without it).

    Returns
    -------
    dict method → {"cascading": {"steps": [...], "spearman_abs", "spearman", "ssim": (n_steps, n_seeds, K)},
    "independent": {...}}
        Cascading steps start with ``"original"`` (the trained network attributed again, once, repeated over
        the seeds: 1 for a deterministic method, up to rounding — on some CPUs a repeated attribution differs
        in the last bits —, its reproducibility otherwise).
    """
    blocks = tuple(default_blocks(net) if blocks is None else blocks)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ParameterError("randomisation_study needs at least one seed")
    cascading, independent_steps = _steps(blocks)
    kinds = {"cascading": cascading, **({"independent": independent_steps} if independent else {})}
    out = {m: {kind: {"steps": [s for s, _ in steps], **{name: np.full((len(steps), len(seeds), len(x)), np.nan)
                                                          for name in SIMILARITIES}}
               for kind, steps in kinds.items()} for m in explainers}
    original = {m: map_similarity(net, x, e, reference[m], explained, paths=paths, batch_size=batch_size,
                                  device=device) for m, e in explainers.items()}
    for j, seed in enumerate(seeds):
        state = reinitialised_state(net, blocks, seed=seed)
        nets = {}
        for kind, steps in kinds.items():
            for i, (_, modules) in enumerate(steps):
                key = tuple(sorted(modules))
                if key and key not in nets:
                    nets[key] = randomised_network(net, state, modules)
                for m, e in explainers.items():
                    sim = original[m] if not key else map_similarity(
                        nets[key], x, e, reference[m], explained, paths=paths, batch_size=batch_size, device=device)
                    for name in SIMILARITIES:
                        out[m][kind][name][i, j] = sim[name]
    return out


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def explainer_from_attrs(method: str, attrs: Mapping, context: Optional[Mapping] = None) -> Optional[Explainer]:
    """The explainer that wrote ``/relevance/<method>``, rebuilt from the dataset's attributes (those that
    name one of the method's :attr:`~scatterxai.explain.Explainer.parameters`) and, for the constructor
    arguments the method derives from the model (its ``context``, e.g. ``paths``, ``mean_input``), from
    ``context``; None when the method is not registered here."""
    if method not in REGISTRY:
        return None
    cls = REGISTRY[method]
    kwargs = {k: _plain(v) for k, v in attrs.items() if k in cls.parameter_names()}
    for name in getattr(cls, "context", ()):
        if context is None or name not in context:
            raise ParameterError(f"method {method!r} needs {name!r} from the model to be rebuilt")
        kwargs[name] = context[name]
    return get_explainer(method, **kwargs)


def needs_per_example_inputs(explainer: Explainer) -> bool:
    """Whether the explainer needs per-example arrays besides the input (e.g. Integrated Gradients with one
    baseline per note), which a re-attribution here cannot supply."""
    per_example = getattr(explainer, "per_example_inputs", None)
    return bool(per_example()) if callable(per_example) else False
