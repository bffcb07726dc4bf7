"""Matching and verdicts: whether one flow ``src -> dst:port/protocol`` is allowed, which side
decided, and the policy rules (or isolating policies) behind the answer, in words."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.model.netpol.endpoints import Endpoint, endpoint, namespace_labels
from labkit.model.netpol.policies import (
    EGRESS,
    INGRESS,
    NAMESPACE_NAME_LABEL,
    Peer,
    Policy,
    PolicyError,
    PortRule,
    Rule,
    RuleRef,
    parse_policies,
    parse_protocol,
)
from labkit.model.selectors import selector_matches

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
    namespace = ep.namespace or ""
    if peer.namespace_selector is None:
        if namespace != policy_namespace:
            return False
    else:
        ns_labels = namespace_labels.get(namespace) or {NAMESPACE_NAME_LABEL: namespace}
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
    protocol = parse_protocol(protocol, "the probe")
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
            f"{dst.label} declares no {protocol} containerPort named {name!r} "
            f"(named ports: {have}).",
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
    """The isolating policies, each by its ``Policy.label``."""
    allowed_by: tuple[RuleRef, ...] = ()

    @property
    def isolated(self) -> bool:
        """Whether some policy isolates the subject on this side."""
        return bool(self.isolated_by)

    @property
    def allowed(self) -> bool:
        """Whether this side lets the flow through (not isolated, or a rule allows it)."""
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
    ) -> None:
        self.namespace_labels = namespace_labels(namespaces)
        self.policies = parse_policies(policies)
        by_ns: dict[str, list[Policy]] = defaultdict(list)
        for policy in self.policies:
            by_ns[policy.namespace].append(policy)
        self._by_namespace = dict(by_ns)

    def labels_of_namespace(self, name: str) -> Mapping[str, str]:
        """A namespace's labels (at least ``kubernetes.io/metadata.name``, even if unlisted)."""
        return self.namespace_labels.get(name) or {NAMESPACE_NAME_LABEL: name}

    def in_namespace(self, namespace: str) -> tuple[Policy, ...]:
        """The policies of one namespace, in the set's order (a policy selects only there)."""
        return tuple(self._by_namespace.get(namespace, ()))

    def selecting(self, ep: Endpoint, direction: str) -> tuple[Policy, ...]:
        """Policies that select ``ep`` and isolate it in ``direction`` (ingress/egress)."""
        if not ep.subject:
            return ()
        return tuple(
            p
            for p in self.in_namespace(ep.namespace or "")
            if p.affects(direction) and policy_selects(p, ep)
        )

    def peer_matches(self, peer: Peer, ep: Endpoint, policy_namespace: str) -> bool:
        """:func:`peer_matches` with this cluster's namespace labels."""
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
        allowed = dict.fromkeys(
            RuleRef(p.label, direction, r.index)
            for p in isolating
            for r in p.rules(direction)
            if self.rule_allows(p, r, peer, number, protocol, dst)
        )
        by = tuple(dict.fromkeys(p.label for p in isolating))
        return SideVerdict(direction, subject.label, True, by, tuple(allowed))

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
            one = len(sv.isolated_by) == 1
            policies = ", ".join(sv.isolated_by)
            reasons.append(
                f"{sv.subject} is isolated for {sv.direction} by "
                f"{'policy' if one else 'policies'} {policies} "
                f"and no {sv.direction} rule of {'it' if one else 'them'} matches"
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


def why(flow: Verdict) -> tuple[str, ...]:
    """One line per side of a flow, for a grid cell a learner clicks: which policy rule let it
    through, which policies isolate the pod with no rule that matches, or that no policy selects
    the pod (a pod reaching itself: its loopback, which no policy can block)."""
    egress, ingress = flow.egress, flow.ingress
    if not egress.applies and not ingress.applies and egress.subject == ingress.subject:
        return (f"{egress.subject} reaches itself over loopback: no policy applies",)
    return tuple(_side_why(side) for side in (flow.egress, flow.ingress))


def _side_why(side: SideVerdict) -> str:
    where = f"{side.direction} at {side.subject}"
    if not side.applies:
        return f"{where}: not a pod, no policy selects it"
    if not side.isolated:
        return f"{where}: no policy selects the pod for {side.direction}, so it is allowed"
    policies = ", ".join(side.isolated_by)
    if side.allowed_by:
        rules = ", ".join(map(str, side.allowed_by))
        return f"{where}: allowed by rule {rules} (the pod is selected by {policies})"
    return f"{where}: blocked, selected by {policies} and no {side.direction} rule matches"
