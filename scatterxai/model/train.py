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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ContextManager, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from .. import __version__
from .._util.device import cpu_description, resolve_device
from .._util.log import logger
from .._util.outputs import claim_output
from .._util.types import Device, Indices, PathLike
from .._util.validate import check_positive_int, check_seed
from ..errors import DataError, ParameterError
from ..scattering.normalize import LOG_C
from ..task import INPUT_LABELS, INPUTS
from .arch import Arch
from .batchnorm import recalibrate
from .directory import LoadedModel, load_model, prepare_input, save_model
from .finetune import InitSpec, Pretrained, as_init
from .guidance import n_recordings, split_guidance
from .metrics import class_weights, classification_metrics
from .net import MIN_FRAMES, ConvNet, count_parameters

if TYPE_CHECKING:
    from ..features.store import FeatureFile
    from ..scattering.config import PathTable

__all__ = ["TrainConfig", "input_channels", "class_weights", "train_model", "open_features", "labels_of", "Data",
           "load_rows", "rows_mu", "fit", "model_config", "torch_threads", "check_frames", "with_epochs"]


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
    bn_recalibrate : bool or {"auto", "on", "off"}
        After each epoch, recompute every BatchNorm's running statistics on the whole training split
        (:func:`scatterxai.model.batchnorm.recalibrate`) instead of keeping the exponential average of the
        epoch's last batches (with 42 training notes, two batches per epoch).  ``"auto"`` (default): on for
        small studies (:func:`scatterxai.model.guidance.is_small`), off otherwise (the paper's training);
        training records the resolved value.

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
    bn_recalibrate: Union[bool, str] = "auto"

    def __post_init__(self):
        for name in ("batch_size", "max_epochs", "patience"):
            check_positive_int(name, getattr(self, name))
        for name in ("lr", "grad_clip", "c"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ParameterError(f"{name} must be a positive number, got {v!r}")
        if not (isinstance(self.weight_decay, (int, float)) and self.weight_decay >= 0):
            raise ParameterError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        recal = {"on": True, "off": False}.get(self.bn_recalibrate, self.bn_recalibrate)
        if recal not in (True, False, "auto"):
            raise ParameterError(f"bn_recalibrate must be True, False, 'on', 'off' or 'auto', got "
                                 f"{self.bn_recalibrate!r}")
        object.__setattr__(self, "bn_recalibrate", recal)

    def resolved(self, n_recordings: int) -> TrainConfig:
        """The configuration with ``bn_recalibrate="auto"`` decided for a study of ``n_recordings``."""
        if self.bn_recalibrate != "auto":
            return self
        from .guidance import is_small
        return dataclasses.replace(self, bn_recalibrate=is_small(n_recordings))


# ----------------------------------------------------------------------------------------- pure helpers

def input_channels(table: PathTable, input: str) -> np.ndarray:
    """Indices into the path table of the network's input channels: ``"s1"`` → order 1, ``"s1s2"`` → all."""
    if input == "s1":
        return np.asarray(table.s1, dtype=np.int64)
    if input == "s1s2":
        return np.arange(len(table), dtype=np.int64)
    raise ParameterError(f"input must be one of {sorted(INPUTS)}, got {input!r}")


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


def train_model(features: Union[PathLike, FeatureFile], *, input: Optional[str], out_dir: PathLike, seed: int = 0,
                device: Device = "auto",
                max_epochs: Optional[int] = None, progress: bool = True,
                config: Optional[TrainConfig] = None, threads: Optional[int] = None,
                permute_labels: bool = False, arch: Union[None, str, Arch] = None,
                init: Union[None, PathLike, InitSpec] = None, overwrite: bool = False) -> LoadedModel:
    """Train the convnet on the training split, early-stopped on the validation split; save it.

    Parameters
    ----------
    features : str, Path or scatterxai.features.FeatureFile
        Features file with ``label`` and ``subset`` columns (rows "training" and "validation").
    input : {"s1", "s1s2"} or None
        First-order channels only, or all kept paths; None only with ``init`` (the pretrained input).
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
    arch : str or Arch, optional
        Architecture preset (:mod:`scatterxai.model.arch`): ``"paper"`` (default) or ``"small"``.
    init : str or InitSpec, optional
        Fine-tune: start from this pretrained model directory (:mod:`scatterxai.model.finetune`; its
        architecture and input are kept); recorded in config.json (``init``).
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
    config = with_epochs(config, max_epochs)
    seed = check_seed("seed", seed)
    if threads is not None:
        threads = check_positive_int("threads", threads)
    init = as_init(init)
    with claim_model_dir(out_dir, features, init, overwrite) as claim, torch_threads(threads):
        # replaced as a whole by save_model (the output rule: README)
        return _train(features, input=input, out_dir=claim.path, seed=seed, device=device, progress=progress,
                      config=config, permute_labels=bool(permute_labels), arch=arch, init=init)


def claim_model_dir(out_dir: PathLike, features: Union[PathLike, FeatureFile], init: Optional[InitSpec],
                    overwrite: bool) -> contextlib.AbstractContextManager:
    """The output rule for a model directory (:func:`scatterxai._util.outputs.claim_output`): the features
    and the pretrained model of ``init`` are its inputs; :func:`save_model` replaces it as a whole."""
    inputs = {"features input": features, "pretrained model": None if init is None else init.model_dir}
    return claim_output(out_dir, kind="model", inputs=inputs, swap=False, overwrite=overwrite)


def with_epochs(config: Optional[TrainConfig], max_epochs: Optional[int]) -> TrainConfig:
    config = config or TrainConfig()
    return config if max_epochs is None else dataclasses.replace(config, max_epochs=max_epochs)


@contextlib.contextmanager
def torch_threads(threads: Optional[int]) -> Iterator[None]:
    """Torch's intra-op threads set to ``threads`` (None: unchanged) for the block, restored after."""
    prev = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        yield
    finally:
        torch.set_num_threads(prev)


@dataclass
class Data:
    """What one training run reads from a features file: the input of its training and validation rows."""

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
    rows_tr: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rows_va: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    mu_source: str = "features /stats/mu (training-split mean of each coefficient's time average)"


def check_frames(ff: FeatureFile) -> None:
    """DataError unless the features have enough time frames for the network's two poolings."""
    if ff.table.n_frames < MIN_FRAMES:
        raise DataError(f"{ff.path} has {ff.table.n_frames} time frame(s) per coefficient; the convnet pools "
                        f"twice by 2 and needs at least {MIN_FRAMES}: extract with a smaller T (T <= N/"
                        f"{MIN_FRAMES}, e.g. ScatteringConfig(N={ff.config.N}, J={ff.config.J}, "
                        f"T={max(1, ff.config.N // 32)}))")


def load_rows(ff: FeatureFile, channels: np.ndarray, rows_tr: Indices, rows_va: Indices, mu: np.ndarray, c: float,
              dev: torch.device, *, mu_source: Optional[str] = None) -> Data:
    """The network input and labels of given training and validation rows, normalised with ``mu``.

    Parameters
    ----------
    ff : FeatureFile
    channels : array of int [shape=(C_in,)]
        Input channels (:func:`input_channels`).
    rows_tr, rows_va : array of int
        Rows of the training and validation parts.
    mu : array [shape=(C_in,)]
        Normalisation mean of the input channels.
    c : float
    dev : torch.device
    mu_source : str, optional
        Where μ comes from (recorded in config.json).
    """
    check_frames(ff)
    classes = tuple(ff.classes)
    rows_tr, rows_va = np.asarray(rows_tr, np.int64), np.asarray(rows_va, np.int64)
    y_tr, y_va = labels_of(ff, rows_tr, len(classes)), labels_of(ff, rows_va, len(classes))
    x = []
    for subset, idx in (("training", rows_tr), ("validation", rows_va)):
        try:
            x.append(prepare_input(ff.rows(idx), channels, mu, c, device=dev))   # read by chunk
        except ParameterError as e:
            raise DataError(f"{ff.path}, {subset} rows: {e}") from None
    data = Data(channels, classes, x[0], y_tr, x[1], y_va, np.asarray(mu, np.float64), ff.config, ff.table,
                len(ff.table), os.path.abspath(ff.path), rows_tr, rows_va)
    if mu_source:
        data.mu_source = mu_source
    return data


def rows_mu(ff: FeatureFile, rows: Indices, channels: np.ndarray, *, chunk: int = 64) -> np.ndarray:
    """μ of the input channels over ``rows`` (mean of each coefficient's time average) [shape=(C_in,)];
    rows flagged ``augmented`` are left out (μ describes the recordings, not their augmented copies)."""
    rows = np.sort(np.asarray(rows, np.int64))
    if "augmented" in ff.examples:
        kept = rows[np.asarray(ff.examples["augmented"])[rows] == 0]
        rows = kept if kept.size else rows
    if rows.size == 0:
        raise DataError(f"{ff.path}: no training rows to compute the normalisation mean μ from")
    acc = np.zeros(len(channels), np.float64)
    for i in range(0, rows.size, chunk):
        acc += ff.load(rows[i:i + chunk])[:, channels].mean(axis=2, dtype=np.float64).sum(axis=0)
    return acc / rows.size


def _epoch(net, opt, loss_fn, data: Data, yt_tr, batches, config: TrainConfig, dev, frozen=()) -> tuple:
    """One pass over the training split; (mean loss, accuracy)."""
    net.train()
    for name in frozen:   # frozen BatchNorms keep their pretrained running statistics
        getattr(net, name).eval()
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
    if config.bn_recalibrate:
        recalibrate(net, data.x_tr, frozen)
    return total_loss / len(data.y_tr), correct / len(data.y_tr)


def permuted_labels(y_tr, y_va, seed: int):
    """Labels shuffled within each split (training, validation) by a generator seeded with ``seed``."""
    rng = np.random.default_rng([int(seed), 0x5eed])
    return rng.permutation(y_tr), rng.permutation(y_va)


def _log_epoch(record: dict, config: TrainConfig, improved: bool) -> None:
    logger.info("epoch %3d/%d  loss %.4f  train acc %.3f  |  val loss %.4f  acc %.3f  macro %.3f  |  %.1f s%s",
                record["epoch"], config.max_epochs, record["train_loss"], record["train_accuracy"],
                record["val_loss"], record["val_accuracy"], record["val_macro_accuracy"], record["seconds"],
                "  *" if improved else "")


def fit(data: Data, weights: np.ndarray, *, seed: int, dev: torch.device, config: TrainConfig, progress: bool,
        keep_last: bool = False, arch: Union[None, str, Arch] = None, init: Optional[Pretrained] = None) -> tuple:
    """Epochs with early stopping (``keep_last``: all ``max_epochs`` epochs, the last one kept).

    Returns (network with the kept weights, history, best, stop reason, frozen module names).
    """
    yt_tr, yt_va = torch.as_tensor(data.y_tr, device=dev), torch.as_tensor(data.y_va, device=dev)
    loss_fn = nn.CrossEntropyLoss(weight=torch.as_tensor(weights, dtype=torch.float32, device=dev))
    history, best, frozen = [], None, []
    with _seeded(int(seed), dev):
        net = ConvNet(len(data.channels), len(data.classes), arch=init.arch if init is not None else arch)
        if init is not None:
            frozen = init.apply(net)
        net = net.to(dev)
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=config.lr,
                                weight_decay=config.weight_decay)
        batches = torch.Generator().manual_seed(int(seed))
        stale = 0
        for epoch in range(1, config.max_epochs + 1):
            t0 = time.perf_counter()
            train_loss, train_acc = _epoch(net, opt, loss_fn, data, yt_tr, batches, config, dev, frozen)
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
                _log_epoch(record, config, improved)
            if stale >= config.patience and not keep_last:
                break
    stop_reason = (f"no validation improvement for {config.patience} epochs"
                   if stale >= config.patience and not keep_last
                   else f"reached max_epochs={config.max_epochs}" + (" (last epoch kept)" if keep_last else ""))
    net.load_state_dict(best["state"])
    return net, history, best, stop_reason, frozen


def model_config(data: Data, net: ConvNet, *, input: str, seed: int, config: TrainConfig, weights: np.ndarray,
                 history: list, best: dict, stop_reason: str, dev: torch.device, t_start: float,
                 init: Optional[Pretrained] = None, frozen: Sequence[str] = (), **extra: Any) -> dict:
    """The config.json of a trained network (everything :func:`load_model` and a reader need)."""
    channels, n_classes = data.channels, len(data.classes)
    out = {
        "input": input, "input_description": INPUTS[input], "n_channels": int(len(channels)),
        "channels": channels, "n_paths": data.n_paths, "mu": data.mu, "c": config.c, "mu_source": data.mu_source,
        "classes": list(data.classes), "scattering": data.scattering.to_dict(),
        "paths": {k: np.asarray(getattr(data.table, k))[channels] for k in ("order", "lambda1_hz", "lambda2_hz",
                                                                            "n1", "n2")},
        "arch": net.arch.to_dict(), "seed": int(seed), "train_config": dataclasses.asdict(config),
        "class_counts_training": np.bincount(data.y_tr, minlength=n_classes), "class_weights": weights,
        "class_counts_validation": np.bincount(data.y_va, minlength=n_classes),
        "n_training": int(len(data.y_tr)), "n_validation": int(len(data.y_va)),
        "best_epoch": best["epoch"], "epochs_run": len(history), "stop_reason": stop_reason,
        "best_val_macro_accuracy": best["score"][0], "best_val_loss": -best["score"][1],
        "history": history, "n_params": count_parameters(net), "features_file": data.features_path,
        "init": None if init is None else init.record(frozen),
        "device": str(dev), "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
        "cpu": cpu_description(), "train_seconds": time.perf_counter() - t_start, "scatterxai_version": __version__,
    }
    out.update(extra)
    return out


def _train(features, *, input, out_dir, seed, device, progress, config, permute_labels=False, arch=None,
           init: Optional[InitSpec] = None) -> LoadedModel:
    dev = resolve_device(device)
    t_start = time.perf_counter()
    with open_features(features) as ff:
        config = config.resolved(n_recordings(ff))
        pre = None if init is None else Pretrained(init, ff, input, ff.classes)
        input = pre.input if pre is not None else _check_input(input)
        channels = input_channels(ff.table, input)
        rows_tr, rows_va = ff.indices("training"), ff.indices("validation")
        mu, mu_source = np.asarray(ff.mu, dtype=np.float64)[channels], None
        if pre is not None:
            mu, mu_source = pre.mu(mu)
        data = load_rows(ff, channels, rows_tr, rows_va, mu, config.c, dev, mu_source=mu_source)
        split_guidance(ff, {"training": rows_tr, "validation": rows_va, "test": _test_rows(ff)}, arch=arch,
                       init=pre)
    if permute_labels:
        data.y_tr, data.y_va = permuted_labels(data.y_tr, data.y_va, seed)
    weights = class_weights(data.y_tr, len(data.classes))
    if (weights == 0).any():
        warnings.warn(f"classes {[c for c, w in zip(data.classes, weights) if w == 0]} have no training "
                      f"example; the network cannot learn them", RuntimeWarning, stacklevel=3)
    if progress:
        logger.info("train %s: %d channels, %d training / %d validation examples, device %s, %d threads",
                    INPUT_LABELS[input], len(data.channels), len(data.y_tr), len(data.y_va), dev,
                    torch.get_num_threads())
    net, history, best, stop_reason, frozen = fit(data, weights, seed=seed, dev=dev, config=config,
                                                  progress=progress, keep_last=permute_labels, arch=arch, init=pre)
    cfg = model_config(data, net, input=input, seed=seed, config=config, weights=weights, history=history,
                       best=best, stop_reason=stop_reason, dev=dev, t_start=t_start, init=pre, frozen=frozen,
                       labels_permuted=bool(permute_labels))
    save_model(net, out_dir, cfg)
    if progress:
        logger.info("best epoch %d (val macro %.3f, val loss %.4f); %s; model written to %s", best["epoch"],
                    best["score"][0], -best["score"][1], stop_reason, out_dir)
    return load_model(out_dir, device=dev)


def _check_input(input: Optional[str]) -> str:
    if input not in INPUTS:
        raise ParameterError(f"input must be one of {sorted(INPUTS)}, got {input!r}")
    return input


def _test_rows(ff: FeatureFile) -> np.ndarray:
    sub = np.asarray(ff.examples.get("subset", np.array([], dtype=object))).astype(str)
    return np.flatnonzero(sub == "test")
