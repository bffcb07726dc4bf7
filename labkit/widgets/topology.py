"""The topology picture: every node with its address and pod range, the pods on it with their
IPs, and every Service with its ClusterIP and arrows to its endpoints, read through the seam.

On Calico a node's ``spec.podCIDR`` is not where its pods' addresses come from (Calico's IPAM
hands out blocks of its own), so the picture shows the blocks each node's routing table holds
(the blackhole routes Calico adds for the blocks a node owns) and says so.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from labkit.checks.view import ClusterView
from labkit.errors import LabError
from labkit.inputs import dns1123_label, shown
from labkit.lab import Lab
from labkit.model.objects import (
    ServiceEndpoint,
    is_host_network,
    name_of,
    namespace_of,
    node_internal_ip,
    node_pod_cidr,
    pod_ip,
    pod_node,
    pod_phase,
)
from labkit.widgets.diagram import Arrow, Box, Diagram, Group
from labkit.widgets.picture import Picture

Obj = Mapping[str, Any]
Blocks = Mapping[str, Sequence[str] | str]
"""Per node: the Calico blocks it owns, or why they could not be read."""


def node_lines(node: Obj, blocks: Blocks | None) -> tuple[str, ...]:
    """A node's frame label: name, InternalIP, and where its pods' addresses come from."""
    name = name_of(node)
    lines = [f"node {name}", f"IP {node_internal_ip(node) or 'none'}"]
    cidr = node_pod_cidr(node) or "none"
    if blocks is None:
        lines.append(f"pod CIDR {cidr}")
        return tuple(lines)
    owned = blocks.get(name, ())
    if isinstance(owned, str):
        lines.append(f"Calico blocks unknown: {owned}")
    else:
        lines.append(f"Calico blocks {', '.join(owned) if owned else 'none yet'}")
    lines.append(f"spec.podCIDR {cidr} unused by Calico IPAM")
    return tuple(lines)


def pod_lines(pod: Obj) -> tuple[str, ...]:
    """A pod's box: its name and address (host-network pods share their node's)."""
    ip = pod_ip(pod)
    where = "host network " if is_host_network(pod) else ""
    state = f"{where}{ip}" if ip else f"no IP ({pod_phase(pod)})"
    return (f"pod {namespace_of(pod)}/{name_of(pod)}", state)


def service_lines(svc: Obj) -> tuple[str, ...]:
    """A Service's box: name, type, ClusterIP and ports (with node ports)."""
    spec = svc.get("spec") or {}
    kind = spec.get("type") or "ClusterIP"
    lines = [f"svc {namespace_of(svc)}/{name_of(svc)}"]
    if kind == "ExternalName":
        lines.append(f"ExternalName {spec.get('externalName', '')}")
        return tuple(lines)
    cluster_ip = spec.get("clusterIP") or "none"
    lines.append(f"{kind} {'headless' if cluster_ip == 'None' else cluster_ip}")
    ports = []
    for p in spec.get("ports") or []:
        text = f"{p.get('port')}/{p.get('protocol', 'TCP')}"
        if p.get("nodePort"):
            text += f" node port {p['nodePort']}"
        ports.append(text)
    if ports:
        lines.append("ports " + ", ".join(ports))
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    lb = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
    if lb:
        lines.append("load balancer " + ", ".join(lb))
    return tuple(lines)


def topology_diagram(
    title: str,
    nodes: Sequence[Obj],
    pods: Sequence[Obj],
    services: Sequence[Obj],
    endpoints: Mapping[tuple[str, str], Sequence[ServiceEndpoint]],
    blocks: Blocks | None = None,
) -> Diagram:
    """The topology from the lab's objects: a frame per node holding its pods, a box per Service
    with an arrow to each endpoint (dashed when not ready); ``endpoints`` by (namespace, name);
    ``blocks`` only on Calico."""
    pod_ids = {(namespace_of(p), name_of(p)): f"pod{i}" for i, p in enumerate(pods)}
    groups = []
    for i, node in enumerate(nodes):
        mine = [p for p in pods if pod_node(p) == name_of(node)]
        groups.append(
            Group(
                f"node{i}",
                node_lines(node, blocks),
                "node",
                tuple(
                    Box(pod_ids[(namespace_of(p), name_of(p))], pod_lines(p), "pod") for p in mine
                ),
            )
        )
    node_names = {name_of(n) for n in nodes}
    loose = [p for p in pods if pod_node(p) not in node_names]
    if loose:
        boxes = tuple(
            Box(pod_ids[(namespace_of(p), name_of(p))], pod_lines(p), "pod") for p in loose
        )
        groups.append(Group("unscheduled", ("no node",), "note", boxes))
    svc_boxes: list[Box] = []
    arrows: list[Arrow] = []
    for i, svc in enumerate(services):
        svc_id = f"svc{i}"
        svc_boxes.append(Box(svc_id, service_lines(svc), "service"))
        for j, ep in enumerate(endpoints.get((namespace_of(svc), name_of(svc)), ())):
            target = pod_ids.get((ep.namespace or "", ep.pod or ""))
            if target is None:
                target = f"{svc_id}ep{j}"
                svc_boxes.append(Box(target, (f"endpoint {ep.ip}", "no pod listed"), "note"))
            arrows.append(Arrow(svc_id, target, "" if ep.ready else "not ready", not ep.ready))
    return Diagram(title, tuple(groups), tuple(svc_boxes), tuple(arrows), across=True)


def owned_blocks(routes: str) -> list[str]:
    """The blocks a Calico node owns, from ``ip route show type blackhole``: Calico adds a
    blackhole route for each block affine to the node, so addresses it has not handed out go
    nowhere."""
    found = []
    for line in routes.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "blackhole":
            try:
                found.append(str(ipaddress.ip_network(words[1], strict=False)))
            except ValueError:
                continue
    return sorted(found, key=lambda c: ipaddress.ip_network(c))


def calico_blocks(lab: Lab, nodes: Sequence[Obj]) -> dict[str, list[str] | str]:
    """Each node's Calico blocks, read from its routing table through ``lab.node_exec``; a
    node whose routes cannot be read gets the reason instead."""
    out: dict[str, list[str] | str] = {}
    for node in nodes:
        name = name_of(node)
        result = lab.node_exec(name, ["ip", "-4", "route", "show", "type", "blackhole"])
        if result.ok:
            out[name] = owned_blocks(result.stdout)
        else:
            out[name] = f"`ip route` failed: {(result.stderr or result.stdout).strip()[:60]}"
    return out


def topology(lab: Lab, namespace: str | None = None) -> Picture:
    """Draw the lab's nodes, pods and Services (only one namespace's pods and Services when
    ``namespace`` is given), as SVG in a notebook and as text when printed."""
    if namespace is not None and (not isinstance(namespace, str) or dns1123_label(namespace)):
        raise LabError(
            f"namespace {shown(namespace)} is not a namespace name.",
            "Pass a namespace such as 'default' or 'three-tier', or None for all of them.",
        )
    view = ClusterView(lab)
    pods = [p for p in view.pods if namespace in (None, namespace_of(p))]
    services = [s for s in view.services if namespace in (None, namespace_of(s))]
    endpoints = {
        (namespace_of(s), name_of(s)): view.endpoints(name_of(s), namespace_of(s)) for s in services
    }
    blocks = calico_blocks(lab, view.nodes) if lab.cni == "calico" else None
    where = f", namespace {namespace}" if namespace else ""
    title = f"lab {lab.name}: {lab.backend}, {lab.cni}{where}"
    return Picture(topology_diagram(title, view.nodes, pods, services, endpoints, blocks))
