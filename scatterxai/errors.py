"""The one exception root of scatterxai.

Every error the package raises on purpose derives from :class:`ScatterXAIError`, so a caller can catch
everything with one ``except``.  Subclasses say which stage failed; messages quote the bad value and say
what would be valid.
"""


class ScatterXAIError(Exception):
    """Root of every error raised by scatterxai."""


class ParameterError(ScatterXAIError, ValueError):
    """A parameter or an input array has a bad value, type or shape."""


class AudioError(ScatterXAIError):
    """An audio file cannot be read or holds no usable signal (empty, corrupt, NaN)."""


class DataError(ScatterXAIError):
    """A dataset description (meta CSV, audio tree) is incomplete or inconsistent."""


class StoreError(ScatterXAIError):
    """An HDF5 file is missing, malformed or incompatible with the requested operation."""


class ModelError(ScatterXAIError):
    """A model directory is missing, malformed, or does not fit the features it is applied to."""


class LockError(ScatterXAIError):
    """An output is being written by another process (its lock file is held), or cannot be locked."""


class ClusterError(ScatterXAIError):
    """The Dask back end failed: dask is not installed, the scheduler cannot be reached, or a task raised
    (or its workers kept dying) on a worker."""


class OutputError(ScatterXAIError):
    """An output cannot be written: the disk is full, the folder is read-only, or the output path breaks the
    output rule (:mod:`scatterxai._util.outputs`).  The previous output, if any, is left as it was."""
