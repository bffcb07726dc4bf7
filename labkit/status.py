"""A `kubectl get nodes,pods -o wide`-style view of any Lab, built only from `lab.get`, with the
cells of `labkit kubectl get` (labkit.printers) so the two never disagree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.lab import Capabilities, Lab
from labkit.model.objects import meta, name_of, namespace_of, node_internal_ip, pod_node
from labkit.printers import cells
from labkit.tables import render_table

NODE_HEADERS = ("NAME", "STATUS", "ROLES", "VERSION", "INTERNAL-IP", "POD-CIDR")
POD_HEADERS = ("NAMESPACE", "NAME", "READY", "STATUS", "IP", "NODE")
SERVICE_HEADERS = ("NAMESPACE", "NAME", "TYPE", "CLUSTER-IP", "PORT(S)")


def _node_rows(nodes: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    return [
        [
            f"node/{name_of(node)}",
            cells.node_status(node),
            cells.node_roles(node),
            ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion"),
            node_internal_ip(node),
            (node.get("spec") or {}).get("podCIDR"),
        ]
        for node in sorted(nodes, key=name_of)
    ]


def _pod_rows(pods: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    return [
        [
            meta(pod).get("namespace"),
            f"pod/{name_of(pod)}",
            cells.pod_ready(pod),
            cells.pod_status(pod),
            cells.pod_ip(pod),
            pod_node(pod),
        ]
        for pod in sorted(pods, key=lambda p: (meta(p).get("namespace", ""), name_of(p)))
    ]


def _service_rows(services: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    return [
        [
            namespace_of(service),
            f"service/{name_of(service)}",
            (service.get("spec") or {}).get("type", "ClusterIP"),
            cells.service_cluster_ip(service),
            cells.service_ports(service),
        ]
        for service in sorted(services, key=lambda s: (namespace_of(s, ""), name_of(s)))
    ]


@dataclass(frozen=True)
class Table:
    """One table of the status: its column headers and rows (cells as `labkit kubectl get`)."""

    headers: tuple[str, ...]
    rows: list[list[Any]]


@dataclass(frozen=True)
class StatusView:
    """Everything the status shows, read once: the text form and the notebook panel render it."""

    header: str
    capabilities: Capabilities
    nodes: Table
    pods: Table
    services: Table
    by_hand: list[str]


def status_view(lab: Lab) -> StatusView:
    """Read the lab's backend, CNI, capabilities, nodes, pods, Services and hand-made network
    namespaces, for any front end to render."""
    caps = lab.capabilities
    header = (
        f"Lab {lab.name!r}: backend {lab.backend}, CNI {lab.cni}, "
        f"kube-proxy {caps.kube_proxy_mode}, "
        f"NetworkPolicy {'enforced' if caps.network_policy else 'NOT enforced'}"
    )
    if caps.load_balancer_model:
        header += f"\nLoadBalancer model: {caps.load_balancer_model}"
    header += "".join(f"\n{lab.cni} model: {line}" for line in caps.cni_model)
    node_objects = lab.get("nodes", namespace=None)
    made = [
        f"{name_of(n)}: {', '.join(found)}"
        for n in sorted(node_objects, key=name_of)
        if (found := lab.netns_list(name_of(n)))
    ]
    return StatusView(
        header,
        caps,
        Table(NODE_HEADERS, _node_rows(node_objects)),
        Table(POD_HEADERS, _pod_rows(lab.get("pods", namespace=None))),
        Table(SERVICE_HEADERS, _service_rows(lab.get("services", namespace=None))),
        made,
    )


def render_status(lab: Lab) -> str:
    """The lab's backend and models, then nodes and pods of every namespace, with IPs and
    placement."""
    view = status_view(lab)
    nodes = render_table(list(view.nodes.headers), view.nodes.rows)
    pods = render_table(list(view.pods.headers), view.pods.rows)
    by_hand = f"\n\nnetwork namespaces made by hand (lab.netns_add): {'; '.join(view.by_hand)}"
    return f"{view.header}\n\n{nodes}\n\n{pods}" + (by_hand if view.by_hand else "")
