"""Exercises: the shipped data validates and each exercise is used by its lesson; bad data is
refused in one line; check() grades only a state set up, scores and records attempts; hint()
climbs the ladder by attempts and failure class; the report shows exercises per lesson."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import nbformat
import pytest
import tomllib

import labkit
from labkit.checks import progress
from labkit.checks.result import Step, make_result
from labkit.course import exercise_data, exercise_lab
from labkit.course.exercise_lab import Exercise
from labkit.errors import LabError

LESSONS = Path(__file__).resolve().parents[2] / "lessons"

LADDER = """
exercises:
  - id: "07.1"
    title: Fix the Service
    kind: repair
    points: 4
    setup: {scenario: 02-expose-nginx, variant: wrong-target-port}
    checks:
      - check: service_health
        args: {service: nginx-service}
      - check: pod_to_service
        args: {src: default/client, service: nginx-service}
    hints:
      - Look at the Service.
      - {failure: refused, text: Refused means nothing listens there.}
      - {failure: timeout, text: A timeout means a drop.}
      - Set targetPort to 80.
"""


def lesson_file(tmp_path: Path, text: str, name: str = "07-demo.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def spec_of(tmp_path: Path, text: str = LADDER) -> exercise_data.ExerciseSpec:
    return exercise_data.load_lesson(lesson_file(tmp_path, text))[0]


def test_every_shipped_exercise_validates_and_its_lesson_uses_it():
    shipped = exercise_data.load()
    assert shipped, "no exercises shipped"
    for ident, spec in shipped.items():
        notebook = LESSONS / f"{spec.lesson}.ipynb"
        assert notebook.is_file(), f"exercise {ident}: no lesson {notebook.name}"
        code = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells)
        assert f'labkit.exercise("{ident}"' in code, f"exercise {ident}: not in {notebook.name}"


def test_an_unknown_id_is_refused_with_the_ids_there_are():
    with pytest.raises(LabError, match=r"no exercise '99\.9'") as caught:
        labkit.exercise("99.9", object())  # type: ignore[arg-type]
    assert "00.1" in caught.value.fix


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("check: service_health", "check: service_wealth"), "no check named 'service_wealth'"),
        (("{service: nginx-service}", "{svc: nginx-service}"), "does not take 'svc'"),
        (("variant: wrong-target-port", "variant: right-port"), "has no variant 'right-port'"),
        (("scenario: 02-expose-nginx", "scenario: 99-nothing"), "No scenario named"),
        (("kind: repair", "kind: essay"), "kind 'essay' is not graded yet"),
        (
            ("kind: repair", "kind: write\n    writes: [Service/api]"),
            "a write or build from a step or start",
        ),
        (
            (", variant: wrong-target-port}", "}"),
            "a repair starts from a broken variant",
        ),
        (("points: 4", "points: 0"), "points must be a positive number"),
        (('id: "07.1"', 'id: "08.1"'), "the id must be the lesson's number"),
        (("    title: Fix", "    titel: Fix"), "unknown keys ['titel']"),
        (("failure: refused", "failure: slow"), "failure class 'slow' is unknown"),
        (("      - Set targetPort to 80.", "      - {failure: dns, text: x}"), "the give-away"),
    ],
)
def test_bad_exercise_data_is_refused_in_one_line(tmp_path, change, message):
    old, new = change
    assert old in LADDER
    with pytest.raises(LabError) as caught:
        spec_of(tmp_path, LADDER.replace(old, new, 1))
    assert message in caught.value.what
    assert caught.value.what.startswith("07-demo.yaml")
    assert "\n" not in caught.value.what and "\n" not in caught.value.fix


WRITE = LADDER.replace("kind: repair", "kind: write").replace(
    "setup: {scenario: 02-expose-nginx, variant: wrong-target-port}",
    "setup: {scenario: 02-expose-nginx}\n    writes: [Service/nginx-service, Namespace/shop]",
)


@pytest.mark.parametrize(
    ("writes", "message"),
    [
        (None, "lacks ['writes']"),
        ("[]", "writes must list the objects"),
        ("[Banana/x]", "'Banana/x' in writes is not Kind/name"),
        ("[Namespace/a/b]", "'Namespace/a/b' in writes is not Kind/name"),
        ("[Service/]", "'Service/' in writes is not Kind/name"),
        ("[Service/a/b/c]", "'Service/a/b/c' in writes is not Kind/name"),
    ],
)
def test_a_write_exercise_must_name_what_the_learner_writes(tmp_path, writes, message):
    old = "    writes: [Service/nginx-service, Namespace/shop]\n"
    text = WRITE.replace(old, "" if writes is None else f"    writes: {writes}\n")
    with pytest.raises(LabError) as caught:
        spec_of(tmp_path, text)
    assert message in caught.value.what


def test_setup_of_a_write_exercise_removes_an_earlier_answer(tmp_path, fakes, progress_file):
    spec = spec_of(tmp_path, WRITE)
    assert [str(r) for r in spec.writes] == ["service/default/nginx-service", "namespace/shop"]
    lab = fakes.ObjectLab()
    ex = Exercise(spec, lab, learner="ada")
    ex.setup()
    lab.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}])
    assert lab.get("service", "nginx-service") and lab.get("namespace", "shop", None)
    ex.setup()  # the learner starts over: their Namespace goes, the scenario's Service comes back
    assert not lab.get("namespace", "shop", None)
    assert lab.get("service", "nginx-service")


def test_an_id_in_two_lessons_is_refused(tmp_path):
    lesson_file(tmp_path, LADDER)
    lesson_file(tmp_path, LADDER, "07-again.yaml")
    with pytest.raises(LabError, match="also in lesson"):
        exercise_data.load(tmp_path)


@pytest.fixture
def verdicts(monkeypatch):
    """The checks an exercise runs answer from this list (one (verdict, failure) per check run)."""
    queue: list[tuple[str, str | None]] = []

    def run_check(lab, name, args):
        verdict, failure = queue.pop(0)
        if verdict == "pass":
            return make_result(name, "subject", [Step("look", "ok", True)])
        return make_result(
            name,
            "subject",
            [Step("look", "wrong", False)],
            verdict=verdict,
            hint=f"{name} says no",
            failure=failure,
        )

    monkeypatch.setattr(exercise_lab, "run_check", run_check)
    return queue


def attempts(path: Path) -> list[dict]:
    return progress.read(path)[0] if path.exists() else []


def test_check_grades_only_after_setup_and_records_each_attempt(
    tmp_path, fakes, verdicts, progress_file
):
    ex = Exercise(spec_of(tmp_path), fakes.ObjectLab(), learner="ada")
    before = ex.check()
    assert str(before).splitlines()[0] == "exercise 07.1: fail (0/4)"
    assert "`ex.setup()`" in before.hint and attempts(progress_file) == []
    ex.setup()
    verdicts += [("fail", "refused"), ("fail", None)]
    first = ex.check()
    assert str(first).splitlines()[0] == "exercise 07.1: fail (0/4)"
    assert (first.failure, first.hint) == ("refused", "service_health says no")
    ex.hint()
    verdicts += [("pass", None), ("partial", None)]
    assert str(ex.check()).splitlines()[0] == "exercise 07.1: partial (3/4)"
    verdicts += [("pass", None), ("pass", None)]
    last = ex.check()
    assert last.headline() == "exercise 07.1: pass (4/4)" and last.hint == ""
    assert "<div" in last._repr_html_() and "exercise 07.1: pass (4/4)" in last._repr_html_()
    recorded = attempts(progress_file)
    assert [(a["lesson"], a["exercise"], a["learner"]) for a in recorded] == [
        ("07-demo", "07.1", "ada")
    ] * 3
    assert [(a["attempt"], a["hints_used"], a["verdict"]) for a in recorded] == [
        (1, 0, "fail"),
        (2, 1, "partial"),
        (3, 1, "pass"),
    ]
    table = progress.report(progress_file)
    assert re.search(r"07-demo\s+07\.1\s+pass\s+4/4\s+3", table), table


def test_the_ladder_follows_attempts_and_the_failure_class(
    tmp_path, fakes, verdicts, progress_file
):
    ex = Exercise(spec_of(tmp_path), fakes.ObjectLab(), learner="ada")
    ex.setup()
    assert str(ex.hint()) == "hint 1 of 4 for exercise 07.1: Look at the Service."
    # The failure rungs wait for their failure; the give-away waits for an attempt.
    assert "comes after an attempt" in str(ex.hint())
    verdicts += [("fail", "refused"), ("fail", "refused")]
    ex.check()
    assert str(ex.hint()).endswith("Refused means nothing listens there.")
    assert str(ex.hint()) == "hint 4 of 4 for exercise 07.1: Set targetPort to 80."
    assert str(ex.hint()).startswith("exercise 07.1: no more hints (3 of 4 shown).")
    shown = [
        json.loads(line)
        for line in progress_file.read_text().splitlines()
        if '"hint"' in line and '"event"' in line
    ]
    assert [(e["exercise"], e["rung"], e["learner"]) for e in shown] == [
        ("07.1", 0, "ada"),
        ("07.1", 1, "ada"),
        ("07.1", 3, "ada"),
    ]
    assert progress.exercise_history("07.1", "ada") == (
        1,
        "refused",
        (0, 1, 3),
        "service_health says no",
    )
    assert progress.exercise_history("07.1", "bo") == (0, None, (), "")


def test_a_timeout_skips_the_refused_rung(tmp_path, fakes, verdicts, progress_file):
    ex = Exercise(spec_of(tmp_path), fakes.ObjectLab())
    ex.setup()
    verdicts += [("fail", "timeout"), ("fail", "timeout")]
    ex.check()
    assert str(ex.hint()).endswith("Look at the Service.")
    assert str(ex.hint()).endswith("A timeout means a drop.")


def test_reset_ends_the_repair(tmp_path, fakes, verdicts, progress_file):
    ex = Exercise(spec_of(tmp_path), labkit.LearnerLab(fakes.ObjectLab()))
    ex.setup()
    ex.reset()
    assert "`ex.setup()`" in ex.check().hint
    assert attempts(progress_file) == []


def test_the_report_totals_each_lesson(tmp_path):
    path = tmp_path / "p.jsonl"
    for lesson, ident, verdict, points in (
        ("00-start-here", "00.1", "pass", 2),
        ("01-model", "01.1", "fail", 0),
        ("01-model", "01.2", "pass", 3),
    ):
        result = make_result("exercise", ident, [Step("x", verdict, verdict == "pass")], hint="h")
        result.points, result.max_points = points, 3 if ident != "00.1" else 2
        progress.record(result, lesson=lesson, exercise=ident, learner="ada", path=path)
    lines = progress.report(path).splitlines()
    assert lines[-3:] == [
        "lesson 00-start-here: 1 of 1 exercises passed, 2/2 points",
        "lesson 01-model: 1 of 2 exercises passed, 3/6 points",
        "2 of 3 exercises passed, 5/8 points",
    ]


def test_the_exercise_files_ship_in_the_wheel():
    root = Path(__file__).resolve().parents[2]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["labkit"]
    files = sorted(exercise_data.EXERCISE_DIR.glob("*.yaml"))
    assert files
    for path in files:
        relative = path.relative_to(root / "labkit").as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative
