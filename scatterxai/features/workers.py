"""Extraction on Dask workers (``extract --dask``): a row chunk → :class:`~.extract.BatchResult`.

A chunk is one batch of the serial loop (:meth:`PartialFile.pending_batches` with the same batch size), so
the coefficients are those of a serial run with as many torch threads per process (Dask's worker processes
run one: ``OMP_NUM_THREADS=1``).  A worker reads the chunk's audio at the driver's paths (the audio root must
be visible at the same path on every worker) and returns the coefficients; the driver commits them.

Built once per worker process, not per task: the scattering module (the ``lru_cache`` of
:func:`scatterxai.scattering.get_scattering`, warmed up on every worker before the first chunk) and the
audio resolver of the run (its recursive index of the audio tree).
"""

from __future__ import annotations

import functools
import os
import uuid
from typing import TYPE_CHECKING, Iterable, Iterator, Optional, Sequence, Tuple

import numpy as np

from .._util.cluster import describe_rows, map_chunks, warm_up
from .._util.types import Device
from ..errors import StoreError
from .batch import BatchResult, compute_batch

if TYPE_CHECKING:
    from distributed import Client

    from ..data.paths import AudioResolver
    from ..scattering.config import ScatteringConfig

__all__ = ["dask_batches", "local_batches", "extract_chunk"]


@functools.lru_cache(maxsize=4)
def _resolver(root: str, allow_outside: bool, run: str):
    """The audio resolver of one run in this process (``run`` keeps an index from outliving its run)."""
    from ..data.paths import AudioResolver
    return AudioResolver(root, allow_outside=allow_outside)


def _warm(root: str, config, device, method: str) -> None:
    if not os.path.isdir(root):
        raise StoreError(f"the audio root {root} is not a directory on this worker: workers read the audio at "
                         f"the driver's path (mount it at the same path on every machine)")
    from ..scattering.api import get_scattering
    get_scattering(config, device=device, method=method)


def extract_chunk(chunk: Tuple[np.ndarray, Sequence[str], Optional[Sequence[float]]], *, root: str,
                  allow_outside: bool, run: str, config: ScatteringConfig, device: Device, method: str,
                  batch_size: int) -> BatchResult:
    """The task: ``chunk = (rows, their file names, their window starts or None)`` → BatchResult of those
    rows (unreadable audio is a failure of its row, anything else raises)."""
    rows, names, starts = chunk
    res = compute_batch(range(len(rows)), names, resolve=_resolver(root, allow_outside, run), config=config,
                        device=device, method=method, batch_size=batch_size, starts=starts)
    rows = np.asarray(rows, dtype=np.int64)
    return BatchResult([int(rows[i]) for i in res.ok_rows], res.S, [(int(rows[i]), why) for i, why in res.failed],
                       [int(rows[i]) for i in res.truncated])


def dask_batches(client: Client, batches: Iterable[np.ndarray], row_names: Sequence[str],
                 starts: Optional[Sequence[float]], *, resolve: AudioResolver, config: ScatteringConfig,
                 device: Device, method: str, batch_size: int,
                 kept: str = "") -> Iterator[Tuple[np.ndarray, BatchResult]]:
    """``(rows, BatchResult)`` of every batch, computed on the workers of ``client``, in completion order.

    Raises
    ------
    ClusterError
        A worker cannot see the audio root or fails to build the filter bank; a task raised something other
        than an unreadable-audio error; or its workers kept dying.
    """
    warm_up(client, _warm, resolve.root, config, device, method, what="building the scattering filter bank")
    chunks = ((rows, [row_names[r] for r in rows], None if starts is None else [float(starts[r]) for r in rows])
              for rows in batches)
    for (rows, _, _), res in map_chunks(
            client, extract_chunk, chunks, name="extract", describe=lambda c: "extraction of "
            + describe_rows(c[0], c[1]), kept=kept, root=resolve.root, allow_outside=resolve.allow_outside,
            run=uuid.uuid4().hex, config=config, device=device, method=method, batch_size=batch_size):
        yield rows, res


def _one_thread() -> None:
    """Initializer of a local worker process: one torch thread, as Dask's workers; Ctrl-C is the driver's
    (it stops the pool), not the workers'."""
    import signal

    import torch
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def local_batches(jobs: int, batches: Iterable[np.ndarray], row_names: Sequence[str],
                  starts: Optional[Sequence[float]], *, resolve: AudioResolver, config: ScatteringConfig,
                  device: Device, method: str, batch_size: int) -> Iterator[Tuple[np.ndarray, BatchResult]]:
    """``(rows, BatchResult)`` of every batch computed by ``jobs`` worker processes of this machine (spawned),
    each with **one torch thread**, in completion order.

    One thread per batch is what Dask's workers and a serial extraction run too: float32 sums round
    differently with other thread counts, so the features file is the same, bit for bit, for every ``jobs``
    and with ``--dask``.
    """
    chunks = ((rows, [row_names[r] for r in rows], None if starts is None else [float(starts[r]) for r in rows])
              for rows in batches)
    kwargs = dict(root=resolve.root, allow_outside=resolve.allow_outside, run=uuid.uuid4().hex, config=config,
                  device=device, method=method, batch_size=batch_size)
    yield from _pool(jobs, chunks, kwargs)


def _pool(jobs: int, chunks, kwargs) -> Iterator[Tuple[np.ndarray, BatchResult]]:
    """The chunks on a pool of ``jobs`` spawned processes, at most two per process in flight."""
    import concurrent.futures as cf
    import multiprocessing
    pool = cf.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread)
    running = {}
    try:
        for chunk in chunks:
            running[pool.submit(extract_chunk, chunk, **kwargs)] = chunk[0]
            while len(running) >= 2 * jobs:
                yield from _completed(running, cf)
        while running:
            yield from _completed(running, cf)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _completed(running: dict, cf) -> Iterator[Tuple[np.ndarray, BatchResult]]:
    done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
    for fut in done:
        rows = running.pop(fut)
        yield rows, fut.result()
