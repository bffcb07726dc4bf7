"""Bringing sandbox labs up and down: nothing leaks into the host, crashes are cleaned up, labs
with different names live side by side."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from labkit.errors import LabError
from labkit.lab import OUTSIDE
from labkit.sandbox import backend, naming

SMALL = [
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "echo", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "echo"}},
            "template": {
                "metadata": {"labels": {"app": "echo"}},
                "spec": {
                    "containers": [
                        {"name": "c", "image": "agnhost", "ports": [{"containerPort": 8080}]}
                    ]
                },
            },
        },
    },
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "echo", "namespace": "default"},
        "spec": {
            "type": "NodePort",
            "selector": {"app": "echo"},
            "ports": [{"port": 80, "targetPort": 8080}],
        },
    },
]


def _exercise(lab):
    lab.apply(SMALL)
    node_port = lab.get("svc", "echo", "default")[0]["spec"]["ports"][0]["nodePort"]
    probe = lab.probe(OUTSIDE, "172.18.0.3", node_port, timeout=2.0)
    assert probe.ok, probe.detail
    assert probe.served_by.startswith("echo-")
    assert lab.resolve(f"default/{probe.served_by}", "echo") == [
        lab.get("svc", "echo")[0]["spec"]["clusterIP"]
    ]
    return probe


def _agent_pid(lab_name: str) -> int:
    """The pid of the lab's workload agent, from its pid file."""
    with open(f"/run/labkit/{lab_name}/agent.pid") as f:
        return int(f.read())


def _assert_same(before, after):
    for key in before:
        assert before[key] == after[key], (
            f"{key} changed:\nbefore {before[key]}\nafter  {after[key]}"
        )


@pytest.mark.parametrize("cni", ["flannel", "calico"])
def test_down_leaves_the_host_exactly_as_it_was(cni, snapshot, netns_inodes, processes_inside):
    backend.down("tclean")
    before = snapshot("tclean")
    fds = len(os.listdir("/proc/self/fd"))
    lab = backend.up("tclean", cni, quiet=True)
    _exercise(lab)
    inodes = netns_inodes("tclean")
    assert lab.exec(
        f"default/{lab.get('pods', selector='app=echo')[0]['metadata']['name']}",
        "ip -o link show eth0",
    ).ok
    pod_name = lab.get("pods", selector="app=echo")[0]["metadata"]["name"]
    assert os.path.isdir(f"/etc/netns/{naming.pod_netns('tclean', 'default', pod_name)}")
    assert backend.down("tclean") is True
    assert backend.down("tclean") is False, "down is idempotent"
    assert not processes_inside(inodes)
    _assert_same(before, snapshot("tclean"))
    assert len(os.listdir("/proc/self/fd")) == fds
    assert backend.attach("tclean") is None
    assert "tclean" not in backend.names()


def test_twenty_up_down_cycles_leak_nothing(snapshot):
    before = snapshot("tcycle")
    fds = len(os.listdir("/proc/self/fd"))
    for i in range(20):
        lab = backend.up("tcycle", "calico" if i % 2 else "flannel", quiet=True)
        if i % 5 == 0:
            _exercise(lab)
        backend.down("tcycle")
    _assert_same(before, snapshot("tcycle"))
    assert len(os.listdir("/proc/self/fd")) == fds


UP_IN_CHILD = (
    "import sys; from labkit.sandbox import backend; "
    "backend.up('tkill', sys.argv[1], quiet=True); print('up', flush=True)"
)


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.4, 0.7])
def test_kill_9_during_up_then_up_and_down_leave_nothing(delay, snapshot):
    backend.down("tkill")
    before = snapshot("tkill")
    child = subprocess.Popen(
        [sys.executable, "-c", UP_IN_CHILD, "flannel"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    lab = backend.up("tkill", "flannel", quiet=True)
    _exercise(lab)
    backend.down("tkill")
    _assert_same(before, snapshot("tkill"))


def test_kill_9_during_up_then_down_leaves_nothing(snapshot):
    backend.down("tkill")
    before = snapshot("tkill")
    child = subprocess.Popen(
        [sys.executable, "-c", UP_IN_CHILD, "calico"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not os.path.exists("/run/labkit/tkill/agent.pid") and time.monotonic() < deadline:
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert "tkill" in backend.names()
    assert backend.attach("tkill") is None or backend.attach("tkill").cni == "calico"
    backend.down("tkill")
    _assert_same(before, snapshot("tkill"))


def test_two_labs_side_by_side_do_not_see_each_other(snapshot):
    for lab_name in ("tpair", "tpair-b"):
        backend.down(lab_name)
    before = snapshot("tpair", "tpair-b")
    first = backend.up("tpair", "flannel", quiet=True)
    second = backend.up("tpair-b", "flannel", quiet=True)
    try:
        p1 = _exercise(first)
        _exercise(second)
        assert {"tpair", "tpair-b"} <= set(backend.names())
        # The same addresses exist in both labs; each answers from its own pods.
        assert p1.served_by in {
            p["metadata"]["name"] for p in first.get("pods", selector="app=echo")
        }
        pod = second.get("pods", selector="app=echo")[0]
        assert second.probe(
            OUTSIDE, "172.18.0.3", second.get("svc", "echo")[0]["spec"]["ports"][0]["nodePort"]
        ).ok
        assert backend.down("tpair") is True
        # Lab "tpair" never claims "tpair-b"'s namespaces (its names start with lk-tpair- too).
        assert backend.attach("tpair-b") is not None
        assert second.exec(f"default/{pod['metadata']['name']}", "ip -4 -o addr show eth0").ok
        _exercise(second)
        assert "tpair" not in backend.names()
    finally:
        backend.down("tpair")
        backend.down("tpair-b")
    _assert_same(before, snapshot("tpair", "tpair-b"))


def test_up_reuses_a_running_lab_and_refuses_another_cni():
    backend.down("treuse")
    try:
        lab = backend.up("treuse", "flannel", quiet=True)
        again = backend.up("treuse", "flannel", quiet=True)
        assert again.name == lab.name and backend.attach("treuse") is not None
        with pytest.raises(LabError, match="already running with flannel"):
            backend.up("treuse", "calico", quiet=True)
    finally:
        backend.down("treuse")


def test_up_prints_its_steps(capfd):
    backend.down("tsay")
    try:
        backend.up("tsay", "calico")
        err = capfd.readouterr().err
        assert "Building 3 node namespaces" in err and " s" in err
        assert "Lab 'tsay' is up" in err and "NetworkPolicy enforced" in err
    finally:
        backend.down("tsay")


def test_doctor_checks_pass_here_and_clean_up(snapshot):
    before = snapshot()
    lines = backend.doctor_checks()
    failed = [line for line in lines if not line.ok and line.required]
    assert not failed, failed
    names = {line.name for line in lines}
    assert {
        "root",
        "network namespaces",
        "veth pairs",
        "bridges",
        "VXLAN",
        "iptables nat (statistic, DNAT, MASQUERADE)",
    } <= names
    _assert_same(before, snapshot())


def test_two_processes_bringing_up_one_lab_get_one_lab(snapshot):
    backend.down("trace")
    before = snapshot("trace")
    code = (
        "from labkit.sandbox import backend; print(backend.up('trace', 'flannel', quiet=True).name)"
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [c.communicate(timeout=60) for c in children]
    assert all(c.returncode == 0 for c in children), outputs
    lab = backend.attach("trace")
    assert lab is not None
    _exercise(lab)
    backend.down("trace")
    _assert_same(before, snapshot("trace"))


def test_a_change_restarts_an_agent_that_died():
    backend.down("theal")
    try:
        lab = backend.up("theal", "calico", quiet=True)
        os.kill(_agent_pid("theal"), signal.SIGKILL)
        time.sleep(0.1)
        probe = _exercise(lab)  # apply restarts the agent; the probe proves every pod serves again
        assert probe.ok
        assert backend.attach("theal") is not None
    finally:
        backend.down("theal")


def _reaped(proc: subprocess.Popen[bytes]) -> bool:
    """Wait briefly for ``proc`` to end; kill it (and say so) when it does not."""
    try:
        proc.wait(timeout=5)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


def test_down_stops_what_a_learner_left_running_in_a_pod():
    # lab.exec's processes end with its command (confined); a root shell on the host that
    # entered the pod's namespace (`ip netns exec`) can still leave one behind.
    lab = backend.up("tbgproc", "flannel", quiet=True)
    left = None
    try:
        lab.apply(SMALL)
        pod = lab.get("pods", namespace="default", selector="app=echo")[0]["metadata"]["name"]
        netns = naming.pod_netns("tbgproc", "default", pod)
        left = subprocess.Popen(
            ["ip", "netns", "exec", netns, "sleep", "87654"], stdout=subprocess.DEVNULL
        )
        time.sleep(0.2)
        assert subprocess.run(["pgrep", "-f", "sleep 87654"], capture_output=True).returncode == 0
    finally:
        backend.down("tbgproc")
        stopped = left is None or _reaped(left)
    assert stopped, "down left the process running"


def test_a_lab_object_used_after_down_refuses_and_recreates_nothing():
    lab = backend.up("tstale", "flannel", quiet=True)
    backend.down("tstale")
    with pytest.raises(LabError):
        lab.apply(SMALL)
    assert not os.path.exists(naming.state_dir("tstale"))
    assert "tstale" not in backend.names()
