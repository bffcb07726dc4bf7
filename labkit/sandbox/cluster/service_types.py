"""What a Service's type implies: which fields it needs (node ports, a health-check node port,
a traffic policy) and, on an update that changes the type, the API server's dropping of the
fields the new type no longer uses (pkg/registry/core/service/strategy.go,
dropTypeDependentFields). Pure: specs in, spec out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Spec = Mapping[str, Any]


def needs_node_ports(spec: Spec) -> bool:
    """NodePort and LoadBalancer Services get node ports (strategy.go needsNodePort)."""
    return spec.get("type") in ("NodePort", "LoadBalancer")


def needs_health_check(spec: Spec) -> bool:
    """A LoadBalancer with externalTrafficPolicy Local gets a health-check node port
    (strategy.go needsHCNodePort, service util NeedsHealthCheck)."""
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def externally_accessible(spec: Spec) -> bool:
    """NodePort, LoadBalancer, or a ClusterIP Service with externalIPs (ExternallyAccessible)."""
    return needs_node_ports(spec) or (
        spec.get("type", "ClusterIP") == "ClusterIP" and bool(spec.get("externalIPs"))
    )


def _node_ports(spec: Spec) -> set[int]:
    return {int(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort")}


def drop_type_dependent_fields(spec: dict[str, Any], old: Spec) -> None:
    """On an update, wipe each field the new type does not use, when the client sent it back
    unchanged (GET, edit type, PUT): node ports, healthCheckNodePort, externalTrafficPolicy,
    allocateLoadBalancerNodePorts, loadBalancerClass. A changed value stays, for validation."""
    if (
        needs_node_ports(old)
        and not needs_node_ports(spec)
        and _node_ports(spec) <= _node_ports(old)
    ):
        for port in spec.get("ports") or []:
            port.pop("nodePort", None)
    if (
        needs_health_check(old)
        and not needs_health_check(spec)
        and spec.get("healthCheckNodePort") == old.get("healthCheckNodePort")
    ):
        spec.pop("healthCheckNodePort", None)
    leaves_load_balancer = old.get("type") == "LoadBalancer" and spec.get("type") != "LoadBalancer"
    for field in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
        if leaves_load_balancer and field in spec and spec.get(field) == old.get(field):
            spec.pop(field)
    if (
        externally_accessible(old)
        and not externally_accessible(spec)
        and spec.get("externalTrafficPolicy") == old.get("externalTrafficPolicy")
    ):
        spec.pop("externalTrafficPolicy", None)
