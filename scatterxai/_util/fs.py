"""Files: atomic write-then-rename, checksums."""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Iterator

__all__ = ["atomic_path", "file_sha256", "TMP_SUFFIX"]

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
