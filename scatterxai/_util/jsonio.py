"""Strict JSON out (NaN → null, numpy/torch values converted, atomic) and in."""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

import numpy as np

from .fs import atomic_path
from .types import PathLike

__all__ = ["jsonable", "write_json", "format_json"]


def jsonable(value: Any) -> Any:
    """numpy/torch → JSON-native values; NaN/inf → null (strict JSON, readable by any tool)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def format_json(obj: Any, indent: str = "") -> str:
    """One key per line, numeric arrays on one line, lists of records one record per line."""
    def dump(v):
        return json.dumps(v, allow_nan=False, ensure_ascii=False)

    inner = indent + "  "
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{dump(k)}: {format_json(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(obj, list) and obj and all(isinstance(v, (dict, list)) for v in obj):
        return "[\n" + ",\n".join(inner + dump(v) for v in obj) + "\n" + indent + "]"
    return dump(obj)


def write_json(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as strict JSON (NaN → null) atomically (temporary file + rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(format_json(jsonable(obj)) + "\n")
