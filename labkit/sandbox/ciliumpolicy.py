"""Cilium's policy enforcement on the sandbox (pure): NetworkPolicy and CiliumNetworkPolicy
(L3/L4) enforced at each pod's own side, as Cilium's per-endpoint programs do.

Cilium enforces an endpoint's ingress and egress policy in the eBPF programs of its ``lxc``
device; here each pod's own namespace holds filter chains instead: ``INPUT`` jumps to
``CILIUM_POL_IN`` (ingress) and ``OUTPUT`` to ``CILIUM_POL_OUT`` (egress, after the socket LB
chose a backend, as Cilium's egress policy sees the backend). A chain is filled only while a
policy isolates the pod in that direction: established flows, the pod itself and its own node
(Cilium's ``allow-localhost``: kubelet's probes) pass, then one ACCEPT per allowed peer and
port, each with the policy that allowed it, and finally the one rule every denied packet meets,
a DROP commented ``cilium: policy denied (<direction>)``: drops are drops, and that rule is the
place to log them. Who may talk to whom is :mod:`labkit.model.netpol`'s answer; a
CiliumNetworkPolicy enters it through :mod:`labkit.model.ciliumpolicy.translate`.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from labkit.errors import LabError
from labkit.model.ciliumpolicy.translate import as_network_policies
from labkit.model.hubble import FLOW_GROUP, nflog_prefix
from labkit.model.netpol.endpoints import Endpoint, endpoint
from labkit.model.netpol.policies import (
    CNP_PREFIX,
    EGRESS,
    INGRESS,
    Peer,
    Policy,
    PolicyError,
    Rule,
)
from labkit.model.netpol.verdicts import PolicySet
from labkit.sandbox.fabric import CLUSTER_CIDRS, GATEWAY_IP, UNDERLAY_PREFIX
from labkit.sandbox.iptables_save import comment

CHAINS = {INGRESS: "CILIUM_POL_IN", EGRESS: "CILIUM_POL_OUT"}
HOOKS = {INGRESS: "INPUT", EGRESS: "OUTPUT"}
NODE_NETWORK = str(ipaddress.ip_interface(f"{GATEWAY_IP}/{UNDERLAY_PREFIX}").network)


def denied_comment(direction: str) -> str:
    """The comment of the one DROP rule of a direction's chain (where denials are counted)."""
    return f"cilium: policy denied ({direction})"


def policy_ref(policy: Policy) -> str:
    """``ns/name`` of the object a learner applied: a CiliumNetworkPolicy's own name for its
    translated ``cnp:<name>#<n>`` parts."""
    name = policy.name
    if name.startswith(CNP_PREFIX):
        name = name.removeprefix(CNP_PREFIX).split("#", 1)[0]
    return f"{policy.namespace}/{name}"


def drop_log(direction: str, policies: Sequence[str]) -> str:
    """The rule before the DROP that logs each denied packet for Hubble (NFLOG group 100), its
    prefix naming the direction and the policies isolating the pod."""
    prefix = nflog_prefix("DROPPED", direction.upper(), policies)
    return f'-j NFLOG --nflog-prefix "{prefix}" --nflog-group {FLOW_GROUP}'


def policy_documents(
    network_policies: Iterable[Mapping[str, Any]], cilium_policies: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Every policy the endpoints obey, CiliumNetworkPolicies as NetworkPolicy documents; a
    CiliumNetworkPolicy the lab does not model raises LabError."""
    docs: list[Mapping[str, Any]] = list(network_policies)
    try:
        for cnp in cilium_policies:
            docs += as_network_policies(cnp, CLUSTER_CIDRS["cilium"], NODE_NETWORK)
    except PolicyError as err:
        raise LabError(err.what, err.fix) from None
    return docs


def policy_set(
    namespaces: Sequence[Mapping[str, Any]],
    network_policies: Sequence[Mapping[str, Any]],
    cilium_policies: Sequence[Mapping[str, Any]],
) -> PolicySet:
    """The cluster's policies, ready to answer for every endpoint."""
    try:
        return PolicySet(namespaces, policy_documents(network_policies, cilium_policies))
    except PolicyError as err:
        raise LabError(err.what, err.fix) from None


def _port_matches(rule: Rule, dst: Endpoint | None) -> list[str] | None:
    """The ``-p``/``--dport`` parts of a rule's ports at ``dst`` ([""]: every port; None: a named
    port ``dst`` lacks, or cannot have, so the rule covers nothing there)."""
    if not rule.ports:
        return [""]
    out = []
    for port in rule.ports:
        proto = port.protocol.lower()
        if port.port is None:
            out.append(f"-p {proto}")
        elif isinstance(port.port, str):
            found = dst.named_port(port.port, port.protocol) if dst is not None else None
            if found is not None:
                out.append(f"-p {proto} -m {proto} --dport {found.number}")
        elif port.end_port is not None:
            out.append(f"-p {proto} -m {proto} --dport {port.port}:{port.end_port}")
        else:
            out.append(f"-p {proto} -m {proto} --dport {port.port}")
    return out or None


class _Chains:
    """The filter lines of one endpoint."""

    def __init__(self) -> None:
        self.rules: dict[str, list[str]] = {name: [] for name in CHAINS.values()}

    def add(self, chain: str, *parts: str) -> None:
        self.rules.setdefault(chain, []).append(" ".join(p for p in (f"-A {chain}", *parts) if p))

    def lines(self) -> list[str]:
        out = [f":{name} - [0:0]" for name in self.rules]
        out += [f"-A {HOOKS[d]} -j {CHAINS[d]}" for d in (INGRESS, EGRESS)]
        for rules in self.rules.values():
            out += rules
        return out


def endpoint_policy_rules(
    pod: Mapping[str, Any],
    others: Sequence[Endpoint],
    policies: PolicySet,
    node_addresses: Sequence[str],
) -> dict[str, list[str]]:
    """The filter lines enforcing ``policies`` in ``pod``'s own namespace, ``others`` the
    endpoints of every pod (parsed once for all pods, not once per pod: that was O(pods^2));
    ``node_addresses`` are its node's (its InternalIP and cilium_host), which always reach it."""
    me = endpoint(pod)
    chains = _Chains()
    for direction in (INGRESS, EGRESS):
        isolating = policies.selecting(me, direction)
        if not isolating:
            continue
        chain = CHAINS[direction]
        lo = "-i lo" if direction == INGRESS else "-o lo"
        chains.add(chain, "-m conntrack --ctstate RELATED,ESTABLISHED", "-j ACCEPT")
        chains.add(chain, lo, comment("cilium: the endpoint itself"), "-j ACCEPT")
        if direction == INGRESS:
            for address in node_addresses:
                chains.add(
                    chain, f"-s {address}/32", comment("cilium: allow-localhost"), "-j ACCEPT"
                )
        for policy in isolating:
            for rule in policy.rules(direction):
                _allow(chains, chain, policy, rule, direction, me, others, policies)
        chains.add(chain, drop_log(direction, [policy_ref(p) for p in isolating]))
        chains.add(chain, comment(denied_comment(direction)), "-j DROP")
    return {"filter": chains.lines()}


def peer_selectors(policy: Policy, direction: str) -> tuple[Peer, ...] | None:
    """The selector peers (ipBlocks aside) of one isolating policy's rules in ``direction``: the
    endpoints they select are those :func:`endpoint_policy_rules` writes rules for; None when
    every endpoint is (an egress rule of named ports without peers: they are resolved at each
    destination)."""
    rules = policy.rules(direction)
    if direction == EGRESS and any(not r.peers and any(p.named for p in r.ports) for r in rules):
        return None
    return tuple(peer for rule in rules for peer in rule.peers if peer.ip_block is None)


def peer_selected(
    selectors: Sequence[Peer], other: Endpoint, policies: PolicySet, namespace: str
) -> bool:
    """Whether ``other`` is among the endpoints ``selectors`` (a policy's in ``namespace``, as
    :func:`peer_selectors` lists them) select, as rules are written for it: with an address."""
    return other.ip is not None and any(
        policies.peer_matches(peer, other, namespace) for peer in selectors
    )


def _allow(
    chains: _Chains,
    chain: str,
    policy: Policy,
    rule: Rule,
    direction: str,
    me: Endpoint,
    others: Sequence[Endpoint],
    policies: PolicySet,
) -> None:
    """One ACCEPT per peer address and port a rule allows (``-s`` for ingress, ``-d`` egress)."""
    side = "-s" if direction == INGRESS else "-d"
    note = comment(f"{policy.ref} {direction}[{rule.index}]")
    if not rule.peers:
        for ports in _port_matches(rule, me if direction == INGRESS else None) or []:
            chains.add(chain, ports, note, "-j ACCEPT")
        if direction == EGRESS and any(port.named for port in rule.ports):
            # a named port is resolved at each destination pod that declares it
            named = Rule(rule.direction, rule.index, (), tuple(p for p in rule.ports if p.named))
            for other in others:
                if other.ip is not None and other != me:
                    for ports in _port_matches(named, other) or []:
                        chains.add(chain, f"-d {other.ip}/32", ports, note, "-j ACCEPT")
        return
    for peer in rule.peers:
        if peer.ip_block is not None:
            target = "ACCEPT"
            if peer.ip_block.excepts:
                target = _except_chain(chains, peer, side)
            dst = me if direction == INGRESS else None
            for ports in _port_matches(rule, dst) or []:
                block = f"{side} {peer.ip_block.cidr}"
                chains.add(chain, block, ports, note, f"-j {target}")
            continue
        for other in others:
            if (
                other.ip is None
                or other == me
                or not policies.peer_matches(peer, other, policy.namespace)
            ):
                continue
            dst = me if direction == INGRESS else other
            for ports in _port_matches(rule, dst) or []:
                chains.add(chain, f"{side} {other.ip}/32", ports, note, "-j ACCEPT")


def _except_chain(chains: _Chains, peer: Peer, side: str) -> str:
    """A chain that RETURNs an ipBlock's except ranges (``side``: ``-s`` or ``-d``) and accepts
    the rest."""
    assert peer.ip_block is not None
    digest = hashlib.sha256(f"{side} {peer.ip_block}".encode()).hexdigest()[:12]
    name = "CILIUM_POL_X" + digest
    if name not in chains.rules:
        for excluded in peer.ip_block.excepts:
            chains.add(name, f"{side} {excluded}", "-j RETURN")
        chains.add(name, "-j ACCEPT")
    return name
