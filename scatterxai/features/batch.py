"""Compute a batch (step 2 of extraction's plan / compute / commit): read, prepare and scatter the audio
of some rows.  No file is written, so that Dask workers run it (:mod:`.workers`) as well as the serial
loop of :func:`scatterxai.features.extract_features`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from .._util.types import Device
from ..errors import AudioError
from ..scattering.config import ScatteringConfig, path_table

__all__ = ["BatchResult", "compute_batch"]


@dataclass
class BatchResult:
    """Output of :func:`compute_batch`: coefficients of the rows that worked, reasons for the others."""

    ok_rows: List[int]
    S: np.ndarray                     # (len(ok_rows), C, T) float32
    failed: List[Tuple[int, str]]     # (row, reason)
    truncated: List[int] = field(default_factory=list)  # rows whose file is longer than the window


def compute_batch(rows: Sequence[int], paths: Sequence[str], *, resolve: Callable[[str], str],
                  config: ScatteringConfig, device: Device = "auto", method: str = "fast", batch_size: int = 8,
                  starts: Optional[Sequence[float]] = None) -> BatchResult:
    """Read, prepare and scatter the audio of ``rows``; unreadable files become failures, not errors.

    Parameters
    ----------
    rows : sequence of int
        Rows to compute.
    paths : sequence of str
        ``file_name`` of every row.
    resolve : callable
        ``file_name`` → audio path (:class:`scatterxai.data.AudioResolver`).
    starts : sequence of float, optional
        Start (s) of every row's window in its file (segments); default: each file's first window, and
        rows whose file is longer than it are listed in ``truncated``.
    """
    from ..audio import read_window
    from ..scattering.api import scatter

    ok_rows, signals, failed, truncated = [], [], [], []
    window_s = config.N / config.sr
    for r in rows:
        try:
            x, duration_s = read_window(resolve(paths[r]), config, start_s=0.0 if starts is None else starts[r])
            signals.append(x)
            ok_rows.append(int(r))
            if starts is None and duration_s > window_s + 1e-3:
                truncated.append(int(r))
        except AudioError as e:
            failed.append((int(r), str(e)))
    if signals:
        S = scatter(np.stack(signals), config, device=device, method=method, batch_size=batch_size).cpu().numpy()
    else:
        S = np.zeros((0, len(path_table(config)), path_table(config).n_frames), np.float32)
    return BatchResult(ok_rows, S, failed, truncated)
