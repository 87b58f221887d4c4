"""The descriptors HDF5 file: hand-crafted descriptors of the notes of a meta CSV, readable with h5py alone.

Layout (K described notes; a public contract)::

    /descriptors/<name>   (K,) or (K, d) float64   one dataset per descriptor of
                          :data:`~scatterxai.analysis.describe.descriptors.DESCRIPTORS`; attributes ``unit``,
                          ``description`` and, for vectors, ``axis`` (the path of their axis dataset)
    /axes/mel_hz          (40,)    the centre frequency (Hz) of each mel_spectrum band
    /axes/envelope_hz     (12,)    the centre rate (Hz) of each envelope_spectrum band
    /axes/lambda2_hz      (n_λ2,)  the λ2 (Hz) of each modulation_spectrum column, ascending
    /axes/s1_lambda1_hz   (n_s1,)  the λ1 (Hz) of each s1_energy column (path-table order)
    /examples/<column>    (K,)     every meta-CSV column of the described notes (ground truth included),
                                   plus ``csv_row``
    /failed/{file_name, reason, csv_row}   notes whose audio could not be read or described, and why
    root attributes       settings_sha256, features (path of the features file, or ""),
                          features_settings_sha256, max_seconds, fmin_hz, fmax_hz, subset, max_notes, seed,
                          n_selected, descriptor_version, versions of scatterxai and librosa

The audio descriptors (and their axes) are always present; the scattering ones (``s1_energy``,
``modulation_spectrum``, ``modulation_peak_hz``, ``s2_s1_ratio``: functions of the model input) and their axes
only when a features file was given, NaN for notes it lacks.  Writer:
:func:`scatterxai.analysis.describe.run.describe_notes`; reader: :class:`DescriptorFile`.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional

import h5py
import numpy as np
from numpy.typing import ArrayLike

from ..._util.types import PathLike
from ...errors import ParameterError, StoreError
from ...io.hdf5 import H5Reader, atomic_h5, has_link, read_string_array, write_column
from .descriptors import DESCRIPTORS

__all__ = ["DescriptorFile", "write_descriptors", "match_notes", "AXES"]

#: axis dataset of each vector descriptor
AXES = {"mel_spectrum": "axes/mel_hz", "envelope_spectrum": "axes/envelope_hz", "s1_energy": "axes/s1_lambda1_hz",
        "modulation_spectrum": "axes/lambda2_hz"}


class DescriptorFile(H5Reader):
    """Read a descriptors file (:mod:`scatterxai.analysis.describe.store`).

    Attributes
    ----------
    names : tuple of str
        Descriptors the file holds, in :data:`DESCRIPTORS` order.
    examples : dict of str → np.ndarray [shape=(K,)]
        Meta-CSV columns of the described notes (strings decoded) and ``csv_row``.
    """

    KIND = "descriptors"
    REQUIRED = ("descriptors", "examples", "failed")
    HINT = "an interrupted run leaves OUT.partial; re-run describe"

    def _validate(self):
        g = self._obj("descriptors")
        self.names = tuple(n for n in DESCRIPTORS if n in g) + tuple(sorted(n for n in g if n not in DESCRIPTORS))
        self.examples: Dict[str, np.ndarray] = self._read_examples()
        if "file_name" not in self.examples:
            raise StoreError(f"{self.path} lacks /examples/file_name: not a complete scatterxai descriptors file")
        K = len(self)
        for name in self.names:
            ds = self._obj(f"descriptors/{name}")
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "iuf" or ds.ndim not in (1, 2) \
                    or ds.shape[:1] != (K,):
                shape = ds.shape if isinstance(ds, h5py.Dataset) else "a group"
                raise StoreError(f"{self.path}: /descriptors/{name} has shape {shape}, expected ({K},) or ({K}, d) "
                                 f"numbers")
            if "axis" in ds.attrs:
                axis = self._obj(str(ds.attrs["axis"]))
                if not isinstance(axis, h5py.Dataset) or ds.ndim != 2 or axis.shape != ds.shape[1:]:
                    raise StoreError(f"{self.path}: the axis of /descriptors/{name} does not match its columns")
        for k, v in self.examples.items():
            if len(v) != K:
                raise StoreError(f"{self.path}: /examples/{k} has {len(v)} rows, expected {K}")

    def __len__(self) -> int:
        return len(self.examples["file_name"])

    def _check(self, name: str) -> h5py.Dataset:
        if name not in self.names:
            raise ParameterError(f"descriptor {name!r} is not in {self.path}; it holds {list(self.names)}")
        return self._obj(f"descriptors/{name}")

    def values(self, name: str) -> np.ndarray:
        """(K,) or (K, d) float64 values of descriptor ``name`` (NaN where unknown)."""
        return self._check(name)[()]

    def unit(self, name: str) -> str:
        return str(self._check(name).attrs["unit"])

    def description(self, name: str) -> str:
        return str(self._check(name).attrs["description"])

    def axis(self, name: str) -> np.ndarray:
        """Axis (Hz) of a vector descriptor's columns (``mel_spectrum``: band centres, ``envelope_spectrum``:
        rate-band centres, ``s1_energy``: λ1, ``modulation_spectrum``: λ2)."""
        ds = self._check(name)
        if "axis" not in ds.attrs:
            raise ParameterError(f"descriptor {name!r} is a scalar and has no axis")
        return self._obj(str(ds.attrs["axis"]))[()]

    @property
    def failed(self) -> List[tuple]:
        """(file_name, reason) of every note that could not be described."""
        if not has_link(self._f, "failed/file_name"):
            return []
        return list(zip(read_string_array(self._obj("failed/file_name")),
                        read_string_array(self._obj("failed/reason"))))


def write_descriptors(path: PathLike, values: Mapping[str, np.ndarray], examples: Mapping[str, np.ndarray], *,
                      failed: Mapping[str, np.ndarray], axes: Optional[Mapping[str, np.ndarray]] = None,
                      attrs: Optional[Mapping] = None) -> None:
    """Write a complete descriptors file atomically (temporary file, then rename).

    Parameters
    ----------
    path : str
    values : mapping name → np.ndarray [shape=(K,) or (K, d)]
        Descriptors (names of :data:`DESCRIPTORS`; their unit and description become attributes).
    examples : mapping column → np.ndarray [shape=(K,)]
        Must include ``file_name``.
    failed : mapping with ``file_name``, ``reason``, ``csv_row`` arrays
    axes : mapping name → np.ndarray, optional
        Axes of the vector descriptors (keys of :data:`AXES`).
    attrs : mapping, optional
        Root attributes.
    """
    if "file_name" not in examples:
        raise ParameterError(f"examples must contain 'file_name'; got columns {sorted(examples)}")
    K = len(examples["file_name"])
    for k, v in list(values.items()) + list(examples.items()):
        if len(v) != K:
            raise ParameterError(f"{k!r} has {len(v)} rows, expected {K}")
    unknown = [k for k in values if k not in DESCRIPTORS]
    if unknown:
        raise ParameterError(f"unknown descriptors {unknown}; valid names are {list(DESCRIPTORS)}")
    axes = dict(axes or {})
    with atomic_h5(path) as f:
        f.attrs.update(dict(attrs or {}))
        for name, axis in axes.items():
            f.create_dataset(AXES[name], data=np.asarray(axis, np.float64)).attrs["unit"] = "Hz"
        g = f.create_group("descriptors")
        for name in DESCRIPTORS:
            if name not in values:
                continue
            ds = g.create_dataset(name, data=np.asarray(values[name], np.float64))
            ds.attrs["unit"], ds.attrs["description"] = DESCRIPTORS[name]
            if name in AXES and name in axes:
                ds.attrs["axis"] = AXES[name]
        g = f.create_group("examples")
        for k, v in examples.items():
            write_column(g, k, v)
        g = f.create_group("failed")
        for k in ("file_name", "reason", "csv_row"):
            v = np.asarray(failed.get(k, []), dtype=np.int64 if k == "csv_row" else object)
            write_column(g, k, v)


def match_notes(names: ArrayLike, csv_rows: Optional[ArrayLike], query_names: ArrayLike,
                query_rows: Optional[ArrayLike] = None) -> np.ndarray:
    """Where each queried note sits in a list of notes: by ``file_name``, and by ``csv_row`` when a name
    occurs more than once.

    Parameters
    ----------
    names : array-like [shape=(K,)]
        ``file_name`` of the notes searched.
    csv_rows : array-like [shape=(K,)], optional
        Their meta-CSV rows (None: unknown).
    query_names : array-like [shape=(M,)]
    query_rows : array-like [shape=(M,)], optional

    Returns
    -------
    np.ndarray [shape=(M,), int64]
        Index into ``names`` of each queried note, -1 where it is missing or stays ambiguous.
    """
    names = np.asarray(names).astype(str)
    rows = np.full(len(names), -1) if csv_rows is None else np.asarray(csv_rows)
    index: Dict[str, List[int]] = {}
    for i, name in enumerate(names):
        index.setdefault(name, []).append(i)
    q_rows = np.full(len(query_names), -2) if query_rows is None else np.asarray(query_rows)
    out = np.full(len(query_names), -1, dtype=np.int64)
    for j, (name, row) in enumerate(zip(np.asarray(query_names).astype(str), q_rows)):
        hits = index.get(name, [])
        if len(hits) > 1:
            hits = [i for i in hits if rows[i] == row]
        if len(hits) == 1:
            out[j] = hits[0]
    return out
