"""Truth tables: reachability of every ordered pair of a set of pods for a few ports at once.

Peer sets are bitmasks (bit i stands for the i-th endpoint; one Python int per row), computed
per policy and rule rather than one verdict per cell; the two always agree (tests check it).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

from labkit.model.netpol.endpoints import Endpoint, endpoint
from labkit.model.netpol.policies import (
    EGRESS,
    INGRESS,
    Peer,
    Policy,
    PolicyError,
    PortRule,
    Rule,
    parse_protocol,
)
from labkit.model.netpol.verdicts import PolicySet, ports_match
from labkit.model.objects import ContainerPort
from labkit.model.selectors import selector_matches

_NUMERIC_PORT = re.compile(r"^(\d+)(?:/(TCP|UDP|SCTP))?$", re.IGNORECASE)


@dataclass(frozen=True)
class PortQuery:
    """A column group of a truth table: a port number, or a containerPort name, with a protocol."""

    port: int | str
    protocol: str | None

    @property
    def label(self) -> str:
        """The column group's name: ``80/TCP``, ``http`` or ``dns/UDP``."""
        if isinstance(self.port, int):
            return f"{self.port}/{self.protocol}"
        return self.port if self.protocol is None else f"{self.port}/{self.protocol}"

    def resolve(self, dst: Endpoint) -> tuple[int, str] | None:
        """``(number, protocol)`` at ``dst``; None when a named port is not declared there."""
        if isinstance(self.port, int):
            return self.port, self.protocol or "TCP"
        found = dst.named_port(self.port, self.protocol)
        return (found.number, found.protocol) if found else None


PortLike = int | str | tuple[int | str, str] | PortQuery
"""How callers name a port: ``80``, ``"80/UDP"``, ``(80, "UDP")``, ``"http"`` or a PortQuery."""


def port_query(item: PortLike) -> PortQuery:
    """Read ``80``, ``"80/UDP"``, ``(80, "UDP")``, ``"serve-80-tcp"`` or ``("dns", "UDP")``."""
    if isinstance(item, PortQuery):
        return item
    proto: str | None = None
    if isinstance(item, tuple):
        if len(item) != 2:
            raise PolicyError(
                f"Port {item!r} is not (port, protocol).",
                "Write ports as 80, (53, 'UDP') or 'http'.",
            )
        item, proto = item
        proto = parse_protocol(proto, f"port {item!r}")
    if isinstance(item, bool) or not isinstance(item, (int, str)):
        raise PolicyError(
            f"Port {item!r} is neither a number nor a name.",
            "Write ports as 80, (53, 'UDP') or 'http'.",
        )
    if isinstance(item, str):
        m = _NUMERIC_PORT.match(item)
        if m:
            item = int(m.group(1))
            if m.group(2):
                proto = m.group(2).upper()
    if isinstance(item, int):
        if not 1 <= item <= 65535:
            raise PolicyError(
                f"Port {item} is outside 1-65535.", "Use a port number from 1 to 65535."
            )
        return PortQuery(item, proto or "TCP")
    return PortQuery(item, proto)


def _bit_indexes(mask: int) -> list[int]:
    """Positions of the set bits, lowest first."""
    text = bin(mask)[:1:-1]
    out: list[int] = []
    i = text.find("1")
    while i >= 0:
        out.append(i)
        i = text.find("1", i + 1)
    return out


_LabelsKey = tuple[tuple[str, str], ...]


class _RuleMask(NamedTuple):
    """One rule, compiled: the endpoints its peers name (a bitmask) and its ``ports`` list."""

    peers: int
    ports: tuple[PortRule, ...]


class _CompiledPolicy(NamedTuple):
    """One policy, compiled: the pods it selects (a bitmask) and its rules per isolated side."""

    selected: int
    ingress: list[_RuleMask]
    egress: list[_RuleMask]


class _DestinationClass(NamedTuple):
    """Destinations alike for one port query: the traffic they receive and their declared ports."""

    number: int
    protocol: str
    ports: tuple[ContainerPort, ...]


class _BitIndex:
    """Bitmask view of a cluster: bit i stands for ``endpoints[i]``; peer sets are ints."""

    def __init__(self, eps: Sequence[Endpoint], policies: PolicySet) -> None:
        self.eps = eps
        self.ps = policies
        self.all = (1 << len(eps)) - 1
        self.ns_mask: dict[str, int] = defaultdict(int)
        # Pods of one namespace with equal labels match every selector alike: one class each.
        classes: dict[tuple[str, _LabelsKey], int] = defaultdict(int)
        self.ip_eps = [(i, ep.ip) for i, ep in enumerate(eps) if ep.ip is not None]
        for i, ep in enumerate(eps):
            if ep.subject:
                namespace = ep.namespace or ""
                self.ns_mask[namespace] |= 1 << i
                classes[(namespace, ep.labels_key)] |= 1 << i
        self.classes_by_ns: dict[str, list[tuple[_LabelsKey, int]]] = defaultdict(list)
        for (ns, key), mask in sorted(classes.items()):
            self.classes_by_ns[ns].append((key, mask))
        self._sel_cache: dict[tuple[str, _LabelsKey], bool] = {}
        self._peer_cache: dict[tuple[str, str], int] = {}
        self.iso = {INGRESS: 0, EGRESS: 0}  # the pods some policy isolates, per side
        self.compiled = [self._compile(policy) for policy in policies.policies]
        self._index_cache: dict[int, list[int]] = {}

    def _compile(self, policy: Policy) -> _CompiledPolicy:
        """The policy's selected pods and rules as bitmasks; marks the pods it isolates."""
        selected = self._pods_matching(policy.pod_selector, [policy.namespace])
        rules: dict[str, list[_RuleMask]] = {INGRESS: [], EGRESS: []}
        for direction in (INGRESS, EGRESS):
            if policy.affects(direction):
                self.iso[direction] |= selected
                rules[direction] = [
                    _RuleMask(self.rule_peers(r, policy.namespace), r.ports)
                    for r in policy.rules(direction)
                ]
        return _CompiledPolicy(selected, rules[INGRESS], rules[EGRESS])

    def _pods_matching(self, selector: Mapping[str, Any] | None, namespaces: Iterable[str]) -> int:
        """Subject pods of ``namespaces`` whose labels satisfy ``selector`` (None or {} = all)."""
        everything = selector is None or not (
            selector.get("matchLabels") or selector.get("matchExpressions")
        )
        selector_key = "" if everything else json.dumps(selector, sort_keys=True)
        mask = 0
        for ns in namespaces:
            if everything:
                mask |= self.ns_mask.get(ns, 0)
                continue
            for key, class_mask in self.classes_by_ns.get(ns, ()):
                cache_key = (selector_key, key)
                hit = self._sel_cache.get(cache_key)
                if hit is None:
                    hit = self._sel_cache[cache_key] = selector_matches(selector, dict(key))
                if hit:
                    mask |= class_mask
        return mask

    def peer_mask(self, peer: Peer, policy_namespace: str) -> int:
        """The endpoints one ``from``/``to`` entry names, as a bitmask."""
        key = (
            json.dumps(
                [peer.pod_selector, peer.namespace_selector, str(peer.ip_block)], sort_keys=True
            ),
            policy_namespace,
        )
        hit = self._peer_cache.get(key)
        if hit is not None:
            return hit
        if peer.ip_block is not None:
            mask = 0
            for i, ip in self.ip_eps:
                if peer.ip_block.contains(ip):
                    mask |= 1 << i
        else:
            if peer.namespace_selector is None:
                namespaces = [policy_namespace]
            else:
                namespaces = [
                    ns
                    for ns in self.ns_mask
                    if selector_matches(peer.namespace_selector, self.ps.labels_of_namespace(ns))
                ]
            mask = self._pods_matching(peer.pod_selector, namespaces)
        self._peer_cache[key] = mask
        return mask

    def rule_peers(self, rule: Rule, policy_namespace: str) -> int:
        """The endpoints a rule's ``from``/``to`` list names (every endpoint when empty)."""
        if not rule.peers:
            return self.all
        mask = 0
        for peer in rule.peers:
            mask |= self.peer_mask(peer, policy_namespace)
        return mask

    def indexes(self, mask: int) -> list[int]:
        """The set bits of ``mask`` (cached: the same source sets recur across port queries)."""
        hit = self._index_cache.get(mask)
        if hit is None:
            hit = self._index_cache[mask] = _bit_indexes(mask)
        return hit

    def rows(self, query: PortQuery) -> tuple[list[int], int]:
        """Per source row, the bitmask of destinations it may reach; and the mask of columns
        where the queried port exists."""
        n = len(self.eps)
        groups: dict[_DestinationClass, int] = defaultdict(int)
        reps: dict[_DestinationClass, Endpoint] = {}
        defined = 0
        for i, ep in enumerate(self.eps):
            traffic = query.resolve(ep)
            if traffic is None:
                continue
            defined |= 1 << i
            key = _DestinationClass(*traffic, ep.ports)
            groups[key] |= 1 << i
            reps.setdefault(key, ep)
        port_masks: dict[tuple[PortRule, ...], int] = {}

        def port_mask(ports: tuple[PortRule, ...]) -> int:
            if not ports:
                return defined
            hit = port_masks.get(ports)
            if hit is None:
                hit = 0
                for key, mask in groups.items():
                    if ports_match(ports, key.number, key.protocol, reps[key]):
                        hit |= mask
                port_masks[ports] = hit
            return hit

        # Ingress: for each distinct source set, the destinations whose rules admit it.
        by_sources: dict[int, int] = defaultdict(int)
        egress_by_subjects: dict[int, int] = defaultdict(int)
        for compiled in self.compiled:
            selected = compiled.selected
            if not selected:
                continue
            for rule in compiled.ingress:
                targets = selected & port_mask(rule.ports)
                if targets and rule.peers:
                    by_sources[rule.peers] |= targets
            for rule in compiled.egress:
                reach = rule.peers & port_mask(rule.ports)
                if reach:
                    egress_by_subjects[selected] |= reach
        base_in = self.all & ~self.iso[INGRESS]
        if self.all in by_sources:
            base_in |= by_sources.pop(self.all)
        ingress_ok = [base_in] * n
        for sources, targets in by_sources.items():
            for s in self.indexes(sources):
                ingress_ok[s] |= targets
        iso_out = self.iso[EGRESS]
        egress_ok = [0 if (iso_out >> s) & 1 else self.all for s in range(n)]
        for subjects, reach in egress_by_subjects.items():
            for s in self.indexes(subjects):
                egress_ok[s] |= reach
        rows = []
        for s in range(n):
            row = egress_ok[s] & ingress_ok[s] & defined
            if self.eps[s].is_pod:
                row |= (1 << s) & defined
            rows.append(row)
        return rows, defined


@dataclass(frozen=True)
class TruthTable:
    """Reachability of every ordered pair of endpoints for each port; rows = from, columns = to."""

    labels: tuple[str, ...]
    ports: tuple[str, ...]
    rows: Mapping[str, tuple[int, ...]] = field(repr=False)
    defined: Mapping[str, int] = field(repr=False)

    def allowed(self, src: str, dst: str, port: PortLike) -> bool | None:
        """True/False for one cell; None when a named port is not declared by ``dst``."""
        label = port if isinstance(port, str) and port in self.rows else port_query(port).label
        if label not in self.rows:
            raise PolicyError(
                f"The truth table has no port {label!r}.", f"Use one of: {', '.join(self.ports)}."
            )
        try:
            i, j = self._position[src], self._position[dst]
        except KeyError as missing:
            raise PolicyError(
                f"The truth table has no endpoint {missing.args[0]!r}.",
                "Name pods as ns/name (or the address of an outside peer).",
            ) from None
        if not (self.defined[label] >> j) & 1:
            return None
        return bool((self.rows[label][i] >> j) & 1)

    @cached_property
    def _position(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @cached_property
    def cells(self) -> dict[tuple[str, str, str], bool | None]:
        """Every cell as ``{(from, to, port): allowed}``; None where a named port is undeclared."""
        out: dict[tuple[str, str, str], bool | None] = {}
        for port in self.ports:
            defined = _bit_indexes(self.defined[port])
            for i, src in enumerate(self.labels):
                row = self.rows[port][i]
                for dst in self.labels:
                    out[(src, dst, port)] = None
                for j in defined:
                    out[(src, self.labels[j], port)] = bool((row >> j) & 1)
        return out

    def blocked(self, port: str) -> list[tuple[str, str]]:
        """The (from, to) pairs blocked on ``port``, in table order."""
        n = len(self.labels)
        defined = self.defined[port]
        return [
            (self.labels[i], self.labels[j])
            for i in range(n)
            for j in _bit_indexes(defined & ~self.rows[port][i])
        ]

    def render(self, port: str | None = None) -> str:
        """Cyclonus-style text: one bordered table per port; ``.`` allowed, ``X`` blocked, ``-``
        where the destination does not declare the (named) port."""
        chosen = self.ports if port is None else (port,)
        return "\n\n".join(self._render_one(p) for p in chosen)

    def __str__(self) -> str:
        return self.render()

    def _render_one(self, port: str) -> str:
        n = len(self.labels)
        width = max([len(port), *(len(label) for label in self.labels), 1])
        head_w = width
        rule = "+" + "-" * (head_w + 2) + ("+" + "-" * (width + 2)) * n + "+"
        header = (
            "| "
            + port.ljust(head_w)
            + " | "
            + " | ".join(label.ljust(width) for label in self.labels)
            + " |"
        )
        sep = " " * (width - 1) + " | "
        defined = self.defined[port]
        full = defined == self.all_mask
        lines = [
            f"{port}: rows = from, columns = to; . allowed, X blocked"
            + ("" if full else ", - port not declared by the destination"),
            rule,
            header,
            rule,
        ]
        table = str.maketrans("10", ".X")
        for i, label in enumerate(self.labels):
            bits = format(self.rows[port][i], f"0{n}b")[::-1] if n else ""
            if not full:
                dbits = format(defined, f"0{n}b")[::-1]
                bits = "".join(b if d == "1" else "-" for b, d in zip(bits, dbits, strict=True))
            cells = sep.join(bits.translate(table)) + " " * (width - 1)
            lines.append("| " + label.ljust(head_w) + " | " + cells + " |")
        lines.append(rule)
        return "\n".join(lines)

    @property
    def all_mask(self) -> int:
        """Every column's bit set."""
        return (1 << len(self.labels)) - 1


def truth_table(
    pods: Iterable[Mapping[str, Any] | Endpoint],
    ports: Iterable[PortLike],
    *,
    namespaces: Iterable[Mapping[str, Any] | str],
    policies: Iterable[Mapping[str, Any]],
) -> TruthTable:
    """Expected reachability between every ordered pair of ``pods`` on each of ``ports``.

    Uses bitmasks per policy and rule rather than one ``verdict`` per cell; the two always
    agree (tests check it). ``ports`` items: ``80``, ``(80, "UDP")``, ``"80/UDP"``, or a
    containerPort name such as ``"serve-80-tcp"`` resolved per destination pod.
    """
    ps = PolicySet(namespaces, policies)
    eps = sorted((endpoint(p) for p in pods), key=lambda e: e.sort_key)
    labels = tuple(ep.label for ep in eps)
    if len(set(labels)) != len(labels):
        dup = next(label for label in labels if labels.count(label) > 1)
        raise PolicyError(
            f"{dup} appears twice in the pods of the truth table.", "Pass each pod once."
        )
    queries: dict[str, PortQuery] = {}
    for item in ports:
        q = port_query(item)
        queries.setdefault(q.label, q)
    if not queries:
        raise PolicyError(
            "The truth table was asked for no ports.", "Pass at least one port, e.g. [80]."
        )
    index = _BitIndex(eps, ps)
    rows: dict[str, tuple[int, ...]] = {}
    defined: dict[str, int] = {}
    for label, q in queries.items():
        r, d = index.rows(q)
        rows[label], defined[label] = tuple(r), d
    return TruthTable(labels, tuple(queries), rows, defined)
