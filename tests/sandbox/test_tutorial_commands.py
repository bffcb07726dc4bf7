"""Issue 11's acceptance: every `kubectl` command of the tutorial, replayed on a sandbox lab as a
learner types it (a subprocess, or a pseudo-terminal for ``-it``), with names mapped to our
scenarios; each prints kubectl's shape (headers, describe fields, ``-o yaml`` structure, exec's
output and exit code) or the one-line refusal the table names. The table is
data/tutorial_commands.yaml. Lab ``ttut``, Calico."""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
import yaml

from labkit import scenarios

pytestmark = pytest.mark.sandbox
LAB = "ttut"
TABLE = yaml.safe_load((Path(__file__).with_name("data") / "tutorial_commands.yaml").read_text())
KUBECTL = [sys.executable, "-m", "labkit.cli", "kubectl", "--name", LAB]
SCENARIOS = (
    "02-expose-nginx",
    "05-sidecar-logging",
    "08-public-web-loadbalancer",
    "13-sidecar-proxy",
    "16-pci-payment-isolation",
)
FIELD = re.compile(r"\{([a-z_]+)\}")  # the table's {field}; never matches a regex's {4}


@pytest.fixture(scope="module")
def lab():
    from labkit.sandbox import backend

    if os.geteuid() != 0:
        pytest.skip("sandbox labs need root")
    backend.down(LAB)
    lab = backend.up(LAB, "calico", quiet=True)
    try:
        for name in SCENARIOS:
            scenarios.deploy(lab, name)
        scenarios.deploy(lab, "17-service-without-endpoints", "selector-needs-tier")
        yield lab
    finally:
        backend.down(LAB)


@pytest.fixture(scope="module")
def fields(lab) -> dict[str, str]:
    """The lab's names and addresses the table's commands and expectations refer to."""

    def first(kind: str, namespace: str, prefix: str) -> dict[str, Any]:
        return next(
            o
            for o in lab.get(kind, namespace=namespace)
            if o["metadata"]["name"].startswith(prefix)
        )

    kube_proxy = first("pods", "kube-system", "kube-proxy-")
    return {
        "nginx_ip": first("pods", "default", "nginx-pod")["status"]["podIP"],
        "nginx_svc_ip": first("services", "default", "nginx-service")["spec"]["clusterIP"],
        "payment_ip": first("pods", "payment-processing", "payment-processor-")["status"]["podIP"],
        "kube_proxy": kube_proxy["metadata"]["name"],
        "kube_proxy_node_ip": kube_proxy["status"]["hostIP"],
        "postgres_pod": first("pods", "default", "postgres-")["metadata"]["name"],
    }


def run_plain(argv: list[str]) -> tuple[int, str, str]:
    done = subprocess.run(
        [*KUBECTL, *argv], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    return done.returncode, done.stdout, done.stderr


def run_pty(argv: list[str], shell: bool) -> tuple[int, str, str]:
    """The command on a pseudo-terminal (stdout and stderr together); with ``shell``, type
    ``hostname`` and ``exit`` into the shell it opens."""
    child = pexpect.spawn(KUBECTL[0], [*KUBECTL[1:], *argv], encoding="utf-8", timeout=30)
    child.setwinsize(40, 160)
    child.logfile_read = transcript = io.StringIO()
    if shell:
        child.expect("try pressing enter.")
        child.sendline("hostname")
        child.sendline("exit")
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, transcript.getvalue().replace("\r\n", "\n"), ""


def format_text(text: str, fields: dict[str, str], regex: bool) -> str:
    """``text`` with each ``{field}`` replaced by the lab's value (escaped in a pattern)."""
    return FIELD.sub(lambda m: re.escape(fields[m[1]]) if regex else fields[m[1]], text)


@pytest.mark.parametrize("entry", TABLE, ids=[f"line{e['line']}" for e in TABLE])
def test_tutorial_command_on_the_sandbox(lab, fields, entry):
    if "before" in entry:
        assert run_plain(shlex.split(entry["before"]))[0] == 0
    argv = shlex.split(format_text(entry["run"], fields, regex=False))
    terminal = entry["terminal"]
    code, out, err = (
        run_plain(argv) if terminal == "plain" else run_pty(argv, shell=terminal == "shell")
    )
    expect = entry["expect"]
    assert code == expect["code"], (out, err)
    if "header" in expect:
        assert out.splitlines()[0].split() == expect["header"].split()
    for pattern in expect.get("shows", []):
        assert re.search(format_text(pattern, fields, regex=True), out), (pattern, out)
    if "stderr" in expect:
        assert err == expect["stderr"]
    if "stderr_starts" in expect:
        assert len(err.splitlines()) == 1
        assert err.startswith(format_text(expect["stderr_starts"], fields, regex=False))
    if "yaml" in expect:
        assert list(yaml.safe_load(out)) == expect["yaml"]


def test_describe_shows_the_sidecars_shared_volume(lab):
    """The tutorial's sidecar pod shares its logs through an emptyDir: describe shows it (the
    sandbox mounts no volumes, but the object declares it, as `ls` at line 283 cannot show)."""
    code, out, _ = run_plain(["describe", "pod", "app-pod"])
    assert code == 0
    assert "      /var/log/app from app-logs (rw)\n" in out
    assert "      /var/log/app from app-logs (ro)\n" in out
    assert re.search(r"(?m)^  app-logs:\n    Type: +EmptyDir \(a temporary directory", out)
