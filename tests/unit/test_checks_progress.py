"""Progress files: results appended as JSON lines; a learner's table and a workshop summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.checks import progress
from labkit.checks.result import Step, make_result
from labkit.errors import LabError


def result(verdict: str, ok_steps: int = 1, bad_steps: int = 0, check: str = "pod_to_pod"):
    steps = [Step(f"s{i}", "ok", True) for i in range(ok_steps)] + [
        Step(f"b{i}", "bad", False) for i in range(bad_steps)
    ]
    if verdict == "partial":
        steps.append(Step("x", "not gradable", None))
    return make_result(
        check,
        "subject",
        steps,
        verdict=None if verdict != "partial" else "partial",
        hint="" if verdict == "pass" else "a hint",
    )


def test_default_path_and_env_override(monkeypatch, tmp_path):
    monkeypatch.delenv(progress.ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert progress.default_path() == tmp_path / ".labkit" / "progress.jsonl"
    monkeypatch.setenv(progress.ENV_VAR, str(tmp_path / "mine.jsonl"))
    assert progress.default_path() == tmp_path / "mine.jsonl"


def test_record_appends_json_lines(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "p.jsonl"
    monkeypatch.setenv(progress.ENV_VAR, str(target))
    progress.record(result("fail", 1, 1), lesson="03", exercise="reach-db", learner="ada")
    progress.record(result("pass", 2), lesson="03", exercise="reach-db", learner="ada")
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [e["verdict"] for e in lines] == ["fail", "pass"]
    assert (
        lines[0]["learner"] == "ada"
        and lines[0]["lesson"] == "03"
        and lines[0]["exercise"] == "reach-db"
    )
    assert lines[0]["steps"][1]["ok"] is False and "time" in lines[0]


def test_record_defaults_exercise_to_check_name(tmp_path):
    path = tmp_path / "p.jsonl"
    progress.record(result("pass", check="dns_resolves"), path=path, learner="bo")
    assert json.loads(path.read_text())["exercise"] == "dns_resolves"


def test_record_refuses_other_things(tmp_path):
    with pytest.raises(LabError, match="Only a check's Result"):
        progress.record({"verdict": "pass"}, path=tmp_path / "x.jsonl")


def test_learner_table_keeps_the_best_attempt(tmp_path):
    path = tmp_path / "p.jsonl"
    progress.record(result("fail", 1, 2), lesson="02", exercise="a", learner="ada", path=path)
    progress.record(result("partial", 2), lesson="02", exercise="a", learner="ada", path=path)
    progress.record(result("fail", 0, 1), lesson="02", exercise="a", learner="ada", path=path)
    progress.record(result("pass", 3), lesson="01", exercise="b", learner="ada", path=path)
    text = progress.report(path)
    lines = text.splitlines()
    assert lines[0] == "Progress of ada"
    assert lines[1].split() == ["lesson", "exercise", "best", "points", "attempts"]
    assert lines[3].split() == ["01", "b", "pass", "3/3", "1"]
    # The partial attempt earned 2 of its own 2 points (the 3 was the failed attempt's maximum).
    assert lines[4].split() == ["02", "a", "partial", "2/2", "3"]
    assert lines[-1] == "1 of 2 exercises passed, 5/5 points"


def test_points_and_maximum_come_from_the_same_attempt(tmp_path):
    path = tmp_path / "p.jsonl"
    progress.record(result("fail", 2, 5), lesson="02", exercise="a", learner="ada", path=path)
    progress.record(result("pass", 5), lesson="02", exercise="a", learner="ada", path=path)
    progress.record(result("partial", 3, 0), lesson="02", exercise="b", learner="ada", path=path)
    progress.record(result("partial", 6, 1), lesson="02", exercise="b", learner="ada", path=path)
    rows = [line.split() for line in progress.report(path).splitlines()[3:5]]
    # Not "pass 5/7": the passing attempt had 5 points to earn.
    assert rows[0] == ["02", "a", "pass", "5/5", "2"]
    # Of two partial attempts, the one that earned the larger share of its own points.
    assert rows[1] == ["02", "b", "partial", "3/3", "2"]


def test_workshop_summary_from_a_folder(tmp_path):
    for learner, verdicts in (
        ("ada", ["pass", "pass"]),
        ("bo", ["fail", "partial"]),
        ("cy", ["pass", "fail"]),
    ):
        path = tmp_path / f"{learner}.jsonl"
        for i, v in enumerate(verdicts):
            progress.record(
                result(v, 1, 1 if v == "fail" else 0),
                lesson="01",
                exercise=f"e{i}",
                learner=learner,
                path=path,
            )
    text = progress.report(tmp_path)
    lines = text.splitlines()
    assert lines[0].split() == ["learner", "exercises", "passed", "partial", "failed", "points"]
    assert lines[2].split() == ["ada", "2", "2", "0", "0", "2/2"]
    assert lines[3].split() == ["bo", "2", "0", "1", "1", "2/3"]
    assert lines[4].split() == ["cy", "2", "1", "0", "1", "2/3"]
    assert lines[-1] == "3 learners"
    assert (
        progress.report([tmp_path / "ada.jsonl", tmp_path / "bo.jsonl"]).splitlines()[-1]
        == "2 learners"
    )


def test_missing_default_file_is_a_friendly_note(tmp_path):
    assert progress.report(tmp_path / "none.jsonl").startswith("No progress recorded yet")


def test_missing_file_among_several_is_an_error(tmp_path):
    (tmp_path / "a.jsonl").write_text("")
    with pytest.raises(LabError, match="No progress file"):
        progress.report([tmp_path / "a.jsonl", tmp_path / "b.jsonl"])


def test_unreadable_lines_are_skipped_and_counted(tmp_path):
    path = tmp_path / "p.jsonl"
    progress.record(result("pass"), learner="ada", path=path, lesson="01")
    with path.open("a") as fh:
        fh.write('not json\n{"verdict": "great"}\n')
    text = progress.report(path)
    assert "1 of 1 exercises passed" in text and "(2 unreadable lines skipped)" in text


def test_empty_file_says_so(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("\n")
    assert progress.report(path).startswith("No graded attempts")


def test_cli_report_uses_this_module(tmp_path, monkeypatch, capsys):
    from labkit import cli

    path = tmp_path / "p.jsonl"
    monkeypatch.setenv(progress.ENV_VAR, str(path))
    progress.record(result("pass"), learner="ada", lesson="01")
    assert cli.main(["report"]) == 0
    assert "Progress of ada" in capsys.readouterr().out
    assert isinstance(progress.default_path(), Path)


def test_an_exercise_graded_by_several_checks_gets_a_row_each(tmp_path):
    path = tmp_path / "p.jsonl"
    a = make_result("pod_to_service", "x -> service a", [Step("s", "ok", True)])
    b = make_result("pod_to_service", "x -> service b", [Step("s", "bad", False)], hint="h")
    c = make_result("dns_resolves", "name", [Step("s", "ok", True)])
    for r in (a, b, c, b):
        progress.record(r, lesson="06", exercise="06-api-gateway", learner="ada", path=path)
    lines = progress.report(path).splitlines()
    rows = [line.split("  ") for line in lines[3:-1]]
    labels = [[cell.strip() for cell in row if cell.strip()][1] for row in rows]
    assert labels == [
        "06-api-gateway: dns_resolves",
        "06-api-gateway: pod_to_service (x -> service a)",
        "06-api-gateway: pod_to_service (x -> service b)",
    ]
    assert lines[-1] == "2 of 3 exercises passed, 2/3 points"
