"""kube-proxy's service health checks on a sandbox node, and the load balancer that follows them.

For each LoadBalancer Service with externalTrafficPolicy Local, kube-proxy serves HTTP on the
Service's healthCheckNodePort on every node, answering 200 where the node has ready local
endpoints and 503 elsewhere (pkg/proxy/healthcheck/service_health.go, fed by
EndpointsMap.LocalReadyEndpoints: distinct ready endpoint IPs on the node). A cloud load balancer
sends the Service's traffic only to nodes whose check answers 200. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from labkit.sandbox.fabric import NodeNet, lb_route_node
from labkit.sandbox.proxyports import ProxyInputs, proxy_inputs

Obj = Mapping[str, Any]


class ServiceHealth(NamedTuple):
    """One Service's health check: its port, addresses and ready local endpoints per node."""

    namespace: str
    name: str
    port: int
    load_balancer_ips: tuple[str, ...]
    local_endpoints: Mapping[str, int]

    def count(self, node: str) -> int:
        """How many ready endpoints the Service has on ``node`` (what the check reports)."""
        return self.local_endpoints.get(node, 0)


def service_health(
    services: Sequence[Obj],
    slices: Sequence[Obj],
    shared: Callable[[], ProxyInputs] | None = None,
) -> list[ServiceHealth]:
    """Every Service kube-proxy serves a health check for, with its local endpoint counts;
    ``shared`` gives ``proxy_inputs(services, slices)`` already read for the nodes' rules."""
    ports, endpoints = shared() if shared is not None else proxy_inputs(services, slices)
    found: dict[tuple[str, str], tuple[int, tuple[str, ...], dict[str, set[str]]]] = {}
    for port in ports:
        if port.health_check_node_port is None:
            continue
        entry = found.setdefault(
            (port.namespace, port.name),
            (port.health_check_node_port, port.load_balancer_ips, {}),
        )
        for ep in endpoints.get(port.key, []):
            if ep.ready and ep.node:
                entry[2].setdefault(ep.node, set()).add(ep.ip)
    return [
        ServiceHealth(ns, name, hc, lb_ips, {node: len(ips) for node, ips in local.items()})
        for (ns, name), (hc, lb_ips, local) in sorted(found.items())
    ]


def health_check_entries(
    checks: Sequence[ServiceHealth], nodes: Sequence[NodeNet]
) -> list[dict[str, Any]]:
    """The ``health_checks`` of the agent's workloads.json: one server per Service and node, in
    the node's namespace, with the count it reports."""
    return [
        {
            "namespace": check.namespace,
            "name": check.name,
            "netns": node.netns,
            "port": check.port,
            "local_endpoints": check.count(node.name),
        }
        for check in checks
        for node in nodes
    ]


def load_balancer_targets(
    checks: Sequence[ServiceHealth], nodes: Sequence[NodeNet], addresses: Sequence[str]
) -> dict[str, NodeNet]:
    """The node the outside world sends each LoadBalancer address to: for a Service with a
    health check, the first worker whose check answers 200 (none: the usual one, where traffic
    then meets kube-proxy's DROP, as behind a cloud LB with no healthy target); else the usual
    one (:func:`labkit.sandbox.fabric.lb_route_node`)."""
    targets = {address: lb_route_node(address, nodes) for address in addresses}
    workers = [n for n in nodes if n.index > 0] or list(nodes)
    for check in checks:
        healthy = next((n for n in workers if check.count(n.name) > 0), None)
        for address in check.load_balancer_ips:
            if healthy is not None and address in targets:
                targets[address] = healthy
    return targets
