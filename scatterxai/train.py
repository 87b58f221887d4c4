"""Training and evaluation of the convnet on stored scattering features; the paper's Table 1.

* :func:`train_model` — class-weighted cross-entropy, AdamW, gradient-norm clipping, early stopping on the
  validation split (:class:`TrainConfig`); writes a model directory (:mod:`scatterxai.model`).
* :func:`evaluate_model` — per-class accuracy, macro and overall accuracy, confusion matrix of one subset;
  writes ``metrics.json`` and ``metrics.md``.
* :func:`classification_metrics` — the metrics as a pure function of label arrays.
* :func:`table1` — two metrics (S1, S1+S2) in the layout of the paper's Table 1.

Same seed and same data give the same weights and metrics: the global torch RNG is seeded inside a forked
RNG state (the caller's state is restored), batches are drawn from a dedicated generator, and
deterministic algorithms are switched on for the duration of training (on CPU results are then also
independent of run-to-run scheduling; they may still depend on the number of threads and the CPU's
instruction set, which config.json records).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn

from . import __version__
from .errors import DataError, ParameterError
from .model import (INPUTS, ConvNet, LoadedModel, count_parameters, load_model, prepare_input, save_model,
                    write_json)
from .scattering import LOG_C, resolve_device

__all__ = ["TrainConfig", "input_channels", "class_weights", "train_model", "evaluate_model",
           "confusion_matrix", "classification_metrics", "metrics_markdown", "table1", "PAPER_TABLE1"]

#: the paper's Table 1 (SOL-PMT test split), per-class accuracy in %
PAPER_TABLE1 = {
    "s1": {"vibrato": 72.50, "trill": 70.33, "tremolo": 92.23, "bisbigliando": 88.33, "flatterzunge": 79.61},
    "s1s2": {"vibrato": 97.50, "trill": 98.56, "tremolo": 99.80, "bisbigliando": 98.33, "flatterzunge": 100.0},
}
INPUT_LABELS = {"s1": "S1", "s1s2": "S1+S2"}


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (paper / companion code where they say, choices marked otherwise).

    Parameters
    ----------
    batch_size : int
        Examples per step (paper: 32).
    lr, weight_decay : float
        AdamW learning rate and decoupled weight decay (code: 1e-3, 0.1).
    grad_clip : float
        Maximum global gradient norm (code: 3).
    max_epochs : int
        Upper bound on epochs (choice).  Early stopping usually ends training well before.
    patience : int
        Stop after this many epochs without improvement of the validation score (choice).
    c : float
        Constant of the log compression log1p(S / (c·μ + 1e-8)) (code: 0.1).

    Notes
    -----
    Early-stopping criterion (choice, not stated in the paper): the validation score is the pair
    (macro accuracy, −weighted cross-entropy), compared lexicographically, and the weights of the best
    epoch are kept.  Macro accuracy is the reported metric and is insensitive to class imbalance, but on
    the small validation splits of this task (4 vibrato examples at scale 0.1, 38 in SOL-PMT) it moves in
    coarse steps and often saturates at 1.0 after a few epochs; the class-weighted loss breaks ties, so
    training continues while the network still becomes more confident on the validation set and stops
    once it starts to overfit.  A patience of 10 epochs lets the noisy small-batch AdamW trajectory
    recover from a bad epoch without spending minutes on a plateau.
    """

    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.1
    grad_clip: float = 3.0
    max_epochs: int = 60
    patience: int = 10
    c: float = LOG_C
    criterion: str = "validation (macro accuracy, -weighted loss), lexicographic"

    def __post_init__(self):
        for name in ("batch_size", "max_epochs", "patience"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ParameterError(f"{name} must be a positive integer, got {v!r}")
        for name in ("lr", "grad_clip", "c"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ParameterError(f"{name} must be a positive number, got {v!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ParameterError(f"weight_decay must be >= 0, got {self.weight_decay!r}")


# ----------------------------------------------------------------------------------------- pure helpers

def input_channels(table, input: str) -> np.ndarray:
    """Indices into the path table of the network's input channels: ``"s1"`` → order 1, ``"s1s2"`` → all."""
    if input == "s1":
        return np.asarray(table.s1, dtype=np.int64)
    if input == "s1s2":
        return np.arange(len(table), dtype=np.int64)
    raise ParameterError(f"input must be one of {sorted(INPUTS)}, got {input!r}")


def class_weights(labels, n_classes: int) -> np.ndarray:
    """Loss weights w_c = max_k n_k / n_c [shape=(n_classes,)]; 0 for classes with no example."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    with np.errstate(divide="ignore"):
        w = np.where(counts > 0, counts.max() / counts, 0.0)
    return w


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts [shape=(n_classes, n_classes), int64]: rows true class, columns predicted class."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ParameterError(f"y_true and y_pred must be 1-D of equal length, got {y_true.shape} and "
                             f"{y_pred.shape}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ParameterError(f"{name} holds labels in [{y.min()}, {y.max()}], expected [0, {n_classes})")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def classification_metrics(y_true, y_pred, classes: Sequence[str]) -> dict:
    """Per-class, macro and overall accuracy and the confusion matrix.

    Parameters
    ----------
    y_true, y_pred : array of int [shape=(K,)]
    classes : sequence of str
        Class names, label = index.

    Returns
    -------
    dict with ``classes``, ``per_class_accuracy`` (name → fraction; NaN for a class absent from
    ``y_true``), ``macro_accuracy`` (mean over present classes), ``overall_accuracy``,
    ``confusion_matrix`` (list of lists of int, rows true), ``class_counts``, ``absent_classes``,
    ``n_examples``.
    """
    classes = [str(c) for c in classes]
    cm = confusion_matrix(y_true, y_pred, len(classes))
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)
    present = support > 0
    total = int(cm.sum())
    return {
        "classes": classes,
        "per_class_accuracy": {c: float(a) for c, a in zip(classes, acc)},
        "macro_accuracy": float(acc[present].mean()) if present.any() else float("nan"),
        "overall_accuracy": float(np.trace(cm) / total) if total else float("nan"),
        "confusion_matrix": cm.tolist(),
        "class_counts": {c: int(n) for c, n in zip(classes, support)},
        "absent_classes": [c for c, p in zip(classes, present) if not p],
        "n_examples": total,
    }


def _pct(value) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{100 * value:.2f}"


def metrics_markdown(metrics: Mapping) -> str:
    """Markdown report of one evaluation: per-class accuracy table and confusion matrix."""
    classes = list(metrics["classes"])
    label = INPUT_LABELS.get(metrics.get("input"), str(metrics.get("input", "?")))
    lines = [f"### {label} — subset {metrics.get('subset', '?')} ({metrics['n_examples']} examples"
             + (f", {metrics['n_params']:,} parameters" if "n_params" in metrics else "") + ")", "",
             "| class | examples | accuracy (%) |", "|---|---:|---:|"]
    counts = metrics.get("class_counts", {})
    for c in classes:
        lines.append(f"| {c} | {counts.get(c, '?')} | {_pct(metrics['per_class_accuracy'][c])} |")
    lines += [f"| **macro** | | **{_pct(metrics['macro_accuracy'])}** |",
              f"| overall | {metrics['n_examples']} | {_pct(metrics['overall_accuracy'])} |", ""]
    absent = metrics.get("absent_classes") or []
    if absent:
        lines += [f"Classes absent from this subset (accuracy undefined, shown as —; macro over the other "
                  f"classes): {', '.join(absent)}.", ""]
    lines += ["Confusion matrix (rows: true class, columns: predicted):", "",
              "| true \\ predicted | " + " | ".join(classes) + " |",
              "|---|" + "---:|" * len(classes)]
    for c, row in zip(classes, metrics["confusion_matrix"]):
        lines.append(f"| {c} | " + " | ".join(str(int(v)) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _read_metrics(m) -> dict:
    if isinstance(m, Mapping):
        return dict(m)
    path = Path(m)
    if path.is_dir():
        path = path / "metrics.json"
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ParameterError(f"cannot read metrics from {path}: {e}") from None


def _acc(value) -> float:
    return float("nan") if value is None else float(value)


def table1(metrics_s1, metrics_s1s2, *, paper: bool = False) -> str:
    """The paper's Table 1 layout: rows S1 and S1+S2, columns the classes and the macro average (in %).

    Parameters
    ----------
    metrics_s1, metrics_s1s2 : dict, or path to metrics.json (or to the directory holding it)
        Outputs of :func:`evaluate_model` for the two inputs (same classes).
    paper : bool
        Also list the paper's numbers (SOL-PMT test split) for comparison.

    Returns
    -------
    str — a Markdown table; classes absent from the evaluated subset show "—".
    """
    rows = []
    for expected, m in (("s1", metrics_s1), ("s1s2", metrics_s1s2)):
        m = _read_metrics(m)
        if m.get("input", expected) != expected:
            raise ParameterError(f"table1 expects the {expected!r} metrics in this position, got metrics of "
                                 f"input {m.get('input')!r}")
        rows.append((INPUT_LABELS[expected], m))
    classes = list(rows[0][1]["classes"])
    if list(rows[1][1]["classes"]) != classes:
        raise ParameterError(f"the two metrics have different classes: {classes} vs {rows[1][1]['classes']}")
    lines = ["| input | " + " | ".join(classes) + " | macro |", "|---|" + "---:|" * (len(classes) + 1)]
    for name, m in rows:
        accs = [_acc(m["per_class_accuracy"][c]) for c in classes]
        lines.append(f"| {name} | " + " | ".join(_pct(a) for a in accs)
                     + f" | {_pct(_acc(m['macro_accuracy']))} |")
    if paper:
        for key in ("s1", "s1s2"):
            ref = PAPER_TABLE1[key]
            vals = [ref.get(c) for c in classes]
            known = [v for v in vals if v is not None]
            lines.append(f"| {INPUT_LABELS[key]} (paper, SOL-PMT) | "
                         + " | ".join("—" if v is None else f"{v:.2f}" for v in vals)
                         + f" | {np.mean(known):.2f} |")
    absent = sorted({c for _, m in rows for c in m.get("absent_classes", [])})
    if absent:
        lines += ["", f"— : class absent from the evaluated subset ({', '.join(absent)}); macro averages the "
                      f"present classes."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------- training

@contextlib.contextmanager
def _seeded(seed: int, device: torch.device):
    """Seed torch inside a forked RNG state with deterministic algorithms; restore everything after."""
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        # CUDA needs CUBLAS_WORKSPACE_CONFIG for full determinism: warn there instead of failing.
        torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


def _open_features(features):
    from .store import FeatureFile
    if isinstance(features, FeatureFile):
        return contextlib.nullcontext(features)
    return FeatureFile(features)


def _labels(ff, idx, n_classes) -> np.ndarray:
    y = ff.labels[idx]
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"labels must lie in [0, {n_classes}) for classes {ff.classes}; found "
                        f"{sorted(set(y.tolist()) - set(range(n_classes)))}")
    return y


@torch.no_grad()
def _predict(net, x, batch_size):
    net.eval()
    return torch.cat([net(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def train_model(features, *, input: str, out_dir, seed: int = 0, device="auto",
                max_epochs: Optional[int] = None, progress: bool = True,
                config: Optional[TrainConfig] = None, threads: Optional[int] = None) -> LoadedModel:
    """Train the convnet on the training split, early-stopped on the validation split; save it.

    Parameters
    ----------
    features : str, Path or scatterxai.store.FeatureFile
        Features file with ``label`` and ``subset`` columns (rows "training" and "validation").
    input : {"s1", "s1s2"}
        First-order channels only, or all kept paths.
    out_dir : str or Path
        Model directory to write (``model.pt`` + ``config.json``).
    seed : int
        Seeds weight initialisation, dropout and batch order.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``.
    max_epochs : int, optional
        Overrides ``config.max_epochs``.
    progress : bool
        Print one line per epoch.
    config : TrainConfig, optional
        Defaults to ``TrainConfig()``.
    threads : int, optional
        Torch intra-op CPU threads during training (restored afterwards); default: torch's current
        setting (``OMP_NUM_THREADS``).  On a CPU shared with other jobs, 1 thread is often faster than
        several, whose barrier waits stall whenever one core is busy elsewhere; results can differ in the
        last bits between thread counts (config.json records the count).

    Returns
    -------
    LoadedModel — the best epoch's network, reloaded from ``out_dir``.
    """
    config = config or TrainConfig()
    if max_epochs is not None:
        config = dataclasses.replace(config, max_epochs=max_epochs)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ParameterError(f"seed must be an integer, got {seed!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                or threads < 1):
        raise ParameterError(f"threads must be a positive integer or None, got {threads!r}")
    prev_threads = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(int(threads))
        return _train(features, input=input, out_dir=out_dir, seed=int(seed), device=device,
                      progress=progress, config=config)
    finally:
        torch.set_num_threads(prev_threads)


def _train(features, *, input, out_dir, seed, device, progress, config) -> LoadedModel:
    dev = resolve_device(device)
    t_start = time.perf_counter()
    with _open_features(features) as ff:
        channels = input_channels(ff.table, input)
        classes = tuple(ff.classes)
        n_classes = len(classes)
        idx_tr, idx_va = ff.indices("training"), ff.indices("validation")
        y_tr, y_va = _labels(ff, idx_tr, n_classes), _labels(ff, idx_va, n_classes)
        mu = np.asarray(ff.mu, dtype=np.float64)[channels]
        x_tr = prepare_input(ff.load(idx_tr), channels, mu, config.c, device=dev)
        x_va = prepare_input(ff.load(idx_va), channels, mu, config.c, device=dev)
        scattering, table, n_paths = ff.config, ff.table, len(ff.table)
        features_path = os.path.abspath(ff.path)
    weights = class_weights(y_tr, n_classes)
    if (weights == 0).any():
        warnings.warn(f"classes {[c for c, w in zip(classes, weights) if w == 0]} have no training example; "
                      f"the network cannot learn them", RuntimeWarning, stacklevel=2)
    yt_tr, yt_va = torch.as_tensor(y_tr, device=dev), torch.as_tensor(y_va, device=dev)
    loss_fn = nn.CrossEntropyLoss(weight=torch.as_tensor(weights, dtype=torch.float32, device=dev))
    if progress:
        print(f"train {INPUT_LABELS[input]}: {len(channels)} channels, {len(idx_tr)} training / {len(idx_va)} "
              f"validation examples, device {dev}, {torch.get_num_threads()} threads", flush=True)

    history, best = [], None
    with _seeded(int(seed), dev):
        net = ConvNet(len(channels), n_classes).to(dev)
        opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        batches = torch.Generator().manual_seed(int(seed))
        stale = 0
        for epoch in range(1, config.max_epochs + 1):
            t0 = time.perf_counter()
            net.train()
            total_loss, correct = 0.0, 0
            for b in torch.randperm(len(y_tr), generator=batches).split(config.batch_size):
                b = b.to(dev)
                opt.zero_grad(set_to_none=True)
                out = net(x_tr[b])
                loss = loss_fn(out, yt_tr[b])
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
                opt.step()
                total_loss += loss.item() * len(b)
                correct += int((out.argmax(1) == yt_tr[b]).sum())
            val_out = _predict(net, x_va, 64)
            val_loss = float(loss_fn(val_out, yt_va))
            vm = classification_metrics(y_va, val_out.argmax(1).cpu().numpy(), classes)
            record = {"epoch": epoch, "train_loss": total_loss / len(y_tr), "train_accuracy": correct / len(y_tr),
                      "val_loss": val_loss, "val_accuracy": vm["overall_accuracy"],
                      "val_macro_accuracy": vm["macro_accuracy"], "seconds": time.perf_counter() - t0}
            history.append(record)
            score = (vm["macro_accuracy"], -val_loss)
            improved = best is None or score > best["score"]
            if improved:
                best = {"score": score, "epoch": epoch,
                        "state": {k: v.detach().clone() for k, v in net.state_dict().items()}}
                stale = 0
            else:
                stale += 1
            if progress:
                print(f"epoch {epoch:3d}/{config.max_epochs}  loss {record['train_loss']:.4f}  "
                      f"train acc {record['train_accuracy']:.3f}  |  val loss {val_loss:.4f}  "
                      f"acc {record['val_accuracy']:.3f}  macro {record['val_macro_accuracy']:.3f}  |  "
                      f"{record['seconds']:.1f} s{'  *' if improved else ''}", flush=True)
            if stale >= config.patience:
                break
    stop_reason = (f"no validation improvement for {config.patience} epochs" if stale >= config.patience
                   else f"reached max_epochs={config.max_epochs}")
    net.load_state_dict(best["state"])
    model_config = {
        "input": input, "input_description": INPUTS[input], "n_channels": int(len(channels)),
        "channels": channels, "n_paths": n_paths, "mu": mu, "c": config.c,
        "mu_source": "features /stats/mu (training-split mean of each coefficient's time average)",
        "classes": list(classes), "scattering": scattering.to_dict(),
        "paths": {k: np.asarray(getattr(table, k))[channels] for k in ("order", "lambda1_hz", "lambda2_hz",
                                                                       "n1", "n2")},
        "seed": int(seed), "train_config": dataclasses.asdict(config),
        "class_counts_training": np.bincount(y_tr, minlength=n_classes), "class_weights": weights,
        "n_training": int(len(y_tr)), "n_validation": int(len(y_va)),
        "best_epoch": best["epoch"], "epochs_run": len(history), "stop_reason": stop_reason,
        "best_val_macro_accuracy": best["score"][0], "best_val_loss": -best["score"][1],
        "history": history, "n_params": count_parameters(net), "features_file": features_path,
        "device": str(dev), "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
        "train_seconds": time.perf_counter() - t_start, "scatterxai_version": __version__,
    }
    save_model(net, out_dir, model_config)
    if progress:
        print(f"best epoch {best['epoch']} (val macro {best['score'][0]:.3f}, val loss {-best['score'][1]:.4f}); "
              f"{stop_reason}; model written to {out_dir}", flush=True)
    return load_model(out_dir, device=dev)


# ----------------------------------------------------------------------------------------- evaluation

def evaluate_model(features, *, model_dir, out_dir, subset: Optional[str] = "test", device="auto",
                   batch_size: int = 64) -> dict:
    """Accuracy of a trained model on one subset; writes ``out_dir/metrics.json`` and ``out_dir/metrics.md``.

    Parameters
    ----------
    features : str, Path or FeatureFile
        Features with a ``label`` column (and ``subset`` unless ``subset`` is None).
    model_dir : str or Path
    out_dir : str or Path
        Created if needed.
    subset : str or None
        "test" (default), "validation", "training", or None for every row.
    device : str
    batch_size : int

    Returns
    -------
    dict — the contents of metrics.json (``input``, ``n_params``, ``classes``, ``per_class_accuracy``,
    ``macro_accuracy``, ``overall_accuracy``, ``confusion_matrix``, ``subset``, ``n_examples``,
    ``class_counts``, ``absent_classes``, ``predictions``…; a class absent from the subset has accuracy
    NaN, written as null) plus ``markdown``, the Markdown report.
    """
    model = load_model(model_dir, device=device)
    with _open_features(features) as ff:
        model.check_compatible(ff)
        idx = ff.indices(subset)
        y = _labels(ff, idx, len(model.classes))
        logits = model.logits(ff.load(idx), batch_size=batch_size)
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
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "metrics.json", metrics)
    (out_dir / "metrics.md").write_text(markdown, encoding="utf-8")
    if metrics["absent_classes"]:
        warnings.warn(f"classes {metrics['absent_classes']} are absent from subset {subset!r}: their accuracy "
                      f"is NaN and the macro accuracy averages the other classes", RuntimeWarning, stacklevel=2)
    metrics["markdown"] = markdown
    return metrics
