"""Occlusion of groups of scattering paths (definitions: ``docs/analysis.md``, "Attribution methods").

For each group G of paths, all frames of its paths are replaced by a fill value and the drop of the
explained logit, Δ_G = f_c(x) − f_c(x with G filled), is spread evenly over the group's cells:
R[p, t] = Δ_G / (|G| · T) for p in G.  Groups partition the paths, so Σ R = Σ_G Δ_G, and a group the
network ignores gets exactly 0.

Groups (``groups``; :func:`occlusion_groups`, grid columns of :func:`scatterxai.maps.grid_index`):

* ``"lambda2"`` (default): one λ2 band across all λ1 — a grid column (half an octave of modulation rate
  with Q2 = 2), plus one group for all first-order paths (the S1 column);
* ``"cell"``: one (λ1 octave, λ2 band) cell, λ1 octaves counted from the lowest kept carrier
  (⌊log2(λ1 / min λ1)⌋), S1 paths grouped per λ1 octave likewise.

Fill (``fill``, decision):

* ``"training_mean"`` (default): each path's value when its scattering sits at its training mean μ, in the
  normalised input: log1p(μ / (c·μ + 1e-8)) ≈ log1p(1/c) (:meth:`scatterxai.model.LoadedModel.mean_input`),
  constant over frames.  It needs only the model (no training data) and is what the network sees for a
  path whose energy equals its training mean.  It is the quality checks' ``mu`` baseline, not their
  ``training_mean`` (:func:`scatterxai.analysis.quality.training_mean_input`, the mean of the normalised
  training inputs), which is lower since the log is concave and the energies spread widely: on the demo
  model lower for every path, median 1.39 against 2.40, so this fill adds energy to most paths of most
  notes;
* ``"zero"``: the input of silence (log1p(0) = 0).

Zennit's ``Occlusion`` attributor slides rectangular windows over the input's axes; a λ2 band is not
contiguous in the path order (paths are ordered by λ1 first), so the groups are occluded here directly.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator, List

import numpy as np

from ..._util.validate import check_choice
from ...errors import ParameterError
from ...maps.grid import PathsLike, grid_index, path_columns
from ..base import Explainer, Param, RunFn, register

if TYPE_CHECKING:
    import torch

__all__ = ["OcclusionExplainer", "occlusion_groups", "OCCLUSION_GROUPS", "OCCLUSION_FILLS"]

#: group layouts of :func:`occlusion_groups`
OCCLUSION_GROUPS = ("lambda2", "cell")
#: fill values of occluded paths
OCCLUSION_FILLS = ("training_mean", "zero")


def occlusion_groups(paths: PathsLike, mode: str = "lambda2") -> List[np.ndarray]:
    """Partition of the paths into occlusion groups.

    Parameters
    ----------
    paths : PathTable or mapping of path columns
    mode : {"lambda2", "cell"}
        One group per grid column (S1, then each λ2 band), or per (λ1 octave, grid column).

    Returns
    -------
    list of np.ndarray [shape=(n_g,), int64]
        Path indices of each group, in (λ1 octave, column) order; every path in exactly one group.
    """
    check_choice("mode", mode, OCCLUSION_GROUPS)
    g = grid_index(paths)
    if mode == "lambda2":
        key = g.col
    else:
        lam1 = path_columns(paths)["lambda1_hz"].astype(float)
        octave = np.floor(np.log2(lam1 / lam1.min()) + 1e-9).astype(np.int64)
        key = octave * (g.col.max() + 1) + g.col
    return [np.flatnonzero(key == k) for k in np.unique(key)]


@register
class OcclusionExplainer(Explainer):
    """Occlusion of path groups (see the module docstring).

    Its context (constructor arguments the ``explain`` stage takes from the model): ``paths``, the network's
    input paths (a PathTable or mapping of path columns), and ``mean_input`` (C,), the model's input at the
    training mean (needed for ``fill="training_mean"``).
    """

    name = "occlusion"
    title = "occlusion"
    family = "perturbation"
    summary = ("occlusion: drop of the logit when a group of paths (a λ2 band, or a λ1-octave × λ2 cell) is "
               "set to its training mean, spread over the group")
    slow = True
    context = ("paths", "mean_input")
    parameters = (
        Param("groups", "lambda2", "one λ2 band across all λ1, or one (λ1 octave, λ2 band) cell", kind="choice",
              choices=OCCLUSION_GROUPS, flag="--occlusion-groups"),
        Param("fill", "training_mean", "replace a group by the model's input at the training mean, or by 0",
              kind="choice", choices=OCCLUSION_FILLS, flag="--occlusion-fill"),
    )

    def setup(self, *, paths: Any = None, mean_input: Any = None) -> None:
        if paths is None:
            raise ParameterError("occlusion needs the path table of the network's inputs: paths=... (e.g. "
                                 "LoadedModel.paths)")
        self.group_index = occlusion_groups(paths, self.groups)
        self.n_paths = sum(len(g) for g in self.group_index)
        if self.fill == "training_mean":
            if mean_input is None:
                raise ParameterError("occlusion with fill='training_mean' needs mean_input=... (C,), e.g. "
                                     "LoadedModel.mean_input(); or use fill='zero'")
            self.values = np.asarray(mean_input, dtype=np.float64)
            if self.values.shape != (self.n_paths,) or not np.isfinite(self.values).all():
                raise ParameterError(f"mean_input must be {self.n_paths} finite values (one per path), got shape "
                                     f"{self.values.shape}")
        else:
            self.values = np.zeros(self.n_paths)

    def params(self) -> dict:
        return {"groups": self.groups, "fill": self.fill, "n_groups": len(self.group_index)}

    @contextlib.contextmanager
    def session(self, model: torch.nn.Module) -> Iterator[RunFn]:
        import torch

        from ..zennit_ext import explained_logits

        def run(x, target=None):
            if x.shape[1] != self.n_paths:
                raise ParameterError(f"inputs have {x.shape[1]} paths but the occlusion groups cover "
                                     f"{self.n_paths}")
            logits, index = explained_logits(model, x, target)
            explained = logits.gather(1, index[:, None])[:, 0]
            fill = torch.as_tensor(self.values, dtype=x.dtype, device=x.device)
            relevance = torch.zeros_like(x)
            with torch.no_grad():
                for group in self.group_index:
                    g = torch.as_tensor(group, device=x.device)
                    occluded = x.clone()
                    occluded[:, g, :] = fill[g][None, :, None]
                    drop = explained - model(occluded).gather(1, index[:, None])[:, 0]
                    relevance[:, g, :] = (drop / (len(group) * x.shape[2]))[:, None, None]
            return logits, relevance
        yield run
