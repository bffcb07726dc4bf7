"""NetworkPolicy objects, checked and defaulted as the API server does: the parsed policy types
(Policy, Rule, Peer, PortRule, IPBlock), the vocabulary every room shares (directions,
protocols, PolicyError) and :func:`parse_policy`."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PROTOCOLS = ("TCP", "UDP", "SCTP")
INGRESS, EGRESS = "ingress", "egress"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")


class PolicyError(ValueError):
    """Bad input to the policy model: one sentence of what is wrong, one of what to do.

    It has the shape of ``labkit.errors.LabError`` (``what``, ``fix``, ``render()``), which the
    model may not import (it stays free of the rest of labkit); callers above it re-raise it as
    a LabError.
    """

    def __init__(self, what: str, fix: str) -> None:
        self.what, self.fix = what.strip(), fix.strip()
        super().__init__(self.render())

    def render(self) -> str:
        """The message as LabError renders it: what is wrong, then ``Fix:`` and what to do."""
        return f"{self.what}\nFix: {self.fix}"


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_protocol(value: Any, where: str) -> str:
    """A Kubernetes protocol (TCP when absent); PolicyError naming ``where`` for anything else."""
    proto = "TCP" if value is None else str(value)
    if proto not in PROTOCOLS:
        hint = f" (write {proto.upper()} in capitals)" if proto.upper() in PROTOCOLS else ""
        raise PolicyError(
            f"Protocol {proto!r} in {where} is not one Kubernetes accepts{hint}.",
            "Use TCP, UDP or SCTP.",
        )
    return proto


# --------------------------------------------------------------------------- parsed policies


@dataclass(frozen=True)
class IPBlock:
    """An ``ipBlock`` peer: a CIDR minus its ``except`` CIDRs."""

    cidr: IPNetwork
    excepts: tuple[IPNetwork, ...] = ()

    def contains(self, ip: IPAddress | None) -> bool:
        """Whether ``ip`` is inside the CIDR and outside every except."""
        if ip is None or ip.version != self.cidr.version:
            return False
        if not _in_network(ip, self.cidr):
            return False
        return not any(_in_network(ip, net) for net in self.excepts)

    def __str__(self) -> str:
        text = str(self.cidr)
        return text + (f" except {', '.join(map(str, self.excepts))}" if self.excepts else "")


def _in_network(ip: IPAddress, net: IPNetwork) -> bool:
    return ip.version == net.version and (int(ip) & int(net.netmask)) == int(net.network_address)


@dataclass(frozen=True)
class Peer:
    """One entry of ``from``/``to``. Selectors are LabelSelector dicts; None means "not given"."""

    pod_selector: Mapping[str, Any] | None = field(default=None, hash=False)
    namespace_selector: Mapping[str, Any] | None = field(default=None, hash=False)
    ip_block: IPBlock | None = None

    def describe(self) -> str:
        """The peer in words, e.g. ``namespaceSelector {env=prod} and podSelector {app=web}``."""
        if self.ip_block is not None:
            return f"ipBlock {self.ip_block}"
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaceSelector {_selector_text(self.namespace_selector)}")
        if self.pod_selector is not None:
            parts.append(f"podSelector {_selector_text(self.pod_selector)}")
        return " and ".join(parts)


@dataclass(frozen=True)
class PortRule:
    """One entry of ``ports``: a protocol, and a number (with optional endPort), a name, or None
    (every port of that protocol)."""

    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None

    @property
    def named(self) -> bool:
        """Whether the port is a containerPort name (resolved at each destination pod)."""
        return isinstance(self.port, str)

    def __str__(self) -> str:
        if self.port is None:
            return f"all/{self.protocol}"
        if self.end_port is not None:
            return f"{self.port}-{self.end_port}/{self.protocol}"
        return f"{self.port}/{self.protocol}"


@dataclass(frozen=True)
class Rule:
    """One ingress or egress rule. Empty ``peers`` means every peer; empty ``ports`` every port."""

    direction: str
    index: int
    peers: tuple[Peer, ...] = ()
    ports: tuple[PortRule, ...] = ()


CNP_PREFIX = "cnp:"
"""The name prefix of the NetworkPolicy documents a CiliumNetworkPolicy translates to (a
NetworkPolicy's own name, a DNS label, cannot hold the colon)."""


@dataclass(frozen=True)
class Policy:
    """A NetworkPolicy with defaults applied and every field checked."""

    namespace: str
    name: str
    pod_selector: Mapping[str, Any] = field(hash=False)
    policy_types: tuple[str, ...]
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()

    @property
    def ref(self) -> str:
        """``ns/name``, unique in a policy set."""
        return f"{self.namespace}/{self.name}"

    @property
    def label(self) -> str:
        """How verdicts name the policy as a learner wrote it: ``ns/name``, or for a part of a
        CiliumNetworkPolicy (translated as ``cnp:<name>#<n>``) ``CiliumNetworkPolicy ns/name``."""
        if self.name.startswith(CNP_PREFIX):
            name = self.name.removeprefix(CNP_PREFIX).split("#", 1)[0]
            return f"CiliumNetworkPolicy {self.namespace}/{name}"
        return self.ref

    def affects(self, direction: str) -> bool:
        """Whether this policy isolates the pods it selects in ``direction`` (ingress/egress)."""
        return direction.capitalize() in self.policy_types

    def rules(self, direction: str) -> tuple[Rule, ...]:
        """The ingress or egress rules, by ``direction``."""
        return self.ingress if direction == INGRESS else self.egress


@dataclass(frozen=True)
class RuleRef:
    """Names one rule of one policy, e.g. ``prod/allow-web ingress[0]``."""

    policy: str
    direction: str
    index: int

    def __str__(self) -> str:
        return f"{self.policy} {self.direction}[{self.index}]"


def parse_policy(doc: Mapping[str, Any]) -> Policy:
    """Check one NetworkPolicy dict and apply the API server's defaults (PolicyError if invalid)."""
    if not isinstance(doc, Mapping):
        raise PolicyError(
            f"Expected a NetworkPolicy dict, got {type(doc).__name__}.",
            "Pass policies as dicts (lab.get('networkpolicies') or manifests.load(...)).",
        )
    if doc.get("kind") not in (None, "NetworkPolicy"):
        raise PolicyError(
            f"Expected kind NetworkPolicy, got {doc.get('kind')!r}.",
            "Pass only NetworkPolicy objects as policies.",
        )
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise PolicyError(
            "A NetworkPolicy has no metadata.name.", "Give every NetworkPolicy a name."
        )
    namespace = meta.get("namespace") or "default"
    ref = f"{namespace}/{name}"
    spec = doc.get("spec") or {}
    pod_selector = spec.get("podSelector") or {}
    _check_selector(pod_selector, f"{ref} spec.podSelector")
    types = spec.get("policyTypes") or []
    for t in types:
        if t not in ("Ingress", "Egress"):
            raise PolicyError(
                f"{ref} lists policyType {t!r}.", "policyTypes may hold only Ingress and Egress."
            )
    if not types:
        types = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    ingress = tuple(
        _parse_rule(r, INGRESS, i, ref) for i, r in enumerate(spec.get("ingress") or [])
    )
    egress = tuple(_parse_rule(r, EGRESS, i, ref) for i, r in enumerate(spec.get("egress") or []))
    ordered = tuple(t for t in ("Ingress", "Egress") if t in types)
    return Policy(namespace, name, pod_selector, ordered, ingress, egress)


def parse_policies(docs: Iterable[Mapping[str, Any] | Policy]) -> tuple[Policy, ...]:
    """Parse every policy first (nothing is used unless all are valid), sorted by ``ns/name``."""
    parsed: dict[str, Policy] = {}
    for doc in docs or ():
        policy = doc if isinstance(doc, Policy) else parse_policy(doc)
        if policy.ref in parsed:
            raise PolicyError(
                f"NetworkPolicy {policy.ref} appears twice.",
                "Give each policy in a namespace its own name.",
            )
        parsed[policy.ref] = policy
    return tuple(parsed[k] for k in sorted(parsed))


def _parse_rule(raw: Any, direction: str, index: int, ref: str) -> Rule:
    where = f"{ref} {direction}[{index}]"
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise PolicyError(
            f"{where} is not a mapping.", "Write each rule as a mapping with from/to and ports."
        )
    key = "from" if direction == INGRESS else "to"
    wrong = "to" if direction == INGRESS else "from"
    if wrong in raw and key not in raw:
        other = EGRESS if direction == INGRESS else INGRESS
        raise PolicyError(
            f"{where} uses '{wrong}', which belongs to {other} rules.",
            f"Write '{key}:' in {direction} rules.",
        )
    peers = tuple(_parse_peer(p, f"{where}.{key}[{i}]") for i, p in enumerate(raw.get(key) or []))
    ports = tuple(
        _parse_port(p, f"{where}.ports[{i}]") for i, p in enumerate(raw.get("ports") or [])
    )
    return Rule(direction, index, peers, ports)


def _parse_peer(raw: Any, where: str) -> Peer:
    if not isinstance(raw, Mapping):
        raise PolicyError(
            f"{where} is not a mapping.",
            "Write a peer as podSelector, namespaceSelector or ipBlock.",
        )
    pod_sel, ns_sel, block = (
        raw.get("podSelector"),
        raw.get("namespaceSelector"),
        raw.get("ipBlock"),
    )
    given = [x for x in (pod_sel, ns_sel, block) if x is not None]
    if not given:
        raise PolicyError(
            f"{where} names no peer (the API server rejects an empty peer).",
            "Give it a podSelector, namespaceSelector or ipBlock; "
            "to allow every peer, leave out the whole from/to list.",
        )
    if block is not None and len(given) > 1:
        raise PolicyError(
            f"{where} combines ipBlock with a selector, which the API server rejects.",
            "Put the ipBlock in its own list entry (separate entries are OR-ed).",
        )
    if pod_sel is not None:
        _check_selector(pod_sel, f"{where}.podSelector")
    if ns_sel is not None:
        _check_selector(ns_sel, f"{where}.namespaceSelector")
    return Peer(pod_sel, ns_sel, _parse_ip_block(block, where) if block is not None else None)


def _parse_ip_block(raw: Any, where: str) -> IPBlock:
    if not isinstance(raw, Mapping) or not raw.get("cidr"):
        raise PolicyError(
            f"{where}.ipBlock has no cidr.", "Write ipBlock: {cidr: 10.0.0.0/8, except: [...]}."
        )
    cidr = _parse_cidr(raw["cidr"], f"{where}.ipBlock.cidr")
    excepts = []
    for i, text in enumerate(raw.get("except") or []):
        net = _parse_cidr(text, f"{where}.ipBlock.except[{i}]")
        if (
            net.version != cidr.version
            or net.prefixlen <= cidr.prefixlen
            or not _in_network(net.network_address, cidr)
        ):
            raise PolicyError(
                f"{where}.ipBlock.except[{i}] {text} is not strictly inside {cidr}.",
                "Each except must be a smaller range within the cidr.",
            )
        excepts.append(net)
    return IPBlock(cidr, tuple(excepts))


def _parse_cidr(text: Any, where: str) -> IPNetwork:
    if "/" not in str(text):
        raise PolicyError(
            f"{where} {text!r} has no prefix length.",
            "Write a CIDR such as 10.0.0.0/8 or 203.0.113.9/32.",
        )
    try:
        return ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        raise PolicyError(
            f"{where} {text!r} is not a CIDR.", "Write a CIDR such as 10.0.0.0/8."
        ) from None


def _parse_port(raw: Any, where: str) -> PortRule:
    if not isinstance(raw, Mapping):
        raise PolicyError(
            f"{where} is not a mapping.", "Write a port as {protocol: TCP, port: 80}."
        )
    proto = parse_protocol(raw.get("protocol"), where)
    port, end = raw.get("port"), raw.get("endPort")
    if isinstance(port, bool) or isinstance(end, bool):
        raise PolicyError(
            f"{where} has a true/false port.", "Write the port as a number or a name."
        )
    if isinstance(port, str):
        if port.isdigit():
            raise PolicyError(
                f"{where} port {port!r} is a quoted number, which Kubernetes reads as a port name.",
                f"Write port: {port} without quotes.",
            )
        if not _PORT_NAME.match(port) or "--" in port or not re.search("[a-z]", port):
            raise PolicyError(
                f"{where} port name {port!r} is not a valid port name.",
                "Port names have at most 15 lowercase letters, digits and single hyphens, "
                "with at least one letter.",
            )
        if end is not None:
            raise PolicyError(
                f"{where} sets endPort with the named port {port!r}.",
                "endPort needs a numeric port; use two numbers for a range.",
            )
        return PortRule(proto, port)
    if port is None:
        if end is not None:
            raise PolicyError(
                f"{where} sets endPort without port.", "Set port to the first port of the range."
            )
        return PortRule(proto)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise PolicyError(
            f"{where} port {port!r} is outside 1-65535.", "Use a port number from 1 to 65535."
        )
    if end is not None and (not isinstance(end, int) or not port <= end <= 65535):
        raise PolicyError(
            f"{where} endPort {end!r} is below port {port} or above 65535.",
            "endPort must be at least port and at most 65535.",
        )
    return PortRule(proto, port, end)


def _check_selector(sel: Any, where: str) -> None:
    if not isinstance(sel, Mapping):
        raise PolicyError(
            f"{where} is not a LabelSelector.",
            "Write matchLabels and/or matchExpressions under it.",
        )
    unknown = set(sel) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise PolicyError(
            f"{where} has {', '.join(sorted(unknown))}, which a LabelSelector does not know.",
            "Put labels under matchLabels (e.g. podSelector: {matchLabels: {app: web}}).",
        )
    if not isinstance(sel.get("matchLabels") or {}, Mapping):
        raise PolicyError(
            f"{where}.matchLabels is not a mapping.", "Write matchLabels as key: value pairs."
        )
    for i, expr in enumerate(sel.get("matchExpressions") or []):
        op = expr.get("operator") if isinstance(expr, Mapping) else None
        if op not in _OPERATORS:
            raise PolicyError(
                f"{where}.matchExpressions[{i}] has operator {op!r}.",
                f"Use one of {', '.join(_OPERATORS)}.",
            )
        if not expr.get("key"):
            raise PolicyError(
                f"{where}.matchExpressions[{i}] has no key.",
                "Name the label key the expression tests.",
            )
        has_values = bool(expr.get("values"))
        if op in ("In", "NotIn") and not has_values:
            raise PolicyError(
                f"{where}.matchExpressions[{i}] uses {op} without values.",
                f"List at least one value for {op}.",
            )
        if op in ("Exists", "DoesNotExist") and has_values:
            raise PolicyError(
                f"{where}.matchExpressions[{i}] gives values to {op}.",
                f"Drop the values; {op} tests only the key.",
            )


def _selector_text(sel: Mapping[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for expr in sel.get("matchExpressions") or []:
        op, key = expr["operator"], expr["key"]
        if op in ("In", "NotIn"):
            parts.append(f"{key} {op.lower()} ({','.join(map(str, expr['values']))})")
        else:
            parts.append(key if op == "Exists" else f"!{key}")
    return "{" + ",".join(parts) + "}"
