"""Kubernetes' networking e2e cases (test/e2e/network/networking.go "Granular Checks: Services" and
test/e2e/common/network/networking.go "Granular Checks: Pods") on a Calico sandbox lab.

Both build upstream's ``NetworkingTestConfig`` (test/e2e/framework/network/utils.go): a netexec
``netserver-<i>`` pod on each worker (HTTP 8083, UDP 8081), a NodePort Service
``node-port-service`` and a ClientIP-affine ``session-affinity-service`` in front of them (HTTP 80
and UDP 90), a ``test-container-pod`` and a host-network ``host-test-container-pod``. Upstream
dials through the test container's netexec ``/dial``; here ``lab.probe`` makes the same
connections from the same pod and reads who answered (``/hostname``, or UDP ``hostname``), and
``DialEchoFromTestContainer`` sends the same echo request from that pod.
"""

from __future__ import annotations

import pytest
from e2e_jig import agnhost_pod, module_lab, namespace, service

NS = "nettest"
HTTP, UDP = 8083, 8081
CLUSTER_HTTP, CLUSTER_UDP = 80, 90
MAX_TRIES = 10
SELECTOR = {"selector-nettest": "true"}


@pytest.fixture(scope="module")
def lab():
    yield from module_lab("enw", "calico")


def _netserver(i: int, node: str) -> dict:
    ports = [
        {"name": "http", "containerPort": HTTP},
        {"name": "udp", "containerPort": UDP, "protocol": "UDP"},
    ]
    args = ["netexec", f"--http-port={HTTP}", f"--udp-port={UDP}"]
    return agnhost_pod(f"netserver-{i}", NS, args, ports, SELECTOR, node=node)


def _service(name: str, **spec) -> dict:
    ports = [
        {"name": "http", "port": CLUSTER_HTTP, "protocol": "TCP", "targetPort": HTTP},
        {"name": "udp", "port": CLUSTER_UDP, "protocol": "UDP", "targetPort": UDP},
    ]
    return service(name, NS, ports, type="NodePort", selector=SELECTOR, **spec)


class Config:
    """``NetworkingTestConfig`` as applied to the lab: its pods, Services and addresses."""

    def __init__(self, lab) -> None:
        self.lab = lab
        self.nodes = sorted(n["metadata"]["name"] for n in lab.get("nodes", None, None))[1:]
        docs = [namespace(NS)]
        docs += [_netserver(i, node) for i, node in enumerate(self.nodes)]
        docs += [
            _service("node-port-service"),
            _service("session-affinity-service", sessionAffinity="ClientIP"),
        ]
        test_ports = [{"containerPort": 9080}, {"containerPort": UDP, "protocol": "UDP"}]
        test_args = ["netexec", "--http-port=9080", f"--udp-port={UDP}"]
        docs.append(
            agnhost_pod("test-container-pod", NS, test_args, test_ports, node=self.nodes[0])
        )
        docs.append(
            agnhost_pod("host-test-container-pod", NS, node=self.nodes[0], host_network=True)
        )
        lab.apply(docs)
        self.endpoint_pods = [f"netserver-{i}" for i in range(len(self.nodes))]
        svc = lab.get("service", "node-port-service", NS)[0]["spec"]
        self.cluster_ip = svc["clusterIP"]
        self.node_http, self.node_udp = (p["nodePort"] for p in svc["ports"])
        addresses = lab.get("node", self.nodes[0], None)[0]["status"]["addresses"]
        self.node_ip = next(a["address"] for a in addresses if a["type"] == "InternalIP")
        self.affinity_ip = lab.get("service", "session-affinity-service", NS)[0]["spec"][
            "clusterIP"
        ]

    def pod_ip(self, pod: str) -> str:
        return self.lab.get("pod", pod, NS)[0]["status"]["podIP"]

    def dial(
        self,
        src: str,
        protocol: str,
        ip: str,
        port: int,
        expected: set[str],
        tries: int = MAX_TRIES,
    ) -> None:
        """``DialFromContainer``: the set of hostnames that answered ``tries`` connections is
        exactly ``expected`` (none answering when it is empty)."""
        proto = "UDP" if protocol == "udp" else "TCP"
        probes = self.lab.probe_many([(f"{NS}/{src}", ip, port, proto)] * tries)
        assert {p.served_by for p in probes if p.ok} == expected, [p.detail for p in probes]


@pytest.fixture
def config(lab):
    """The config, applied afresh (what a case deleted comes back)."""
    return Config(lab)


def test_pod_service_http(config):
    """e2e test/e2e/network/networking.go: should function for pod-Service: http"""
    eps = set(config.endpoint_pods)
    config.dial("test-container-pod", "http", config.cluster_ip, CLUSTER_HTTP, eps)
    config.dial("test-container-pod", "http", config.node_ip, config.node_http, eps)


def test_pod_service_udp(config):
    """e2e test/e2e/network/networking.go: should function for pod-Service: udp"""
    eps = set(config.endpoint_pods)
    config.dial("test-container-pod", "udp", config.cluster_ip, CLUSTER_UDP, eps)
    config.dial("test-container-pod", "udp", config.node_ip, config.node_udp, eps)


def test_node_service_http(config):
    """e2e test/e2e/network/networking.go: should function for node-Service: http"""
    eps = set(config.endpoint_pods)
    config.dial("host-test-container-pod", "http", config.cluster_ip, CLUSTER_HTTP, eps)
    config.dial("host-test-container-pod", "http", config.node_ip, config.node_http, eps)


def test_node_service_udp(config):
    """e2e test/e2e/network/networking.go: should function for node-Service: udp"""
    eps = set(config.endpoint_pods)
    config.dial("host-test-container-pod", "udp", config.cluster_ip, CLUSTER_UDP, eps)
    config.dial("host-test-container-pod", "udp", config.node_ip, config.node_udp, eps)


def test_endpoint_service_http(config):
    """e2e test/e2e/network/networking.go: should function for endpoint-Service: http"""
    eps, src = set(config.endpoint_pods), config.endpoint_pods[0]
    config.dial(src, "http", config.cluster_ip, CLUSTER_HTTP, eps)
    config.dial(src, "http", config.node_ip, config.node_http, eps)


def test_endpoint_service_udp(config):
    """e2e test/e2e/network/networking.go: should function for endpoint-Service: udp"""
    eps, src = set(config.endpoint_pods), config.endpoint_pods[0]
    config.dial(src, "udp", config.cluster_ip, CLUSTER_UDP, eps)
    config.dial(src, "udp", config.node_ip, config.node_udp, eps)


def _update_endpoints(config, protocol: str, port: int) -> None:
    config.dial("test-container-pod", protocol, config.cluster_ip, port, set(config.endpoint_pods))
    deleted = config.endpoint_pods[0]  # DeleteNetProxyPod
    config.lab.delete(config.lab.get("pod", deleted, NS))
    remaining = set(config.endpoint_pods) - {deleted}
    config.dial("test-container-pod", protocol, config.cluster_ip, port, remaining)


def test_update_endpoints_http(config):
    """e2e test/e2e/network/networking.go: should update endpoints: http"""
    _update_endpoints(config, "http", CLUSTER_HTTP)


def test_update_endpoints_udp(config):
    """e2e test/e2e/network/networking.go: should update endpoints: udp"""
    _update_endpoints(config, "udp", CLUSTER_UDP)


def _update_node_port(config, protocol: str, port: int) -> None:
    config.dial(
        "host-test-container-pod", protocol, config.node_ip, port, set(config.endpoint_pods)
    )
    config.lab.delete(config.lab.get("service", "node-port-service", NS))  # DeleteNodePortService
    config.dial("host-test-container-pod", protocol, config.node_ip, port, set())


def test_update_node_port_http(config):
    """e2e test/e2e/network/networking.go: should update nodePort: http [Slow]"""
    _update_node_port(config, "http", config.node_http)


def test_update_node_port_udp(config):
    """e2e test/e2e/network/networking.go: should update nodePort: udp [Slow]"""
    _update_node_port(config, "udp", config.node_udp)


def _affinity(config, protocol: str, port: int) -> None:
    """``GetEndpointsFromTestContainer`` with SessionAffinityChecks (10): exactly one endpoint."""
    proto = "UDP" if protocol == "udp" else "TCP"
    probes = config.lab.probe_many(
        [(f"{NS}/test-container-pod", config.affinity_ip, port, proto)] * 10
    )
    assert all(p.ok for p in probes), [p.detail for p in probes]
    assert len({p.served_by for p in probes}) == 1


def test_session_affinity_http(config):
    """e2e test/e2e/network/networking.go: should function for client IP based session affinity: http [LinuxOnly]"""
    _affinity(config, "http", CLUSTER_HTTP)


def test_session_affinity_udp(config):
    """e2e test/e2e/network/networking.go: should function for client IP based session affinity: udp [LinuxOnly]"""
    _affinity(config, "udp", CLUSTER_UDP)


def test_large_requests_http(config):
    """e2e test/e2e/network/networking.go: should be able to handle large requests: http"""
    message = "42" * 1000
    url = f"http://{config.cluster_ip}:{CLUSTER_HTTP}/echo?msg={message}"
    out = config.lab.exec("test-container-pod", ["curl", "-q", "-s", "--max-time", "5", url], NS)
    assert out.stdout == message, out


def test_large_requests_udp(config):
    """e2e test/e2e/network/networking.go: should be able to handle large requests: udp"""
    message = "n" + "o" * 1999
    send = (
        "import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(5);"
        "s.sendto(('echo '+sys.argv[3]).encode(),(sys.argv[1],int(sys.argv[2])));"
        "print(s.recv(65535).decode(),end='')"
    )
    argv = ["python3", "-c", send, config.cluster_ip, str(CLUSTER_UDP), message]
    out = config.lab.exec("test-container-pod", argv, NS)
    assert out.stdout == message, out


def _pods_connectivity(config, src: str, protocol: str, port: int) -> None:
    """``checkNodeConnectivity``: each endpoint pod's IP answers with that pod's name."""
    for pod in config.endpoint_pods:
        config.dial(src, protocol, config.pod_ip(pod), port, {pod})


def test_intra_pod_http(config):
    """e2e test/e2e/common/network/networking.go: should function for intra-pod communication: http [NodeConformance]"""
    _pods_connectivity(config, "test-container-pod", "http", HTTP)


def test_intra_pod_udp(config):
    """e2e test/e2e/common/network/networking.go: should function for intra-pod communication: udp [NodeConformance]"""
    _pods_connectivity(config, "test-container-pod", "udp", UDP)


def test_node_pod_http(config):
    """e2e test/e2e/common/network/networking.go: should function for node-pod communication: http [LinuxOnly] [NodeConformance]"""
    _pods_connectivity(config, "host-test-container-pod", "http", HTTP)


def test_node_pod_udp(config):
    """e2e test/e2e/common/network/networking.go: should function for node-pod communication: udp [LinuxOnly] [NodeConformance]"""
    _pods_connectivity(config, "host-test-container-pod", "udp", UDP)
