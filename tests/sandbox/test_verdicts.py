"""One failure, one class (issue 9.6) on real namespaces: a Service without endpoints is refused
every time, by ClusterIP from a pod and by NodePort from outside, because the lab's namespaces
do not rate-limit the ICMP errors kube-proxy's REJECT sends; the host's own setting is untouched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.checks.outside_reach import external_to_service
from labkit.checks.service_reach import pod_to_service
from labkit.lab import OUTSIDE

pytestmark = pytest.mark.sandbox

RATEMASK = Path("/proc/sys/net/ipv4/icmp_ratemask")
REPEATS = 20


def ghost(name: str, type_: str = "ClusterIP", node_port: int | None = None) -> dict:
    """A Service in demo whose selector matches no pod: it has no endpoints."""
    port = {"name": "http", "port": 80, "targetPort": 8080}
    if node_port:
        port["nodePort"] = node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {"type": type_, "selector": {"app": "ghost"}, "ports": [port]},
    }


GHOSTS = [ghost("ghost"), ghost("ghost-np", "NodePort", 30099)]


@pytest.fixture
def ghosts(any_lab):
    """The session lab with both endpoint-less Services applied, removed afterwards."""
    any_lab.apply(GHOSTS)
    try:
        yield any_lab
    finally:
        any_lab.delete(GHOSTS)


def test_a_service_without_endpoints_is_refused_every_time(ghosts):
    host_mask = RATEMASK.read_text()
    cluster = [
        pod_to_service(ghosts, "demo/client-a", "ghost", namespace="demo", requests=10)
        for _ in range(REPEATS)
    ]
    node_port = [
        external_to_service(ghosts, "ghost-np", namespace="demo", requests=9)
        for _ in range(REPEATS)
    ]
    assert {(r.verdict, r.failure) for r in cluster} == {("fail", "refused")}, cluster[0]
    assert {(r.verdict, r.failure) for r in node_port} == {("fail", "refused")}, node_port[0]
    assert all("0 of 10 connected; 10 refused" in str(r) for r in cluster)
    assert all("0 of 3 connected; 3 refused" in str(r) for r in node_port)
    assert RATEMASK.read_text() == host_mask


def test_a_burst_of_connections_to_one_node_port_is_refused_to_the_last(ghosts):
    node_ip = ghosts.get("nodes", namespace=None)[0]["status"]["addresses"][0]["address"]
    probes = ghosts.probe_many([(OUTSIDE, node_ip, 30099)] * 3 * REPEATS)
    assert {p.outcome for p in probes} == {"refused"}


def test_the_labs_namespaces_exempt_destination_unreachable_from_the_rate_limit(any_lab):
    wanted = str(6168 & ~(1 << 3))
    node = any_lab.node_exec(
        any_lab.get("nodes", namespace=None)[0]["metadata"]["name"], ["cat", str(RATEMASK)]
    )
    pod = any_lab.exec("client-a", ["cat", str(RATEMASK)], namespace="demo")
    assert node.stdout.strip() == wanted and pod.stdout.strip() == wanted
