"""``scatterxai explain``: explain a trained model's predictions on a features file → the relevance file.

The layout of the file is documented in :mod:`scatterxai.io.relevance` (which reads it).  Per method the
same datasets are written whatever the method: the writer (:func:`write_relevance`, shared with the
audio-in :func:`scatterxai.explain.explain_files`) asks the method's :class:`~.base.Explainer` only for
relevance and for the attributes to record.

One forward pass of the network gives every row's logits and prediction; every method then explains the
same class per row (the prediction, or the true label with ``target="true"``).

Slow methods on a subset (``max_per_class``): a method limited to n examples per class explains the rows
of :func:`stratified_rows` (up to n per class — true label, or prediction without labels — spread evenly
through each class's rows in file order, deterministic); its other rows are NaN in every per-example
dataset, ``/explained_rows/<method>`` lists the rows it explained and ``/relevance/<method>`` has the
attribute ``n_explained``.  Its class aggregate counts only its explained rows.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union

import h5py
import numpy as np
import torch

from .. import maps
from .._util.cluster import check_dask
from .._util.fs import prepare_output
from .._util.log import logger
from .._util.outputs import claim_output
from .._util.types import DaskSpec, PathLike
from .._util.validate import check_choice, check_positive_float, check_positive_int, with_settings
from .._util.versions import package_version
from ..errors import ParameterError
from ..features.store import features_fingerprint
from ..io.hdf5 import STR_DTYPE, atomic_h5, raise_if_failed, scattering_attrs, write_column
from ..io.netcdf import COMPRESSIONS, annotate_relevance, dataset_options
from .attribution import attribute
from .base import REGISTRY, Explainer, available_methods, get_explainer
from .methods.lrp import DEFAULT_EPSILON, stabilizer

if TYPE_CHECKING:
    from ..model.directory import LoadedModel

__all__ = ["ExplainConfig", "explain", "write_relevance", "method_names", "stratified_rows"]


def stratified_rows(groups: np.ndarray, n_per_class: Optional[int]) -> np.ndarray:
    """Rows to explain with a method limited to ``n_per_class`` examples per class.

    Parameters
    ----------
    groups : array of int [shape=(K,)]
        Class of each row.
    n_per_class : int or None
        None: every row.

    Returns
    -------
    np.ndarray [shape=(k,), int64]
        Sorted row indices: for each class with m rows, all of them if m ≤ n, else its rows at positions
        ⌊(i + ½)·m / n⌋, i = 0…n−1, in file order (spread evenly, deterministic).
    """
    groups = np.asarray(groups)
    if n_per_class is None:
        return np.arange(len(groups), dtype=np.int64)
    n = check_positive_int("n_per_class", n_per_class)
    picked = []
    for c in np.unique(groups):
        rows = np.flatnonzero(groups == c)
        m = len(rows)
        picked.append(rows if m <= n else rows[((np.arange(n) + 0.5) * m / n).astype(np.int64)])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def method_names(methods: Union[str, Sequence[Union[str, Explainer]]]) -> Tuple[str, ...]:
    """Registered method names from a comma-separated string or a sequence (duplicates dropped)."""
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    names = []
    valid = available_methods()
    for m in methods:
        name = m.name if isinstance(m, Explainer) else m
        if name not in valid:
            raise ParameterError(f"unknown attribution method {name!r}; valid methods are {valid}")
        if name not in names:
            names.append(name)
    if not names:
        raise ParameterError(f"methods is empty; give at least one of {valid}")
    return tuple(names)


@dataclass(frozen=True)
class ExplainConfig:
    """Settings of :func:`explain` (recorded in the relevance file's attributes).

    Parameters
    ----------
    methods : tuple of str
        Registered attribution methods (:func:`scatterxai.explain.available_methods`).
    subset : str or None
        Rows to explain ("training", "validation", "test"); None or "all" for every row.
    target : {"pred", "true"}
        Explain the predicted class (paper) or the true label.
    top_n : int
        n of the class-wise top-n aggregation (paper eq. 13).
    epsilon : float
        ε of the ε-rule, for the LRP methods (see :mod:`scatterxai.explain.methods.lrp`).
    method_params : mapping method → dict
        Further parameters of individual methods (e.g. ``{"integrated_gradients": {"steps": 128}}``).
    max_per_class : mapping method → int
        Explain at most this many examples per class with the method (:func:`stratified_rows`); methods
        not listed explain every row.
    batch_size : int
        Examples attributed at once.
    device : str
    compression : {None, "gzip", "lzf"}
        Lossless compression of the (example, path, frame) datasets ``/features`` and
        ``/relevance/<method>`` (chunks of one example, byte-shuffled before compression).
    """

    methods: Tuple[str, ...] = ("epsilon", "epsilon_plus")
    subset: Optional[str] = "test"
    target: str = "pred"
    top_n: int = 5
    epsilon: float = DEFAULT_EPSILON
    method_params: Mapping[str, dict] = field(default_factory=dict)
    max_per_class: Mapping[str, int] = field(default_factory=dict)
    batch_size: int = 64
    device: str = "auto"
    compression: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "methods", method_names(self.methods))
        check_choice("target", self.target, ("pred", "true"))
        check_positive_int("top_n", self.top_n)
        check_positive_float("epsilon", self.epsilon)
        check_positive_int("batch_size", self.batch_size)
        check_choice("compression", self.compression, COMPRESSIONS)
        for field_name in ("method_params", "max_per_class"):
            unknown = sorted(set(getattr(self, field_name)) - set(self.methods))
            if unknown:
                raise ParameterError(f"{field_name} names methods {unknown} that are not in methods "
                                     f"{list(self.methods)}")
        for name, n in self.max_per_class.items():
            if n is not None:
                check_positive_int(f"max_per_class[{name!r}]", n)

    def explainer(self, name: str, model: Optional[LoadedModel] = None) -> Explainer:
        """The configured explainer of method ``name``; ``model`` (a ``LoadedModel``) supplies the
        context some methods need (path table, input at the training mean)."""
        params = dict(self.method_params.get(name, {}))
        cls = REGISTRY[name]
        if cls.family == "lrp":
            params.setdefault("epsilon", self.epsilon)
        if model is not None:
            context = {"paths": model.paths, "mean_input": model.mean_input()}
            params.update({k: context[k] for k in cls.context})
        return get_explainer(name, **params)


def _load_inputs(features, model, config: ExplainConfig):
    """(network input x, example columns, scattering attributes, rows) of the explained rows."""
    from ..features.store import FeatureFile
    with FeatureFile(features) as ff:
        model.check_compatible(ff, classes="subset")   # new recordings may lack some of the model's classes
        rows = ff.indices(None if config.subset in (None, "all") else config.subset)
        examples = {k: v[rows] for k, v in ff.examples.items()}
        if "label" in examples:
            examples["label"] = model.labels_of(ff, rows)  # indices into the model's classes, checked
        if config.target == "true" and "label" not in examples:
            raise ParameterError(f"target='true' needs labels but {ff.path} has no /examples/label column; "
                                 f"use target='pred'")
        attrs = scattering_attrs(ff.config, ff.table)
        attrs.update({k: ff.attrs[k] for k in ("audio_root", "segments") if k in ff.attrs}, source="features",
                     features_file=os.path.basename(os.fspath(ff.path)), features_fingerprint=ff.fingerprint)
        return model.prepare(ff.rows(rows)), examples, attrs, rows   # read by chunk


def _root_attrs(attrs: dict, model, config: ExplainConfig) -> dict:
    lrp = [m for m in config.methods if REGISTRY[m].family == "lrp"]
    attrs.update(classes=np.array(list(model.classes), dtype=object),
                 methods=np.array(config.methods, dtype=object), rules=np.array(lrp, dtype=object),
                 epsilon=float(config.epsilon), stabilizer=stabilizer(config.epsilon),
                 target=config.target, subset=str(config.subset) if config.subset is not None else "all",
                 top_n=int(config.top_n), model_checksum=model.checksum,
                 model_input=str(model.config.get("input", "")), log_c=model.c,
                 zennit_version=package_version("zennit"), torch_version=package_version("torch"))
    return attrs


def _write_shared(f: h5py.File, x, paths: Dict[str, np.ndarray], grid, compression=None) -> None:
    f.create_dataset("features", data=x.cpu().numpy(), **dataset_options(compression, x.shape))
    g = f.create_group("paths")
    for k in ("order", "lambda1_hz", "lambda2_hz", "n1", "n2"):
        g.create_dataset(k, data=paths[k])
    g = f.create_group("grid")
    for k in ("row", "col", "lambda1_hz", "lambda2_hz"):
        g.create_dataset(k, data=getattr(grid, k))


@torch.no_grad()
def _forward(net, x, batch_size: int) -> np.ndarray:
    """Logits (K, n_classes) of the network (eval mode) on its input x, in batches."""
    net.eval()
    out = [net(x[i:i + batch_size]).cpu() for i in range(0, x.shape[0], batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, getattr(net, "n_classes", 0)), np.float32)


def _write_examples(f: h5py.File, examples: Dict[str, np.ndarray], logits: np.ndarray,
                    explained: np.ndarray) -> None:
    """Metadata columns plus pred, explained and logits."""
    g = f.create_group("examples")
    for k, v in examples.items():
        # names this file defines itself win over same-named metadata columns
        write_column(g, k if k not in ("pred", "explained", "logits") else f"meta_{k}", v)
    g.create_dataset("pred", data=logits.argmax(axis=1).astype(np.int64))
    g.create_dataset("explained", data=explained)
    g.create_dataset("logits", data=logits.astype(np.float32))


def _per_row(K: int, rows: np.ndarray, values, dtype=np.float64) -> np.ndarray:
    """A (K, ...) array: ``values`` at ``rows``, NaN elsewhere."""
    values = np.asarray(values)
    out = np.full((K,) + values.shape[1:], np.nan, dtype=dtype)
    out[rows] = values
    return out


def _write_method(f: h5py.File, name: str, explainer: Explainer, res, rows: np.ndarray, *, groups,
                  n_classes: int, top_n: int, paths, modulation, compression=None) -> None:
    """The per-method datasets: relevance, local map, aggregate, kurtosis, conservation, localisation
    (+ completeness for methods with a baseline, explained_rows for a subset); NaN where not explained."""
    K = f["features"].shape[0]
    _, C, T = res.relevance.shape
    local = maps.local_map(res.relevance)
    ds = f.create_dataset(f"relevance/{name}", shape=(K, C, T), dtype=np.float32, fillvalue=np.float32(np.nan),
                          **dataset_options(compression, (K, C, T)))
    if len(rows) == K:
        ds[...] = res.relevance.astype(np.float32, copy=False)
    else:   # unwritten chunks are not stored: rows the method did not explain cost no space
        for i, r in enumerate(rows):
            ds[r] = res.relevance[i]
    ds.attrs.update(explainer.attrs())
    ds.attrs["n_explained"] = len(rows)
    f.create_dataset(f"explained_rows/{name}", data=rows.astype(np.int64))
    f.create_dataset(f"local/{name}", data=_per_row(K, rows, local, np.float32))
    ds = f.create_dataset(f"aggregate/{name}", data=maps.topn_aggregate(local, groups[0][rows], n_classes,
                                                                       n=min(top_n, C)))
    ds.attrs.update(top_n=int(top_n), grouped_by=groups[1], n_explained=len(rows))
    f.create_dataset(f"kurtosis/{name}", data=_per_row(K, rows, maps.map_kurtosis(local)))
    f.create_dataset(f"conservation/{name}", data=_per_row(K, rows, res.conservation))
    if res.completeness is not None:
        ds = f.create_dataset(f"completeness/{name}", data=_per_row(K, rows, res.completeness))
        ds.attrs["definition"] = "sum of relevance / (f_c(x) - f_c(baseline))"
    if modulation is not None:
        ds = f.create_dataset(f"localisation/{name}", data=_per_row(K, rows, maps.localisation(
            local, paths, modulation[rows], octaves=maps.LOCALISATION_OCTAVES)))
        ds.attrs["octaves"] = maps.LOCALISATION_OCTAVES


def _per_example_inputs(explainer: Explainer, examples, rows, model, progress: bool) -> dict:
    """Per-example inputs of ``explainer`` for ``rows`` (the unmodulated baseline of Integrated Gradients)."""
    needed = explainer.per_example_inputs()
    if not needed:
        return {}
    if needed == ("baseline",) and getattr(explainer, "baseline", None) == "unmodulated":
        from .baselines import baseline_inputs
        sub = {k: v[rows] for k, v in examples.items()}
        return {"baseline": baseline_inputs(sub, model, model.scattering, seed=explainer.synth_seed, progress=progress)}
    raise ParameterError(f"explain() cannot supply the per-example inputs {list(needed)} of {explainer!r}; "
                         f"call scatterxai.explain.attribute(..., per_example=...) instead")


def explain(features: PathLike, *, model_dir: PathLike, out: PathLike, config: Optional[ExplainConfig] = None,
            progress: bool = True, dask: DaskSpec = None, overwrite: bool = False, **settings: Any) -> Path:
    """Explain a trained model's predictions on a features file and write RELEVANCE.h5.

    Parameters
    ----------
    features : str or Path
        Features HDF5 file (:class:`scatterxai.features.FeatureFile`).
    model_dir : str or Path
        Model directory (:func:`scatterxai.model.load_model`); must match the features' scattering.
    out : str or Path
        Output file, replaced atomically if it exists, under the output rule (:mod:`scatterxai._util.outputs`):
        never an input, only a relevance file of the same features replaced without ``overwrite``, one
        writer at a time (``OUT.lock``); its folder is created if its parent exists.
    config : ExplainConfig, optional
        Methods, subset, target, top-n, ε, per-method limits, batch size, device (default ``ExplainConfig()``).
    progress : bool
        Show progress bars.
    dask : str or distributed.Client, optional
        Attribute the batches on a Dask cluster (:mod:`scatterxai.explain.workers`): ``"local:N"``, a
        scheduler address (``"tcp://host:8786"``) or a Client; the workers read the features file and the
        model directory at the same paths, this process writes.  The file is the same as a serial run's.
        Default: this process only.
    overwrite : bool
        Replace an output of another kind or made from another features file (never an input, never a file
        scatterxai did not write).
    **settings
        Fields of :class:`ExplainConfig` overriding ``config`` (e.g. ``methods=["epsilon_plus"]``).

    Returns
    -------
    Path of the written file.

    Examples
    --------
    Explain a model's predictions on the test rows of its features file (``toy``: see
    ``tests/test_examples.py``) with two methods, and read the file back:

    >>> from scatterxai.explain import explain
    >>> from scatterxai.io.relevance import RelevanceFile
    >>> out = explain(toy.features, model_dir=toy.model_dir, out=tmp / "relevance.h5",
    ...               methods=["epsilon_plus", "guided_backprop"], device="cpu", progress=False)
    >>> with RelevanceFile(out) as rf:
    ...     print(rf.methods, len(rf), rf.relevance("epsilon_plus").shape, rf.local("epsilon_plus").shape)
    ('epsilon_plus', 'guided_backprop') 10 (10, 249, 128) (10, 249)
    """
    dask = check_dask(dask)
    config = with_settings(config or ExplainConfig(), settings)
    inputs = {"features input": features, "model directory": model_dir}
    with claim_output(out, kind="relevance", inputs=inputs, overwrite=overwrite,   # the output rule (README)
                      study=features_fingerprint(features)) as claim:
        return _explain(features, model_dir, Path(claim.path), config, progress, dask)


def _explain(features, model_dir, out: Path, config: ExplainConfig, progress: bool, dask=None) -> Path:
    from ..model.crossval import is_crossval
    from ..model.directory import load_model

    model = load_model(model_dir, device=config.device)
    if is_crossval(model):   # each row by the fold model that did not see it (on the data it was trained on)
        from .oof import explain_out_of_fold
        if dask is not None:
            raise ParameterError("--dask does not apply to a cross-validated model's out-of-fold explanation; "
                                 "explain without --dask")
        done = explain_out_of_fold(features, model_dir, model, out, config, progress, write_relevance)
        if done is not None:
            return done
    x, examples, attrs, rows = _load_inputs(features, model, config)
    if dask is None:
        return write_relevance(out, x, examples, attrs, model, config, progress=progress)
    from .._util.cluster import dask_client
    from .workers import dask_attribute
    with dask_client(dask) as client:
        run = dask_attribute(client, features=getattr(features, "path", features), rows=rows,
                             names=examples.get("file_name"), model_dir=model_dir, checksum=model.checksum,
                             batch_size=config.batch_size, device=config.device, progress=progress)
        return write_relevance(out, x, examples, attrs, model, config, progress=progress, attribute_fn=run)



#: a method whose maps keep less than this median share of the explained logit gets a warning
MIN_CONSERVED = 0.01


def _warn_if_absorbed(name: str, conservation: np.ndarray, epsilon: float) -> None:
    """Warn when the maps of a method hold almost none of the explained logit (e.g. a large LRP ε: its
    stabiliser absorbs the relevance of every layer and the maps are ~0)."""
    finite = conservation[np.isfinite(conservation)]
    if finite.size and abs(float(np.median(finite))) < MIN_CONSERVED and REGISTRY[name].family == "lrp":
        logger.warning("warning: %s keeps a median %.2g of the explained logit in its maps (ε = %g absorbs the "
                       "rest): its maps are close to 0; use a smaller --epsilon", name, float(np.median(finite)),
                       epsilon)


def write_relevance(out: PathLike, x: torch.Tensor, examples: Dict[str, np.ndarray], attrs: dict, model: LoadedModel,
                    config: ExplainConfig, *,
                    progress: bool = True, extra: Optional[Callable[[h5py.File], None]] = None,
                    attribute_fn: Optional[Callable] = None, logits: Optional[np.ndarray] = None,
                    explained: Optional[np.ndarray] = None) -> Path:
    """Attribute the network input ``x`` with every method of ``config`` and write the relevance file.

    One forward pass gives every row's logits and prediction; every method then explains the same class
    per row (the prediction, or the true label with ``target="true"``), on the rows of
    :func:`stratified_rows` when ``config.max_per_class`` limits it.

    Parameters
    ----------
    out : str or Path
        Output file (written atomically; its folder is created if that folder's parent exists).
    x : torch.Tensor [shape=(K, C_in, T)]
        Network input (``model.prepare`` of the raw features).
    examples : dict of str → np.ndarray [shape=(K,)]
        Metadata columns; ``label`` (class indices into ``model.classes``) when known.
    attrs : dict
        Root attributes describing the data (scattering parameters, source…).
    model : scatterxai.model.LoadedModel
    config : ExplainConfig
    extra : callable, optional
        Called with the open file after everything else is written (to add groups).
    attribute_fn : callable, optional
        ``(explainer, rows, target, per_example) → Attribution`` of the rows ``rows`` of ``x`` (indices, in
        increasing order) for the classes ``target`` (one per row), with the per-example inputs
        ``per_example`` (dict name → array, one per row) — e.g. on a Dask cluster; default:
        :func:`~.attribution.attribute` in this process, in batches of ``config.batch_size``.
    logits : np.ndarray [shape=(K, n_classes)], optional
        The rows' logits when they do not all come from ``model.net`` (out-of-fold explanation); default
        one forward pass of ``model.net``.
    explained : array of int [shape=(K,)], optional
        The class to explain in each row, overriding ``config.target`` (e.g. the class predicted for a
        whole file in each of its windows: :func:`scatterxai.explain.explain_files`).

    Returns
    -------
    Path of the written file.
    """
    out = Path(prepare_output(out))
    n_classes = len(model.classes)
    paths = model.paths
    labels = np.asarray(examples["label"], dtype=np.int64) if "label" in examples else None
    modulation = (np.asarray(examples["modulation_hz"], dtype=float)
                  if "modulation_hz" in examples and (paths["order"] == 2).any() else None)
    attrs = _root_attrs(dict(attrs), model, config)
    explainers = {name: config.explainer(name, model) for name in config.methods}
    logits = _forward(model.net, x, config.batch_size) if logits is None else np.asarray(logits)
    pred = logits.argmax(axis=1).astype(np.int64)
    if explained is None:
        explained = labels if config.target == "true" else pred
    else:
        explained = np.asarray(explained)
        if explained.shape != pred.shape or explained.dtype.kind not in "iu" or not np.all(
                (explained >= 0) & (explained < n_classes)):
            raise ParameterError(f"explained must hold one class index in [0, {n_classes}) per row "
                                 f"({len(pred)} rows), got {explained.dtype} of shape {explained.shape}")
        explained = explained.astype(np.int64)
    groups = (labels, "label") if labels is not None else (pred, "pred")

    with atomic_h5(out) as f:
        for key in ("methods", "rules"):   # string arrays, possibly empty (no LRP method): explicit dtype
            f.attrs.create(key, data=attrs.pop(key), dtype=STR_DTYPE)
        f.attrs.update(attrs)
        _write_shared(f, x, paths, maps.grid_index(paths), config.compression)
        _write_examples(f, examples, logits, explained)
        for name, explainer in explainers.items():
            rows = stratified_rows(groups[0], config.max_per_class.get(name))
            per_example = _per_example_inputs(explainer, examples, rows, model, progress)
            t0 = time.perf_counter()
            if attribute_fn is None:
                res = attribute(model.net, x[torch.as_tensor(rows)], method=explainer, target=explained[rows],
                                batch_size=config.batch_size, device=model.device, progress=progress,
                                per_example=per_example)
            else:
                res = attribute_fn(explainer, rows, explained[rows], per_example)
            seconds = time.perf_counter() - t0
            logger.info("explain: %s on %d of %d rows in %.1f s", name, len(rows), len(x), seconds)
            _write_method(f, name, explainer, res, rows, groups=groups, n_classes=n_classes, top_n=config.top_n,
                          paths=paths, modulation=modulation, compression=config.compression)
            f[f"relevance/{name}"].attrs["seconds"] = seconds
            _warn_if_absorbed(name, f[f"conservation/{name}"][()], config.epsilon)
            del res
            raise_if_failed(f)   # a full disk: stop now (the temporary file is removed)
        if extra is not None:
            extra(f)
        annotate_relevance(f)
    return out
