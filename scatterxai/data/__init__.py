"""Datasets: the meta CSV, class labels and the 6:2:2 split (decided in one place, :func:`prepare_labels`),
SOL and CSV loaders, audio-path resolution, note names, and the embedded synthetic corpus
(:mod:`scatterxai.data.synth`)."""

from .labels import LabelInfo, encode_labels, prepare_labels
from .loaders import SOL_META_CSV, Dataset, load_csv, load_sol
from .meta import META_COLUMNS, SUBSETS, labels_from_values, read_meta_csv, write_meta_csv
from .paths import AudioResolver, resolve_all
from .split import split_622, spread_subset

__all__ = ["META_COLUMNS", "SUBSETS", "SOL_META_CSV", "Dataset", "read_meta_csv", "write_meta_csv",
           "split_622", "spread_subset", "load_sol", "load_csv", "labels_from_values", "encode_labels",
           "prepare_labels", "LabelInfo", "AudioResolver", "resolve_all"]
