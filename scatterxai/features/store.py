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
                         classes, method, scatterxai_version, kymatio_version, settings_sha256

Extraction (:func:`extract_features`) is batched and resumable.  Work goes to ``OUT.partial``, an HDF5 file
whose datasets are all allocated when it is created, so that a batch only overwrites raw bytes (no HDF5
metadata changes) and then marks its rows done after a flush: a process killed at any moment (even with
SIGKILL) leaves a readable partial file in which every row marked done is complete.  Re-running the same
command resumes from it.  The final file is written to a temporary name and renamed into place, so ``OUT``
is either absent or complete.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import h5py
import numpy as np

from .._util.fs import atomic_path
from ..errors import ParameterError, StoreError
from ..io.hdf5 import H5Reader, read_config, read_string_array, scattering_attrs, write_column
from ..io.netcdf import annotate_features, dataset_options
from ..scattering.config import PAPER_CONFIG, ScatteringConfig, path_table
from ..task import CLASSES

__all__ = ["FeatureFile", "write_features"]

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
    """

    KIND = "features"
    REQUIRED = ("features", "paths", "examples", "stats/mu")
    HINT = "an interrupted extraction leaves OUT.partial; re-run extract"

    def _validate(self):
        f = self._f
        self.config = read_config(f.attrs, "scatterxai features")
        self.table = path_table(self.config)
        paths = {k: f["paths"][k][()] for k in f["paths"]}
        if not self.table.matches(paths):
            raise StoreError(f"{self.path}: /paths does not match the path table of {self.config}; the file "
                             f"was written by an incompatible version")
        K, C, T = f["features"].shape
        if (C, T) != (len(self.table), self.table.n_frames):
            raise StoreError(f"{self.path}: /features has shape {f['features'].shape}, expected "
                             f"(K, {len(self.table)}, {self.table.n_frames})")
        self.examples: Dict[str, np.ndarray] = self._read_examples()
        for k, v in self.examples.items():
            if len(v) != K:
                raise StoreError(f"{self.path}: /examples/{k} has {len(v)} rows, /features has {K}")
        self.mu = f["stats/mu"][()]
        if self.mu.shape != (C,):
            raise StoreError(f"{self.path}: /stats/mu has shape {self.mu.shape}, expected ({C},)")
        self.classes = tuple(str(c) for c in f.attrs.get("classes", CLASSES))

    def __len__(self) -> int:
        return self._f["features"].shape[0]

    @property
    def labels(self) -> np.ndarray:
        if "label" not in self.examples:
            raise StoreError(f"{self.path} has no /examples/label column; the meta CSV had no labels")
        return np.asarray(self.examples["label"], dtype=np.int64)

    @property
    def failed(self) -> List[tuple]:
        """(file_name, reason) of every file that could not be read."""
        if "failed" not in self._f:
            return []
        g = self._f["failed"]
        return list(zip(read_string_array(g["file_name"]), read_string_array(g["reason"])))

    def indices(self, subset: Optional[str] = None) -> np.ndarray:
        """Row indices of ``subset`` ("training", "validation", "test"); all rows if None."""
        if subset is None:
            return np.arange(len(self), dtype=np.int64)
        if "subset" not in self.examples:
            raise StoreError(f"{self.path} has no /examples/subset column; cannot select subset {subset!r}")
        sub = self.examples["subset"].astype(str)
        idx = np.flatnonzero(sub == subset)
        if idx.size == 0:
            raise StoreError(f"subset {subset!r} has no rows in {self.path}; present: {sorted(set(sub))}")
        return idx.astype(np.int64)

    def load(self, indices=None) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------------------
# writing

def _training_rows(examples: Dict[str, np.ndarray], n: int) -> np.ndarray:
    if "subset" in examples:
        rows = np.flatnonzero(np.asarray(examples["subset"]).astype(str) == "training")
        if rows.size:
            return rows
    return np.arange(n)


def _mu_from(source, rows: np.ndarray, training: np.ndarray, C: int) -> np.ndarray:
    """Mean time average of each coefficient over ``training`` (positions within ``rows``), streamed."""
    acc = np.zeros(C, np.float64)
    sel = rows[training]
    for i in range(0, len(sel), _COPY_BLOCK):
        acc += source[np.sort(sel[i:i + _COPY_BLOCK])].mean(axis=2, dtype=np.float64).sum(axis=0)
    return acc / max(len(sel), 1)


def write_features(path, S, examples: Dict[str, np.ndarray], config: ScatteringConfig = PAPER_CONFIG, *,
                   failed: Optional[Dict[str, np.ndarray]] = None, mu=None, rows=None,
                   attrs: Optional[dict] = None, compression: Optional[str] = None):
    """Write a complete features file atomically (temporary file, then rename).

    Parameters
    ----------
    path : str
    S : array-like [shape=(K_source, C, T)]
        Raw scattering; a numpy array or an h5py dataset (copied in blocks, never loaded whole).
    examples : dict of str → array [shape=(K,)]
        Metadata columns of the written rows (must include ``file_name``).
    rows : array of int, optional
        Rows of ``S`` to write (increasing); all if None.
    failed : dict with ``file_name``, ``reason`` (and optionally ``csv_row``) arrays, optional
    mu : array [shape=(C,)], optional
        Normalisation mean; default: computed from the rows whose ``subset`` is "training" (all rows if no
        subset column).
    attrs : dict, optional
        Extra root attributes.
    compression : {None, "gzip", "lzf"}
        Lossless compression of ``/features`` (chunks stay one example each, byte-shuffled before
        compression).  Readers need nothing special: h5py, h5netcdf and netCDF-4 decompress transparently.

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
    if mu is None:
        training = _training_rows(examples, K)
        mu = _mu_from(S, rows, training, C) if K else np.zeros(C)
        has_training = "subset" in examples and np.any(np.asarray(examples["subset"]).astype(str) == "training")
        mu_subset, mu_n = ("training" if has_training else "all"), len(training)
    else:
        mu, mu_subset, mu_n = np.asarray(mu, np.float64), "given", -1
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(scattering_attrs(config, table))
        f.attrs["classes"] = np.array(CLASSES, dtype=object)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
        ds = f.create_dataset("features", shape=(K, C, T), dtype=np.float32, **opts)
        for i in range(0, K, _COPY_BLOCK):
            ds[i:i + _COPY_BLOCK] = np.asarray(S[rows[i:i + _COPY_BLOCK]], dtype=np.float32)
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
