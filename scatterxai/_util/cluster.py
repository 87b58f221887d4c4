"""The Dask back end (``--dask``): open a cluster, run row chunks on its workers, hand results to one writer.

Extraction and explanation are embarrassingly parallel over rows.  A stage cuts its pending rows into
chunks (the batches of its serial loop, so that the numbers are the same), :func:`map_chunks` runs a task
per chunk on the workers and yields the results as they complete; the calling process (the *driver*)
alone writes them.  Dask resubmits the task of a worker that dies (``distributed.scheduler.allowed-failures``
times), so a killed worker's chunk is computed again and committed once.

``dask`` is an optional dependency (``pip install 'scatterxai[dask]'``): only the functions here import it,
when called, so that nothing of Dask is loaded without ``--dask``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Optional, Tuple, Union

from ..errors import ClusterError, ParameterError
from .log import logger
from .types import DaskSpec

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["check_dask", "dask_client", "map_chunks", "warm_up", "describe_rows", "DASK_HELP"]

#: what ``--dask`` accepts (for messages and the CLI's help)
DASK_HELP = ("a Dask scheduler address (tcp://host:8786), or local:N to start N worker processes on this "
             "machine (local: one per core)")

_ADDRESS = re.compile(r"^([a-z][a-z0-9+]*://\S+|[^\s:/]+:\d+)$")
#: seconds between refreshes of the number of worker threads (which sizes the window of submitted tasks)
_REFRESH_S = 5.0


def check_dask(spec: DaskSpec) -> DaskSpec:
    """Validate a ``dask`` argument: None, a ``distributed.Client``, ``"local"``, ``"local:N"`` or a scheduler
    address; returns it (strings stripped).  Checks that Dask is installed without importing it.

    Raises
    ------
    ParameterError
        A malformed value.
    ClusterError
        Dask's distributed scheduler is not installed.
    """
    if spec is None or (not isinstance(spec, str) and hasattr(spec, "submit")):
        return spec
    if not isinstance(spec, str):
        raise ParameterError(f"dask must be {DASK_HELP} or a distributed.Client, got {type(spec).__name__}")
    text = spec.strip()
    n = text[len("local"):] if text.startswith("local") else None
    if not (n == "" or (n and n[0] == ":" and n[1:].isdigit() and int(n[1:]) > 0)
            or (n is None and _ADDRESS.match(text))):
        raise ParameterError(f"--dask must be {DASK_HELP}, got {spec!r}")
    try:
        found = importlib.util.find_spec("distributed") is not None
    except (ImportError, ValueError, AttributeError):   # e.g. a module set to None in sys.modules
        found = False
    if not found:
        raise ClusterError(_MISSING)
    return text


_MISSING = ("--dask needs Dask's distributed scheduler, which is not installed; install it with: "
            "pip install 'scatterxai[dask]'")


def _import_distributed():
    try:
        import distributed
    except ImportError as e:
        raise ClusterError(f"{_MISSING} ({e})") from None
    return distributed


@contextlib.contextmanager
def dask_client(spec: Union[str, Client]) -> Iterator[Client]:
    """A ``distributed.Client`` for the duration of the block.

    Parameters
    ----------
    spec : str or distributed.Client
        ``"local:N"`` starts a ``LocalCluster`` of N single-threaded worker processes (closed at the end);
        an address connects to a running scheduler; a Client is used as is (and left open).

    Raises
    ------
    ClusterError
        Dask is not installed, or the scheduler cannot be reached.
    """
    spec = check_dask(spec)
    if not isinstance(spec, str):
        yield spec
        return
    distributed = _import_distributed()
    with contextlib.ExitStack() as stack:
        if spec.startswith("local"):
            n = int(spec[6:]) if spec[6:] else (os.cpu_count() or 1)
            # processes, one thread each: every worker has its own filter bank, GIL and torch thread
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None))
            client = stack.enter_context(distributed.Client(cluster))
            where = f"a local cluster of {n} worker process(es)"
        else:
            probe_scheduler(spec)
            try:
                client = stack.enter_context(distributed.Client(spec))
            except (OSError, TimeoutError, ValueError, MemoryError) as e:
                raise ClusterError(f"cannot reach the Dask scheduler at {spec} ({type(e).__name__}: {e}); start "
                                   f"one ('dask scheduler', then 'dask worker {spec}' on each machine) or use "
                                   f"--dask local:N") from None
            where = f"the Dask scheduler at {spec}"
        n_workers, n_threads = _size(client)
        logger.info("running on %s: %d worker(s), %d thread(s)", where, n_workers, n_threads)
        if not n_workers:
            logger.warning("warning: %s has no workers yet; the tasks wait until some join (dask worker %s)",
                           where, client.scheduler.address)
        yield client


def _connect_timeout() -> float:
    """Dask's connect timeout (``distributed.comm.timeouts.connect``) in seconds."""
    import dask
    from dask.utils import parse_timedelta
    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect", "30s"), default="seconds"))


def probe_scheduler(address: str, timeout: Optional[float] = None) -> None:
    """Check, within the connect timeout, that a ``tcp://`` address is a Dask scheduler, before Dask's own
    client connects to it.

    A Dask scheduler sends its handshake (a length-prefixed msgpack frame naming ``pickle-protocol``) as soon
    as a connection is accepted.  Anything else — a web server waiting for a request, a service that answers
    with text — would make Dask's client wait without bound or read text as a frame length (and try to
    allocate exabytes): it is refused here with a :class:`ClusterError` naming the address.  Other schemes
    (``tls://``, ``ucx://``) are left to Dask.
    """
    match = re.match(r"^(?:tcp://)?\[?([^\]/\s]+?)\]?:(\d+)/?$", address)
    if match is None:
        return
    host, port = match.group(1), int(match.group(2))
    timeout = _connect_timeout() if timeout is None else float(timeout)
    hint = (f"start one ('dask scheduler', then 'dask worker {address}' on each machine) or use --dask local:N")
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({e.strerror or e}); {hint}") from None
    deadline = time.monotonic() + timeout
    data = b""
    with sock:
        try:
            while len(data) < 8 or len(data) < 8 + _frame_length(data):
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
                if len(data) >= 8 and not 0 < _frame_length(data) <= 1 << 20:
                    break
        except OSError:   # socket.timeout included: it sent nothing (or too little) in time
            pass
    if len(data) >= 8 and 0 < _frame_length(data) <= 1 << 20 and b"pickle-protocol" in data:
        return
    what = (f"it sent nothing within {timeout:g} s" if not data else
            f"it answered {data[:40]!r}{'…' if len(data) > 40 else ''}")
    raise ClusterError(f"{address} is not a Dask scheduler ({what}); give the address of a running 'dask scheduler' "
                       f"(tcp://host:8786), or use --dask local:N")


def _frame_length(data: bytes) -> int:
    """The length a Dask TCP message announces in its first 8 bytes (little-endian uint64)."""
    import struct
    return struct.unpack("<Q", data[:8])[0]


def _size(client) -> Tuple[int, int]:
    """(workers, threads) of the cluster now."""
    nthreads = client.nthreads()
    return len(nthreads), int(sum(nthreads.values()))


def _versions() -> dict:
    import scatterxai

    from .versions import package_version
    return {"scatterxai": scatterxai.__version__,
            **{k: package_version(k) for k in ("torch", "kymatio", "zennit", "numpy", "h5py")}}


def _warm_task(fn, args):
    """Run on a worker: its versions, host, torch threads and ``fn(*args)``."""
    import torch
    return _versions(), socket.gethostname(), torch.get_num_threads(), fn(*args)


def warm_up(client: Client, fn: Callable, *args: Any, what: str = "the set-up") -> list:
    """Run ``fn(*args)`` once on every worker now (e.g. build the filter bank, check a path), in a worker
    thread; refuse workers with another scatterxai version, warn about other library versions.

    Returns the results, one per worker.

    Raises
    ------
    ClusterError
        ``fn`` raised on a worker (the message names the worker's host), or a worker runs another version
        of scatterxai.
    """
    workers = list(client.nthreads())
    futures = [client.submit(_warm_task, fn, args, workers=[w], allow_other_workers=True, pure=False,
                             key=f"scatterxai-warm-up-{uuid.uuid4().hex[:8]}") for w in workers]
    mine, out = _versions(), []
    for w, fut in zip(workers, futures):
        try:
            versions, host, threads, result = fut.result()
        except Exception as e:   # noqa: BLE001 - anything raised remotely is reported as a ClusterError
            client.cancel(futures)
            raise ClusterError(f"{what} failed on the Dask worker {w}: {type(e).__name__}: {e}") from None
        if versions["scatterxai"] != mine["scatterxai"]:
            raise ClusterError(f"the Dask worker {w} ({host}) runs scatterxai {versions['scatterxai']} but this "
                               f"process runs {mine['scatterxai']}; install the same version on every machine")
        other = {k: (v, mine[k]) for k, v in versions.items() if v != mine[k]}
        if other:
            logger.warning("warning: the Dask worker %s (%s) has other library versions than this process (%s); "
                           "its results may differ in rounding from a serial run here", w, host,
                           ", ".join(f"{k} {a} vs {b}" for k, (a, b) in other.items()))
        logger.debug("worker %s (%s): torch threads %d", w, host, threads)
        out.append(result)
    return out


def map_chunks(client: Client, fn: Callable, chunks: Iterable, *, name: str, describe: Callable[[object], str],
               kept: str = "", **kwargs: Any) -> Iterator[Tuple[object, object]]:
    """``(chunk, fn(chunk, **kwargs))`` for every chunk, computed on the workers, in completion order.

    At most about two tasks per worker thread are submitted at a time, so that results never pile up on
    the workers when the caller (the single writer) is the slower side.  A task whose worker dies is
    resubmitted by Dask; each chunk is yielded exactly once.

    Parameters
    ----------
    client : distributed.Client
    fn : callable
        A module-level function (workers import it by name).
    chunks : iterable
        Task arguments, consumed lazily.
    name : str
        Prefix of the task keys (shown by Dask's dashboard).
    describe : callable
        chunk → text naming it in messages (e.g. its rows and first file).
    kept : str
        What the caller keeps when a task fails, appended to the error message.
    **kwargs
        Passed to every task.

    Raises
    ------
    ClusterError
        A task raised on its worker (any exception: a stage catches what it expects, e.g. unreadable audio,
        inside the task), or its workers died too often (``KilledWorker``); the tasks still running are
        cancelled.
    """
    from distributed import as_completed
    run = uuid.uuid4().hex[:8]
    todo = enumerate(iter(chunks))
    running: dict = {}
    pending = as_completed()
    window, refreshed = _window(client), time.monotonic()

    def submit() -> bool:
        item = next(todo, None)
        if item is None:
            return False
        i, chunk = item
        fut = client.submit(fn, chunk, key=f"scatterxai-{name}-{run}-{i}", **kwargs)
        running[fut.key] = (fut, chunk)
        pending.add(fut)
        return True

    while len(running) < window and submit():
        pass
    try:
        for fut in pending:
            _, chunk = running.pop(fut.key)
            try:
                result = fut.result()
            except Exception as e:   # noqa: BLE001 - anything raised remotely is reported as a ClusterError
                raise ClusterError(f"{describe(chunk)} failed on a Dask worker: {_why(e)}"
                                   + (f"; {kept}" if kept else "")) from None
            fut.release()
            if time.monotonic() - refreshed > _REFRESH_S:
                window, refreshed = _window(client), time.monotonic()
            while len(running) < window and submit():
                pass
            yield chunk, result
    finally:
        if running:
            client.cancel([f for f, _ in running.values()])


def _window(client) -> int:
    return max(4, 2 * _size(client)[1])


def _why(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    if type(e).__name__ == "KilledWorker":
        text += (" (the workers running it died repeatedly: out of memory? see the workers' logs; "
                 "distributed.scheduler.allowed-failures sets how many deaths are retried)")
    return text


def describe_rows(rows: Iterable[int], names: Optional[list] = None) -> str:
    """"rows 8–15 (n3.wav, …)" for messages."""
    rows = list(rows)
    span = f"row {rows[0]}" if len(rows) == 1 else f"rows {rows[0]}–{rows[-1]}"
    return span + (f" ({names[0]}{', …' if len(names) > 1 else ''})" if names else "")
