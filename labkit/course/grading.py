"""Grading a scenario for a learner: run its checks and record every result in the learner's
progress file, the same way from a notebook (`lab.check`) and from `labkit check`."""

from __future__ import annotations

from labkit import scenarios
from labkit.checks import progress
from labkit.checks.result import Result
from labkit.inputs import check_learner
from labkit.lab import Lab


def grade(
    lab: Lab, scenario: str, variant: str | None = None, learner: str | None = None
) -> list[Result]:
    """Run the checks a scenario (or one of its variants) declares and record each Result as an
    attempt at ``scenario`` (or ``scenario/variant``) in its lesson."""
    if learner is not None:
        check_learner(learner)  # before grading, so a bad name costs no check run
    found = scenarios.get(scenario)
    results = scenarios.run_checks(lab, found.name, variant=variant)
    exercise = found.name + (f"/{variant}" if variant else "")
    for result in results:
        progress.record(result, lesson=found.lesson, exercise=exercise, learner=learner)
    return results
