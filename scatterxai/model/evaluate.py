"""Evaluation of a trained model on one subset of a features file: ``metrics.json`` and ``metrics.md``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

from .. import __version__
from .._util.jsonio import write_json
from .._util.outputs import claim_output
from .._util.types import Device, PathLike
from .._util.validate import check_positive_int
from .crossval import evaluation_rows, oof_logits
from .cvreport import crossval_markdown, oof_metrics
from .directory import load_model
from .metrics import classification_metrics, metrics_markdown
from .net import count_parameters
from .train import open_features

if TYPE_CHECKING:
    from ..features.store import FeatureFile

__all__ = ["evaluate_model"]


def _single(ff, idx, y, logits, classes) -> dict:
    """Metrics and predictions of one model on rows ``idx``."""
    pred = logits.argmax(axis=1)
    out = classification_metrics(y, pred, classes)
    out.update({"features_file": os.path.abspath(ff.path), "scatterxai_version": __version__,
                "predictions": {"row": idx.tolist(), "file_name": [str(n) for n in ff.examples["file_name"][idx]],
                                "label": y.tolist(), "predicted": pred.tolist(),
                                "logits": logits.astype(np.float64).round(6).tolist()}})
    return out


def evaluate_model(features: Union[PathLike, FeatureFile], *, model_dir: PathLike, out_dir: PathLike,
                   subset: Optional[str] = "test", device: Device = "auto",
                   batch_size: int = 64, overwrite: bool = False) -> dict:
    """Accuracy of a trained model on one subset; writes ``out_dir/metrics.json`` and ``out_dir/metrics.md``.

    Parameters
    ----------
    features : str, Path or FeatureFile
        Features with a ``label`` column (and ``subset`` unless ``subset`` is None).
    model_dir : str or Path
    out_dir : str or Path
        Written as a whole (the output rule, :mod:`scatterxai._util.outputs`): never inside the model
        directory or another input; created with at most one missing folder above it.
    subset : str or None
        "test" (default), "validation", "training", or "all" / None for every row.  With a cross-validated
        model on the data it was cross-validated on, each row is predicted by the fold model that did not
        see it, "test" means every row when the folds replaced a drawn split, and the metrics have their
        spread (:mod:`scatterxai.model.crossval`).  The features may name a subset of the model's classes
        (new recordings without one technique): their labels are re-indexed into the model's class list.
    device : str
    batch_size : int
    overwrite : bool
        Replace an output folder of another kind.

    Returns
    -------
    dict — the contents of metrics.json (``input``, ``n_params``, ``classes``, ``per_class_accuracy``,
    ``macro_accuracy``, ``overall_accuracy``, ``confusion_matrix``, ``subset``, ``n_examples``,
    ``class_counts``, ``absent_classes``, ``predictions``…; a class absent from the subset has accuracy
    NaN, written as null) plus ``markdown``, the Markdown report.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    inputs = {"features input": features, "model directory": model_dir}
    with claim_output(out_dir, kind="evaluation", inputs=inputs, overwrite=overwrite) as claim:   # the output rule
        return _evaluate(features, model_dir, claim.tmp, subset, device, batch_size)


def _evaluate(features, model_dir, out_dir: str, subset, device, batch_size) -> dict:
    out_dir = Path(out_dir)
    model = load_model(model_dir, device=device)
    with open_features(features) as ff:
        model.check_compatible(ff, classes="subset")   # new recordings may lack some of the model's classes
        idx, subset_text = evaluation_rows(model, ff, subset)
        y = model.labels_of(ff, idx)
        logits, fold = oof_logits(model_dir, model, ff, idx, batch_size=batch_size)
        metrics = {"input": model.config["input"], "n_params": int(model.config.get("n_params",
                                                                                     count_parameters(model.net))),
                   "subset": subset_text}
        if fold.any():   # a cross-validated model on its own data: each row by the fold model that did not see it
            metrics.update(oof_metrics(ff, idx, logits, fold, model.config["crossval"]["fold_models"],
                                       seed=int(model.config["crossval"]["seed"]), labels=y, classes=model.classes))
            metrics["crossval"] = {k: model.config["crossval"][k] for k in ("folds", "seed", "group_by", "n_groups",
                                                                            "rows_used")}
            metrics["crossval"]["n_recordings"] = metrics.pop("n_recordings")
        else:
            metrics.update(_single(ff, idx, y, logits, model.classes))
    metrics.update({"model_dir": os.path.abspath(model_dir), "model_sha256": model.checksum})
    markdown = crossval_markdown(metrics) if "spread" in metrics else metrics_markdown(metrics)
    write_json(out_dir / "metrics.json", metrics)
    (out_dir / "metrics.md").write_text(markdown, encoding="utf-8")
    if metrics["absent_classes"]:
        warnings.warn(f"classes {metrics['absent_classes']} are absent from subset {subset!r}: their accuracy "
                      f"is NaN and the macro accuracy averages the other classes", RuntimeWarning, stacklevel=2)
    metrics["markdown"] = markdown
    return metrics
