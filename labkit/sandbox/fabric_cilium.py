"""Cilium's node and pod plumbing, as plans (pure): ``cilium_host``/``cilium_net``, the
``cilium_vxlan`` tunnel and the ``lxc`` veths, shaped like Cilium 1.20 in tunnel mode on Kind.

What differs, because no eBPF program runs here: Cilium's ``bpf_lxc`` answers the pod's ARP and
redirects its packets; here the ``lxc`` veth has a /32 route per pod and the node answers ARP for
``cilium_host``'s address. Cilium routes other nodes' podCIDRs via ``cilium_host`` and its eBPF
program puts them in the tunnel; here each such route carries the tunnel key itself
(``encap ip dst <node>`` on ``cilium_vxlan``), so the packets do cross the VXLAN device.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING

from labkit.sandbox import naming

if TYPE_CHECKING:
    from labkit.sandbox.fabric import NodeNet, PodNet

CILIUM_CLUSTER_CIDR = "10.244.0.0/16"
"""Kind's default podSubnet, which Cilium's ``ipam.mode=kubernetes`` (our Helm values) splits
into the nodes' podCIDRs."""
CILIUM_HOST = "cilium_host"
CILIUM_NET = "cilium_net"
CILIUM_VXLAN = "cilium_vxlan"
CILIUM_VXLAN_PORT = 8472
"""Cilium's VXLAN port (``defaults.TunnelPortVXLAN``)."""
CILIUM_DEVICE_MTU = 1500
"""The MTU of pods' eth0 and the lxc veths (Cilium's device MTU: the host's)."""
CILIUM_ROUTE_MTU = 1450
"""The MTU on routes into the tunnel (Cilium's route MTU: the device MTU minus VXLAN's 50)."""
CILIUM_VNI = 0
"""The tunnel key carried here; Cilium's eBPF puts the source's security identity there."""


def cilium_host_ip(pod_cidr: str) -> str:
    """The router address of a node's pods (``cilium_host``): the first address of its podCIDR
    (Cilium's allocator picks one at random; pods start at the next address here)."""
    return str(next(ipaddress.ip_network(pod_cidr).hosts()))


def cilium_node_lines(node: NodeNet, nodes: Sequence[NodeNet]) -> list[str]:
    """The ``ip`` lines of a node's Cilium devices and its routes to other nodes' pods."""
    host = cilium_host_ip(node.pod_cidr)
    lines = [
        f"link add {CILIUM_HOST} type veth peer name {CILIUM_NET}",
        f"addr add {host}/32 dev {CILIUM_HOST}",
        f"link set {CILIUM_HOST} up",
        f"link set {CILIUM_NET} up",
        f"link add {CILIUM_VXLAN} address {naming.cilium_vxlan_mac(node.index)} type vxlan "
        f"external dstport {CILIUM_VXLAN_PORT} nolearning",
        f"link set {CILIUM_VXLAN} up",
    ]
    for other in nodes:
        if other.name == node.name:
            continue
        gateway = cilium_host_ip(other.pod_cidr)
        lines += [
            f"neigh add {gateway} lladdr {naming.cilium_vxlan_mac(other.index)} "
            f"dev {CILIUM_VXLAN} nud permanent",
            f"route add {other.pod_cidr} encap ip id {CILIUM_VNI} dst {other.ip} via {gateway} "
            f"dev {CILIUM_VXLAN} onlink src {host} mtu {CILIUM_ROUTE_MTU}",
        ]
    return lines


def cilium_pod_node_lines(pod: PodNet, node: NodeNet, iface: str) -> list[str]:
    """The node's side of a pod: the ``lxc`` veth and the pod's /32 route through it (the node
    reaches its pods from ``cilium_host``'s address, as on a Cilium node)."""
    return [
        f"link add {iface} mtu {CILIUM_DEVICE_MTU} type veth "
        f"peer name eth0 mtu {CILIUM_DEVICE_MTU} netns {pod.netns}",
        f"link set {iface} up",
        f"route replace {pod.ip}/32 dev {iface} scope link src {cilium_host_ip(node.pod_cidr)}",
    ]


def cilium_pod_lines(pod: PodNet, node: NodeNet) -> list[str]:
    """The pod's own side, as a Cilium pod shows it: a /32 on eth0, the scope-link route to
    ``cilium_host`` and the default route via it with the route MTU."""
    host = cilium_host_ip(node.pod_cidr)
    return [
        "link set lo up",
        f"addr add {pod.ip}/32 dev eth0",
        "link set eth0 up",
        f"route add {host} dev eth0 scope link",
        f"route add default via {host} dev eth0 mtu {CILIUM_ROUTE_MTU}",
    ]
