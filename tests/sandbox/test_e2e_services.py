"""Kubernetes' Service e2e cases (test/e2e/network/service.go) on a Flannel sandbox lab.

Each case runs in a namespace of its own, deleted afterwards, as the e2e framework does. Upstream's
``StartServeHostnameService`` makes a ReplicationController, which the sandbox does not model: a
Deployment with the same pod template stands in. Where upstream reads a hostname over HTTP
(``wget``/``curl``), ``lab.probe`` reads the serving pod's hostname the same way (agnhost's
``/hostname``); where it runs ``nc -z`` or ``agnhost connect``, ``lab.probe`` makes the same single
connection (a UDP probe sends ``hostname`` and waits for the answer, as ``echo hostName | nc -u``).
"""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

import pytest
from e2e_jig import (
    AGNHOST,
    agnhost_pod,
    endpoint_ports,
    module_lab,
    namespace,
    netexec_pod,
    service,
)

from labkit.errors import LabError
from labkit.lab import OUTSIDE

SERVE_PORT = 9376
AFFINITY_CONFIRM_COUNT = 15
_numbers = itertools.count()


@pytest.fixture(scope="module")
def lab():
    yield from module_lab("esv", "flannel")


@pytest.fixture
def ns(lab):
    """A fresh namespace for one case, deleted with all it holds afterwards."""
    name = f"services-{next(_numbers)}"
    lab.apply(namespace(name))
    yield name
    lab.delete(lab.get("namespace", name, None))


def workers(lab) -> list[str]:
    """The two schedulable worker nodes (``GetBoundedReadySchedulableNodes(cs, 2)``)."""
    return sorted(n["metadata"]["name"] for n in lab.get("nodes", None, None))[1:]


def node_ip(lab, node: str) -> str:
    """A node's InternalIP."""
    addresses = lab.get("node", node, None)[0]["status"]["addresses"]
    return next(a["address"] for a in addresses if a["type"] == "InternalIP")


def node_ips(lab) -> list[str]:
    return [node_ip(lab, n["metadata"]["name"]) for n in lab.get("nodes", None, None)]


def live(lab, name: str, ns: str) -> dict[str, Any]:
    """The Service as a GET returns it (what ``jig.UpdateService`` modifies and PUTs back)."""
    return lab.get("service", name, ns)[0]


def exec_pod(lab, ns: str, name: str = "execpod", node: str | None = None) -> str:
    """``e2epod.CreateExecPodOrFail``: an agnhost pause pod; its ``ns/name``."""
    lab.apply(agnhost_pod(name, ns, node=node))
    return f"{ns}/{name}"


def service_pods(lab, ns: str, labels: dict[str, str], replicas: int) -> None:
    """``jig.CreateServicePods``: agnhost serve-hostname pods on TCP and UDP 9376."""
    lab.apply(serve_hostname_deployment("svc-pods", ns, labels, replicas))


def serve_hostname_deployment(name: str, ns: str, labels: dict[str, str], replicas: int) -> dict:
    container = {
        "name": name,
        "image": AGNHOST,
        "args": ["serve-hostname", "--tcp", "--udp", "--http=false"],
        "ports": [
            {"containerPort": SERVE_PORT, "protocol": "TCP"},
            {"containerPort": SERVE_PORT, "protocol": "UDP"},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def start_serve_hostname(lab, ns: str, name: str, replicas: int, **spec: Any) -> tuple:
    """``StartServeHostnameService``: ``replicas`` serve-hostname pods labelled ``name=<name>``
    behind Service ``name`` (port 80 to 9376); the pod names and the Service's cluster IP."""
    lab.apply(serve_hostname_deployment(name, ns, {"name": name}, replicas))
    ports = [{"port": 80, "protocol": "TCP", "targetPort": SERVE_PORT}]
    lab.apply(service(name, ns, ports, selector={"name": name}, **spec))
    pods = sorted(p["metadata"]["name"] for p in lab.get("pods", None, ns, selector=f"name={name}"))
    return pods, live(lab, name, ns)["spec"]["clusterIP"]


def stop_serve_hostname(lab, ns: str, name: str) -> None:
    """``StopServeHostnameService``: the pods' controller and the Service deleted."""
    lab.delete(lab.get("deployment", name, ns) + lab.get("service", name, ns))


def hostnames(lab, src: str, ip: str, port: int, count: int) -> list[str | None]:
    """Who served each of ``count`` connections (None where none was made)."""
    return [p.served_by for p in lab.probe_many([(src, ip, port)] * count)]


def verify_up(lab, src: str, pods: list[str], ip: str, port: int) -> None:
    """``verifyServeHostnameServiceUp``: requests reach exactly the expected pods."""
    assert set(hostnames(lab, src, ip, port, 10 * len(pods))) == set(pods)


def verify_down(lab, src: str, ip: str, port: int) -> None:
    """``verifyServeHostnameServiceDown``: no request is answered."""
    assert not any(p.ok for p in lab.probe_many([(src, ip, port)] * 5))


def check_reachability(lab, svc: dict[str, Any], src: str) -> None:
    """``jig.CheckServiceReachability``: by name and cluster IP on every port; a NodePort also
    on every node's InternalIP; an ExternalName resolves; external IPs on the service port."""
    spec, name = svc["spec"], svc["metadata"]["name"]
    if spec.get("type") == "ExternalName":
        assert lab.resolve(src, name), f"{name} does not resolve from {src}"
        return
    targets = []
    for port in spec["ports"]:
        proto = port.get("protocol", "TCP")
        targets += [(name, port["port"], proto), (spec["clusterIP"], port["port"], proto)]
        targets += [(ip, port["port"], proto) for ip in spec.get("externalIPs") or []]
        if spec.get("type") == "NodePort":
            targets += [(ip, port["nodePort"], proto) for ip in node_ips(lab)]
    probes = lab.probe_many([(src, *t) for t in targets], timeout=2.0)
    assert all(p.ok for p in probes), [p.detail for p in probes if not p.ok]


def check_affinity(lab, src: str, ip: str, port: int, should_hold: bool) -> None:
    """``checkAffinity``: with affinity, AffinityConfirmCount requests in a row reach one pod;
    without, they reach more than one."""
    served = [lab.probe(src, ip, port).served_by for _ in range(AFFINITY_CONFIRM_COUNT)]
    assert None not in served, served
    assert (len(set(served)) == 1) == should_hold, served


def test_secure_master_service(lab):
    """e2e test/e2e/network/service.go: should provide secure master service"""
    assert lab.get("service", "kubernetes", "default")


def test_basic_endpoint(lab, ns):
    """e2e test/e2e/network/service.go: should serve a basic endpoint from pods"""
    svc_name = "endpoint-test2"
    labels = {"testid": svc_name}
    lab.apply(service(svc_name, ns, [{"port": 80, "protocol": "TCP", "targetPort": 80}]))
    assert endpoint_ports(lab, svc_name, ns) == {}
    lab.apply(netexec_pod("pod1", ns, 80, labels))
    assert endpoint_ports(lab, svc_name, ns) == {"pod1": [80]}
    src = exec_pod(lab, ns)
    check_reachability(lab, live(lab, svc_name, ns), src)
    lab.apply(netexec_pod("pod2", ns, 80, labels))
    assert endpoint_ports(lab, svc_name, ns) == {"pod1": [80], "pod2": [80]}
    check_reachability(lab, live(lab, svc_name, ns), src)
    lab.delete(lab.get("pod", "pod1", ns))
    assert endpoint_ports(lab, svc_name, ns) == {"pod2": [80]}
    check_reachability(lab, live(lab, svc_name, ns), src)
    lab.delete(lab.get("pod", "pod2", ns))
    assert endpoint_ports(lab, svc_name, ns) == {}


def _named_pod(name: str, ns: str, port: int, port_name: str) -> dict[str, Any]:
    ports = [{"name": port_name, "containerPort": port}]
    labels = {"testid": "svc"}
    return agnhost_pod(name, ns, ["netexec", f"--http-port={port}"], ports, labels)


TWO_NAMED_PORTS = [
    {"name": "portname1", "port": 80, "protocol": "TCP", "targetPort": "svc1"},
    {"name": "portname2", "port": 81, "protocol": "TCP", "targetPort": "svc2"},
]


def test_multiport_endpoints(lab, ns):
    """e2e test/e2e/network/service.go: should serve multiport endpoints from pods"""
    lab.apply(service("multi-endpoint-test", ns, TWO_NAMED_PORTS, selector={"testid": "svc"}))
    assert endpoint_ports(lab, "multi-endpoint-test", ns) == {}
    lab.apply(_named_pod("pod1", ns, 100, "svc1"))
    assert endpoint_ports(lab, "multi-endpoint-test", ns) == {"pod1": [100]}
    lab.apply(_named_pod("pod2", ns, 101, "svc2"))
    assert endpoint_ports(lab, "multi-endpoint-test", ns) == {"pod1": [100], "pod2": [101]}
    check_reachability(lab, live(lab, "multi-endpoint-test", ns), exec_pod(lab, ns))
    lab.delete(lab.get("pod", "pod1", ns))
    assert endpoint_ports(lab, "multi-endpoint-test", ns) == {"pod2": [101]}
    lab.delete(lab.get("pod", "pod2", ns))
    assert endpoint_ports(lab, "multi-endpoint-test", ns) == {}


def test_adding_and_deleting_ports(lab, ns):
    """e2e test/e2e/network/service.go: should be updated after adding or deleting ports"""
    name = "edit-port-test"
    lab.apply(service(name, ns, TWO_NAMED_PORTS[:1], selector={"testid": "svc"}))
    assert endpoint_ports(lab, name, ns) == {}
    lab.apply(_named_pod("pod1", ns, 100, "svc1"))
    assert endpoint_ports(lab, name, ns) == {"pod1": [100]}
    src = exec_pod(lab, ns)
    check_reachability(lab, live(lab, name, ns), src)
    svc = live(lab, name, ns)
    svc["spec"]["ports"] = TWO_NAMED_PORTS
    lab.apply(svc)
    lab.apply(_named_pod("pod2", ns, 101, "svc2"))
    assert endpoint_ports(lab, name, ns) == {"pod1": [100], "pod2": [101]}
    check_reachability(lab, live(lab, name, ns), src)
    svc = live(lab, name, ns)
    svc["spec"]["ports"] = TWO_NAMED_PORTS[:1]
    lab.apply(svc)
    assert endpoint_ports(lab, name, ns) == {"pod1": [100]}
    check_reachability(lab, live(lab, name, ns), src)


def test_source_ip_preserved(lab, ns):
    """e2e test/e2e/network/service.go: should preserve source pod IP for traffic thru service cluster IP [LinuxOnly]"""
    lab.apply(service("sourceip-test", ns, [{"port": 8080, "protocol": "TCP", "targetPort": 8080}]))
    lab.apply(netexec_pod("echo-sourceip", ns, 8080, {"testid": "sourceip-test"}))
    assert endpoint_ports(lab, "sourceip-test", ns) == {"echo-sourceip": [8080]}
    ip = live(lab, "sourceip-test", ns)["spec"]["clusterIP"]
    for i, node in enumerate(workers(lab)):
        src = exec_pod(lab, ns, f"pause-pod-{i}", node)
        out = lab.exec(src.split("/")[1], f"curl -q -s --connect-timeout 30 {ip}:8080/clientip", ns)
        pod_ip = lab.get("pod", src.split("/")[1], ns)[0]["status"]["podIP"]
        assert out.stdout.rsplit(":", 1)[0] == pod_ip


def test_hairpin(lab, ns):
    """e2e test/e2e/network/service.go: should allow pods to hairpin back to themselves through services"""
    lab.apply(service("hairpin-test", ns, [{"port": 8080, "protocol": "TCP", "targetPort": 8080}]))
    lab.apply(netexec_pod("hairpin", ns, 8080, {"testid": "hairpin-test"}))
    assert endpoint_ports(lab, "hairpin-test", ns) == {"hairpin": [8080]}
    check_reachability(lab, live(lab, "hairpin-test", ns), f"{ns}/hairpin")


def test_up_and_down_services(lab, ns):
    """e2e test/e2e/network/service.go: should be able to up and down services"""
    src = exec_pod(lab, ns)
    pods1, ip1 = start_serve_hostname(lab, ns, "up-down-1", 3)
    pods2, ip2 = start_serve_hostname(lab, ns, "up-down-2", 3)
    verify_up(lab, src, pods1, ip1, 80)
    verify_up(lab, src, pods2, ip2, 80)
    stop_serve_hostname(lab, ns, "up-down-1")
    verify_down(lab, src, ip1, 80)
    verify_up(lab, src, pods2, ip2, 80)
    pods3, ip3 = start_serve_hostname(lab, ns, "up-down-3", 3)
    assert ip2 != ip3
    verify_up(lab, src, pods2, ip2, 80)
    verify_up(lab, src, pods3, ip3, 80)


def test_service_recreated(lab, ns):
    """e2e test/e2e/network/service.go: should work after the service has been recreated"""
    src = exec_pod(lab, ns)
    pods, ip = start_serve_hostname(lab, ns, "service-deletion", 1)
    verify_up(lab, src, pods, ip, 80)
    svc = lab.get("service", "service-deletion", ns)
    lab.delete(svc)
    assert not lab.get("service", "service-deletion", ns)
    ports = [{"port": 80, "protocol": "TCP", "targetPort": SERVE_PORT}]
    lab.apply(service("service-deletion", ns, ports, selector={"name": "service-deletion"}))
    verify_up(lab, src, pods, live(lab, "service-deletion", ns)["spec"]["clusterIP"], 80)


HTTP_9376 = [{"port": 80, "name": "http", "protocol": "TCP", "targetPort": SERVE_PORT}]


def test_functioning_nodeport(lab, ns):
    """e2e test/e2e/network/service.go: should be able to create a functioning NodePort service"""
    lab.apply(service("nodeport-test", ns, HTTP_9376, type="NodePort"))
    service_pods(lab, ns, {"testid": "nodeport-test"}, 2)
    check_reachability(lab, live(lab, "nodeport-test", ns), exec_pod(lab, ns))


def test_external_ip_not_on_a_node(lab, ns):
    """e2e test/e2e/network/service.go: should be possible to connect to a service via ExternalIP when the external IP is not assigned to a node"""
    spec = {"externalIPs": ["203.0.113.250"]}
    lab.apply(service("externalip-test", ns, HTTP_9376, **spec))
    service_pods(lab, ns, {"testid": "externalip-test"}, 2)
    check_reachability(lab, live(lab, "externalip-test", ns), exec_pod(lab, ns))


def test_nodeport_same_port_two_protocols(lab, ns):
    """e2e test/e2e/network/service.go: should be able to update service type to NodePort listening on same port number but different protocols"""
    name = "nodeport-update-service"
    lab.apply(service(name, ns, [{"port": 80, "protocol": "TCP", "targetPort": 80}]))
    tcp = {"name": "tcp-port", "port": 80, "protocol": "TCP", "targetPort": SERVE_PORT}
    svc = live(lab, name, ns)
    svc["spec"].update(type="NodePort", ports=[tcp])
    lab.apply(svc)
    service_pods(lab, ns, {"testid": name}, 2)
    src = exec_pod(lab, ns)
    check_reachability(lab, live(lab, name, ns), src)
    svc = live(lab, name, ns)
    udp = {**tcp, "name": "udp-port", "protocol": "UDP"}
    svc["spec"]["ports"] = [svc["spec"]["ports"][0], udp]
    lab.apply(svc)
    svc = live(lab, name, ns)
    check_reachability(lab, svc, src)
    assert len(svc["spec"]["ports"]) == 2
    assert all(port.get("nodePort") for port in svc["spec"]["ports"])


def _external_name(name: str, ns: str) -> dict[str, Any]:
    """``jig.CreateExternalNameService``: type ExternalName to foo.example.com."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "ExternalName", "externalName": "foo.example.com"},
    }


def test_externalname_to_clusterip(lab, ns):
    """e2e test/e2e/network/service.go: should be able to change the type from ExternalName to ClusterIP"""
    _externalname_to(lab, ns, "ClusterIP")


def test_externalname_to_nodeport(lab, ns):
    """e2e test/e2e/network/service.go: should be able to change the type from ExternalName to NodePort"""
    _externalname_to(lab, ns, "NodePort")


def _externalname_to(lab, ns: str, type_: str) -> None:
    lab.apply(_external_name("externalname-service", ns))
    svc = live(lab, "externalname-service", ns)
    svc["spec"].update(
        type=type_, externalName="", ports=HTTP_9376, selector={"testid": "externalname-service"}
    )
    lab.apply(svc)
    service_pods(lab, ns, {"testid": "externalname-service"}, 2)
    check_reachability(lab, live(lab, "externalname-service", ns), exec_pod(lab, ns))


def test_clusterip_to_externalname(lab, ns):
    """e2e test/e2e/network/service.go: should be able to change the type from ClusterIP to ExternalName"""
    lab.apply(service("clusterip-service", ns, [{"port": 80, "protocol": "TCP", "targetPort": 80}]))
    start_serve_hostname(lab, ns, "externalsvc", 2)
    svc = live(lab, "clusterip-service", ns)
    svc["spec"].update(type="ExternalName", externalName=f"externalsvc.{ns}.svc.cluster.local")
    lab.apply(svc)
    svc = live(lab, "clusterip-service", ns)
    assert not svc["spec"].get("clusterIP"), "Spec.ClusterIP was not cleared"
    check_reachability(lab, svc, exec_pod(lab, ns))


def _nodeport_service(name: str, ns: str, node_port: int | None = None) -> dict[str, Any]:
    """``NewServerTest(...).BuildServiceSpec()`` with type NodePort."""
    port: dict[str, Any] = {"port": 80, "protocol": "TCP", "targetPort": 80}
    if node_port:
        port["nodePort"] = node_port
    return service(name, ns, [port], type="NodePort")


def test_nodeport_collisions(lab, ns):
    """e2e test/e2e/network/service.go: should prevent NodePort collisions"""
    lab.apply(_nodeport_service("nodeport-collision-1", ns))
    svc = live(lab, "nodeport-collision-1", ns)
    assert svc["spec"]["type"] == "NodePort" and len(svc["spec"]["ports"]) == 1
    node_port = svc["spec"]["ports"][0]["nodePort"]
    second = _nodeport_service("nodeport-collision-2", ns, node_port)
    with pytest.raises(LabError, match=f"{node_port}.*port is already allocated"):
        lab.apply(second)
    lab.delete(lab.get("service", "nodeport-collision-1", ns))
    lab.apply(second)


def test_nodeport_out_of_range(lab, ns):
    """e2e test/e2e/network/service.go: should check NodePort out-of-range"""
    lab.apply(_nodeport_service("nodeport-range-test", ns))
    svc = live(lab, "nodeport-range-test", ns)
    assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767
    out_of_range = 29999
    svc["spec"]["ports"][0]["nodePort"] = out_of_range
    expected = f"{out_of_range}.*port is not in the valid range"
    with pytest.raises(LabError, match=expected):
        lab.apply(svc)
    lab.delete(lab.get("service", "nodeport-range-test", ns))
    with pytest.raises(LabError, match=expected):
        lab.apply(_nodeport_service("nodeport-range-test", ns, out_of_range))


def test_nodeports_released_on_delete(lab, ns):
    """e2e test/e2e/network/service.go: should release NodePorts on delete"""
    lab.apply(_nodeport_service("nodeport-reuse", ns))
    node_port = live(lab, "nodeport-reuse", ns)["spec"]["ports"][0]["nodePort"]
    lab.delete(lab.get("service", "nodeport-reuse", ns))
    node = workers(lab)[0]
    listening = lab.node_exec(
        node, f"! ss -ant46 'sport = :{node_port}' | tail -n +2 | grep LISTEN"
    )
    assert listening.returncode == 0, listening
    lab.apply(_nodeport_service("nodeport-reuse", ns, node_port))


def _affinity(lab, ns: str, name: str, type_: str, transition: bool) -> None:
    """``execAffinityTestForNonLBServiceWithOptionalTransition``."""
    start_serve_hostname(lab, ns, name, 3, type=type_, sessionAffinity="ClientIP")
    svc = live(lab, name, ns)
    if type_ == "NodePort":
        ip, port = node_ips(lab)[0], svc["spec"]["ports"][0]["nodePort"]
    else:
        ip, port = svc["spec"]["clusterIP"], 80
    src = exec_pod(lab, ns, "execpod-affinity")
    check_reachability(lab, svc, src)
    if not transition:
        check_affinity(lab, src, ip, port, True)
        return
    for affinity, holds in (("None", False), ("ClientIP", True)):
        svc = live(lab, name, ns)
        svc["spec"]["sessionAffinity"] = affinity
        svc["spec"].pop("sessionAffinityConfig", None)
        lab.apply(svc)
        check_affinity(lab, src, ip, port, holds)


def test_affinity_clusterip(lab, ns):
    """e2e test/e2e/network/service.go: should have session affinity work for service with type clusterIP [LinuxOnly]"""
    _affinity(lab, ns, "affinity-clusterip", "ClusterIP", transition=False)


def test_affinity_switch_clusterip(lab, ns):
    """e2e test/e2e/network/service.go: should be able to switch session affinity for service with type clusterIP [LinuxOnly]"""
    _affinity(lab, ns, "affinity-clusterip-transition", "ClusterIP", transition=True)


def test_affinity_nodeport(lab, ns):
    """e2e test/e2e/network/service.go: should have session affinity work for NodePort service [LinuxOnly]"""
    _affinity(lab, ns, "affinity-nodeport", "NodePort", transition=False)


def test_affinity_switch_nodeport(lab, ns):
    """e2e test/e2e/network/service.go: should be able to switch session affinity for NodePort service [LinuxOnly]"""
    _affinity(lab, ns, "affinity-nodeport-transition", "NodePort", transition=True)


def test_rejected_without_endpoints(lab, ns):
    """e2e test/e2e/network/service.go: should be rejected when no endpoints exist"""
    lab.apply(service("no-pods", ns, [{"port": 80, "protocol": "TCP", "targetPort": 80}]))
    src = exec_pod(lab, ns, "execpod-noendpoints", workers(lab)[0])
    assert lab.probe(src, "no-pods", 80, timeout=3.0).outcome == "refused"


def _itp_local(lab, ns: str, port: int, host_network_clients: bool) -> None:
    """The internalTrafficPolicy=Local cases: one netexec endpoint on node0; a client there gets
    it, a client on node1 gets an error, five times over."""
    node0, node1 = workers(lab)
    spec = {"internalTrafficPolicy": "Local"}
    ports = [{"port": port, "name": "http", "protocol": "TCP", "targetPort": port}]
    lab.apply(service("svc-itp", ns, ports, **spec))
    lab.apply(netexec_pod("echo-hostname-0", ns, port, {"testid": "svc-itp"}, node=node0))
    assert endpoint_ports(lab, "svc-itp", ns) == {"echo-hostname-0": [port]}
    for i, node in enumerate((node0, node1)):
        lab.apply(agnhost_pod(f"pause-pod-{i}", ns, node=node, host_network=host_network_clients))
    address = f"{live(lab, 'svc-itp', ns)['spec']['clusterIP']}:{port}"
    for _ in range(5):
        out = lab.exec("pause-pod-0", f"curl -q -s --connect-timeout 5 {address}/hostname", ns)
        assert out.stdout == "echo-hostname-0"
        out = lab.exec("pause-pod-1", f"curl -q -s --connect-timeout 1 {address}/hostname", ns)
        assert out.returncode != 0, out


def test_itp_local_pod_to_pod(lab, ns):
    """e2e test/e2e/network/service.go: should respect internalTrafficPolicy=Local Pod to Pod"""
    _itp_local(lab, ns, 80, host_network_clients=False)


def test_itp_local_host_network_pod_to_pod(lab, ns):
    """e2e test/e2e/network/service.go: should respect internalTrafficPolicy=Local Pod (hostNetwork: true) to Pod"""
    _itp_local(lab, ns, 8000, host_network_clients=True)


def test_find_service_in_all_namespaces(lab):
    """e2e test/e2e/network/service.go: should find a service from listing all namespaces"""
    found = [
        s
        for s in lab.get("services", None, None)
        if s["metadata"]["name"] == "kubernetes" and s["metadata"]["namespace"] == "default"
    ]
    assert found


MULTI_PROTOCOL = [
    {"name": "tcp-port", "port": 80, "protocol": "TCP", "targetPort": 80},
    {"name": "udp-port", "port": 80, "protocol": "UDP", "targetPort": 80},
]


def test_same_port_different_protocols(lab, ns):
    """e2e test/e2e/network/service.go: should serve endpoints on same port and different protocols"""
    labels = {"app": "multiport"}
    lab.apply(service("multiprotocol-test", ns, MULTI_PROTOCOL, selector=labels))
    ports = [
        {"name": "tcp-port", "containerPort": 80, "protocol": "TCP"},
        {"name": "udp-port", "containerPort": 80, "protocol": "UDP"},
    ]
    args = ["netexec", "--http-port", "80", "--udp-port", "80"]
    lab.apply(agnhost_pod("pod1", ns, args, ports, labels))
    src = exec_pod(lab, ns)
    ip = live(lab, "multiprotocol-test", ns)["spec"]["clusterIP"]
    assert lab.probe(src, ip, 80, "TCP").ok and lab.probe(src, ip, 80, "UDP").ok
    for keep, gone in (("TCP", "UDP"), ("UDP", "TCP")):
        svc = live(lab, "multiprotocol-test", ns)
        svc["spec"]["ports"] = [p for p in MULTI_PROTOCOL if p["protocol"] == keep]
        lab.apply(svc)
        assert lab.probe(src, ip, 80, keep).ok
        assert not lab.probe(src, ip, 80, gone).ok


def test_same_port_different_protocols_load_balancer(lab, ns):
    """e2e test/e2e/network/service.go: should serve endpoints on same port and different protocol for internal traffic on Type LoadBalancer"""
    ports = [
        {"name": "portname1", "port": 80, "protocol": "TCP", "targetPort": "svc1"},
        {"name": "portname2", "port": 80, "protocol": "UDP", "targetPort": "svc2"},
    ]
    name = "multiprotocol-lb-test"
    lab.apply(service(name, ns, ports, type="LoadBalancer"))
    container_ports = [
        {"name": "svc1", "containerPort": 100, "protocol": "TCP"},
        {"name": "svc2", "containerPort": 100, "protocol": "UDP"},
    ]
    args = ["netexec", "--http-port", "100", "--udp-port", "100"]
    lab.apply(agnhost_pod("pod1", ns, args, container_ports, {"testid": name}))
    svc = copy.deepcopy(live(lab, name, ns))
    svc["spec"]["type"] = "ClusterIP"  # CheckServiceReachability checks a LoadBalancer as ClusterIP
    check_reachability(lab, svc, exec_pod(lab, ns))
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", live(lab, name, ns)["spec"]["clusterIP"])


def _lb_affinity(lab, ns: str, name: str, transition: bool) -> None:
    """``execAffinityTestForLBServiceWithOptionalTransition`` with externalTrafficPolicy
    Cluster: affinity checked from outside the cluster on the load balancer's ingress IP."""
    spec = {
        "type": "LoadBalancer",
        "externalTrafficPolicy": "Cluster",
        "sessionAffinity": "ClientIP",
    }
    start_serve_hostname(lab, ns, name, 3, **spec)
    ingress = live(lab, name, ns)["status"]["loadBalancer"]["ingress"][0]["ip"]
    if not transition:
        check_affinity(lab, OUTSIDE, ingress, 80, True)
        return
    for affinity, holds in (("None", False), ("ClientIP", True)):
        svc = live(lab, name, ns)
        svc["spec"]["sessionAffinity"] = affinity
        svc["spec"].pop("sessionAffinityConfig", None)
        lab.apply(svc)
        check_affinity(lab, OUTSIDE, ingress, 80, holds)


def test_lb_affinity_esipp_off(lab, ns):
    """e2e test/e2e/network/loadbalancer.go: should have session affinity work for LoadBalancer service with ESIPP off"""
    _lb_affinity(lab, ns, "affinity-lb", transition=False)


def test_lb_affinity_switch_esipp_off(lab, ns):
    """e2e test/e2e/network/loadbalancer.go: should be able to switch session affinity for LoadBalancer service with ESIPP off"""
    _lb_affinity(lab, ns, "affinity-lb-transition", transition=True)
