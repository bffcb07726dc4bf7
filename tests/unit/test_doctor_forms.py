"""`labkit doctor --json` and `--checklist`: the same findings for scripts and for paper."""

from __future__ import annotations

import json

import pytest

from labkit import cli, doctor
from labkit.lab import DoctorLine

LINES = [
    DoctorLine("sandbox: root", True, "running as root", "sudo"),
    DoctorLine("sandbox: `dig` command", False, "not found", "apt install dnsutils"),
    DoctorLine("kind: helm on PATH", False, "not found", "install Helm", required=False),
    DoctorLine("kind: inotify", False, "too low:\n128", "sudo sysctl ..."),
]


class _Backend:
    """A backend whose doctor lines are given."""

    def __init__(self, lines: list[DoctorLine]) -> None:
        self.lines = lines

    def doctor_checks(self, cni=None):
        return self.lines


def test_json_is_one_object_per_finding_with_its_status():
    """Each line parses alone as JSON (the JSON Lines format, jsonlines.org), keys exactly
    name, status, detail and fix; an optional failure is a warning, not a failure."""
    rows = [json.loads(line) for line in doctor.render_json(LINES).splitlines()]
    assert [sorted(row) for row in rows] == [["detail", "fix", "name", "status"]] * 4
    assert [row["status"] for row in rows] == ["ok", "fail", "warn", "fail"]
    assert rows[1] == {
        "name": "sandbox: `dig` command",
        "status": "fail",
        "detail": "not found",
        "fix": "apt install dnsutils",
    }
    assert rows[3]["detail"] == "too low:\n128"  # kept whole, escaped inside its one line


def test_json_gives_a_fix_only_where_there_is_something_to_fix():
    """An ok line's fix is "" (its would-be fix is no advice, as kubeadm's preflight prints
    no remedy for a check that passed: cmd/kubeadm/app/preflight/checks.go RunChecks), so
    `jq 'select(.fix != "")'` lists exactly what to do."""
    rows = [json.loads(line) for line in doctor.render_json(LINES).splitlines()]
    assert rows[0] == {
        "name": "sandbox: root",
        "status": "ok",
        "detail": "running as root",
        "fix": "",
    }
    assert [row["fix"] != "" for row in rows] == [False, True, True, True]


def test_checklist_has_a_box_per_finding_and_the_fix_under_the_open_ones():
    """Ticked boxes for what passed, open ones for the rest with their fix (GitHub Flavored
    Markdown's task list items, spec section 5.3)."""
    text = doctor.render_checklist(LINES, "The sandbox backend is not ready.")
    assert text.splitlines() == [
        "# labkit preflight checklist",
        "",
        "## sandbox backend",
        "",
        "- [x] root: running as root",
        "- [ ] `dig` command: not found",
        "  - fix: apt install dnsutils",
        "",
        "## kind backend",
        "",
        "- [ ] helm on PATH (optional): not found",
        "  - fix: install Helm",
        "- [ ] inotify: too low: 128",
        "  - fix: sudo sysctl ...",
        "",
        "The sandbox backend is not ready.",
    ]


def test_checklist_keeps_a_line_without_a_backend_prefix():
    """A finding outside any backend gets its own section (GFM spec 5.3, task list items)."""
    text = doctor.render_checklist([DoctorLine("disk", True, "12 GiB free")], "Ready.")
    assert "## this machine\n\n- [x] disk: 12 GiB free" in text


@pytest.mark.parametrize("form", ["--json", "--checklist", None])
@pytest.mark.parametrize("sandbox_ok, code", [(True, 0), (False, 1)])
def test_every_form_exits_0_only_when_the_backend_in_use_is_ready(
    form, sandbox_ok, code, monkeypatch, capsys
):
    """The exit code is the verdict whatever the form: 0 ready, 1 not ready."""
    backends = {
        "sandbox": _Backend([DoctorLine("root", sandbox_ok, "uid", "sudo")]),
        "kind": _Backend([DoctorLine("Docker engine", False, "none", "start Docker")]),
    }
    monkeypatch.setattr(doctor, "backend_module", lambda name: backends[name])
    monkeypatch.setattr(doctor, "choose_backend", lambda backend: ("sandbox", "root"))
    assert cli.main(["doctor", *([form] if form else [])]) == code
    out = capsys.readouterr().out
    if form == "--json":
        assert [json.loads(line)["name"] for line in out.splitlines()] == [
            "sandbox: root",
            "kind: Docker engine",
        ]


def test_json_and_checklist_together_are_a_usage_error(capsys):
    """Two forms at once are argparse's mutually exclusive group error, exit code 2 (Python's
    argparse docs, "Mutual exclusion")."""
    with pytest.raises(SystemExit) as stop:
        cli.main(["doctor", "--json", "--checklist"])
    assert stop.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
