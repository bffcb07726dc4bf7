"""Reading a node's data plane for the packet path, pure: conntrack flows (which endpoint a DNAT
chose), iptables-save counters (which DROP rule counted the packet), ``ip route get`` (where a
node sends an address) and ``ip -o link`` (a pod's veth and the bridge it hangs on).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Flow:
    """One conntrack entry: the original direction and who answers it (after DNAT, the
    endpoint)."""

    src: str
    dst: str
    sport: int
    dport: int
    reply_src: str
    reply_sport: int
    state: str

    @property
    def translated(self) -> bool:
        """Whether the destination was rewritten (a DNAT: the reply comes from elsewhere)."""
        return (self.reply_src, self.reply_sport) != (self.dst, self.dport)


def parse_conntrack(text: str) -> list[Flow]:
    """``conntrack -L`` lines -> flows (lines without both directions' addresses are skipped).
    The format is conntrack-tools' ``src= dst= sport= dport=`` pairs, original then reply."""
    flows = []
    for line in text.splitlines():
        pairs = re.findall(r"\b(src|dst|sport|dport)=(\S+)", line)
        if len(pairs) < 8:
            continue
        orig, reply = dict(pairs[:4]), dict(pairs[4:8])
        state = next((w for w in line.split()[3:4] if w.isupper()), "")
        try:
            flows.append(
                Flow(
                    orig["src"],
                    orig["dst"],
                    int(orig["sport"]),
                    int(orig["dport"]),
                    reply["src"],
                    int(reply["sport"]),
                    state,
                )
            )
        except (KeyError, ValueError):
            continue
    return flows


def new_flows(before: Iterable[Flow], after: Iterable[Flow]) -> list[Flow]:
    """The flows that appeared between two listings (matched by their original tuple)."""
    seen = {(f.src, f.dst, f.sport, f.dport) for f in before}
    return [f for f in after if (f.src, f.dst, f.sport, f.dport) not in seen]


@dataclass(frozen=True)
class DropRule:
    """A rule that drops or rejects, with its packet counter."""

    table: str
    chain: str
    rule: str
    packets: int

    @property
    def comment(self) -> str:
        """The rule's ``--comment``, or empty."""
        found = re.search(r'--comment (?:"([^"]*)"|(\S+))', self.rule)
        return (found.group(1) or found.group(2)) if found else ""


def drop_rules(save: str) -> list[DropRule]:
    """Every ``-j DROP`` / ``-j REJECT`` rule of an ``iptables-save -c`` listing with its
    packet counter (``[packets:bytes]`` before ``-A``)."""
    out = []
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        found = re.match(r"\[(\d+):\d+\] -A (\S+) (.*)$", line)
        if found and re.search(r"-j (DROP|REJECT)\b", found.group(3)):
            out.append(DropRule(table, found.group(2), found.group(3), int(found.group(1))))
    return out


def counted_drops(before: Iterable[DropRule], after: Iterable[DropRule]) -> list[DropRule]:
    """The drop rules whose counters rose between two listings, with the rise as ``packets``."""
    then = {(r.table, r.chain, r.rule): r.packets for r in before}
    return [
        DropRule(r.table, r.chain, r.rule, r.packets - then.get((r.table, r.chain, r.rule), 0))
        for r in after
        if r.packets > then.get((r.table, r.chain, r.rule), 0)
    ]


@dataclass(frozen=True)
class Route:
    """Where ``ip route get`` says a node sends an address: out of ``dev``, via ``via`` (a next
    hop) or straight (None)."""

    dev: str
    via: str | None


def parse_route_get(text: str) -> Route | None:
    """``ip route get ADDR`` -> its device and next hop (None when it names no device)."""
    dev = re.search(r"\bdev (\S+)", text)
    via = re.search(r"\bvia (\S+)", text)
    return Route(dev.group(1), via.group(1) if via else None) if dev else None


@dataclass(frozen=True)
class Link:
    """An interface from ``ip -o link``: its name and the bridge it is enslaved to."""

    index: int
    name: str
    master: str | None


def parse_links(text: str) -> list[Link]:
    """``ip -o link`` lines -> interfaces (``name@ifN`` loses its ``@`` part)."""
    out = []
    for line in text.splitlines():
        found = re.match(r"(\d+): ([^:@\s]+)(?:@\S+)?:", line)
        if found:
            master = re.search(r"\bmaster (\S+)", line)
            out.append(
                Link(int(found.group(1)), found.group(2), master.group(1) if master else None)
            )
    return out


def peer_index(text: str) -> int | None:
    """The peer's interface index of a veth, from ``ip -o link show eth0`` (``eth0@if7``)."""
    found = re.search(r"^\d+: \S+@if(\d+):", text, re.MULTILINE)
    return int(found.group(1)) if found else None


TUNNELS = ("flannel.1", "vxlan.calico", "vxlan-v6.calico", "tunl0")
"""Overlay devices: Flannel's and Calico's VXLAN, Calico's IP-in-IP."""


def hop_kind(route: Route, node_ips: Iterable[str]) -> str:
    """What a route does with a packet: ``tunnel`` (VXLAN/IPIP to another node), ``routed``
    (straight to another node's address), or ``local`` (out of a device on this node)."""
    if route.dev in TUNNELS:
        return "tunnel"
    if route.via is not None and route.via in set(node_ips):
        return "routed"
    return "local"


TO_WORKLOAD = "cali-tw-"
"""Felix's to-workload chain prefix: ``cali-tw-<host veth>`` (felix/rules/rule_defs.go)."""


def workload_iface(chain: str) -> str | None:
    """The host veth a Calico to-workload chain polices (``cali-tw-caliXYZ`` -> ``caliXYZ``)."""
    if not chain.startswith(TO_WORKLOAD):
        return None
    return chain[len(TO_WORKLOAD) :] or None


def routed_addresses(text: str) -> list[str]:
    """The host addresses ``ip -4 route show dev IFACE`` routes out of that device (a pod's
    /32, shown without its length)."""
    out = []
    for line in text.splitlines():
        first = line.split()[0] if line.split() else ""
        if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", first):
            out.append(first)
    return out
