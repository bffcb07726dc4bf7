"""One renderer for every table labkit prints (status, reports, doctor, kubectl-style output).

kubectl's column style: left-aligned columns separated by three spaces, ``<none>`` for an empty
cell, no trailing blanks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

EMPTY = "<none>"


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, rule: bool = False
) -> str:
    """The rows under their headers; ``rule`` adds a dashed line under the headers (reports)."""
    body = [[EMPTY if cell in (None, "") else str(cell) for cell in row] for row in rows]
    cells = [[str(h) for h in headers], *body]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    if rule:
        cells.insert(1, ["-" * width for width in widths])
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )
