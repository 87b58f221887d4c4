"""Outputs of a study: figures (:mod:`.figures`) and ``report.md`` (:mod:`.markdown`)."""

from .figures import FIGURE_FILES, FIGURE_FORMATS, choose_examples, figure_files, make_figures
from .markdown import write_report

__all__ = ["make_figures", "write_report", "choose_examples", "figure_files", "FIGURE_FILES", "FIGURE_FORMATS"]
