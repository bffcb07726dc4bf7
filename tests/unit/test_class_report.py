"""The class dashboard's pure parts: a class folder of progress files (``tests/unit/data/
classroom``: ada passed 00.1 after a fail, bo is stuck twice, cy has not tried yet, dee ran a
scenario's checks and left a line half written) read into rows, who is stuck, the hardest
exercises, and the text and CSV forms."""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path

import pytest

from labkit.checks import progress
from labkit.course import class_export, class_folder, exercise_data
from labkit.course.class_report import (
    STUCK_AFTER,
    ClassRow,
    check_stuck_after,
    hardest,
    stuck_reason,
    summarise,
)
from labkit.course.exercise_draw import Draw
from labkit.course.exercise_lab import Exercise
from labkit.errors import LabError


def cells(report):
    return [
        (
            r.learner,
            r.exercise,
            r.verdict,
            r.points,
            r.attempts,
            r.hints_shown,
            r.hints_total,
            r.stuck,
        )
        for r in report.rows
    ]


def test_rows_per_learner_and_exercise_from_the_fixture_folder(classroom):
    """One row per learner and graded item, as `progress.best_attempts` labels them (a scenario's
    checks one item each); the learner is the file's name, never the records' ``jovyan``."""
    report = class_folder.class_report(classroom)
    assert report.learners == ("ada", "bo", "cy", "dee")
    assert cells(report) == [
        ("ada", "00.1", "pass", 2, 2, 1, 3, ""),
        ("ada", "11.1", "fail", 0, 1, 4, 5, ""),
        ("bo", "00.1", "partial", 1, 3, 0, 3, "3 attempts without a pass"),
        ("bo", "11.1", "fail", 0, 1, 5, 5, "all 5 hints shown"),
        ("dee", "00.1", "partial", 1, 1, 0, 3, ""),
        ("dee", "02-expose-nginx: pod_to_pod", "fail", 0, 2, 0, None, ""),
        ("dee", "02-expose-nginx: service_health", "pass", 1, 2, 0, None, ""),
    ]
    assert report.rows[0].last == "2026-11-20T09:03:00+00:00"
    assert dict(report.skipped) == {"dee": 1}  # the line still being written
    assert [(r.learner, r.exercise) for r in report.stuck] == [("bo", "00.1"), ("bo", "11.1")]


def test_hardest_first_by_share_passed_then_stuck_then_attempts(classroom):
    """11.1 and pod_to_pod: nobody passed, 11.1 has a stuck learner; then 00.1 (1 of 3)."""
    report = class_folder.class_report(classroom)
    assert [
        (h.exercise, h.learners, h.passed, h.stuck, h.mean_attempts) for h in report.hardest
    ] == [
        ("11.1", 2, 0, 1, 1.0),
        ("02-expose-nginx: pod_to_pod", 1, 0, 0, 2.0),
        ("00.1", 3, 1, 1, 2.0),
        ("02-expose-nginx: service_health", 1, 1, 0, 2.0),
    ]


def test_a_lower_threshold_flags_more(classroom):
    """``--stuck-after 1``: any failing exercise without a pass is stuck."""
    report = class_folder.class_report(classroom, stuck_after=1)
    assert [(r.learner, r.exercise, r.stuck) for r in report.stuck] == [
        ("ada", "11.1", "1 attempts without a pass"),
        ("bo", "00.1", "3 attempts without a pass"),
        ("bo", "11.1", "1 attempts without a pass; all 5 hints shown"),
        ("dee", "00.1", "1 attempts without a pass"),
        ("dee", "02-expose-nginx: pod_to_pod", "2 attempts without a pass"),
    ]


@pytest.mark.parametrize(
    ("verdicts", "shown", "total", "after", "reason"),
    [
        ((), 0, 3, 3, ""),
        (("fail",), 0, 3, 3, ""),
        (("fail", "partial"), 2, 3, 3, ""),
        (("fail", "partial", "fail"), 0, 3, 3, "3 attempts without a pass"),
        (("fail",) * 4, 0, None, 3, "4 attempts without a pass"),
        (("fail", "pass", "fail", "fail"), 3, 3, 3, ""),  # passed once: not stuck
        (("fail",), 3, 3, 3, "all 3 hints shown"),
        (("fail",), 5, 5, 1, "1 attempts without a pass; all 5 hints shown"),
        (("fail",), 2, 3, 2, ""),
        (("partial", "partial"), 0, 0, 2, "2 attempts without a pass"),  # no ladder
        ((), 3, 3, 3, "all 3 hints shown"),
    ],
)
def test_stuck_reason(verdicts, shown, total, after, reason):
    """Stuck: the same item failing for N attempts with no pass, or its hint ladder exhausted
    (`exercise_lab.Exercise.hint`: "no more hints") with no pass."""
    assert stuck_reason(verdicts, shown, total, after) == reason


def test_stuck_reason_every_combination_is_consistent():
    """Exhaustively over short histories: a pass clears it; else the two rules, each alone."""
    for n in range(5):
        for verdicts in itertools.product(("pass", "partial", "fail"), repeat=n):
            for shown, total, after in itertools.product(range(4), (None, 3), range(1, 4)):
                reason = stuck_reason(verdicts, shown, total, after)
                if "pass" in verdicts:
                    assert reason == ""
                    continue
                assert ("attempts without a pass" in reason) == (n >= after)
                assert ("hints shown" in reason) == (total is not None and shown >= total)


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "3", None])
def test_stuck_threshold_must_be_a_positive_whole_number(bad):
    with pytest.raises(LabError, match="not a number of attempts") as err:
        check_stuck_after(bad)
    assert "--stuck-after 3" in err.value.fix
    assert check_stuck_after(1) == 1 and STUCK_AFTER == 3


def test_hardest_breaks_ties_by_name():
    rows = [ClassRow("a", "L", x, "fail", 0, 1, 1, 0, None, "", "") for x in ("b-ex", "a-ex")]
    assert [h.exercise for h in hardest(rows)] == ["a-ex", "b-ex"]


def test_an_empty_class():
    report = summarise({}, {})
    assert report.rows == () and report.hardest == () and report.stuck == ()
    assert class_export.text(report) == (
        "Class report: 0 learners, 0 stuck (no pass in 3 attempts, or every hint shown)\n"
        + class_export.NO_FILES
    )
    assert "LABKIT_PROGRESS" in class_export.NO_FILES  # the fix, in the same line


@pytest.mark.parametrize("spec", exercise_data.load().values(), ids=lambda s: s.id)
def test_ladder_size_is_what_hint_climbs(spec):
    """`ExerciseSpec.ladder_size` equals the ladder `Exercise.hint` climbs (a drawn repair's
    adds the failing check's hint and the give-away), so "all hints shown" means no more."""
    ex = Exercise.__new__(Exercise)
    ex.spec = spec
    ex.fault = _FakeFault() if isinstance(spec.setup, Draw) else None
    assert len(ex._ladder(progress.ExerciseHistory(0, None, ()))) == spec.ladder_size


class _FakeFault:
    def giveaway(self) -> str:
        return "the give-away"


# --------------------------------------------------------------------------- the folder


@pytest.mark.parametrize(
    "name", ["ada", "Ada.Lovelace", "ada_l", "ada@example.org", "u-1", "7", "a" * 100]
)
def test_learner_names_from_file_names(name):
    """KubeSpawner's ``{username}`` (kubespawner/slugs.py ``safe_slug``: lower-case letters,
    digits and '-') and plain names all fit."""
    assert class_folder.learner_of(Path(f"/x/{name}.jsonl")) == name


@pytest.mark.parametrize(
    "name",
    [
        ".jsonl",
        ".hidden.jsonl",
        "-rf.jsonl",
        "a b.jsonl",
        "ada;ls.jsonl",
        "é.jsonl",
        "a\nb.jsonl",
        "a" * 101 + ".jsonl",
        "_x.jsonl",
    ],
)
def test_a_file_name_that_is_no_learner_name_is_one_error(classroom, name):
    """The file is named, the fix says how to name it, and nothing is read."""
    (classroom / name).write_text("")
    with pytest.raises(LabError, match="does not name a learner") as err:
        class_folder.class_report(classroom)
    assert "Rename it to <learner>.jsonl" in err.value.fix
    assert len(err.value.what.splitlines()) == 1


def test_other_files_and_folders_are_left_alone(classroom):
    (classroom / "notes.txt").write_text("hello")
    (classroom / "lost+found").mkdir()
    (classroom / "old").mkdir()
    (classroom / "old" / "zed.jsonl").write_text("garbage\n")
    assert class_folder.class_report(classroom).learners == ("ada", "bo", "cy", "dee")


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda f: (f / "eve.jsonl").symlink_to("/etc/hostname"), "is not a regular file"),
        (lambda f: (f / "eve.jsonl").mkdir(), "is not a regular file"),
        (lambda f: (f / "eve.jsonl").write_bytes(b"\xff\xfe\x00"), "it is not UTF-8 text"),
        (lambda f: (f / "eve.jsonl").write_text("a,b\n1,2\n"), "holds no progress records"),
        (
            lambda f: (f / "eve.jsonl").write_text(json.dumps({"verdict": "pass", "points": "9"})),
            "holds no progress records",
        ),
    ],
)
def test_bad_file_content_is_one_error_naming_the_file(classroom, make, words):
    make(classroom)
    with pytest.raises(LabError, match=words) as err:
        class_folder.class_report(classroom)
    assert "eve.jsonl" in err.value.what


def test_a_missing_folder_is_one_error(tmp_path):
    with pytest.raises(LabError, match="There is no class folder") as err:
        class_folder.class_report(tmp_path / "nope")
    assert "LABKIT_PROGRESS=<folder>/<learner>.jsonl" in err.value.fix


def test_records_with_forged_fields_are_skipped_not_trusted(classroom):
    """A learner's file is theirs to write: points that are not numbers, labels with control
    characters and negative rungs are unreadable lines, counted, never shown."""
    forged = [
        {"verdict": "pass", "points": True, "max_points": 1, "exercise": "00.1"},
        {"verdict": "pass", "points": 1, "max_points": 1, "exercise": "00.1\x1b[2J"},
        {"event": "hint", "rung": -1, "exercise": "00.1", "lesson": "00-start-here"},
        {"event": "hint", "rung": "0", "exercise": "00.1", "lesson": "00-start-here"},
    ]
    with (classroom / "cy.jsonl").open("w") as fh:
        for entry in [
            *forged,
            {"verdict": "fail", "points": 0, "max_points": 2, "exercise": "00.1", "lesson": "L"},
        ]:
            fh.write(json.dumps(entry) + "\n")
    report = class_folder.class_report(classroom)
    assert [(r.exercise, r.verdict) for r in report.rows if r.learner == "cy"] == [("00.1", "fail")]
    assert dict(report.skipped) == {"cy": 4, "dee": 1}


def test_signature_changes_when_a_learner_writes(classroom):
    before = class_folder.signature(classroom)
    assert [name for name, _, _ in before] == ["ada.jsonl", "bo.jsonl", "cy.jsonl", "dee.jsonl"]
    with (classroom / "cy.jsonl").open("a") as fh:
        fh.write("\n")
    assert class_folder.signature(classroom) != before


# --------------------------------------------------------------------------- text and CSV


def test_text_form(classroom):
    """kubectl-style tables (`tables.render_table`), then who is stuck and the hardest."""
    out = class_export.text(class_folder.class_report(classroom)).splitlines()
    assert (
        out[0] == "Class report: 4 learners, 1 stuck (no pass in 3 attempts, or every hint shown)"
    )
    assert out[1].split() == [
        "learner",
        "lesson",
        "exercise",
        "best",
        "points",
        "attempts",
        "hints",
        "stuck",
    ]
    assert out[5].split() == [
        "bo",
        "00-start-here",
        "00.1",
        "partial",
        "1/2",
        "3",
        "0/3",
        "3",
        "attempts",
        "without",
        "a",
        "pass",
    ]
    assert out[8].split() == [
        "dee",
        "02-pods-nodes-services",
        "02-expose-nginx:",
        "pod_to_pod",
        "fail",
        "0/1",
        "2",
        "-",
    ]
    assert "No attempt yet: cy" in out
    assert out[out.index("Stuck:") + 1 : out.index("Stuck:") + 3] == [
        "  bo on 00.1: 3 attempts without a pass",
        "  bo on 11.1: all 5 hints shown",
    ]
    hard = out.index("Hardest exercises (smallest share passed first):")
    assert out[hard + 1].split() == [
        "lesson",
        "exercise",
        "learners",
        "passed",
        "stuck",
        "mean",
        "attempts",
    ]
    assert out[hard + 3].split() == ["11-capstone", "11.1", "2", "0", "1", "1.0"]
    assert out[-1] == "(1 unreadable line skipped: dee 1)"


def test_csv_form(classroom):
    """One row per learner and exercise under a header; numbers as numbers, no ladder empty."""
    rows = list(
        csv.reader(io.StringIO(class_export.csv_text(class_folder.class_report(classroom))))
    )
    assert rows[0] == list(class_export.CSV_HEADERS)
    assert rows[3] == [
        "bo",
        "00-start-here",
        "00.1",
        "partial",
        "1",
        "2",
        "3",
        "0",
        "3",
        "3 attempts without a pass",
        "2026-11-20T09:06:00+00:00",
    ]
    assert rows[6] == [
        "dee",
        "02-pods-nodes-services",
        "02-expose-nginx: pod_to_pod",
        "fail",
        "0",
        "1",
        "2",
        "0",
        "",
        "",
        "2026-11-20T09:12:00+00:00",
    ]
    assert len(rows) == 8


def test_csv_cells_a_spreadsheet_would_run_are_defused(classroom):
    """OWASP "CSV Injection": a cell starting with = + - @ is prefixed with an apostrophe."""
    entry = {
        "verdict": "fail",
        "points": 0,
        "max_points": 1,
        "lesson": "+L",
        "exercise": '=HYPERLINK("http://x")',
        "time": "@t",
    }
    (classroom / "eve.jsonl").write_text(json.dumps(entry) + "\n")
    rows = list(
        csv.reader(io.StringIO(class_export.csv_text(class_folder.class_report(classroom))))
    )
    eve = next(r for r in rows if r[0] == "eve")
    assert eve[1:3] == ["'+L", '\'=HYPERLINK("http://x")'] and eve[-1] == "'@t"
