"""HDF5 helpers shared by the features and relevance files, and the reader base class.

Every file the package writes is self-describing: root attributes hold the scattering parameters and the
versions that wrote it, ``/paths`` the per-path metadata and ``/examples`` one column per metadata field,
so that a reader needs only h5py and numpy.
"""

from __future__ import annotations

import os
from typing import Dict, Iterable

import h5py
import numpy as np

from .. import __version__
from ..errors import StoreError
from ..scattering.config import ALPHA, R_PSI, SIGMA0, PathTable, ScatteringConfig

__all__ = ["open_hdf5", "write_column", "read_string_array", "scattering_attrs", "read_config", "H5Reader",
           "STR_DTYPE"]

#: variable-length UTF-8 strings
STR_DTYPE = h5py.string_dtype("utf-8")


def write_column(group: h5py.Group, name: str, values) -> h5py.Dataset:
    """Write a 1-D column: strings as UTF-8 variable-length, numbers as int64/float64, bools as bool."""
    arr = np.asarray(values)
    if arr.dtype.kind in "OUS":
        return group.create_dataset(name, data=np.array([str(v) for v in arr], dtype=object), dtype=STR_DTYPE)
    if arr.dtype.kind == "b":
        return group.create_dataset(name, data=arr)
    if arr.dtype.kind in "iu":
        return group.create_dataset(name, data=arr.astype(np.int64))
    if arr.dtype.kind == "f":
        return group.create_dataset(name, data=arr.astype(np.float64))
    raise StoreError(f"column {name!r} has unsupported dtype {arr.dtype}")


def open_hdf5(path, kind: str) -> h5py.File:
    """Open ``path`` read-only, or raise :class:`StoreError` saying it should be a ``kind`` file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise StoreError(f"{kind} file not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise StoreError(f"cannot open {path} as HDF5 ({e}); is it a {kind} file?") from None


def read_string_array(ds: h5py.Dataset) -> np.ndarray:
    """A dataset as a numpy array, decoding byte/UTF-8 strings to ``str`` objects."""
    if ds.dtype.kind in "OS":
        return np.array(ds.asstr()[()], dtype=object)
    return ds[()]


def scattering_attrs(config: ScatteringConfig, table: PathTable) -> dict:
    """Root attributes that describe the scattering (written into every file of the package)."""
    import kymatio
    return dict(sr=config.sr, N=config.N, J=config.J, Q=np.array(config.Q, dtype=np.int64), T=config.T,
                fmin_hz=config.fmin_hz, n_frames=table.n_frames, max_order=2, r_psi=R_PSI, sigma0=SIGMA0,
                alpha=ALPHA, scatterxai_version=__version__, kymatio_version=kymatio.__version__)


def read_config(attrs, kind: str = "scatterxai") -> ScatteringConfig:
    """The :class:`ScatteringConfig` recorded in a file's root attributes."""
    try:
        return ScatteringConfig.from_dict({k: attrs[k] for k in ("sr", "N", "J", "Q", "T", "fmin_hz")})
    except KeyError as e:
        raise StoreError(f"root attribute {e.args[0]!r} missing: not a {kind} file") from None


class H5Reader:
    """Base of the package's file readers: opens read-only, validates, closes on error and on exit.

    Subclasses set :attr:`KIND` (used in messages) and :attr:`REQUIRED` (datasets or groups that must
    exist) and extend :meth:`_validate`.  Use as a context manager or call :meth:`close`.
    """

    KIND = "scatterxai"
    REQUIRED: Iterable[str] = ()
    #: what the error for a missing object adds (e.g. how to obtain a complete file)
    HINT = ""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._f = open_hdf5(self.path, self.KIND)
        try:
            missing = [name for name in self.REQUIRED if name not in self._f]
            if missing:
                raise StoreError(f"{self.path} lacks /{missing[0]}: not a complete scatterxai {self.KIND} file"
                                 + (f" ({self.HINT})" if self.HINT else ""))
            self._validate()
        except Exception:
            self._f.close()
            raise

    def _validate(self) -> None:
        """Check the layout and read the small metadata (override and call super)."""

    def _read_examples(self, skip=()) -> Dict[str, np.ndarray]:
        g = self._f["examples"]
        return {k: read_string_array(g[k]) for k in g if k not in skip}

    @property
    def attrs(self) -> dict:
        """Root attributes as plain Python values."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self._f.attrs.items()}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._f.close()
