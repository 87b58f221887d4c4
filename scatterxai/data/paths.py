"""Where a meta CSV's ``file_name`` points: one resolver for extraction, loaders and figures.

A name is looked up as ``root/name`` first and otherwise by base name anywhere under ``root`` (SOL trees
nest files in family/instrument/technique folders while the published meta CSV holds base names).  A base
name that matches several files is an error rather than a guess.

Names stay inside the root: an absolute name outside it, or one with a ``..`` component, is refused
unless ``allow_outside=True`` (``scatterxai extract --allow-outside-root``), so that a meta CSV from
elsewhere cannot make scatterxai read files outside the folder the user named.  The check is lexical:
symbolic links inside the root are followed wherever they point (they are the user's own layout).
:func:`resolve_all` (the loaders, whose CSVs may hold absolute paths by design) allows them.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

from .._util.types import PathLike
from ..errors import AudioError, DataError

__all__ = ["AudioResolver", "resolve_all"]


class AudioResolver:
    """Resolve ``file_name`` values under one audio root (the recursive index is built on first need).

    Parameters
    ----------
    root : str
        Directory the names are relative to.
    allow_outside : bool
        Accept absolute names outside ``root`` and names with ``..`` components.
    """

    def __init__(self, root: PathLike, *, allow_outside: bool = False):
        self.root = os.path.abspath(os.fspath(root))
        self.allow_outside = bool(allow_outside)
        self._index: Optional[Dict[str, List[str]]] = None

    def _check_inside(self, name: str) -> None:
        if self.allow_outside:
            return
        parts = name.replace("\\", "/").split("/")
        outside = ".." in parts or (os.path.isabs(name) and not (
            os.path.normpath(name) + os.sep).startswith(self.root.rstrip(os.sep) + os.sep))
        if outside:
            raise AudioError(f"file_name {name!r} points outside the audio root {self.root}; names are relative "
                             f"to it (pass --allow-outside-root / allow_outside_root=True to read it anyway)")

    def _matches(self, name: str) -> List[str]:
        if self._index is None:
            self._index = {}
            for dirpath, dirnames, filenames in os.walk(self.root):
                dirnames.sort()
                for fn in sorted(filenames):
                    self._index.setdefault(fn, []).append(os.path.join(dirpath, fn))
        return self._index.get(os.path.basename(name), [])

    def candidates(self, name: str) -> List[str]:
        """Absolute paths ``name`` may denote: ``[root/name]`` if that file exists, else every file under
        ``root`` with its base name (empty if none)."""
        name = str(name)
        self._check_inside(name)
        direct = os.path.join(self.root, name)
        if os.path.isfile(direct):
            return [os.path.abspath(direct)]
        return [os.path.abspath(p) for p in self._matches(name)]

    def __call__(self, name) -> str:
        """The file ``name`` denotes; :class:`AudioError` if it is missing or ambiguous."""
        found = self.candidates(name)
        if len(found) == 1:
            return found[0]
        if not found:
            raise AudioError(f"audio file not found: {os.path.join(self.root, str(name))}")
        raise AudioError(f"{str(name)!r} matches {len(found)} files under {self.root}: {found[:3]}")


def resolve_all(names: Sequence[str], root: PathLike) -> List[str]:
    """Absolute audio path of every name; :class:`DataError` listing the missing and ambiguous ones."""
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise DataError(f"audio directory not found: {root}")
    resolver = AudioResolver(root, allow_outside=True)
    paths, missing, ambiguous = [], [], []
    for name in names:
        found = resolver.candidates(name)
        if len(found) == 1:
            paths.append(found[0])
        elif found:
            ambiguous.append(f"{name} ({len(found)} copies, e.g. {found[0]}, {found[1]})")
        else:
            missing.append(str(name))
    if missing:
        shown = ", ".join(missing[:10]) + (", …" if len(missing) > 10 else "")
        raise DataError(f"{len(missing)} of {len(names)} audio files were not found under {root}: {shown}")
    if ambiguous:
        raise DataError(f"{len(ambiguous)} file names match several files under {root} "
                        f"(point the root at one copy of the tree): {'; '.join(ambiguous[:10])}")
    return paths
