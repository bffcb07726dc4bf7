"""`labkit.exercise("00.1", lab)`: an exercise on a live lab. ``setup()`` deploys its starting
state on record, ``check()`` grades behaviour by the same rule as `grading.grade` and records the
attempt, ``hint()`` climbs the hint ladder, ``reset()`` puts the scenario back."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from labkit import scenarios
from labkit.checks import progress, run_check
from labkit.course import exercise_data, exercise_result, grading
from labkit.course.exercise_answers import grade_answer, grade_prediction
from labkit.course.exercise_build import grade_build
from labkit.course.exercise_data import ExerciseSpec
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

    def __repr__(self) -> str:
        spec = self.spec
        return f"<exercise {spec.id} ({spec.kind}, {spec.points:g} points): {spec.title}>"

    def setup(self) -> None:
        """Deploy the exercise's starting state (a repair's broken state), on record for grading;
        a write exercise's objects or a build's namespace from an earlier answer are removed
        first."""
        setup = self.spec.setup
        written = [r for r in self.spec.writes if self.lab.get(r.kind, r.name, r.namespace)]
        if written:  # an answer from an earlier run: the exercise starts over unanswered
            self.lab.delete(written)
        self._remove_built()
        grading.deploy(self.lab, setup.scenario, setup.variant)
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
        refusal = grading.not_deployed(
            self.lab, scenarios.get(spec.setup.scenario), spec.setup.variant
        )
        if refusal is not None:
            return exercise_result.not_set_up(spec, refusal)
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
                spec, [run_check(self.lab, c.check, c.args) for c in spec.checks]
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
        return result

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
        total, shown = len(spec.hints), set(history.hints)
        fitting = [
            i
            for i, rung in enumerate(spec.hints)
            if i not in shown and rung.failure in (None, history.last_failure)
        ]
        if not fitting:
            last = spec.hints[history.hints[-1]].text if history.hints else ""
            return Hint(
                f"exercise {spec.id}: no more hints ({len(shown)} of {total} shown). {last}"
            )
        rung = fitting[0]
        if rung == total - 1 and history.attempts == 0:
            return Hint(
                f"exercise {spec.id}: the last hint gives the answer away, so it comes after an "
                "attempt. Try a fix, run ex.check(), then ask again."
            )
        progress.record_hint(spec.lesson, spec.id, rung, self.learner)
        return Hint(f"hint {rung + 1} of {total} for exercise {spec.id}: {spec.hints[rung].text}")

    def reset(self) -> None:
        """Put the exercise's scenario back at its starting state (``setup()`` starts over)."""
        grading.reset(self.lab, self.spec.setup.scenario)
        self._remove_built()
        log.info(
            "exercise %s: %s reset to its starting state.", self.spec.id, self.spec.setup.scenario
        )

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
