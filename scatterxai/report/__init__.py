"""Outputs of a study: figures (:mod:`.figures`) and ``report.md`` (:mod:`.markdown`)."""

from .figures import (
                      FIGURE_FILES,
                      FIGURE_FORMATS,
                      choose_examples,
                      example_figure,
                      example_figures,
                      fig1,
                      fig2,
                      figure_files,
                      make_figures,
                      relevance_figures,
                      top_cells,
)
from .markdown import write_report

__all__ = ["make_figures", "relevance_figures", "example_figures", "example_figure", "fig1", "fig2", "top_cells",
           "write_report", "choose_examples", "figure_files", "FIGURE_FILES", "FIGURE_FORMATS"]
