"""Scattering features on disk: the features HDF5 file (:mod:`.store`) and resumable extraction
(:mod:`.extract`: plan rows / compute a batch / commit a batch)."""

from .extract import ExtractSummary, extract_features
from .store import FeatureFile, write_features

__all__ = ["FeatureFile", "write_features", "extract_features", "ExtractSummary"]
