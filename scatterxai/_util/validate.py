"""Argument validation in one place (librosa's ``valid_*`` style).

Each ``check_*`` function returns the value converted to its canonical Python type, or raises
:class:`~scatterxai.errors.ParameterError` with a message that names the argument, quotes the bad value and
says what would be valid.  Entry points call them; inner functions trust their inputs.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Iterable, Mapping, Optional, Sequence, Tuple, TypeVar

import numpy as np

from ..errors import ParameterError

T = TypeVar("T")

__all__ = ["with_settings", "check_seed", "SEED_LIMIT",
           "check_int", "check_positive_int", "check_float", "check_positive_float", "check_choice",
           "check_shape", "is_integer"]


def is_integer(value: Any) -> bool:
    """True for Python and numpy integers (``bool`` excluded)."""
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value: Any, *, low: Optional[int] = None, high: Optional[int] = None) -> int:
    """An integer in [``low``, ``high``] (bounds optional, inclusive)."""
    if not is_integer(value):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ParameterError(f"{name} must be an integer in [{lo}, {hi}], got {value}")
    return value


#: seeds are integers in [0, SEED_LIMIT) everywhere (the command line, RunConfig, training, synthesis)
SEED_LIMIT = 2 ** 32


def check_seed(name: str, value: Any) -> int:
    """An integer seed in [0, 2**32)."""
    if not is_integer(value) or not 0 <= int(value) < SEED_LIMIT:
        raise ParameterError(f"{name} must be an integer in [0, 2**32), got {value!r}")
    return int(value)


def check_positive_int(name: str, value: Any) -> int:
    """An integer ≥ 1."""
    if not is_integer(value) or int(value) < 1:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, *, low: Optional[float] = None, high: Optional[float] = None,
                low_open: bool = False) -> float:
    """A finite real number in [``low``, ``high``] (``low_open``: ``low`` itself excluded)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        raise ParameterError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ParameterError(f"{name} must be a finite number, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ParameterError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and value > high:
        raise ParameterError(f"{name} must be <= {high}, got {value}")
    return value


def check_positive_float(name: str, value: Any) -> float:
    """A finite number > 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)) \
            or not math.isfinite(float(value)) or not float(value) > 0:
        raise ParameterError(f"{name} must be a positive finite number (> 0), got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, options: Iterable[str]) -> str:
    """One of ``options``."""
    options = list(options)
    if value not in options:
        raise ParameterError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_shape(name: str, array: Any, shape: Sequence[Optional[int]]) -> Tuple[int, ...]:
    """``array.shape`` matches ``shape`` (None matches any size); returns the actual shape."""
    actual = tuple(np.shape(array))
    if len(actual) != len(shape) or any(s is not None and a != s for a, s in zip(actual, shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ParameterError(f"{name} must have shape {want}, got {actual}")
    return actual


def with_settings(config: T, settings: Mapping[str, Any]) -> T:
    """A frozen dataclass ``config`` with some fields replaced; unknown names are a ParameterError listing
    the valid ones (instead of a TypeError from :func:`dataclasses.replace`)."""
    fields = [f.name for f in dataclasses.fields(config)]
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        raise ParameterError(f"unknown settings {unknown}; valid settings are {fields}")
    return dataclasses.replace(config, **settings)
