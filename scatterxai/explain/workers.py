"""Explanation on Dask workers (``explain --dask``): a chunk of explained rows → an :class:`Attribution`.

The chunks are the batches of the serial run (``batch_size`` explained rows each), so the relevance is
the same.  A worker reads its rows from the features file and loads the model from the model directory
itself — both at the driver's paths (shared storage) — and keeps the model for the next chunks (once per
worker process); it returns the chunk's relevance, logits and explained classes, and the driver writes
the relevance file.  Reading on the workers keeps the task messages small (a list of rows) and lets Dask
recompute the chunk of a worker that died.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Callable, Mapping, Optional, Sequence, Tuple

import numpy as np

from .._util.cluster import describe_rows, map_chunks, warm_up
from .._util.log import progress as progress_bar
from .._util.types import Device, PathLike
from ..errors import ModelError, StoreError
from .attribution import Attribution, attribute

if TYPE_CHECKING:
    from distributed import Client

    from .base import Explainer

__all__ = ["dask_attribute", "explain_chunk"]


@functools.lru_cache(maxsize=2)
def _model(model_dir: str, checksum: str, device):
    """The model of ``model_dir`` in this process, checked against the driver's weights."""
    from ..model.directory import load_model
    model = load_model(model_dir, device=device)
    if model.checksum != checksum:
        raise ModelError(f"{model_dir}/model.pt on this worker (sha256 {model.checksum[:12]}…) is not the driver's "
                         f"(sha256 {checksum[:12]}…): every machine must see the same model directory")
    return model


def _identity(ff) -> tuple:
    return (len(ff), str(ff.attrs.get("settings_sha256", "")), str(ff.attrs.get("labels_sha256", "")))


def _load(features: str, rows, identity: tuple):
    from ..features.store import FeatureFile
    with FeatureFile(features) as ff:
        if _identity(ff) != identity:
            raise StoreError(f"{features} on this worker is not the driver's file (rows, settings or labels "
                             f"differ): every machine must see the same features file at the same path")
        return ff.load(rows)


def _warm(features: str, identity: tuple, model_dir: str, checksum: str, device) -> None:
    _load(features, [], identity)
    _model(model_dir, checksum, device)


def explain_chunk(chunk: Tuple[np.ndarray, np.ndarray, Mapping[str, np.ndarray]], *, features: str, identity: tuple,
                  model_dir: str, checksum: str, explainer: Explainer, batch_size: int, device: Device) -> Attribution:
    """The task: ``chunk = (rows of the features file, target classes, per-example inputs)`` → their
    Attribution."""
    rows, labels, per_example = chunk
    model = _model(model_dir, checksum, device)
    x = model.prepare(_load(features, rows, identity))
    return attribute(model.net, x, method=explainer, target=labels, batch_size=batch_size, device=model.device,
                     per_example=per_example)


def dask_attribute(client: Client, *, features: PathLike, rows: np.ndarray, names: Optional[Sequence[str]],
                   model_dir: PathLike, checksum: str, batch_size: int, device: Device,
                   progress: bool = True) -> Callable[..., Attribution]:
    """A function ``(explainer, sub, target, per_example) → Attribution`` of the explained rows ``rows[sub]``
    computed on the workers (the ``attribute_fn`` of :func:`scatterxai.explain.write_relevance`), in the
    chunks of the serial run (``batch_size`` rows of ``sub`` each); checks first that every worker sees the
    features file and the model directory.  ``rows`` are the features file's rows of the explained
    examples, ``names`` their file names (to name failed chunks).

    Raises
    ------
    ClusterError
    """
    from ..features.store import FeatureFile
    features, model_dir = os.path.abspath(os.fspath(features)), os.path.abspath(os.fspath(model_dir))
    with FeatureFile(features) as ff:
        identity = _identity(ff)
    warm_up(client, _warm, features, identity, model_dir, checksum, device,
            what="reading the features file and the model directory")
    rows = np.asarray(rows, dtype=np.int64)

    def run(explainer, sub, target, per_example=None) -> Attribution:
        sub = np.asarray(sub, dtype=np.int64)
        labels = np.asarray(target, dtype=np.int64)
        per_example = {k: np.asarray(v) for k, v in (per_example or {}).items()}
        starts = range(0, len(sub), batch_size)
        chunks = ((s, rows[sub[s:s + batch_size]], labels[s:s + batch_size],
                   {k: v[s:s + batch_size] for k, v in per_example.items()}) for s in starts)
        parts = {}
        with progress_bar(total=len(starts), enabled=progress, desc=explainer.name, unit="batch", leave=False) as bar:
            for (s, *_), res in map_chunks(
                    client, _task, chunks, name=f"explain-{explainer.name}", kept="nothing was written",
                    describe=lambda c: f"{explainer.name} of " + describe_rows(
                        c[1], None if names is None else [names[i] for i in sub[c[0]:c[0] + len(c[1])]]),
                    features=features, identity=identity, model_dir=model_dir, checksum=checksum,
                    explainer=explainer, batch_size=batch_size, device=device):
                parts[s] = res
                bar.update()
        return _concat([parts[s] for s in starts], explainer)

    return run


def _task(chunk, **kwargs) -> Attribution:
    _, rows, labels, per_example = chunk
    return explain_chunk((rows, labels, per_example), **kwargs)


def _concat(parts: Sequence[Attribution], explainer) -> Attribution:
    """One Attribution from those of consecutive chunks (every field is per row)."""
    if not parts:
        raise StoreError("no rows to explain")
    cat = {k: np.concatenate([getattr(p, k) for p in parts])
           for k in ("relevance", "logits", "explained", "explained_logit", "conservation")}
    extras = {k: np.concatenate([p.extras[k] for p in parts]) for k in parts[0].extras}
    return Attribution(**cat, method=parts[0].method, params=parts[0].params, extras=extras)
