"""The data-randomisation network (Adebayo et al. 2018): the same network trained to *memorise* permuted labels.

The test compares a method's maps of the trained network with its maps of a network that learned nothing
about the task but fits its training data: the labels are permuted, and the network is trained until it
has memorised them.  A network stopped long before that (a few epochs at chance-level training accuracy)
is close to its initialisation, which makes the test an easier, different one (model randomisation again).

Choices, so that memorising fits the demo's time budget:

* **a bounded subset** of the training notes (``max_notes``, spread over classes and instruments with
  :func:`scatterxai.data.split.spread_subset`), labels permuted among them (seeded; class counts unchanged);
* **no regularisation**: no dropout (p = 0), Adam without weight decay, no class weights, no early stopping —
  regularisation fights memorisation, which is the point here;
* **stop** at the first epoch after which the network, in eval mode, predicts ``target_accuracy`` (90 %)
  of its permuted training labels, or after ``max_epochs``; the training accuracy reached is recorded
  (``train_accuracy`` in config.json and in quality_settings.json), so a reader sees how far it got.

The network reads the trained model's input (same channels, μ and c) and has its architecture
(:class:`~scatterxai.model.ConvNet`); its model directory is an ordinary one (:func:`~scatterxai.model.load_model`)
whose config.json records ``labels_permuted``, the notes, the settings and the per-epoch history.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Optional, Union

import numpy as np
import torch
from torch import nn

from ..._util.fs import output_lock, prepare_output
from ..._util.log import logger
from ..._util.types import Device, PathLike
from ..._util.validate import check_float, check_int, check_positive_float, check_positive_int
from ...errors import DataError

if TYPE_CHECKING:
    from ...features.store import FeatureFile
    from ...model.directory import LoadedModel

__all__ = ["PermutedConfig", "train_permuted", "permuted_training_data"]


@dataclass(frozen=True)
class PermutedConfig:
    """Settings of :func:`train_permuted` (module docstring).

    Parameters
    ----------
    max_notes : int, optional
        Training notes memorised (spread over classes and instruments); None: all training notes.
    max_epochs : int
        Most epochs.
    target_accuracy : float
        Stop once the eval-mode accuracy on the permuted training labels reaches this.
    lr : float
        Adam learning rate (no weight decay).
    batch_size : int
    seed : int
        Seeds the choice of notes, the permutation, the initialisation and the batch order.
    """

    max_notes: Optional[int] = 160
    max_epochs: int = 60
    target_accuracy: float = 0.9
    lr: float = 1e-3
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self):
        if self.max_notes is not None:
            check_int("max_notes", self.max_notes, low=2)
        check_positive_int("max_epochs", self.max_epochs)
        check_float("target_accuracy", self.target_accuracy, low=0, high=1, low_open=True)
        check_positive_float("lr", self.lr)
        check_positive_int("batch_size", self.batch_size)
        check_int("seed", self.seed, low=0)


def permuted_training_data(features: Union[PathLike, FeatureFile], model: LoadedModel,
                           config: PermutedConfig) -> tuple:
    """(network inputs (n, C_in, T) float32 tensor, permuted labels (n,), features rows (n,)) of the
    memorised notes."""
    from ...data.split import spread_subset
    from ...model.train import labels_of, open_features
    with open_features(features) as ff:
        model.check_compatible(ff)
        rows = ff.indices("training")
        if rows.size < 2:
            raise DataError(f"{ff.path} has {rows.size} training rows; the permuted-label network needs at least 2")
        labels = labels_of(ff, rows, len(model.classes))
        if config.max_notes is not None and rows.size > config.max_notes:
            groups = np.asarray(ff.examples["instrument"])[rows] if "instrument" in ff.examples else None
            pick = spread_subset(labels, config.max_notes, groups=groups, seed=config.seed)
            rows, labels = rows[pick], labels[pick]
        x = model.prepare(ff.load(rows)).cpu()
    permuted = np.random.default_rng([config.seed, 0x5eed]).permutation(labels)
    return x, permuted, rows


@torch.no_grad()
def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128) -> float:
    net.eval()
    pred = torch.cat([net(x[i:i + batch_size]).argmax(1) for i in range(0, x.shape[0], batch_size)])
    return float((pred == y).float().mean())


def _memorise(x: torch.Tensor, y: np.ndarray, n_classes: int, config: PermutedConfig, dev) -> tuple:
    """Train a ConvNet on (x, y) until it fits ``config.target_accuracy`` of them; (net, history)."""
    from ...model.net import ConvNet
    x, yt = x.to(dev), torch.as_tensor(y, device=dev)
    history = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = ConvNet(x.shape[1], n_classes).to(dev)
        net.dropout.p = 0.0
        opt = torch.optim.Adam(net.parameters(), lr=config.lr)
        batches = torch.Generator().manual_seed(config.seed)
        for epoch in range(1, config.max_epochs + 1):
            t0 = time.perf_counter()
            net.train()
            total = 0.0
            for b in torch.randperm(len(y), generator=batches).split(config.batch_size):
                if b.numel() < 2:      # BatchNorm needs two examples in training mode
                    continue
                b = b.to(dev)
                opt.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(net(x[b]), yt[b])
                loss.backward()
                opt.step()
                total += loss.item() * len(b)
            acc = _accuracy(net, x, yt)
            history.append({"epoch": epoch, "train_loss": total / len(y), "train_accuracy": acc,
                            "seconds": time.perf_counter() - t0})
            if acc >= config.target_accuracy:
                break
    return net.eval(), history


def train_permuted(features: Union[PathLike, FeatureFile], model: LoadedModel, out_dir: PathLike, *,
                   config: Optional[PermutedConfig] = None, device: Device = "auto") -> LoadedModel:
    """Train the data-randomisation network of ``model`` (module docstring) into ``out_dir``.

    Parameters
    ----------
    features : str, Path or FeatureFile
        The features file ``model`` was trained on (its training rows).
    model : LoadedModel
        The trained model: input, architecture and classes of the new network.
    out_dir : str or Path
        Model directory written (replaced as a whole if it is one).
    config : PermutedConfig, optional
    device : str

    Returns
    -------
    LoadedModel
        Its config.json holds ``labels_permuted`` (True), ``train_accuracy`` (eval mode, on the permuted
        labels, after the last epoch), ``reached_target``, ``epochs_run``, ``n_training``, ``training_rows``,
        ``permuted_config`` and ``history``.
    """
    from ..._util.device import resolve_device
    from ...model.directory import REQUIRED_KEYS, check_replaceable, load_model, save_model
    config = config or PermutedConfig()
    dev = resolve_device(device)
    t0 = time.perf_counter()
    out_dir = prepare_output(out_dir, is_dir=True, create=False)
    check_replaceable(out_dir)           # refuse before training, not after
    x, y, rows = permuted_training_data(features, model, config)
    net, history = _memorise(x, y, len(model.classes), config, dev)
    acc = history[-1]["train_accuracy"]
    keep = [k for k in (*REQUIRED_KEYS, "input_description", "n_paths", "mu_source") if k in model.config]
    cfg = {k: model.config[k] for k in keep}
    cfg.update(labels_permuted=True, seed=config.seed, permuted_config=asdict(config), n_training=int(rows.size),
               training_rows=rows, train_accuracy=acc, reached_target=bool(acc >= config.target_accuracy),
               epochs_run=len(history), history=history, dropout=0.0, weight_decay=0.0,
               source_model_checksum=model.checksum, train_seconds=time.perf_counter() - t0,
               torch_threads=torch.get_num_threads())
    with output_lock(out_dir, what="model directory"):
        save_model(net, out_dir, cfg)
    logger.info("permuted-label network: %d notes, %d epochs, training accuracy %.1f %% (target %.0f %%), %.1f s",
                rows.size, len(history), 100 * acc, 100 * config.target_accuracy, time.perf_counter() - t0)
    return load_model(out_dir, device=dev)
