"""Versions of installed packages, recorded in every file the package writes."""

from __future__ import annotations

import importlib.metadata

__all__ = ["package_version"]


def package_version(package: str) -> str:
    """The installed version of ``package`` (its distribution name), or "unknown"."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
