"""An exercise's graded outcome: one Result whose first line is ``exercise <id>: <verdict>
(<points>/<max>)`` (what notebooks, nbval and reports read), with the checks' own Results under
it as text and as cards."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from labkit.checks.result import TEXT, VERDICT_COLOURS, Result, Step, badge, number_text
from labkit.course.exercise_data import ExerciseSpec

_WEIGHTS = {"pass": 1.0, "partial": 0.5, "fail": 0.0}


@dataclass
class ExerciseResult(Result):
    """A Result for a whole exercise; ``parts`` are the Results of the checks that graded it. Its
    hint is the first failing check's; its failure class the first one a failing check observed
    (what the hint ladder climbs by)."""

    title: str = ""
    parts: list[Result] = field(default_factory=list)
    ask_hint: Callable[[], object] | None = field(default=None, repr=False, compare=False)
    """The exercise's own ``hint()`` (set by ``ex.check()``): a card's "show hint" button climbs
    the ladder through it, so each rung shown is recorded as a hint used."""

    def headline(self) -> str:
        """``exercise 00.1: pass (3/3)``."""
        score = f"{number_text(self.points)}/{number_text(self.max_points)}"
        return f"exercise {self.subject}: {self.verdict} ({score})"

    def __str__(self) -> str:
        lines = [self.headline(), f"  {self.title}"]
        for part in self.parts:
            lines.extend("  " + line for line in str(part).splitlines())
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = (
            f"<div style='font-family:sans-serif;margin:4px 0;color:{TEXT}'>"
            f"{badge(self.headline(), VERDICT_COLOURS[self.verdict])} "
            f"{html.escape(self.title)}</div>"
        )
        return head + "".join(part._repr_html_() for part in self.parts)


def grade(spec: ExerciseSpec, results: Sequence[Result]) -> ExerciseResult:
    """Score an exercise from its checks' Results: each check weighs the same (a pass 1, a partial
    half); pass when every check passed, fail when none earned anything, partial between."""
    share = sum(_WEIGHTS[r.verdict] for r in results) / len(results)
    return _scored(spec, share, list(results))


def score(spec: ExerciseSpec, submission: Result) -> ExerciseResult:
    """Score a predict or find exercise from the Result of grading what was submitted: points in
    proportion to the questions answered right."""
    return _scored(spec, submission.points / submission.max_points, [submission])


def _scored(spec: ExerciseSpec, share: float, results: list[Result]) -> ExerciseResult:
    verdict = "pass" if share == 1 else "fail" if share == 0 else "partial"
    failing = next((r for r in results if not r.passed), None)
    return _result(spec, verdict, round(spec.points * share, 1), results, failing)


def not_set_up(spec: ExerciseSpec, refusal: Result) -> ExerciseResult:
    """The failing result for an exercise whose starting state the lab has not had deployed."""
    start = "broken state" if spec.kind == "repair" else "starting state"
    refusal = replace(
        refusal,
        hint=f"Run `ex.setup()` to deploy the exercise's {start}, then do the exercise and "
        "check again.",
    )
    return _result(spec, "fail", 0, [refusal], refusal)


def _result(
    spec: ExerciseSpec,
    verdict: str,
    points: float,
    parts: list[Result],
    failing: Result | None,
) -> ExerciseResult:
    steps = [
        Step(
            f"{part.check}: {part.subject}",
            f"{part.verdict} ({number_text(part.points)}/{number_text(part.max_points)})",
            part.passed,
        )
        for part in parts
    ]
    return ExerciseResult(
        check="exercise",
        subject=spec.id,
        verdict=verdict,
        steps=steps,
        hint=failing.hint if failing else "",
        points=points,
        max_points=spec.points,
        failure=next((p.failure for p in parts if not p.passed and p.failure), None),
        layer=failing.layer if failing else None,
        data={"kind": spec.kind},
        title=spec.title,
        parts=parts,
    )
