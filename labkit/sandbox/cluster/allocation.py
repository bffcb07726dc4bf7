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
    """First and last pod address of a node's IPAM block (Flannel's cni0 and Cilium's
    cilium_host take .1, Calico starts at .1)."""
    net = ipaddress.ip_network(block, strict=False)
    first = int(net.network_address) + (1 if cni == "calico" else 2)
    last = int(net.broadcast_address) - 1
    return first, last


CALICO_POOL = ipaddress.IPv4Network("192.168.0.0/16")
"""Calico's default IPv4 pool, carved into /26 blocks (``blockSize: 26``)."""
CALICO_BLOCK_PREFIX = 26


def next_free_block(claimed: list[str], after: str) -> str | None:
    """The first /26 of Calico's pool past ``after`` (wrapping round) that no node has claimed,
    so a node's blocks lie together in the pool; None when the pool is used up."""
    taken = [ipaddress.IPv4Network(b) for b in claimed]
    blocks = list(CALICO_POOL.subnets(new_prefix=CALICO_BLOCK_PREFIX))
    start = int(ipaddress.ip_network(after).network_address) - int(CALICO_POOL.network_address)
    index = start >> (32 - CALICO_BLOCK_PREFIX)
    for step in range(1, len(blocks) + 1):
        block = blocks[(index + step) % len(blocks)]
        if not any(block.overlaps(t) for t in taken):
            return str(block)
    return None


def node_blocks(node: Mapping[str, Any]) -> list[str]:
    """A node's IPAM blocks, its first one first."""
    return [node["ipam_block"], *(node.get("more_blocks") or [])]


def _free_address(
    blocks: list[str], cni: str, cursor: int, in_use: set[str]
) -> tuple[int, str] | None:
    """The next free address after position ``cursor`` of the blocks' addresses taken in
    order, and its position (host-local style: a freed address is not reused at once)."""
    ranges = [pod_ip_range(b, cni) for b in blocks]
    size = sum(max(0, last - first + 1) for first, last in ranges)
    if size == 0:
        return None
    for step in range(1, size + 1):
        offset = left = (cursor + step) % size
        for first, last in ranges:
            if left <= last - first:
                ip = str(ipaddress.ip_address(first + left))
                if ip not in in_use:
                    return offset, ip
                break
            left -= last - first + 1
    return None


def assign_pod_ips(world: World) -> None:
    """CNI IPAM: node IP for hostNetwork pods, else the next free address of the node's blocks
    after the last one handed out; Calico claims a further /26 block for the node when its
    blocks are full (block affinity), Flannel's host-local has the node's /24 only."""
    in_use = {f["ip"] for f in world.state["pods"].values() if f["ip"]}
    for pod in world.ordered("Pod"):
        facts = world.facts(pod)
        node = world.node(pod_node(pod))
        if facts["ip"] or node is None:
            continue
        if is_host_network(pod):
            facts["ip"] = node["internal_ip"]
            continue
        cursor = world.state["ipamCursor"].get(node["name"], -1)
        found = _free_address(node_blocks(node), world.cni, cursor, in_use)
        if found is None and world.cni == "calico":
            claimed = [b for n in world.nodes for b in node_blocks(n)]
            block = next_free_block(claimed, node_blocks(node)[-1])
            if block is not None:
                node["more_blocks"] = [*(node.get("more_blocks") or []), block]
                found = _free_address(node_blocks(node), world.cni, cursor, in_use)
        facts["ipError"] = None
        if found is not None:
            world.state["ipamCursor"][node["name"]], facts["ip"] = found
            in_use.add(found[1])
            continue
        first, last = pod_ip_range(node["ipam_block"], world.cni)
        span = (
            f"{ipaddress.ip_address(first)}-{ipaddress.ip_address(last)}"
            if last >= first
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
