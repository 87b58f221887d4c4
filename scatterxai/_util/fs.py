"""Files: atomic write-then-rename, checksums."""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Iterator

__all__ = ["atomic_path", "file_sha256", "ensure_dir", "ensure_parent", "TMP_SUFFIX"]

#: suffix of the temporary file that :func:`atomic_path` renames into place
TMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path, *, suffix: str = TMP_SUFFIX) -> Iterator[str]:
    """Write a file under a temporary name and rename it into place only if the block succeeds.

    ``path`` is then either its old self or complete, never half-written; on any exception (including
    KeyboardInterrupt) the temporary file is removed and ``path`` is left untouched.

    Examples
    --------
    >>> with atomic_path("out.h5") as tmp:          # doctest: +SKIP
    ...     with h5py.File(tmp, "w") as f: ...
    """
    path = os.fspath(path)
    tmp = f"{path}{suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def file_sha256(path) -> str:
    """sha256 (hex) of a file's bytes, read in 1-MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ensure_dir(path, *, what: str = "output directory", levels: int = 1) -> str:
    """Create the directory ``path`` if needed, and at most ``levels`` missing folders above it.

    The commands create their outputs, but never a tree the user did not mean: a mistyped
    ``--out /nonexistent/sub/model`` is an error, not a new ``/nonexistent``.

    Parameters
    ----------
    path : str or PathLike
    what : str
        How messages name the directory.
    levels : int
        Missing ancestors that may be created (1: the output's parent; 0: only ``path`` itself).

    Returns
    -------
    path : str
        Absolute path of the (now existing) directory.

    Raises
    ------
    ParameterError
        ``path`` is a file, more than ``levels`` ancestors are missing, or the folder cannot be created.
    """
    from ..errors import ParameterError

    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        return path
    if os.path.exists(path):
        raise ParameterError(f"{what} {path} exists and is not a directory")
    missing = [path]
    while not os.path.isdir(os.path.dirname(missing[-1])):
        parent = os.path.dirname(missing[-1])
        if os.path.exists(parent):
            raise ParameterError(f"cannot create {what} {path}: {parent} is not a directory")
        if len(missing) > levels or parent == missing[-1]:
            raise ParameterError(f"cannot create {what} {path}: {parent} does not exist (scatterxai creates "
                                 f"an output and at most one missing folder above it; create the folders "
                                 f"first, or check the path)")
        missing.append(parent)
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            pass
        except OSError as e:
            raise ParameterError(f"cannot create {what} {d}: {e.strerror or e}") from None
    return path


def ensure_parent(path, *, what: str = "output file") -> str:
    """Create the folder of the output file ``path`` if needed (and only that folder: its own parent must
    exist); returns the absolute path of the file."""
    path = os.path.abspath(os.fspath(path))
    ensure_dir(os.path.dirname(path), what=f"folder of the {what}", levels=0)
    return path
