"""`labkit.exercise("00.1", lab)`: an exercise on a live lab. ``setup()`` deploys its starting
state on record, ``check()`` grades behaviour by the same rule as `grading.grade` and records the
attempt, ``hint()`` climbs the hint ladder, ``reset()`` puts the scenario back.

A repair that draws its broken state (`exercise_draw`) keeps the draw out of what the learner
sees (its repr, setup's message, its cards); ``ex.fault`` holds it for the instructor's solution.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from labkit import scenarios
from labkit.checks import progress, run_check
from labkit.checks.result import Result, Step
from labkit.course import exercise_data, exercise_result, grading
from labkit.course.exercise_answers import grade_answer, grade_prediction
from labkit.course.exercise_build import grade_build
from labkit.course.exercise_data import ExerciseSpec, Rung
from labkit.course.exercise_draw import Draw, Fault, fault_of
from labkit.course.exercise_result import ExerciseResult
from labkit.course.learner import LearnerLab
from labkit.errors import LabError
from labkit.inputs import check_learner
from labkit.lab import Lab

log = logging.getLogger("labkit")


@dataclass(frozen=True)
class Hint:
    """What ``ex.hint()`` shows: a new rung, or why there is none to show."""

    text: str

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


class Exercise:
    """One exercise of a lesson, bound to a lab and a learner; its state lives in the progress
    file, so a new kernel picks up attempts and hints where the last one left them."""

    def __init__(
        self, spec: ExerciseSpec, lab: Lab | LearnerLab, learner: str | None = None
    ) -> None:
        self.spec = spec
        self.lab: Lab = lab.lab if isinstance(lab, LearnerLab) else lab
        self.learner = check_learner(learner) if learner is not None else None
        self.fault: Fault | None = None
        """The drawn fault (None unless the exercise draws one): the instructor's key, for the
        source notebook's solution. The learner's card never shows it."""
        if isinstance(spec.setup, Draw):
            self._start = spec.setup.pick(progress.learner_name(learner), spec.id)
            self.fault = fault_of(self._start)
        else:
            self._start = spec.setup

    def __repr__(self) -> str:
        spec = self.spec
        return f"<exercise {spec.id} ({spec.kind}, {spec.points:g} points): {spec.title}>"

    def setup(self) -> None:
        """Deploy the exercise's starting state (a repair's broken state), on record for grading;
        a write exercise's objects or a build's namespace from an earlier answer are removed
        first."""
        setup = self._start
        written = [r for r in self.spec.writes if self.lab.get(r.kind, r.name, r.namespace)]
        if written:  # an answer from an earlier run: the exercise starts over unanswered
            self.lab.delete(written)
        self._remove_built()
        grading.deploy(self.lab, setup.scenario, setup.variant)
        if self.fault is not None:
            log.info(
                "exercise %s: a fault drawn for learner %s is in place. Find it and fix it, then "
                "ex.check().",
                self.spec.id,
                progress.learner_name(self.learner),
            )
            return
        state = f"variant {setup.variant}" if setup.variant else "its starting state"
        log.info(
            "exercise %s: %s deployed (%s). Do the exercise, then ex.check().",
            self.spec.id,
            setup.scenario,
            state,
        )

    def check(self, *, prediction: Any = None, answer: Any = None) -> ExerciseResult:
        """Grade the lab by the checks, a predict's ``prediction`` or a find's ``answer`` (a value
        or a dict by key) and record the attempt; ungraded until ``setup()`` deployed the start."""
        spec = self.spec
        self._refuse_misplaced(prediction, answer)
        start = self._start
        refusal = grading.not_deployed(self.lab, scenarios.get(start.scenario), start.variant)
        if refusal is not None:
            refused = exercise_result.not_set_up(spec, self._hidden(refusal))
            refused.ask_hint = self.hint
            return refused
        if spec.kind == "predict":
            submitted = grade_prediction(self.lab, spec.id, spec.cases, prediction)
            result = exercise_result.score(spec, submitted)
        elif spec.kind == "find":
            submitted = grade_answer(self.lab, spec.id, spec.findings, answer)
            result = exercise_result.score(spec, submitted)
        elif spec.build is not None:
            result = exercise_result.score(spec, grade_build(self.lab, spec.id, spec.build))
        else:
            result = exercise_result.grade(
                spec, [run_check(self.lab, check, args) for check, args in self._checks()]
            )
        history = progress.exercise_history(spec.id, self.learner)
        progress.record(
            result,
            lesson=spec.lesson,
            exercise=spec.id,
            learner=self.learner,
            attempt=history.attempts + 1,
            hints_used=len(set(history.hints)),
        )
        result.ask_hint = self.hint
        return result

    def _checks(self) -> list[tuple[str, dict[str, Any]]]:
        """The checks that grade it: the exercise's own, or the drawn variant's (on this lab's
        backend), as a repair of that variant is graded."""
        if self.fault is None:
            return [(c.check, c.args) for c in self.spec.checks]
        variant = scenarios.get(self.fault.scenario).variant(self.fault.variant)
        return [(c.check, c.args) for c in variant.checks if self.lab.backend in c.backends]

    def _hidden(self, refusal: Result) -> Result:
        """A refusal to grade, without the drawn scenario and variant it would name."""
        if self.fault is None:
            return refusal
        seen = "not on record on this lab since ex.setup() (or a reset ended it)"
        return replace(
            refusal, subject="the drawn fault", steps=[Step("find the fault's deploy", seen, False)]
        )

    def _refuse_misplaced(self, prediction: Any, answer: Any) -> None:
        """A prediction only for a predict exercise, an answer only for a find exercise."""
        wanted = {"predict": "prediction", "find": "answer"}.get(self.spec.kind)
        given = [n for n, v in (("prediction", prediction), ("answer", answer)) if v is not None]
        wrong = [n for n in given if n != wanted]
        if wrong:
            call = f"ex.check({wanted}=...)" if wanted else "ex.check()"
            raise LabError(
                f"Exercise {self.spec.id} is a {self.spec.kind} exercise and takes no {wrong[0]}.",
                f"Grade it with {call}.",
            )

    def hint(self) -> Hint:
        """The next rung of the hint ladder that fits the latest check's failure class; the last
        (the give-away) only after one attempt. Each rung shown is recorded."""
        spec = self.spec
        history = progress.exercise_history(spec.id, self.learner)
        ladder = self._ladder(history)
        total, shown = len(ladder), set(history.hints)
        fitting = [
            i
            for i, rung in enumerate(ladder)
            if i not in shown and rung.failure in (None, history.last_failure)
        ]
        if not fitting:
            last = ladder[history.hints[-1]].text if history.hints else ""
            return Hint(
                f"exercise {spec.id}: no more hints ({len(shown)} of {total} shown). {last}"
            )
        rung = fitting[0]
        after_attempt = total - 1 if self.fault is None else len(spec.hints)
        if rung >= after_attempt and history.attempts == 0:
            what = "gives the answer away" if rung == total - 1 else "is your failing check's own"
            return Hint(
                f"exercise {spec.id}: the next hint {what}, so it comes after an attempt. Try a "
                "fix, run ex.check(), then ask again."
            )
        progress.record_hint(spec.lesson, spec.id, rung, self.learner)
        return Hint(f"hint {rung + 1} of {total} for exercise {spec.id}: {ladder[rung].text}")

    def _ladder(self, history: progress.ExerciseHistory) -> tuple[Rung, ...]:
        """The hint ladder: the exercise's own; a drawn fault's generic rungs are followed by the
        latest failing check's hint and the give-away for the fault drawn."""
        if self.fault is None:
            return self.spec.hints
        said = history.last_hint or "nothing: your latest check passed."
        return (
            *self.spec.hints,
            Rung(f"The failing check says: {said}"),
            Rung(self.fault.giveaway()),
        )

    def reset(self) -> None:
        """Put the exercise's scenario back at its starting state (``setup()`` starts over)."""
        grading.reset(self.lab, self._start.scenario)
        self._remove_built()
        what = "the drawn fault's scenario" if self.fault else self._start.scenario
        log.info("exercise %s: %s reset to its starting state.", self.spec.id, what)

    def _remove_built(self) -> None:
        """A build exercise's namespace goes from every node it was made on."""
        if self.spec.build is None:
            return
        name = self.spec.build.namespace
        for node in self.lab.get("nodes", namespace=None):
            node_name = node["metadata"]["name"]
            if name in self.lab.netns_list(node_name):
                self.lab.netns_delete(node_name, name)


def exercise(exercise_id: str, lab: Lab | LearnerLab, learner: str | None = None) -> Exercise:
    """The exercise with this id (e.g. ``"00.1"``) on ``lab``, for ``learner`` (default: you)."""
    return Exercise(exercise_data.get(exercise_id), lab, learner)
