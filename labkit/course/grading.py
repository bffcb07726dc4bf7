"""A scenario for a learner: deploy and reset put the state on record in the progress file, and
grading runs a state's checks only when that state is what the lab last had deployed, then
records every result. Notebook (`lab.deploy`, `lab.check`) and `labkit deploy`/`check` alike."""

from __future__ import annotations

from labkit import scenarios
from labkit.checks import progress
from labkit.checks.result import Result, Step, make_result
from labkit.inputs import check_learner
from labkit.lab import DEFAULT_LAB_NAME, Lab, ObjectRef


def deploy(lab: Lab, scenario: str, variant: str | None = None) -> list[ObjectRef]:
    """Deploy a scenario's starting state, step or broken variant, and record it for this lab, so
    grading that state later knows the lab went through it."""
    found = scenarios.get(scenario)
    refs = scenarios.deploy(lab, found.name, variant)
    progress.record_deploy(found.name, variant, lab.name, lab.uid())
    return refs


def reset(lab: Lab, scenario: str) -> list[ObjectRef]:
    """Put a scenario back at its starting state and record the reset (it ends any repair)."""
    found = scenarios.get(scenario)
    refs = scenarios.reset(lab, found.name)
    progress.record_deploy(found.name, None, lab.name, lab.uid(), reset=True)
    return refs


def grade(
    lab: Lab, scenario: str, variant: str | None = None, learner: str | None = None
) -> list[Result]:
    """Run the checks a scenario (or one of its variants) declares and record each Result as an
    attempt at ``scenario`` (or ``scenario/variant``) in its lesson.

    A state is graded only when it is the one this lab last had deployed (a repair counts only
    after the broken state was deployed); otherwise one failing Result says what to deploy first,
    and nothing is recorded.
    """
    if learner is not None:
        check_learner(learner)  # before grading, so a bad name costs no check run
    found = scenarios.get(scenario)
    refusal = not_deployed(lab, found, variant)
    if refusal is not None:
        return [refusal]
    results = scenarios.run_checks(lab, found.name, variant=variant)
    exercise = found.name + (f"/{variant}" if variant else "")
    for result in results:
        progress.record(result, lesson=found.lesson, exercise=exercise, learner=learner)
    return results


def not_deployed(lab: Lab, scenario: scenarios.Scenario, variant: str | None) -> Result | None:
    """None when ``variant`` (None: the starting state) of the scenario is what this lab last had
    deployed; else the failing Result that says what it has and what to deploy first. The one
    rule that scenario checks and exercises grade by."""
    if variant is not None:
        scenario.variant(variant)  # an unknown variant is refused before anything else
    on_record = progress.last_deployed(scenario.name, lab.name, lab.uid())
    if on_record is None or on_record.variant != variant:
        return _deploy_first(lab, scenario, variant, on_record)
    return None


def _deploy_first(
    lab: Lab,
    scenario: scenarios.Scenario,
    variant: str | None,
    on_record: progress.Deployed | None,
) -> Result:
    """The Result for grading a state the lab does not have deployed: what it has, what to run."""
    name = scenario.name
    if on_record is None:
        seen = f"lab {lab.name!r} has no deploy of {name} on record since it was built"
    elif on_record.event == "reset":
        seen = f"{name} was last reset to its starting state on lab {lab.name!r} ({on_record.time})"
    else:
        state = (
            "its starting state" if on_record.variant is None else f"variant {on_record.variant!r}"
        )
        seen = f"the last deploy of {name} on lab {lab.name!r} was {state} ({on_record.time})"
    name_flag = "" if lab.name == DEFAULT_LAB_NAME else f" --name {lab.name}"
    if variant is None:
        what, then = "the scenario", "check again"
        cli, python = f"labkit deploy {name}{name_flag}", f"lab.deploy({name!r})"
    else:
        broken = scenario.variant(variant).role == "broken"
        what = "the broken state" if broken else "this step"
        then = "repair it and check again" if broken else "check again"
        cli = f"labkit deploy {name} --variant {variant}{name_flag}"
        python = f"lab.deploy({name!r}, variant={variant!r})"
    return make_result(
        "deployed",
        name + (f"/{variant}" if variant else ""),
        [Step("find the deploy of this state on record", seen, False)],
        hint=(
            f"Only a state the lab went through is graded. Deploy {what} first: `{cli}` "
            f"(in a notebook: `{python}`), then {then}."
        ),
    )
