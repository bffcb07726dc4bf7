"""Kubernetes' EndpointSlice, EndpointSlice mirroring and hostPort e2e cases
(test/e2e/network/endpointslice.go, endpointslicemirroring.go, hostport.go) on a Flannel sandbox
lab, each in a namespace of its own."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from e2e_jig import AGNHOST, agnhost_pod, module_lab, namespace, service

_numbers = itertools.count()


@pytest.fixture(scope="module")
def lab():
    yield from module_lab("eep", "flannel")


@pytest.fixture
def ns(lab):
    name = f"endpointslice-{next(_numbers)}"
    lab.apply(namespace(name))
    yield name
    lab.delete(lab.get("namespace", name, None))


def slices(lab, ns: str, svc: str) -> list[dict[str, Any]]:
    return lab.get("endpointslices", None, ns, selector=f"kubernetes.io/service-name={svc}")


def endpoints(lab, ns: str, svc: str) -> dict[str, Any] | None:
    found = lab.get("endpoints", svc, ns)
    return found[0] if found else None


def _port(name: str, port: int, target: int | str) -> dict[str, Any]:
    return {"name": name, "port": port, "protocol": "TCP", "targetPort": target}


def test_api_server_endpoints(lab):
    """e2e test/e2e/network/endpointslice.go: should have Endpoints and EndpointSlices pointing to API Server"""
    assert lab.get("service", "kubernetes", "default")
    eps = endpoints(lab, "default", "kubernetes")
    assert eps and eps["subsets"], eps
    found = slices(lab, "default", "kubernetes")
    assert found
    # endpointSlicesEqual: the same addresses and ports
    by_endpoints = {
        (a["ip"], p["port"]) for s in eps["subsets"] for a in s["addresses"] for p in s["ports"]
    }
    by_slices = {
        (addr, p["port"])
        for s in found
        for ep in s["endpoints"]
        for addr in ep["addresses"]
        for p in s["ports"]
    }
    assert by_endpoints == by_slices


def test_endpoints_and_slices_created_and_deleted(lab, ns):
    """e2e test/e2e/network/endpointslice.go: should create and delete Endpoints and EndpointSlices for a Service with a selector specified"""
    selector = {"does-not-match-anything": "endpoints-and-endpoint-slices-should-still-be-created"}
    ports = [{"name": "example", "port": 80, "protocol": "TCP"}]
    lab.apply(service("example-empty-selector", ns, ports, selector=selector))
    assert endpoints(lab, ns, "example-empty-selector") is not None
    found = slices(lab, ns, "example-empty-selector")
    assert found
    labels = found[0]["metadata"]["labels"]
    assert labels.get("endpointslice.kubernetes.io/managed-by") == "endpointslice-controller.k8s.io"
    assert not found[0].get("endpoints")
    lab.delete(lab.get("service", "example-empty-selector", ns))
    assert endpoints(lab, ns, "example-empty-selector") is None
    assert not slices(lab, ns, "example-empty-selector")


def _nginx(name: str, ns: str, labels: dict[str, str], ports: list[dict[str, Any]]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "containers": [
                {
                    "name": "container1",
                    "image": "registry.k8s.io/e2e-test-images/nginx:1.15-4",
                    "ports": ports,
                }
            ]
        },
    }


def expect_endpoints_and_slices(lab, ns, svc_name, pods, num_subsets, num_slices, named_port):
    """``expectEndpointsAndSlices``: subset and slice counts, every address a pod's with its
    targetRef, and ports as the Service (or, for a named port, the pod) says."""
    svc = lab.get("service", svc_name, ns)[0]
    by_ip = {p["status"]["podIP"]: p for p in pods}
    found = slices(lab, ns, svc_name)
    assert len(found) >= num_slices
    eps = endpoints(lab, ns, svc_name)
    subsets = eps.get("subsets") or []
    assert len(subsets) == num_subsets
    svc_ports = svc["spec"]["ports"]
    target_name = svc_ports[0]["targetPort"]

    def check(address: str, ref: dict[str, Any], port: dict[str, Any]) -> None:
        pod = by_ip[address]
        assert (ref["kind"], ref["namespace"], ref["name"], ref["uid"]) == (
            "Pod",
            ns,
            pod["metadata"]["name"],
            pod["metadata"]["uid"],
        )
        if named_port:
            declared = {
                p["name"]: p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]
            }
            assert port["port"] == declared[target_name]
            assert port["name"] == svc_ports[0]["name"]

    addresses = 0
    for subset in subsets:
        listed = (subset.get("addresses") or []) + (subset.get("notReadyAddresses") or [])
        addresses += len(listed)
        assert len(subset["ports"]) == len(svc_ports)
        if not named_port:
            for got, want in zip(subset["ports"], svc_ports, strict=True):
                assert (got["name"], got["protocol"], got["port"]) == (
                    want["name"],
                    want["protocol"],
                    want["targetPort"],
                )
        for address in listed:
            check(address["ip"], address["targetRef"], subset["ports"][0])
    assert addresses == len(pods)
    if not pods:
        assert len(found) == 1
    es_addresses = set()
    for eps_ in found:
        ports = eps_.get("ports") or []
        assert len(ports) == (len(svc_ports) if pods else 0)
        for ep in eps_.get("endpoints") or []:
            es_addresses.add(ep["addresses"][0])
            check(ep["addresses"][0], ep["targetRef"], ports[0])
    assert len(es_addresses) == len(pods)


def test_endpoints_and_slices_for_matching_pods(lab, ns):
    """e2e test/e2e/network/endpointslice.go: should create Endpoints and EndpointSlices for Pods matching a Service"""
    on = "on"
    lab.apply(
        _nginx(
            "pod1",
            ns,
            {"pod1": on, "shared12": on},
            [{"name": "example-name", "containerPort": 3000}],
        )
    )
    ports2 = [
        {"name": "example-name", "containerPort": 3001},
        {"name": "other-port", "containerPort": 3002},
    ]
    lab.apply(_nginx("pod2", ns, {"pod2": on, "shared12": on}, ports2))
    spec = {"publishNotReadyAddresses": True}
    lab.apply(
        service("example-int-port", ns, [_port("example", 80, 3000)], selector={"pod1": on}, **spec)
    )
    named = [_port("http", 80, "example-name")]
    lab.apply(service("example-named-port", ns, named, selector={"shared12": on}, **spec))
    no_match = [_port("example-no-match", 80, 8080)]
    lab.apply(service("example-no-match", ns, no_match, selector={"pod3": on}, **spec))
    pod1, pod2 = (lab.get("pod", name, ns)[0] for name in ("pod1", "pod2"))
    expect_endpoints_and_slices(lab, ns, "example-int-port", [pod1], 1, 1, False)
    expect_endpoints_and_slices(lab, ns, "example-named-port", [pod1, pod2], 2, 2, True)
    expect_endpoints_and_slices(lab, ns, "example-no-match", [], 0, 1, False)
    lab.delete(slices(lab, ns, "example-named-port"))  # deleteEndpointSlices
    expect_endpoints_and_slices(lab, ns, "example-named-port", [pod1, pod2], 2, 2, True)


def _custom_slice(name: str, ns: str, svc: str, ip: str, port_name: str, port: int) -> dict:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {
                "kubernetes.io/service-name": svc,
                "endpointslice.kubernetes.io/managed-by": f"e2e-test{ns}",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
    }


def _http_container(port: int) -> dict[str, Any]:
    return {
        "name": f"container-handle-{port}-request",
        "image": AGNHOST,
        "args": ["netexec", "--http-port", str(port), "--udp-port", "-1"],
        "ports": [{"containerPort": port, "protocol": "TCP"}],
    }


CUSTOM_PORTS = [
    {"name": "port80", "port": 80, "protocol": "TCP"},
    {"name": "port81", "port": 81, "protocol": "TCP"},
]


def _hostname_via(lab, ns: str, ip: str, port: int) -> str:
    """``execHostnameTest``: ``curl --connect-timeout 5 ADDR/hostname`` from pause-pod-0."""
    out = lab.exec("pause-pod-0", f"curl -q -s --connect-timeout 5 {ip}:{port}/hostname", ns)
    return out.stdout


def test_multiple_ports_in_multiple_slices(lab, ns):
    """e2e test/e2e/network/endpointslice.go: should support a Service with multiple ports specified in multiple EndpointSlices"""
    lab.apply(service("example-custom-endpoints", ns, CUSTOM_PORTS, selector=None))
    server = agnhost_pod("pod-handle-http-request", ns)
    server["spec"]["containers"] = [_http_container(8090), _http_container(9090)]
    lab.apply(server)
    ip = lab.get("pod", "pod-handle-http-request", ns)[0]["status"]["podIP"]
    svc = "example-custom-endpoints"
    lab.apply(_custom_slice("e2e-custom-slice1", ns, svc, ip, "port80", 8090))
    lab.apply(_custom_slice("e2e-custom-slice2", ns, svc, ip, "port81", 9090))
    lab.apply(agnhost_pod("pause-pod-0", ns))
    cluster_ip = lab.get("service", svc, ns)[0]["spec"]["clusterIP"]
    assert _hostname_via(lab, ns, cluster_ip, 80) == "pod-handle-http-request"
    assert _hostname_via(lab, ns, cluster_ip, 81) == "pod-handle-http-request"


def test_multiple_endpoint_ips_in_multiple_slices(lab, ns):
    """e2e test/e2e/network/endpointslice.go: should support a Service with multiple endpoint IPs specified in multiple EndpointSlices"""
    svc = "example-custom-endpoints"
    lab.apply(service(svc, ns, CUSTOM_PORTS, selector=None))
    for i in (1, 2):
        pod = agnhost_pod(f"pod{i}-handle-http-request", ns)
        pod["spec"]["containers"] = [_http_container(8090)]
        lab.apply(pod)
    ips = [lab.get("pod", f"pod{i}-handle-http-request", ns)[0]["status"]["podIP"] for i in (1, 2)]
    lab.apply(_custom_slice("e2e-custom-slice1", ns, svc, ips[0], "port80", 8090))
    lab.apply(_custom_slice("e2e-custom-slice2", ns, svc, ips[1], "port81", 8090))
    lab.apply(agnhost_pod("pause-pod-0", ns))
    cluster_ip = lab.get("service", svc, ns)[0]["spec"]["clusterIP"]
    assert _hostname_via(lab, ns, cluster_ip, 80) == "pod1-handle-http-request"
    assert _hostname_via(lab, ns, cluster_ip, 81) == "pod2-handle-http-request"


def _host_port_pod(name: str, ns: str, host_ip: str, protocol: str, node: str) -> dict:
    """``createHostPortPodOnNode``: netexec with hostPort 54323 to containerPort 8080 on
    ``host_ip``, ready by an HTTP GET of /hostname."""
    if protocol == "TCP":
        args, ready = ["--http-port=8080", "--udp-port=-1"], 8080
    else:
        args, ready = ["--http-port=8008", "--udp-port=8080"], 8008
    port = {"hostPort": 54323, "containerPort": 8080, "protocol": protocol, "hostIP": host_ip}
    pod = agnhost_pod(name, ns, ["netexec", *args], [port], node=node)
    pod["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"path": "/hostname", "port": ready}
    }
    return pod


def test_host_port_no_conflict(lab, ns):
    """e2e test/e2e/network/hostport.go: validates that there is no conflict between pods with same hostPort but different hostIP and protocol [LinuxOnly]"""
    node = sorted(n["metadata"]["name"] for n in lab.get("nodes", None, None))[1]
    addresses = lab.get("node", node, None)[0]["status"]["addresses"]
    host_ip = next(a["address"] for a in addresses if a["type"] == "InternalIP")
    lab.apply(_host_port_pod("pod1", ns, "127.0.0.1", "TCP", node))
    lab.apply(_host_port_pod("pod2", ns, host_ip, "TCP", node))
    lab.apply(_host_port_pod("pod3", ns, host_ip, "UDP", node))
    assert all(p["status"]["phase"] == "Running" for p in lab.get("pods", None, ns))
    lab.apply(agnhost_pod("e2e-host-exec", ns, node=node, host_network=True))
    for _ in range(5):
        one = lab.exec(
            "e2e-host-exec",
            f"curl -g --connect-timeout 5 --interface {host_ip} http://127.0.0.1:54323/hostname",
            ns,
        )
        two = lab.exec(
            "e2e-host-exec", f"curl -g --connect-timeout 5 http://{host_ip}:54323/hostname", ns
        )
        three = lab.probe(f"{ns}/e2e-host-exec", host_ip, 54323, "UDP", timeout=5.0)
        assert one.returncode == 0 and two.returncode == 0 and three.ok, (one, two, three)
        assert len({one.stdout, two.stdout, three.served_by}) == 3


def _custom_endpoints(ns: str, subsets: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "example-custom-endpoints", "namespace": ns},
        "subsets": subsets,
    }


def _mirrored(lab, ns: str) -> list[tuple[list[int], list[str]]]:
    """Each mirrored slice's ports and endpoint addresses."""
    return [
        (
            [p["port"] for p in s.get("ports") or []],
            [a for ep in s.get("endpoints") or [] for a in ep["addresses"]],
        )
        for s in slices(lab, ns, "example-custom-endpoints")
    ]


def test_mirror_custom_endpoints(lab, ns):
    """e2e test/e2e/network/endpointslicemirroring.go: should mirror a custom Endpoints resource through create update and delete"""
    lab.apply(
        service(
            "example-custom-endpoints",
            ns,
            [{"name": "example", "port": 80, "protocol": "TCP"}],
            selector=None,
        )
    )
    subset = {"ports": [{"port": 80}], "addresses": [{"ip": "10.1.2.3"}]}
    lab.apply(_custom_endpoints(ns, [subset]))
    assert _mirrored(lab, ns) == [([80], ["10.1.2.3"])]
    subset["addresses"] = [{"ip": "10.2.3.4"}]
    lab.apply(_custom_endpoints(ns, [subset]))
    assert _mirrored(lab, ns) == [([80], ["10.2.3.4"])]
    lab.delete(lab.get("endpoints", "example-custom-endpoints", ns))
    assert _mirrored(lab, ns) == []


def test_mirror_multiple_subsets_same_ip(lab, ns):
    """e2e test/e2e/network/endpointslicemirroring.go: should mirror a custom Endpoint with multiple subsets and same IP address"""
    lab.apply(service("example-custom-endpoints", ns, CUSTOM_PORTS, selector=None))
    server = agnhost_pod("pod-handle-http-request", ns)
    server["spec"]["containers"] = [_http_container(8090), _http_container(9090)]
    lab.apply(server)
    ip = lab.get("pod", "pod-handle-http-request", ns)[0]["status"]["podIP"]
    subsets = [
        {"ports": [{"name": "port80", "port": 8090}], "addresses": [{"ip": ip}]},
        {"ports": [{"name": "port81", "port": 9090}], "addresses": [{"ip": ip}]},
    ]
    lab.apply(_custom_endpoints(ns, subsets))
    assert _mirrored(lab, ns)
    lab.apply(agnhost_pod("pause-pod-0", ns))
    cluster_ip = lab.get("service", "example-custom-endpoints", ns)[0]["spec"]["clusterIP"]
    assert _hostname_via(lab, ns, cluster_ip, 80) == "pod-handle-http-request"
    assert _hostname_via(lab, ns, cluster_ip, 81) == "pod-handle-http-request"
    lab.delete(lab.get("endpoints", "example-custom-endpoints", ns))
    assert _mirrored(lab, ns) == []
