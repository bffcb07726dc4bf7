"""The class dashboard as HTML: the same tables as `labkit report --class` (a row per learner and
exercise, who is stuck, the hardest exercises), as a fragment in JupyterLab's theme colours for
the live widget, or as a static, self-contained page (no script, no external file) with fixed
colours of at least 4.5:1. Tables have captions and header cells with their scope; a stuck row
says so in words, never by colour alone. Pure."""

from __future__ import annotations

import html
from typing import NamedTuple

from labkit.checks.result import TEXT, VERDICT_COLOURS, badge
from labkit.course import class_export
from labkit.course.class_report import ClassReport


class Palette(NamedTuple):
    """The colours a dashboard is drawn in: text, quieter text, the page, a stuck row's
    background and the table rules."""

    text: str
    muted: str
    background: str
    stuck: str
    rule: str


THEMED = Palette(
    text=TEXT,
    muted="var(--jp-content-font-color2, #57606a)",
    background="transparent",
    stuck="rgba(212, 167, 44, 0.25)",
    rule="var(--jp-border-color2, #d0d7de)",
)
"""In a notebook: JupyterLab's theme colours, light fallbacks; a stuck row is a translucent amber,
so the theme's own text colour stays readable on it in the light and the dark theme."""

PAGE = Palette(
    text="#1f2328", muted="#57606a", background="#ffffff", stuck="#fff8c5", rule="#d0d7de"
)
"""On the static page: fixed colours; every text colour is at least 4.5:1 on both backgrounds."""

_CELL = "text-align:left;vertical-align:top;padding:2px 10px 2px 0;overflow-wrap:anywhere"


def _table(
    caption: str, headers: tuple[str, ...], rows: list[tuple[list[str], str]], p: Palette
) -> str:
    """A table: a caption, column headers, the first cell of each row its row header; a row's
    second element is its stuck reason ("" when none), which tints it and fills its last cell."""
    e = html.escape
    head = "".join(
        f"<th scope='col' style='{_CELL};border-bottom:1px solid {p.rule}'>{e(h)}</th>"
        for h in headers
    )
    body = []
    for cells, stuck in rows:
        tint = f" style='background:{p.stuck}'" if stuck else ""
        first, *rest = cells
        tds = [_cell(header, value) for header, value in zip(headers[1:], rest, strict=True)]
        if stuck:
            tds[-1] = f"<b>stuck:</b> {e(stuck)}"
        data = "".join(f"<td style='{_CELL}'>{td}</td>" for td in tds)
        body.append(f"<tr{tint}><th scope='row' style='{_CELL}'>{e(first)}</th>{data}</tr>")
    return (
        "<table style='border-collapse:collapse;margin:6px 0'>"
        f"<caption style='text-align:left;font-weight:bold;padding:4px 0'>{e(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _cell(header: str, value: str) -> str:
    """A cell's HTML: a verdict as its badge (white on the verdict's colour), else text."""
    if header == "best" and value in VERDICT_COLOURS:
        return badge(value, VERDICT_COLOURS[value])
    return html.escape(value)


def dashboard_html(report: ClassReport, palette: Palette = THEMED, source: str = "") -> str:
    """The dashboard's body: the headline, its source line, the learner-and-exercise table,
    who is stuck, and the hardest exercises."""
    e = html.escape
    parts = [f"<p style='font-weight:bold;margin:4px 0'>{e(class_export.headline(report))}</p>"]
    if source:
        parts.append(f"<p style='color:{palette.muted};margin:2px 0'>{e(source)}</p>")
    if not report.learners:
        parts.append("<p>No progress files yet.</p>")
    if report.rows:
        rows = [(class_export.row_cells(r), r.stuck) for r in report.rows]
        parts.append(_table("Learners and exercises", class_export.ROW_HEADERS, rows, palette))
    late = class_export.waiting(report)
    if late:
        parts.append(f"<p>No attempt yet: {e(', '.join(late))}</p>")
    if report.stuck:
        items = "".join(
            f"<li><b>{e(r.learner)}</b> on {e(r.exercise)}: {e(r.stuck)}</li>" for r in report.stuck
        )
        parts.append(f"<h2 style='font-size:110%;margin:8px 0 2px'>Stuck</h2><ul>{items}</ul>")
    if report.hardest:
        rows = [(class_export.hardness_cells(h), "") for h in report.hardest]
        caption = "Hardest exercises (smallest share passed first)"
        parts.append(_table(caption, class_export.HARDEST_HEADERS, rows, palette))
    note = class_export.skipped_note(report)
    if note:
        parts.append(f"<p style='color:{palette.muted}'>{e(note)}</p>")
    return (
        f"<section class='lk-class' style='color:{palette.text};background:{palette.background};"
        f"font-family:sans-serif'>{''.join(parts)}</section>"
    )


def page(report: ClassReport, source: str) -> str:
    """A static HTML page of the dashboard in fixed colours, for a browser or a shared drive."""
    title = "Class report"
    return (
        "<!DOCTYPE html>\n"
        "<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title></head>"
        f"<body style='margin:16px;background:{PAGE.background};color:{PAGE.text}'>"
        f"<h1 style='font-family:sans-serif;font-size:140%'>{title}</h1>"
        f"{dashboard_html(report, PAGE, source)}</body></html>\n"
    )
