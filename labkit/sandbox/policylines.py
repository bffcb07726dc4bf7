"""One NetworkPolicy's Felix chain in one direction (``cali-pi-``/``cali-po-``): its rules, the
``cali-ex-`` sub-chains its ipBlock excepts need and the ipsets its selector peers match.

Pure. A policy's chain is the same on every node unless it is an ingress chain whose rules name a
port (resolved at this node's destination pods), so :class:`PolicyChains` writes it once per pass
for every node (as Felix's calculation graph computes one policy's rules once;
felix/rules/policy.go ``PolicyToIptablesChains``), and keeps it for the next passes while what it
is written from is the same (:mod:`labkit.sandbox.policycache`): only the members of its ipsets are
found again.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from labkit.errors import LabError
from labkit.model.netpol.endpoints import Endpoint
from labkit.model.netpol.policies import (
    INGRESS,
    IPBlock,
    IPNetwork,
    Peer,
    Policy,
    PortRule,
    Rule,
)
from labkit.model.netpol.selection import Selection
from labkit.model.netpol.verdicts import policy_selects
from labkit.sandbox import felix
from labkit.sandbox.policycache import Recent

ACCEPT_MARK = "0x10000/0x10000"
SET_ACCEPT = f"--jump MARK --set-mark {ACCEPT_MARK}"
IF_ACCEPTED = f"-m mark --mark {ACCEPT_MARK}"
KINDS = {INGRESS: "ingress", "egress": "egress"}


class WrittenChain(NamedTuple):
    """A policy's chain in one direction as Felix loads it: its name, its ``-A`` lines (each with
    its ``cali:`` hash, the policy's name on the first), its ``cali-ex-`` sub-chains' lines, and
    the selector peer each ipset it matches holds the pods of (set name -> peer)."""

    name: str
    lines: tuple[str, ...]
    subchains: dict[str, tuple[str, ...]]
    set_peers: dict[str, Peer]


class PolicyChains:
    """Policy chains of one pass, written once and shared by every node's render; those not
    resolved at pods are kept across passes in ``kept``."""

    def __init__(
        self,
        selection: Selection,
        eps: Sequence[Endpoint],
        kept: Recent[tuple[object, ...], WrittenChain],
    ) -> None:
        self.selection = selection
        self.eps = eps
        self._kept = kept
        self._shared: dict[tuple[object, ...], WrittenChain] = {}
        self._per_node: dict[tuple[object, ...], WrittenChain] = {}
        self.kept_keys: dict[str, tuple[object, ...]] = {}
        """The key each chain kept across passes has (by chain name), for a node's reused render
        to keep them too."""
        self._members: dict[str, list[Endpoint]] = {}
        self._sets: dict[str, list[str]] = {}

    def chain(
        self,
        policy: Policy,
        direction: str,
        local: Sequence[Endpoint],
        use_ipsets: bool,
        outside: Sequence[IPNetwork],
        node: str,
    ) -> WrittenChain:
        """The chain of ``policy`` in ``direction`` on ``node`` (whose pods are ``local``)."""
        slot: tuple[object, ...] = (policy.ref, direction, use_ipsets, tuple(outside))
        found = self._shared.get(slot)
        if found is not None:
            return found
        rules = policy.rules(direction)

        def write() -> WrittenChain:
            return _Writer(self, local, use_ipsets, outside).policy_chain(policy, direction)

        if any(port.named for rule in rules for port in rule.ports):
            # Resolved at pods (ingress: at this node's), so written again every pass.
            if direction != INGRESS:
                found = self._shared[slot] = write()
                return found
            found = self._per_node.get((*slot, node))
            if found is None:
                found = self._per_node[(*slot, node)] = write()
            return found
        # Written from the policy (this very parse, reused while its version is) and, inline,
        # the addresses its selector peers pick; with ipsets those are the sets' members.
        picked = () if use_ipsets else self._addresses(rules, policy.namespace)
        key = (_Same(policy), direction, use_ipsets, tuple(outside), picked)
        found = self._shared[slot] = self._kept.get(key, write)
        self.kept_keys[found.name] = key
        return found

    def _addresses(self, rules: Sequence[Rule], namespace: str) -> tuple[object, ...]:
        """The addresses each selector peer of ``rules`` picks, as inline rules name them."""
        return tuple(
            tuple(ep.ip for ep in self.pods_of(peer, namespace))
            for rule in rules
            for peer in rule.peers
            if peer.ip_block is None
        )

    def pods_of(self, peer: Peer, policy_namespace: str) -> list[Endpoint]:
        """Pods a selector peer names that have an IPv4 address, in address order (then in
        namespace and name order)."""
        key = self.selection.identity(peer, policy_namespace)
        found = self._members.get(key)
        if found is None:
            found = self._members[key] = sorted(
                (
                    ep
                    for ep in self.selection.peer_pods(peer, policy_namespace)
                    if ep.ip is not None and ep.ip.version == 4
                ),
                key=lambda e: (int(e.ip) if e.ip else 0, e.sort_key),
            )
        return found

    def set_members(self, name: str, peer: Peer, policy_namespace: str) -> list[str]:
        """The addresses in the ipset ``name`` of a selector peer, found once per pass."""
        found = self._sets.get(name)
        if found is None:
            found = self._sets[name] = [str(ep.ip) for ep in self.pods_of(peer, policy_namespace)]
        return found


class _Same:
    """An object in a key compared by identity, not by value: a parse is reused while its
    object's version is, and comparing it by identity is exact and costs nothing."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj


def comment(text: str) -> str:
    """A ``-m comment`` match, escaped as Felix escapes it."""
    return f'-m comment --comment "{felix.escape_comment(text)}"'


def join(*parts: str) -> str:
    """Rule parts separated by spaces, empty parts left out."""
    return " ".join(p for p in parts if p)


def outside_cidr(text: str) -> IPNetwork:
    """A lab's outside range as a network, or LabError."""
    try:
        return ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        raise LabError(
            f"Outside range {text!r} is not a CIDR.", "Write it like 203.0.113.0/24."
        ) from None


class _Ports(NamedTuple):
    """One ports entry as Felix writes it: the protocol goes first in a rule, the ports last."""

    proto: str = ""
    ports: str = ""


def _port_args(port: PortRule | None, number: int | None = None) -> _Ports:
    """Felix's matches for one ports entry (``number`` overrides it, for a resolved named
    port)."""
    if port is None:
        return _Ports()
    proto = f"-p {port.protocol.lower()}"
    if number is not None:
        return _Ports(proto, f"-m multiport --destination-ports {number}")
    if port.port is None:
        return _Ports(proto)
    if port.end_port is not None:
        return _Ports(proto, f"-m multiport --destination-ports {port.port}:{port.end_port}")
    return _Ports(proto, f"-m multiport --destination-ports {port.port}")


def _set_side(direction: str) -> str:
    return "src" if direction == INGRESS else "dst"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Target:
    """One peer of a rule as rule lines are written for it: one selected pod, the ipBlock that is
    the rule's ``index``-th peer, the ipset of a selector peer's pods, or (none of them) every
    address, for a rule without peers."""

    pod: Endpoint | None = None
    block: IPBlock | None = None
    index: int = 0
    ipset: str = ""
    members: tuple[Endpoint, ...] = ()


class _Writer:
    """Writes one policy chain (and what it needs) for one node's pods."""

    def __init__(
        self,
        chains: PolicyChains,
        local: Sequence[Endpoint],
        use_ipsets: bool,
        outside: Sequence[IPNetwork],
    ) -> None:
        self.shared = chains
        self.selection = chains.selection
        self.eps = chains.eps
        self.local = local
        self.use_ipsets = use_ipsets
        self.outside = outside
        self.subchains: dict[str, list[str]] = {}
        self.set_peers: dict[str, Peer] = {}

    def policy_chain(self, policy: Policy, direction: str) -> WrittenChain:
        rules: list[str] = []
        for rule in policy.rules(direction):
            where = f"{policy.ref} {direction} rule {rule.index}"
            body = self._rule_lines(policy, rule, direction, where)
            if body:
                rules.extend(body)
                rules.append(f"{IF_ACCEPTED} --jump RETURN")
        # Felix drops trailing RETURNs (the chain's end returns anyway) and puts the policy's
        # name on the first rule (felix/rules/policy.go ``ProtoRulesToIptablesRules``).
        while rules and rules[-1].endswith("--jump RETURN"):
            rules.pop()
        title = comment(f"KubernetesNetworkPolicy {policy.ref} {KINDS[direction]}")
        rules[:1] = [join(title, rules[0]) if rules else title]
        name = felix.policy_chain(policy.namespace, policy.name, direction == INGRESS)
        return WrittenChain(
            name,
            felix.render_chain(name, rules),
            {sub: felix.render_chain(sub, lines) for sub, lines in self.subchains.items()},
            self.set_peers,
        )

    def _rule_lines(self, policy: Policy, rule: Rule, direction: str, where: str) -> list[str]:
        """Every (peer, port) combination of one rule as a rule line, duplicates dropped."""
        peer_flag = "--source" if direction == INGRESS else "--destination"
        lines: dict[str, None] = {}
        targets: list[_Target] = [_Target()] if not rule.peers else []
        for index, peer in enumerate(rule.peers):
            if peer.ip_block is not None:
                targets.append(_Target(block=peer.ip_block, index=index))
            elif self.use_ipsets:
                targets.append(self._ipset_target(peer, policy.namespace))
            else:
                targets.extend(
                    _Target(pod=ep) for ep in self.shared.pods_of(peer, policy.namespace)
                )
        ports: list[PortRule | None] = list(rule.ports) or [None]
        for target in targets:
            for port in ports:
                if port is not None and port.named:
                    for line in self._named_port_lines(
                        policy, rule, direction, target, port, where
                    ):
                        lines[line] = None
                    continue
                pa = _port_args(port)
                if target.ipset:
                    match = f"-m set --match-set {target.ipset} {_set_side(direction)}"
                    line = join(pa.proto, match, pa.ports, SET_ACCEPT)
                elif target.pod is not None:
                    line = join(pa.proto, f"{peer_flag} {target.pod.ip}/32", pa.ports, SET_ACCEPT)
                elif target.block is not None:
                    line = self._block_line(
                        policy, rule, direction, target.index, target.block, pa, where
                    )
                else:
                    line = join(pa.proto, pa.ports, SET_ACCEPT)
                lines[line] = None
        return list(lines)

    def _block_line(
        self,
        policy: Policy,
        rule: Rule,
        direction: str,
        index: int,
        block: IPBlock,
        pa: _Ports,
        where: str,
        extra: str = "",
    ) -> str:
        """The rule line for an ipBlock peer (the ``index``-th of its rule); with excepts, it
        jumps to a sub-chain that returns for them first."""
        flag = "--source" if direction == INGRESS else "--destination"
        if block.cidr.version != 4:
            return comment(f"{where} ipBlock {block} is IPv6: not rendered in this IPv4 table")
        outside = self._outside_note(block)
        note = comment(f"{where} ipBlock{outside}") if outside else ""
        excepts = [n for n in block.excepts if n.version == 4]
        if not excepts:
            return join(note, pa.proto, f"{flag} {block.cidr}", extra, pa.ports, SET_ACCEPT)
        chain = "cali-ex-" + _digest(f"{policy.ref}|{direction}|{rule.index}|{index}")
        if chain not in self.subchains:
            self.subchains[chain] = [
                join(comment(f"{where} except {net}"), f"{flag} {net}", "--jump RETURN")
                for net in excepts
            ]
            self.subchains[chain].append(SET_ACCEPT)
        return join(note, pa.proto, f"{flag} {block.cidr}", extra, pa.ports, f"--jump {chain}")

    def _named_port_lines(
        self,
        policy: Policy,
        rule: Rule,
        direction: str,
        target: _Target,
        port: PortRule,
        where: str,
    ) -> list[str]:
        """A named port resolved at each destination pod: ``--destination <podIP>/32`` and its
        number there."""
        out = []
        if direction == INGRESS:
            # The destination is the protected pod itself: every local pod this policy selects.
            for dst in self.local:
                resolved = dst.named_port(str(port.port), port.protocol)
                if (
                    resolved is None
                    or dst.ip is None
                    or dst.ip.version != 4
                    or not policy_selects(policy, dst)
                ):
                    continue
                dst_args = f"--destination {dst.ip}/32"
                pa = _port_args(port, resolved.number)
                if target.ipset:
                    src_args = f"-m set --match-set {target.ipset} src"
                    out.append(join(pa.proto, src_args, dst_args, pa.ports, SET_ACCEPT))
                elif target.pod is not None:
                    src_args = f"--source {target.pod.ip}/32"
                    out.append(join(pa.proto, src_args, dst_args, pa.ports, SET_ACCEPT))
                elif target.block is not None:
                    out.append(
                        self._block_line(
                            policy,
                            rule,
                            direction,
                            target.index,
                            target.block,
                            pa,
                            where,
                            dst_args,
                        )
                    )
                else:
                    out.append(join(pa.proto, dst_args, pa.ports, SET_ACCEPT))
            return out
        # Egress: the destination is the peer; only pods declare named ports.
        candidates: Iterable[Endpoint]
        if target.ipset:
            candidates = target.members
        elif target.pod is not None:
            candidates = [target.pod]
        elif target.block is not None:
            block = target.block
            candidates = [ep for ep in self.eps if ep.is_pod and block.contains(ep.ip)]
        else:
            candidates = [ep for ep in self.eps if ep.is_pod]
        for dst in candidates:
            resolved = dst.named_port(str(port.port), port.protocol)
            if resolved is None or dst.ip is None or dst.ip.version != 4:
                continue
            pa = _port_args(port, resolved.number)
            out.append(join(pa.proto, f"--destination {dst.ip}/32", pa.ports, SET_ACCEPT))
        return out

    def _ipset_target(self, peer: Peer, policy_namespace: str) -> _Target:
        """A selector peer as Felix matches it: one ``hash:net`` set of the selected pods'
        addresses, named ``cali40s:`` and an ID of the selection (Felix's ID is a hash of the
        selector it derives; this one hashes the policy's namespace and the peer's selectors)."""
        identity = self.selection.identity(peer, policy_namespace)
        name = felix.ipset_name(identity)
        self.set_peers[name] = peer
        return _Target(ipset=name, members=tuple(self.shared.pods_of(peer, policy_namespace)))

    def _outside_note(self, block: IPBlock) -> str:
        covered = [
            str(net)
            for net in self.outside
            if _within(net, block.cidr) and not any(net.overlaps(x) for x in block.excepts)
        ]
        return f" (covers outside {', '.join(covered)})" if covered else ""


def _within(inner: IPNetwork, outer: IPNetwork) -> bool:
    """Whether ``inner`` lies inside ``outer`` (never across IP versions)."""
    return (
        inner.version == outer.version
        and int(outer.network_address) <= int(inner.network_address)
        and int(inner.broadcast_address) <= int(outer.broadcast_address)
    )
