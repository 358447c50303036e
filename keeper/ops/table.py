"""Plain-text tables for the ops commands: readable on a terminal, in a log and through grep."""
from __future__ import annotations

from typing import Sequence


def text_table(rows: Sequence[Sequence[str]], right: set[int]) -> str:
    """rows[0] is the header; columns in `right` (numbers) are right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)
