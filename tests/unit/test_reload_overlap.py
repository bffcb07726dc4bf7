"""A change asks the agent to reload and loads the node rules while it does; readiness probes
and the change's end wait for the agent's answer, and its failure is the same LabError.

Upstream: kube-proxy programs a Service's rules on its own loop (kubernetes/kubernetes
pkg/proxy/iptables/proxier.go ``syncProxyRules``), whatever the kubelet is doing with the pods'
containers, and the kubelet probes a container only once it exists
(pkg/kubelet/prober/worker.go ``doProbe``: "Either the container has not been created yet, or
it was deleted", no probe until it has).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.errors import LabError
from labkit.sandbox import fabric_runner, netns_etc, readiness, workloads_publish
from labkit.sandbox.agent.client import AgentRequest
from labkit.sandbox.agent.files import SOCKET_FILE
from labkit.sandbox.dataplane import DataPlane
from labkit.sandbox.fabric import NodeNet, PodNet
from labkit.sandbox.store import ClusterStore


class FakeAgent:
    """A control socket that takes one command per connection and answers when told."""

    def __init__(self, directory: Path, answer: bytes) -> None:
        self.answer = answer
        self.received: list[str] = []
        self.release = threading.Event()
        self.got = threading.Event()
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(directory / SOCKET_FILE))
        self.server.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            self.received.append(conn.recv(1024).decode())
            self.got.set()
            self.release.wait(5)
            if self.answer:
                with contextlib.suppress(OSError):  # a client that timed out is gone
                    conn.sendall(self.answer)

    def close(self) -> None:
        self.release.set()
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A state directory short enough for a unix socket path."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ov", dir="/tmp") as name:
        yield Path(name)


def test_a_request_is_sent_at_once_and_its_answer_read_later(short_dir: Path) -> None:
    agent = FakeAgent(short_dir, b"ok 3\n")
    try:
        request = AgentRequest(str(short_dir), "reload", timeout=5)
        assert agent.got.wait(5) and agent.received == ["reload\n"]
        agent.release.set()
        assert request.answer() == "ok 3"
    finally:
        agent.close()


def test_an_agent_that_is_gone_closes_or_stays_silent_is_named(short_dir: Path) -> None:
    with pytest.raises(LabError, match="is not running"):
        AgentRequest(str(short_dir), "reload")
    agent = FakeAgent(short_dir, b"")
    try:
        request = AgentRequest(str(short_dir), "reload")
        agent.release.set()
        with pytest.raises(LabError, match="closed the connection without answering 'reload'"):
            request.answer()
    finally:
        agent.close()
    os.unlink(short_dir / SOCKET_FILE)
    agent = FakeAgent(short_dir, b"ok 1\n")
    try:
        with pytest.raises(LabError, match=r"did not answer 'reload' within 0\.2 s"):
            AgentRequest(str(short_dir), "reload", timeout=0.2).answer()
    finally:
        agent.close()


class ReadyStore:
    """What update_readiness records, as the store's ``set_pod_ready``."""

    def __init__(self) -> None:
        self.ready: dict[str, bool] = {}

    def set_pod_ready(self, namespace: str, name: str, ready: bool, reason: str = "") -> None:
        self.ready[f"{namespace}/{name}"] = ready


def _pod(name: str, probe: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "ports": [{"containerPort": 8080}]}
    if probe:
        container["readinessProbe"] = {"tcpSocket": {"port": 8080}}
    return {
        "metadata": {"namespace": "demo", "name": name},
        "spec": {"containers": [container]},
        "status": {"conditions": [{"type": "Ready", "status": "False"}]},
    }


def test_readiness_waits_for_the_agent_only_when_it_probes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events: list[str] = []
    node = NodeNet("w", 1, "lk-x-w", "172.18.0.3", "10.244.1.0/24", ("10.244.1.0/24",))
    nets = {
        f"demo/{n}": PodNet("demo", n, "w", f"10.244.1.{i}", f"lk-x-{n}", f"veth{n}")
        for i, n in enumerate(("a", "b"), 2)
    }

    def probe(netns: str, ip: str, check: Any) -> readiness.ProbeAnswer:
        events.append(f"probe {ip}")
        return readiness.ProbeAnswer(True, "tcp accepted")

    monkeypatch.setattr(readiness, "try_readiness", probe)
    store: Any = ReadyStore()
    pods = [_pod("a", False), _pod("b", False)]
    assert not readiness.update_readiness(store, pods, nets, [node], lambda: events.append("x"))
    assert events == []
    pods[1] = _pod("b", True)
    assert readiness.update_readiness(store, pods, nets, [node], lambda: events.append("served"))
    assert events == ["served", "probe 10.244.1.3"] and store.ready == {"demo/b": True}


def _converging_plane(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply: str, events: list[str]
) -> tuple[DataPlane, ClusterStore]:
    """A calico data plane whose namespaces, rules and agent are stand-ins that log ``events``."""
    monkeypatch.setattr(fabric_runner, "run_stages", lambda *a, **k: None)
    monkeypatch.setattr(netns_etc, "write_pod_etc", lambda *a, **k: None)
    plane = DataPlane("ov", "calico", tmp_path)

    def ask(directory: str) -> Any:
        events.append("ask")

        def answer() -> str:
            events.append("answer")
            return reply

        return answer

    monkeypatch.setattr(workloads_publish, "ask_reload", ask)
    monkeypatch.setattr(plane, "_load_rules", lambda *a, **k: events.append("rules"))
    monkeypatch.setattr(plane, "_route_load_balancers", lambda *a: events.append("routes"))
    store = ClusterStore.bootstrap("ov", "calico")
    store.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            }
        ]
    )
    return plane, store


def test_the_rules_load_while_the_agent_reloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    plane, store = _converging_plane(tmp_path, monkeypatch, "ok 9", events)
    plane.converge(store, {}, {}, plane.nodes(store))
    assert events == ["ask", "rules", "answer", "routes"]
    assert (tmp_path / "workloads.json").exists()


def test_an_agent_that_cannot_serve_fails_the_change_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    plane, store = _converging_plane(tmp_path, monkeypatch, "error pod x TCP port 80", events)
    with pytest.raises(LabError, match="could not serve every pod port") as raised:
        plane.converge(store, {}, {}, plane.nodes(store))
    assert raised.value.output == "error pod x TCP port 80"
    assert events == ["ask", "rules", "answer"]


@pytest.mark.parametrize("reply", ["ok 9", "error bad port"])
def test_a_rules_failure_still_waits_for_the_agent_whose_error_comes_first(
    reply: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    plane, store = _converging_plane(tmp_path, monkeypatch, reply, events)

    def failing(*args: Any, **kwargs: Any) -> None:
        events.append("rules")
        raise LabError("simulated iptables failure", "none")

    monkeypatch.setattr(plane, "_load_rules", failing)
    first = "simulated" if reply.startswith("ok") else "could not serve every pod port"
    with pytest.raises(LabError, match=first):
        plane.converge(store, {}, {}, plane.nodes(store))
    assert events == ["ask", "rules", "answer"]


def test_a_render_failure_after_a_node_began_loading_raises_only_once_that_load_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each node's load starts as soon as its rules are rendered: when the next node's render
    fails, the load already running ends (its record written) before the error is raised, and
    no later node is rendered or loaded."""
    plane = DataPlane("x", "calico", tmp_path)
    nodes = [
        NodeNet(f"n{i}", i, f"lk-x-n{i}", f"172.18.0.{i + 2}", "", (f"10.244.{i}.0/26",))
        for i in range(3)
    ]
    rendered: list[str] = []
    loaded: list[str] = []

    def render(view: Any, node: NodeNet, wanted: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        rendered.append(node.name)
        if node.name == "n1":
            raise LabError("render failed", "fix it")
        return {}, {}

    def sync(netns: str, rules: Any, sets: Any, full: bool) -> None:
        threading.Event().wait(0.2)  # still loading when n1's render fails
        loaded.append(netns)

    monkeypatch.setattr(plane, "render_rules", render)
    monkeypatch.setattr(plane, "_sync_rules", sync)
    with pytest.raises(LabError, match="render failed"):
        plane._load_rules(None, nodes, {}, full=False)
    assert rendered == ["n0", "n1"] and loaded == ["lk-x-n0"]
