"""A class report as text (kubectl-style tables, for `labkit report --class`) and as CSV (one
row per learner and exercise, for a spreadsheet). Pure."""

from __future__ import annotations

import csv
import io

from labkit.checks.result import number_text
from labkit.course.class_report import ClassReport, ClassRow, Hardness
from labkit.tables import render_table

ROW_HEADERS = ("learner", "lesson", "exercise", "best", "points", "attempts", "hints", "stuck")
HARDEST_HEADERS = ("lesson", "exercise", "learners", "passed", "stuck", "mean attempts")
CSV_HEADERS = (
    "learner",
    "lesson",
    "exercise",
    "best",
    "points",
    "max_points",
    "attempts",
    "hints_shown",
    "hints_total",
    "stuck",
    "last_attempt",
)
NO_FILES = (
    "No progress files yet: each learner's notebook writes one when LABKIT_PROGRESS is "
    "<this folder>/<learner>.jsonl."
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet reads a cell starting so as a formula (OWASP's CSV injection)."""


def headline(report: ClassReport) -> str:
    """``Class report: N learners, S stuck (...)``: the first line of every form."""
    learners = len(report.learners)
    stuck = len({row.learner for row in report.stuck})
    rule = f"no pass in {report.stuck_after} attempts, or every hint shown"
    return f"Class report: {learners} learner{'s' if learners != 1 else ''}, {stuck} stuck ({rule})"


def points_text(row: ClassRow) -> str:
    """``2/3``: the best attempt's points of its maximum."""
    return f"{number_text(row.points)}/{number_text(row.max_points)}"


def hints_text(row: ClassRow) -> str:
    """``1/3`` rungs shown of the ladder, or ``-`` for a check without one."""
    return "-" if row.hints_total is None else f"{row.hints_shown}/{row.hints_total}"


def row_cells(row: ClassRow) -> list[str]:
    """One learner-and-exercise row's cells, as the text table and the HTML page show them."""
    return [
        row.learner,
        row.lesson or "-",
        row.exercise,
        row.verdict,
        points_text(row),
        str(row.attempts),
        hints_text(row),
        row.stuck,
    ]


def hardness_cells(item: Hardness) -> list[str]:
    """One item's cells in the hardest-first table."""
    return [
        item.lesson or "-",
        item.exercise,
        str(item.learners),
        str(item.passed),
        str(item.stuck),
        f"{item.mean_attempts:.1f}",
    ]


def waiting(report: ClassReport) -> list[str]:
    """Learners with a progress file but no graded attempt yet."""
    tried = {row.learner for row in report.rows}
    return [name for name in report.learners if name not in tried]


def skipped_note(report: ClassReport) -> str:
    """``(N unreadable lines skipped: ada 1, bo 2)``, or "" when every line was read."""
    if not report.skipped:
        return ""
    total = sum(report.skipped.values())
    each = ", ".join(f"{name} {count}" for name, count in report.skipped.items())
    return f"({total} unreadable line{'s' if total != 1 else ''} skipped: {each})"


def text(report: ClassReport) -> str:
    """The report for a terminal: the rows, who is stuck, the hardest exercises."""
    if not report.learners:
        return f"{headline(report)}\n{NO_FILES}"
    lines = [headline(report)]
    if report.rows:
        lines.append(render_table(ROW_HEADERS, [row_cells(r) for r in report.rows], rule=True))
    late = waiting(report)
    if late:
        lines.append(f"No attempt yet: {', '.join(late)}")
    if report.stuck:
        lines.append("")
        lines.append("Stuck:")
        lines.extend(f"  {r.learner} on {r.exercise}: {r.stuck}" for r in report.stuck)
    if report.hardest:
        lines.append("")
        lines.append("Hardest exercises (smallest share passed first):")
        lines.append(
            render_table(HARDEST_HEADERS, [hardness_cells(h) for h in report.hardest], rule=True)
        )
    note = skipped_note(report)
    if note:
        lines.append(note)
    return "\n".join(lines)


def csv_text(report: ClassReport) -> str:
    """One CSV row per learner and exercise, under a header row; text cells that a spreadsheet
    would take for a formula get a leading apostrophe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADERS)
    for r in report.rows:
        writer.writerow(
            [
                _cell(r.learner),
                _cell(r.lesson),
                _cell(r.exercise),
                r.verdict,
                number_text(r.points),
                number_text(r.max_points),
                r.attempts,
                r.hints_shown,
                "" if r.hints_total is None else r.hints_total,
                _cell(r.stuck),
                _cell(r.last),
            ]
        )
    return out.getvalue()


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value
