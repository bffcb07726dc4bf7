"""The Kind backend against a real cluster: nodes, apply/get/delete, exec, node_exec, probes, DNS,
NetworkPolicy enforcement per CNI, attach, and a second `up` attaching."""

from __future__ import annotations

import pytest

from labkit.checks.result import poll, settle_wait
from labkit.errors import LabError
from labkit.kind import backend, pins
from labkit.lab import OUTSIDE

pytestmark = pytest.mark.kind

NS = "lk-live"
POLICY_WAIT_S = 5.0
"""What the policy checks wait by default (checks.pod_reach, wait=5.0)."""


@pytest.fixture(scope="module")
def cni(settings):
    return settings["cni"]


@pytest.fixture(scope="module")
def name(settings):
    return settings["name"]


SERVER = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": NS},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "agnhost",
                        "image": pins.AGNHOST_IMAGE,
                        "args": ["netexec", "--http-port=8080", "--udp-port=8081"],
                        "ports": [
                            {"containerPort": 8080, "protocol": "TCP"},
                            {"containerPort": 8081, "protocol": "UDP"},
                        ],
                        "readinessProbe": {"httpGet": {"path": "/hostname", "port": 8080}},
                    }
                ]
            },
        },
    },
}
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "namespace": NS},
    "spec": {
        "type": "NodePort",
        "selector": {"app": "web"},
        "ports": [
            {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            {"name": "udp", "port": 81, "targetPort": 8081, "protocol": "UDP"},
        ],
    },
}
# A client whose image has no shell and no tools at all: probes must still work from it.
CLIENT = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "client", "namespace": NS, "labels": {"app": "client"}},
    "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.10"}]},
}
DENY_WEB = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "deny-web", "namespace": NS},
    "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]},
}


@pytest.fixture(scope="module")
def workload(lab, wait_for_pods):
    refs = lab.apply(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
            SERVER,
            SERVICE,
            CLIENT,
        ]
    )
    assert [r.kind for r in refs] == ["Namespace", "Deployment", "Service", "Pod"]
    servers = wait_for_pods(lab, NS, "app=web", 2)
    client = wait_for_pods(lab, NS, "app=client", 1)[0]
    yield {"servers": servers, "client": client, "service": lab.get("svc", "web", namespace=NS)[0]}
    lab.delete([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}])


def test_nodes_labels_and_pod_cidrs(lab, cni, name):
    nodes = {n["metadata"]["name"]: n for n in lab.get("nodes", namespace=None)}
    assert set(nodes) == {f"{name}-control-plane", f"{name}-worker", f"{name}-worker2"}
    labels = {node: n["metadata"]["labels"] for node, n in nodes.items()}
    assert labels[f"{name}-control-plane"]["ingress-ready"] == "true"
    assert labels[f"{name}-worker"]["labkit.dev/pool"] == "apps"
    assert labels[f"{name}-worker2"]["labkit.dev/pool"] == "data"
    prefix = "192.168." if cni == "calico" else "10.244."
    assert all(n["spec"]["podCIDR"].startswith(prefix) for n in nodes.values())
    assert all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
        for n in nodes.values()
    )


def test_attach_finds_the_same_lab(lab, cni, name):
    again = backend.attach(name)
    assert again is not None and again.cni == cni and again.kube_proxy_mode == lab.kube_proxy_mode
    assert name in backend.names()


def test_second_up_with_the_same_name_attaches(lab, cni, name):
    """issue 14.2: `make lab` twice attaches to the running lab, as connect() does."""
    again = backend.up(name, cni)
    assert again.uid() == lab.uid() and again.cni == cni


def test_capabilities_match_the_cni(lab, cni):
    assert lab.capabilities.network_policy is (cni != "flannel")


def test_probe_from_a_shell_less_pod_through_the_service(lab, workload):
    client_ip = workload["client"]["status"]["podIP"]
    names = {p["metadata"]["name"] for p in workload["servers"]}
    probes = lab.probe_many([(f"{NS}/client", "web", 80)] * 8, timeout=2.0)
    assert all(p.outcome == "connected" for p in probes), probes
    assert {p.served_by for p in probes} <= names
    assert all(p.client_ip == client_ip for p in probes)  # pod to Service: no SNAT


def test_probe_udp_and_pod_ip(lab, workload):
    server = workload["servers"][0]
    udp = lab.probe(f"{NS}/client", f"{NS}/{server['metadata']['name']}", 8081, "UDP", timeout=2.0)
    assert udp.outcome == "connected" and udp.served_by == server["metadata"]["name"]


def test_refused_and_dns_outcomes(lab, workload):
    server_ip = workload["servers"][0]["status"]["podIP"]
    assert lab.probe(f"{NS}/client", server_ip, 9999, timeout=2.0).outcome == "refused"
    assert lab.probe(f"{NS}/client", "no-such-service", 80, timeout=2.0).outcome == "dns"


def test_resolve_through_the_pods_search_path(lab, workload):
    assert lab.resolve(f"{NS}/client", "web") == [workload["service"]["spec"]["clusterIP"]]
    assert lab.resolve(f"{NS}/client", "kubernetes.default") == ["10.96.0.1"]
    assert lab.resolve(f"{NS}/client", "nothing-here") == []
    srv = lab.resolve(f"{NS}/client", "_http._tcp.web", "SRV")
    assert srv and srv[0].split()[2] == "80"


def test_network_policy_is_enforced_unless_flannel(lab, workload, cni):
    """kubernetes test/e2e/network/netpol/network_policy.go: a policy takes effect a moment after
    it is created, so the outcome is polled with the checks' own bounded wait
    (checks.result.poll, settle_wait), never judged from one probe."""
    expected = "connected" if cni == "flannel" else "timeout"
    lab.apply(DENY_WEB)
    try:
        seen = poll(
            lambda: lab.probe(f"{NS}/client", "web", 80, timeout=2.0).outcome,
            lambda outcome: outcome == expected,
            wait=settle_wait(lab, POLICY_WAIT_S),
        )
        assert seen.converged, seen.observations
    finally:
        lab.delete(DENY_WEB)


def test_exec_and_exit_codes(lab, workload):
    pod = workload["servers"][0]["metadata"]["name"]
    result = lab.exec(f"{NS}/{pod}", ["/agnhost", "--help"])
    assert result.ok and "netexec" in result.stdout
    failed = lab.exec(pod, "exit 3", namespace=NS)
    assert failed.returncode == 3


def test_node_exec(lab, name):
    node = f"{name}-worker"
    result = lab.node_exec(node, "cat /etc/hostname")
    assert result.ok and result.stdout.strip() == node
    with pytest.raises(LabError):
        lab.node_exec("not-a-node", "true")


def test_invalid_batch_applies_nothing(lab, workload):
    ok_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "should-not-exist", "namespace": NS},
    }
    bad = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "bad", "namespace": NS},
        "spec": {"ports": [{"port": "eighty"}]},
    }
    with pytest.raises(LabError):
        lab.apply([ok_map, bad])
    assert lab.get("configmap", "should-not-exist", namespace=NS) == []


def test_outside_probe_to_a_node_port(lab, workload, name):
    node_port = next(
        p["nodePort"] for p in workload["service"]["spec"]["ports"] if p["name"] == "http"
    )
    node = lab.get("nodes", f"{name}-worker", namespace=None)[0]
    ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    probe = lab.probe(OUTSIDE, ip, node_port, timeout=2.0)
    assert probe.outcome == "connected" and probe.served_by
