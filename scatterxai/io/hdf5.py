"""HDF5 helpers shared by the features and relevance files, and the reader base class.

Every file the package writes is self-describing: root attributes hold the scattering parameters and the
versions that wrote it, ``/paths`` the per-path metadata and ``/examples`` one column per metadata field,
so that a reader needs only h5py and numpy.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Dict, Iterable, Iterator, Mapping, Optional, Union

import h5py
import numpy as np
from numpy.typing import ArrayLike

from .. import __version__
from .._util.fs import atomic_path
from .._util.types import PathLike
from ..errors import ScatterXAIError, StoreError
from ..scattering.config import ALPHA, R_PSI, SIGMA0, PathTable, ScatteringConfig

__all__ = ["atomic_h5", "open_guarded", "raise_if_failed", "open_hdf5", "write_column", "read_string_array",
           "scattering_attrs", "read_config", "H5Reader", "STR_DTYPE", "get_object", "has_link", "has_hdf5_signature",
           "is_lock_error", "is_scatterxai_file"]

#: variable-length UTF-8 strings
STR_DTYPE = h5py.string_dtype("utf-8")
#: the 8 bytes that open an HDF5 superblock (at offset 0, 512, 1024, 2048…)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class _GuardedFile:
    """A file object for h5py's ``fileobj`` driver that never lets a write error reach HDF5.

    HDF5 cannot recover from a failed write: after "No space left on device" its close fails too, the file
    stays open in the library, and the process may crash (a segmentation fault).  This object writes with
    ``pwrite``; after the first error it records it and keeps every later write in memory (pages over the
    file), so that HDF5 reads back what it wrote, finishes and closes cleanly; :func:`open_guarded` then
    raises the recorded ``OSError`` (and :func:`raise_if_failed` lets a writer stop early, so that little is
    held in memory).  The file is opened without following symbolic links and locked like HDF5 locks its
    files (``flock``: exclusive for writing), so a file that another process has open is still refused.
    """

    PAGE = 1 << 16

    def __init__(self, path: str, create: bool):
        import fcntl
        flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        self.path, self.pos, self.error, self.reported = path, 0, None, False
        self.pages: Dict[int, bytearray] = {}
        self.fd = os.open(path, flags | (os.O_CREAT | os.O_TRUNC if create else 0), 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise BlockingIOError(f"unable to lock file {path}: it is open in another process") from None
        self.size = os.fstat(self.fd).st_size

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else self.pos + offset if whence == 1 else self.size + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def _read_at(self, offset: int, n: int) -> bytes:
        n = max(min(n, self.size - offset), 0)
        if not self.pages:
            return os.pread(self.fd, n, offset)
        out, end = bytearray(), offset + n
        while offset < end:
            page, off = divmod(offset, self.PAGE)
            k = min(self.PAGE - off, end - offset)
            buf = self.pages.get(page)
            out += buf[off:off + k] if buf is not None else os.pread(self.fd, k, offset).ljust(k, b"\0")
            offset += k
        return bytes(out)

    def readinto(self, buf) -> int:
        data = self._read_at(self.pos, len(buf))
        buf[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def read(self, n: int = -1) -> bytes:
        data = self._read_at(self.pos, n if n >= 0 else self.size - self.pos)
        self.pos += len(data)
        return data

    def _keep(self, offset: int, view: memoryview) -> None:
        """Hold a write in memory (after a write error): pages over the file's bytes."""
        done = 0
        while done < len(view):
            page, off = divmod(offset + done, self.PAGE)
            k = min(self.PAGE - off, len(view) - done)
            buf = self.pages.get(page)
            if buf is None:
                buf = self.pages[page] = bytearray(os.pread(self.fd, self.PAGE, page * self.PAGE).ljust(self.PAGE,
                                                                                                       b"\0"))
            buf[off:off + k] = view[done:done + k]
            done += k

    def write(self, buf) -> int:
        view = memoryview(buf).cast("B")
        if self.error is None:
            try:
                done = 0
                while done < len(view):
                    done += os.pwrite(self.fd, view[done:], self.pos + done)
            except OSError as e:
                self.error = e
        if self.error is not None:
            self._keep(self.pos, view)
        self.pos += len(view)
        self.size = max(self.size, self.pos)
        return len(view)

    def truncate(self, size: Optional[int] = None) -> int:
        size = self.pos if size is None else size
        if self.error is None:
            try:
                os.ftruncate(self.fd, size)
            except OSError as e:
                self.error = e
        self.size = size
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if self.error is None:
            try:
                os.fsync(self.fd)
            except OSError as e:
                self.error = e
        self.pages.clear()
        os.close(self.fd)


def raise_if_failed(f: h5py.File) -> None:
    """Raise the write error of a file opened by :func:`open_guarded` / :func:`atomic_h5`, if any (writers
    call it between blocks to stop early)."""
    raw = getattr(f, "_scatterxai_raw", None)
    if raw is not None and raw.error is not None:
        raw.reported = True
        raise OSError(raw.error.errno, raw.error.strerror, raw.path)


@contextlib.contextmanager
def open_guarded(path: PathLike, mode: str = "w") -> Iterator[h5py.File]:
    """``h5py.File(path, mode)`` ("w": create/truncate, "r+": update) whose write errors are reported as one
    ``OSError`` after a clean close, instead of leaving HDF5 in a state that may crash the process (a full
    disk, a read-only file system).  Symbolic links are not followed."""
    path = os.fspath(path)
    if mode not in ("w", "r+"):
        raise ValueError(f"mode must be 'w' or 'r+', got {mode!r}")
    raw = _GuardedFile(path, create=mode == "w")
    try:
        f = h5py.File(raw, mode)
    except BaseException:
        raw.close()
        raise
    f._scatterxai_raw = raw
    try:
        yield f
    finally:
        f.close()
        raw.close()
        if raw.error is not None and not raw.reported:
            err = raw.error
            raise OSError(err.errno, err.strerror, path) from None


@contextlib.contextmanager
def atomic_h5(path: PathLike) -> Iterator[h5py.File]:
    """Write a new HDF5 file atomically: a temporary sibling created without following links, guarded
    against write errors (:func:`open_guarded`), renamed to ``path`` only if the block succeeds.

    Examples
    --------
    >>> with atomic_h5("out.h5") as f:       # doctest: +SKIP
    ...     f.create_dataset("x", data=[1, 2, 3])
    """
    with atomic_path(path) as tmp, open_guarded(tmp, "w") as f:
        yield f


def has_hdf5_signature(path: PathLike) -> bool:
    """True if ``path`` holds an HDF5 superblock signature where HDF5 looks for one.

    Raises OSError if the file cannot be read (a transient error is not taken for "not HDF5").
    """
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        offset = 0
        while offset + len(HDF5_SIGNATURE) <= size:
            fh.seek(offset)
            if fh.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else 2 * offset
    return False


def is_lock_error(e: BaseException) -> bool:
    """True if an error of ``h5py.File`` means that another process holds the file (HDF5 file locking)."""
    return isinstance(e, BlockingIOError) or "unable to lock file" in str(e)


def is_scatterxai_file(path: PathLike) -> bool:
    """True if ``path`` is an HDF5 file written by scatterxai (root attribute ``scatterxai_version``)."""
    try:
        if not has_hdf5_signature(path):
            return False
        with h5py.File(path, "r") as f:
            return "scatterxai_version" in f.attrs
    except OSError as e:
        if is_lock_error(e):
            raise StoreError(f"{path} is in use by another process; close it there and re-run") from None
        return False


def get_object(f: h5py.File, name: str, path: str = "") -> Union[h5py.Group, h5py.Dataset]:
    """``f[name]`` following hard links only, or raise :class:`StoreError`.

    scatterxai reads only what is stored in the file itself: soft and external links (which may dangle,
    loop, or point into other files) are not followed, and datasets whose data live in other files
    (external storage, virtual datasets) are refused.
    """
    obj, parts = f, [p for p in name.split("/") if p]
    for i, part in enumerate(parts):
        where = "/" + "/".join(parts[:i + 1])
        link = obj.get(part, getlink=True) if isinstance(obj, h5py.Group) else None
        if link is None:
            raise StoreError(f"{path or f.filename}: {where} missing")
        if not isinstance(link, h5py.HardLink):
            kind = (f"an external link to {link.filename}:{link.path}" if isinstance(link, h5py.ExternalLink)
                    else f"a soft link to {link.path}")
            raise StoreError(f"{path or f.filename}: {where} is {kind}; scatterxai does not follow links "
                             f"(store the data in the file itself, e.g. with h5py's copy)")
        obj = obj[part]
    if isinstance(obj, h5py.Dataset) and (obj.is_virtual or obj.external):
        raise StoreError(f"{path or f.filename}: /{name.strip('/')} keeps its data in other files (a virtual or "
                         f"external dataset), which scatterxai does not read")
    return obj


def has_link(f: h5py.File, name: str) -> bool:
    """True if the path ``name`` exists as links, whatever they point to (no link is followed beyond a
    non-hard one)."""
    obj = f
    for part in (p for p in name.split("/") if p):
        link = obj.get(part, getlink=True) if isinstance(obj, h5py.Group) else None
        if link is None:
            return False
        if not isinstance(link, h5py.HardLink):
            return True
        obj = obj[part]
    return True


def write_column(group: h5py.Group, name: str, values: ArrayLike) -> h5py.Dataset:
    """Write a 1-D column: strings as UTF-8 variable-length, numbers as int64/float64, bools as bool."""
    arr = np.asarray(values)
    if arr.dtype.kind in "OUS":
        return group.create_dataset(name, data=np.array([str(v) for v in arr], dtype=object), dtype=STR_DTYPE)
    if arr.dtype.kind == "b":
        return group.create_dataset(name, data=arr)
    if arr.dtype.kind in "iu":
        return group.create_dataset(name, data=arr.astype(np.int64))
    if arr.dtype.kind == "f":
        return group.create_dataset(name, data=arr.astype(np.float64))
    raise StoreError(f"column {name!r} has unsupported dtype {arr.dtype}")


def open_hdf5(path: PathLike, kind: str) -> h5py.File:
    """Open ``path`` read-only, or raise :class:`StoreError` saying it should be a ``kind`` file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise StoreError(f"{kind} file not found: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        if is_lock_error(e):
            raise StoreError(f"{path} is in use by another process (open for writing there); wait for it "
                             f"or close it, then re-run") from None
        raise StoreError(f"cannot open {path} as HDF5 ({e}); is it a {kind} file?") from None


def read_string_array(ds: h5py.Dataset) -> np.ndarray:
    """A dataset as a numpy array, decoding byte/UTF-8 strings to ``str`` objects (bytes that are not UTF-8
    become U+FFFD: a damaged or foreign name never stops a reader)."""
    if ds.dtype.kind in "OS":
        return np.array(ds.asstr(errors="replace")[()], dtype=object)
    return ds[()]


def scattering_attrs(config: ScatteringConfig, table: PathTable) -> dict:
    """Root attributes that describe the scattering (written into every file of the package)."""
    import kymatio
    return dict(sr=config.sr, N=config.N, J=config.J, Q=np.array(config.Q, dtype=np.int64), T=config.T,
                fmin_hz=config.fmin_hz, n_frames=table.n_frames, max_order=2, r_psi=R_PSI, sigma0=SIGMA0,
                alpha=ALPHA, scatterxai_version=__version__, kymatio_version=kymatio.__version__)


def read_config(attrs: Mapping[str, Any], kind: str = "scatterxai", path: str = "") -> ScatteringConfig:
    """The :class:`ScatteringConfig` recorded in a file's root attributes (checked like any configuration)."""
    where = f"{path}: " if path else ""
    keys = ("sr", "N", "J", "Q", "T", "fmin_hz")
    missing = [k for k in keys if k not in attrs]
    if missing:
        raise StoreError(f"{where}root attribute {missing[0]!r} missing: not a {kind} file") from None
    try:
        return ScatteringConfig.from_dict({k: attrs[k] for k in keys})
    except (ScatterXAIError, TypeError, ValueError, OverflowError) as e:
        raise StoreError(f"{where}the root attributes do not describe a valid scattering: {e}") from None


class H5Reader:
    """Base of the package's file readers: opens read-only, validates, closes on error and on exit.

    Subclasses set :attr:`KIND` (used in messages) and :attr:`REQUIRED` (datasets or groups that must
    exist) and extend :meth:`_validate`.  Use as a context manager or call :meth:`close`.
    """

    KIND = "scatterxai"
    REQUIRED: Iterable[str] = ()
    #: what the error for a missing object adds (e.g. how to obtain a complete file)
    HINT = ""

    def __init__(self, path: PathLike):
        self.path = os.fspath(path)
        self._f = open_hdf5(self.path, self.KIND)
        try:
            missing = [name for name in self.REQUIRED if not has_link(self._f, name)]
            if missing:
                raise StoreError(f"{self.path} lacks /{missing[0]}: not a complete scatterxai {self.KIND} file"
                                 + (f" ({self.HINT})" if self.HINT else ""))
            for name in self.REQUIRED:
                self._obj(name)
            self._validate()
        except Exception:
            self._f.close()
            raise

    def _obj(self, name: str):
        """``name`` in the file, hard links only (:func:`get_object`)."""
        return get_object(self._f, name, self.path)

    def _validate(self) -> None:
        """Check the layout and read the small metadata (override and call super)."""

    def _read_examples(self, skip=()) -> Dict[str, np.ndarray]:
        g = self._obj("examples")
        out = {}
        for k in g:
            if k not in skip:
                ds = self._obj(f"examples/{k}")
                if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
                    raise StoreError(f"{self.path}: /examples/{k} must be a 1-D dataset (one value per example)")
                out[k] = read_string_array(ds)
        return out

    @property
    def attrs(self) -> dict:
        """Root attributes as plain Python values."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self._f.attrs.items()}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._f.close()
