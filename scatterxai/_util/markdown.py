"""Markdown tables."""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

__all__ = ["md_table"]


def md_table(header: Sequence[str], rows: Iterable[Sequence], *, align: Optional[str] = None) -> str:
    """A Markdown table; ``align`` is one character per column, ``l`` (left) or ``r`` (right; default for
    every column but the first).  A ``|`` inside a cell is escaped (it would end the cell)."""
    def cell(value) -> str:
        return str(value).replace("|", "\\|")

    header = [cell(h) for h in header]
    align = align or ("l" + "r" * (len(header) - 1))
    if len(align) != len(header):
        raise ValueError(f"align has {len(align)} characters for {len(header)} columns")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
