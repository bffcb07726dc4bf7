"""Issue 9, items 1 and 2 on a real sandbox lab: every broken variant fails, with its hint, from
every state its scenario's own steps can leave (each ordered pair: a step, a broken variant or a
repaired one, then a broken variant), and a repair is graded only once its broken state was
deployed on this build of the lab.

One calico lab per scenario (``tvp``): a sandbox lab comes up in well under a second, and labs
of their own keep one scenario's leftovers out of another's checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from labkit import scenarios
from labkit.course import grading

LAB = "tvp"
SCENARIOS = {name: scenarios.get(name) for name in scenarios.names()}


class Labs:
    """The lab of the scenario under test: a new one whenever the scenario changes."""

    def __init__(self) -> None:
        self.lab: Any = None
        self.scenario: str | None = None

    def for_scenario(self, name: str) -> Any:
        from labkit.sandbox import backend

        if self.scenario != name:
            backend.down(LAB)
            self.lab, self.scenario = backend.up(LAB, "calico", quiet=True), name
        return self.lab


@pytest.fixture(scope="module")
def labs() -> Iterator[Labs]:
    from labkit.sandbox import backend

    backend.down(LAB)
    try:
        yield Labs()
    finally:
        backend.down(LAB)


def pairs() -> list[Any]:
    """(scenario, state before, whether it was repaired, broken variant) for every scenario
    with broken variants; a state is a step or a broken variant."""
    cases = []
    for name, scenario in SCENARIOS.items():
        broken = [v.name for v in scenario.variants if v.role == "broken"]
        for before in scenario.variants:
            for repaired in (False, True) if before.role == "broken" else (False,):
                for after in broken:
                    label = f"{name}/{before.name}{'+fix' if repaired else ''}->{after}"
                    cases.append(pytest.param(name, before.name, repaired, after, id=label))
    return cases


@pytest.mark.parametrize(("name", "before", "repaired", "broken"), pairs())
def test_a_broken_variant_fails_with_its_hint_whatever_came_before(
    labs, name, before, repaired, broken
):
    scenario = SCENARIOS[name]
    if "sandbox" not in scenario.backends:
        pytest.skip(f"{name} is Kind-only: {scenario.sandbox_note}")
    chosen = scenario.variant(broken)
    if not [c for c in chosen.checks if "sandbox" in c.backends]:
        pytest.skip(f"{name}/{broken} is graded by Kind-only checks")
    lab = labs.for_scenario(name)
    grading.reset(lab, name)
    grading.deploy(lab, name, before)
    if repaired:
        scenarios.fix(lab, name, before)
    grading.deploy(lab, name, broken)
    results = grading.grade(lab, name, broken)
    text = "\n\n".join(str(r) for r in results)
    assert results and all(r.check != "deployed" for r in results), text
    passed = [r for r in results if r.passed]
    assert not passed, f"{broken} after {before} is broken, yet checks pass:\n\n{text}"
    unhinted = [
        r
        for r in results
        if chosen.hint_contains not in r.hint and chosen.hint_contains not in str(r)
    ]
    assert not unhinted, f"{broken} after {before}: should say {chosen.hint_contains!r}\n\n{text}"


def test_a_repair_is_graded_only_after_its_broken_state_on_this_build_of_the_lab(labs):
    name, broken = "02-expose-nginx", "wrong-target-port"
    lab = labs.for_scenario(name)
    grading.reset(lab, name)
    # The case: reset, then check the repair exercise without ever deploying it.
    never = grading.grade(lab, name, broken)
    assert [r.check for r in never] == ["deployed"] and not never[0].passed
    assert f"labkit deploy {name} --variant {broken} --name {LAB}" in never[0].hint
    grading.deploy(lab, name, broken)
    assert not any(r.passed for r in grading.grade(lab, name, broken))
    scenarios.fix(lab, name, broken)
    assert all(r.passed for r in grading.grade(lab, name, broken))
    # Down and up again under the same name: a new lab, with nothing deployed on record.
    uid = lab.uid()
    labs.scenario = None
    rebuilt = labs.for_scenario(name)
    assert rebuilt.uid() != uid
    scenarios.deploy(rebuilt, name)  # the repaired state, without a deploy on record
    again = grading.grade(rebuilt, name, broken)
    assert [r.check for r in again] == ["deployed"], "\n".join(str(r) for r in again)
    assert f"has no deploy of {name} on record since it was built" in again[0].steps[0].observed
