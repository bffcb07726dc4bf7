"""A `kubectl get nodes,pods -o wide`-style view of any Lab, built only from `lab.get`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labkit.lab import Lab
from labkit.model.objects import labels_of, meta, name_of, node_internal_ip, pod_ip, pod_node
from labkit.tables import EMPTY, render_table

ROLE_LABEL = "node-role.kubernetes.io/"


def _node_rows(nodes: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    rows = []
    for node in sorted(nodes, key=name_of):
        status = node.get("status") or {}
        ready = next(
            (c["status"] for c in status.get("conditions") or [] if c.get("type") == "Ready"),
            "Unknown",
        )
        roles = sorted(
            k.removeprefix(ROLE_LABEL) for k in labels_of(node) if k.startswith(ROLE_LABEL)
        )
        rows.append(
            [
                f"node/{name_of(node)}",
                "Ready" if ready == "True" else "NotReady",
                ",".join(roles) or EMPTY,
                (status.get("nodeInfo") or {}).get("kubeletVersion"),
                node_internal_ip(node),
                (node.get("spec") or {}).get("podCIDR"),
            ]
        )
    return rows


def _pod_rows(pods: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    rows = []
    for pod in sorted(pods, key=lambda p: (meta(p).get("namespace", ""), name_of(p))):
        status = pod.get("status") or {}
        containers = (pod.get("spec") or {}).get("containers") or []
        ready = sum(1 for c in status.get("containerStatuses") or [] if c.get("ready"))
        rows.append(
            [
                meta(pod).get("namespace"),
                f"pod/{name_of(pod)}",
                f"{ready}/{len(containers)}",
                status.get("phase"),
                pod_ip(pod),
                pod_node(pod),
            ]
        )
    return rows


def render_status(lab: Lab) -> str:
    """Nodes then pods of every namespace, with IPs and placement."""
    caps = lab.capabilities
    header = (
        f"Lab {lab.name!r}: backend {lab.backend}, CNI {lab.cni}, "
        f"kube-proxy {caps.kube_proxy_mode}, "
        f"NetworkPolicy {'enforced' if caps.network_policy else 'NOT enforced'}"
    )
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
