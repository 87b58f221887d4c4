"""Relevance over time — pure numpy (no torch).

A relevance map R[path, frame] summed over paths gives, per frame, how much that stretch of the signal
contributes to the explained output (for the LRP rules with biases removed the frames' values add up to
the explained logit): the local map's counterpart in time.  A recording cut into consecutive windows
(:func:`scatterxai.audio.segment_starts`) has one such profile per window; :func:`file_time_profile` joins
them into one profile of the file.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from ..errors import ParameterError

__all__ = ["file_time_profile"]


def file_time_profile(profile: np.ndarray, starts: np.ndarray, frame_s: np.ndarray,
                      duration_s: float) -> Tuple[np.ndarray, np.ndarray]:
    """One file's relevance over time from its windows' profiles.

    Parameters
    ----------
    profile : np.ndarray [shape=(n_windows, T)]
        Relevance summed over paths, per window and frame.
    starts : np.ndarray [shape=(n_windows,)]
        Start of each window in the file (s), increasing.
    frame_s : np.ndarray [shape=(T,)]
        Frame centres within a window (s).
    duration_s : float
        The file's duration: frames centred beyond it (the continuation of a short file) are left out.

    Returns
    -------
    time_s : np.ndarray [shape=(n,)]
        Frame centres in the file (s), increasing; where windows overlap (the last window ends at the end
        of the file) each instant comes from the earlier window.
    values : np.ndarray [shape=(n,)]
    """
    profile = np.asarray(profile, dtype=np.float64)
    starts, frame_s = np.asarray(starts, dtype=np.float64), np.asarray(frame_s, dtype=np.float64)
    if profile.ndim != 2 or profile.shape != (starts.size, frame_s.size):
        raise ParameterError(f"profile must have shape (n_windows, T) = ({starts.size}, {frame_s.size}), got "
                             f"{profile.shape}")
    times, values, last = [np.zeros(0)], [np.zeros(0)], -np.inf
    hop = float(np.median(np.diff(frame_s))) if len(frame_s) > 1 else 0.0
    for row, start in zip(profile, starts):
        tau = start + frame_s
        keep = (tau > last + hop / 2) & (tau < duration_s)
        times.append(tau[keep])
        values.append(row[keep])
        if keep.any():
            last = tau[keep][-1]
    return np.concatenate(times), np.concatenate(values)
