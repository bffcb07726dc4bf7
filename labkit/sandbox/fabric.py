"""The sandbox's links and routes, as plans: the ``ip``/``bridge`` commands and sysctls per
namespace that build the underlay, the nodes with their CNI plumbing, and each pod's veth.

Pure: the planning functions return :class:`Job` lists, so the exact shape of the data plane
(addresses, routes, VXLAN entries, Calico's /32 routes) is testable without root.
:mod:`labkit.sandbox.fabric_runner` carries the plans out; :mod:`labkit.sandbox.netns_etc` writes
the files ``ip netns exec`` mounts over ``/etc``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from labkit.sandbox import naming
from labkit.sandbox.fabric_calico import (
    CALICO_GATEWAY,
    CALICO_HOST_MAC,
    CALICO_MTU,
    calico_block_routes,
    calico_fdb_lines,
    calico_node_lines,
)
from labkit.sandbox.fabric_cilium import (
    CILIUM_CLUSTER_CIDR,
    cilium_node_lines,
    cilium_pod_lines,
    cilium_pod_node_lines,
)

UNDERLAY_PREFIX = 16
SERVICE_CIDR = "10.96.0.0/12"
"""Kubernetes' default Service range, kept free of outside addresses (the sandbox allocates
from its first /16)."""
GATEWAY_IP = "172.18.0.1"
LB_POOL = ("172.18.255.200", "172.18.255.250")
CLUSTER_CIDRS = {
    "flannel": "10.244.0.0/16",
    "calico": "192.168.0.0/16",
    "cilium": CILIUM_CLUSTER_CIDR,
}
FLANNEL_MTU = 1450
FLANNEL_VNI = 1
FLANNEL_PORT = 8472
FLANNEL_DEV = "flannel.1"
FLANNEL_BRIDGE = "cni0"
HOST_MTU = 1500
"""The MTU of every node's ``eth0`` (a Kind node's, on Docker's bridge network)."""
UPLINK_ROUTER = "169.254.0.1"
UPLINK_ROUTER_MAC = "02:00:00:00:00:01"
"""The outside's default router: an address nobody holds, a MAC no device of the lab has."""
SANDBOX_CNIS = ("flannel", "calico", "cilium")
"""The CNIs whose data plane the sandbox builds (Kind runs more: ``labkit.values.CNIS``)."""
# A namespace rate-limits the ICMP errors it sends whose type is in icmp_ratemask: per destination
# (icmp_ratelimit: a burst of 6, then 1 a second) and in total (icmp_msgs_per_sec/_burst).
# kube-proxy's REJECT answers with port-unreachable, so from the 7th quick connection on, a
# Service without endpoints turned "refused" into "timeout" (the node's IcmpOutRateLimitHost
# counter rose by exactly the number of timeouts). The lab's namespaces exempt that type.
ICMP_RATEMASK = str((1 << 4) | (1 << 11) | (1 << 12))
"""The kernel's default ICMP rate mask (6168) without destination-unreachable (type 3)."""
ICMP_SYSCTLS = {"net/ipv4/icmp_ratemask": ICMP_RATEMASK}
"""Set in every namespace the lab creates (nodes, pods, outside), never on the host."""


class StoreNode(Protocol):
    """What the plans read of a cluster store's node (read-only)."""

    @property
    def name(self) -> str: ...
    @property
    def internal_ip(self) -> str: ...
    @property
    def pod_cidr(self) -> str: ...
    @property
    def ipam_block(self) -> str | None: ...
    @property
    def more_blocks(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class NodeNet:
    """What the data plane needs to know of one node."""

    name: str
    index: int
    netns: str
    ip: str
    pod_cidr: str
    blocks: tuple[str, ...]
    """The ranges this node's pods get addresses from (Flannel: its podCIDR; Calico: the /26
    blocks affine to it, its first one first)."""

    @property
    def short(self) -> str:
        """The node's namespace suffix (``cp``, ``w1``, ``w2``)."""
        return naming.NODE_SHORTS[self.index]

    @property
    def bridge_ip(self) -> str:
        """Flannel's ``cni0`` address, the pods' gateway: the first address of the podCIDR."""
        return str(next(ipaddress.ip_network(self.pod_cidr).hosts()))


@dataclass(frozen=True)
class PodNet:
    """What the data plane needs to know of one pod: where it lives and its address."""

    namespace: str
    name: str
    node: str
    ip: str
    netns: str
    iface: str
    host_network: bool = False

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"


class JobStep(NamedTuple):
    """One step of a job: ``ip`` or ``bridge`` lines (one ``-batch`` process), or ``sysctl``
    values (written from a thread that entered the namespace)."""

    tool: str
    payload: list[str] | dict[str, str]


@dataclass
class Job:
    """Work for one namespace (``None``: the host's ``ip netns`` bookkeeping only), done in order.

    Consecutive lines for the same tool, and consecutive sysctls, share one step.
    """

    netns: str | None
    steps: list[JobStep] = field(default_factory=list)
    force: bool = False
    """Keep going past failing lines (``-force``), for removals where some things may be gone."""

    def ip(self, *lines: str) -> Job:
        """Add ``ip`` command lines (without the leading ``ip``)."""
        return self._add("ip", list(lines))

    def bridge(self, *lines: str) -> Job:
        """Add ``bridge`` command lines (without the leading ``bridge``)."""
        return self._add("bridge", list(lines))

    def sysctl(self, values: Mapping[str, str]) -> Job:
        """Add sysctls, keyed by their path under ``/proc/sys``."""
        if values:
            last = self.steps[-1].payload if self.steps else None
            if isinstance(last, dict):
                last.update(values)
            else:
                self.steps.append(JobStep("sysctl", dict(values)))
        return self

    def _add(self, tool: str, lines: list[str]) -> Job:
        if not lines:
            return self
        if self.steps and self.steps[-1].tool == tool:
            last = self.steps[-1].payload
            assert isinstance(last, list)
            last.extend(lines)
        else:
            self.steps.append(JobStep(tool, lines))
        return self

    @property
    def empty(self) -> bool:
        """Whether the job has nothing to do."""
        return not self.steps


# --------------------------------------------------------------------------- pure plans


def node_nets(lab_name: str, cni: str, nodes: Sequence[StoreNode]) -> list[NodeNet]:
    """NodeNet for each store node, in order (Calico's pods come from the node's IPAM block)."""
    result = []
    for index, node in enumerate(nodes):
        pod_cidr = str(node.pod_cidr)
        blocks = (
            (str(node.ipam_block or pod_cidr), *node.more_blocks)
            if cni == "calico"
            else (pod_cidr,)
        )
        result.append(
            NodeNet(
                name=str(node.name),
                index=index,
                netns=naming.node_netns(lab_name, index),
                ip=str(node.internal_ip),
                pod_cidr=pod_cidr,
                blocks=blocks,
            )
        )
    return result


def lb_route_node(ip: str, nodes: Sequence[NodeNet]) -> NodeNet:
    """The node that answers for a LoadBalancer address (MetalLB L2 elects one per address;
    here: spread over the workers by the address's last octet)."""
    workers = [n for n in nodes if n.index > 0] or list(nodes)
    return workers[int(ipaddress.ip_address(ip)) % len(workers)]


def lb_addresses() -> list[str]:
    """Every address of the LoadBalancer pool."""
    first, last = (int(ipaddress.ip_address(a)) for a in LB_POOL)
    return [str(ipaddress.ip_address(i)) for i in range(first, last + 1)]


def underlay_plan(
    lab_name: str, cni: str, nodes: Sequence[NodeNet], outside_ranges: Sequence[str] = ()
) -> list[list[Job]]:
    """Stages that build the fabric, the outside client and the nodes, CNI plumbing included.

    Stage 1 creates the namespaces, stage 2 the fabric bridge with one uplink per node and one
    for ``outside``, stage 3 configures every node and ``outside`` (with ``outside_ranges`` as
    its own addresses) in parallel.
    """
    if cni not in SANDBOX_CNIS:
        raise ValueError(f"unsupported CNI {cni!r}")
    fabric, outside = naming.fabric_netns(lab_name), naming.outside_netns(lab_name)
    names = [fabric, outside, *(n.netns for n in nodes)]
    create = Job(None).ip(*(f"netns add {name}" for name in names))

    sw = Job(fabric).ip(
        "link set lo up",
        f"link add {naming.FABRIC_BRIDGE} address {naming.bridge_mac('fabric')} type bridge",
        f"link set {naming.FABRIC_BRIDGE} up",
    )
    for port, peer in [
        *((naming.node_fabric_port(n.short), n.netns) for n in nodes),
        (naming.OUTSIDE_PORT, outside),
    ]:
        sw.ip(
            f"link add {naming.check_ifname(port)} type veth peer name eth0 netns {peer}",
            f"link set {port} master {naming.FABRIC_BRIDGE} up",
        )

    out = Job(outside).sysctl(ICMP_SYSCTLS)
    out.ip(
        "link set lo up",
        f"addr add {GATEWAY_IP}/{UNDERLAY_PREFIX} dev eth0",
        "link set eth0 up",
        *outside_uplink_lines(),
        *(line for cidr in outside_ranges for line in outside_address_lines(cidr)),
    )
    for address in lb_addresses():
        out.ip(f"route add {address}/32 via {lb_route_node(address, nodes).ip} dev eth0")
    configure = [out, *(node_job(cni, node, nodes) for node in nodes)]
    return [[create], [sw], configure]


def outside_uplink_lines() -> list[str]:
    """The outside's default route, like a Kind host's towards its router, so a pod address
    (which no host routes) times out instead of failing at once as "network unreachable".

    The route leads into a veth pair whose both ends stay in the outside namespace, to a router
    MAC that the far end does not own: the far end drops those frames as meant for another host,
    silently (no ICMP error). Nothing leaves the namespace."""
    up, far = naming.OUTSIDE_UPLINK, naming.OUTSIDE_UPLINK_FAR
    return [
        f"link add {up} type veth peer name {far}",
        f"link set {up} up",
        f"link set {far} up",
        f"route add default via {UPLINK_ROUTER} dev {up} onlink",
        f"neigh add {UPLINK_ROUTER} lladdr {UPLINK_ROUTER_MAC} dev {up} nud permanent",
    ]


def node_job(cni: str, node: NodeNet, nodes: Sequence[NodeNet]) -> Job:
    """One node's own addresses, default route, sysctls and CNI plumbing."""
    job = Job(node.netns).sysctl(
        {
            "net/ipv4/ip_forward": "1",
            "net/ipv4/conf/all/rp_filter": "0",
            "net/ipv4/conf/default/rp_filter": "0",
            **ICMP_SYSCTLS,
        }
    )
    job.ip(
        "link set lo up",
        f"addr add {node.ip}/{UNDERLAY_PREFIX} dev eth0",
        "link set eth0 up",
        f"route add default via {GATEWAY_IP} dev eth0",
    )
    others = [n for n in nodes if n.name != node.name]
    if cni == "flannel":
        # The bridge plugin's cni0 and flanneld's VTEP, with the static neighbour, FDB and route
        # entries flanneld writes for every other node (it learns them from node annotations).
        job.sysctl({"net/bridge/bridge-nf-call-iptables": "1"})
        prefix = ipaddress.ip_network(node.pod_cidr).prefixlen
        job.ip(
            f"link add {FLANNEL_BRIDGE} address {naming.bridge_mac(f'cni0/{node.index}')} "
            f"mtu {FLANNEL_MTU} type bridge",
            f"addr add {node.bridge_ip}/{prefix} dev {FLANNEL_BRIDGE}",
            f"link set {FLANNEL_BRIDGE} up",
            f"link add {FLANNEL_DEV} address {naming.vtep_mac(node.index)} mtu {FLANNEL_MTU} "
            f"type vxlan id {FLANNEL_VNI} local {node.ip} dev eth0 dstport {FLANNEL_PORT} "
            "nolearning",
            f"addr add {vtep_ip(node)}/32 dev {FLANNEL_DEV}",
            f"link set {FLANNEL_DEV} up",
        )
        for other in others:
            job.ip(
                f"neigh add {vtep_ip(other)} lladdr {naming.vtep_mac(other.index)} "
                f"dev {FLANNEL_DEV} nud permanent",
                f"route add {other.pod_cidr} via {vtep_ip(other)} dev {FLANNEL_DEV} onlink",
            )
        job.bridge(
            *(
                f"fdb add {naming.vtep_mac(o.index)} dev {FLANNEL_DEV} dst {o.ip} self permanent"
                for o in others
            )
        )
    elif cni == "cilium":
        job.ip(*cilium_node_lines(node, nodes))
    else:
        job.ip(*calico_node_lines(node, nodes))
        job.bridge(*calico_fdb_lines(others))
    return job


def block_routes_plan(before: Sequence[NodeNet] | None, after: Sequence[NodeNet]) -> list[Job]:
    """Jobs that route the blocks Calico's IPAM claimed since ``before`` (None: unknown, so
    every block's route is replaced), on every node; none when no block was claimed."""
    skip = frozenset(b for n in before for b in n.blocks) if before is not None else frozenset()
    jobs = [Job(n.netns).ip(*calico_block_routes(n, after, "replace", skip)) for n in after]
    return [job for job in jobs if not job.empty]


def vtep_ip(node: NodeNet) -> str:
    """Flannel's ``flannel.1`` address on a node: the network address of its podCIDR."""
    return str(ipaddress.ip_network(node.pod_cidr).network_address)


def pods_add_plan(cni: str, pods: Iterable[PodNet], nodes: Sequence[NodeNet]) -> list[list[Job]]:
    """Stages that add pods: namespaces; then each node's veths (and sysctls); then each pod's
    own addresses and routes. Host-network pods need nothing here."""
    pods = [p for p in pods if not p.host_network]
    if not pods:
        return []
    by_node = {n.name: n for n in nodes}
    create = Job(None).ip(*(f"netns add {p.netns}" for p in pods))
    node_jobs: dict[str, Job] = {}
    pod_jobs = []
    for pod in pods:
        node = by_node[pod.node]
        job = node_jobs.setdefault(node.name, Job(node.netns))
        iface = naming.check_ifname(pod.iface)
        if cni == "flannel":
            job.ip(
                f"link add {iface} mtu {FLANNEL_MTU} type veth "
                f"peer name eth0 mtu {FLANNEL_MTU} netns {pod.netns}",
                f"link set {iface} master {FLANNEL_BRIDGE}",
                f"link set dev {iface} type bridge_slave hairpin on",
                f"link set {iface} up",
            )
            prefix = ipaddress.ip_network(node.pod_cidr).prefixlen
            pod_jobs.append(
                Job(pod.netns)
                .sysctl(ICMP_SYSCTLS)
                .ip(
                    "link set lo up",
                    f"addr add {pod.ip}/{prefix} dev eth0",
                    "link set eth0 up",
                    f"route add default via {node.bridge_ip} dev eth0",
                    f"route add {CLUSTER_CIDRS['flannel']} via {node.bridge_ip} dev eth0",
                )
            )
        elif cni == "cilium":
            job.ip(*cilium_pod_node_lines(pod, node, iface))
            pod_jobs.append(Job(pod.netns).sysctl(ICMP_SYSCTLS).ip(*cilium_pod_lines(pod, node)))
        else:
            job.ip(
                f"link add {iface} mtu {CALICO_MTU} address {CALICO_HOST_MAC} type veth "
                f"peer name eth0 mtu {CALICO_MTU} netns {pod.netns}",
                f"link set {iface} up",
                # replace, as Felix programs it: a /32 a learner wired by hand (a build exercise)
                # never stops a pod the IPAM gave that address from being wired
                f"route replace {pod.ip}/32 dev {iface} scope link",
            )
            job.sysctl(
                {
                    f"net/ipv4/conf/{iface}/proxy_arp": "1",
                    f"net/ipv4/neigh/{iface}/proxy_delay": "0",
                    f"net/ipv4/conf/{iface}/forwarding": "1",
                }
            )
            pod_jobs.append(
                Job(pod.netns)
                .sysctl(ICMP_SYSCTLS)
                .ip(
                    "link set lo up",
                    f"addr add {pod.ip}/32 dev eth0",
                    "link set eth0 up",
                    f"route add {CALICO_GATEWAY} dev eth0 scope link",
                    f"route add default via {CALICO_GATEWAY} dev eth0",
                )
            )
    return [[create], list(node_jobs.values()), pod_jobs]


def pods_remove_plan(pods: Iterable[PodNet], nodes: Sequence[NodeNet]) -> list[list[Job]]:
    """Stages that remove pods: delete the node side of each veth (the pair goes with it, and
    Calico's /32 route with the device), then the namespaces."""
    pods = [p for p in pods if not p.host_network]
    if not pods:
        return []
    by_node = {n.name: n for n in nodes}
    node_jobs: dict[str, Job] = {}
    for pod in pods:
        node = by_node.get(pod.node)
        if node is not None:
            node_jobs.setdefault(node.name, Job(node.netns, force=True)).ip(f"link del {pod.iface}")
    return [
        list(node_jobs.values()),
        [Job(None, force=True).ip(*(f"netns del {p.netns}" for p in pods))],
    ]


OUTSIDE_MIN_PREFIX = 8
"""The widest range the outside may claim (a /0 would swallow every route of the lab)."""


def outside_range_problem(cidr: str, cni: str, pod_cidrs: Iterable[str]) -> str | None:
    """Why ``cidr`` cannot live outside the lab (too wide, special, or an address range the
    cluster itself uses), or None."""
    network = ipaddress.ip_network(cidr, strict=False)
    if network.prefixlen < OUTSIDE_MIN_PREFIX:
        return f"{network} is wider than a /{OUTSIDE_MIN_PREFIX}"
    if any(
        (network.is_loopback, network.is_link_local, network.is_multicast, network.is_reserved)
    ) or network.overlaps(ipaddress.ip_network("0.0.0.0/8")):
        return f"{network} is a special-purpose range (loopback, link-local, multicast, reserved)"
    taken = {
        f"the node network {GATEWAY_IP}/{UNDERLAY_PREFIX}": f"{GATEWAY_IP}/{UNDERLAY_PREFIX}",
        f"the Service range {SERVICE_CIDR}": SERVICE_CIDR,
        f"the pod range {CLUSTER_CIDRS.get(cni, '')}": CLUSTER_CIDRS.get(cni),
        **{f"the pod range {c}": c for c in pod_cidrs},
    }
    for what, used in taken.items():
        if used and network.overlaps(ipaddress.ip_network(used, strict=False)):
            return f"{network} overlaps {what}"
    return None


def outside_address_lines(cidr: str, present: bool = True) -> list[str]:
    """Make every address of ``cidr`` local to the outside namespace (a ``local`` route on lo,
    so the whole range answers), or remove it again."""
    network = ipaddress.ip_network(cidr, strict=False)
    if network.version != 4:
        raise ValueError(f"{cidr} is not an IPv4 range; the lab is IPv4 only")
    return [f"route {'replace' if present else 'del'} local {network} dev lo"]
