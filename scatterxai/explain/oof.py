"""Out-of-fold explanation: a cross-validated model explains each note with the fold model that did not see it.

``scatterxai explain FEATURES --model MODEL_DIR`` with a cross-validated model directory
(:mod:`scatterxai.model.crossval`) on the features it was cross-validated on: every row is predicted and
attributed by the fold model that neither trained nor early-stopped on it (rows no fold tested — a held-out
test set, augmented copies — by the final model, which did not train on a held-out test set either).  Each
fold model normalises with its own μ, so ``/features`` holds every row's input as its model saw it.  The
relevance file is the usual one (:mod:`scatterxai.io.relevance`) plus, per row, ``/examples/cv_fold`` (1 … K,
0 for the final model) and the root attributes ``out_of_fold`` and ``fold_checksums`` (sha256 of each fold
model, in fold order).  On other features the final model explains every row, as any model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

import numpy as np
import torch

from .._util.types import PathLike
from ..errors import ParameterError
from ..scattering.normalize import MU_EPS
from .attribution import Attribution, attribute

if TYPE_CHECKING:
    from ..model.directory import LoadedModel

#: the explain settings (:class:`scatterxai.explain.ExplainConfig`; not imported: export imports this module)
ExplainConfig = Any

__all__ = ["explain_out_of_fold", "renormalise"]


def renormalise(x: torch.Tensor, mu_from: np.ndarray, mu_to: np.ndarray, c: float) -> torch.Tensor:
    """A network input log1p(S / (c·μ_from + ε)) [shape=(K, C_in, T)] re-expressed with μ_to (same S)."""
    scale = torch.as_tensor((c * np.asarray(mu_from) + MU_EPS) / (c * np.asarray(mu_to) + MU_EPS),
                            dtype=x.dtype, device=x.device)[:, None]
    return torch.log1p(torch.expm1(x) * scale)


def _inputs(ff, rows, fold, models: Dict[int, LoadedModel]):
    """(network input of every row with its own model's μ, logits [shape=(k, n_classes)])."""
    x, logits = None, None
    for k, m in models.items():
        sel = np.flatnonzero(fold == k)
        xk = m.prepare(ff.load(rows[sel]))
        if x is None:
            x = torch.empty((len(rows),) + tuple(xk.shape[1:]), dtype=xk.dtype, device=xk.device)
            logits = np.empty((len(rows), len(m.classes)), np.float32)
        x[torch.as_tensor(sel, device=xk.device)] = xk
        with torch.no_grad():
            m.net.eval()
            logits[sel] = torch.cat([m.net(xk[i:i + 64]) for i in range(0, len(xk), 64)]).cpu().numpy()
    return x, logits


def _router(x: torch.Tensor, fold: np.ndarray, models: Dict[int, LoadedModel], final: LoadedModel,
            config: ExplainConfig, progress: bool):
    """The ``attribute_fn`` of :func:`~scatterxai.explain.export.write_relevance`: each row by its own model."""
    def run(explainer, sub, target, per_example=None) -> Attribution:
        sub, target = np.asarray(sub, np.int64), np.asarray(target, np.int64)
        parts = {}
        for k, m in models.items():
            sel = np.flatnonzero(fold[sub] == k)
            if not sel.size:
                continue
            pe = {name: renormalise(torch.as_tensor(np.asarray(v)[sel]), final.mu, m.mu, m.c)
                  for name, v in (per_example or {}).items()}
            parts[k] = (sel, attribute(m.net, x[torch.as_tensor(sub[sel])], method=config.explainer(explainer.name, m),
                                       target=target[sel], batch_size=config.batch_size, device=m.device,
                                       progress=progress, per_example=pe))
        return _merge(parts, len(sub))
    return run


def _merge(parts: dict, n: int) -> Attribution:
    """One Attribution of n rows from those of disjoint row selections."""
    first = next(iter(parts.values()))[1]
    arrays = {}
    for key in ("relevance", "logits", "explained", "explained_logit", "conservation"):
        ref = getattr(first, key)
        arrays[key] = np.empty((n,) + ref.shape[1:], ref.dtype)
    extras = {k: np.empty((n,) + v.shape[1:], v.dtype) for k, v in first.extras.items()}
    for sel, res in parts.values():
        for key in arrays:
            arrays[key][sel] = getattr(res, key)
        for key in extras:
            extras[key][sel] = res.extras[key]
    return Attribution(**arrays, method=first.method, params=first.params, extras=extras)


def explain_out_of_fold(features: PathLike, model_dir: PathLike, model: LoadedModel, out: Path, config: ExplainConfig,
                        progress: bool, write: Callable[..., Path]) -> Optional[Path]:
    """Write the relevance file with each row explained by the model that did not see it (module
    docstring) with ``write`` (:func:`~scatterxai.explain.export.write_relevance`); None when ``features``
    are not the data ``model`` was cross-validated on (the caller then explains with the final model as
    usual)."""
    from .._util.log import logger
    from ..features.store import FeatureFile
    from ..io.hdf5 import scattering_attrs
    from ..model.crossval import evaluation_rows, fold_of_rows, load_fold
    with FeatureFile(features) as ff:
        model.check_compatible(ff, classes="subset")
        rows, subset = evaluation_rows(model, ff, config.subset)
        fold = fold_of_rows(model_dir, model, ff, rows)
        if not fold.any():
            return None
        models = {int(k): (model if k == 0 else load_fold(model_dir, model, int(k), device=model.device))
                  for k in np.unique(fold)}
        x, logits = _inputs(ff, rows, fold, models)
        examples = {k: v[rows] for k, v in ff.examples.items()}
        if "label" in examples:
            examples["label"] = model.labels_of(ff, rows)
        elif config.target == "true":
            raise ParameterError(f"target='true' needs labels but {ff.path} has no /examples/label column")
        examples["cv_fold"] = fold
        attrs = scattering_attrs(ff.config, ff.table)
        attrs.update({k: ff.attrs[k] for k in ("audio_root", "segments") if k in ff.attrs}, source="features",
                     features_file=os.path.basename(os.fspath(ff.path)), out_of_fold=True,
                     fold_checksums=np.array([f["weights_sha256"] for f in model.config["crossval"]["fold_models"]],
                                             dtype=object), explained_subset=subset)
    logger.info("explain: out of fold — %d rows, each by the fold model that did not see it (%s)", len(rows),
                ", ".join(f"fold {k}: {int((fold == k).sum())}" for k in sorted(models) if k)
                + (f", final model: {int((fold == 0).sum())}" if (fold == 0).any() else ""))
    return write(out, x, examples, attrs, model, config, progress=progress, logits=logits,
                 attribute_fn=_router(x, fold, models, model, config, progress))
