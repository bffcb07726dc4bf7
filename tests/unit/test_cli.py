"""The CLI's refusals: one sentence of problem, one of fix, exit code 1, nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from labkit import cli, lab


@pytest.mark.parametrize(
    "argv, problem, fix",
    [
        (["up", "--cni", "weave"], "Unknown CNI 'weave'", "flannel, calico, cilium"),
        (["up", "--backend", "vm"], "Unknown backend 'vm'", "auto, kind, sandbox"),
        (["up", "--kube-proxy-mode", "userspace"], "Unknown kube-proxy mode", "iptables"),
        (
            ["up", "--backend", "sandbox", "--dry-run"],
            "--dry-run prints the Kind plan",
            "--backend kind --dry-run",
        ),
        (["doctor", "--backend", "vm"], "Unknown backend 'vm'", "auto, kind, sandbox"),
        (["doctor", "--cni", "weave"], "Unknown CNI", "calico"),
    ],
)
def test_bad_input_is_refused_with_fix(argv, problem, fix, capsys):
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert problem in err and "Fix:" in err and fix in err
    assert "Traceback" not in err


def test_up_says_which_backend_on_stderr_and_the_result_on_stdout(monkeypatch, capsys):
    class FakeLab:
        name, backend, cni = "netlab", "sandbox", "calico"

    class FakeBackend:
        @staticmethod
        def up(lab_name, cni, kube_proxy_mode):
            assert (lab_name, cni, kube_proxy_mode) == ("netlab", "calico", None)
            return FakeLab()

    monkeypatch.setattr(lab, "choose_backend", lambda backend: ("sandbox", "asked for sandbox"))
    monkeypatch.setattr(lab, "backend_module", lambda backend: FakeBackend)
    assert cli.main(["up", "--backend", "sandbox", "--cni", "calico"]) == 0
    captured = capsys.readouterr()
    assert "labkit: using the sandbox backend (asked for sandbox)." in captured.err
    assert "lab 'netlab' is up on sandbox with calico" in captured.out
    assert "using the" not in captured.out


@pytest.mark.parametrize("unbuffered", [True, False])
def test_a_reader_that_closed_the_pipe_ends_the_command_quietly(unbuffered):
    # `head -0` exits at once: every line labkit prints meets a closed pipe. Buffered (a
    # terminal's default), the lines reach the pipe only when stdout is flushed.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    run = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{sys.executable} -m labkit.cli deploy | head -0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert run.returncode == 0 and run.stderr == ""


def test_a_reader_that_left_early_keeps_the_commands_exit_status():
    """Output still buffered when the reader leaves: the status is the command's (a failed
    grading stays a failure under ``pipefail``), and nothing complains on stderr."""
    code = (
        "import sys\n"
        "from labkit import cli\n"
        "def fails(args):\n"
        "    print('x' * 1000)  # stays in the buffer until main flushes it\n"
        "    return 3\n"
        "cli._COMMANDS['deploy'] = fails\n"
        "sys.exit(cli.main(['deploy']))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    run = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f'{sys.executable} -c "$0" | head -0', code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert run.returncode == 3 and run.stderr == ""


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fly"])
    assert exit_info.value.code == 2


def test_auto_without_docker_or_root_names_both_ways_out(monkeypatch):
    monkeypatch.setattr(lab, "docker_engine_answers", lambda timeout=5.0: (False, "no engine"))
    monkeypatch.setattr(lab, "sandbox_possible", lambda: (False, "not root"))
    with pytest.raises(lab.LabError) as err:
        lab.choose_backend("auto")
    assert "Docker" in err.value.fix and "sandbox" in err.value.fix


def test_auto_prefers_kind_when_docker_answers(monkeypatch):
    monkeypatch.setattr(
        lab, "docker_engine_answers", lambda timeout=5.0: (True, "Docker engine 28 answers")
    )
    backend, why = lab.choose_backend("auto")
    assert backend == "kind" and "Docker engine 28" in why


def test_auto_falls_back_to_sandbox(monkeypatch):
    monkeypatch.setattr(lab, "docker_engine_answers", lambda timeout=5.0: (False, "no engine"))
    monkeypatch.setattr(lab, "sandbox_possible", lambda: (True, "Linux and root"))
    backend, why = lab.choose_backend("auto")
    assert backend == "sandbox" and "no engine" in why


def test_split_pod_ref():
    assert lab.split_pod_ref("shop/cart") == ("shop", "cart")
    assert lab.split_pod_ref("cart") == ("default", "cart")
    assert lab.split_pod_ref("cart", namespace="x") == ("x", "cart")
