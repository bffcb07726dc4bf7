"""A `kubectl get nodes,pods -o wide`-style view of any Lab, built only from `lab.get`."""

from __future__ import annotations

from typing import Any

from labkit.lab import Lab
from labkit.tables import render_table


def _node_rows(nodes: list[dict]) -> list[list[Any]]:
    rows = []
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        meta, status = node["metadata"], node.get("status") or {}
        ready = next(
            (c["status"] for c in status.get("conditions") or [] if c.get("type") == "Ready"),
            "Unknown",
        )
        roles = (
            ",".join(
                sorted(
                    k.split("/", 1)[1]
                    for k in (meta.get("labels") or {})
                    if k.startswith("node-role.kubernetes.io/")
                )
            )
            or "<none>"
        )
        ip = next(
            (a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"),
            None,
        )
        version = (status.get("nodeInfo") or {}).get("kubeletVersion")
        rows.append(
            [
                f"node/{meta['name']}",
                "Ready" if ready == "True" else "NotReady",
                roles,
                version,
                ip,
                (node.get("spec") or {}).get("podCIDR"),
            ]
        )
    return rows


def _pod_rows(pods: list[dict]) -> list[list[Any]]:
    rows = []
    for pod in sorted(
        pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])
    ):
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        containers = spec.get("containers") or []
        ready = sum(1 for c in status.get("containerStatuses") or [] if c.get("ready"))
        rows.append(
            [
                meta.get("namespace"),
                f"pod/{meta['name']}",
                f"{ready}/{len(containers)}",
                status.get("phase"),
                status.get("podIP"),
                spec.get("nodeName"),
            ]
        )
    return rows


def render_status(lab: Lab) -> str:
    """Nodes then pods of every namespace, with IPs and placement."""
    header = (
        f"Lab {lab.name!r}: backend {lab.backend}, CNI {lab.cni}, kube-proxy {lab.capabilities.kube_proxy_mode}, "
        f"NetworkPolicy {'enforced' if lab.capabilities.network_policy else 'NOT enforced'}"
    )
    nodes = render_table(
        ["NAME", "STATUS", "ROLES", "VERSION", "INTERNAL-IP", "POD-CIDR"],
        _node_rows(lab.get("nodes", namespace=None)),
    )
    pods = render_table(
        ["NAMESPACE", "NAME", "READY", "STATUS", "IP", "NODE"],
        _pod_rows(lab.get("pods", namespace=None)),
    )
    return f"{header}\n\n{nodes}\n\n{pods}"
