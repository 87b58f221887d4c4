"""Outputs of a study: figures (:mod:`.figures`) and ``report.md`` (:mod:`.markdown`)."""

from .figures import FIGURE_FILES, choose_examples, make_figures
from .markdown import write_report

__all__ = ["make_figures", "write_report", "choose_examples", "FIGURE_FILES"]
