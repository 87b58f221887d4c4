"""Cross-validation (``scatterxai train --folds K``): K fold models, out-of-fold metrics with their spread,
and a final model trained on every row, in one model directory.

Rows and folds.  Every labelled row takes part, except the test rows of a split the meta CSV gave (a
held-out test set stays held out; a drawn split is replaced by the folds).  Rows are grouped
(:func:`scatterxai.model.folds.group_keys`: a player, instrument or source column when present, else the
recording) and dealt into K class-stratified folds; fold k trains on K−2 parts, early-stops on part k+1 and
tests on part k (:func:`~scatterxai.model.folds.fold_parts`).  μ of each fold model comes from its own
training rows, so no number of the test part, not even its mean, reaches the model that predicts it.

The model directory::

    MODEL_DIR/model.pt, config.json   the final model: every cross-validation row, for the median of the
                                      folds' best epochs (no early stopping: nothing is left to stop on);
                                      a drop-in model for every command.  config.json["crossval"] holds
                                      the folds, the fold of each row and the fold models' checksums
    MODEL_DIR/folds/<k>/model.pt, config.json   fold model k (1 … K), a model directory of its own
    MODEL_DIR/metrics.json, metrics.md          out-of-fold metrics with their spread

Applied to the features it was trained on, a cross-validated model predicts (``evaluate``) and explains
(``explain``) each row with the fold model that did not see it (:func:`fold_of_rows`); other rows and other
files get the final model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional, Union

import numpy as np
import torch

from .._util.device import resolve_device
from .._util.fs import atomic_dir
from .._util.log import logger
from .._util.types import Device, PathLike
from .._util.validate import check_seed
from ..errors import DataError, ModelError
from .arch import Arch
from .cvreport import crossval_metrics, write_metrics
from .directory import CONFIG_FILE, LoadedModel, load_model, prepare_input, write_model_files
from .finetune import InitSpec, Pretrained, as_init
from .folds import assign_folds, fold_parts, group_keys
from .guidance import class_counts, count_warnings, n_recordings
from .train import (
    TrainConfig,
    claim_model_dir,
    class_weights,
    fit,
    input_channels,
    load_rows,
    model_config,
    open_features,
    rows_mu,
    torch_threads,
    with_epochs,
)

if TYPE_CHECKING:
    from ..features.store import FeatureFile

__all__ = ["train_crossval", "is_crossval", "fold_of_rows", "features_identity", "evaluation_rows", "load_fold",
           "oof_logits", "FOLDS_DIR"]

#: sub-directory of the fold models
FOLDS_DIR = "folds"


def features_identity(ff: FeatureFile, rows: np.ndarray) -> str:
    """sha256 of what identifies ``rows`` of a features file: per row its file name, window start, label and
    the mean of its coefficients (to 5 significant digits).

    A cross-validated model recognises the data it was trained on by it: a re-extraction of the same audio
    gives the same identity, other audio under the same file names does not."""
    h = hashlib.sha256()
    rows = np.asarray(rows, np.int64)
    start = ff.examples.get("start_s")
    labels = ff.labels if "label" in ff.examples else np.full(len(ff), -1)
    means = np.concatenate([ff.load(rows[i:i + 64]).mean(axis=(1, 2), dtype=np.float64)
                            for i in range(0, len(rows), 64)]) if len(rows) else np.zeros(0)
    for r, m in zip(rows.tolist(), means.tolist()):
        h.update(f"{ff.examples['file_name'][r]}\x1f{'' if start is None else start[r]}\x1f{labels[r]}\x1f"
                 f"{m:.4e}\x1e".encode())
    return h.hexdigest()


def _cv_rows(ff) -> tuple:
    """(rows taking part, description): every row, or all but a given split's test rows."""
    rows = np.arange(len(ff), dtype=np.int64)
    if str(ff.attrs.get("split", "")) == "given" and "subset" in ff.examples:
        keep = np.asarray(ff.examples["subset"]).astype(str) != "test"
        if keep.all() or not keep.any():
            return rows, "every row"
        return rows[keep], ("the training and validation rows of the split the meta CSV gave (its test rows stay "
                            "held out)")
    return rows, "every row (the drawn 6:2:2 split is not used)"


def _augmented(ff, rows: np.ndarray) -> np.ndarray:
    if "augmented" not in ff.examples:
        return np.zeros(len(rows), np.int64)
    return np.asarray(ff.examples["augmented"])[rows].astype(np.int64)


class _Plan:
    """The folds of one cross-validation."""

    def __init__(self, ff, n_folds: int, seed: int, group_by: Optional[str]):
        if "label" not in ff.examples:
            raise DataError(f"{ff.path} has no labels; cross-validation needs them")
        self.rows, self.rows_text = _cv_rows(ff)
        self.labels = ff.labels
        groups, self.group_by = group_keys(ff.examples, group_by)
        self.augmented = _augmented(ff, self.rows)
        self.folds = assign_folds(self.labels[self.rows], groups[self.rows], n_folds, seed=seed,
                                  augmented=self.augmented)
        self.groups = groups[self.rows]
        self.n_folds, self.seed = n_folds, seed

    def parts(self, k: int) -> Dict[str, np.ndarray]:
        return fold_parts(self.folds, k, self.n_folds, augmented=self.augmented, rows=self.rows)

    def counts(self, ff, k: int) -> Dict[str, list]:
        n = len(ff.classes)
        return {p: class_counts(ff.examples, self.labels, r, n).tolist() for p, r in self.parts(k).items()}


def train_crossval(features: Union[PathLike, FeatureFile], *, input: Optional[str], out_dir: PathLike,
                   folds: int = 5, seed: int = 0,
                   device: Device = "auto", max_epochs: Optional[int] = None, progress: bool = True,
                   config: Optional[TrainConfig] = None, threads: Optional[int] = None,
                   arch: Union[None, str, Arch] = None, init: Union[None, PathLike, InitSpec] = None,
                   group_by: Optional[str] = None, overwrite: bool = False) -> LoadedModel:
    """K-fold cross-validation, grouped and stratified; writes the model directory (module docstring).

    Parameters
    ----------
    features : str, Path or FeatureFile
        Features with labels.
    input : {"s1", "s1s2"} or None
        None only with ``init`` (the pretrained input).
    out_dir : str or Path
        Model directory, replaced as a whole when everything is trained.
    folds : int ≥ 3
    seed : int
        Deals the folds and seeds every training (fold k and the final model: ``seed``).
    device, max_epochs, progress, config, threads, arch, init
        As :func:`scatterxai.model.train_model`.
    group_by : str, optional
        Example column whose values never straddle folds (default: see
        :func:`~scatterxai.model.folds.group_keys`).
    overwrite : bool
        Replace an output folder of another kind that scatterxai wrote (as :func:`~scatterxai.model.train_model`).

    Returns
    -------
    LoadedModel — the final model; ``config["crossval"]`` describes the folds, and ``metrics.json`` in
    ``out_dir`` the out-of-fold accuracy with its spread.
    """
    config = with_epochs(config, max_epochs)
    seed = check_seed("seed", seed)
    init = as_init(init)
    with claim_model_dir(out_dir, features, init, overwrite) as claim, torch_threads(threads), \
            open_features(features) as ff:
        out_dir = claim.path
        dev = resolve_device(device)
        config = config.resolved(n_recordings(ff))
        plan = _Plan(ff, folds, seed, group_by)
        pre = None if init is None else Pretrained(init, ff, input, ff.classes)
        input = pre.input if pre is not None else input
        channels = input_channels(ff.table, input)
        with atomic_dir(out_dir) as tmp:
            os.makedirs(os.path.join(tmp, FOLDS_DIR))
            results = [_train_fold(ff, plan, k, tmp, channels=channels, input=input, seed=seed, dev=dev,
                                   config=config, arch=arch, pre=pre, progress=progress)
                       for k in range(plan.n_folds)]
            _final(ff, plan, results, tmp, channels=channels, input=input, seed=seed, dev=dev, config=config,
                   arch=arch, pre=pre, progress=progress)
    return load_model(out_dir, device=dev)


def _fold_mu(ff, rows_tr, channels, pre) -> tuple:
    mu, source = rows_mu(ff, rows_tr, channels), "training rows of this fold (mean of each coefficient's time average)"
    return pre.mu(mu) if pre is not None else (mu, source)


def _train_fold(ff, plan: _Plan, k: int, tmp: str, *, channels, input, seed, dev, config, arch, pre, progress) -> dict:
    """Train fold model k into ``tmp/folds/<k+1>``; its test rows' logits."""
    t0 = time.perf_counter()
    parts = plan.parts(k)
    counts = plan.counts(ff, k)
    for message in count_warnings(counts, ff.classes, where=f"fold {k + 1}"):
        logger.warning("warning: %s", message)
    mu, mu_source = _fold_mu(ff, parts["training"], channels, pre)
    data = load_rows(ff, channels, parts["training"], parts["validation"], mu, config.c, dev, mu_source=mu_source)
    weights = class_weights(data.y_tr, len(data.classes))
    if progress:
        logger.info("fold %d/%d: %d training / %d validation / %d test rows", k + 1, plan.n_folds, len(data.y_tr),
                    len(data.y_va), len(parts["test"]))
    net, history, best, stop_reason, frozen = fit(data, weights, seed=seed, dev=dev, config=config,
                                                  progress=progress, arch=arch, init=pre)
    cfg = model_config(data, net, input=input, seed=seed, config=config, weights=weights, history=history,
                       best=best, stop_reason=stop_reason, dev=dev, t_start=t0, init=pre, frozen=frozen,
                       fold={"fold": k + 1, "of": plan.n_folds, "notes_per_class": counts,
                             "test_rows": parts["test"], "validation_rows": parts["validation"]})
    folder = os.path.join(tmp, FOLDS_DIR, str(k + 1))
    os.makedirs(folder)
    sha = write_model_files(folder, net, cfg)
    net.eval()
    with torch.no_grad():
        logits = net(prepare_input(ff.load(parts["test"]), channels, mu, config.c, device=dev)).cpu().numpy() \
            if len(parts["test"]) else np.zeros((0, len(data.classes)), np.float32)
    return {"fold": k + 1, "dir": f"{FOLDS_DIR}/{k + 1}", "weights_sha256": sha, "best_epoch": best["epoch"],
            "test_rows": parts["test"], "logits": logits, "counts": counts}


def _final(ff, plan: _Plan, results, tmp: str, *, channels, input, seed, dev, config, arch, pre, progress) -> None:
    """The final model (every row, median best epoch, no early stopping), metrics.json and metrics.md."""
    t0 = time.perf_counter()
    epochs = int(np.median([r["best_epoch"] for r in results]))
    rows = plan.rows
    mu, mu_source = _fold_mu(ff, rows, channels, pre)
    mu_source = mu_source.replace("this fold", "every cross-validation row")
    data = load_rows(ff, channels, rows, rows[plan.augmented == 0], mu, config.c, dev, mu_source=mu_source)
    weights = class_weights(data.y_tr, len(data.classes))
    if progress:
        logger.info("final model: %d rows, %d epochs (median best epoch of the folds)", len(data.y_tr), epochs)
    final_cfg = dataclasses.replace(config, max_epochs=epochs)
    net, history, best, _, frozen = fit(data, weights, seed=seed, dev=dev, config=final_cfg, progress=False,
                                        keep_last=True, arch=arch, init=pre)
    metrics = crossval_metrics(ff, plan, results, input=input, n_params=sum(p.numel() for p in net.parameters()
                                                                            if p.requires_grad))
    crossval = {"folds": plan.n_folds, "seed": plan.seed, "group_by": plan.group_by,
                "n_groups": len(set(plan.groups.tolist())), "rows": plan.rows, "fold": plan.folds + 1,
                "rows_used": plan.rows_text, "features_identity": features_identity(ff, plan.rows),
                "rotation": "fold k tests on part k, early-stops on part k+1 (mod K), trains on the others",
                "fold_models": [{k: r[k] for k in ("fold", "dir", "weights_sha256", "best_epoch", "counts")}
                                for r in results],
                "final": {"epochs": epochs, "rule": "median of the folds' best epochs; every row, no early stopping",
                          "validation": "none (the history's validation columns are the training rows)"},
                "macro_accuracy": metrics["macro_accuracy"], "spread": metrics["spread"]}
    cfg = model_config(data, net, input=input, seed=seed, config=final_cfg, weights=weights, history=history,
                       best=best, stop_reason=f"fixed {epochs} epochs (cross-validation's final model)", dev=dev,
                       t_start=t0, init=pre, frozen=frozen, crossval=crossval)
    write_model_files(tmp, net, cfg)
    write_metrics(tmp, metrics)
    if progress:
        s = metrics["spread"]["macro_accuracy"]
        logger.info("cross-validated macro accuracy %.1f %% (folds %s; 95 %% interval %.1f–%.1f %%)",
                    100 * s["pooled"], ", ".join(f"{100 * v:.0f}" for v in s["per_fold"]),
                    100 * s["interval"][0], 100 * s["interval"][1])


# ------------------------------------------------------------------------------------- applying the folds

def is_crossval(model: LoadedModel) -> bool:
    """Whether ``model`` is the final model of a cross-validation (it has fold models)."""
    return isinstance(model.config.get("crossval"), dict)


def fold_of_rows(model_dir: PathLike, model: LoadedModel, ff: FeatureFile, rows: np.ndarray) -> np.ndarray:
    """Fold (1 … K) of the model that did not see each of ``rows``, 0 for rows no fold model tested.

    When ``ff`` is not the features file the model was cross-validated on (its rows' identity differs),
    every row gets 0: the final model applies.
    """
    rows = np.asarray(rows, np.int64)
    out = np.zeros(len(rows), np.int64)
    if not is_crossval(model):
        return out
    cv = model.config["crossval"]
    cv_rows = np.asarray(cv["rows"], np.int64)
    if (cv_rows.size and cv_rows.max() >= len(ff)) or features_identity(ff, cv_rows) != cv["features_identity"]:
        logger.info("%s is not the data %s was cross-validated on: its final model applies to every row",
                    ff.path, model_dir)
        return out
    fold_of = dict(zip(cv_rows.tolist(), np.asarray(cv["fold"], np.int64).tolist()))
    out[:] = [fold_of.get(r, 0) for r in rows.tolist()]
    if "augmented" in ff.examples:   # augmented copies were trained on by every other fold: final model
        out[np.asarray(ff.examples["augmented"])[rows] != 0] = 0
    return out


def evaluation_rows(model: LoadedModel, ff: FeatureFile, subset: Optional[str]) -> tuple:
    """(rows, subset description) that ``evaluate`` and ``explain`` use for ``subset``.

    For a cross-validated model on the data it was cross-validated on, when the folds replaced a drawn
    split, "test" means every row (each is a test row of its fold); otherwise ``ff.indices(subset)``.
    """
    key = None if subset in (None, "all") else subset
    if subset == "test" and is_crossval(model):
        cv = model.config["crossval"]
        cv_rows = np.asarray(cv["rows"], np.int64)
        if len(cv_rows) == len(ff) and features_identity(ff, cv_rows) == cv["features_identity"]:
            return ff.indices(None), f"out-of-fold ({cv['folds']} folds, every row)"
    return ff.indices(key), subset or "all"


def load_fold(model_dir: PathLike, model: LoadedModel, k: int, device: Device = "auto") -> LoadedModel:
    """Fold model ``k`` (1 … K) of a cross-validated model directory, checked against the final config."""
    entry = next((f for f in model.config["crossval"]["fold_models"] if int(f["fold"]) == int(k)), None)
    if entry is None:
        raise ModelError(f"{model_dir} has no fold model {k}")
    fold = load_model(Path(model_dir) / entry["dir"], device=device)
    if fold.checksum != entry["weights_sha256"]:
        raise ModelError(f"{Path(model_dir) / entry['dir'] / 'model.pt'} is not the fold model {CONFIG_FILE} "
                         f"records (sha256 {fold.checksum[:12]}… vs {entry['weights_sha256'][:12]}…); train again")
    return fold


def oof_logits(model_dir: PathLike, model: LoadedModel, ff: FeatureFile, rows: np.ndarray, *,
               batch_size: int = 64) -> tuple:
    """(logits [shape=(k, n_classes)], fold of each row): each row's logits from the fold model that did not
    see it (:func:`fold_of_rows`), the final model's for the others."""
    rows = np.asarray(rows, np.int64)
    fold = fold_of_rows(model_dir, model, ff, rows)
    logits = np.zeros((len(rows), len(model.classes)), np.float32)
    for k in np.unique(fold):
        m = model if k == 0 else load_fold(model_dir, model, int(k), device=model.device)
        sel = np.flatnonzero(fold == k)
        logits[sel] = m.logits(ff.load(rows[sel]), batch_size=batch_size)
    return logits, fold
