"""A class's progress, pure: from every learner's progress log, a row per learner and exercise
(best verdict, points, attempts, hints shown), who is stuck, and which exercises the class finds
hardest. `class_folder` reads the logs; `class_export` and the widgets render this."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.checks.progress import ProgressLog, best_of, graded_items
from labkit.errors import LabError

STUCK_AFTER = 3
"""Attempts without a pass after which a learner counts as stuck on an exercise: one try, one
fix after the card's hint, one after the next rung, and still failing."""


@dataclass(frozen=True)
class ClassRow:
    """One learner's record of one graded item: the best attempt's verdict and points, attempts,
    the distinct hint rungs shown of the ladder (None: no ladder, a scenario's check), the latest
    attempt's time, and why the learner is stuck on it ("" when not)."""

    learner: str
    lesson: str
    exercise: str
    verdict: str
    points: float
    max_points: float
    attempts: int
    hints_shown: int
    hints_total: int | None
    last: str
    stuck: str


@dataclass(frozen=True)
class Hardness:
    """How the class fares on one item: learners who tried it, passed it, are stuck on it, and
    their mean attempts."""

    lesson: str
    exercise: str
    learners: int
    passed: int
    stuck: int
    mean_attempts: float


@dataclass(frozen=True)
class ClassReport:
    """The whole class: rows by learner, lesson and exercise; items hardest first; every learner
    with a progress file (also those with no attempt yet); unreadable lines per learner."""

    rows: tuple[ClassRow, ...]
    hardest: tuple[Hardness, ...]
    learners: tuple[str, ...]
    skipped: Mapping[str, int]
    stuck_after: int

    @property
    def stuck(self) -> tuple[ClassRow, ...]:
        """The rows where a learner is stuck."""
        return tuple(row for row in self.rows if row.stuck)


def check_stuck_after(value: object) -> int:
    """The attempts threshold for "stuck": a whole number of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LabError(
            f"The stuck threshold {value!r} is not a number of attempts.",
            f"Pass a whole number of 1 or more, e.g. --stuck-after {STUCK_AFTER}.",
        )
    return value


def stuck_reason(
    verdicts: Sequence[str], hints_shown: int, hints_total: int | None, stuck_after: int
) -> str:
    """Why a learner with these attempts (verdicts in order) and hints is stuck on an item: no
    pass in ``stuck_after`` attempts or more, or every hint of the ladder shown without a pass;
    "" when neither (or once it passed)."""
    if "pass" in verdicts:
        return ""
    reasons = []
    if len(verdicts) >= stuck_after:
        reasons.append(f"{len(verdicts)} attempts without a pass")
    if hints_total and hints_shown >= hints_total:
        reasons.append(f"all {hints_total} hints shown")
    return "; ".join(reasons)


def summarise(
    logs: Mapping[str, ProgressLog],
    ladders: Mapping[str, int],
    stuck_after: int = STUCK_AFTER,
) -> ClassReport:
    """The class report from each learner's log (by learner name); ``ladders`` gives an
    exercise id's hint ladder size (exercises only: a scenario's checks have none)."""
    check_stuck_after(stuck_after)
    rows: list[ClassRow] = []
    for learner in sorted(logs):
        log = logs[learner]
        shown = _rungs_shown(log.hints)
        for (lesson, label), attempts in graded_items(log.attempts).items():
            top = best_of(attempts)
            hints = len(shown.get((lesson, label), ()))
            total = ladders.get(label)
            verdicts = [str(a["verdict"]) for a in attempts]
            rows.append(
                ClassRow(
                    learner=learner,
                    lesson=lesson,
                    exercise=label,
                    verdict=str(top["verdict"]),
                    points=_number(top.get("points")),
                    max_points=_number(top.get("max_points")),
                    attempts=len(attempts),
                    hints_shown=hints,
                    hints_total=total,
                    last=max(str(a.get("time") or "") for a in attempts),
                    stuck=stuck_reason(verdicts, hints, total, stuck_after),
                )
            )
    rows.sort(key=lambda r: (r.learner, r.lesson, r.exercise))
    return ClassReport(
        rows=tuple(rows),
        hardest=hardest(rows),
        learners=tuple(sorted(logs)),
        skipped={name: log.skipped for name, log in sorted(logs.items()) if log.skipped},
        stuck_after=stuck_after,
    )


def hardest(rows: Sequence[ClassRow]) -> tuple[Hardness, ...]:
    """Every item the class tried, hardest first: the smallest share of its learners passed,
    then the most stuck, then the most attempts."""
    by_item: dict[tuple[str, str], list[ClassRow]] = {}
    for row in rows:
        by_item.setdefault((row.lesson, row.exercise), []).append(row)
    items = [
        Hardness(
            lesson=lesson,
            exercise=exercise,
            learners=len(group),
            passed=sum(1 for r in group if r.verdict == "pass"),
            stuck=sum(1 for r in group if r.stuck),
            mean_attempts=sum(r.attempts for r in group) / len(group),
        )
        for (lesson, exercise), group in by_item.items()
    ]
    items.sort(
        key=lambda h: (h.passed / h.learners, -h.stuck, -h.mean_attempts, h.lesson, h.exercise)
    )
    return tuple(items)


def _rungs_shown(hints: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], set[int]]:
    """The distinct rungs shown per (lesson, exercise)."""
    shown: dict[tuple[str, str], set[int]] = {}
    for event in hints:
        key = (str(event.get("lesson") or ""), str(event.get("exercise") or ""))
        shown.setdefault(key, set()).add(int(event["rung"]))
    return shown


def _number(value: Any) -> float:
    """A points field as a number (0 when absent or not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return value
