"""Files: atomic writes (a file or a whole directory), checksums, output locks and output-path checks.

These are the building blocks of THE output rule, which lives in one place:
:func:`scatterxai._util.outputs.claim_output` (every command's outputs go through it).  Here:

* an output is written under a temporary name and renamed into place (:func:`atomic_path`,
  :func:`atomic_dir`): it is either its old self or complete; temporary files are created new, never
  through a symbolic link (:func:`create_new_file`);
* one writer per output: :func:`output_lock` holds ``OUT.lock`` (pid and host of the holder; opened with
  ``O_NOFOLLOW``); a second writer is refused, a lock left by a dead process of the same host is taken over;
* output folders are created only where the user evidently meant them (:func:`prepare_output`): an
  output and at most one missing folder above it.

:func:`check_not_inputs` is the earlier, narrower check (an output equal to an input); the output rule
(:func:`scatterxai._util.outputs.check_output`) also refuses outputs that contain or lie inside an input.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import stat
import time
from typing import Iterator, Mapping, Optional, Sequence

from .types import PathLike

__all__ = ["atomic_path", "atomic_dir", "create_new_file", "file_sha256", "bytes_sha256", "output_lock",
           "prepare_output", "check_not_inputs", "TMP_SUFFIX", "LOCK_SUFFIX"]

#: suffix of the temporary file that :func:`atomic_path` renames into place
TMP_SUFFIX = ".tmp"
#: suffix of the lock file next to an output (:func:`output_lock`)
LOCK_SUFFIX = ".lock"


def create_new_file(path: PathLike) -> str:
    """Create ``path`` as a new, empty regular file, never through a link; return it.

    The file is opened with ``O_CREAT | O_EXCL | O_NOFOLLOW``: whatever already has that name (a temporary
    file of a killed writer, a symbolic link planted there) is removed first — the entry itself, never what
    a link points to — so the bytes written to ``path`` afterwards go to this new file only.  Used for every
    temporary, partial and lock file of the package.
    """
    path = os.fspath(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for attempt in range(3):
        try:
            os.close(os.open(path, flags, 0o644))
            return path
        except FileExistsError:
            if attempt == 2 or os.path.isdir(path) and not os.path.islink(path):
                raise
            os.unlink(path)   # the name only: a link is removed, not followed
    return path   # pragma: no cover - the loop returns or raises


@contextlib.contextmanager
def atomic_path(path: PathLike, *, suffix: str = TMP_SUFFIX) -> Iterator[str]:
    """Write a file under a temporary name and rename it into place only if the block succeeds.

    ``path`` is then either its old self or complete, never half-written; on any exception (including
    KeyboardInterrupt) the temporary file is removed and ``path`` is left untouched.  The temporary file is
    created new (:func:`create_new_file`: never written through a symbolic link planted under its name).

    Examples
    --------
    >>> with atomic_path("out.h5") as tmp:          # doctest: +SKIP
    ...     with h5py.File(tmp, "w") as f: ...
    """
    path = os.fspath(path)
    tmp = f"{path}{suffix}"
    try:
        create_new_file(tmp)
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            if not (os.path.isdir(tmp) and not os.path.islink(tmp)):
                os.remove(tmp)
        raise


def _exchange(a: str, b: str) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), b)


def _clean_leftovers(path: str) -> None:
    """Remove ``path.tmp-<pid>`` / ``path.old-<pid>`` directories of dead processes (SIGKILL during
    :func:`atomic_dir`); if ``path`` itself is missing, the newest ``.old-`` directory (a kill between the
    two renames of the fallback) is put back."""
    folder, base = os.path.split(path)
    olds = []
    for name in os.listdir(folder):
        stem, _, pid = name.rpartition("-")
        if stem not in (f"{base}.tmp", f"{base}.old") or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        full = os.path.join(folder, name)
        if stem.endswith(".old"):
            olds.append(full)
        else:
            shutil.rmtree(full, ignore_errors=True)
    for i, old in enumerate(sorted(olds, key=os.path.getmtime, reverse=True)):
        if i == 0 and not os.path.exists(path):
            os.rename(old, path)
        else:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: PathLike) -> Iterator[str]:
    """Fill a temporary directory next to ``path`` and swap it into place only if the block succeeds.

    An existing ``path`` is replaced as a whole: on Linux by an atomic exchange of the two directories
    (``renameat2``), elsewhere by two renames (a process killed between them leaves the old directory at
    ``path.old-<pid>``, which the next call puts back).  On any exception the temporary directory is
    removed and ``path`` is untouched.  Hold the output's lock (:func:`output_lock`) around it.
    """
    path = os.path.abspath(os.fspath(path)).rstrip(os.sep)
    tmp, old = f"{path}.tmp-{os.getpid()}", f"{path}.old-{os.getpid()}"
    _clean_leftovers(path)
    if os.path.islink(tmp):
        os.unlink(tmp)
    shutil.rmtree(tmp, ignore_errors=True)
    os.mkdir(tmp)   # never follows a link: fails if one appeared since
    try:
        yield tmp
        if not os.path.isdir(path):
            os.rename(tmp, path)
        elif _exchange(tmp, path):
            shutil.rmtree(tmp)          # holds the previous directory now
        else:
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def bytes_sha256(data: bytes) -> str:
    """sha256 (hex) of a byte string."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: PathLike) -> str:
    """sha256 (hex) of a file's bytes, read in 1-MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------------------------------- output lock

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # exists, owned by another user
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _holder(fd: int) -> dict:
    """The holder recorded in an open lock file ({} if empty or unreadable)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096).decode("utf-8"))
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError, RecursionError):
        return {}


def _describe(info: dict) -> str:
    if not info:
        return "another process"
    try:
        since = f" (since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(float(info['since'])))})"
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        since = ""
    return f"process {info.get('pid')} on host {info.get('host')!r}{since}"


def _acquire(lock: str, target: str, what: str, host: str) -> int:
    """Open (never through a link) and ``flock`` the lock file; its descriptor.  Raises LockError."""
    from ..errors import LockError
    try:
        import fcntl
    except ImportError:   # pragma: no cover - not POSIX: an exclusive create, stale = dead pid here
        fcntl = None
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_CLOEXEC", 0) | (0 if fcntl else os.O_EXCL), 0o644)
        except FileExistsError:   # pragma: no cover - non-POSIX fallback
            with open(lock, "rb") as fh:
                info = _holder(fh.fileno())
            pid = info.get("pid")
            if info.get("host") == host and isinstance(pid, int) and not _pid_alive(pid):
                os.remove(lock)
                continue
            raise LockError(f"{target} is being written by {_describe(info)}; wait for it to finish, or "
                            f"remove {lock} if that process no longer runs") from None
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise LockError(f"the lock file {lock} is a symbolic link; scatterxai never writes through one "
                                f"(it could overwrite what it points to): remove {lock} and re-run") from None
            raise LockError(f"cannot create the lock file {lock} for the {what} {target}: {e.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise LockError(f"the lock file {lock} is not a regular file; remove it and re-run")
        if fcntl is None:   # pragma: no cover
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            info = _holder(fd)
            os.close(fd)
            raise LockError(f"{target} is being written by {_describe(info)}: only one scatterxai process "
                            f"may write a {what} at a time; wait for it to finish") from None
        # the file may have been removed (and recreated) by the previous holder between open and flock
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    return fd


@contextlib.contextmanager
def output_lock(target: PathLike, *, what: str = "output") -> Iterator[str]:
    """Hold the exclusive lock of an output (``TARGET.lock``) for the duration of the block.

    The lock file records the holder's pid and host; a temporary file ``TARGET.tmp`` left by a killed writer
    (:func:`atomic_path`) is removed once the lock is held.  A second writer is refused with a
    :class:`~scatterxai.errors.LockError` naming the holder.  The lock itself is an ``flock`` held on the
    file, which the operating system releases when the holder dies (even by SIGKILL): a lock file left by a
    dead process of the same host is taken over.  A lock file written on another host (a shared file
    system) is never taken over, since that process cannot be checked: remove the file by hand once no run
    is active there.

    Parameters
    ----------
    target : str
        The output file or directory (its folder must exist).
    what : str
        What is written, for messages ("features", "model directory"…).

    Yields
    ------
    str — the lock file's path.
    """
    from ..errors import LockError
    target = os.path.abspath(os.fspath(target)).rstrip(os.sep)
    lock = target + LOCK_SUFFIX
    host = socket.gethostname()
    fd = _acquire(lock, target, what, host)
    try:
        info = _holder(fd)
        if info and info.get("host") != host:
            raise LockError(f"{lock} was left by {_describe(info)}, which cannot be checked from this host; "
                            f"if no scatterxai run writes {target} there, remove {lock} and re-run")
        if info:
            from .log import logger
            logger.info("taking over the lock %s of %s, which no longer runs", lock, _describe(info))
        leftover = target + TMP_SUFFIX   # a temporary file of a killed writer (we hold the lock)
        if os.path.lexists(leftover) and not (os.path.isdir(leftover) and not os.path.islink(leftover)):
            os.remove(leftover)   # the entry itself: a planted link is removed, never followed
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": host, "since": time.time(),
                                 "what": what}).encode("utf-8"))
        try:
            yield lock
        finally:
            with contextlib.suppress(OSError):
                if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                    os.remove(lock)
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------ output-path rules

def prepare_output(path: PathLike, *, is_dir: bool = False, create: bool = True, option: str = "--out",
                   make: bool = True) -> str:
    """Check an output path and create its folders where the user evidently meant them; return it absolute.

    The rule, the same for every command: an output (file or directory) is created together with at most
    one missing folder above it — ``--out results/new/r.h5`` creates ``results/new`` if ``results``
    exists, ``--out results/demo`` creates ``results`` and ``results/demo`` — so a typo
    (``/nonexistent/sub/out.h5``) is an error rather than a new tree.  An existing path of the wrong kind (a
    file where a directory is written, or vice versa) is an error.  With ``create=False`` a directory
    output itself is not created (only the folder above it): for directories written as a whole under a
    temporary name (:func:`atomic_dir`).  With ``make=False`` nothing is created: the path is only checked.

    Raises
    ------
    ParameterError
    """
    from ..errors import ParameterError
    path = os.path.abspath(os.fspath(path))
    if not os.path.basename(path.rstrip(os.sep)):
        raise ParameterError(f"{option} {path!r} is the file-system root; give a file or folder inside it")
    target = path.rstrip(os.sep)
    if is_dir:
        if os.path.exists(target) and not os.path.isdir(target):
            raise ParameterError(f"{option} {path} exists and is not a directory; give a directory path")
    elif os.path.isdir(target):
        raise ParameterError(f"{option} {path} is a directory; give a file path (e.g. {path}/out.h5)")
    # folders to create, innermost first: the directory output itself (if wanted), then at most one above
    folder = os.path.dirname(target)
    missing = ([target] if is_dir and create and not os.path.isdir(target) else [])
    if not os.path.isdir(folder):
        missing.append(folder)
        if not os.path.isdir(os.path.dirname(folder)):
            bad = os.path.dirname(folder)
            what = "is not a directory" if os.path.exists(bad) else "does not exist"
            raise ParameterError(f"{option} {path}: {bad} {what}; scatterxai creates an output and at most one "
                                 f"missing folder above it (create the folders first, or fix the path)")
    for d in reversed(missing if make else ()):
        try:
            os.mkdir(d)
        except FileExistsError:
            if not os.path.isdir(d):
                raise ParameterError(f"{option} {path}: {d} exists and is not a directory") from None
        except OSError as e:
            raise ParameterError(f"{option} {path}: cannot create {d}: {e.strerror}") from None
    return path


def _same(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)   # hard links, bind mounts
    except OSError:
        return False


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_not_inputs(out: PathLike, inputs: Mapping[str, Optional[PathLike]], *, option: str = "--out",
                     is_dir: bool = False, suffixes: Sequence[str] = ("", TMP_SUFFIX, LOCK_SUFFIX)) -> None:
    """Refuse an output path that is (or, for a directory output, contains) one of the command's inputs.

    Parameters
    ----------
    out : path
        The output; with the ``suffixes`` the command also writes (temporary, lock, partial files).
    inputs : mapping description → path
        E.g. ``{"features input": "f.h5", "model directory": "m"}``; None values are skipped.  An input
        directory counts as its whole tree when the output is a directory that will be replaced.
    option : str
        The option that named ``out`` (for the message).
    is_dir : bool
        ``out`` is a directory written as a whole (replaced): an input inside it is refused too.

    Raises
    ------
    ParameterError
    """
    from ..errors import ParameterError
    out = os.path.abspath(os.fspath(out))
    for label, inp in inputs.items():
        if inp is None:
            continue
        inp = os.path.abspath(os.fspath(inp))
        clash = any(_same(out + s, inp) for s in suffixes)
        if not clash and is_dir:
            clash = _inside(inp, out)
        if not clash and os.path.isdir(inp):   # writing inside an input directory is fine unless replacing it
            clash = _same(out, inp)
        if clash:
            raise ParameterError(f"{option} {out} would overwrite the {label} {inp} of this command; choose "
                                 f"another output path")
