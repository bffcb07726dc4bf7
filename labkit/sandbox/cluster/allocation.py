"""Address and port allocation: ClusterIPs, NodePorts, pod IPs (CNI IPAM) and LoadBalancer IPs.

Every allocator starts from a hash of the object's identity and probes linearly, so the same
inputs always get the same addresses, whatever else changed in the cluster meanwhile.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
from collections.abc import Mapping
from typing import Any

from labkit.model.objects import is_host_network, pod_node
from labkit.sandbox.cluster.world import World

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/16")
FIXED_CLUSTER_IPS = {
    ("default", "kubernetes"): "10.96.0.1",
    ("kube-system", "kube-dns"): "10.96.0.10",
}
NODE_PORT_MIN, NODE_PORT_MAX = 30000, 32767
LB_POOL = tuple(f"172.18.255.{i}" for i in range(200, 251))


def _is_service(svc: Mapping[str, Any], namespace: str, name: str) -> bool:
    meta = svc["metadata"]
    return bool(meta["namespace"] == namespace and meta["name"] == name)


def _service_ref(svc: Mapping[str, Any]) -> str:
    return f"{svc['metadata']['namespace']}/{svc['metadata']['name']}"


def _hash_start(identity: str, size: int) -> int:
    return int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "big") % size


def cluster_ip_holder(world: World, ip: str, namespace: str, name: str) -> str | None:
    """``ns/name`` of another Service that already has ClusterIP ``ip``."""
    for svc in world.ordered("Service"):
        if not _is_service(svc, namespace, name) and svc["spec"].get("clusterIP") == ip:
            return _service_ref(svc)
    return None


def allocate_cluster_ip(world: World, namespace: str, name: str) -> str | None:
    """A free ClusterIP from 10.96.0.0/16: fixed for kubernetes and kube-dns, else a hash of
    ns/name and a linear probe."""
    fixed = FIXED_CLUSTER_IPS.get((namespace, name))
    if fixed and cluster_ip_holder(world, fixed, namespace, name) is None:
        return fixed
    taken = {
        s["spec"].get("clusterIP")
        for s in world.ordered("Service")
        if not _is_service(s, namespace, name)
    }
    taken |= {ip for key, ip in FIXED_CLUSTER_IPS.items() if key != (namespace, name)}
    base, size = int(SERVICE_CIDR.network_address), SERVICE_CIDR.num_addresses - 2
    start = _hash_start(f"{namespace}/{name}", size)
    for step in range(size):
        ip = str(ipaddress.ip_address(base + 1 + (start + step) % size))
        if ip not in taken:
            return ip
    return None


def held_node_ports(svc: Mapping[str, Any]) -> set[int]:
    """The node ports a Service holds: its ports' nodePorts and its healthCheckNodePort, which
    the API server allocates from the same range (service/storage/alloc.go)."""
    spec = svc["spec"]
    held = {int(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort")}
    if spec.get("healthCheckNodePort"):
        held.add(int(spec["healthCheckNodePort"]))
    return held


def node_port_holder(world: World, port: int, namespace: str, name: str) -> str | None:
    """``ns/name`` of another Service that already holds NodePort ``port``."""
    for svc in world.ordered("Service"):
        if not _is_service(svc, namespace, name) and port in held_node_ports(svc):
            return _service_ref(svc)
    return None


def allocate_node_port(
    world: World, namespace: str, name: str, port_id: str, taken: set[int]
) -> int | None:
    """A free NodePort in 30000-32767 from a hash of ns/name/port, probing linearly."""
    held = set(taken)
    for svc in world.ordered("Service"):
        if not _is_service(svc, namespace, name):
            held |= held_node_ports(svc)
    size = NODE_PORT_MAX - NODE_PORT_MIN + 1
    start = _hash_start(f"{namespace}/{name}/{port_id}", size)
    for step in range(size):
        candidate = NODE_PORT_MIN + (start + step) % size
        if candidate not in held:
            return candidate
    return None


def load_balancer_ip(svc: Mapping[str, Any]) -> str | None:
    """The address in a Service's status.loadBalancer, if it has one."""
    for entry in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        if entry.get("ip"):
            return str(entry["ip"])
    return None


def pod_ip_range(block: str, cni: str) -> tuple[int, int]:
    """First and last pod address of a node's IPAM block (Flannel's cni0 takes .1, Calico starts
    at .1)."""
    net = ipaddress.ip_network(block, strict=False)
    first = int(net.network_address) + (2 if cni == "flannel" else 1)
    last = int(net.broadcast_address) - 1
    return first, last


def assign_pod_ips(world: World) -> None:
    """CNI IPAM: node IP for hostNetwork pods, else the next free address of the node's block
    after the last one handed out (host-local style, so a freed address is not reused at once)."""
    in_use = {f["ip"] for f in world.state["pods"].values() if f["ip"]}
    for pod in world.ordered("Pod"):
        facts = world.facts(pod)
        node = world.node(pod_node(pod))
        if facts["ip"] or node is None:
            continue
        if is_host_network(pod):
            facts["ip"] = node["internal_ip"]
            continue
        first, last = pod_ip_range(node["ipam_block"], world.cni)
        size = max(0, last - first + 1)
        cursor = world.state["ipamCursor"].get(node["name"], -1)
        facts["ipError"] = None
        for step in range(1, size + 1):
            offset = (cursor + step) % size
            ip = str(ipaddress.ip_address(first + offset))
            if ip not in in_use:
                facts["ip"] = ip
                in_use.add(ip)
                world.state["ipamCursor"][node["name"]] = offset
                break
        else:
            span = (
                f"{ipaddress.ip_address(first)}-{ipaddress.ip_address(last)}"
                if size
                else node["ipam_block"]
            )
            facts["ipError"] = (
                f"failed to allocate for range 0: no IP addresses available in range set: {span}"
            )


def assign_load_balancer_ips(world: World) -> None:
    """The LoadBalancer pool (172.18.255.200-250): the requested address or the lowest free one."""
    services = world.ordered("Service")
    used = {
        ip
        for s in services
        if s["spec"].get("type") == "LoadBalancer" and (ip := load_balancer_ip(s)) is not None
    }
    for svc in services:
        if svc["spec"].get("type") != "LoadBalancer":
            if (svc.get("status") or {}).get("loadBalancer"):
                cleared = copy.deepcopy(svc)
                cleared["status"] = {"loadBalancer": {}}
                world.put(cleared)
            continue
        if load_balancer_ip(svc):
            continue
        wanted = svc["spec"].get("loadBalancerIP")
        ip = (
            wanted
            if wanted and wanted not in used
            else next((a for a in LB_POOL if a not in used), None)
        )
        if ip is None:
            continue
        used.add(ip)
        assigned = copy.deepcopy(svc)
        assigned["status"] = {"loadBalancer": {"ingress": [{"ip": ip, "ipMode": "VIP"}]}}
        world.put(assigned)
