"""Training of the convnet on stored scattering features.

:func:`train_model` — class-weighted cross-entropy, AdamW, gradient-norm clipping, early stopping on the
validation split (:class:`TrainConfig`); writes a model directory (:mod:`scatterxai.model.directory`).

Same seed and same data give the same weights and metrics: the global torch RNG is seeded inside a forked
RNG state (the caller's state is restored), batches are drawn from a dedicated generator, and
deterministic algorithms are switched on for the duration of training (on CPU results are then also
independent of run-to-run scheduling; they may still depend on the number of threads and the CPU's
instruction set, which config.json records).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, ContextManager, Optional, Union

import numpy as np
import torch
from torch import nn

from .. import __version__
from .._util.device import resolve_device
from .._util.log import logger
from .._util.outputs import claim_output
from .._util.types import Device, Indices, PathLike
from .._util.validate import check_positive_int, check_seed
from ..errors import DataError, ParameterError
from ..scattering.normalize import LOG_C
from ..task import INPUT_LABELS, INPUTS
from .directory import LoadedModel, load_model, prepare_input, save_model
from .metrics import classification_metrics
from .net import MIN_FRAMES, ConvNet, count_parameters

if TYPE_CHECKING:
    from ..features.store import FeatureFile
    from ..scattering.config import PathTable

__all__ = ["TrainConfig", "input_channels", "class_weights", "train_model", "open_features", "labels_of"]


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
            check_positive_int(name, getattr(self, name))
        for name in ("lr", "grad_clip", "c"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ParameterError(f"{name} must be a positive number, got {v!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ParameterError(f"weight_decay must be >= 0, got {self.weight_decay!r}")


# ----------------------------------------------------------------------------------------- pure helpers

def input_channels(table: PathTable, input: str) -> np.ndarray:
    """Indices into the path table of the network's input channels: ``"s1"`` → order 1, ``"s1s2"`` → all."""
    if input == "s1":
        return np.asarray(table.s1, dtype=np.int64)
    if input == "s1s2":
        return np.arange(len(table), dtype=np.int64)
    raise ParameterError(f"input must be one of {sorted(INPUTS)}, got {input!r}")


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Loss weights w_c = max_k n_k / n_c [shape=(n_classes,)]; 0 for classes with no example."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).astype(np.float64)
    with np.errstate(divide="ignore"):
        w = np.where(counts > 0, counts.max() / counts, 0.0)
    return w


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


def open_features(features: Union[PathLike, FeatureFile]) -> ContextManager[FeatureFile]:
    """A :class:`~scatterxai.features.FeatureFile` context from a path (or the open file itself)."""
    from ..features.store import FeatureFile
    if isinstance(features, FeatureFile):
        return contextlib.nullcontext(features)
    return FeatureFile(features)


def labels_of(ff: FeatureFile, idx: Indices, n_classes: int) -> np.ndarray:
    """Labels of rows ``idx`` of a features file, checked to index ``n_classes`` classes."""
    y = ff.labels[idx]
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(f"labels must lie in [0, {n_classes}) for classes {ff.classes}; found "
                        f"{sorted(set(y.tolist()) - set(range(n_classes)))}")
    return y


@torch.no_grad()
def _predict(net, x, batch_size):
    net.eval()
    return torch.cat([net(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])


def train_model(features: Union[PathLike, FeatureFile], *, input: str, out_dir: PathLike, seed: int = 0,
                device: Device = "auto",
                max_epochs: Optional[int] = None, progress: bool = True,
                config: Optional[TrainConfig] = None, threads: Optional[int] = None,
                permute_labels: bool = False, overwrite: bool = False) -> LoadedModel:
    """Train the convnet on the training split, early-stopped on the validation split; save it.

    Parameters
    ----------
    features : str, Path or scatterxai.features.FeatureFile
        Features file with ``label`` and ``subset`` columns (rows "training" and "validation").
    input : {"s1", "s1s2"}
        First-order channels only, or all kept paths.
    out_dir : str or Path
        Model directory to write (``model.pt`` + ``config.json``), replaced as a whole when training ends
        (an interrupted training leaves it unchanged); at most one missing folder above it is created.  One
        process at a time writes it (the lock ``MODEL_DIR.lock``).
    seed : int
        Seeds weight initialisation, dropout and batch order; in [0, 2**32).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``.
    max_epochs : int, optional
        Overrides ``config.max_epochs``.
    progress : bool
        Log one line per epoch (at INFO level).
    config : TrainConfig, optional
        Defaults to ``TrainConfig()``.
    threads : int, optional
        Torch intra-op CPU threads during training (restored afterwards); default: torch's current
        setting (``OMP_NUM_THREADS``).  On a CPU shared with other jobs, 1 thread is often faster than
        several, whose barrier waits stall whenever one core is busy elsewhere; results can differ in the
        last bits between thread counts (config.json records the count).
    permute_labels : bool
        Data-randomisation control (Adebayo et al. 2018): shuffle the labels within the training split and
        within the validation split (seeded by ``seed``; class counts, hence class weights, unchanged),
        train exactly ``max_epochs`` epochs and keep the last one (early stopping on shuffled validation
        labels would pick an arbitrary epoch).  Everything else (data, initialisation, batch order) is as
        without it; config.json records ``labels_permuted``.
    overwrite : bool
        Replace an output folder of another kind that scatterxai wrote (a model directory is always
        replaced; a folder scatterxai did not write never is).

    Returns
    -------
    LoadedModel — the best epoch's network, reloaded from ``out_dir``.

    Examples
    --------
    ``toy.features`` is a features file with training and validation rows (see ``tests/test_examples.py``):

    >>> from scatterxai.model import load_model, train_model
    >>> model = train_model(toy.features, input="s1s2", out_dir=tmp / "model", max_epochs=2, device="cpu",
    ...                     progress=False)
    >>> model.classes
    ('vibrato', 'trill', 'tremolo', 'bisbigliando', 'flatterzunge')
    >>> model.net.n_channels, len(model.config["history"])          # every S1+S2 path; two epochs
    (249, 2)
    >>> load_model(tmp / "model").checksum == model.checksum        # the saved weights
    True
    """
    config = config or TrainConfig()
    if max_epochs is not None:
        config = dataclasses.replace(config, max_epochs=max_epochs)
    seed = check_seed("seed", seed)
    if threads is not None:
        threads = check_positive_int("threads", threads)
    prev_threads = torch.get_num_threads()
    with claim_output(out_dir, kind="model", inputs={"features input": features}, swap=False,
                      overwrite=overwrite) as claim:
        out_dir = claim.path   # replaced as a whole by save_model (the output rule: README)
        try:
            if threads is not None:
                torch.set_num_threads(threads)
            return _train(features, input=input, out_dir=out_dir, seed=seed, device=device,
                          progress=progress, config=config, permute_labels=bool(permute_labels))
        finally:
            torch.set_num_threads(prev_threads)


@dataclass
class _Data:
    """What training reads from a features file."""

    channels: np.ndarray
    classes: tuple
    x_tr: torch.Tensor
    y_tr: np.ndarray
    x_va: torch.Tensor
    y_va: np.ndarray
    mu: np.ndarray
    scattering: object
    table: object
    n_paths: int
    features_path: str


def _load_data(features, input: str, c: float, dev) -> _Data:
    with open_features(features) as ff:
        if ff.table.n_frames < MIN_FRAMES:
            raise DataError(f"{ff.path} has {ff.table.n_frames} time frame(s) per coefficient; the convnet pools "
                            f"twice by 2 and needs at least {MIN_FRAMES}: extract with a smaller T (T <= N/"
                            f"{MIN_FRAMES}, e.g. ScatteringConfig(N={ff.config.N}, J={ff.config.J}, "
                            f"T={max(1, ff.config.N // 32)}))")
        channels = input_channels(ff.table, input)
        classes = tuple(ff.classes)
        idx_tr, idx_va = ff.indices("training"), ff.indices("validation")
        y_tr, y_va = labels_of(ff, idx_tr, len(classes)), labels_of(ff, idx_va, len(classes))
        mu = np.asarray(ff.mu, dtype=np.float64)[channels]
        x = []
        for subset, idx in (("training", idx_tr), ("validation", idx_va)):
            try:
                x.append(prepare_input(ff.rows(idx), channels, mu, c, device=dev))   # read by chunk
            except ParameterError as e:
                raise DataError(f"{ff.path}, {subset} rows: {e}") from None
        x_tr, x_va = x
        return _Data(channels, classes, x_tr, y_tr, x_va, y_va, mu, ff.config, ff.table, len(ff.table),
                     os.path.abspath(ff.path))


def _epoch(net, opt, loss_fn, data: _Data, yt_tr, batches, config: TrainConfig, dev) -> tuple:
    """One pass over the training split; (mean loss, accuracy)."""
    net.train()
    total_loss, correct = 0.0, 0
    for b in torch.randperm(len(data.y_tr), generator=batches).split(config.batch_size):
        b = b.to(dev)
        opt.zero_grad(set_to_none=True)
        out = net(data.x_tr[b])
        loss = loss_fn(out, yt_tr[b])
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        opt.step()
        total_loss += loss.item() * len(b)
        correct += int((out.argmax(1) == yt_tr[b]).sum())
    return total_loss / len(data.y_tr), correct / len(data.y_tr)


def permuted_labels(y_tr, y_va, seed: int):
    """Labels shuffled within each split (training, validation) by a generator seeded with ``seed``."""
    rng = np.random.default_rng([int(seed), 0x5eed])
    return rng.permutation(y_tr), rng.permutation(y_va)


def _fit(data: _Data, weights, *, seed, dev, config: TrainConfig, progress: bool, keep_last: bool = False):
    """Epochs with early stopping (``keep_last``: all ``max_epochs`` epochs, the last one kept); returns
    (network with the kept weights, history, best, stop reason)."""
    yt_tr, yt_va = torch.as_tensor(data.y_tr, device=dev), torch.as_tensor(data.y_va, device=dev)
    loss_fn = nn.CrossEntropyLoss(weight=torch.as_tensor(weights, dtype=torch.float32, device=dev))
    history, best = [], None
    with _seeded(int(seed), dev):
        net = ConvNet(len(data.channels), len(data.classes)).to(dev)
        opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        batches = torch.Generator().manual_seed(int(seed))
        stale = 0
        for epoch in range(1, config.max_epochs + 1):
            t0 = time.perf_counter()
            train_loss, train_acc = _epoch(net, opt, loss_fn, data, yt_tr, batches, config, dev)
            val_out = _predict(net, data.x_va, 64)
            val_loss = float(loss_fn(val_out, yt_va))
            vm = classification_metrics(data.y_va, val_out.argmax(1).cpu().numpy(), data.classes)
            record = {"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc,
                      "val_loss": val_loss, "val_accuracy": vm["overall_accuracy"],
                      "val_macro_accuracy": vm["macro_accuracy"], "seconds": time.perf_counter() - t0}
            history.append(record)
            score = (vm["macro_accuracy"], -val_loss)
            improved = best is None or score > best["score"] or keep_last
            if improved:
                best = {"score": score, "epoch": epoch,
                        "state": {k: v.detach().clone() for k, v in net.state_dict().items()}}
                stale = 0
            else:
                stale += 1
            if progress:
                logger.info("epoch %3d/%d  loss %.4f  train acc %.3f  |  val loss %.4f  acc %.3f  macro %.3f  |  "
                            "%.1f s%s", epoch, config.max_epochs, record["train_loss"], record["train_accuracy"],
                            val_loss, record["val_accuracy"], record["val_macro_accuracy"], record["seconds"],
                            "  *" if improved else "")
            if stale >= config.patience and not keep_last:
                break
    stop_reason = (f"no validation improvement for {config.patience} epochs"
                   if stale >= config.patience and not keep_last
                   else f"reached max_epochs={config.max_epochs}" + (" (last epoch kept)" if keep_last else ""))
    net.load_state_dict(best["state"])
    return net, history, best, stop_reason


def _train(features, *, input, out_dir, seed, device, progress, config, permute_labels=False) -> LoadedModel:
    dev = resolve_device(device)
    t_start = time.perf_counter()
    data = _load_data(features, input, config.c, dev)
    if permute_labels:
        data.y_tr, data.y_va = permuted_labels(data.y_tr, data.y_va, seed)
    n_classes = len(data.classes)
    weights = class_weights(data.y_tr, n_classes)
    if (weights == 0).any():
        warnings.warn(f"classes {[c for c, w in zip(data.classes, weights) if w == 0]} have no training "
                      f"example; the network cannot learn them", RuntimeWarning, stacklevel=3)
    if progress:
        logger.info("train %s: %d channels, %d training / %d validation examples, device %s, %d threads",
                    INPUT_LABELS[input], len(data.channels), len(data.y_tr), len(data.y_va), dev,
                    torch.get_num_threads())
    net, history, best, stop_reason = _fit(data, weights, seed=seed, dev=dev, config=config, progress=progress,
                                           keep_last=permute_labels)
    channels = data.channels
    model_config = {
        "input": input, "input_description": INPUTS[input], "n_channels": int(len(channels)),
        "channels": channels, "n_paths": data.n_paths, "mu": data.mu, "c": config.c,
        "mu_source": "features /stats/mu (training-split mean of each coefficient's time average)",
        "classes": list(data.classes), "scattering": data.scattering.to_dict(),
        "paths": {k: np.asarray(getattr(data.table, k))[channels] for k in ("order", "lambda1_hz", "lambda2_hz",
                                                                            "n1", "n2")},
        "seed": int(seed), "train_config": dataclasses.asdict(config), "labels_permuted": bool(permute_labels),
        "class_counts_training": np.bincount(data.y_tr, minlength=n_classes), "class_weights": weights,
        "n_training": int(len(data.y_tr)), "n_validation": int(len(data.y_va)),
        "best_epoch": best["epoch"], "epochs_run": len(history), "stop_reason": stop_reason,
        "best_val_macro_accuracy": best["score"][0], "best_val_loss": -best["score"][1],
        "history": history, "n_params": count_parameters(net), "features_file": data.features_path,
        "device": str(dev), "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
        "train_seconds": time.perf_counter() - t_start, "scatterxai_version": __version__,
    }
    save_model(net, out_dir, model_config)
    if progress:
        logger.info("best epoch %d (val macro %.3f, val loss %.4f); %s; model written to %s", best["epoch"],
                    best["score"][0], -best["score"][1], stop_reason, out_dir)
    return load_model(out_dir, device=dev)
