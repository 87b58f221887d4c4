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
from .directory import load_model
from .metrics import classification_metrics, metrics_markdown
from .net import count_parameters
from .train import labels_of, open_features

if TYPE_CHECKING:
    from ..features.store import FeatureFile

__all__ = ["evaluate_model"]


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
        "test" (default), "validation", "training", or "all" / None for every row.
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
        model.check_compatible(ff)
        idx = ff.indices(subset)
        y = labels_of(ff, idx, len(model.classes))
        logits = np.concatenate([model.logits(ff.load(idx[i:i + batch_size]), batch_size=batch_size)
                                 for i in range(0, len(idx), batch_size)] or [np.zeros((0, len(model.classes)))])
        names = ff.examples["file_name"][idx]
        features_path = os.path.abspath(ff.path)
    pred = logits.argmax(axis=1)
    metrics = {"input": model.config["input"], "n_params": int(model.config.get("n_params",
                                                                                 count_parameters(model.net))),
               "subset": subset or "all"}
    metrics.update(classification_metrics(y, pred, model.classes))
    metrics.update({"model_dir": os.path.abspath(model_dir), "model_sha256": model.checksum,
                    "features_file": features_path, "scatterxai_version": __version__,
                    "predictions": {"row": idx.tolist(), "file_name": [str(n) for n in names],
                                    "label": y.tolist(), "predicted": pred.tolist(),
                                    "logits": logits.astype(np.float64).round(6).tolist()}})
    markdown = metrics_markdown(metrics)
    write_json(out_dir / "metrics.json", metrics)
    (out_dir / "metrics.md").write_text(markdown, encoding="utf-8")
    if metrics["absent_classes"]:
        warnings.warn(f"classes {metrics['absent_classes']} are absent from subset {subset!r}: their accuracy "
                      f"is NaN and the macro accuracy averages the other classes", RuntimeWarning, stacklevel=2)
    metrics["markdown"] = markdown
    return metrics
