"""`labkit kubectl` as a command: the CLI hands kubectl's arguments over untouched, Kind runs the
real kubectl aimed at the lab's kubeconfig and context (planned here with fakes), the sandbox
serves the command from the lab, and no lab is one LabError."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from labkit import cli
from labkit.errors import LabError
from labkit.kubectl import run as run_module
from labkit.kubectl.kind import kind_argv
from labkit.values import DEFAULT_LAB_NAME


def test_kind_argv_aims_at_the_labs_context_and_passes_arguments_unchanged():
    argv = kind_argv("netlab", ["get", "pods", "-o", "wide"], "/usr/bin/kubectl", Path("/k/c"))
    assert argv == [
        "/usr/bin/kubectl", "--kubeconfig", "/k/c", "--context", "kind-netlab",
        "get", "pods", "-o", "wide",
    ]  # fmt: skip


def test_run_on_kind_execs_kubectl_and_returns_its_exit_code(monkeypatch):
    from labkit.kind import plan, tools

    ran = []
    monkeypatch.setattr(run_module, "find_backends", lambda name: ["kind"])
    monkeypatch.setattr(tools, "find", lambda tool: f"/opt/bin/{tool}")
    monkeypatch.setattr(
        plan,
        "default_paths",
        lambda name: SimpleNamespace(user_kubeconfig=Path("/home/me/.kube/config")),
    )
    monkeypatch.setattr(
        subprocess, "run", lambda argv, check: ran.append(argv) or SimpleNamespace(returncode=3)
    )
    assert run_module.run("netlab", ["exec", "-it", "web", "--", "sh"]) == 3
    assert ran == [
        [
            "/opt/bin/kubectl", "--kubeconfig", "/home/me/.kube/config", "--context", "kind-netlab",
            "exec", "-it", "web", "--", "sh",
        ]
    ]  # fmt: skip


class _Lab:
    def get(self, kind, name=None, namespace="default", selector=None):
        return []


def test_run_on_the_sandbox_serves_from_the_lab(monkeypatch, capsys):
    monkeypatch.setattr(run_module, "find_backends", lambda name: ["sandbox"])
    monkeypatch.setattr(
        run_module, "backend_module", lambda name: SimpleNamespace(attach=lambda lab_name: _Lab())
    )
    assert run_module.run("netlab", ["get", "pods"]) == 0
    assert capsys.readouterr().err == "No resources found in default namespace.\n"
    assert run_module.run("netlab", ["get", "pod", "web"]) == 1


def test_no_lab_is_one_lab_error(monkeypatch):
    monkeypatch.setattr(run_module, "find_backends", lambda name: [])
    with pytest.raises(LabError, match="No running lab named 'gone'"):
        run_module.run("gone", ["get", "pods"])
    monkeypatch.setattr(run_module, "find_backends", lambda name: ["sandbox"])
    monkeypatch.setattr(
        run_module, "backend_module", lambda name: SimpleNamespace(attach=lambda n: None)
    )
    with pytest.raises(LabError, match="does not answer"):
        run_module.run("gone", ["get", "pods"])


@pytest.mark.parametrize(
    ("argv", "lab", "args"),
    [
        (["kubectl", "--name", "l2", "get", "pods", "-A"], "l2", ["get", "pods", "-A"]),
        (["kubectl", "--name=l2", "-n", "x", "get", "po"], "l2", ["-n", "x", "get", "po"]),
        (["kubectl", "get", "svc", "--name", "x"], DEFAULT_LAB_NAME, ["get", "svc", "--name", "x"]),
        (["kubectl"], DEFAULT_LAB_NAME, []),
    ],
)
def test_the_cli_hands_kubectls_arguments_over_untouched(monkeypatch, argv, lab, args):
    seen = []
    monkeypatch.setattr(run_module, "run", lambda name, given: seen.append((name, given)) or 0)
    assert cli.main(argv) == 0
    assert seen == [(lab, args)]


def test_kubectl_help_is_labkits_and_errors_go_through_lab_error(monkeypatch, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["kubectl", "--help"])
    assert done.value.code == 0 and "labkit kubectl [--name LAB] ARGS..." in capsys.readouterr().out
    monkeypatch.setattr(run_module, "find_backends", lambda name: [])
    assert cli.main(["kubectl", "get", "pods"]) == 1
    assert f"No running lab named {DEFAULT_LAB_NAME!r}" in capsys.readouterr().err


def test_hints_name_only_the_verbs_the_sandbox_serves():
    from labkit import commands
    from labkit.kubectl import args

    assert (*args.READ_VERBS, *args.POD_VERBS) == commands.SANDBOX_KUBECTL_VERBS
    assert commands.kubectl("get pods").sandbox == "labkit kubectl --name {lab} get pods"
    with pytest.raises(ValueError, match="needs a sandbox spelling"):
        commands.kubectl("delete pod web")


def test_every_kind_the_sandbox_stores_is_served_by_get():
    """Hints name `get <kind> -A` for any stored kind (commands.OBJECTS), so each must work."""
    from labkit.kubectl.resources import find
    from labkit.printers.columns import COLUMNS
    from labkit.sandbox.cluster.admission import MODELLED_KINDS

    for kind in MODELLED_KINDS:
        resource = find(kind.lower())
        assert resource is not None and resource.kind in COLUMNS, kind
