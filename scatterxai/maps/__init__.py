"""Relevance maps on the (λ1, λ2) plane and their statistics — pure numpy, importable without torch.

* :mod:`.grid` — local maps, the grid layout of per-path values;
* :mod:`.summary` — top-n class aggregation (paper eq. 13), kurtosis, ground-truth localisation, S1 share,
  per-class summaries;
* :mod:`.controls` — control maps (constant, class-prior, the input, random) scored beside every method.
* :mod:`.time_profile` — relevance over time, joined over the windows of a long recording;
"""

from .grid import GridIndex, grid_index, grid_layout, grid_values, local_map, path_columns
from .summary import (
                      LOCALISATION_OCTAVES,
                      class_summary,
                      localisation,
                      localisation_misses,
                      map_kurtosis,
                      peak_modulation_hz,
                      s1_share,
                      topn_aggregate,
)

__all__ = ["local_map", "GridIndex", "grid_index", "grid_layout", "grid_values", "path_columns",
           "topn_aggregate", "map_kurtosis", "peak_modulation_hz", "localisation", "localisation_misses",
           "s1_share", "class_summary", "LOCALISATION_OCTAVES"]
