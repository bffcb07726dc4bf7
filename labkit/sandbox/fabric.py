"""The sandbox's links and routes: plans of ``ip``/``bridge`` commands per namespace, and the
runner that executes them concurrently.

The planning functions are pure (they return :class:`Job` lists), so the exact shape of the data
plane (addresses, routes, VXLAN entries, Calico's /32 routes) is testable without root. The
runner batches every namespace's commands into one ``ip -n NS -batch -`` process, runs the
namespaces of one stage in parallel, and never touches the host's own namespace: the only host
side effects are the bind mounts that ``ip netns add`` creates under ``/run/netns`` and the
files under ``/etc/netns/lk-*``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from labkit.errors import LabError
from labkit.sandbox import naming

NETNS_DIR = Path("/run/netns")
UNDERLAY_PREFIX = 16
GATEWAY_IP = "172.18.0.1"
LB_POOL = ("172.18.255.200", "172.18.255.250")
CLUSTER_CIDRS = {"flannel": "10.244.0.0/16", "calico": "192.168.0.0/16"}
FLANNEL_MTU = 1450
FLANNEL_VNI = 1
FLANNEL_PORT = 8472
FLANNEL_DEV = "flannel.1"
FLANNEL_BRIDGE = "cni0"
CALICO_GATEWAY = "169.254.1.1"
CALICO_HOST_MAC = "ee:ee:ee:ee:ee:ee"
CNIS = ("flannel", "calico")


@dataclass(frozen=True)
class NodeNet:
    """What the data plane needs to know of one node."""

    name: str
    index: int
    netns: str
    ip: str
    pod_cidr: str
    block: str
    """The range this node's pods get addresses from (Flannel: podCIDR; Calico: its /26 block)."""

    @property
    def short(self) -> str:
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
        return f"{self.namespace}/{self.name}"


@dataclass
class Job:
    """Work for one namespace (``None``: the host's ``ip netns`` bookkeeping only), done in order.

    A step is ``("ip", lines)`` or ``("bridge", lines)`` (one ``-batch`` process each), or
    ``("sysctl", {key: value})`` (written from a thread that entered the namespace).
    """

    netns: str | None
    steps: list[tuple[str, object]] = field(default_factory=list)
    force: bool = False
    """Keep going past failing lines (``-force``), for removals where some things may be gone."""

    def ip(self, *lines: str) -> Job:
        return self._add("ip", list(lines))

    def bridge(self, *lines: str) -> Job:
        return self._add("bridge", list(lines))

    def sysctl(self, values: Mapping[str, str]) -> Job:
        if values:
            if self.steps and self.steps[-1][0] == "sysctl":
                self.steps[-1][1].update(values)  # type: ignore[union-attr]
            else:
                self.steps.append(("sysctl", dict(values)))
        return self

    def _add(self, tool: str, lines: list[str]) -> Job:
        if not lines:
            return self
        if self.steps and self.steps[-1][0] == tool:
            self.steps[-1][1].extend(lines)  # type: ignore[union-attr]
        else:
            self.steps.append((tool, lines))
        return self

    @property
    def empty(self) -> bool:
        return not self.steps


# --------------------------------------------------------------------------- pure plans


def node_nets(lab: str, cni: str, nodes: Sequence[object]) -> list[NodeNet]:
    """NodeNet for each store node (objects with name, internal_ip, pod_cidr, ipam_block), in order."""
    result = []
    for index, node in enumerate(nodes):
        pod_cidr = str(node.pod_cidr)
        block = str(getattr(node, "ipam_block", None) or pod_cidr) if cni == "calico" else pod_cidr
        result.append(
            NodeNet(
                name=str(node.name),
                index=index,
                netns=naming.node_netns(lab, index),
                ip=str(node.internal_ip),
                pod_cidr=pod_cidr,
                block=block,
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


def underlay_plan(lab: str, cni: str, nodes: Sequence[NodeNet]) -> list[list[Job]]:
    """Stages that build the fabric, the outside client and the nodes, CNI plumbing included.

    Stage 1 creates the namespaces, stage 2 the fabric bridge with one uplink per node and one
    for ``outside``, stage 3 configures every node and ``outside`` in parallel.
    """
    if cni not in CNIS:
        raise ValueError(f"unsupported CNI {cni!r}")
    fabric, outside = naming.fabric_netns(lab), naming.outside_netns(lab)
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

    out = Job(outside).ip(
        "link set lo up", f"addr add {GATEWAY_IP}/{UNDERLAY_PREFIX} dev eth0", "link set eth0 up"
    )
    for address in lb_addresses():
        out.ip(f"route add {address}/32 via {lb_route_node(address, nodes).ip} dev eth0")
    configure = [out, *(node_job(cni, node, nodes) for node in nodes)]
    return [[create], [sw], configure]


def node_job(cni: str, node: NodeNet, nodes: Sequence[NodeNet]) -> Job:
    """One node's own addresses, default route, sysctls and CNI plumbing."""
    job = Job(node.netns).sysctl(
        {
            "net/ipv4/ip_forward": "1",
            "net/ipv4/conf/all/rp_filter": "0",
            "net/ipv4/conf/default/rp_filter": "0",
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
        job.ip(
            f"link add {FLANNEL_BRIDGE} address {naming.bridge_mac(f'cni0/{node.index}')} mtu {FLANNEL_MTU} type bridge",
            f"addr add {node.bridge_ip}/{ipaddress.ip_network(node.pod_cidr).prefixlen} dev {FLANNEL_BRIDGE}",
            f"link set {FLANNEL_BRIDGE} up",
            f"link add {FLANNEL_DEV} address {naming.vtep_mac(node.index)} mtu {FLANNEL_MTU} type vxlan "
            f"id {FLANNEL_VNI} local {node.ip} dev eth0 dstport {FLANNEL_PORT} nolearning",
            f"addr add {vtep_ip(node)}/32 dev {FLANNEL_DEV}",
            f"link set {FLANNEL_DEV} up",
        )
        for other in others:
            job.ip(
                f"neigh add {vtep_ip(other)} lladdr {naming.vtep_mac(other.index)} dev {FLANNEL_DEV} nud permanent",
                f"route add {other.pod_cidr} via {vtep_ip(other)} dev {FLANNEL_DEV} onlink",
            )
        job.bridge(
            *(
                f"fdb add {naming.vtep_mac(o.index)} dev {FLANNEL_DEV} dst {o.ip} self permanent"
                for o in others
            )
        )
    else:
        # Calico in BGP mode without encapsulation: the own block is blackholed (pods get /32
        # routes), other nodes' blocks are routed to their node IP, as BIRD would program them.
        job.ip(f"route add blackhole {node.block} proto bird")
        for other in others:
            job.ip(f"route add {other.block} via {other.ip} dev eth0 proto bird")
    return job


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
                f"link add {iface} mtu {FLANNEL_MTU} type veth peer name eth0 mtu {FLANNEL_MTU} netns {pod.netns}",
                f"link set {iface} master {FLANNEL_BRIDGE}",
                f"link set dev {iface} type bridge_slave hairpin on",
                f"link set {iface} up",
            )
            prefix = ipaddress.ip_network(node.pod_cidr).prefixlen
            pod_jobs.append(
                Job(pod.netns).ip(
                    "link set lo up",
                    f"addr add {pod.ip}/{prefix} dev eth0",
                    "link set eth0 up",
                    f"route add default via {node.bridge_ip} dev eth0",
                    f"route add {CLUSTER_CIDRS['flannel']} via {node.bridge_ip} dev eth0",
                )
            )
        else:
            job.ip(
                f"link add {iface} address {CALICO_HOST_MAC} type veth peer name eth0 netns {pod.netns}",
                f"link set {iface} up",
                f"route add {pod.ip}/32 dev {iface} scope link",
            )
            job.sysctl(
                {
                    f"net/ipv4/conf/{iface}/proxy_arp": "1",
                    f"net/ipv4/neigh/{iface}/proxy_delay": "0",
                    f"net/ipv4/conf/{iface}/forwarding": "1",
                }
            )
            pod_jobs.append(
                Job(pod.netns).ip(
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


def outside_address_lines(cidr: str, present: bool = True) -> list[str]:
    """Make every address of ``cidr`` local to the outside namespace (a ``local`` route on lo,
    so the whole range answers), or remove it again."""
    network = ipaddress.ip_network(cidr, strict=False)
    if network.version != 4:
        raise ValueError(f"{cidr} is not an IPv4 range; the lab is IPv4 only")
    return [f"route {'replace' if present else 'del'} local {network} dev lo"]


def hosts_file(pod: PodNet) -> str:
    """The pod's /etc/hosts, as the kubelet writes it."""
    return (
        "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
        f"{pod.ip}\t{pod.name}\n"
    )


# --------------------------------------------------------------------------- I/O


def list_netns() -> list[str]:
    """Names of every named network namespace (what ``ip netns list`` shows)."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def run_stages(
    stages: Sequence[Sequence[Job]], what: str, *, ignore_errors: bool = False
) -> list[str]:
    """Run stages in order, the jobs of a stage concurrently; raise a LabError on the first
    failing stage (after letting its other jobs finish), or collect the errors when asked to."""
    errors: list[str] = []
    for stage in stages:
        jobs = [j for j in stage if not j.empty]
        if not jobs:
            continue
        if len(jobs) == 1:
            outcomes = [_run_job(jobs[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
                outcomes = list(pool.map(_run_job, jobs))
        failed = [o for o in outcomes if o]
        if failed and not ignore_errors:
            raise LabError(
                f"Could not {what}: a kernel networking command failed.",
                "Run `labkit doctor --backend sandbox` to check this machine's kernel features, "
                "then `labkit down` and try again.",
                output="\n".join(failed),
            )
        errors.extend(failed)
    return errors


def _run_job(job: Job) -> str:
    """Run one job's steps; return '' on success, else a description of what failed."""
    for kind, payload in job.steps:
        if kind == "sysctl":
            problem = _write_sysctls(job.netns, payload)  # type: ignore[arg-type]
        else:
            problem = _run_batch(kind, job.netns, payload, job.force)  # type: ignore[arg-type]
        if problem:
            return problem
    return ""


def _run_batch(tool: str, netns: str | None, lines: list[str], force: bool = False) -> str:
    argv = (
        [tool] + (["-n", netns] if netns else []) + (["-force"] if force else []) + ["-batch", "-"]
    )
    try:
        proc = subprocess.run(
            argv, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=30
        )
    except FileNotFoundError:
        return f"`{tool}` is not installed (it comes with iproute2)"
    except subprocess.TimeoutExpired:
        return f"`{' '.join(argv)}` did not finish within 30 s"
    if proc.returncode != 0:
        where = f"in {netns}" if netns else "on the host"
        return f"{tool} -batch {where} failed:\n{proc.stderr.strip()}\n(commands: {'; '.join(lines[:60])})"
    return ""


def _write_sysctls(netns: str | None, values: Mapping[str, str]) -> str:
    from labkit.sandbox.netns import enter_netns

    if netns is None:
        return "refusing to write sysctls in the host's namespace"
    try:
        with enter_netns(netns):
            for key, value in values.items():
                with open(f"/proc/sys/{key}", "w") as handle:
                    handle.write(value)
    except OSError as exc:
        return f"sysctl {exc.filename or ''} in {netns}: {exc.strerror}"
    return ""


def stop_processes_in(names: Iterable[str]) -> list[int]:
    """Kill every process still running in the named namespaces (a command a learner sent to the
    background, a shell opened with ``ip netns exec``): deleting a namespace's name does not stop
    them, and they would keep the namespace alive. Returns the pids killed."""
    wanted: set[tuple[int, int]] = set()
    for name in names:
        with contextlib.suppress(OSError):
            st = os.stat(NETNS_DIR / name)
            wanted.add((st.st_dev, st.st_ino))

    def inside() -> set[int]:
        found = set()
        for entry in os.listdir("/proc") if wanted else ():
            if entry.isdigit() and int(entry) != os.getpid():
                with contextlib.suppress(OSError):
                    st = os.stat(f"/proc/{entry}/ns/net")
                    if (st.st_dev, st.st_ino) in wanted:
                        found.add(int(entry))
        return found

    pids = inside()
    if pids:  # look twice: a labkit process only passes through a namespace to open a socket
        time.sleep(0.02)
        pids &= inside()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return sorted(pids)


def delete_netns(names: Iterable[str]) -> list[str]:
    """Delete the given named namespaces that exist; returns problems (empty when all went)."""
    existing = set(list_netns())
    todo = [n for n in names if n in existing]
    if not todo:
        return []
    return run_stages(
        [[Job(None, force=True).ip(*(f"netns del {n}" for n in todo))]],
        "delete namespaces",
        ignore_errors=True,
    )


def write_pod_etc(pod: PodNet, resolv_conf: str) -> None:
    """``/etc/netns/<pod netns>/{resolv.conf,hosts}``: ``ip netns exec`` mounts them over /etc."""
    folder = naming.NETNS_ETC / pod.netns
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(folder / "resolv.conf", resolv_conf)
    _write_atomic(folder / "hosts", hosts_file(pod))


NO_DNS_RESOLV_CONF = (
    f"# The sandbox has no DNS outside the cluster: {GATEWAY_IP} refuses at once instead of\n"
    "# letting lookups from nodes hang (pods use the cluster DNS, 10.96.0.10).\n"
    f"nameserver {GATEWAY_IP}\noptions timeout:1 attempts:1\n"
)


def write_node_etc(netns_names: Iterable[str]) -> None:
    """``/etc/netns/<node or outside>/resolv.conf``: a resolver that fails fast, not one that
    would send queries towards the host's nameserver, which the lab cannot reach."""
    for name in netns_names:
        folder = naming.NETNS_ETC / name
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomic(folder / "resolv.conf", NO_DNS_RESOLV_CONF)


def remove_pod_etc(netns_names: Iterable[str]) -> None:
    """Remove ``/etc/netns/<name>`` for each name (missing ones are fine)."""
    for name in netns_names:
        if name.startswith(naming.PREFIX) and "/" not in name:
            shutil.rmtree(naming.NETNS_ETC / name, ignore_errors=True)


def remove_empty_etc_netns() -> None:
    """Remove ``/etc/netns`` itself when nothing is left in it (labs create it on demand)."""
    try:
        naming.NETNS_ETC.rmdir()  # only when empty: we created it, nobody else uses it
    except OSError:
        pass


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
