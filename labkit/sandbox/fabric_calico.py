"""Calico's node plumbing in VXLANCrossSubnet mode, as plan lines (pure): the ``vxlan.calico``
device with its VTEP and neighbours, the forwarding entries, and the block routes Felix's route
manager programs."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING

from labkit.sandbox import naming

if TYPE_CHECKING:
    from labkit.sandbox.fabric import NodeNet

CALICO_MTU = 1450
"""Felix's MTU auto-detection with VXLAN on: the host MTU (1500) minus VXLAN's 50 bytes
(``vxlanMTUOverhead`` in felix/dataplane/linux/int_dataplane.go); pods and their veths get it."""
CALICO_VXLAN_DEV = "vxlan.calico"
CALICO_VXLAN_VNI = 4096
CALICO_VXLAN_PORT = 4789
CALICO_ROUTE_PROTO = "80"
"""The protocol Felix marks its blackhole and same-subnet routes with (``DefaultRouteProto``)."""
CALICO_GATEWAY = "169.254.1.1"
CALICO_HOST_MAC = "ee:ee:ee:ee:ee:ee"


def calico_node_lines(node: NodeNet, nodes: Sequence[NodeNet]) -> list[str]:
    """What Felix programs on a node of a VXLANCrossSubnet pool (felix/dataplane/linux/
    vxlan_mgr.go, route_mgr.go): ``vxlan.calico`` with its VTEP (the first block's first
    address), every other VTEP's neighbour entry, and the block routes."""
    lines = [
        f"link add {CALICO_VXLAN_DEV} address {naming.calico_vtep_mac(node.name)} "
        f"mtu {CALICO_MTU} type vxlan id {CALICO_VXLAN_VNI} local {node.ip} dev eth0 "
        f"dstport {CALICO_VXLAN_PORT} nolearning",
        f"addr add {calico_vtep_ip(node)}/32 dev {CALICO_VXLAN_DEV}",
        f"link set {CALICO_VXLAN_DEV} up",
    ]
    lines += [
        f"neigh add {calico_vtep_ip(other)} lladdr {naming.calico_vtep_mac(other.name)} "
        f"dev {CALICO_VXLAN_DEV} nud permanent"
        for other in nodes
        if other.name != node.name
    ]
    return lines + calico_block_routes(node, nodes, "add")


def calico_vtep_ip(node: NodeNet) -> str:
    """A node's ``vxlan.calico`` address: Calico's IPAM gives the tunnel the first address of
    the node's first block (pods start at the next one)."""
    return str(ipaddress.ip_network(node.blocks[0], strict=False).network_address)


def calico_block_routes(
    node: NodeNet, nodes: Sequence[NodeNet], verb: str, skip: frozenset[str] = frozenset()
) -> list[str]:
    """The routes Felix's route manager programs on ``node``, one per IPAM block: a blackhole
    for each block affine to it (its pods get /32 routes), and every other node's block routed
    directly via the owner's IP (the nodes share one underlay subnet, so no block needs the
    tunnel); blocks in ``skip`` are left out."""
    lines = [
        f"route {verb} blackhole {b} proto {CALICO_ROUTE_PROTO}"
        for b in node.blocks
        if b not in skip
    ]
    for other in nodes:
        if other.name != node.name:
            lines += [
                f"route {verb} {b} via {other.ip} dev eth0 proto {CALICO_ROUTE_PROTO} onlink"
                for b in other.blocks
                if b not in skip
            ]
    return lines


def calico_fdb_lines(others: Sequence[NodeNet]) -> list[str]:
    """``bridge`` lines: each other node's VTEP MAC forwarded to that node's address."""
    return [
        f"fdb add {naming.calico_vtep_mac(o.name)} dev {CALICO_VXLAN_DEV} dst {o.ip} self permanent"
        for o in others
    ]
