"""Cilium's kube-proxy replacement on the sandbox (pure): Services translated at the client's
side, and the node's own Cilium chains.

Cilium with ``kubeProxyReplacement=true`` translates a Service address when a socket connects
(its cgroup hooks, ``bpf/bpf_sock.c`` ``cil_sock4_connect``), so the packet leaves the pod
already addressed to a backend; the backend sees the pod's address and no node holds a DNAT
rule for it. With no eBPF here, :func:`socket_lb_rules` stands in: ``nat OUTPUT`` DNAT rules in
each pod's own namespace (``CILIUM_SOCK_LB``, a chain real Cilium does not have), one
``CILIUM_LB_<hash>`` chain per Service port spreading over its backends, and a filter rule that
answers a frontend without backends with ICMP port unreachable, "connection refused" (Cilium's
default ``service-no-backend-response: reject``, ``tail_no_service_ipv4``). The
same rules sit in the node's ``nat OUTPUT``: Cilium's hooks sit on the root cgroup, so processes
in the node's namespace (and hostNetwork pods) get their connects translated too; traffic a node
forwards for its pods never meets them.

From outside, NodePorts, LoadBalancer addresses and externalIPs are served at the node
(Cilium's ``bpf_host`` on eth0): here ``CILIUM_PRE_nat`` DNATs them, and a backend on another
node is reached with the node's address as source (KPR's default SNAT mode) unless
``externalTrafficPolicy: Local``. :func:`cilium_node_rules` also holds what Cilium's agent does
program with iptables (``pkg/datapath/iptables/iptables.go``): the ``CILIUM_*`` chains and their
``cilium-feeder`` rules, and "cilium masquerade non-cluster".

A Service change reaches every pod's namespace, so :func:`socket_lb_delta` writes it as a small
``iptables-restore --noflush`` input computed once per node and loaded into each of its pods:
the changed frontends deleted (``-D``) and appended (``-A``) one by one, the changed spread
chains rewritten, and nothing else touched (the other Services' rules keep their counters).
``CILIUM_SOCK_LB``'s rules each match their own frontend address, protocol and port, so their
order does not matter and appending keeps them equivalent to a from-scratch load.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from functools import partial
from typing import Any, NamedTuple

from labkit.model.kubeproxy.chains import port_proto_hash, statistic_probability
from labkit.model.objects import name_of
from labkit.sandbox.fabric_cilium import CILIUM_VXLAN
from labkit.sandbox.iptables import BUILTIN_CHAINS, TABLE_ORDER, Chains, chain_names
from labkit.sandbox.iptables_save import SaveTables, comment, rule
from labkit.sandbox.proxyports import (
    PortEndpoint,
    ProxiedPort,
    ProxyInputs,
    choose_endpoints,
    ipv4,
    proxy_inputs,
)
from labkit.sandbox.rulediff import Ruleset

SOCK_LB = "CILIUM_SOCK_LB"
NO_BACKEND = "REJECT --reject-with icmp-port-unreachable"
"""What Cilium answers for a frontend without backends under its default
``service-no-backend-response: reject``: ICMP destination (port) unreachable."""
SNAT_MARK = "0x200/0x200"
"""Marks outside traffic to a NodePort that may be SNATed to the node's address."""
FEEDERS = {
    "filter": (
        ("INPUT", "CILIUM_INPUT"),
        ("FORWARD", "CILIUM_FORWARD"),
        ("OUTPUT", "CILIUM_OUTPUT"),
    ),
    "nat": (
        ("PREROUTING", "CILIUM_PRE_nat"),
        ("OUTPUT", "CILIUM_OUTPUT_nat"),
        ("POSTROUTING", "CILIUM_POST_nat"),
    ),
    "mangle": (("PREROUTING", "CILIUM_PRE_mangle"), ("POSTROUTING", "CILIUM_POST_mangle")),
}
"""The chains Cilium's agent installs, and the built-in chain that feeds each."""


def lb_chain(port: ProxiedPort) -> str:
    """The chain spreading one Service port over its backends."""
    return "CILIUM_LB_" + port_proto_hash(port.spn, port.protocol)


def _match(port: ProxiedPort, number: int) -> tuple[str, ...]:
    return (f"-m {port.protocol}", f"--dport {number}")


def _spread(t: SaveTables, chain: str, port: ProxiedPort, backends: Sequence[PortEndpoint]) -> None:
    """``chain``: pick one backend at random, kube-proxy's 1/n, 1/(n-1)... cascade."""
    for index, backend in enumerate(backends):
        left = len(backends) - index
        chance = (
            ()
            if left == 1
            else ("-m statistic --mode random", f"--probability {statistic_probability(1 / left)}")
        )
        t.add(
            "nat",
            chain,
            proto=port.protocol,
            matches=(comment(port.spn), f"-m {port.protocol}", *chance),
            target=f"DNAT --to-destination {backend.address}",
        )


class _Frontends:
    """Collects frontends (a nat rule each, or a filter refusal) and the chains they lead to."""

    def __init__(self, t: SaveTables, nat_chain: str) -> None:
        self.t, self.nat_chain = t, nat_chain
        self.spread: set[str] = set()

    def add(
        self,
        port: ProxiedPort,
        address: str | None,
        number: int,
        backends: Sequence[PortEndpoint],
        what: str,
        refuse_in: str,
        chain: str,
        extra: tuple[str, ...] = (),
    ) -> None:
        """Frontend ``address:number`` (any local address when None) to ``backends`` through
        ``chain``; without backends, refused in the filter chain ``refuse_in``."""
        note = comment(f"{port.spn} {what}")
        matches = (*extra, note, *_match(port, number))
        if not backends:
            self.t.add(
                "filter",
                refuse_in,
                dst=address,
                proto=port.protocol,
                matches=matches,
                target=NO_BACKEND,
            )
            return
        self.t.add(
            "nat", self.nat_chain, dst=address, proto=port.protocol, matches=matches, target=chain
        )
        if chain not in self.spread:
            self.spread.add(chain)
            _spread(self.t, chain, port, backends)


def _node_ips(nodes: Sequence[Mapping[str, Any]]) -> list[str]:
    ips = []
    for node in nodes:
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                ip = ipv4(address.get("address"), f"Node {name_of(node)} InternalIP")
                if ip:
                    ips.append(ip)
    return ips


class PortRules(NamedTuple):
    """One Service port's share of a node's socket LB."""

    nat: tuple[str, ...]
    """Its frontends in nat's ``CILIUM_SOCK_LB``."""
    refused: tuple[str, ...]
    """Its frontends without backends, in filter's ``CILIUM_SOCK_LB``."""
    chains: tuple[tuple[str, tuple[str, ...]], ...]
    """Its spread chains, each with its rules."""


class PortCache:
    """Each node's socket LB share per Service port, kept while what it is rendered from (the
    port, its endpoints, the nodes' addresses) is equal: one change renders the ports it touched,
    as kube-proxy's partial sync writes only the chains of changed Services (issue 18)."""

    def __init__(self) -> None:
        self._nodes: dict[str, dict[Hashable, PortRules]] = {}

    def rules(
        self, node: str, wanted: Sequence[tuple[Hashable, Callable[[], PortRules]]]
    ) -> list[PortRules]:
        """Each port's rules on ``node``, in order: kept for an equal key, else rendered; only
        these are kept for the next call."""
        kept, now = self._nodes.get(node, {}), {}
        out = []
        for key, render in wanted:
            found = kept.get(key)
            if found is None:
                found = render()
            now[key] = found
            out.append(found)
        self._nodes[node] = now
        return out


def socket_lb_rules(
    node_name: str,
    nodes: Sequence[Mapping[str, Any]],
    services: Sequence[Mapping[str, Any]],
    endpoint_slices: Sequence[Mapping[str, Any]],
    shared: Callable[[], ProxyInputs] | None = None,
    cache: PortCache | None = None,
) -> Chains:
    """The client-side Service translation for the pods of ``node_name`` (and the node's own
    processes): every ClusterIP, NodePort (on each node's address), LoadBalancer address and
    externalIP, as ``nat``/``filter`` chains. ``shared`` gives the Service ports and endpoints
    read once for every node; ``cache`` keeps each port's rules from one call to the next."""
    found = shared() if shared is not None else proxy_inputs(services, endpoint_slices)
    node_ips = tuple(_node_ips(nodes))
    wanted = []
    for port in found.ports:
        backends = tuple(found.endpoints.get(port.key, ()))
        render = partial(_port_socket_lb, node_name, node_ips, port, backends)
        wanted.append(((port, backends, node_ips), render))
    pieces = (cache or PortCache()).rules(node_name, wanted)
    spread = dict(sorted(chain for piece in pieces for chain in piece.chains))
    frontends = tuple(line for piece in pieces for line in piece.nat)
    refused = tuple(line for piece in pieces for line in piece.refused)
    nat: dict[str, tuple[str, ...]] = {"OUTPUT": (_hook("cilium: socket LB (sandbox stand-in)"),)}
    filt: dict[str, tuple[str, ...]] = {"OUTPUT": (_hook("cilium: socket LB, no backends"),)}
    if frontends:
        nat[SOCK_LB] = frontends
    if refused:
        filt[SOCK_LB] = refused
    nat.update(spread)
    users = sorted({SOCK_LB, *spread})
    declared = {
        "nat": {**dict.fromkeys(BUILTIN_CHAINS["nat"], "ACCEPT"), **dict.fromkeys(users, "-")},
        "filter": {**dict.fromkeys(BUILTIN_CHAINS["filter"], "ACCEPT"), SOCK_LB: "-"},
    }
    rules = {"nat": nat, "filter": filt}
    return Chains(declared, rules, {t: chain_names(r) for t, r in rules.items()})


def _hook(note: str) -> str:
    """The ``OUTPUT`` rule that sends a table's traffic through ``CILIUM_SOCK_LB``."""
    return rule("OUTPUT", matches=(comment(note),), target=SOCK_LB)


def _port_socket_lb(
    node_name: str,
    node_ips: Sequence[str],
    port: ProxiedPort,
    backends: Sequence[PortEndpoint],
) -> PortRules:
    """One Service port's frontends in the socket LB of ``node_name`` and its spread chains."""
    t = SaveTables()
    fronts = _Frontends(t, SOCK_LB)
    choice = choose_endpoints(port, backends, node_name)
    chain = lb_chain(port)
    internal = choice.local if port.internal_local else choice.cluster
    fronts.add(port, port.cluster_ip, port.port, internal, "cluster IP", SOCK_LB, chain + "_I")
    every = choice.cluster or choice.local
    frontends = [(ip, port.node_port, "nodePort") for ip in node_ips if port.node_port]
    frontends += [(ip, port.port, "loadbalancer IP") for ip in port.load_balancer_ips]
    frontends += [(ip, port.port, "external IP") for ip in port.external_ips]
    for ip, number, what in frontends:
        assert number is not None
        fronts.add(port, ip, number, every, what, SOCK_LB, chain)
    nat, filt = t.rules["nat"], t.rules["filter"]
    return PortRules(
        tuple(nat.get(SOCK_LB, ())),
        tuple(filt.get(SOCK_LB, ())),
        tuple((name, tuple(nat[name])) for name in sorted(fronts.spread)),
    )


def cilium_node_rules(
    node: Mapping[str, Any],
    services: Sequence[Mapping[str, Any]],
    endpoint_slices: Sequence[Mapping[str, Any]],
    pod_cidr: str,
    shared: Callable[[], ProxyInputs] | None = None,
) -> dict[str, list[str]]:
    """A Cilium node's iptables: the agent's ``CILIUM_*`` chains with their feeders, pod
    masquerading, and NodePort/LoadBalancer/externalIP service for clients outside (``shared``:
    the Service ports and endpoints read once for every node)."""
    node_name = name_of(node)
    node_ip = next(iter(_node_ips([node])), None)
    t = SaveTables()
    for table, feeders in FEEDERS.items():
        for builtin, chain in feeders:
            t.add(table, builtin, matches=(comment(f"cilium-feeder: {chain}"),), target=chain)
            t.declare(table, chain)
    for direction, flag in (("any->cluster", "-o"), ("cluster->any", "-i")):
        for iface in ("cilium_host", "lxc+"):
            t.add(
                "filter",
                "CILIUM_FORWARD",
                matches=(
                    f"{flag} {iface}",
                    comment(f"cilium: {direction} on {iface} forward accept"),
                ),
                target="ACCEPT",
            )
    t.add(
        "nat",
        "CILIUM_POST_nat",
        src=pod_cidr,
        matches=(f"! -d {pod_cidr}", "! -o cilium_+", comment("cilium masquerade non-cluster")),
        target="MASQUERADE",
    )
    if node_ip:
        t.add(
            "nat",
            "CILIUM_POST_nat",
            matches=(
                f"-o {CILIUM_VXLAN}",
                f"-m mark --mark {SNAT_MARK}",
                comment("cilium: nodeport SNAT to a remote backend (sandbox stand-in)"),
            ),
            target=f"SNAT --to-source {node_ip}",
        )
    fronts = _Frontends(t, "CILIUM_PRE_nat")
    found = shared() if shared is not None else proxy_inputs(services, endpoint_slices)
    local = ("-m addrtype --dst-type LOCAL",)
    for port in found.ports:
        if not port.externally_accessible:
            continue  # a ClusterIP alone: served by the socket LB, nothing at the node
        choice = choose_endpoints(port, found.endpoints.get(port.key, []), node_name)
        backends = choice.local if port.external_local else choice.cluster
        chain = lb_chain(port) + ("_L" if port.external_local else "")
        frontends: list[tuple[str | None, int, tuple[str, ...], str]] = []
        if port.node_port:
            frontends.append((None, port.node_port, local, "CILIUM_INPUT"))
        frontends += [(ip, port.port, (), "CILIUM_FORWARD") for ip in port.load_balancer_ips]
        frontends += [(ip, port.port, (), "CILIUM_FORWARD") for ip in port.external_ips]
        for address, number, extra, refuse_in in frontends:
            if not port.external_local:
                t.add(
                    "mangle",
                    "CILIUM_PRE_mangle",
                    dst=address,
                    proto=port.protocol,
                    matches=(*extra, *_match(port, number)),
                    target=f"MARK --set-xmark {SNAT_MARK}",
                )
            fronts.add(port, address, number, backends, "external", refuse_in, chain, extra)
    return {table: t.lines(table) for table in ("filter", "nat", "mangle")}


def socket_lb_delta(old: Ruleset, new: Ruleset) -> str | None:
    """The ``iptables-restore --noflush`` input that turns a pod namespace holding the socket LB
    ``old`` into ``new`` ('' when equal): per table, the spread chains that are new or changed
    (declared, so flushed, then written), ``-D`` for each ``CILIUM_SOCK_LB`` rule no longer
    wanted, ``-A`` for each new one, then ``-X`` for spread chains gone (declared first: only an
    empty chain can be deleted). None when ``old`` and
    ``new`` differ elsewhere (a built-in chain's hooks, or no ``CILIUM_SOCK_LB``): then only a
    whole load is right."""
    out: list[str] = []
    for table in sorted(old.keys() | new.keys(), key=TABLE_ORDER.index):
        before, after = old.get(table, {}), new.get(table, {})
        if any(before.get(name) != after.get(name) for name in BUILTIN_CHAINS[table]):
            return None
        if (SOCK_LB in before) != (SOCK_LB in after):
            return None
        ours = [name for name in after if name not in BUILTIN_CHAINS[table] and name != SOCK_LB]
        changed = [name for name in ours if before.get(name) != after[name]]
        gone = [n for n in before if n not in after and n not in BUILTIN_CHAINS[table]]
        held = Counter(before[SOCK_LB].rules if SOCK_LB in before else ())
        wanted = Counter(after[SOCK_LB].rules if SOCK_LB in after else ())
        removed, added = held - wanted, wanted - held
        if not (changed or gone or removed or added):
            continue
        out.append(f"*{table}")
        out += [f":{name} - [0:0]" for name in (*changed, *gone)]
        for name in changed:
            out += after[name].rules
        out += ["-D" + rule[2:] for rule in removed.elements()]
        out += list(added.elements())
        out += [f"-X {name}" for name in gone]
        out.append("COMMIT")
    return "\n".join(out) + "\n" if out else ""
