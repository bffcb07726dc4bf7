"""The topology picture from a fake lab's objects: nodes with their addresses and pod ranges,
pods on their nodes, Services with ClusterIPs and arrows to their endpoints."""

from __future__ import annotations

import shutil

import pytest
from test_pictures_diagram import same_content

from labkit.errors import LabError
from labkit.lab import ExecResult
from labkit.model.objects import ServiceEndpoint
from labkit.widgets.topology import (
    owned_blocks,
    pod_lines,
    service_lines,
    topology,
    topology_diagram,
)

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot not installed")

BLACKHOLES = "blackhole 192.168.20.0/26 proto 80 \nblackhole 192.168.20.64/26 proto 80 \n"


def test_flannel_topology_names_every_node_pod_and_service(fakes) -> None:
    """kubectl's `get nodes -o wide` (INTERNAL-IP), `get pods -o wide` (IP, NODE) and `get svc`
    (CLUSTER-IP), pkg/printers/internalversion/printers.go: the same facts, one frame per
    node (``spec.podCIDR`` is Flannel's subnet: flannel pkg/subnet/kube/kube.go reads it)."""
    lab = fakes.web_cluster(cni="flannel")
    text = topology(lab).text
    assert "node lab-worker | IP 172.18.0.3 | pod CIDR 10.244.1.0/24" in text
    assert "  pod default/web-5d4f8c7b9d-abcde | 10.244.1.3" in text
    assert "svc shop/db | ClusterIP 10.96.20.20 | ports 5432/TCP" in text
    assert "svc default/web -> pod default/web-5d4f8c7b9d-fghij" in text
    assert "svc kube-system/kube-dns -> pod kube-system/coredns-7c65d6cfc9-xyzab" in text
    assert text.count(" -> ") == 5  # 3 web endpoints, db, kube-dns
    assert not [c for c in lab.calls if c[0] == "node_exec"]  # nothing but lab.get on Flannel


def test_calico_shows_the_blocks_from_blackhole_routes(fakes) -> None:
    """Felix's route manager (felix/dataplane/linux/route_mgr.go, blackholeRoutes) adds a
    blackhole route per IPAM block affine to the node; spec.podCIDR is not Calico's (calico-ipam
    ignores it), so the picture says so."""
    lab = fakes.web_cluster(cni="calico")
    key = ("lab-worker", ("ip", "-4", "route", "show", "type", "blackhole"))
    lab.exec_outputs[key] = ExecResult(key[1], 0, BLACKHOLES)
    text = topology(lab).text
    assert (
        "node lab-worker | IP 172.18.0.3 | Calico blocks 192.168.20.0/26, 192.168.20.64/26"
        " | spec.podCIDR 10.244.1.0/24 unused by Calico IPAM"
    ) in text
    assert "node lab-worker2 | IP 172.18.0.4 | Calico blocks unknown: `ip route` failed" in text


def test_owned_blocks_reads_only_blackholes() -> None:
    """iproute2's route listing (`ip route show type blackhole`): one route per line, type
    first; other lines and bad prefixes are ignored, blocks come out sorted."""
    text = "blackhole 10.0.1.0/26 proto 80\nblackhole bogus\n10.0.0.0/26 dev eth0\n" + (
        "blackhole 10.0.0.0/26"
    )
    assert owned_blocks(text) == ["10.0.0.0/26", "10.0.1.0/26"]
    assert owned_blocks("") == []


def test_one_namespace_keeps_only_its_pods_and_services(fakes) -> None:
    """`kubectl get pods,svc -n shop`: a namespace narrows the picture; nodes stay."""
    text = topology(fakes.web_cluster(cni="flannel"), namespace="shop").text
    assert "pod shop/db" in text and "svc shop/db" in text
    assert "default/" not in text and "kube-system/" not in text
    assert "node lab-control-plane" in text


@pytest.mark.parametrize("bad", ["Shop", "a/b", 3, ""])
def test_bad_namespace_is_refused(fakes, bad) -> None:
    """A namespace is a DNS-1123 label (k8s.io/apimachinery validation.IsDNS1123Label)."""
    with pytest.raises(LabError, match="is not a namespace name") as err:
        topology(fakes.web_cluster(cni="flannel"), namespace=bad)
    assert "Pass a namespace" in err.value.fix


def test_pod_and_service_lines_cover_every_shape(fakes) -> None:
    """kubectl's pod printer shows a host-network pod with its node's IP and a pending pod
    with none; the service printer shows `None` for a headless ClusterIP, node ports as
    ``port:nodePort``, and an ExternalName's target (printers.go printService)."""
    assert pod_lines(fakes.pod("p", None, phase="Pending")) == ("pod default/p", "no IP (Pending)")
    host = fakes.pod("h", "172.18.0.3")
    host["spec"]["hostNetwork"] = True
    assert pod_lines(host) == ("pod default/h", "host network 172.18.0.3")
    headless = fakes.service("hl", "None", selector={"app": "x"})
    assert service_lines(headless)[1] == "ClusterIP headless"
    external = {"kind": "Service", "metadata": {"name": "ex", "namespace": "default"}}
    external["spec"] = {"type": "ExternalName", "externalName": "example.com"}
    assert service_lines(external) == ("svc default/ex", "ExternalName example.com")
    lb = fakes.service("lb", "10.96.1.1", selector={"app": "x"})
    lb["spec"]["type"] = "LoadBalancer"
    lb["spec"]["ports"][0]["nodePort"] = 31000
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "172.18.255.200"}]}}
    assert service_lines(lb)[1:] == (
        "LoadBalancer 10.96.1.1",
        f"ports {lb['spec']['ports'][0]['port']}/TCP node port 31000",
        "load balancer 172.18.255.200",
    )


def test_endpoints_without_pods_and_unready_ones(fakes) -> None:
    """EndpointSlice endpoints (discovery.k8s.io/v1): an address with no targetRef (the
    kubernetes Service's API server) gets a box of its own; a not-ready endpoint
    (conditions.ready false) a dashed arrow saying so; an unscheduled pod a frame of its own."""
    node = fakes.node("n1", "172.18.0.2", "10.244.0.0/24")
    ready = fakes.pod("a", "10.244.0.5", node_name="n1")
    pending = fakes.pod("b", None, phase="Pending", node_name="")
    svc = fakes.service("s", "10.96.0.9", selector={"app": "x"})
    endpoints = {
        ("default", "s"): [
            ServiceEndpoint("10.244.0.5", "a", "default", "n1", False, ()),
            ServiceEndpoint("172.18.0.2", None, None, None, True, ()),
        ]
    }
    diagram = topology_diagram("t", [node], [ready, pending], [svc], endpoints)
    assert [g.lines for g in diagram.groups] == [
        ("node n1", "IP 172.18.0.2", "pod CIDR 10.244.0.0/24"),
        ("no node",),
    ]
    arrows = {(a.dst, a.label, a.dashed) for a in diagram.arrows}
    assert arrows == {("pod0", "not ready", True), ("svc0ep1", "", False)}
    assert ("endpoint 172.18.0.2", "no pod listed") in [b.lines for b in diagram.boxes]


@needs_dot
def test_topology_svg_equals_its_text(fakes) -> None:
    """Graphviz's SVG (one <text> per label line, edge titles ``tail->head``) holds every node,
    pod, IP and Service of the text form, and the text form every one of the SVG's."""
    same_content(topology(fakes.web_cluster(cni="flannel")))
