"""Admitting a Service: its defaults, and the ClusterIP, NodePorts and LoadBalancer IP it asks
for or is given, refused with the API server's reasons when taken or out of range."""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Mapping
from typing import Any

from labkit.errors import LabError
from labkit.sandbox.cluster.allocation import (
    FIXED_CLUSTER_IPS,
    LB_POOL,
    NODE_PORT_MAX,
    NODE_PORT_MIN,
    SERVICE_CIDR,
    allocate_cluster_ip,
    allocate_node_port,
    cluster_ip_holder,
    load_balancer_ip,
    node_port_holder,
)
from labkit.sandbox.cluster.service_types import drop_type_dependent_fields, needs_health_check
from labkit.sandbox.cluster.world import World

NODE_PORT_RANGE = f"{NODE_PORT_MIN}-{NODE_PORT_MAX}"


def admit_service(
    world: World,
    doc: Mapping[str, Any],
    obj: dict[str, Any],
    existing: dict[str, Any] | None,
    where: str,
) -> None:
    """Default a Service's spec and settle its ClusterIP, NodePorts and requested LB address;
    an update keeps what the Service already had."""
    ns, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    spec = copy.deepcopy(dict(doc.get("spec") or {}))
    svc_type = spec.setdefault("type", "ClusterIP")
    if existing is not None:
        drop_type_dependent_fields(spec, existing["spec"])
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):  # the API server's default
            port["targetPort"] = port["port"]
        if port.get("nodePort") and svc_type not in ("NodePort", "LoadBalancer"):
            raise LabError(
                f"{where} sets nodePort {port['nodePort']} but is of type {svc_type}",
                "Set type: NodePort (or LoadBalancer), or remove the nodePort field.",
            )
    obj["status"] = {"loadBalancer": {}}
    if svc_type == "ExternalName":
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            spec.pop(key, None)
        obj["spec"] = spec
        return
    old_spec = (
        existing["spec"]
        if existing is not None and existing["spec"].get("type") != "ExternalName"
        else None
    )
    ip = _cluster_ip(world, spec, old_spec, ns, name, where)
    spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    if svc_type in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
        _assign_node_ports(world, spec, old_spec, ns, name, where)
    _assign_health_check_node_port(world, spec, old_spec, ns, name, where)
    if svc_type == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
        wanted = spec.get("loadBalancerIP")
        if wanted:
            _check_load_balancer_ip(world, wanted, ns, name, where)
        if (
            existing is not None
            and existing["spec"].get("type") == "LoadBalancer"
            and (not wanted or wanted == load_balancer_ip(existing))
        ):
            obj["status"] = copy.deepcopy(existing.get("status") or {"loadBalancer": {}})
    obj["spec"] = spec


def _cluster_ip(
    world: World,
    spec: Mapping[str, Any],
    old_spec: Mapping[str, Any] | None,
    ns: str,
    name: str,
    where: str,
) -> str:
    """The ClusterIP the Service ends up with: kept on update, "None" when headless, the
    requested one if free, else a fresh one."""
    requested = spec.get("clusterIP") or None
    if old_spec is not None:
        current = old_spec.get("clusterIP")
        if requested is None:
            requested = current
        elif requested != current:
            raise LabError(
                f"{where} has clusterIP {current}, which cannot change to {requested}",
                f"Leave spec.clusterIP out to keep {current}, or delete the Service and apply "
                "it again.",
            )
    if requested == "None":
        if spec["type"] != "ClusterIP":
            raise LabError(
                f"{where} is headless (clusterIP: None) but of type {spec['type']}",
                "Only a ClusterIP Service can be headless: set type: ClusterIP or remove "
                "clusterIP: None.",
            )
        return "None"
    if requested:
        return _check_requested_cluster_ip(world, str(requested), ns, name, where)
    ip = allocate_cluster_ip(world, ns, name)
    if ip is None:
        raise LabError(
            f"No ClusterIP is free in {SERVICE_CIDR} for {where}",
            "Delete Services you no longer need, then apply again.",
        )
    return ip


def _check_requested_cluster_ip(
    world: World, requested: str, ns: str, name: str, where: str
) -> str:
    try:
        address = ipaddress.ip_address(requested)
    except ValueError:
        raise LabError(
            f"{where} asks for clusterIP {requested!r}, which is not an IP address",
            "Give an address in 10.96.0.0/16, 'None' for a headless Service, or leave it out.",
        ) from None
    if address not in SERVICE_CIDR or address in (
        SERVICE_CIDR.network_address,
        SERVICE_CIDR.broadcast_address,
    ):
        raise LabError(
            f"{where} asks for clusterIP {requested}, outside the service range {SERVICE_CIDR}",
            f"Pick an address inside {SERVICE_CIDR}, or leave clusterIP out to get one.",
        )
    holder = cluster_ip_holder(world, requested, ns, name)
    if holder is None and requested in FIXED_CLUSTER_IPS.values():
        owner_ns, owner_name = next(k for k, v in FIXED_CLUSTER_IPS.items() if v == requested)
        if (owner_ns, owner_name) != (ns, name) and world.find(
            "Service", owner_ns, owner_name
        ) is not None:
            holder = f"{owner_ns}/{owner_name}"
    if holder is not None:
        raise LabError(
            f"{where} asks for clusterIP {requested}, which Service {holder} already has",
            "Pick another address, or leave clusterIP out to get a free one.",
        )
    return requested


def _assign_node_ports(
    world: World,
    spec: dict[str, Any],
    old_spec: Mapping[str, Any] | None,
    ns: str,
    name: str,
    where: str,
) -> None:
    in_service: dict[int, set[str]] = {}
    old_ports = (old_spec or {}).get("ports") or []
    for port in spec.get("ports") or []:
        protocol = port["protocol"]
        number = port.get("nodePort")
        if number:
            _check_requested_node_port(world, int(number), protocol, in_service, ns, name, where)
        else:
            number = _previous_node_port(port, old_ports, in_service)
            if number is None or node_port_holder(world, number, ns, name) is not None:
                port_id = f"{port.get('name') or port['port']}/{protocol}"
                number = allocate_node_port(world, ns, name, port_id, set(in_service))
            if number is None:
                raise LabError(
                    f"No NodePort is free in {NODE_PORT_RANGE} for {where}",
                    "Delete NodePort Services you no longer need, then apply again.",
                )
        port["nodePort"] = int(number)
        in_service.setdefault(int(number), set()).add(protocol)


def _check_requested_node_port(
    world: World,
    number: int,
    protocol: str,
    in_service: Mapping[int, set[str]],
    ns: str,
    name: str,
    where: str,
) -> None:
    """Refuse a nodePort out of range, held by another Service, or used twice in this one."""
    if not NODE_PORT_MIN <= number <= NODE_PORT_MAX:
        raise LabError(
            f"{where} asks for nodePort {number}: provided port is not in the valid range. "
            f"The range of valid ports is {NODE_PORT_RANGE}",
            f"Pick a port between {NODE_PORT_MIN} and {NODE_PORT_MAX}, or leave nodePort out.",
        )
    holder = node_port_holder(world, number, ns, name)
    if holder is not None:
        raise LabError(
            f"{where} asks for nodePort {number}: provided port is already allocated "
            f"(Service {holder} uses it)",
            f"Pick another port in {NODE_PORT_RANGE}, or leave nodePort out to get a free one.",
        )
    if protocol in in_service.get(number, set()):
        raise LabError(
            f"{where} uses nodePort {number} twice for {protocol}",
            "Give each port of the Service its own nodePort.",
        )


def _previous_node_port(
    port: Mapping[str, Any], old_ports: list[Mapping[str, Any]], in_service: Mapping[int, set[str]]
) -> int | None:
    """The nodePort this port had before an update (matched by port+protocol, then by name)."""
    for old in old_ports:
        same_port = (
            old.get("port") == port["port"] and old.get("protocol", "TCP") == port["protocol"]
        )
        same_name = bool(port.get("name")) and old.get("name") == port.get("name")
        number = old.get("nodePort")
        if (
            (same_port or same_name)
            and number
            and port["protocol"] not in in_service.get(number, set())
        ):
            return int(number)
    return None


def _check_load_balancer_ip(world: World, wanted: str, ns: str, name: str, where: str) -> None:
    if wanted not in LB_POOL:
        raise LabError(
            f"{where} asks for loadBalancerIP {wanted}, outside the pool "
            f"{LB_POOL[0]}-{LB_POOL[-1]}",
            "Pick an address from the pool, or leave loadBalancerIP out to get one.",
        )
    for svc in world.ordered("Service"):
        other = svc["metadata"]
        if (other["namespace"], other["name"]) == (ns, name) or svc["spec"].get(
            "type"
        ) != "LoadBalancer":
            continue
        if wanted in (load_balancer_ip(svc), svc["spec"].get("loadBalancerIP")):
            raise LabError(
                f"{where} asks for loadBalancerIP {wanted}, which Service "
                f"{other['namespace']}/{other['name']} already has",
                "Pick another address from the pool, or leave loadBalancerIP out.",
            )


def _assign_health_check_node_port(
    world: World,
    spec: dict[str, Any],
    old_spec: Mapping[str, Any] | None,
    ns: str,
    name: str,
    where: str,
) -> None:
    """A LoadBalancer with externalTrafficPolicy Local gets a healthCheckNodePort from the node
    port range: the requested one if free, else the one it had, else a fresh one
    (service/storage/alloc.go allocHealthCheckNodePort); any other Service may not set one."""
    requested = spec.get("healthCheckNodePort")
    if not needs_health_check(spec):
        if requested:
            raise LabError(
                f"{where} sets healthCheckNodePort {requested}, but only a LoadBalancer with "
                "externalTrafficPolicy: Local has one",
                "Remove spec.healthCheckNodePort, or set type: LoadBalancer and "
                "externalTrafficPolicy: Local.",
            )
        return
    own = {int(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort")}
    if requested:
        number = int(requested)
        _check_requested_node_port(world, number, "TCP", {n: {"TCP"} for n in own}, ns, name, where)
    else:
        kept = (old_spec or {}).get("healthCheckNodePort")
        if kept and int(kept) not in own and node_port_holder(world, int(kept), ns, name) is None:
            number = int(kept)
        else:
            found = allocate_node_port(world, ns, name, "healthCheckNodePort", own)
            if found is None:
                raise LabError(
                    f"No NodePort is free in {NODE_PORT_RANGE} for {where}'s health check",
                    "Delete NodePort Services you no longer need, then apply again.",
                )
            number = found
    spec["healthCheckNodePort"] = number
