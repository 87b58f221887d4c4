"""The kinds of output the package writes, and what an output path holds now (:func:`identify`): the part of
the output rule (:mod:`scatterxai._util.outputs`) that recognises an existing output.

A directory output carries a marker, :data:`MARKER` (kind, study, inputs, the files written); folders written
before the marker existed are recognised by the files their kind writes (:data:`KINDS`).  Files are
recognised by their layout (the HDF5 files scatterxai writes).
"""

from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

from .types import PathLike

__all__ = ["OutputKind", "KINDS", "MARKER", "Existing", "identify", "kind_of"]

#: the marker file of a directory output
MARKER = ".scatterxai.json"
#: names every directory kind may hold besides its own files (leftovers of killed writers)
_LEFTOVERS = ("*.lock", "*.tmp", "*.tmp-*", "*.partial", "*.part", "*.old-*", MARKER)


@dataclass(frozen=True)
class OutputKind:
    """What a command writes.

    Parameters
    ----------
    name : str
        E.g. ``"relevance"``, ``"quality"``.
    is_dir : bool
        A directory (written as a whole, or updated) or a file.
    what : str
        For messages ("relevance file", "quality folder").
    signature : tuple of str
        Directory kinds: names of which one identifies a folder of this kind written before the marker.
    patterns : tuple of str
        Directory kinds: ``fnmatch`` patterns of every top-level name the kind writes (a folder of this kind
        holding anything else also holds something a user put there, and is not replaced).
    update : bool
        Directory kinds written in place and resumed (``run``, ``corpus``) rather than replaced as a whole.
    """

    name: str
    is_dir: bool
    what: str
    signature: Tuple[str, ...] = ()
    patterns: Tuple[str, ...] = ()
    update: bool = False


_FIGS = ("*.png", "*.pdf", "*.svg")
#: the output kinds of the package (a new command may use a new kind name; see :func:`claim_output`)
KINDS: Dict[str, OutputKind] = {k.name: k for k in (
    OutputKind("features", False, "features file"),
    OutputKind("relevance", False, "relevance file"),
    OutputKind("descriptors", False, "descriptors file"),
    OutputKind("corpus", True, "corpus folder", ("meta.csv", "synth.json"), ("meta.csv", "synth.json", "audio"),
               update=True),
    # a model directory has no marker (save_model replaces it as a whole); a cross-validated one (train --folds)
    # also holds its out-of-fold metrics and its fold models
    OutputKind("model", True, "model directory", ("model.pt", "config.json"),
               ("model.pt", "config.json", "evaluation", "metrics.json", "metrics.md", "folds")),
    OutputKind("evaluation", True, "evaluation folder", ("metrics.json",), ("metrics.json", "metrics.md")),
    OutputKind("explanation", True, "explanation folder", ("predictions.json",),
               ("relevance.h5", "predictions.json", *_FIGS)),
    OutputKind("figures", True, "figures folder", _FIGS, _FIGS),
    OutputKind("quality", True, "quality folder", ("quality.json",),
               ("quality.json", "quality.md", "quality_settings.json", "permuted_labels_model", *_FIGS)),
    OutputKind("compare", True, "compare folder", ("compare.json",), ("compare.json", "compare.md", *_FIGS)),
    OutputKind("probe", True, "probe folder", ("probe.json", "probe.h5"), ("probe.json", "probe.h5", "probe.md",
                                                                           *_FIGS)),
    OutputKind("sweep", True, "sweep folder", ("sweep.json",),
               ("sweep.json", "audio", "meta.csv", "features.h5", "relevance.h5", "activations.h5", *_FIGS)),
    OutputKind("auralise", True, "auralise folder", ("auralise.json",), ("auralise.json", "*.wav", *_FIGS)),
    OutputKind("explorer", True, "explorer folder", ("explore.json",),
               ("index.html", "explore.json", "static", "data", "audio")),
    OutputKind("run", True, "run directory", (".stages",), ("*",), update=True),
)}


#: the order in which folders without a marker are recognised (most specific first: a model directory, which
#: never has a marker, before an evaluation folder, since a cross-validated model holds metrics.json too)
_LEGACY_ORDER = ("run", "sweep", "quality", "compare", "probe", "auralise", "explanation", "model", "evaluation",
                 "corpus", "figures")


def kind_of(name: str, is_dir: Optional[bool]) -> OutputKind:
    from ..errors import ParameterError
    if name in KINDS:
        k = KINDS[name]
        if is_dir is not None and is_dir != k.is_dir:
            raise ParameterError(f"output kind {name!r} is a {'directory' if k.is_dir else 'file'}")
        return k
    if is_dir is None:
        raise ParameterError(f"output kind {name!r} is not one of {sorted(KINDS)}; give is_dir for a new kind")
    return OutputKind(name, is_dir, f"{name} {'folder' if is_dir else 'file'}")


# ------------------------------------------------------------------------------------- what is there

@dataclass
class Existing:
    """What an output path holds now."""

    state: str                      # "absent", "empty", "ours" (kind known), "foreign"
    kind: Optional[str] = None
    study: Optional[str] = None
    stray: Optional[str] = None     # directory: a name its kind does not write (user's file)
    inputs: Dict[str, str] = field(default_factory=dict)


def _h5_kind(path: str) -> Optional[str]:
    """The kind of an HDF5 file scatterxai wrote (None: not HDF5 or not written by scatterxai)."""
    try:
        from ..io.hdf5 import has_hdf5_signature
        if not has_hdf5_signature(path):
            return None
        import h5py
        with h5py.File(path, "r") as f:
            names = set(f.keys())
            if "scatterxai_version" not in f.attrs and not {"descriptors", "examples"} <= names:
                return None
            if {"relevance", "local"} <= names:
                return "relevance"
            if {"features", "stats"} <= names:
                return "features"
            if {"status", "reason"} <= names:
                return "partial"
            if "descriptors" in names:
                return "descriptors"
            if "probe" in names:
                return "probe"
            if "activations" in names:
                return "activations"
            return "scatterxai"
    except OSError:
        return None


def read_marker(path: str) -> Optional[dict]:
    marker = os.path.join(path, MARKER)
    if os.path.islink(marker) or not os.path.isfile(marker):
        return None
    try:
        with open(marker, encoding="utf-8") as fh:
            info = json.load(fh)
    except (OSError, ValueError, RecursionError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("kind"), str) else None


def identify(path: PathLike, *, is_dir: bool = False) -> Existing:
    """What ``path`` holds: absent, an empty folder, an output of a known kind (and study), or something
    scatterxai did not write.

    Files are recognised by their layout (HDF5 files written by scatterxai); folders by their marker
    (:data:`MARKER`), else by the files their kind writes (:data:`KINDS`).
    """
    path = os.fspath(path)
    if not os.path.lexists(path):
        return Existing("absent")
    if not is_dir:
        kind = _h5_kind(path) if os.path.isfile(path) else None
        if kind is None:
            return Existing("foreign")
        study = None
        if kind == "relevance":
            study = _h5_attr(path, "features_fingerprint")
        return Existing("ours", kind, study)
    names = sorted(os.listdir(path))
    if not names:
        return Existing("empty")
    info = read_marker(path)
    if info is not None:
        kind = kind_of(info["kind"], True) if info["kind"] in KINDS else OutputKind(info["kind"], True, info["kind"])
        written = set(info.get("files") or ())
        stray = None if kind.update else next(
            (n for n in names if n not in written and not matches(n, _LEFTOVERS)), None)
        return Existing("ours", info["kind"], info.get("study"), stray, dict(info.get("inputs") or {}))
    for kind in (KINDS[n] for n in _LEGACY_ORDER):
        if any(n in names for n in kind.signature) or (
                kind.name == "figures" and all(matches(n, _FIGS + _LEFTOVERS) for n in names)):
            stray = None if kind.update else next(
                (n for n in names if not matches(n, kind.patterns + _LEFTOVERS)), None)
            return Existing("ours", kind.name, None, stray)
    return Existing("foreign", stray=names[0])


def matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _h5_attr(path: str, name: str) -> Optional[str]:
    try:
        import h5py
        with h5py.File(path, "r") as f:
            value = f.attrs.get(name)
    except OSError:
        return None
    return None if value is None else str(value)
