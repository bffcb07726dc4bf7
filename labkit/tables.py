"""One formatter for every table labkit prints (status, reports, kubectl get, kubectl describe).

kubectl writes its tables and descriptions through Go's tabwriter: a tab ends a cell, cells of
one column in consecutive lines share a width, and the last cell of a line is never padded.
:func:`align_tabs` does the same; :func:`render_table` is kubectl's column style on top of it
(three spaces between columns, ``<none>`` for a missing value, no trailing blanks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

EMPTY = "<none>"
TABLE_PADDING = 3
"""kubectl get's gap between columns (its tabwriter pads cells by 3)."""


def align_tabs(lines: Sequence[str], padding: int) -> list[str]:
    """Lines whose tab-separated cells are aligned like Go's tabwriter: a column spans the run
    of consecutive lines that have a cell there, and is as wide as its widest cell plus
    ``padding``."""
    cells = [line.split("\t") for line in lines]
    widths: list[dict[int, int]] = [{} for _ in cells]
    _measure(cells, widths, column=0, start=0, end=len(cells), padding=padding)
    out = []
    for row, row_widths in zip(cells, widths, strict=True):
        text = "".join(cell.ljust(row_widths[i]) for i, cell in enumerate(row[:-1]))
        out.append((text + row[-1]).rstrip())
    return out


def _measure(
    cells: list[list[str]],
    widths: list[dict[int, int]],
    *,
    column: int,
    start: int,
    end: int,
    padding: int,
) -> None:
    """Give every run of lines with a tab-terminated cell in ``column`` one width."""
    line = start
    while line < end:
        if len(cells[line]) - 1 <= column:
            line += 1
            continue
        run_end = line
        while run_end < end and len(cells[run_end]) - 1 > column:
            run_end += 1
        width = max(len(cells[i][column]) for i in range(line, run_end)) + padding
        for i in range(line, run_end):
            widths[i][column] = width
        _measure(cells, widths, column=column + 1, start=line, end=run_end, padding=padding)
        line = run_end


def render_table(
    headers: Sequence[str] | None, rows: Sequence[Sequence[Any]], *, rule: bool = False
) -> str:
    """The rows under their headers (none: ``--no-headers``); ``rule`` adds a dashed line under
    the headers (reports). A ``None`` cell prints as ``<none>``; ``""`` stays blank, as kubectl
    leaves a cell it has no text for (an Ingress without an address yet)."""
    body = [[EMPTY if cell is None else str(cell) for cell in row] for row in rows]
    table = body if headers is None else [[str(h) for h in headers], *body]
    if rule and headers is not None:
        count = len(headers)
        widths = [max(len(row[i]) for row in table) for i in range(count)]
        table.insert(1, ["-" * width for width in widths])
    return "\n".join(align_tabs(["\t".join(row) for row in table], TABLE_PADDING))
