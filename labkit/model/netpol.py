"""NetworkPolicy semantics as the Kubernetes API defines them, with the reason behind every verdict.

Two ways in:

* :func:`verdict` answers one flow (``src -> dst:port/protocol``) and explains it: which policy
  rule allowed it on each side, or which policies isolate the pod with no rule that matches.
* :func:`truth_table` answers every pair of a set of pods for a few ports at once, using
  bitmasks (one Python int per row), so 1,000 x 1,000 pairs take a fraction of a second. It
  renders like Cyclonus (rows = from, columns = to, ``.`` allowed, ``X`` blocked).

Semantics, and the choices made where Kubernetes leaves them to the network plugin:

* A pod is *isolated for ingress* when any policy in its namespace selects it and lists
  ``Ingress`` in ``policyTypes``; likewise for egress. A flow needs egress allowed at the source
  **and** ingress allowed at the destination; the allowed set of an isolated pod is the union of
  the rules of every policy that selects it (policies never deny, they only add).
* ``policyTypes`` defaults as the API server does: ``Ingress`` always, plus ``Egress`` when the
  spec has a non-empty ``egress`` list (``egress: []`` without ``policyTypes`` stays ingress-only).
* A rule with an absent or empty ``from``/``to`` matches every peer; an absent or empty ``ports``
  matches every port and protocol. So ``ingress: [{}]`` allows everything, while ``ingress: []``
  (or no ``ingress`` key) with ``Ingress`` in ``policyTypes`` denies everything.
* A peer with only ``podSelector`` means pods of the *policy's* namespace; only
  ``namespaceSelector`` means every pod of the matching namespaces (``{}`` = all namespaces); both
  in one peer means pods matching the pod selector *and* living in a matching namespace, while
  two separate peers are OR-ed. Namespaces always carry ``kubernetes.io/metadata.name``.
* ``ipBlock`` (with ``except``) matches addresses. Kubernetes says it is meant for addresses
  outside the cluster and leaves pod IPs to the plugin; like Calico we match pod IPs by CIDR too.
* Ports: a number (with optional ``endPort`` range), a name, or absent (every port of that
  protocol); protocol TCP (default), UDP or SCTP. A named port resolves against the
  *destination* pod's containerPorts, pod by pod, so it matches nothing at a destination outside
  the cluster (egress to an ``ipBlock`` address with a named port reaches no external host).
* A pod always reaches itself: its own traffic never leaves its network namespace (loopback),
  and Kubernetes documents that policies cannot block it.
* ``hostNetwork`` pods use their node's address: no policy selects them and pod/namespace
  selectors never match them as peers; ``ipBlock`` matches their address like any other.

Invalid input raises :class:`PolicyError` (``what`` and ``fix``, like ``labkit.errors.LabError``,
which this layer may not import) before anything is evaluated.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from labkit.model.objects import ContainerPort
from labkit.model.selectors import selector_matches

PROTOCOLS = ("TCP", "UDP", "SCTP")
INGRESS, EGRESS = "ingress", "egress"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_PORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")
_NUMERIC_PORT = re.compile(r"^(\d+)(?:/(TCP|UDP|SCTP))?$", re.IGNORECASE)


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
        return f"{self.what}\nFix: {self.fix}"


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# --------------------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class Endpoint:
    """Either end of a flow: a pod (namespace, name, labels, IP, ports) or an address outside."""

    ip: IPAddress | None
    namespace: str | None = None
    name: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    host_network: bool = False
    ports: tuple[ContainerPort, ...] = ()

    @property
    def is_pod(self) -> bool:
        return self.name is not None

    @property
    def subject(self) -> bool:
        """Whether policies can select this endpoint (a pod with its own network namespace)."""
        return self.is_pod and not self.host_network

    @property
    def label(self) -> str:
        """``ns/name`` for a pod, the address for anything else."""
        return f"{self.namespace}/{self.name}" if self.is_pod else str(self.ip)

    @property
    def sort_key(self) -> tuple:
        if self.is_pod:
            return (0, self.namespace, self.name)
        assert self.ip is not None
        return (1, self.ip.version, int(self.ip))

    @property
    def labels_key(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.labels.items()))

    def named_port(self, name: str, protocol: str | None = None) -> ContainerPort | None:
        """The first containerPort called ``name`` (with ``protocol`` when given), or None."""
        for port in self.ports:
            if port.name == name and (protocol is None or port.protocol == protocol):
                return port
        return None


def endpoint(obj: Mapping[str, Any] | Endpoint) -> Endpoint:
    """Normalise a Pod dict or ``{"ip": "203.0.113.9"}`` into an :class:`Endpoint`."""
    if isinstance(obj, Endpoint):
        return obj
    if not isinstance(obj, Mapping):
        raise PolicyError(
            f"Expected a Pod dict or {{'ip': ...}}, got {type(obj).__name__}.",
            "Pass pods as returned by lab.get('pods'), or {'ip': '203.0.113.9'} for an outside peer.",
        )
    if "metadata" not in obj:
        if "ip" not in obj:
            raise PolicyError(
                "An endpoint has neither metadata (a Pod) nor an 'ip' key (an outside peer).",
                "Pass a Pod dict, or {'ip': '203.0.113.9'} for an address outside the cluster.",
            )
        return Endpoint(ip=_parse_ip(obj["ip"], "the outside peer"))
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise PolicyError(
            "A Pod has no metadata.name.", "Give every pod a name (as the API server requires)."
        )
    namespace = meta.get("namespace") or "default"
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    raw_ip = status.get("podIP") or next(
        (p.get("ip") for p in status.get("podIPs") or [] if p.get("ip")), None
    )
    ports: list[ContainerPort] = []
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            if "containerPort" not in port:
                raise PolicyError(
                    f"Pod {namespace}/{name} declares a port without containerPort.",
                    "Give each entry of containers[].ports a containerPort number.",
                )
            ports.append(
                ContainerPort(
                    number=int(port["containerPort"]),
                    protocol=_protocol(port.get("protocol"), f"pod {namespace}/{name}"),
                    name=port.get("name") or None,
                )
            )
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    return Endpoint(
        ip=_parse_ip(raw_ip, f"pod {namespace}/{name}") if raw_ip else None,
        namespace=namespace,
        name=name,
        labels=labels,
        host_network=bool(spec.get("hostNetwork")),
        ports=tuple(ports),
    )


def _parse_ip(value: Any, where: str) -> IPAddress:
    try:
        return ipaddress.ip_address(str(value))
    except ValueError:
        raise PolicyError(
            f"{value!r} is not an IP address ({where}).",
            "Write an IPv4 or IPv6 address such as 203.0.113.9.",
        ) from None


def _protocol(value: Any, where: str) -> str:
    proto = "TCP" if value is None else str(value)
    if proto not in PROTOCOLS:
        hint = f" (write {proto.upper()} in capitals)" if proto.upper() in PROTOCOLS else ""
        raise PolicyError(
            f"Protocol {proto!r} in {where} is not one Kubernetes accepts{hint}.",
            "Use TCP, UDP or SCTP.",
        )
    return proto


def namespace_labels(namespaces: Iterable[Mapping[str, Any] | str]) -> dict[str, dict[str, str]]:
    """Map namespace name -> labels, adding the automatic ``kubernetes.io/metadata.name`` label."""
    result: dict[str, dict[str, str]] = {}
    for ns in namespaces or ():
        if isinstance(ns, str):
            name, labels = ns, {}
        else:
            meta = ns.get("metadata") or {}
            name = meta.get("name")
            if not name:
                raise PolicyError(
                    "A Namespace has no metadata.name.", "Give every namespace a name."
                )
            labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        labels.setdefault(NAMESPACE_NAME_LABEL, name)
        result[name] = labels
    return result


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
    """One entry of ``ports``: protocol, and a number (with optional endPort), a name, or None (all)."""

    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None

    @property
    def named(self) -> bool:
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
        return f"{self.namespace}/{self.name}"

    def affects(self, direction: str) -> bool:
        """Whether this policy isolates the pods it selects in ``direction`` (ingress/egress)."""
        return direction.capitalize() in self.policy_types

    def rules(self, direction: str) -> tuple[Rule, ...]:
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
    """Check one NetworkPolicy dict and apply the API server's defaults; LabError when invalid."""
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
        raise PolicyError(
            f"{where} uses '{wrong}', which belongs to {'egress' if direction == INGRESS else 'ingress'} rules.",
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
            "Give it a podSelector, namespaceSelector or ipBlock; to allow every peer, leave out the whole from/to list.",
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
            or not net.subnet_of(cidr)
            or net.prefixlen <= cidr.prefixlen
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
    proto = _protocol(raw.get("protocol"), where)
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
                "Port names have at most 15 lowercase letters, digits and single hyphens, with at least one letter.",
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
    if end is not None:
        if not isinstance(end, int) or not port <= end <= 65535:
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


# --------------------------------------------------------------------------- matching


def peer_matches(
    peer: Peer,
    ep: Endpoint,
    *,
    policy_namespace: str,
    namespace_labels: Mapping[str, Mapping[str, str]],
) -> bool:
    """Whether ``ep`` is one of the endpoints a ``from``/``to`` entry names."""
    if peer.ip_block is not None:
        return peer.ip_block.contains(ep.ip)
    if not ep.subject:
        return False
    if peer.namespace_selector is None:
        if ep.namespace != policy_namespace:
            return False
    else:
        ns_labels = namespace_labels.get(ep.namespace) or {NAMESPACE_NAME_LABEL: ep.namespace}
        if not selector_matches(peer.namespace_selector, ns_labels):
            return False
    return peer.pod_selector is None or selector_matches(peer.pod_selector, ep.labels)


def port_rule_matches(rule: PortRule, number: int, protocol: str, dst: Endpoint) -> bool:
    """Whether traffic to ``number/protocol`` at ``dst`` is covered by one ``ports`` entry."""
    if rule.protocol != protocol:
        return False
    if rule.port is None:
        return True
    if isinstance(rule.port, str):
        return any(
            p.name == rule.port and p.protocol == protocol and p.number == number for p in dst.ports
        )
    if rule.end_port is not None:
        return rule.port <= number <= rule.end_port
    return rule.port == number


def ports_match(ports: Sequence[PortRule], number: int, protocol: str, dst: Endpoint) -> bool:
    """A rule's ``ports`` list: empty matches everything, otherwise any entry may match."""
    return not ports or any(port_rule_matches(p, number, protocol, dst) for p in ports)


def policy_selects(policy: Policy, ep: Endpoint) -> bool:
    """Whether the policy's podSelector picks ``ep`` (same namespace, not hostNetwork)."""
    return (
        ep.subject
        and ep.namespace == policy.namespace
        and selector_matches(policy.pod_selector, ep.labels)
    )


def resolve_port(dst: Endpoint, port: int | str, protocol: str = "TCP") -> tuple[int, str]:
    """Turn a port number or a destination containerPort name into ``(number, protocol)``."""
    protocol = _protocol(protocol, "the probe")
    if isinstance(port, int) and not isinstance(port, bool):
        if not 1 <= port <= 65535:
            raise PolicyError(
                f"Port {port} is outside 1-65535.", "Use a port number from 1 to 65535."
            )
        return port, protocol
    name = str(port)
    if name.isdigit():
        return resolve_port(dst, int(name), protocol)
    found = dst.named_port(name, protocol)
    if found is None:
        have = ", ".join(f"{p.name}={p.number}/{p.protocol}" for p in dst.ports if p.name) or "none"
        raise PolicyError(
            f"{dst.label} declares no {protocol} containerPort named {name!r} (named ports: {have}).",
            "Use a port number, or a name from the destination pod's containerPorts.",
        )
    return found.number, protocol


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class SideVerdict:
    """One side of a flow: egress at the source pod, or ingress at the destination pod."""

    direction: str
    subject: str
    applies: bool
    isolated_by: tuple[str, ...] = ()
    allowed_by: tuple[RuleRef, ...] = ()

    @property
    def isolated(self) -> bool:
        return bool(self.isolated_by)

    @property
    def allowed(self) -> bool:
        return not self.isolated or bool(self.allowed_by)


@dataclass(frozen=True)
class Verdict:
    """Whether a flow is allowed, in words, and which side (``egress``/``ingress``) decided.

    ``side`` is, for a blocked flow, the side(s) that blocked it (``egress``, ``ingress`` or
    ``both``); for an allowed flow, the isolated side(s) whose rules let it through, or ``none``
    when neither end is isolated.
    """

    allowed: bool
    reason: str
    side: str
    egress: SideVerdict
    ingress: SideVerdict

    def __bool__(self) -> bool:
        return self.allowed


class PolicySet:
    """Parsed policies and namespace labels, ready to answer many questions about one cluster."""

    def __init__(
        self,
        namespaces: Iterable[Mapping[str, Any] | str],
        policies: Iterable[Mapping[str, Any] | Policy],
    ):
        self.namespace_labels = namespace_labels(namespaces)
        self.policies = parse_policies(policies)
        by_ns: dict[str, list[Policy]] = defaultdict(list)
        for policy in self.policies:
            by_ns[policy.namespace].append(policy)
        self._by_namespace = dict(by_ns)

    def labels_of_namespace(self, name: str) -> Mapping[str, str]:
        return self.namespace_labels.get(name) or {NAMESPACE_NAME_LABEL: name}

    def selecting(self, ep: Endpoint, direction: str) -> tuple[Policy, ...]:
        """Policies that select ``ep`` and isolate it in ``direction`` (ingress/egress)."""
        if not ep.subject:
            return ()
        return tuple(
            p
            for p in self._by_namespace.get(ep.namespace, ())
            if p.affects(direction) and policy_selects(p, ep)
        )

    def peer_matches(self, peer: Peer, ep: Endpoint, policy_namespace: str) -> bool:
        return peer_matches(
            peer, ep, policy_namespace=policy_namespace, namespace_labels=self.namespace_labels
        )

    def rule_allows(
        self, policy: Policy, rule: Rule, peer: Endpoint, number: int, protocol: str, dst: Endpoint
    ) -> bool:
        """Whether one rule covers ``peer`` (the other end) and the port at ``dst``."""
        if not ports_match(rule.ports, number, protocol, dst):
            return False
        return not rule.peers or any(
            self.peer_matches(p, peer, policy.namespace) for p in rule.peers
        )

    def side(
        self,
        direction: str,
        subject: Endpoint,
        peer: Endpoint,
        number: int,
        protocol: str,
        dst: Endpoint,
    ) -> SideVerdict:
        """Evaluate one side: every selecting policy's rules, collected with their indexes."""
        if not subject.subject:
            return SideVerdict(direction, subject.label, applies=False)
        isolating = self.selecting(subject, direction)
        allowed = tuple(
            RuleRef(p.ref, direction, r.index)
            for p in isolating
            for r in p.rules(direction)
            if self.rule_allows(p, r, peer, number, protocol, dst)
        )
        return SideVerdict(direction, subject.label, True, tuple(p.ref for p in isolating), allowed)

    def verdict(
        self,
        src: Mapping[str, Any] | Endpoint,
        dst: Mapping[str, Any] | Endpoint,
        port: int | str,
        protocol: str = "TCP",
    ) -> Verdict:
        """Whether ``src`` may open a connection to ``dst`` on ``port``, and why."""
        s, d = endpoint(src), endpoint(dst)
        if not d.is_pod and isinstance(port, str) and not port.isdigit():
            raise PolicyError(
                f"The named port {port!r} cannot be resolved at {d.label}, which is not a pod.",
                "Use a port number for destinations outside the cluster.",
            )
        number, protocol = resolve_port(d, port, protocol)
        what = f"{s.label} -> {d.label}:{number}/{protocol}"
        if s.is_pod and d.is_pod and (s.namespace, s.name) == (d.namespace, d.name):
            none_e, none_i = (
                SideVerdict(EGRESS, s.label, False),
                SideVerdict(INGRESS, d.label, False),
            )
            return Verdict(
                True,
                f"allowed: {what} is a pod reaching itself, which stays on its loopback "
                "and no NetworkPolicy can block",
                "none",
                none_e,
                none_i,
            )
        egress = self.side(EGRESS, s, d, number, protocol, d)
        ingress = self.side(INGRESS, d, s, number, protocol, d)
        return _explain(what, egress, ingress)


def _explain(what: str, egress: SideVerdict, ingress: SideVerdict) -> Verdict:
    blocked = [sv for sv in (egress, ingress) if not sv.allowed]
    if blocked:
        side = "both" if len(blocked) == 2 else blocked[0].direction
        reasons = []
        for sv in blocked:
            plural = "policy" if len(sv.isolated_by) == 1 else "policies"
            reasons.append(
                f"{sv.subject} is isolated for {sv.direction} by {plural} {', '.join(sv.isolated_by)} "
                f"and no {sv.direction} rule of {'it' if len(sv.isolated_by) == 1 else 'them'} matches"
            )
        label = "egress and ingress" if side == "both" else side
        return Verdict(
            False, f"blocked on {label}: {what}: " + "; ".join(reasons), side, egress, ingress
        )
    isolated = [sv for sv in (egress, ingress) if sv.isolated]
    if not isolated:
        parts = []
        if egress.applies:
            parts.append(f"no policy isolates {egress.subject} for egress")
        if ingress.applies:
            parts.append(f"no policy isolates {ingress.subject} for ingress")
        if not parts:
            parts.append("neither end is a pod that NetworkPolicy can select")
        return Verdict(True, f"allowed: {what}: " + "; ".join(parts), "none", egress, ingress)
    parts = []
    for sv in (egress, ingress):
        if sv.isolated:
            parts.append(f"{sv.direction} allowed by {', '.join(map(str, sv.allowed_by))}")
        elif sv.applies:
            parts.append(f"{sv.subject} not isolated for {sv.direction}")
    side = "both" if len(isolated) == 2 else isolated[0].direction
    return Verdict(True, f"allowed: {what}: " + "; ".join(parts), side, egress, ingress)


def verdict(
    src: Mapping[str, Any],
    dst: Mapping[str, Any],
    port: int | str,
    protocol: str = "TCP",
    *,
    namespaces: Iterable[Mapping[str, Any] | str],
    policies: Iterable[Mapping[str, Any]],
) -> Verdict:
    """Whether ``src`` may connect to ``dst:port/protocol`` under ``policies``, with the reason.

    ``port`` may be a containerPort name of ``dst`` (resolved for ``protocol``). For many
    questions about the same cluster, build one :class:`PolicySet` and call its ``verdict``.
    """
    return PolicySet(namespaces, policies).verdict(src, dst, port, protocol)


# --------------------------------------------------------------------------- truth tables


@dataclass(frozen=True)
class PortQuery:
    """A column group of a truth table: a port number, or a containerPort name, with a protocol."""

    port: int | str
    protocol: str | None

    @property
    def label(self) -> str:
        if isinstance(self.port, int):
            return f"{self.port}/{self.protocol}"
        return self.port if self.protocol is None else f"{self.port}/{self.protocol}"

    def resolve(self, dst: Endpoint) -> tuple[int, str] | None:
        """``(number, protocol)`` at ``dst``; None when a named port is not declared there."""
        if isinstance(self.port, int):
            return self.port, self.protocol or "TCP"
        found = dst.named_port(self.port, self.protocol)
        return (found.number, found.protocol) if found else None


def port_query(item: int | str | tuple | PortQuery) -> PortQuery:
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
        proto = _protocol(proto, f"port {item!r}")
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
    out, i = [], text.find("1")
    while i >= 0:
        out.append(i)
        i = text.find("1", i + 1)
    return out


class _BitIndex:
    """Bitmask view of a cluster: bit i stands for ``endpoints[i]``; peer sets are ints."""

    def __init__(self, eps: Sequence[Endpoint], policies: PolicySet):
        self.eps = eps
        self.ps = policies
        self.all = (1 << len(eps)) - 1
        self.ns_mask: dict[str, int] = defaultdict(int)
        classes: dict[tuple, int] = defaultdict(int)
        self.ip_eps = [(i, ep.ip) for i, ep in enumerate(eps) if ep.ip is not None]
        for i, ep in enumerate(eps):
            if ep.subject:
                self.ns_mask[ep.namespace] |= 1 << i
                classes[(ep.namespace, ep.labels_key)] |= 1 << i
        self.classes_by_ns: dict[str, list[tuple[tuple, int]]] = defaultdict(list)
        for (ns, key), mask in sorted(classes.items()):
            self.classes_by_ns[ns].append((key, mask))
        self._sel_cache: dict[tuple[str, tuple], bool] = {}
        self._peer_cache: dict[tuple[str, str], int] = {}
        self.compiled: list[
            tuple[
                Policy,
                int,
                list[tuple[int, tuple[PortRule, ...]]],
                list[tuple[int, tuple[PortRule, ...]]],
            ]
        ] = []
        self.iso = {INGRESS: 0, EGRESS: 0}
        for policy in policies.policies:
            selected = self._pods_matching(policy.pod_selector, [policy.namespace])
            rules = {
                d: [(self.rule_peers(r, policy.namespace), r.ports) for r in policy.rules(d)]
                for d in (INGRESS, EGRESS)
            }
            for d in (INGRESS, EGRESS):
                if policy.affects(d):
                    self.iso[d] |= selected
            self.compiled.append(
                (
                    policy,
                    selected,
                    rules[INGRESS] if policy.affects(INGRESS) else [],
                    rules[EGRESS] if policy.affects(EGRESS) else [],
                )
            )
        self._index_cache: dict[int, list[int]] = {}

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
        if not rule.peers:
            return self.all
        mask = 0
        for peer in rule.peers:
            mask |= self.peer_mask(peer, policy_namespace)
        return mask

    def indexes(self, mask: int) -> list[int]:
        hit = self._index_cache.get(mask)
        if hit is None:
            hit = self._index_cache[mask] = _bit_indexes(mask)
        return hit

    def rows(self, query: PortQuery) -> tuple[list[int], int]:
        """Per source row, the bitmask of destinations it may reach; and the defined-columns mask."""
        n = len(self.eps)
        groups: dict[tuple, int] = defaultdict(int)
        reps: dict[tuple, Endpoint] = {}
        defined = 0
        for i, ep in enumerate(self.eps):
            traffic = query.resolve(ep)
            if traffic is None:
                continue
            defined |= 1 << i
            key = (traffic, ep.ports)
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
                    (number, proto), _ = key
                    if ports_match(ports, number, proto, reps[key]):
                        hit |= mask
                port_masks[ports] = hit
            return hit

        # Ingress: for each distinct source set, the destinations whose rules admit it.
        by_sources: dict[int, int] = defaultdict(int)
        egress_by_subjects: dict[int, int] = defaultdict(int)
        for _policy, selected, ingress, egress in self.compiled:
            if not selected:
                continue
            for sources, ports in ingress:
                targets = selected & port_mask(ports)
                if targets and sources:
                    by_sources[sources] |= targets
            for dests, ports in egress:
                reach = dests & port_mask(ports)
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

    def allowed(self, src: str, dst: str, port: str | int | tuple) -> bool | None:
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
        """Every cell as ``{(from, to, port): allowed}``; None where the named port is undeclared."""
        out: dict[tuple[str, str, str], bool | None] = {}
        for port in self.ports:
            defined = _bit_indexes(self.defined[port])
            for i, src in enumerate(self.labels):
                row = self.rows[port][i]
                for j, dst in enumerate(self.labels):
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
        """Cyclonus-style text: one bordered table per port, ``.`` allowed, ``X`` blocked, ``-`` no such port."""
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
                bits = "".join(b if d == "1" else "-" for b, d in zip(bits, dbits))
            cells = sep.join(bits.translate(table)) + " " * (width - 1)
            lines.append("| " + label.ljust(head_w) + " | " + cells + " |")
        lines.append(rule)
        return "\n".join(lines)

    @property
    def all_mask(self) -> int:
        return (1 << len(self.labels)) - 1


def truth_table(
    pods: Iterable[Mapping[str, Any] | Endpoint],
    ports: Iterable[int | str | tuple],
    *,
    namespaces: Iterable[Mapping[str, Any] | str],
    policies: Iterable[Mapping[str, Any]],
) -> TruthTable:
    """Expected reachability between every ordered pair of ``pods`` on each of ``ports``.

    Uses bitmasks per policy and rule rather than one :func:`verdict` per cell; the two always
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
