"""The (λ1, λ2) plane: local maps and the grid layout of per-path values — pure numpy (no torch).

Every function takes arrays with leading batch axes and a path table: a
:class:`scatterxai.scattering.PathTable`, or any mapping with the columns ``order, lambda1_hz, lambda2_hz,
n1, n2`` (e.g. the ``/paths`` group of an exported HDF5 file, or ``LoadedModel.paths``).

local map
    Time average of the relevance R[path, frame] → one value per path (paper).
grid
    Rows: first-order filters n1, sorted by λ1 ascending.  Column 0: S1 (drawn at "λ2 = 0"); columns 1…:
    second-order filters n2, sorted by λ2 ascending.  Cells without a path are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Mapping, Sequence, Tuple, Union

import numpy as np

from ..errors import ParameterError
from ..task import PATH_FIELDS as _FIELDS

if TYPE_CHECKING:
    from ..scattering.config import PathTable

__all__ = ["local_map", "GridIndex", "grid_index", "grid_layout", "grid_values", "path_columns"]

#: A path table: a :class:`~scatterxai.scattering.PathTable` or a mapping of its columns (h5py groups included).
PathsLike = Union["PathTable", Mapping[str, np.ndarray]]


def path_columns(table: PathsLike, fields: Sequence[str] = _FIELDS) -> Dict[str, np.ndarray]:
    """Path columns (default the five of ``PATH_FIELDS``) of a PathTable or a mapping (h5py groups
    included) as numpy arrays of equal length."""
    try:
        if isinstance(table, Mapping):  # dicts and h5py groups (datasets convert with np.asarray)
            cols = {k: np.asarray(table[k]) for k in fields}
        else:
            cols = {k: np.asarray(getattr(table, k)) for k in fields}
    except (KeyError, AttributeError) as e:
        raise ParameterError(f"table must be a PathTable or a mapping with columns {list(fields)}; "
                             f"missing {e}") from None
    C = cols["order"].shape
    if len(C) != 1 or any(v.shape != C for v in cols.values()):
        raise ParameterError(f"path columns must be 1-D arrays of equal length, got shapes "
                             f"{ {k: v.shape for k, v in cols.items()} }")
    return cols


def _check_last_axis(values: np.ndarray, C: int, name: str):
    if values.ndim < 1 or values.shape[-1] != C:
        raise ParameterError(f"{name} must have shape (..., C) with C = {C} paths, got {values.shape}")


def local_map(R: np.ndarray, *, axis: int = -1) -> np.ndarray:
    """Time average of relevance: R [shape=(..., C, T)] → local map [shape=(..., C)]."""
    R = np.asarray(R)
    if R.ndim < 2:
        raise ParameterError(f"R must have shape (..., C, T), got {R.shape}")
    return R.mean(axis=axis)


@dataclass(frozen=True)
class GridIndex:
    """Where each path goes on the (λ1, λ2) grid.

    Attributes
    ----------
    row, col : np.ndarray [shape=(C,), int64]
        Cell of each path; ``col == 0`` for first-order paths.
    lambda1_hz : np.ndarray [shape=(n_λ1,)]
        Carrier frequency of each row (Hz, ascending).
    lambda2_hz : np.ndarray [shape=(1 + n_λ2,)]
        Modulation rate of each column (Hz): 0 for the S1 column, then ascending.
    """

    row: np.ndarray
    col: np.ndarray
    lambda1_hz: np.ndarray
    lambda2_hz: np.ndarray

    @property
    def shape(self) -> Tuple[int, int]:
        return (len(self.lambda1_hz), len(self.lambda2_hz))


def _levels(keys: np.ndarray, freqs: np.ndarray, what: str):
    """Distinct filter indices sorted by frequency, their frequencies, and each element's level."""
    uniq = np.unique(keys)
    f = np.empty(len(uniq))
    for i, k in enumerate(uniq):
        fk = freqs[keys == k]
        if not np.allclose(fk, fk[0], rtol=1e-9, atol=0):
            raise ParameterError(f"paths with {what} = {k} have different frequencies {np.unique(fk)[:4]}")
        f[i] = fk[0]
    order = np.argsort(f, kind="stable")
    level = np.empty(len(uniq), np.int64)
    level[order] = np.arange(len(uniq))
    return f[order], level[np.searchsorted(uniq, keys)]


def grid_index(table: PathsLike) -> GridIndex:
    """Grid cell of every path of ``table`` (see the module docstring for the layout)."""
    cols = path_columns(table)
    order = cols["order"].astype(np.int64)
    if not np.isin(order, (1, 2)).all():
        raise ParameterError(f"path orders must be 1 or 2, got {np.unique(order)}")
    lam1, row = _levels(cols["n1"].astype(np.int64), cols["lambda1_hz"].astype(float), "n1")
    col = np.zeros(len(order), np.int64)
    s2 = order == 2
    if s2.any():
        lam2, level2 = _levels(cols["n2"][s2].astype(np.int64), cols["lambda2_hz"][s2].astype(float), "n2")
        col[s2] = 1 + level2
    else:
        lam2 = np.zeros(0)
    cells = row * (len(lam2) + 1) + col
    if np.unique(cells).size != cells.size:
        raise ParameterError("two paths share a (n1, n2) cell; the table is not a scattering path table")
    return GridIndex(row=row, col=col, lambda1_hz=lam1, lambda2_hz=np.concatenate([[0.0], lam2]))


def grid_layout(values: np.ndarray, table: PathsLike) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lay per-path values on the (λ1, λ2) grid.

    Parameters
    ----------
    values : np.ndarray [shape=(..., C)]
    table : PathTable or mapping of path columns

    Returns
    -------
    grid : np.ndarray [shape=(..., n_λ1, 1 + n_λ2), float64]
        NaN where no path exists.
    lambda1_hz : np.ndarray [shape=(n_λ1,)]
        Row frequencies (Hz), ascending.
    lambda2_hz : np.ndarray [shape=(1 + n_λ2,)]
        Column frequencies (Hz): 0 for S1, then ascending.
    """
    values = np.asarray(values)
    g = grid_index(table)
    _check_last_axis(values, len(g.row), "values")
    grid = np.full(values.shape[:-1] + g.shape, np.nan)
    grid[..., g.row, g.col] = values
    return grid, g.lambda1_hz, g.lambda2_hz


def grid_values(grid: np.ndarray, table: PathsLike) -> np.ndarray:
    """Inverse of :func:`grid_layout`: grid [shape=(..., n_λ1, 1 + n_λ2)] → per-path values (..., C)."""
    grid = np.asarray(grid)
    g = grid_index(table)
    if grid.ndim < 2 or grid.shape[-2:] != g.shape:
        raise ParameterError(f"grid must have shape (..., {g.shape[0]}, {g.shape[1]}), got {grid.shape}")
    return grid[..., g.row, g.col]
