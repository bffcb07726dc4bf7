"""Sandbox labs as a user who is not root: their names can be read without root, but only root
can use them, so `labkit ls`, `status`, `down` and the rest say so and name `sudo` instead of
"No labs". Fake backends and folders: no root, no namespaces."""

from __future__ import annotations

import os

import pytest

from labkit import cli
from labkit import lab as seam
from labkit.lablist import NO_LABS
from labkit.sandbox import labnames
from labkit.values import SeenLabs

# --------------------------------------------------------------------------- reading the names


def test_names_come_from_state_folders_namespaces_and_etc_netns(tmp_path):
    """`ip netns add NAME` creates /run/netns/NAME and `ip netns exec` binds /etc/netns/NAME
    (iproute2's ip-netns(8)); a lab's state is /run/labkit/<lab>. Only a lab's own names
    count: a file, a name that is no lab name, another tool's namespace are not labs."""
    state, netns, etc = tmp_path / "labkit", tmp_path / "netns", tmp_path / "etc"
    for folder in (state, netns, etc):
        folder.mkdir()
    (state / "ada").mkdir()
    (state / "Not_A_Lab").mkdir()
    (state / "stray-file").write_text("")
    for name in ("lk-bo-cp", "lk-bo-fabric", "cni-1234", "lk-x-nosuchrole"):
        (netns / name).write_text("")
    (etc / "lk-cy-w1").mkdir()
    assert labnames.scan(state, netns, etc) == SeenLabs(("ada", "bo", "cy"), True)
    assert labnames.scan(tmp_path / "gone", netns, tmp_path / "gone") == SeenLabs(("bo",), True)


def test_a_folder_that_cannot_be_listed_makes_the_names_incomplete(tmp_path, monkeypatch):
    """listdir(2) fails with EACCES on a folder the user may not read (os.listdir raises
    PermissionError): the names read elsewhere stay, marked incomplete."""
    netns = tmp_path / "netns"
    netns.mkdir()
    (netns / "lk-bo-cp").write_text("")
    listdir = os.listdir

    def denied(path):
        if str(path).endswith("labkit"):
            raise PermissionError(13, "Permission denied", str(path))
        return listdir(path)

    monkeypatch.setattr(labnames.os, "listdir", denied)
    assert labnames.scan(tmp_path / "labkit", netns, tmp_path / "etc") == SeenLabs(("bo",), False)


# --------------------------------------------------------------------------- the commands


@pytest.fixture
def not_root(monkeypatch):
    """Linux, not root, no Docker: no backend is usable; the sandbox's names are ``seen``."""
    monkeypatch.setattr(seam, "sandbox_needs_root", lambda: True)
    monkeypatch.setattr(seam, "sandbox_possible", lambda: (False, "the sandbox needs root"))
    monkeypatch.setattr(seam, "docker_engine_answers", lambda: (False, "no Docker"))

    def seeing(names: tuple[str, ...], complete: bool = True) -> None:
        monkeypatch.setattr(labnames, "scan", lambda: SeenLabs(names, complete))

    return seeing


def test_ls_names_the_labs_only_root_can_use_and_sudo(not_root, capsys):
    """Not "No labs": as kubectl answers `Error from server (Forbidden)` rather than an empty
    list when the user may not list (k8s.io/apimachinery/pkg/api/errors NewForbidden)."""
    not_root(("ada", "bo"))
    assert cli.main(["ls"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "labkit: Sandbox labs on this machine that only root can use: ada, bo. "
        "Run it as root: `sudo labkit ls`.\n"
    )


def test_ls_says_labs_may_be_hidden_when_it_cannot_look(not_root, capsys):
    """A folder it could not list (EACCES) is no proof of no lab (NewForbidden, as above)."""
    not_root((), complete=False)
    assert cli.main(["ls"]) == 0
    err = capsys.readouterr().err
    assert "may be on this machine, but only root can see them" in err
    assert "`sudo labkit ls`" in err and NO_LABS not in err


def test_ls_with_nothing_anywhere_says_no_labs_on_stderr(not_root, capsys):
    """Every folder read and no lab: the plain sentence, on stderr as kubectl's "No resources
    found" (k8s.io/kubectl/pkg/cmd/get/get.go writes it to ErrOut), stdout empty."""
    not_root(())
    assert cli.main(["ls"]) == 0
    assert capsys.readouterr() == ("", NO_LABS + "\n")


def test_down_all_fails_naming_what_only_root_can_remove(not_root, capsys):
    """Never "none is left" while labs are left (NewForbidden, as above); exit code 1."""
    not_root(("ada",))
    assert cli.main(["down", "--all"]) == 1
    out, err = capsys.readouterr()
    assert "none is left" not in out + err
    assert err.splitlines() == [
        "labkit: 0 lab(s) removed. Sandbox labs on this machine that only root can use: ada.",
        "Fix: Run it as root: `sudo labkit down --all`.",
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--name", "ada"],
        ["down", "--name", "ada"],
        ["deploy", "02-expose-nginx", "--name", "ada"],
        ["kubectl", "--name", "ada", "get", "pods", "-o", "wide"],
        ["hubble", "--name", "ada", "observe", "--last", "5"],
    ],
)
def test_a_command_on_a_root_only_lab_names_itself_with_sudo(not_root, argv, capsys):
    """The same command line again under sudo, quoted for a shell (Python's shlex.join), not
    "No lab named"; one problem line and one fix line (NewForbidden, as above)."""
    not_root(("ada",))
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "labkit: Lab 'ada' is a sandbox lab, and only root can use sandbox labs.",
        f"Fix: Run it as root: `sudo labkit {' '.join(argv)}`.",
    ]


def test_down_of_a_lab_that_is_nowhere_is_still_nothing_to_remove(not_root, capsys):
    """Every folder read and the name not in them: `down` stays idempotent, exit code 0."""
    not_root(("ada",))
    assert cli.main(["down", "--name", "bo"]) == 0
    assert "nothing to remove" in capsys.readouterr().out


def test_class_down_refuses_a_roster_with_root_only_labs_before_touching_any(
    not_root, capsys, monkeypatch
):
    """Refused whole, with the command again under sudo; labs of other rosters are no reason
    (NewForbidden, as above)."""
    removed: list[str] = []
    monkeypatch.setattr("labkit.classroom.find_backends", lambda name: removed.append(name) or [])
    not_root(("learner02", "other"))
    assert cli.main(["class", "down", "--learners", "3"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "labkit: Sandbox labs on this machine that only root can use: learner02.",
        "Fix: Run it as root: `sudo labkit class down --learners 3`.",
    ]
    assert removed == []
    not_root(("other",))
    assert cli.main(["class", "down", "--learners", "2"]) == 0
    assert sorted(removed) == ["learner01", "learner02"]
