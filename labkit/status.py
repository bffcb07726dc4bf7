"""A `kubectl get nodes,pods -o wide`-style view of any Lab, built only from `lab.get`, with the
cells of `labkit kubectl get` (labkit.printers) so the two never disagree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labkit.lab import Lab
from labkit.model.objects import meta, name_of, node_internal_ip, pod_node
from labkit.printers import cells
from labkit.tables import render_table


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


def render_status(lab: Lab) -> str:
    """The lab's backend and models, then nodes and pods of every namespace, with IPs and
    placement."""
    caps = lab.capabilities
    header = (
        f"Lab {lab.name!r}: backend {lab.backend}, CNI {lab.cni}, "
        f"kube-proxy {caps.kube_proxy_mode}, "
        f"NetworkPolicy {'enforced' if caps.network_policy else 'NOT enforced'}"
    )
    if caps.load_balancer_model:
        header += f"\nLoadBalancer model: {caps.load_balancer_model}"
    node_objects = lab.get("nodes", namespace=None)
    nodes = render_table(
        ["NAME", "STATUS", "ROLES", "VERSION", "INTERNAL-IP", "POD-CIDR"],
        _node_rows(node_objects),
    )
    pods = render_table(
        ["NAMESPACE", "NAME", "READY", "STATUS", "IP", "NODE"],
        _pod_rows(lab.get("pods", namespace=None)),
    )
    made = [
        f"{name_of(n)}: {', '.join(found)}"
        for n in sorted(node_objects, key=name_of)
        if (found := lab.netns_list(name_of(n)))
    ]
    by_hand = f"\n\nnetwork namespaces made by hand (lab.netns_add): {'; '.join(made)}"
    return f"{header}\n\n{nodes}\n\n{pods}" + (by_hand if made else "")
