"""The relevance HDF5 file: explanations of a trained model, readable with h5py and numpy alone.

Layout (K explained examples, C = the model's input channels, T frames; a public contract)::

    /relevance/<method>   (K, C, T) float32  input relevance R[path, frame] (attrs: family, description, seconds, the
                                             method's parameters; LRP: conv, dense, pool rules)
    /local/<method>         (K, C)   float32   local map: time average of R
    /aggregate/<method>     (n_classes, C) int64  top-n indicator sum per class (paper eq. 13);
                                             attrs top_n, grouped_by ("label", or "pred" without labels)
    /kurtosis/<method>      (K,)     float64   Fisher kurtosis of each local map
    /conservation/<method>  (K,)     float64   sum of input relevance / explained logit
    /localisation/<method>  (K,)     float64   1 / 0 / NaN (no ground truth): top S2 relevance within
                                             ±1 octave of /examples/modulation_hz (attr octaves); only when
                                             the data have modulation_hz and the model reads S2 paths
    /explained_rows/<method> (n,)    int64     rows the method explained (all K unless it was limited to a
                                             class-stratified subset; /relevance/<method> attr n_explained)
    /completeness/<method>  (K,)     float64   methods with a baseline x′ (Integrated Gradients): sum of
                                             relevance / (f_c(x) − f_c(x′)); 1 = exact completeness
    /features             (K, C, T) float32  the normalised input exactly as the model saw it
    /examples/<column>    (K,)               metadata columns of the features file (file_name, label,
                                             subset, modulation_hz…), plus pred (int64), explained (int64:
                                             the explained class) and logits (K, n_classes)
    /paths/{order, lambda1_hz, lambda2_hz, n1, n2}   (C,) the model's input paths (λ in Hz, λ2 NaN for S1)
    /grid/lambda1_hz      (n_λ1,)            grid rows: carrier frequency (Hz), ascending
    /grid/lambda2_hz      (1 + n_λ2,)        grid columns: 0 for the S1 column, then modulation rate (Hz)
    /grid/row, /grid/col  (C,) int64         grid cell of each path: grid[row, col] = local
    /files/…                                 audio-in explanations only (``scatterxai explain AUDIO.wav``):
                                             per-file means over its windows, see
                                             :mod:`scatterxai.explain.files`
    /time_profile/<method>  (K, T)   float32   audio-in explanations only: relevance summed over paths per
                                             window and frame (frame t of row k is centred at
                                             /examples/start_s[k] + /time_s[t] s of its file)
    root attributes       classes (the model's: labels, pred, logits columns and aggregate rows index it),
                          methods, rules (the LRP ones), epsilon, stabilizer, target, subset, top_n,
                          model_checksum (sha256 of model.pt), model_input, log_c, source ("features" or
                          "audio"), audio_root (when known), scattering parameters (sr, N, J, Q, T, fmin_hz,
                          n_frames…), scatterxai/zennit/kymatio/torch versions
    /example, /path, /frame, /class, /time_s, /order, /lambda1_hz, /lambda2_hz
                          netCDF-4 dimension scales and coordinates (:mod:`scatterxai.io.netcdf`; the grid's
                          axes are /grid/lambda1_hz and /grid/lambda2_hz); every dataset has ``units`` and
                          ``description`` attributes, so xarray (engine "h5netcdf") names every axis

Rows a method did not explain (a slow method limited with ``max_per_class``) are NaN in its
``/relevance``, ``/local``, ``/kurtosis``, ``/conservation``, ``/localisation`` and ``/completeness``; its
``/aggregate`` counts only its explained rows.  Every statistic of this module ignores NaN rows.
**Convention for comparisons across methods** (map comparison, quality checks): use the examples every
method explained, :meth:`RelevanceFile.common_rows` (the intersection of the methods' ``explained_rows``),
so that all methods are judged on the same notes.  Files written before version 0.2 have no
``/explained_rows``: every method explained every row.

Redrawing a map needs only h5py and numpy::

    grid = np.full((f["grid/lambda1_hz"].size, f["grid/lambda2_hz"].size), np.nan)
    grid[f["grid/row"][()], f["grid/col"][()]] = f["local/epsilon_plus"][k]

The writer is :func:`scatterxai.explain.explain`; the file is written to ``OUT.tmp`` and renamed into
place, so ``OUT`` is either absent or complete.  This module reads it (:class:`RelevanceFile`).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import h5py
import numpy as np

from .. import maps
from .._util.types import Indices
from ..errors import ParameterError, StoreError
from .hdf5 import H5Reader, has_link, read_string_array

__all__ = ["RelevanceFile", "format_summary", "PER_METHOD"]

#: datasets written for every method
PER_METHOD = ("relevance", "local", "aggregate", "kurtosis", "conservation")
_PATH_FIELDS = ("order", "lambda1_hz", "lambda2_hz", "n1", "n2")


class RelevanceFile(H5Reader):
    """Read a relevance file written by :func:`scatterxai.explain.explain` (arrays are read on demand).

    Attributes
    ----------
    methods : tuple of str
        The attribution methods the file holds (``rules`` is the same tuple, for files of LRP only).
    classes : tuple of str
    attrs : dict
        Root attributes.
    paths : dict of str → np.ndarray [shape=(C,)]
    grid : scatterxai.maps.GridIndex
    examples : dict of str → np.ndarray [shape=(K,)]
        Metadata columns (strings decoded), ``pred``, ``explained``; ``logits`` is :attr:`logits`.
    """

    KIND = "relevance"
    REQUIRED = ("features", "paths", "grid", "examples/logits", "examples/pred") + PER_METHOD

    def _validate(self):
        f = self._f
        key = "methods" if "methods" in f.attrs else "rules"   # files of version 0.1 name only rules
        if key not in f.attrs or "classes" not in f.attrs:
            raise StoreError(f"{self.path} lacks the root attributes 'methods' and 'classes'")
        self.methods = tuple(_text(r) for r in np.atleast_1d(f.attrs[key]))
        self.classes = tuple(_text(c) for c in np.atleast_1d(f.attrs["classes"]))
        if not self.classes:
            raise StoreError(f"{self.path}: the root attribute 'classes' is empty")
        x = self._dataset("features", ndim=3)
        self._K, C, T = x.shape
        self.paths = {k: self._dataset(f"paths/{k}", shape=(C,))[()] for k in _PATH_FIELDS}
        self.grid = self._validate_grid(C)
        n = len(self.classes)
        for rule in self.methods:
            self._dataset(f"relevance/{rule}", shape=(self._K, C, T))
            self._dataset(f"local/{rule}", shape=(self._K, C))
            self._dataset(f"aggregate/{rule}", shape=(n, C))
            for group in ("kurtosis", "conservation"):
                self._dataset(f"{group}/{rule}", shape=(self._K,))
            for group in ("completeness", "localisation"):
                if has_link(f, f"{group}/{rule}"):
                    self._dataset(f"{group}/{rule}", shape=(self._K,))
            if has_link(f, f"explained_rows/{rule}"):
                self._indices(f"explained_rows/{rule}", self._K, unique=True)
        self._dataset("examples/logits", shape=(self._K, n))
        self.examples: Dict[str, np.ndarray] = self._read_examples(skip=("logits",))
        for k, v in self.examples.items():
            if len(v) != self._K:
                raise StoreError(f"{self.path}: /examples/{k} has {len(v)} rows, /features has {self._K}")
        for k in ("pred", "explained", "label"):
            if k in self.examples:
                self._check_classes(k, self.examples[k], n)
        if "pred" not in self.examples:
            raise StoreError(f"{self.path} lacks /examples/pred: not a complete scatterxai relevance file")

    def _dataset(self, name: str, *, ndim: Optional[int] = None, shape: Optional[tuple] = None):
        """``/name`` (hard links only), checked to be a numeric dataset of ``ndim`` dimensions or ``shape``."""
        ds = self._obj(name)
        if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "iuf":
            raise StoreError(f"{self.path}: /{name} must be a numeric dataset")
        if (ndim is not None and ds.ndim != ndim) or (shape is not None and ds.shape != tuple(shape)):
            want = f"{ndim}-D" if shape is None else str(tuple(shape))
            raise StoreError(f"{self.path}: /{name} has shape {ds.shape}, expected {want}; the file is damaged "
                             f"or was not written by scatterxai explain")
        return ds

    def _indices(self, name: str, n: int, *, unique: bool = False) -> np.ndarray:
        values = self._dataset(name, ndim=1)[()]
        if values.dtype.kind == "f" and not np.all(values == np.round(values)):
            raise StoreError(f"{self.path}: /{name} holds non-integer values")
        values = values.astype(np.int64)
        if values.size and (values.min() < 0 or values.max() >= n):
            raise StoreError(f"{self.path}: /{name} holds values outside [0, {n})")
        if unique and np.any(np.diff(values) <= 0):
            raise StoreError(f"{self.path}: /{name} must be increasing rows without repeats")
        return values

    def _check_classes(self, column: str, values: np.ndarray, n: int) -> None:
        values = np.asarray(values)
        bad = (values.dtype.kind not in "iuf" or not np.all(np.isfinite(values))
               or values.size and (values.min() < 0 or values.max() >= n or np.any(values != np.round(values))))
        if bad:
            raise StoreError(f"{self.path}: /examples/{column} must hold class indices in [0, {n}) "
                             f"(the file's classes {list(self.classes)})")

    def _validate_grid(self, C: int) -> maps.GridIndex:
        lam1 = self._dataset("grid/lambda1_hz", ndim=1)[()]
        lam2 = self._dataset("grid/lambda2_hz", ndim=1)[()]
        if not (np.all(np.isfinite(lam1)) and np.all(np.isfinite(lam2)) and lam2.size and (lam1 > 0).all()):
            raise StoreError(f"{self.path}: /grid/lambda1_hz and /grid/lambda2_hz must hold finite frequencies")
        self._dataset("grid/row", shape=(C,))
        self._dataset("grid/col", shape=(C,))
        return maps.GridIndex(row=self._indices("grid/row", lam1.size), col=self._indices("grid/col", lam2.size),
                              lambda1_hz=lam1, lambda2_hz=lam2)

    @property
    def rules(self) -> tuple:
        """The methods (name kept from version 0.1, when every method was an LRP rule)."""
        return self.methods

    def __len__(self) -> int:
        return self._K

    def _rows(self, rows) -> np.ndarray:
        rows = np.sort(np.asarray(rows, dtype=np.int64).ravel())
        if rows.size and (rows[0] < 0 or rows[-1] >= self._K):
            raise ParameterError(f"rows must lie in [0, {self._K}) for {self.path}, got {rows[0]}…{rows[-1]}")
        return rows

    def _get(self, group: str, rule: str, rows=None):
        if rule not in self.methods:
            raise ParameterError(f"method {rule!r} is not in {self.path}; it holds {list(self.methods)}")
        ds = self._obj(f"{group}/{rule}")
        return ds[()] if rows is None else ds[self._rows(rows)]

    @property
    def logits(self) -> np.ndarray:
        return self._obj("examples/logits")[()]

    @property
    def labels(self) -> Optional[np.ndarray]:
        """True labels (K,), or None if the explained data had none."""
        return self.examples.get("label")

    def features(self, rows: Optional[Indices] = None) -> np.ndarray:
        """The normalised network input (k, C, T) of ``rows`` (sorted) or of all examples."""
        ds = self._obj("features")
        return ds[()] if rows is None else ds[self._rows(rows)]

    def relevance(self, rule: str, rows: Optional[Indices] = None) -> np.ndarray:
        return self._get("relevance", rule, rows)

    def local(self, rule: str) -> np.ndarray:
        return self._get("local", rule)

    def time_profile(self, rule: str, rows: Optional[Indices] = None) -> Optional[np.ndarray]:
        """Relevance summed over paths (k, T) of ``rows`` (sorted) or of all examples, from
        ``/time_profile`` (audio-in explanations); None for a file without it."""
        if "time_profile" not in self._f:
            return None
        return self._get("time_profile", rule, rows)

    @property
    def frame_times(self) -> np.ndarray:
        """Centres (s) of the T frames in a window (``/time_s``)."""
        return self._obj("time_s")[()]

    def aggregate(self, rule: str) -> np.ndarray:
        return self._get("aggregate", rule)

    def kurtosis(self, rule: str) -> np.ndarray:
        return self._get("kurtosis", rule)

    def conservation(self, rule: str) -> np.ndarray:
        return self._get("conservation", rule)

    def explained_rows(self, rule: str) -> np.ndarray:
        """Sorted indices (int64) of the rows ``rule`` explained (all rows for files without
        ``/explained_rows``)."""
        if rule not in self.methods:
            raise ParameterError(f"method {rule!r} is not in {self.path}; it holds {list(self.methods)}")
        if has_link(self._f, f"explained_rows/{rule}"):
            return self._indices(f"explained_rows/{rule}", self._K, unique=True)
        return np.arange(len(self), dtype=np.int64)

    def common_rows(self, methods: Optional[Sequence[str]] = None) -> np.ndarray:
        """Sorted rows that every one of ``methods`` (default: all) explained — the rows on which methods
        are compared."""
        rows = np.arange(len(self), dtype=np.int64)
        for m in (methods or self.methods):
            rows = np.intersect1d(rows, self.explained_rows(m))
        return rows

    def completeness(self, rule: str) -> Optional[np.ndarray]:
        """Σ R / (f_c(x) − f_c(x′)) per example (NaN where not explained), or None for methods without a
        baseline."""
        if not has_link(self._f, f"completeness/{rule}"):
            return None
        return self._get("completeness", rule)

    def localisation(self, rule: str) -> Optional[np.ndarray]:
        """1 / 0 / NaN per example, or None when the file has no ground-truth localisation."""
        if not has_link(self._f, f"localisation/{rule}"):
            return None
        return self._get("localisation", rule)

    def localisation_misses(self, rule: str) -> Optional[dict]:
        """Where the top S2 relevance lies for non-localised examples (:func:`scatterxai.maps.localisation_misses`;
        F0 from ``/examples/f0_hz`` when present), or None without ground truth."""
        if self.localisation(rule) is None:
            return None
        rows = self.explained_rows(rule)
        f0 = self.examples.get("f0_hz")
        return maps.localisation_misses(self.local(rule)[rows], self.paths,
                                        np.asarray(self.examples["modulation_hz"], dtype=float)[rows],
                                        None if f0 is None else np.asarray(f0, dtype=float)[rows],
                                        octaves=float(self._obj(f"localisation/{rule}").attrs.get(
                                            "octaves", maps.LOCALISATION_OCTAVES)))

    def files(self) -> Optional[Dict[str, np.ndarray]]:
        """Per-file means of an audio-in explanation (``/files``: ``file_name``, ``duration_s``,
        ``n_segments``, ``probability``, ``pred``, ``local/<method>``, ``peak_time_s/<method>``), or None for
        a features-file one."""
        if not has_link(self._f, "files"):
            return None
        g = self._obj("files")
        groups = ("local", "peak_time_s")   # one dataset per method
        out = {k: read_string_array(self._obj(f"files/{k}")) for k in g if k not in groups}
        for name in groups:
            if has_link(self._f, f"files/{name}"):
                out.update({f"{name}/{m}": self._obj(f"files/{name}/{m}")[()] for m in self._obj(f"files/{name}")})
        n = len(out.get("file_name", ()))
        for k, v in out.items():
            if len(v) != n:
                raise StoreError(f"{self.path}: /files/{k} has {len(v)} rows, /files/file_name has {n}")
        return out

    def to_grid(self, values: np.ndarray) -> np.ndarray:
        """Per-path values (..., C) → (..., n_λ1, 1 + n_λ2) on the file's grid (NaN where no path)."""
        values = np.asarray(values)
        if values.shape[-1:] != self.grid.row.shape:
            raise ParameterError(f"values must have shape (..., {self.grid.row.size}), got {values.shape}")
        out = np.full(values.shape[:-1] + self.grid.shape, np.nan)
        out[..., self.grid.row, self.grid.col] = values
        return out

    def s1_share(self, rule: str, *, mode: str = "abs", block: int = 256) -> np.ndarray:
        """Per-example share of relevance on S1 paths (see :func:`scatterxai.maps.s1_share`), streamed."""
        if rule not in self.methods:
            raise ParameterError(f"method {rule!r} is not in {self.path}; it holds {list(self.methods)}")
        ds = self._obj(f"relevance/{rule}")
        return np.concatenate([maps.s1_share(ds[i:i + block], self.paths, mode=mode)
                               for i in range(0, len(self), block)] or [np.zeros(0)])

    def summary(self, rules: Optional[Sequence[str]] = None) -> dict:
        """Per-rule statistics for reports, each as :func:`scatterxai.maps.class_summary` output.

        Examples are grouped by true label (by prediction if the file has no labels).  For each rule:
        ``kurtosis``, ``s1_share`` (|R|), ``s1_share_positive``, ``conservation``, ``localisation`` (its
        ``mean`` is the localisation score; None without ground truth), ``completeness`` (None for methods
        without a baseline) and ``n_explained``; rows a method did not explain (NaN) are left out of its
        statistics.  ``accuracy`` (overall and per class, when labels exist) and ``grouped_by`` are given once.
        """
        groups = self.labels if self.labels is not None else self.examples["pred"]
        groups = np.asarray(groups, dtype=np.int64)
        n_classes = len(self.classes)
        result = {"grouped_by": "label" if self.labels is not None else "pred", "n_examples": len(self),
                  "rules": {}}
        if self.labels is not None:
            result["accuracy"] = maps.class_summary((self.examples["pred"] == groups).astype(float), groups,
                                                    n_classes)
        for rule in (rules or self.methods):
            loc = self.localisation(rule)
            comp = self.completeness(rule)
            result["rules"][rule] = {
                "n_explained": int(len(self.explained_rows(rule))),
                "kurtosis": maps.class_summary(self.kurtosis(rule), groups, n_classes),
                "s1_share": maps.class_summary(self.s1_share(rule), groups, n_classes),
                "s1_share_positive": maps.class_summary(self.s1_share(rule, mode="positive"), groups,
                                                        n_classes),
                "conservation": maps.class_summary(self.conservation(rule), groups, n_classes),
                "localisation": None if loc is None else maps.class_summary(loc, groups, n_classes),
                "completeness": None if comp is None else maps.class_summary(comp, groups, n_classes),
            }
        return result


def _text(value) -> str:
    """An attribute string (bytes decoded, undecodable bytes replaced)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def format_summary(summary: dict, classes: Sequence[str]) -> str:
    """Markdown table of :meth:`RelevanceFile.summary`: one row per rule and statistic, one column per class."""
    head = "| rule | statistic | all | " + " | ".join(classes) + " |"
    lines = [head, "|" + "---|" * (3 + len(classes))]

    def cell(mean, std=None, pct=False):
        if not np.isfinite(mean):
            return "–"
        if pct:
            return f"{100 * mean:.1f} %"
        return f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.3f}"

    for rule, stats in summary["rules"].items():
        for key, label, pct in (("kurtosis", "kurtosis", False), ("s1_share", "S1 share of abs(R)", True),
                                ("s1_share_positive", "S1 share of max(R, 0)", True),
                                ("conservation", "conserved share", False),
                                ("localisation", "localised (±1 octave)", True),
                                ("completeness", "IG completeness", False)):
            s = stats.get(key)
            if s is None:
                continue
            std = None if pct else s["std"]
            per = [cell(m, None if pct else sd, pct) for m, sd in zip(s["per_class"]["mean"],
                                                                     s["per_class"]["std"])]
            lines.append(f"| {rule} | {label} | {cell(s['mean'], std, pct)} | " + " | ".join(per) + " |")
    return "\n".join(lines)
