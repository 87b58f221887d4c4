"""The convnet (:mod:`.net`, presets :mod:`.arch`), its weights-only model directory (:mod:`.directory`),
training (:mod:`.train`; fine-tuning :mod:`.finetune`; BatchNorm statistics :mod:`.batchnorm`),
cross-validation (:mod:`.folds`, :mod:`.crossval`, :mod:`.spread`, :mod:`.cvreport`), guidance for small
studies (:mod:`.guidance`), evaluation (:mod:`.evaluate`) and metrics (:mod:`.metrics`)."""

from .arch import ARCHS, Arch
from .crossval import train_crossval
from .directory import CONFIG_FILE, WEIGHTS_FILE, LoadedModel, load_model, prepare_input, save_model
from .evaluate import evaluate_model
from .finetune import InitSpec
from .metrics import PAPER_TABLE1, classification_metrics, confusion_matrix, metrics_markdown, table1
from .net import ConvNet, count_parameters
from .train import TrainConfig, class_weights, input_channels, train_model

__all__ = ["ConvNet", "count_parameters", "prepare_input", "save_model", "load_model", "LoadedModel",
           "WEIGHTS_FILE", "CONFIG_FILE", "TrainConfig", "input_channels", "class_weights", "train_model",
           "evaluate_model", "confusion_matrix", "classification_metrics", "metrics_markdown", "table1",
           "PAPER_TABLE1", "train_crossval", "InitSpec", "Arch", "ARCHS"]
