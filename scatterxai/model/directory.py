"""The weights-only model directory of a trained convnet, and the network input it expects.

A model directory holds two files:

* ``model.pt`` — the ``state_dict`` written by :func:`torch.save`; read back with
  ``torch.load(..., weights_only=True)``, so loading never executes code from the file;
* ``config.json`` — everything needed to rebuild and apply the network: input selection (``"s1"`` or
  ``"s1s2"``), the selected channels (indices into the features' path table) and their path metadata,
  normalisation μ and c, class names, scattering parameters, seed, training configuration and history.

The input of the network is ``log_normalize(S[:, channels], mu, c)`` (:func:`prepare_input`), computed in
float64 then cast to float32 so that training, evaluation and explanation see bit-identical inputs.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Union

import numpy as np
import torch

from .. import __version__
from .._util.device import resolve_device
from .._util.fs import atomic_dir, bytes_sha256, file_sha256, prepare_output
from .._util.jsonio import write_json
from .._util.log import logger
from .._util.memory import check_memory
from .._util.types import Device, PathLike
from .._util.validate import check_choice, check_positive_int
from ..errors import ModelError, ParameterError
from ..scattering.config import ScatteringConfig
from ..scattering.normalize import LOG_C, check_log_params, check_raw, log_normalize
from ..task import PATH_FIELDS
from .net import ConvNet, count_parameters

if TYPE_CHECKING:
    from ..features.store import FeatureFile

__all__ = ["prepare_input", "save_model", "load_model", "LoadedModel", "check_replaceable", "write_model_files",
           "WEIGHTS_FILE", "CONFIG_FILE"]

WEIGHTS_FILE = "model.pt"
#: what a class mismatch between features and a model can be fixed with
_EXTRACT_HINT = ("extract the features again naming the model's classes (scatterxai extract --classes NAMES: "
                 "integer labels are indices into NAMES, text labels must be among them)")
CONFIG_FILE = "config.json"
#: keys config.json must hold for :func:`load_model` to rebuild and apply a network
REQUIRED_KEYS = ("input", "n_channels", "channels", "mu", "c", "classes", "scattering", "paths")


def prepare_input(S_raw: Union[np.ndarray, torch.Tensor], channels: np.ndarray, mu: np.ndarray, c: float = LOG_C, *,
                  device: Device = "cpu", chunk: int = 256) -> torch.Tensor:
    """Network input from raw scattering features: channel selection then log compression.

    Parameters
    ----------
    S_raw : np.ndarray or torch.Tensor [shape=(K, C, T)]
        Raw (not log-normalised) scattering coefficients of all kept paths (C = len(path table)).
    channels : array of int [shape=(C_in,)]
        Indices of the input channels among the C paths.
    mu : array [shape=(C_in,)]
        Training-split mean of each input channel's time average.
    c : float
        Constant of the compression log1p(S / (c·μ + 1e-8)).
    device : str or torch.device
    chunk : int
        Examples read and normalised at once (the float64 intermediate costs 8·chunk·C_in·T bytes); a lazy
        view of a file's rows (:meth:`scatterxai.features.FeatureFile.rows`) is read that many at a time, so
        that only the result is held in memory (refused with a clear error when it would not fit).

    Returns
    -------
    torch.Tensor [shape=(K, C_in, T), float32] on ``device``.
    """
    if isinstance(S_raw, torch.Tensor):
        S_raw = S_raw.detach().cpu().numpy()
    if not hasattr(S_raw, "read_rows"):   # a lazy view of a file's rows (FeatureFile.rows) is read by chunk
        S_raw = np.asarray(S_raw)
    channels = np.asarray(channels, dtype=np.int64)
    if S_raw.ndim != 3:
        raise ParameterError(f"features must have shape (K, C, T), got {S_raw.shape}")
    if S_raw.dtype.kind != "f":
        raise ParameterError(f"features must be raw scattering coefficients (float32), got dtype {S_raw.dtype}")
    if channels.size and (channels.min() < 0 or channels.max() >= S_raw.shape[1]):
        raise ParameterError(f"channel indices span [{channels.min()}, {channels.max()}] but the features "
                             f"have {S_raw.shape[1]} coefficients")
    mu, c = check_log_params(mu, c)
    if mu.shape != channels.shape:
        raise ParameterError(f"mu has shape {mu.shape}, expected one value per channel {channels.shape}")
    check_memory(S_raw.shape[0] * channels.size * S_raw.shape[2] * 4,
                 f"the network input of {S_raw.shape[0]:,} examples ({channels.size} channels × {S_raw.shape[2]} "
                 f"frames, float32)", "use fewer examples (a subset, or a features file of fewer notes)")
    out = np.empty((S_raw.shape[0], channels.size, S_raw.shape[2]), dtype=np.float32)
    for i in range(0, S_raw.shape[0], chunk):
        block = S_raw[i:i + chunk][:, channels].astype(np.float64)
        check_raw(block, mu, c, offset=i)
        out[i:i + chunk] = log_normalize(block, mu, c)
    return torch.from_numpy(out).to(resolve_device(device))


#: the largest model.pt and config.json read (the paper's network: 8.3 MB and ~0.2 MB)
MAX_WEIGHTS_BYTES = 2 ** 31
MAX_CONFIG_BYTES = 2 ** 26

# ---------------------------------------------------------------------------------------------- saving

def save_model(net: ConvNet, model_dir: PathLike, config: Mapping) -> Path:
    """Write ``model_dir/model.pt`` (state dict) and ``model_dir/config.json``, atomically.

    Both files are written into a temporary directory next to ``model_dir``, which then replaces
    ``model_dir`` as a whole (:func:`scatterxai._util.fs.atomic_dir`): a process killed at any moment leaves
    either the old model directory or the new one, never new weights beside an old configuration.
    ``config.json`` records the sha256 of ``model.pt`` (``weights_sha256``), which :func:`load_model` checks.

    Parameters
    ----------
    net : ConvNet
    model_dir : str or Path
        Created if needed (with at most one missing folder above it); an existing model directory is
        replaced as a whole.  A directory that holds anything else is never replaced (:class:`ParameterError`).
    config : mapping
        Must hold at least the keys of :data:`REQUIRED_KEYS` (see :class:`LoadedModel`).

    Returns
    -------
    Path of the model directory.
    """
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise ParameterError(f"model config lacks {missing}; required keys are {list(REQUIRED_KEYS)}")
    model_dir = Path(prepare_output(model_dir, is_dir=True, create=False))
    check_replaceable(model_dir)
    with atomic_dir(model_dir) as tmp:
        write_model_files(tmp, net, config)
    return model_dir


def write_model_files(folder: PathLike, net: ConvNet, config: Mapping) -> str:
    """Write ``model.pt`` and ``config.json`` (with ``weights_sha256`` and ``arch``) into an existing
    ``folder`` (the temporary directory of an atomic write); returns the weights' sha256."""
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    full = dict(config)
    full.setdefault("n_params", count_parameters(net))
    full.setdefault("scatterxai_version", __version__)
    full.setdefault("arch", net.arch.to_dict())
    weights = os.path.join(os.fspath(folder), WEIGHTS_FILE)
    torch.save(state, weights)
    full["weights_sha256"] = file_sha256(weights)
    write_json(os.path.join(os.fspath(folder), CONFIG_FILE), full)
    return full["weights_sha256"]


#: what a model directory may hold besides its two files (an evaluation of it, the fold models of a
#: cross-validated model, leftovers of writes)
_MODEL_DIR_EXTRAS = ("evaluation", "metrics.json", "metrics.md", "metrics.json.lock", "folds",
                     WEIGHTS_FILE + ".tmp", CONFIG_FILE + ".tmp")


def check_replaceable(model_dir: PathLike) -> None:
    """ParameterError unless ``model_dir`` is absent, empty or a model directory (which may be replaced)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return
    entries = sorted(os.listdir(model_dir))
    others = [e for e in entries if e not in (WEIGHTS_FILE, CONFIG_FILE, *_MODEL_DIR_EXTRAS)]
    if entries and (others or CONFIG_FILE not in entries and WEIGHTS_FILE not in entries):
        raise ParameterError(f"{model_dir} exists and is not a model directory (it holds {others[:5]}); it "
                             f"would be replaced as a whole: choose a new or empty directory")


# --------------------------------------------------------------------------------------------- loading

def _float_array(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


class LoadedModel:
    """A trained network with what is needed to apply it to raw features (see :func:`load_model`).

    Attributes
    ----------
    net : ConvNet
        In eval mode, on ``device``.
    config : dict
        Contents of config.json: ``input``, ``n_channels``, ``channels`` (indices into the path table),
        ``mu`` (per input channel), ``c``, ``classes``, ``scattering`` (``ScatteringConfig.to_dict()``),
        ``paths`` (the 5 path-table columns of the input channels; NaN stored as null), ``seed``,
        ``history``, ``n_params``, ``scatterxai_version``, ``train_config``…
    device : torch.device
    checksum : str
        sha256 (hex) of model.pt, to tie exports to the exact weights.
    """

    def __init__(self, net: ConvNet, config: dict, device: torch.device, checksum: str):
        self.net = net
        self.config = config
        self.device = device
        self.checksum = checksum
        self.channels = np.asarray(config["channels"], dtype=np.int64)
        self.mu = _float_array(config["mu"])
        self.c = float(config["c"])
        self.classes = tuple(config["classes"])
        self.scattering = ScatteringConfig.from_dict(config["scattering"])
        self.paths = {k: (_float_array(config["paths"][k]) if k.endswith("_hz")
                          else np.asarray(config["paths"][k], dtype=np.int64)) for k in PATH_FIELDS}

    def __repr__(self):
        return (f"LoadedModel(input={self.config['input']!r}, n_channels={len(self.channels)}, "
                f"classes={self.classes}, device={self.device}, sha256={self.checksum[:12]}…)")

    def check_compatible(self, feature_file: Union[FeatureFile, PathLike], *, classes: str = "equal") -> None:
        """Raise :class:`ModelError` unless ``feature_file`` has this model's scattering, paths and classes.

        Parameters
        ----------
        feature_file : scatterxai.store.FeatureFile, or a path to one
            Anything with ``.config`` (ScatteringConfig), ``.table`` (PathTable) and ``.classes``.
        classes : {"equal", "subset", "ignore"}
            The class lists must be equal; or the features' classes may be any subset of the model's, in
            any order (the caller then reads their labels with :meth:`labels_of`); or they are not checked
            (fine-tuning, which may give the network a new head).
        """
        check_choice("classes", classes, ("equal", "subset", "ignore"))
        if isinstance(feature_file, (str, os.PathLike)):
            from ..features.store import FeatureFile
            with FeatureFile(feature_file) as ff:
                return self.check_compatible(ff, classes=classes)
        if feature_file.config != self.scattering:
            raise ModelError(f"the features were computed with scattering parameters {feature_file.config} "
                             f"but the model was trained on {self.scattering}; extract features with the "
                             f"model's parameters")
        table = feature_file.table
        if self.channels.size and self.channels.max() >= len(table):
            raise ModelError(f"the model reads channel {self.channels.max()} but the features have only "
                             f"{len(table)} paths")
        for k in PATH_FIELDS:
            mine, theirs = self.paths[k], np.asarray(getattr(table, k))[self.channels]
            if mine.shape != theirs.shape or not np.allclose(mine, theirs, rtol=1e-9, atol=0, equal_nan=True):
                raise ModelError(f"the features' path table differs from the model's in column {k!r} "
                                 f"(first values {theirs[:4].tolist()} vs {mine[:4].tolist()}); the model "
                                 f"cannot be applied to these features")
        theirs = tuple(getattr(feature_file, "classes", self.classes))
        if classes == "equal" and theirs and theirs != self.classes:  # features without labels have no classes
            raise ModelError(f"the features name classes {list(theirs)} but the model was trained on "
                             f"{list(self.classes)}; {_EXTRACT_HINT}")
        if classes == "subset":
            self.class_index(feature_file)

    def class_index(self, feature_file: FeatureFile) -> np.ndarray:
        """Index among the model's classes of each class of ``feature_file`` [shape=(n_feature_classes,)].

        The features may name any subset of the model's classes, in any order (new recordings without
        one technique, text labels sorted otherwise): their labels are then re-indexed into the model's
        class list (:meth:`labels_of`).

        Raises
        ------
        ModelError
            A class of the features that the model does not know (the message lists both lists and says
            how to relabel at extraction).
        """
        classes = tuple(getattr(feature_file, "classes", ()) or ())
        unknown = [c for c in classes if c not in self.classes]
        if unknown:
            raise ModelError(f"the features name classes {list(classes)} but the model was trained on "
                             f"{list(self.classes)}: {unknown} are not among them; {_EXTRACT_HINT}")
        return np.array([self.classes.index(c) for c in classes], dtype=np.int64)

    def labels_of(self, feature_file: FeatureFile, rows: np.ndarray) -> np.ndarray:
        """Labels of ``rows`` of a features file as indices into the model's classes [shape=(k,), int64]."""
        return self.class_index(feature_file)[feature_file.labels[np.asarray(rows, dtype=np.int64)]]

    def prepare(self, S_raw: Union[np.ndarray, torch.Tensor]) -> torch.Tensor:
        """Network input from raw features: channel selection + log_normalize(μ, c).

        Parameters
        ----------
        S_raw : np.ndarray or torch.Tensor [shape=(K, C, T)]
            Raw features of all C paths of the model's path table; an array that already holds only the
            model's C_in channels (C == C_in, in the model's channel order) is also accepted.

        Returns
        -------
        torch.Tensor [shape=(K, C_in, T), float32] on :attr:`device`.
        """
        shape = tuple(S_raw.shape)
        if len(shape) != 3:
            raise ModelError(f"features must have shape (K, C, T), got {shape}")
        channels = self.channels
        n_paths = self.config.get("n_paths")
        if shape[1] == len(channels) and shape[1] != n_paths:
            channels = np.arange(len(channels))
        elif n_paths is not None and shape[1] != n_paths:
            raise ModelError(f"features have {shape[1]} coefficients; this model expects {n_paths} (all "
                             f"paths) or {len(channels)} (its input channels)")
        return prepare_input(S_raw, channels, self.mu, self.c, device=self.device)

    def mean_input(self) -> np.ndarray:
        """The network input of each channel when its scattering sits at its training mean μ:
        log1p(μ / (c·μ + 1e-8)) [shape=(C_in,), float64] (the fill value of occlusion)."""
        return log_normalize(self.mu[:, None], self.mu, self.c)[:, 0]

    @torch.no_grad()
    def logits(self, S_raw: Union[np.ndarray, torch.Tensor], batch_size: int = 64) -> np.ndarray:
        """Logits [shape=(K, n_classes), float32] of raw features [shape=(K, C, T)], in eval mode."""
        batch_size = check_positive_int("batch_size", batch_size)
        x = self.prepare(S_raw)
        self.net.eval()
        out = [self.net(x[i:i + batch_size]).cpu() for i in range(0, x.shape[0], batch_size)]
        if not out:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return torch.cat(out).numpy()


def load_model(model_dir: PathLike, device: Device = "auto") -> LoadedModel:
    """Rebuild a trained network from a model directory without executing any code from it.

    Parameters
    ----------
    model_dir : str or Path
        Directory with ``model.pt`` and ``config.json`` (written by :func:`save_model`).
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``…

    Returns
    -------
    LoadedModel

    Raises
    ------
    ModelError
        Missing files, malformed config, weights that are not a plain state dict (e.g. a pickled
        object, which ``weights_only=True`` refuses to build), or weights that do not fit the network.
    """
    model_dir = Path(model_dir)
    weights, cfg_path = model_dir / WEIGHTS_FILE, model_dir / CONFIG_FILE
    for p, limit in ((weights, MAX_WEIGHTS_BYTES), (cfg_path, MAX_CONFIG_BYTES)):
        if not p.is_file():
            raise ModelError(f"{p} not found: a model directory holds {WEIGHTS_FILE} and {CONFIG_FILE} "
                             f"(written by 'scatterxai train')")
        if p.stat().st_size > limit:   # read whole: a size no scatterxai model has is refused before reading
            raise ModelError(f"{p} holds {p.stat().st_size:,} bytes, more than any scatterxai model "
                             f"({limit:,}); it is not a model file")
    try:
        with open(cfg_path, encoding="utf-8") as f:
            config = json.load(f)
    except RecursionError:
        raise ModelError(f"cannot read {cfg_path}: its JSON is nested too deeply to be a model configuration") \
            from None
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read {cfg_path}: {e}") from None
    if not isinstance(config, dict):
        raise ModelError(f"{cfg_path} must hold a JSON object, got {type(config).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise ModelError(f"{cfg_path} lacks {missing}; required keys are {list(REQUIRED_KEYS)}")
    dev = resolve_device(device)
    try:
        blob = weights.read_bytes()   # read once: the checksum and the weights are of the same bytes
    except OSError as e:
        raise ModelError(f"cannot read {weights}: {e}") from None
    checksum = bytes_sha256(blob)
    recorded = config.get("weights_sha256")
    if recorded is None:
        logger.warning("warning: %s has no weights_sha256 (written by scatterxai < 0.2.1): %s cannot be checked "
                       "against it; re-train to record one", cfg_path, WEIGHTS_FILE)
    elif recorded != checksum:
        raise ModelError(f"{weights} does not match config.json (sha256 {checksum[:12]}…, config.json records "
                         f"{str(recorded)[:12]}…): the directory was modified or written only in part; "
                         f"re-train it")
    try:
        state = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"{weights} is not a plain tensor state dict and was not loaded (only weights are "
                         f"read, never pickled objects): {first}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{weights} must hold a state dict of tensors, got {type(state).__name__}")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ModelError(f"{weights} holds NaN or inf weights (in {bad[:3]}); the model cannot be used")
    try:
        n_channels = int(config["n_channels"])
        if len(config["channels"]) != n_channels or len(config["mu"]) != n_channels:
            raise ModelError(f"{cfg_path}: n_channels={n_channels} but {len(config['channels'])} channels and "
                             f"{len(config['mu'])} mu values are listed")
        check_log_params(_float_array(config["mu"]), config["c"])
        # the random initialisation is overwritten at once: keep it from advancing the caller's RNG
        with torch.random.fork_rng(devices=[]):
            net = ConvNet(n_channels, n_classes=len(config["classes"]), arch=config.get("arch"))
        net.load_state_dict(state, strict=True)
        model = LoadedModel(net.to(dev).eval(), config, dev, checksum)
    except (RuntimeError, ParameterError, TypeError, ValueError, KeyError, OverflowError) as e:
        raise ModelError(f"{model_dir} does not describe a valid ConvNet: {e}") from None
    return model
