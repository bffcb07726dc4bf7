"""A lab survives its processes (issue 9, items 3 and 4): ``kill -9`` of the agent loses nothing
and every command brings it back; ``kill -9`` of ``labkit deploy`` at any point leaves nothing
that jams the next deploy; ``labkit up | head -2`` leaves a working lab; ``up`` rebuilds a lab
whose namespaces are gone from its state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import labkit
from labkit import scenarios
from labkit.course import grading
from labkit.sandbox import backend, naming
from labkit.sandbox.state import StateFile

SCENARIO = "01-web-across-nodes"
VARIANT = "unschedulable-database"  # takes the two database pods away again
KILL_AFTER = Path(__file__).with_name("data") / "kill_after.py"
KILLS = 20


def _labkit(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run the `labkit` command line in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "labkit.cli", *argv], capture_output=True, text=True, timeout=120
    )


def _agent_pid(lab_name: str) -> int:
    return int(Path(f"/run/labkit/{lab_name}/agent.pid").read_text())


def _kill_agent(lab_name: str) -> int:
    """``kill -9`` the lab's agent and wait until it is gone; its pid."""
    pid = _agent_pid(lab_name)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}/stat").exists() and time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if stat[0] == "Z":
            break
        time.sleep(0.01)
    return pid


def _pods(lab) -> dict[str, str]:
    """Every pod of the lab: name -> IP (empty while Pending)."""
    return {
        p["metadata"]["name"]: (p.get("status") or {}).get("podIP", "")
        for p in lab.get("pods", namespace=None)
    }


def _passes(lab, variant: str | None = None) -> list[str]:
    return [r.verdict for r in scenarios.run_checks(lab, SCENARIO, variant)]


# --------------------------------------------------------------------------- kill -9 of the agent


def test_every_command_brings_a_killed_agent_back_and_nothing_is_lost():
    lab_name = "tagentdied"
    backend.down(lab_name)
    try:
        lab = backend.up(lab_name, "calico", quiet=True)
        grading.deploy(lab, SCENARIO)  # on record, so `labkit check` grades it
        pods = _pods(lab)

        killed = _kill_agent(lab_name)
        status = _labkit("status", "--name", lab_name)
        assert status.returncode == 0, status.stderr
        assert all(name in status.stdout for name in pods)
        assert _agent_pid(lab_name) != killed, "status started a new agent"

        _kill_agent(lab_name)
        check = _labkit("check", SCENARIO, "--name", lab_name)
        assert check.returncode == 0, check.stdout + check.stderr  # every check passed

        _kill_agent(lab_name)
        deploy = _labkit("deploy", SCENARIO, "--variant", VARIANT, "--name", lab_name)
        assert deploy.returncode == 0, deploy.stderr
        scenarios.deploy(lab, SCENARIO)  # back to the working state, with new database pods
        pods = _pods(lab)

        _kill_agent(lab_name)
        attached = backend.attach(lab_name)
        assert attached is not None and _pods(attached) == pods
        assert _passes(attached) == ["pass", "pass"], "the new agent serves every pod"

        _kill_agent(lab_name)
        again = backend.up(lab_name, "calico", quiet=True)  # reuses the lab, never wipes it
        assert _pods(again) == pods

        _kill_agent(lab_name)
        learner = labkit.connect(backend="sandbox", cni="calico", name=lab_name)
        assert _pods(learner) == pods

        _kill_agent(lab_name)  # a Lab object held across the crash (a notebook's) heals too
        assert _passes(lab) == ["pass", "pass"]
    finally:
        backend.down(lab_name)


# --------------------------------------------------------------------------- kill -9 of deploy


def _assert_consistent(lab_name: str) -> None:
    """The lab's pod namespaces, /etc/netns folders and node-side veths are exactly those its
    state records, and no change is pending."""
    directory = Path(f"/run/labkit/{lab_name}")
    state = StateFile(directory).read()  # the whole state and its journal
    nets = [net for net in state["pods"].values() if not net.get("host_network")]
    recorded = {net["netns"] for net in nets}
    netns = {n for n in os.listdir("/run/netns") if naming.is_lab_pod_netns(lab_name, n)}
    etc = {n for n in os.listdir("/etc/netns") if naming.is_lab_pod_netns(lab_name, n)}
    assert netns == recorded and etc == recorded
    assert not (directory / "changing.json").exists()
    veths = []
    for index in range(len(naming.NODE_SHORTS)):
        out = subprocess.run(
            ["ip", "-n", naming.node_netns(lab_name, index), "-o", "link", "show"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        names = [line.split(": ", 2)[1].split("@", 1)[0] for line in out.splitlines()]
        veths += [name for name in names if naming.is_pod_host_iface(name)]
    assert sorted(veths) == sorted(net["iface"] for net in nets)


def _actions(argv: list[str]) -> int:
    """Run ``labkit argv`` to its end and return how many actions it took."""
    run = subprocess.run(
        [sys.executable, str(KILL_AFTER), "0", *argv], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    return int(run.stderr.splitlines()[-1])


def _spread(count: int, last: int) -> list[int]:
    """``count`` different kill points from 2 to ``last`` (1 is labkit looking for Docker)."""
    return sorted({2 + round(i * (last - 2) / (count - 1)) for i in range(count)})


def test_kill_9_of_deploy_at_20_points_then_the_next_deploy_succeeds():
    lab_name = "tdeploykill"
    backend.down(lab_name)
    lab = backend.up(lab_name, "calico", quiet=True)
    try:
        adding = ["deploy", SCENARIO, "--name", lab_name]  # 10 pods appear
        removing = [*adding, "--variant", VARIANT]  # 2 of them go
        trials = [(adding, k) for k in _spread(14, _actions(adding))]
        trials += [(removing, k) for k in _spread(6, _actions(removing))]
        assert len(trials) == KILLS
        for argv, kill_at in trials:
            if argv is adding:
                lab.delete(scenarios.get(SCENARIO).documents())
            else:
                scenarios.deploy(lab, SCENARIO)
            killed = subprocess.run(
                [sys.executable, str(KILL_AFTER), str(kill_at), *argv],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr)
            after = _labkit(*argv)
            assert after.returncode == 0, (kill_at, after.stderr)
            _assert_consistent(lab_name)
            if argv is adding:
                assert _passes(lab) == ["pass", "pass"], kill_at
            else:
                assert _passes(lab, VARIANT) == ["fail"], kill_at
    finally:
        backend.down(lab_name)


# --------------------------------------------------------------------------- closed pipes


def test_up_piped_into_head_leaves_a_working_lab():
    lab_name = "tpipe"
    backend.down(lab_name)
    labkit_cli = f"{sys.executable} -m labkit.cli"
    try:
        up = subprocess.run(
            [
                "bash",
                "-o",
                "pipefail",
                "-c",
                f"{labkit_cli} up --backend sandbox --name {lab_name} 2>&1 | head -2",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert up.returncode == 0, up.stdout + up.stderr
        assert len(up.stdout.splitlines()) == 2 and not up.stderr
        lab = backend.attach(lab_name)
        assert lab is not None
        scenarios.deploy(lab, SCENARIO)
        assert _passes(lab) == ["pass", "pass"]
        status = subprocess.run(
            ["bash", "-o", "pipefail", "-c", f"{labkit_cli} status --name {lab_name} | head -0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0 and not status.stderr, status.stderr
    finally:
        backend.down(lab_name)


# --------------------------------------------------------------------------- rebuilt from state


def test_up_rebuilds_a_lab_whose_namespaces_are_gone_and_keeps_its_objects():
    lab_name = "trebuild"
    backend.down(lab_name)
    try:
        lab = backend.up(lab_name, "flannel", quiet=True)
        scenarios.deploy(lab, SCENARIO)
        lab.add_outside_address("203.0.113.0/24", [8443])
        pods = _pods(lab)
        subprocess.run(["ip", "netns", "del", naming.node_netns(lab_name, 1)], check=True)
        assert backend.attach(lab_name) is None
        assert lab_name in backend.names()
        again = backend.up(lab_name, "flannel", quiet=True)
        assert _pods(again) == pods, "same pods, same addresses"
        assert _passes(again) == ["pass", "pass"]
        frontend = next(name for name in pods if name.startswith("frontend"))
        probe = again.probe(f"default/{frontend}", "203.0.113.9", 8443, timeout=2.0)
        assert probe.ok and probe.served_by == "outside", probe.detail
        _assert_consistent(lab_name)
    finally:
        backend.down(lab_name)
