"""THE output rule: every output of every command goes through :func:`claim_output`.

Nothing a user already has is lost.  :func:`claim_output` (a context manager; :func:`claims_output` is the
same as a decorator) applies, in this order:

1. **inputs are never outputs** — an output that is, contains, or lies inside any input of the command
   (audio root, meta CSV, features, relevance, model directory, audio files…) is refused, with or without
   ``--overwrite``; so are outputs whose lock or temporary names are inputs;
2. **one missing folder** — the output and at most one missing folder above it are created (a typo is an
   error, not a new tree); a file where a directory is wanted, or the reverse, is an error;
3. **one writer** — ``OUT.lock`` (next to the output) is held for the whole command
   (:func:`scatterxai._util.fs.output_lock`), so a second writer is refused with the holder's pid;
4. **only what scatterxai wrote is replaced** — an existing output is replaced only if it is of the same
   kind (a relevance file by a relevance file, a quality folder by a quality folder) and of the same
   study (:data:`Claim.study`, e.g. the features file it was made from); another kind or study needs
   ``overwrite=True`` (``--overwrite``); a file or folder that scatterxai did not write — or a folder holding
   files that its kind does not write — is never replaced;
5. **all or nothing** — a directory output is written into a fresh temporary sibling folder
   (:attr:`Claim.tmp`) and renamed into place as a whole at the end (:func:`scatterxai._util.fs.atomic_dir`);
   a file output is written to a temporary sibling and renamed (:func:`scatterxai._util.fs.atomic_path`,
   :func:`scatterxai.io.hdf5.atomic_h5`).  Temporary, partial and lock files are created new with
   ``O_EXCL | O_NOFOLLOW``: never written through a symbolic link;
6. **one clear line** — a full disk, a read-only folder or any other write error becomes an
   :class:`~scatterxai.errors.OutputError` naming the output (the previous output is untouched).

Directory outputs carry a small marker, ``.scatterxai.json`` (kind, study, inputs, the files written), by
which the next run recognises them; folders written before the marker existed are recognised by the files
their kind writes (:data:`KINDS`).  Two directory kinds are *updated* rather than replaced (``run``, the
pipeline's folder, and ``corpus``, the synthetic corpus, which resume): they are written in place, under the
lock.

Claims nest: a command that calls another writer inside its temporary folder (``sweep`` runs ``extract`` and
``explain`` into its own folder) passes through — only the outermost claim locks and renames.

Examples
--------
>>> with claim_output(out, kind="quality", inputs={"features input": features}) as claim:  # doctest: +SKIP
...     write_json(os.path.join(claim.tmp, "quality.json"), result)

>>> @claims_output("out_dir", kind="compare", inputs={"relevance": "relevance input"})  # doctest: +SKIP
... def compare_relevance(relevance, out_dir, config=None): ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import inspect
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, Mapping, Optional, Sequence, Union

from .fs import LOCK_SUFFIX, TMP_SUFFIX, atomic_dir, atomic_path, output_lock, prepare_output
from .output_kinds import KINDS, MARKER, OutputKind, identify, kind_of, read_marker
from .types import PathLike

__all__ = ["claim_output", "claims_output", "check_output", "final_path", "Claim", "OutputKind", "KINDS", "MARKER",
           "identify", "write_errors", "describe_os_error"]

# -------------------------------------------------------------------------------------------- the rule

def _real(p: str) -> str:
    return os.path.realpath(p)


def _within(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or below it (both resolved; hard links and bind mounts of the same object count)."""
    path, folder = _real(path), _real(folder)
    if path == folder or path.startswith(folder.rstrip(os.sep) + os.sep):
        return True
    try:
        return os.path.samefile(path, folder)
    except OSError:
        return False


def _flatten_inputs(inputs: Optional[Mapping[str, Any]]) -> Dict[str, str]:
    """label → absolute path; sequences expand to ``label 1``, ``label 2``…; None values are skipped;
    objects with a ``path`` attribute (open files of the package) give that path."""
    out: Dict[str, str] = {}
    for label, value in (inputs or {}).items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                out.update(_flatten_inputs({f"{label} {i + 1}": v}))
            continue
        if isinstance(value, Mapping):
            out.update(_flatten_inputs({f"{label} {k}": v for k, v in value.items()}))
            continue
        value = getattr(value, "path", value)
        if isinstance(value, (str, os.PathLike)):
            out[label] = os.path.abspath(os.fspath(value))
    return out


#: input labels of folders that hold their command's default output (``explore``'s run directory and
#: ``RUN_DIR/explorer``): an output may lie inside them, though never be or contain them
CONTAINERS = ("run directory",)


def _check_inputs(out: str, kind: OutputKind, inputs: Dict[str, str], option: str) -> None:
    from ..errors import ParameterError
    sidecars = ("", LOCK_SUFFIX, TMP_SUFFIX, ".partial", ".partial" + TMP_SUFFIX)
    for label, inp in inputs.items():
        clash = None
        if any(_real(out + s) == _real(inp) or _same_object(out + s, inp) for s in sidecars):
            clash = "is"
        elif _within(out, inp) and os.path.isdir(inp) and label not in CONTAINERS:
            clash = "lies inside"
        elif kind.is_dir and _within(inp, out):
            clash = "contains"
        if clash:
            raise ParameterError(f"{option} {out} {clash} the {label} {inp} of this command: an output never "
                                 f"replaces, contains or lies inside an input (even with --overwrite); choose "
                                 f"another output path")


def _same_object(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _what(kind: Optional[str]) -> str:
    if kind is None:
        return "something scatterxai did not write"
    k = KINDS.get(kind)
    what = k.what if k else kind + " output"
    return f"{'an' if what[:1].lower() in 'aeio' else 'a'} {what}"   # 'a unit', 'an evaluation'


def check_output(path: PathLike, *, kind: str, inputs: Optional[Mapping[str, Any]] = None, overwrite: bool = False,
                 is_dir: Optional[bool] = None, study: Optional[str] = None, option: str = "--out",
                 create: bool = True) -> str:
    """Apply the output rule to ``path`` (without locking or writing); return it absolute.

    Parameters are those of :func:`claim_output`.  ``create`` creates the missing folder above the output
    (and an updated directory output itself).  Call it again under the lock (:func:`claim_output` does).

    Raises
    ------
    ParameterError
        The output is, contains or lies inside an input; a missing folder tree; a file where a folder is
        wanted or the reverse.
    OutputError
        The output exists and is not replaced: another kind or study (without ``overwrite``), or something
        scatterxai did not write.
    """
    from ..errors import OutputError, ParameterError
    k = kind_of(kind, is_dir)
    path = os.path.abspath(os.fspath(path))
    flat = _flatten_inputs(inputs)
    _check_inputs(path, k, flat, option)
    if os.path.islink(path.rstrip(os.sep)):
        raise ParameterError(f"{option} {path} is a symbolic link; give the path it points to ({_real(path)}): "
                             f"scatterxai replaces outputs by renaming and never writes through a link")
    path = prepare_output(path, is_dir=k.is_dir, create=k.update, option=option, make=create)
    have = identify(path, is_dir=k.is_dir)
    if have.state in ("absent", "empty"):
        return path
    if have.state == "foreign":
        extra = f" (it holds {have.stray!r})" if have.stray else ""
        raise OutputError(f"{option} {path} exists and is {_what(None)}{extra}; scatterxai never replaces it, even "
                          f"with --overwrite: choose a new {k.what}" + (" or an empty folder" if k.is_dir else ""))
    if have.kind != k.name:
        if k.update or not overwrite:
            how = "choose another path" if k.update else "pass --overwrite to replace it, or choose another path"
            raise OutputError(f"{option} {path} is {_what(have.kind)}, not {_what(k.name)}; {how}")
    elif study is not None and have.study is not None and have.study != study and not overwrite:
        made = f" (made from {', '.join(f'{a} {b}' for a, b in have.inputs.items())})" if have.inputs else ""
        raise OutputError(f"{option} {path} holds {_what(k.name)} of another study{made}; pass --overwrite to "
                          f"replace it, or choose another path")
    if have.stray is not None:
        raise OutputError(f"{option} {path} holds {have.stray!r}, which {_what(have.kind)} does not write; scatterxai "
                          f"replaces its output folders as a whole and never deletes what it did not write: move "
                          f"it, or choose another path")
    return path


# ------------------------------------------------------------------------------------- write errors

#: errno values of a device that cannot take the output (full, read-only, not permitted, too large)
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO}


def describe_os_error(e: BaseException) -> str:
    """``strerror`` of an OSError (h5py's long messages cut to their first line)."""
    if isinstance(e, OSError) and e.strerror:
        text = e.strerror
        if e.errno == errno.ENOSPC or "No space left" in str(e):
            text = "No space left on device"
        return text.splitlines()[0]
    return (str(e).splitlines() or [type(e).__name__])[0][:200]


@contextlib.contextmanager
def write_errors(path: PathLike, what: str, *, previous: Optional[bool] = None) -> Iterator[None]:
    """Turn a write error (full disk, read-only folder, no permission…) inside the block into one
    :class:`~scatterxai.errors.OutputError` naming ``path``; other errors pass."""
    from ..errors import OutputError
    path = os.fspath(path)
    if previous is None:
        previous = os.path.lexists(path)
    try:
        yield
    except OSError as e:
        reason = describe_os_error(e)
        if not (e.errno in _WRITE_ERRNOS or "No space left" in str(e) or "Read-only" in str(e)):
            raise
        name = getattr(e, "filename", None)
        if isinstance(name, (str, bytes, os.PathLike)) and not os.fsdecode(name).startswith(path):
            raise   # about another file (an input): the caller reports it
        kept = f"the previous {path} is unchanged" if previous else "nothing was written"
        raise OutputError(f"cannot write the {what} {path}: {reason}; {kept}") from None


def _device_problem(path: str) -> Optional[str]:
    """"No space left on device" or "Read-only file system" when the file system of ``path`` is so, else None."""
    folder = path
    while folder and not os.path.exists(folder):
        folder = os.path.dirname(folder)
    try:
        st = os.statvfs(folder or ".")
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return "Read-only file system"
    if st.f_bavail * st.f_frsize < 16 * 1024:
        return "No space left on device"
    return None


# ---------------------------------------------------------------------------------------------- claims

@dataclass
class Claim:
    """An output being written (see :func:`claim_output`).

    Attributes
    ----------
    path : str
        The final output path.
    tmp : str
        Where to write: the fresh temporary folder of a directory output (renamed to :attr:`path` at the
        end); :attr:`path` itself for a file output (write it with ``atomic_path`` / ``atomic_h5``) and for
        updated directories.
    kind, study : str
    inputs : dict label → path
    """

    path: str
    tmp: str
    kind: str
    study: Optional[str] = None
    inputs: Dict[str, str] = field(default_factory=dict)

    def file(self, name: str) -> str:
        """A file of a directory output, in its temporary folder."""
        return os.path.join(self.tmp, name)

    def final(self, value: Any) -> Any:
        """``value`` with every path inside :attr:`tmp` mapped to where it is after the rename (strings,
        ``os.PathLike``, and dicts, lists and tuples of them)."""
        if self.tmp == self.path:
            return value
        if isinstance(value, os.PathLike):
            return type(value)(self.final(os.fspath(value)))
        if isinstance(value, str):
            return self.path + value[len(self.tmp):] if value == self.tmp or value.startswith(
                self.tmp + os.sep) else value
        if isinstance(value, dict):
            return {k: self.final(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
            return type(value)(self.final(v) for v in value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.replace(value, **{f.name: self.final(getattr(value, f.name))
                                                 for f in dataclasses.fields(value) if f.init})
        return value


_ACTIVE: Dict[str, Claim] = {}
_ACTIVE_LOCK = threading.Lock()


def _outer(path: str) -> Optional[Claim]:
    with _ACTIVE_LOCK:
        return next((c for tmp, c in _ACTIVE.items() if path == tmp or path.startswith(tmp + os.sep)), None)


def final_path(path: PathLike) -> str:
    """Where ``path`` will be once the claim whose temporary folder holds it is renamed into place (``path``
    itself, absolute, outside any claim) — for the few outputs that record their own location."""
    path = os.path.abspath(os.fspath(path))
    outer = _outer(path)
    return path if outer is None else outer.final(path)


def _write_marker(folder: str, claim: Claim, files: Sequence[str]) -> None:
    from .. import __version__
    from .jsonio import format_json
    info = {"kind": claim.kind, "study": claim.study, "inputs": claim.inputs, "files": sorted(files),
            "scatterxai_version": __version__, "written": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with atomic_path(os.path.join(folder, MARKER)) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(format_json(info) + "\n")


@contextlib.contextmanager
def claim_output(path: PathLike, *, kind: str, inputs: Optional[Mapping[str, Any]] = None, overwrite: bool = False,
                 is_dir: Optional[bool] = None, study: Optional[str] = None, option: str = "--out",
                 swap: bool = True) -> Iterator[Claim]:
    """Claim an output for the duration of the block: the one output rule of every command.

    Parameters
    ----------
    path : str
        The output (a file or a directory, as ``kind`` says).
    kind : str
        A name of :data:`KINDS` (``"relevance"``, ``"quality"``…) or a new name (then give ``is_dir``).
    inputs : mapping label → path, optional
        Every input of the command (``{"features input": f, "model directory": m}``); None values are
        skipped, lists expand, objects with a ``.path`` give it.
    overwrite : bool
        Replace an output of another kind or study (never an input, never something scatterxai did not
        write).
    is_dir : bool, optional
        Only for a new kind.
    study : str, optional
        What the output is about (e.g. the fingerprint of the features it was made from): an existing
        output of the same kind and another study is replaced only with ``overwrite``.
    option : str
        The option that named the output, for messages.
    swap : bool
        Directory outputs: write into a fresh temporary folder renamed into place at the end (default); with
        False :attr:`Claim.tmp` is the output itself and the caller replaces it as a whole (e.g. a model
        directory, :func:`scatterxai.model.save_model`).

    Yields
    ------
    Claim
        Write into :attr:`Claim.tmp` (directory outputs) or to :attr:`Claim.path` through ``atomic_path`` /
        ``atomic_h5`` (file outputs).  On success a directory output is renamed into place with its
        marker; on any exception its temporary folder is removed and the previous output is untouched.

    Raises
    ------
    ParameterError, OutputError, LockError
        See :func:`check_output`; :class:`~scatterxai.errors.LockError` when another process writes the
        output; :class:`~scatterxai.errors.OutputError` for a write error (full disk, read-only folder).
    """
    k = kind_of(kind, is_dir)
    abspath = os.path.abspath(os.fspath(path))
    outer = _outer(abspath)
    if outer is not None:   # inside the temporary folder of an enclosing claim: it locks and renames
        _check_inputs(abspath, k, _flatten_inputs(inputs), option)
        if k.is_dir:
            os.makedirs(abspath, exist_ok=True)
        yield Claim(abspath, abspath, k.name, study, _flatten_inputs(inputs))
        return
    with write_errors(abspath, k.what):
        abspath = check_output(abspath, kind=kind, inputs=inputs, overwrite=overwrite, is_dir=is_dir, study=study,
                               option=option)
        flat = _flatten_inputs(inputs)
        with output_lock(abspath, what=k.what):
            # again under the lock: another process may have written it meanwhile
            check_output(abspath, kind=kind, inputs=inputs, overwrite=overwrite, is_dir=is_dir, study=study,
                         option=option, create=False)
            if not k.is_dir or k.update or not swap:
                claim = Claim(abspath, abspath, k.name, study, flat)
                if k.update and read_marker(abspath) is None:
                    _write_marker(abspath, claim, ())
                with _device_errors(abspath):
                    yield claim
                return
            with atomic_dir(abspath) as tmp:
                claim = Claim(abspath, tmp, k.name, study, flat)
                with _ACTIVE_LOCK:
                    _ACTIVE[tmp] = claim
                try:
                    with _device_errors(tmp):
                        yield claim
                finally:
                    with _ACTIVE_LOCK:
                        _ACTIVE.pop(tmp, None)
                _write_marker(tmp, claim, [n for n in os.listdir(tmp) if n != MARKER])


@contextlib.contextmanager
def _device_errors(where: str) -> Iterator[None]:
    """A library error that hides its errno (libsndfile's "System error.") while the file system of ``where``
    is full or read-only becomes that OSError — checked at once, before temporary files are removed."""
    try:
        yield
    except RuntimeError as e:
        problem = _device_problem(where)
        if problem is None:
            raise
        code = errno.EROFS if problem.startswith("Read-only") else errno.ENOSPC
        raise OSError(code, f"{problem} ({describe_os_error(e)})", where) from None


def claims_output(out: str, *, kind: str, inputs: Union[Mapping[str, str], Sequence[str]] = (),
                  study: Optional[Callable[[inspect.BoundArguments], Optional[str]]] = None,
                  check: Optional[Callable[[inspect.BoundArguments], None]] = None,
                  overwrite: str = "overwrite", option: str = "--out") -> Callable:
    """Decorator form of :func:`claim_output` for a function that writes its output at parameter ``out``.

    The function is called with ``out`` replaced by the claim's temporary folder (directory kinds) and
    its return value mapped back (:meth:`Claim.final`).

    Parameters
    ----------
    out : str
        Name of the output parameter.
    kind : str
    inputs : mapping parameter → label, or sequence of parameter names
        The parameters that are inputs (label: the name with spaces).
    study : callable, optional
        ``bound arguments → study`` (see :func:`claim_output`).
    check : callable, optional
        ``bound arguments → None``, run before the claim: raises when inputs do not belong together
        (e.g. :func:`scatterxai.io.together.check_together`).
    overwrite : str
        Name of the function's overwrite parameter, if it has one.
    """
    labels = dict(inputs) if isinstance(inputs, Mapping) else {p: p.replace("_", " ") for p in inputs}

    def decorate(fn: Callable) -> Callable:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            ba = sig.bind(*args, **kwargs)
            ba.apply_defaults()
            given = {label: ba.arguments.get(p) for p, label in labels.items()}
            if check is not None:
                check(ba)
            with claim_output(ba.arguments[out], kind=kind, inputs=given, option=option,
                              overwrite=bool(ba.arguments.get(overwrite, False)),
                              study=study(ba) if study is not None else None) as claim:
                ba.arguments[out] = claim.tmp if isinstance(ba.arguments[out], str) else type(
                    ba.arguments[out])(claim.tmp)
                return claim.final(fn(*ba.args, **ba.kwargs))

        wrapper.__wrapped_output__ = (out, kind)
        return wrapper

    return decorate
