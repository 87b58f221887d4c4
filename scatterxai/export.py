"""The relevance HDF5 file: LRP explanations of a trained model, readable with h5py and numpy alone.

Layout (K explained examples, C = the model's input channels, T frames; a public contract)::

    /relevance/<rule>     (K, C, T) float32  input relevance R[path, frame] (attrs: conv, dense, pool rules)
    /local/<rule>         (K, C)   float32   local map: time average of R
    /aggregate/<rule>     (n_classes, C) int64  top-n indicator sum per class (paper eq. 13);
                                             attrs top_n, grouped_by ("label", or "pred" without labels)
    /kurtosis/<rule>      (K,)     float64   Fisher kurtosis of each local map
    /conservation/<rule>  (K,)     float64   sum of input relevance / explained logit
    /localisation/<rule>  (K,)     float64   1 / 0 / NaN (no ground truth): top S2 relevance within
                                             ±1 octave of /examples/modulation_hz (attr octaves); only when
                                             the data have modulation_hz and the model reads S2 paths
    /features             (K, C, T) float32  the normalised input exactly as the model saw it
    /examples/<column>    (K,)               metadata columns of the features file (file_name, label,
                                             subset, modulation_hz…), plus pred (int64), explained (int64:
                                             the explained class) and logits (K, n_classes)
    /paths/{order, lambda1_hz, lambda2_hz, n1, n2}   (C,) the model's input paths (λ in Hz, λ2 NaN for S1)
    /grid/lambda1_hz      (n_λ1,)            grid rows: carrier frequency (Hz), ascending
    /grid/lambda2_hz      (1 + n_λ2,)        grid columns: 0 for the S1 column, then modulation rate (Hz)
    /grid/row, /grid/col  (C,) int64         grid cell of each path: grid[row, col] = local
    root attributes       classes, rules, epsilon, stabilizer, target, subset, top_n, model_checksum
                          (sha256 of model.pt), model_input, log_c, scattering parameters (sr, N, J, Q, T,
                          fmin_hz, n_frames…), scatterxai/zennit/kymatio/torch versions

Redrawing a map needs only h5py and numpy::

    grid = np.full((f["grid/lambda1_hz"].size, f["grid/lambda2_hz"].size), np.nan)
    grid[f["grid/row"][()], f["grid/col"][()]] = f["local/epsilon_plus"][k]

The file is written to ``OUT.tmp`` and renamed into place, so ``OUT`` is either absent or complete.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path
from typing import Dict, Optional, Sequence

import h5py
import numpy as np

from . import maps
from .errors import ParameterError, StoreError
from .relevance import DEFAULT_EPSILON, ZENNIT_STABILIZER, attribute, get_rule
from .store import open_hdf5, read_string_array, scattering_attrs, write_column

__all__ = ["explain", "RelevanceFile", "format_summary", "LOCALISATION_OCTAVES"]

#: tolerance of the ground-truth localisation check, in octaves on each side
LOCALISATION_OCTAVES = 1.0
_PATH_FIELDS = ("order", "lambda1_hz", "lambda2_hz", "n1", "n2")
_PER_RULE = ("relevance", "local", "aggregate", "kurtosis", "conservation")


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _rule_names(rules) -> list:
    if isinstance(rules, str):
        rules = [r for r in rules.split(",") if r]
    names = []
    for r in rules:
        name = get_rule(r).name
        if name not in names:
            names.append(name)
    if not names:
        raise ParameterError("rules is empty; give at least one of the presets in scatterxai.relevance.RULES")
    return names


def explain(features, *, model_dir, rules, out, subset: Optional[str] = "test", target: str = "pred",
            top_n: int = 5, epsilon: float = DEFAULT_EPSILON, device="auto", batch_size: int = 64,
            progress: bool = True) -> Path:
    """Explain a trained model's predictions on a features file with LRP and write RELEVANCE.h5.

    Parameters
    ----------
    features : str or Path
        Features HDF5 file (:class:`scatterxai.store.FeatureFile`).
    model_dir : str or Path
        Model directory (:func:`scatterxai.model.load_model`); must match the features' scattering.
    rules : sequence of str, or a comma-separated str
        Rule presets (keys of :data:`scatterxai.relevance.RULES`).
    out : str or Path
        Output file (replaced atomically if it exists).
    subset : str or None
        Rows to explain ("training", "validation", "test"); None or "all" for every row.
    target : {"pred", "true"}
        Explain the predicted class (paper) or the true label.
    top_n : int
        n of the class-wise top-n aggregation.
    epsilon : float
        ε of the ε-rule (see :mod:`scatterxai.relevance`).
    device : str
    batch_size : int
        Examples attributed at once.
    progress : bool
        Show progress bars.

    Returns
    -------
    Path of the written file.
    """
    from .model import load_model
    from .store import FeatureFile

    names = _rule_names(rules)
    if target not in ("pred", "true"):
        raise ParameterError(f"target must be 'pred' or 'true', got {target!r}")
    if isinstance(top_n, bool) or not isinstance(top_n, (int, np.integer)) or top_n < 1:
        raise ParameterError(f"top_n must be a positive integer, got {top_n!r}")
    out = Path(out)
    model = load_model(model_dir, device=device)
    with FeatureFile(features) as ff:
        model.check_compatible(ff)
        rows = ff.indices(None if subset in (None, "all") else subset)
        examples = {k: v[rows] for k, v in ff.examples.items()}
        if target == "true" and "label" not in examples:
            raise ParameterError(f"target='true' needs labels but {ff.path} has no /examples/label column; "
                                 f"use target='pred'")
        x = model.prepare(ff.load(rows))
        attrs = scattering_attrs(ff.config, ff.table)
    classes = list(model.classes)
    n_classes = len(classes)
    paths = model.paths
    grid = maps.grid_index(paths)
    labels = np.asarray(examples["label"], dtype=np.int64) if "label" in examples else None
    target_arg = labels if target == "true" else "pred"
    modulation = (np.asarray(examples["modulation_hz"], dtype=float)
                  if "modulation_hz" in examples and (paths["order"] == 2).any() else None)

    attrs.update(classes=np.array(classes, dtype=object), rules=np.array(names, dtype=object),
                 epsilon=float(epsilon), stabilizer=min(float(epsilon), ZENNIT_STABILIZER), target=target,
                 subset=str(subset) if subset is not None else "all", top_n=int(top_n),
                 model_checksum=model.checksum, model_input=str(model.config.get("input", "")),
                 log_c=model.c, zennit_version=_version("zennit"), torch_version=_version("torch"),
                 features_file=os.path.basename(os.fspath(features)))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs.update(attrs)
            K, C, T = x.shape
            f.create_dataset("features", data=x.cpu().numpy(), chunks=(1, C, T) if K else None)
            g = f.create_group("paths")
            for k in _PATH_FIELDS:
                g.create_dataset(k, data=paths[k])
            g = f.create_group("grid")
            for k in ("row", "col", "lambda1_hz", "lambda2_hz"):
                g.create_dataset(k, data=getattr(grid, k))
            for name in names:
                res = attribute(model.net, x, rule=name, target=target_arg, epsilon=epsilon,
                                batch_size=batch_size, device=model.device, progress=progress)
                if "examples" not in f:  # written once, from the first rule's forward pass
                    g = f.create_group("examples")
                    for k, v in examples.items():
                        # names this file defines itself win over same-named metadata columns
                        write_column(g, k if k not in ("pred", "explained", "logits") else f"meta_{k}", v)
                    pred = res.logits.argmax(axis=1).astype(np.int64)
                    g.create_dataset("pred", data=pred)
                    g.create_dataset("explained", data=res.explained)
                    g.create_dataset("logits", data=res.logits.astype(np.float32))
                    groups = (labels, "label") if labels is not None else (pred, "pred")
                local = maps.local_map(res.relevance)
                preset = get_rule(name)
                ds = f.create_dataset(f"relevance/{name}", data=res.relevance.astype(np.float32, copy=False),
                                      chunks=(1, C, T) if K else None)
                ds.attrs.update(conv=preset.conv, dense=preset.dense, pool=preset.pool,
                                description=preset.describe())
                f.create_dataset(f"local/{name}", data=local.astype(np.float32))
                ds = f.create_dataset(f"aggregate/{name}",
                                      data=maps.topn_aggregate(local, groups[0], n_classes, n=min(top_n, C)))
                ds.attrs.update(top_n=int(top_n), grouped_by=groups[1])
                f.create_dataset(f"kurtosis/{name}", data=maps.map_kurtosis(local))
                f.create_dataset(f"conservation/{name}", data=res.conservation.astype(np.float64))
                if modulation is not None:
                    ds = f.create_dataset(f"localisation/{name}", data=maps.localisation(
                        local, paths, modulation, octaves=LOCALISATION_OCTAVES))
                    ds.attrs["octaves"] = LOCALISATION_OCTAVES
                del res, local
        os.replace(tmp, out)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
    return out


class RelevanceFile:
    """Read a relevance file written by :func:`explain` (arrays are read on demand).

    Attributes
    ----------
    rules : tuple of str
    classes : tuple of str
    attrs : dict
        Root attributes.
    paths : dict of str → np.ndarray [shape=(C,)]
    grid : scatterxai.maps.GridIndex
    examples : dict of str → np.ndarray [shape=(K,)]
        Metadata columns (strings decoded), ``pred``, ``explained``; ``logits`` is :attr:`logits`.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._f = open_hdf5(self.path, "relevance")
        try:
            self._validate()
        except Exception:
            self._f.close()
            raise

    def _validate(self):
        f = self._f
        for name in ("features", "paths", "grid", "examples/logits", "examples/pred") + _PER_RULE:
            if name not in f:
                raise StoreError(f"{self.path} lacks /{name}: not a scatterxai relevance file")
        if "rules" not in f.attrs or "classes" not in f.attrs:
            raise StoreError(f"{self.path} lacks the root attributes 'rules' and 'classes'")
        self.rules = tuple(str(r) for r in f.attrs["rules"])
        self.classes = tuple(str(c) for c in f.attrs["classes"])
        for group in _PER_RULE:
            missing = [r for r in self.rules if r not in f[group]]
            if missing:
                raise StoreError(f"{self.path}: /{group} lacks rules {missing}")
        self.attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items()}
        self.paths = {k: f["paths"][k][()] for k in _PATH_FIELDS}
        g = f["grid"]
        self.grid = maps.GridIndex(row=g["row"][()], col=g["col"][()], lambda1_hz=g["lambda1_hz"][()],
                                   lambda2_hz=g["lambda2_hz"][()])
        self.examples: Dict[str, np.ndarray] = {k: read_string_array(f["examples"][k])
                                                for k in f["examples"] if k != "logits"}

    def __len__(self) -> int:
        return self._f["features"].shape[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._f.close()

    def _get(self, group: str, rule: str, rows=None):
        if rule not in self.rules:
            raise ParameterError(f"rule {rule!r} is not in {self.path}; it holds {list(self.rules)}")
        ds = self._f[group][rule]
        return ds[()] if rows is None else ds[np.sort(np.asarray(rows))]

    @property
    def logits(self) -> np.ndarray:
        return self._f["examples/logits"][()]

    @property
    def labels(self) -> Optional[np.ndarray]:
        """True labels (K,), or None if the explained data had none."""
        return self.examples.get("label")

    def features(self, rows=None) -> np.ndarray:
        """The normalised network input (k, C, T) of ``rows`` (sorted) or of all examples."""
        ds = self._f["features"]
        return ds[()] if rows is None else ds[np.sort(np.asarray(rows))]

    def relevance(self, rule: str, rows=None) -> np.ndarray:
        return self._get("relevance", rule, rows)

    def local(self, rule: str) -> np.ndarray:
        return self._get("local", rule)

    def aggregate(self, rule: str) -> np.ndarray:
        return self._get("aggregate", rule)

    def kurtosis(self, rule: str) -> np.ndarray:
        return self._get("kurtosis", rule)

    def conservation(self, rule: str) -> np.ndarray:
        return self._get("conservation", rule)

    def localisation(self, rule: str) -> Optional[np.ndarray]:
        """1 / 0 / NaN per example, or None when the file has no ground-truth localisation."""
        if "localisation" not in self._f or rule not in self._f["localisation"]:
            return None
        return self._get("localisation", rule)

    def localisation_misses(self, rule: str) -> Optional[dict]:
        """Where the top S2 relevance lies for non-localised examples (:func:`scatterxai.maps.localisation_misses`;
        F0 from ``/examples/f0_hz`` when present), or None without ground truth."""
        if self.localisation(rule) is None:
            return None
        f0 = self.examples.get("f0_hz")
        return maps.localisation_misses(self.local(rule), self.paths,
                                        np.asarray(self.examples["modulation_hz"], dtype=float),
                                        None if f0 is None else np.asarray(f0, dtype=float),
                                        octaves=float(self._f["localisation"][rule].attrs.get(
                                            "octaves", LOCALISATION_OCTAVES)))

    def to_grid(self, values) -> np.ndarray:
        """Per-path values (..., C) → (..., n_λ1, 1 + n_λ2) on the file's grid (NaN where no path)."""
        values = np.asarray(values)
        if values.shape[-1:] != self.grid.row.shape:
            raise ParameterError(f"values must have shape (..., {self.grid.row.size}), got {values.shape}")
        out = np.full(values.shape[:-1] + self.grid.shape, np.nan)
        out[..., self.grid.row, self.grid.col] = values
        return out

    def s1_share(self, rule: str, *, mode: str = "abs", block: int = 256) -> np.ndarray:
        """Per-example share of relevance on S1 paths (see :func:`scatterxai.maps.s1_share`), streamed."""
        if rule not in self.rules:
            raise ParameterError(f"rule {rule!r} is not in {self.path}; it holds {list(self.rules)}")
        ds = self._f["relevance"][rule]
        return np.concatenate([maps.s1_share(ds[i:i + block], self.paths, mode=mode)
                               for i in range(0, len(self), block)] or [np.zeros(0)])

    def summary(self, rules: Optional[Sequence[str]] = None) -> dict:
        """Per-rule statistics for reports, each as :func:`scatterxai.maps.class_summary` output.

        Examples are grouped by true label (by prediction if the file has no labels).  For each rule:
        ``kurtosis``, ``s1_share`` (|R|), ``s1_share_positive``, ``conservation`` and ``localisation``
        (its ``mean`` is the localisation score; None without ground truth).  ``accuracy`` (overall and per
        class, when labels exist) and ``grouped_by`` are given once.
        """
        groups = self.labels if self.labels is not None else self.examples["pred"]
        groups = np.asarray(groups, dtype=np.int64)
        n_classes = len(self.classes)
        result = {"grouped_by": "label" if self.labels is not None else "pred", "n_examples": len(self),
                  "rules": {}}
        if self.labels is not None:
            result["accuracy"] = maps.class_summary((self.examples["pred"] == groups).astype(float), groups,
                                                    n_classes)
        for rule in (rules or self.rules):
            loc = self.localisation(rule)
            result["rules"][rule] = {
                "kurtosis": maps.class_summary(self.kurtosis(rule), groups, n_classes),
                "s1_share": maps.class_summary(self.s1_share(rule), groups, n_classes),
                "s1_share_positive": maps.class_summary(self.s1_share(rule, mode="positive"), groups,
                                                        n_classes),
                "conservation": maps.class_summary(self.conservation(rule), groups, n_classes),
                "localisation": None if loc is None else maps.class_summary(loc, groups, n_classes),
            }
        return result


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
                                ("localisation", "localised (±1 octave)", True)):
            s = stats.get(key)
            if s is None:
                continue
            std = None if pct else s["std"]
            per = [cell(m, None if pct else sd, pct) for m, sd in zip(s["per_class"]["mean"],
                                                                     s["per_class"]["std"])]
            lines.append(f"| {rule} | {label} | {cell(s['mean'], std, pct)} | " + " | ".join(per) + " |")
    return "\n".join(lines)
