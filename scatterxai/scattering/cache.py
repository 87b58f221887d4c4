"""On-disk cache of what is slow to build and never changes for a configuration: Kymatio's filter bank,
the fast path's plan and auralisation's float64 bank (no torch here).

Building the filter bank of the paper configuration takes ~10 s, most of the first call of
:func:`scatterxai.scatter` in a fresh process; read back from the cache it takes a fraction of a second.

Where: ``cache_dir`` if a function is given one, else the environment variable ``SCATTERXAI_CACHE_DIR``,
else ``$XDG_CACHE_HOME/scatterxai``, else ``~/.cache/scatterxai``.  ``cache_dir=False`` or
``SCATTERXAI_CACHE_DIR=off`` disables the cache (everything is built in memory, nothing is written).
Deleting the directory is always safe.

What: one uncompressed ``.npz`` file (numpy arrays only, loaded with ``allow_pickle=False``) per kind and
key.  The key (a JSON dict) holds everything that changes the arrays — the configuration, the versions of
Kymatio and numpy, the dtype of the stored arrays, :data:`FORMAT_VERSION`, and for the plan a digest of the
planning code — and is stored in the file too: a file whose key differs is not used.

Safety: files are written under a unique temporary name and renamed into place (readers see a complete
file or none, and concurrent writers of the same key each rename a complete file; temporaries of killed
writers are removed after an hour); zip CRCs and the
owner's structural checks validate a file on load; a file that cannot be read or fails validation is
rebuilt with a warning, and a cache that cannot be written (read-only, full disk) only logs a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Literal, Mapping, Optional, TypeVar, Union

import numpy as np

from .._util.fs import atomic_path
from .._util.log import logger
from .._util.versions import package_version
from ..errors import ParameterError

__all__ = ["CACHE_ENV", "FORMAT_VERSION", "resolve_cache_dir", "cache_key", "cache_file", "cache_missing",
           "load_arrays", "save_arrays", "cached"]

#: environment variable naming the cache directory (``off`` disables the cache)
CACHE_ENV = "SCATTERXAI_CACHE_DIR"
#: version of the cached files' layout: bump it when what a kind stores (or how) changes
FORMAT_VERSION = 1
_KEY = "__key__"
_OFF = ("off", "none", "false", "0")

T = TypeVar("T")
CacheDir = Union[None, Literal[False], str, os.PathLike]


def resolve_cache_dir(cache_dir: CacheDir = None) -> Optional[Path]:
    """The cache directory to use, or None when caching is disabled.

    Parameters
    ----------
    cache_dir : str, path, None or False
        A directory; None for the default (``$SCATTERXAI_CACHE_DIR``, else ``$XDG_CACHE_HOME/scatterxai``,
        else ``~/.cache/scatterxai``); False to disable.  ``SCATTERXAI_CACHE_DIR=off`` disables the default.
    """
    if cache_dir is False:
        return None
    if cache_dir is None:
        env = os.environ.get(CACHE_ENV, "").strip()
        if env.lower() in _OFF:
            return None
        if env:
            return Path(env).expanduser()
        xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
        return base / "scatterxai"
    try:
        return Path(os.fspath(cache_dir)).expanduser()
    except TypeError:
        raise ParameterError(f"cache_dir must be a directory path, None (default) or False (no cache), "
                             f"got {cache_dir!r}") from None


def cache_key(kind: str, **fields: Any) -> dict:
    """The key of a cached object: ``fields`` plus the kind, :data:`FORMAT_VERSION` and the versions of
    Kymatio and numpy (JSON-serialisable values only)."""
    key = {"kind": kind, "format": FORMAT_VERSION, "kymatio": package_version("kymatio"),
           "numpy": np.__version__, **fields}
    json.dumps(key)  # fail early on a value that cannot be recorded
    return key


def _key_text(key: Mapping) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def cache_file(directory: Path, key: Mapping) -> Path:
    """``directory / "<kind>-<digest>.npz"``, the digest being a sha256 of the key."""
    digest = hashlib.sha256(_key_text(key).encode()).hexdigest()[:24]
    return Path(directory) / f"{key['kind']}-{digest}.npz"


def cache_missing(key: Mapping, cache_dir: CacheDir = None) -> bool:
    """Whether the cache could hold, but does not yet hold, a file of ``key`` (False when caching is
    disabled: there is nothing to prepare).  What a background preparation checks before building."""
    directory = resolve_cache_dir(cache_dir)
    return directory is not None and not cache_file(directory, key).is_file()


def load_arrays(path: Union[str, os.PathLike], key: Mapping) -> Optional[Dict[str, np.ndarray]]:
    """The arrays of a cache file, or None if it is absent, unreadable or holds another key (a warning says
    why, except for an absent file).  Every array is read, so that zip CRC errors show here."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        stored = arrays.pop(_KEY, None)
        if stored is None or str(stored) != _key_text(key):
            raise ValueError("it holds another key")
    except Exception as e:  # any damage (truncation, bad CRC, garbage) means: rebuild
        logger.warning("warning: ignoring the cache file %s (%s: %s); rebuilding it", path, type(e).__name__, e)
        return None
    return arrays


def save_arrays(path: Union[str, os.PathLike], key: Mapping, arrays: Mapping[str, np.ndarray]) -> bool:
    """Write ``arrays`` and the key to ``path`` atomically; on failure log a warning and return False."""
    path = Path(path)
    if _KEY in arrays:
        raise ParameterError(f"{_KEY!r} is reserved for the cache key")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A unique temporary name: concurrent writers of the same key must not write into one file.
        with atomic_path(path, suffix=f".{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **{_KEY: np.array(_key_text(key))}, **arrays)
                fh.flush()
                os.fsync(fh.fileno())
    except OSError as e:
        logger.warning("warning: cannot write the cache file %s (%s); continuing without it (set %s to "
                       "another directory, or to 'off')", path, e, CACHE_ENV)
        return False
    _remove_stale_temporaries(path)
    return True


def _remove_stale_temporaries(path: Path, age_s: float = 3600.0) -> None:
    """Remove temporary files of ``path`` left by killed writers (older than ``age_s``; best effort)."""
    now = time.time()
    for tmp in path.parent.glob(f"{path.name}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > age_s:
                tmp.unlink()
        except OSError:
            pass


def cached(key: Mapping, build: Callable[[], T], *, to_arrays: Callable[[T], Mapping[str, np.ndarray]],
           from_arrays: Callable[[Dict[str, np.ndarray]], T], cache_dir: CacheDir = None) -> T:
    """The object of ``key``: read from the cache if a valid file exists, else built and stored.

    Parameters
    ----------
    key : dict
        From :func:`cache_key`.
    build : callable () → object
    to_arrays : callable object → dict of str → np.ndarray
    from_arrays : callable dict → object
        Must validate what it reads and raise on anything inconsistent: the file is then rebuilt.
    cache_dir : see :func:`resolve_cache_dir`
    """
    directory = resolve_cache_dir(cache_dir)
    if directory is None:
        return build()
    path = cache_file(directory, key)
    arrays = load_arrays(path, key)
    if arrays is not None:
        try:
            obj = from_arrays(arrays)
            logger.debug("read %s from the cache %s", key["kind"], path)
            return obj
        except Exception as e:  # a file that passed the CRCs but not the owner's checks
            logger.warning("warning: the cache file %s is inconsistent (%s: %s); rebuilding it", path,
                           type(e).__name__, e)
    obj = build()
    if save_arrays(path, key, to_arrays(obj)):
        logger.debug("stored %s in the cache %s", key["kind"], path)
    return obj
