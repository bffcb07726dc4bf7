"""The packet path of one probe as a diagram, pure: from what was read off the lab (the source,
its veth, the DNAT conntrack saw, each node's route, the DROP rule whose counter rose) to boxes
in node frames with arrows in the order the packet went. Nothing here guesses: a step that
could not be read says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from labkit.values import Probe
from labkit.widgets.diagram import Arrow, Box, Diagram, Group
from labkit.widgets.path_facts import DropRule, Link, Route, hop_kind


@dataclass(frozen=True)
class Place:
    """A probe's end: a pod (``ns/name``), a node, or the outside world, with its address and
    the node it sits on."""

    kind: str
    name: str
    ip: str
    node: str | None


@dataclass(frozen=True)
class Dnat:
    """Where a Service address was translated to, and how that is known (conntrack on a node or
    in the client pod, or the pod that answered)."""

    service: str
    address: str
    endpoint: str
    endpoint_pod: str | None
    node: str | None
    evidence: str


@dataclass(frozen=True)
class NodeHop:
    """One node the packet crosses: its name and address, and the route it took there (or why
    the route could not be read)."""

    node: str
    ip: str
    route: Route | str
    host_route: bool = False
    """Whether the node holds a /32 route for the address (Calico's per-pod routes)."""


@dataclass(frozen=True)
class PathFacts:
    """Everything read for one probe's path."""

    title: str
    source: Place
    target: str
    probe: Probe
    veth: Link | str | None = None
    gateway: str | None = None
    """The source pod's next hop for the target (its own `ip route get`)."""
    proxy_arp: bool = False
    """Whether the pod's veth answers ARP for that gateway (Calico's 169.254.1.1)."""
    dnat: Dnat | str | None = None
    hops: tuple[NodeHop, ...] = ()
    destination: Place | None = None
    dest_port: int | None = None
    drops: tuple[tuple[str, DropRule], ...] = ()
    verdict: str | None = None
    node_ips: tuple[str, ...] = field(default_factory=tuple)


def _route_lines(hop: NodeHop, node_ips: Sequence[str]) -> tuple[str, ...]:
    if isinstance(hop.route, str):
        return (f"route on {hop.node}", f"unknown: {hop.route}")
    route = hop.route
    where = f"dev {route.dev}" + (f" via {route.via}" if route.via else "")
    meaning = {
        "tunnel": f"VXLAN/IPIP overlay ({route.dev}) to {route.via or 'the peer'}",
        "routed": f"routed hop to node {route.via}",
        "local": f"delivered on {hop.node}",
    }[hop_kind(route, node_ips)]
    if hop.host_route:
        return (f"route on {hop.node}", where, meaning, "a /32 route for the pod")
    return (f"route on {hop.node}", where, meaning)


def _veth_lines(facts: PathFacts, veth: Link | str, node: str) -> tuple[str, ...]:
    if isinstance(veth, str):
        lines = [f"veth on {node}", f"unknown: {veth}"]
    else:
        lines = [f"veth {veth.name}", f"host end of eth0 on {node}"]
    if facts.gateway:
        lines.append(f"pod gateway {facts.gateway}")
    if facts.proxy_arp:
        lines.append("proxy ARP on: the veth answers for the gateway")
    return tuple(lines)


def _dnat_lines(dnat: Dnat | str) -> tuple[str, ...]:
    if isinstance(dnat, str):
        return ("DNAT", f"endpoint unknown: {dnat}")
    chosen = f"chosen endpoint {dnat.endpoint}" + (
        f" ({dnat.endpoint_pod})" if dnat.endpoint_pod else ""
    )
    return (f"DNAT svc {dnat.service}", f"{dnat.address} to {dnat.endpoint}", chosen, dnat.evidence)


def _drop_lines(node: str, rule: DropRule, verdict: str | None) -> tuple[str, ...]:
    lines = [f"DROP on {node}", f"chain {rule.chain} ({rule.table})"]
    if rule.comment:
        lines.append(rule.comment)
    if verdict:
        lines.append(f"model: {verdict}")
    return tuple(lines)


def _outcome_lines(facts: PathFacts) -> tuple[str, ...]:
    probe = facts.probe
    lines = [f"outcome {probe.outcome}"]
    if probe.latency_s is not None:
        lines.append(f"in {probe.latency_s * 1000:.1f} ms")
    if probe.served_by:
        lines.append(f"served by {probe.served_by}")
    if probe.client_ip:
        lines.append(f"client seen as {probe.client_ip}")
    if probe.outcome == "timeout" and not facts.drops:
        lines.append("no DROP counter rose")
        if facts.verdict:
            lines.append(f"model: {facts.verdict}")
    return tuple(lines)


def _place_box(box_id: str, place: Place, port: int | None = None) -> Box:
    role = {"pod": "pod", "node": "node", "outside": "outside"}[place.kind]
    address = f"{place.ip}:{port}" if port is not None else place.ip
    return Box(box_id, (f"{place.kind} {place.name}", address), role)


class _Builder:
    """Boxes in the order the packet meets them, each on the node it happens on (or none)."""

    def __init__(self) -> None:
        self.order: list[tuple[str | None, Box, str]] = []

    def add(self, node: str | None, lines: tuple[str, ...], role: str, arrow: str = "") -> None:
        self.order.append((node, Box(f"s{len(self.order)}", lines, role), arrow))

    def add_box(self, node: str | None, box: Box, arrow: str = "") -> None:
        self.order.append((node, box, arrow))

    def diagram(self, title: str, frames: Sequence[NodeHop]) -> Diagram:
        ips = {h.node: h.ip for h in frames}
        groups = []
        for i, name in enumerate(dict.fromkeys(n for n, _, _ in self.order if n is not None)):
            boxes = tuple(b for n, b, _ in self.order if n == name)
            lines = (f"node {name}", ips[name]) if name in ips else (f"node {name}",)
            groups.append(Group(f"n{i}", lines, "node", boxes))
        free = tuple(b for n, b, _ in self.order if n is None)
        arrows = tuple(
            Arrow(a.id, b.id, label)
            for (_, a, _), (_, b, label) in zip(self.order, self.order[1:], strict=False)
        )
        # Top to bottom: a path is one long chain, and a notebook's output box is narrow (1024 px).
        return Diagram(title, tuple(groups), free, arrows)


def path_diagram(facts: PathFacts) -> Diagram:
    """The probe's path: source, veth (or bridge), DNAT, each node's route, a DROP where a
    counter rose, the destination, and the outcome."""
    build = _Builder()
    src = facts.source
    build.add_box(src.node, _place_box("src", src))
    first = facts.hops[0].node if facts.hops else src.node
    if src.kind == "pod" and facts.veth is not None:
        build.add(src.node, _veth_lines(facts, facts.veth, src.node or "?"), "step", "eth0")
        if isinstance(facts.veth, Link) and facts.veth.master:
            build.add(src.node, (f"bridge {facts.veth.master}", "Linux bridge"), "step")
    drops = list(facts.drops)
    if facts.dnat is not None:
        node = facts.dnat.node if isinstance(facts.dnat, Dnat) else first
        build.add(node, _dnat_lines(facts.dnat), "nat", facts.target)
    for hop in facts.hops:
        here = [d for d in drops if d[0] == hop.node]
        if here:
            for node, rule in here:
                build.add(node, _drop_lines(node, rule, facts.verdict), "drop")
            build.add(None, _outcome_lines(facts), "note")
            return build.diagram(facts.title, facts.hops)
        build.add(hop.node, _route_lines(hop, facts.node_ips), "step")
    for node, rule in drops:  # counted on a node the path did not name
        build.add(node, _drop_lines(node, rule, facts.verdict), "drop")
    if facts.destination is not None and not drops:
        dest = facts.destination
        build.add_box(dest.node, _place_box("dst", dest, facts.dest_port), "eth0")
    build.add(None, _outcome_lines(facts), "note")
    return build.diagram(facts.title, facts.hops)
