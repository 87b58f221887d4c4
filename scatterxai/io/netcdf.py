"""netCDF-4 dimension scales, ``units`` and ``description`` on the datasets of the package's HDF5 files.

The files stay plain HDF5 (the h5py layout is unchanged); this adds what netCDF-4 readers need to name
the axes, so that ``xarray.open_dataset(path, engine="h5netcdf")`` and its ``group=`` argument give named
dimensions and coordinates instead of ``phony_dim_*``:

* root coordinate variables (HDF5 dimension scales): ``example`` (row index), ``path`` (path index),
  ``frame`` (frame index) and, per frame and per path, the coordinates ``time_s``, ``order``,
  ``lambda1_hz`` and ``lambda2_hz`` (copies of ``/paths``; the root ``/features`` names them in its
  ``coordinates`` attribute); ``class`` (class names) in relevance files;
* every other dataset has its axes attached to those scales.  A dimension defined in the root is
  visible in every group (netCDF-4's rule, which h5netcdf follows), so each group opens on its own with
  named dimensions: ``group="examples"`` (``example``), ``"paths"`` (``path``), ``"relevance"``
  (``example, path, frame``), ``"aggregate"`` (``class, path``)…  Dimensions used by one group only are
  defined in it: ``failure`` in ``/failed`` (a dimension without coordinate values) and the grid axes
  ``lambda1_hz``, ``lambda2_hz`` in ``/grid`` (the grid's own frequency datasets are its coordinates);
* ``units`` on every dataset: "Hz", "s", "dB", "semitone", "1" (a dimensionless number) or "" (an index,
  a class, a text); ``description`` says what the values are.

:func:`annotate_features` and :func:`annotate_relevance` run last, on a complete file open for writing;
:func:`undescribed` lists the datasets that lack attached dimensions, ``units`` or ``description`` (the
tests keep it empty, so a new dataset must be described here).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import h5py
import numpy as np

from .._util.validate import check_choice
from ..scattering.config import frame_bounds
from .hdf5 import STR_DTYPE, read_config

__all__ = ["annotate_features", "annotate_relevance", "undescribed", "COMPRESSIONS", "dataset_options",
           "column_doc"]

#: lossless filters for the large (example, path, frame) datasets; chunks stay one example each
COMPRESSIONS = (None, "gzip", "lzf")

_NOT_A_VARIABLE = b"This is a netCDF dimension but not a netCDF variable."

_DIMENSIONS = {
    "example": ("", "row of this file: one example (a note, or a segment of a recording)"),
    "path": ("", "kept scattering path (coefficient) in Kymatio's order; see order, lambda1_hz, lambda2_hz"),
    "frame": ("", "time frame of the scattering (one every T samples; centre times in time_s)"),
    "class": ("", "output class of the model, by index"),
}

_PATHS = {
    "order": ("", "scattering order of the path: 1 (S1) or 2 (S2)"),
    "lambda1_hz": ("Hz", "centre frequency λ1 of the first-order wavelet: the carrier"),
    "lambda2_hz": ("Hz", "centre frequency λ2 of the second-order wavelet: the modulation rate; NaN for "
                         "order 1"),
    "n1": ("", "Kymatio's index of the first-order wavelet (meta()['n'][:, 0])"),
    "n2": ("", "Kymatio's index of the second-order wavelet (meta()['n'][:, 1]); -1 for order 1"),
}

#: units and description of known example columns (others: see :func:`column_doc`)
_COLUMNS = {
    "file_name": ("", "audio file, relative to the audio root"),
    "label": ("", "true class of the example (an index into the root attribute classes)"),
    "subset": ("", "split of the example: training, validation or test"),
    "csv_row": ("", "row of the example in the meta CSV (0-based, header excluded)"),
    "instrument family": ("", "instrument family (SOL-PMT metadata)"),
    "instrument": ("", "instrument (SOL-PMT metadata)"),
    "technique original": ("", "SOL's name of the playing technique"),
    "modulation technique": ("", "class name of the playing technique"),
    "f0_hz": ("Hz", "fundamental frequency of the note (synthetic corpus: the main note's)"),
    "modulation_hz": ("Hz", "ground-truth modulation rate: vibrato/flutter frequency, trill cycles, tremolo "
                            "strokes or bisbigliando repetitions per second"),
    "dynamics": ("", "dynamics marking"),
    "mute": ("", "mute used, or none"),
    "pitch": ("", "pitch name of the note"),
    "duration_s": ("s", "duration of the note"),
    "onset_s": ("s", "onset of the note in its file"),
    "mod_start_s": ("s", "start of the modulated segment, from the note onset"),
    "mod_end_s": ("s", "end of the modulated segment, from the note onset"),
    "modulated_fraction": ("1", "share of the note's duration that is modulated"),
    "fm_depth_st": ("semitone", "frequency-modulation depth: vibrato peak deviation, trill interval, "
                                "bisbigliando detuning, flutter roughness"),
    "am_depth": ("1", "nominal relative depth of the amplitude pattern"),
    "tech_noise_db": ("dB", "level of the technique's own noise relative to the tone (-200: none)"),
    "source_file": ("", "SOL-PMT file whose profile the synthetic note follows"),
    "note_index": ("", "index of the note in the synthetic corpus (its random seed)"),
    "segment": ("", "index of the segment within its recording"),
    "start_s": ("s", "start of the segment within its recording"),
    "pred": ("", "predicted class (argmax of logits)"),
    "explained": ("", "class whose output the relevance explains"),
    "logits": ("1", "the model's output logits, before softmax"),
}

_SUFFIX_UNITS = (("_hz", "Hz"), ("_s", "s"), ("_db", "dB"), ("_st", "semitone"))


def column_doc(name: str) -> Tuple[str, str]:
    """(units, description) of an example column: known columns, else units from the name's suffix
    (``_hz``, ``_s``, ``_db``, ``_st``) and a generic description."""
    if name in _COLUMNS:
        return _COLUMNS[name]
    if name.startswith("meta_") and name[5:] in _COLUMNS:
        return _COLUMNS[name[5:]][0], f"the meta CSV's column {name[5:]!r}"
    units = next((u for suffix, u in _SUFFIX_UNITS if name.lower().endswith(suffix)), "")
    return units, f"the meta CSV's column {name!r}"


def dataset_options(compression: Optional[str], shape: Tuple[int, ...]) -> dict:
    """``h5py.create_dataset`` options of a large (K, C, T) dataset: chunks of one example, and the
    lossless ``compression`` ("gzip", "lzf" or None; with the byte-shuffle filter, which makes float32
    data compress: −21 % with gzip, −16 % with lzf on the demo features, against −7 % and 0 % without)."""
    check_choice("compression", compression, COMPRESSIONS)
    if not shape[0]:
        return {}
    opts = {"chunks": (1, *shape[1:])}
    if compression is not None:
        opts.update(compression=compression, shuffle=True)
    return opts


# --------------------------------------------------------------------------------------------- helpers

def _describe(ds: h5py.Dataset, units: str, description: str) -> None:
    ds.attrs["units"] = units
    ds.attrs["description"] = description


def _attach(ds: h5py.Dataset, scales: Sequence[h5py.Dataset], units: str, description: str) -> None:
    if len(scales) != ds.ndim:
        raise ValueError(f"{ds.name} has {ds.ndim} axes, {len(scales)} dimensions given")
    for axis, scale in enumerate(scales):
        if scale.shape[0] != ds.shape[axis]:
            raise ValueError(f"{ds.name}: axis {axis} has length {ds.shape[axis]}, dimension {scale.name} "
                             f"{scale.shape[0]}")
        ds.dims[axis].attach_scale(scale)
    _describe(ds, units, description)


def _coordinate(group: h5py.Group, name: str, values, units: str, description: str) -> h5py.Dataset:
    """A 1-D coordinate variable that is the dimension scale of its own name."""
    values = np.asarray(values)
    if values.dtype.kind in "OUS":
        ds = group.create_dataset(name, data=np.array([str(v) for v in values], dtype=object), dtype=STR_DTYPE)
    else:
        ds = group.create_dataset(name, data=values)
    ds.make_scale(name)
    _describe(ds, units, description)
    return ds


def _bare_dimension(group: h5py.Group, name: str, size: int, description: str) -> h5py.Dataset:
    """A dimension without coordinate values (netCDF-4's marker dataset; not read as a variable)."""
    ds = group.create_dataset(name, shape=(size,), maxshape=(None,), dtype=">f4")
    ds.make_scale(_NOT_A_VARIABLE + f"{size:10}".encode("ascii"))
    _describe(ds, "", description)
    return ds


def _root_coordinates(f: h5py.File, n_examples: int) -> Dict[str, h5py.Dataset]:
    """``example``, ``path``, ``frame`` and the per-frame and per-path coordinates of the root."""
    C = f["paths/order"].shape[0]
    T = f["features"].shape[2]
    dims = {name: _coordinate(f, name, np.arange(n), *_DIMENSIONS[name])
            for name, n in (("example", n_examples), ("path", C), ("frame", T))}
    config = read_config(f.attrs)
    pad_left, _, start, _ = frame_bounds(config)
    time_s = ((start + np.arange(T)) * config.T - pad_left) / config.sr
    ds = f.create_dataset("time_s", data=time_s)
    _attach(ds, [dims["frame"]], "s", "centre of the frame's low-pass window in the prepared signal "
                                     "(its first sample is at 0 s)")
    for k in ("order", "lambda1_hz", "lambda2_hz"):
        ds = f.create_dataset(k, data=f["paths"][k][()])
        _attach(ds, [dims["path"]], *_PATHS[k])
        ds.attrs["description"] += " (a copy of /paths/" + k + ", the coordinate of the root's path axis)"
    return dims


def _examples(group: h5py.Group, dims: Dict[str, h5py.Dataset]) -> None:
    for k, ds in group.items():
        scales = [dims["example"]] + ([dims["class"]] if ds.ndim == 2 and "class" in dims else [])
        _attach(ds, scales, *column_doc(k))


def _paths(group: h5py.Group, path: h5py.Dataset) -> None:
    for k, ds in group.items():
        _attach(ds, [path], *_PATHS.get(k, ("", f"per-path value {k}")))


_COORDS = "time_s order lambda1_hz lambda2_hz"


# ------------------------------------------------------------------------------------------- the files

def annotate_features(f: h5py.File) -> None:
    """Dimension scales and descriptions of a complete features file (layout: :mod:`scatterxai.features.store`)."""
    K = f["features"].shape[0]
    dims = _root_coordinates(f, K)
    xyz = [dims["example"], dims["path"], dims["frame"]]
    _attach(f["features"], xyz, "1", "raw scattering coefficients S of the standardised signal (not "
                                     "log-normalised); the model input is log1p(S / (0.1 mu + 1e-8))")
    f["features"].attrs["coordinates"] = _COORDS
    _paths(f["paths"], dims["path"])
    _examples(f["examples"], dims)
    _attach(f["stats/mu"], [dims["path"]], "1", "mean over the training rows of each coefficient's time "
                                                "average (see attrs subset, n_examples)")
    g = f["failed"]
    columns = list(g)
    failure = _bare_dimension(g, "failure", g["file_name"].shape[0] if "file_name" in g else 0,
                              "a file that could not be read")
    docs = {"file_name": ("", "audio file that could not be read"), "reason": ("", "why it could not be read"),
            "csv_row": ("", "its row in the meta CSV")}
    for k in columns:
        _attach(g[k], [failure], *docs.get(k, column_doc(k)))


_PER_METHOD = {
    "relevance": (("example", "path", "frame"), "1", "input relevance R[path, frame] of method {m}, in units "
                  "of the explained logit (see /conservation/{m})"),
    "local": (("example", "path"), "1", "local map of method {m}: time average of its relevance"),
    "aggregate": (("class", "path"), "1", "number of examples of each class (see attr grouped_by) whose "
                  "top-n local relevance (attr top_n) includes the path (paper eq. 13), method {m}"),
    "kurtosis": (("example",), "1", "Fisher kurtosis of the local map, method {m}"),
    "conservation": (("example",), "1", "sum of input relevance / explained logit, method {m}"),
    "localisation": (("example",), "1", "1 if the top second-order relevance lies within ±1 octave (attr "
                     "octaves) of modulation_hz, 0 if not, NaN without ground truth; method {m}"),
    "completeness": (("example",), "1", "sum of input relevance / (f_c(x) - f_c(baseline)), method {m}"),
    "time_profile": (("example", "frame"), "1", "relevance of method {m} summed over paths, per example (a "
                     "window of an audio file) and frame; frame t of example k is centred at start_s[k] + "
                     "time_s[t] seconds of its file"),
}


def annotate_relevance(f: h5py.File) -> None:
    """Dimension scales and descriptions of a complete relevance file (layout: :mod:`scatterxai.io.relevance`)."""
    K = f["features"].shape[0]
    dims = _root_coordinates(f, K)
    classes = [str(c) for c in f.attrs["classes"]]
    dims["class"] = _coordinate(f, "class", np.array(classes, dtype=object), "", _DIMENSIONS["class"][1]
                                + " (its name)")
    _attach(f["features"], [dims["example"], dims["path"], dims["frame"]], "1",
            "the normalised network input log1p(S / (c mu + 1e-8)) exactly as the model saw it (c: root attr "
            "log_c; S and mu: the features file); relevance is defined on these values")
    f["features"].attrs["coordinates"] = _COORDS
    _paths(f["paths"], dims["path"])
    _examples(f["examples"], dims)
    for group, (names, units, text) in _PER_METHOD.items():
        for m, ds in (f[group].items() if group in f else ()):
            _attach(ds, [dims[n] for n in names], units, text.format(m=m))
            if group == "relevance":
                ds.attrs["coordinates"] = _COORDS
    for m, ds in (f["explained_rows"].items() if "explained_rows" in f else ()):
        ds.make_scale(f"explained_rows_{m}")
        _describe(ds, "", f"rows (examples) explained by method {m}; its per-example datasets are NaN elsewhere")
    g = f["grid"]
    lam1 = g["lambda1_hz"]
    lam1.make_scale("lambda1_hz")
    _describe(lam1, "Hz", "rows of the (λ1, λ2) grid: carrier frequencies, ascending")
    lam2 = g["lambda2_hz"]
    lam2.make_scale("lambda2_hz")
    _describe(lam2, "Hz", "columns of the (λ1, λ2) grid: 0 for the S1 column, then modulation rates, ascending")
    _attach(g["row"], [dims["path"]], "", "grid row of each path (index into lambda1_hz)")
    _attach(g["col"], [dims["path"]], "", "grid column of each path (index into lambda2_hz; 0: S1)")


def undescribed(f: h5py.File) -> List[str]:
    """Datasets without a dimension scale on every axis, or without ``units`` / ``description``."""
    bad = []

    def visit(name, obj):
        if not isinstance(obj, h5py.Dataset):
            return
        is_scale = h5py.h5ds.is_scale(obj.id)
        labelled = is_scale and obj.ndim == 1 or all(len(d) for d in obj.dims)
        if not labelled or "units" not in obj.attrs or "description" not in obj.attrs:
            bad.append(name)

    f.visititems(visit)
    return bad
