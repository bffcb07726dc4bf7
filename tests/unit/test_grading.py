"""A grade means the work was done: a scenario state is graded only when it is what the lab last
had deployed (a repair only after its broken state), for `labkit check` and `lab.check()` alike;
otherwise the result says what to deploy, and nothing is recorded."""

from __future__ import annotations

import json

import pytest

from labkit import cli, scenarios
from labkit.checks import progress
from labkit.checks.result import Step, make_result
from labkit.course import LearnerLab, grading
from labkit.errors import LabError

REPAIR = ("02-expose-nginx", "wrong-target-port")


@pytest.fixture
def graded(monkeypatch):
    """Checks stand in for the real ones: each run is listed, and each passes."""
    runs: list[tuple[str, str | None]] = []

    def run_checks(lab, name, variant=None):
        runs.append((name, variant))
        return [make_result("service_health", name, [Step("endpoints", "1 ready", True)])]

    monkeypatch.setattr(scenarios, "run_checks", run_checks)
    return runs


def attempts(path) -> list[dict]:
    if not path.exists():
        return []
    return progress.read(path)[0]


def assert_deploy_first(results, command: str, python: str) -> None:
    assert len(results) == 1, results
    result = results[0]
    assert result.verdict == "fail" and result.check == "deployed"
    assert f"`{command}`" in result.hint and f"`{python}`" in result.hint, result.hint


def test_a_repair_never_deployed_is_not_graded_and_says_what_to_deploy(
    fakes, graded, progress_file
):
    lab = fakes.ObjectLab()
    grading.reset(lab, REPAIR[0])
    results = grading.grade(lab, *REPAIR)
    assert_deploy_first(
        results,
        "labkit deploy 02-expose-nginx --variant wrong-target-port",
        "lab.deploy('02-expose-nginx', variant='wrong-target-port')",
    )
    assert "reset to its starting state" in results[0].steps[0].observed
    assert "repair it and check again" in results[0].hint
    assert graded == [] and attempts(progress_file) == []


def test_a_repair_is_graded_after_its_broken_state_was_deployed(fakes, graded, progress_file):
    lab = fakes.ObjectLab()
    grading.deploy(lab, *REPAIR)
    first = grading.grade(lab, *REPAIR)
    again = grading.grade(lab, "expose-nginx", "wrong-target-port")  # short names too
    assert [r.verdict for r in first + again] == ["pass", "pass"]
    assert graded == [REPAIR, REPAIR]
    assert [a["exercise"] for a in attempts(progress_file)] == [
        "02-expose-nginx/wrong-target-port"
    ] * 2


@pytest.mark.parametrize(
    ("after", "observed"),
    [
        (lambda lab: grading.reset(lab, "18-troubleshooting-symptoms"), "was last reset to"),
        (
            lambda lab: grading.deploy(lab, "18-troubleshooting-symptoms", "pod-not-scheduled"),
            "was variant 'pod-not-scheduled'",
        ),
        (
            lambda lab: grading.deploy(lab, "18-troubleshooting-symptoms"),
            "was its starting state",
        ),
        (lambda lab: lab.rebuild(), "no deploy of 18-troubleshooting-symptoms on record"),
    ],
    ids=["reset", "another-variant", "the-start", "lab-rebuilt"],
)
def test_a_reset_another_deploy_or_a_rebuilt_lab_ends_the_repair(
    fakes, graded, progress_file, after, observed
):
    lab = fakes.ObjectLab()
    grading.deploy(lab, "18-troubleshooting-symptoms", "wrong-target-port")
    after(lab)
    results = grading.grade(lab, "18-troubleshooting-symptoms", "wrong-target-port")
    assert_deploy_first(
        results,
        "labkit deploy 18-troubleshooting-symptoms --variant wrong-target-port",
        "lab.deploy('18-troubleshooting-symptoms', variant='wrong-target-port')",
    )
    assert observed in results[0].steps[0].observed
    assert graded == []


def test_what_another_lab_or_scenario_deployed_does_not_count(fakes, graded):
    other = fakes.ObjectLab("other")
    grading.deploy(other, *REPAIR)
    lab = fakes.ObjectLab("mine")
    grading.deploy(lab, "18-troubleshooting-symptoms", "wrong-target-port")
    results = grading.grade(lab, *REPAIR)
    # A lab of another name: the commands name it.
    assert_deploy_first(
        results,
        "labkit deploy 02-expose-nginx --variant wrong-target-port --name mine",
        "lab.deploy('02-expose-nginx', variant='wrong-target-port')",
    )
    assert "lab 'mine' has no deploy of 02-expose-nginx on record" in results[0].steps[0].observed
    assert graded == []


def test_steps_and_the_starting_state_are_graded_once_deployed(fakes, graded):
    lab = fakes.ObjectLab()
    step = grading.grade(lab, "03-database-migration", "both-engines")
    assert_deploy_first(
        step,
        "labkit deploy 03-database-migration --variant both-engines",
        "lab.deploy('03-database-migration', variant='both-engines')",
    )
    assert "Deploy this step first" in step[0].hint
    start = grading.grade(lab, "03-database-migration")
    assert_deploy_first(
        start, "labkit deploy 03-database-migration", "lab.deploy('03-database-migration')"
    )
    grading.deploy(lab, "03-database-migration", "both-engines")
    assert grading.grade(lab, "03-database-migration", "both-engines")[0].passed
    grading.deploy(lab, "03-database-migration")
    assert grading.grade(lab, "03-database-migration")[0].passed
    assert graded == [("03-database-migration", "both-engines"), ("03-database-migration", None)]


def test_an_unknown_variant_is_refused_before_anything_is_looked_up(fakes, graded):
    with pytest.raises(LabError, match="has no variant 'nope'"):
        grading.grade(fakes.ObjectLab(), "02-expose-nginx", "nope")


def test_cli_and_notebook_follow_the_same_record(fakes, graded, monkeypatch, capsys):
    lab = fakes.ObjectLab()
    monkeypatch.setattr(cli, "_attach", lambda lab_name: lab)
    # Deployed from the notebook, graded from the command line ...
    LearnerLab(lab).deploy(*REPAIR)
    assert cli.main(["check", REPAIR[0], "--variant", REPAIR[1]]) == 0
    # ... reset from the command line, and the notebook is told to deploy first.
    assert cli.main(["reset", REPAIR[0]]) == 0
    assert not LearnerLab(lab).check(*REPAIR)[0].passed
    capsys.readouterr()
    assert cli.main(["check", REPAIR[0], "--variant", REPAIR[1]]) == 3
    assert "labkit deploy 02-expose-nginx --variant wrong-target-port" in capsys.readouterr().out
    assert graded == [REPAIR]


def test_deploys_are_on_record_but_not_in_the_report(fakes, graded, progress_file):
    lab = fakes.ObjectLab()
    grading.deploy(lab, *REPAIR)
    grading.grade(lab, *REPAIR, learner="ada")
    grading.reset(lab, REPAIR[0])
    events = [json.loads(line) for line in progress_file.read_text().splitlines()]
    assert [e.get("event") for e in events] == ["deployed", None, "reset"]
    assert events[2]["variant"] is None and events[2]["lab_uid"] == lab.uid()
    text = progress.report(progress_file)
    assert "unreadable" not in text and "1 of 1 exercises passed" in text
    on_record = progress.last_deployed(REPAIR[0], lab.name, lab.uid())
    assert on_record is not None and (on_record.variant, on_record.event) == (None, "reset")
    assert progress.last_deployed(REPAIR[0], lab.name, "another-build") is None
