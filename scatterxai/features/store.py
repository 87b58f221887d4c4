"""The features HDF5 file: one self-describing file of raw scattering coefficients per dataset.

Layout (a reader needs only h5py)::

    /features            (K, C, T) float32   raw scattering (not log-normalised), chunked (1, C, T)
    /paths/{order, lambda1_hz, lambda2_hz, n1, n2}   (C,) each; λ in Hz, λ2 NaN and n2 = -1 for order 1
    /examples/<column>   (K,) one array per meta-CSV column (UTF-8 strings, int64 or float64), plus
                         `csv_row`, the row of each example in the meta CSV
    /stats/mu            (C,) float64: mean over the training rows of each coefficient's time average
                         (attrs: subset, n_examples)
    /failed/{file_name, reason, csv_row}   files that could not be read, and why
    /example, /path, /frame, /time_s, /order, /lambda1_hz, /lambda2_hz, /failed/failure
                         netCDF-4 dimension scales and coordinates (:mod:`scatterxai.io.netcdf`): every
                         dataset names its axes and has ``units`` and ``description`` attributes
    root attributes      sr, N, J, Q, T, fmin_hz, n_frames, r_psi, sigma0, alpha, max_order,
                         classes (when the data have labels: /examples/label indexes it), split ("given"
                         by the meta CSV, "drawn" 6:2:2 by extraction, or "none"), split_seed and
                         split_groups (when drawn), segments (whether long files were cut into windows:
                         then /examples/segment and /examples/start_s say where each row starts),
                         method, audio_root, scatterxai_version, kymatio_version, settings_sha256,
                         labels_sha256

Extraction (:func:`extract_features`) is batched and resumable.  Work goes to ``OUT.partial``, an HDF5 file
whose datasets are all allocated when it is created, so that a batch only overwrites raw bytes (no HDF5
metadata changes) and then marks its rows done after a flush: a process killed at any moment (even with
SIGKILL) leaves a readable partial file in which every row marked done is complete.  Re-running the same
command resumes from it.  The final file is written to a temporary name and renamed into place, so ``OUT``
is either absent or complete.
"""

from __future__ import annotations

import hashlib
from typing import Dict, List, Optional, Sequence, Union

import h5py
import numpy as np

from .._util.types import Indices, PathLike
from ..errors import ParameterError, StoreError
from ..io.hdf5 import (
    H5Reader,
    atomic_h5,
    has_link,
    raise_if_failed,
    read_config,
    read_string_array,
    scattering_attrs,
    write_column,
)
from ..io.netcdf import annotate_features, dataset_options
from ..scattering.config import PAPER_CONFIG, ScatteringConfig, path_table
from ..task import CLASSES

__all__ = ["FeatureFile", "RowView", "write_features", "features_fingerprint"]

_COPY_BLOCK = 64


# --------------------------------------------------------------------------------------------------------
# reading

class FeatureFile(H5Reader):
    """Read a features file written by :func:`~scatterxai.features.extract_features` or :func:`write_features`.

    The file stays open for lazy access to ``/features``; use as a context manager or call :meth:`close`.

    Attributes
    ----------
    config : ScatteringConfig
    table : PathTable
        Checked equal to ``path_table(config)`` and to the file's ``/paths``.
    examples : dict of str → np.ndarray [shape=(K,)]
    mu : np.ndarray [shape=(C,), float64]
    classes : tuple of str
        Class names that ``/examples/label`` indexes (root attribute ``classes``); empty when the file has
        no labels.
    """

    KIND = "features"
    REQUIRED = ("features", "paths", "examples", "stats/mu")
    HINT = "an interrupted extraction leaves OUT.partial; re-run extract"

    def _validate(self):
        f = self._f
        self.config = read_config(f.attrs, "scatterxai features", self.path)
        self.table = path_table(self.config)
        ds = self._obj("features")
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 3:
            what = f"a {ds.ndim}-D dataset" if isinstance(ds, h5py.Dataset) else "a group"
            raise StoreError(f"{self.path}: /features is {what}; a features file holds a 3-D dataset (K, C, T)")
        if ds.dtype != np.float32:
            raise StoreError(f"{self.path}: /features has dtype {ds.dtype}; a features file holds float32 raw "
                             f"scattering coefficients (write it with scatterxai.features.write_features)")
        paths = {k: self._obj(f"paths/{k}")[()] for k in self.table.FIELDS if has_link(f, f"paths/{k}")}
        if not self.table.matches(paths):
            raise StoreError(f"{self.path}: /paths does not match the path table of {self.config}; the file "
                             f"was written by an incompatible version")
        K, C, T = ds.shape
        if (C, T) != (len(self.table), self.table.n_frames):
            raise StoreError(f"{self.path}: /features has shape {ds.shape}, expected "
                             f"(K, {len(self.table)}, {self.table.n_frames})")
        self.examples: Dict[str, np.ndarray] = self._read_examples()
        for k, v in self.examples.items():
            if len(v) != K:
                raise StoreError(f"{self.path}: /examples/{k} has {len(v)} rows, /features has {K}")
        mu = self._obj("stats/mu")
        self.mu = mu[()] if isinstance(mu, h5py.Dataset) else None
        if self.mu is None or self.mu.shape != (C,) or self.mu.dtype.kind != "f":
            raise StoreError(f"{self.path}: /stats/mu must be a float dataset of shape ({C},)")
        if not (np.isfinite(self.mu).all() and (self.mu >= 0).all()):
            raise StoreError(f"{self.path}: /stats/mu holds negative, NaN or inf values; it is the mean of "
                             f"non-negative coefficients")
        if "label" not in self.examples:
            self.classes = ()
        elif "classes" in f.attrs:
            self.classes = tuple(str(c) for c in np.atleast_1d(f.attrs["classes"]))
        else:  # files of version 0.1 always indexed the paper's five
            self.classes = CLASSES

    def __len__(self) -> int:
        return self._f["features"].shape[0]

    @property
    def fingerprint(self) -> str:
        """sha256 (hex) identifying the study this file describes: its shape, ``/stats/mu`` (which depends
        on every training coefficient), its file names, labels and subsets — read in a few small datasets,
        never the coefficients.  Relevance files record it (``features_fingerprint``) so that the inputs of
        a later command can be checked to belong together."""
        h = hashlib.sha256(repr(tuple(self._f["features"].shape)).encode())
        h.update(np.ascontiguousarray(self.mu, dtype=np.float64).tobytes())
        for key in ("file_name", "label", "subset"):
            if key in self.examples:
                h.update(key.encode())
                h.update("\0".join(str(v) for v in self.examples[key]).encode("utf-8", "surrogatepass"))
        return h.hexdigest()

    @property
    def labels(self) -> np.ndarray:
        """(K,) int64 class indices into :attr:`classes` (checked: integral, in range; text labels of
        files written before labels were encoded are looked up by name)."""
        if "label" not in self.examples:
            raise StoreError(f"{self.path} has no /examples/label column; the meta CSV had no labels")
        values, n = np.asarray(self.examples["label"]), len(self.classes)
        if values.dtype.kind not in "iuf":
            index = {c: i for i, c in enumerate(self.classes)}
            unknown = sorted({str(v) for v in values} - set(index))
            if unknown:
                raise StoreError(f"{self.path}: /examples/label holds names {unknown[:5]} that are not among its "
                                 f"classes {list(self.classes)}; extract the features again with this version")
            return np.array([index[str(v)] for v in values], dtype=np.int64)
        if values.dtype.kind == "f" and not np.all(np.isfinite(values) & (values == np.round(values))):
            raise StoreError(f"{self.path}: /examples/label holds non-integer values "
                             f"{values[~(np.isfinite(values) & (values == np.round(values)))][:5].tolist()}; "
                             f"extract the features again with this version")
        labels = values.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= n):
            raise StoreError(f"{self.path}: /examples/label holds {sorted(set(labels.tolist()) - set(range(n)))[:5]}, "
                             f"not indices into its {n} classes {list(self.classes)}")
        return labels

    @property
    def failed(self) -> List[tuple]:
        """(file_name, reason) of every file that could not be read."""
        if "failed" not in self._f:
            return []
        names, reasons = self._obj("failed/file_name"), self._obj("failed/reason")
        return list(zip(read_string_array(names), read_string_array(reasons)))

    def indices(self, subset: Optional[str] = None) -> np.ndarray:
        """Row indices of ``subset`` ("training", "validation", "test"); all rows if None or "all".

        Augmented copies (``/examples/augmented`` > 0, :mod:`scatterxai.features.augment`) are training
        data only: they are among the "training" rows and never among the others (nor "all")."""
        if subset != "training" and "augmented" in self.examples:
            real = np.asarray(self.examples["augmented"]) == 0
            return np.intersect1d(self._indices(subset), np.flatnonzero(real)).astype(np.int64)
        return self._indices(subset)

    def _indices(self, subset: Optional[str]) -> np.ndarray:
        if subset is None or subset == "all":
            return np.arange(len(self), dtype=np.int64)
        if "subset" not in self.examples:
            raise StoreError(f"{self.path} has no /examples/subset column (its meta CSV had neither subsets nor "
                             f"labels); cannot select subset {subset!r} (explain takes --subset all)")
        sub = self.examples["subset"].astype(str)
        idx = np.flatnonzero(sub == subset)
        if idx.size == 0:
            raise StoreError(f"subset {subset!r} has no rows in {self.path}; present: "
                             f"{sorted(str(v) for v in set(sub))} (or 'all')")
        return idx.astype(np.int64)

    def rows(self, indices: Optional[Indices] = None) -> RowView:
        """A lazy view of the raw features of ``indices`` (all rows if None): read by slices, so that a large
        file is never loaded whole (:func:`scatterxai.model.directory.prepare_input` reads it by chunk)."""
        idx = np.arange(len(self), dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= len(self))):
            raise ParameterError(f"indices must be a 1-D array of rows in [0, {len(self)}), got {indices!r}")
        return RowView(self, idx)

    def load(self, indices: Optional[Indices] = None) -> np.ndarray:
        """Raw features of the given rows (any order, repeats allowed): (k, C, T) float32."""
        ds = self._f["features"]
        if indices is None:
            return ds[()]
        idx = np.asarray(indices, dtype=np.int64)
        if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= len(self))):
            raise ParameterError(f"indices must be a 1-D array of rows in [0, {len(self)}), got {indices!r}")
        order = np.argsort(idx, kind="stable")
        uniq, inverse = np.unique(idx[order], return_inverse=True)
        block = ds[uniq] if uniq.size else np.zeros((0,) + ds.shape[1:], ds.dtype)
        out = np.empty((idx.size,) + ds.shape[1:], ds.dtype)
        out[order] = block[inverse]
        return out


class RowView:
    """Some rows of a features file, read when sliced: ``view[i:j]`` → (j − i, C, T) float32."""

    def __init__(self, ff: FeatureFile, rows: np.ndarray):
        self._ff, self._rows = ff, rows
        self.shape = (rows.size,) + tuple(ff._obj("features").shape[1:])
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def read_rows(self, sl: slice) -> np.ndarray:
        return self._ff.load(self._rows[sl])

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, slice):
            raise TypeError("a RowView is read by slices of rows")
        return self.read_rows(key)

    def __len__(self) -> int:
        return self.shape[0]


def features_fingerprint(features: Union[PathLike, FeatureFile]) -> Optional[str]:
    """:attr:`FeatureFile.fingerprint` of a path or an open file; None if it cannot be read (the command that
    reads it then reports why)."""
    if isinstance(features, FeatureFile):
        return features.fingerprint
    try:
        with FeatureFile(features) as ff:
            return ff.fingerprint
    except (StoreError, OSError):
        return None


# --------------------------------------------------------------------------------------------------------
# writing

def _training_rows(examples: Dict[str, np.ndarray], n: int) -> np.ndarray:
    real = np.asarray(examples["augmented"]) == 0 if "augmented" in examples else np.ones(n, bool)
    if "subset" in examples:
        rows = np.flatnonzero((np.asarray(examples["subset"]).astype(str) == "training") & real)
        if rows.size:
            return rows
    return np.flatnonzero(real)


def _mu_from(source, rows: np.ndarray, training: np.ndarray, C: int) -> np.ndarray:
    """Mean time average of each coefficient over ``training`` (positions within ``rows``), streamed."""
    acc = np.zeros(C, np.float64)
    sel = rows[training]
    for i in range(0, len(sel), _COPY_BLOCK):
        acc += source[np.sort(sel[i:i + _COPY_BLOCK])].mean(axis=2, dtype=np.float64).sum(axis=0)
    return acc / max(len(sel), 1)


def write_features(path: PathLike, S: Union[np.ndarray, h5py.Dataset], examples: Dict[str, np.ndarray],
                   config: ScatteringConfig = PAPER_CONFIG, *, classes: Optional[Sequence[str]] = None,
                   failed: Optional[Dict[str, np.ndarray]] = None, mu: Optional[np.ndarray] = None,
                   rows: Optional[Indices] = None, attrs: Optional[dict] = None,
                   compression: Optional[str] = None) -> None:
    """Write a complete features file atomically (temporary file, then rename).

    Parameters
    ----------
    path : str
    S : array-like [shape=(K_source, C, T)]
        Raw scattering; a numpy array or an h5py dataset (copied in blocks, never loaded whole).
    examples : dict of str → array [shape=(K,)]
        Metadata columns of the written rows (must include ``file_name``).  A ``label`` column (class
        names or indices) is stored as int64 indices into ``classes``.
    classes : sequence of str, optional
        The class list (root attribute ``classes``); default: derived from the labels
        (:func:`scatterxai.data.encode_labels`: text labels name themselves, integer labels are named by
        their index unless a class list is given).
    rows : array of int, optional
        Rows of ``S`` to write (increasing); all if None.
    failed : dict with ``file_name``, ``reason`` (and optionally ``csv_row``) arrays, optional
    mu : array [shape=(C,)], optional
        Normalisation mean; default: computed from the rows whose ``subset`` is "training" (all rows if no
        subset column), augmented copies left out.
    attrs : dict, optional
        Extra root attributes.
    compression : {None, "gzip", "lzf"}
        Lossless compression of ``/features`` (chunks stay one example each, byte-shuffled before
        compression).  Readers need nothing special: h5py, h5netcdf and netCDF-4 decompress transparently.

    Notes
    -----
    Every dataset gets netCDF-4 dimension scales, ``units`` and ``description``
    (:mod:`scatterxai.io.netcdf`): ``xarray.open_dataset(path, engine="h5netcdf")`` names the axes.
    """
    table = path_table(config)
    C, T = len(table), table.n_frames
    rows = np.arange(S.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    K = len(rows)
    opts = dataset_options(compression, (K, C, T))
    if tuple(S.shape[1:]) != (C, T):
        raise ParameterError(f"S has shape {tuple(S.shape)}, expected (K, {C}, {T}) for {config}")
    if "file_name" not in examples:
        raise ParameterError(f"examples must contain 'file_name'; got columns {sorted(examples)}")
    for k, v in examples.items():
        if len(v) != K:
            raise ParameterError(f"examples[{k!r}] has {len(v)} rows, expected {K}")
    if K and np.any(np.diff(rows) <= 0):
        raise ParameterError("rows must be strictly increasing")
    examples = dict(examples)
    if "label" in examples:
        from ..data.labels import encode_labels
        examples["label"], classes = encode_labels(examples["label"], classes, what="examples['label']")
    elif classes is not None:
        raise ParameterError("classes were given but examples have no 'label' column")
    if mu is None:
        training = _training_rows(examples, K)
        mu = _mu_from(S, rows, training, C) if K else np.zeros(C)
        has_training = "subset" in examples and np.any(np.asarray(examples["subset"]).astype(str) == "training")
        mu_subset, mu_n = ("training" if has_training else "all"), len(training)
    else:
        mu, mu_subset, mu_n = np.asarray(mu, np.float64), "given", -1
    with atomic_h5(path) as f:
        f.attrs.update(scattering_attrs(config, table))
        if classes is not None:
            f.attrs["classes"] = np.array(classes, dtype=object)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        ds = f.create_dataset("features", shape=(K, C, T), dtype=np.float32, **opts)
        for i in range(0, K, _COPY_BLOCK):
            ds[i:i + _COPY_BLOCK] = np.asarray(S[rows[i:i + _COPY_BLOCK]], dtype=np.float32)
            raise_if_failed(f)   # a full disk: stop now (the temporary file is removed)
        g = f.create_group("paths")
        for k, v in table.arrays().items():
            g.create_dataset(k, data=v)
        g = f.create_group("examples")
        for k, v in examples.items():
            write_column(g, k, v)
        m = f.create_dataset("stats/mu", data=np.asarray(mu, np.float64))
        m.attrs["subset"], m.attrs["n_examples"] = mu_subset, mu_n
        g = f.create_group("failed")
        failed = failed or {"file_name": np.array([], object), "reason": np.array([], object)}
        for k, v in failed.items():
            write_column(g, k, np.asarray(v, dtype=object if k != "csv_row" else np.int64))
        annotate_features(f)
