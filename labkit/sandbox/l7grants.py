"""Which pod ports Cilium's HTTP proxy guards, and for whom (pure): the ``l7_grants`` of the
agent's ``workloads.json``, from the CiliumNetworkPolicies' ingress ``toPorts.rules.http``.

Cilium merges every ingress rule on a port per peer (``pkg/policy/l4.go``): a port any rule gives
HTTP rules is redirected to the proxy, and then a rule without HTTP rules for a peer allows that
peer every request. ``pkg/policy/rules.go`` (``wildcardL3L4Rules``: "Duplicate L3-only rules into
wildcard L7 rules") does the same for a rule without ``toPorts`` (every port) and for a
Kubernetes NetworkPolicy, which Cilium reads as a rule of its own (``pkg/k8s/network_policy.go``,
``ParseNetworkPolicy``): its ingress rule that covers the port lets its peers make any request.
Peers: ``fromEndpoints`` as the addresses of the pods they select (in the policy's namespace
unless the selector names one); a rule without ``fromEndpoints`` admits any peer its other
selectors (``fromEntities``, ``fromCIDR``) let through at L3/L4; a NetworkPolicy's ``from`` as
the lab's pods it admits (an ``ipBlock``, the pods inside it), no ``from`` as any peer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from labkit.model.ciliumdbg import NAMESPACE_LABEL, selects
from labkit.model.netpol.endpoints import Endpoint, endpoint, namespace_labels
from labkit.model.netpol.policies import Rule, parse_policy
from labkit.model.netpol.verdicts import peer_matches, policy_selects, ports_match
from labkit.model.objects import labels_of, name_of, namespace_of, pod_ip
from labkit.model.selectors import selector_matches
from labkit.sandbox.fabric import PodNet

Guarded = set[tuple[str, str, str]]
"""(namespace, pod, port) of every pod port some CiliumNetworkPolicy gives HTTP rules."""


def _peer_ips(
    rule: Mapping[str, Any], namespace: str, pods: Sequence[Mapping[str, Any]]
) -> list[str] | None:
    """The addresses ``fromEndpoints`` admits (None: the rule names no endpoints)."""
    selectors = rule.get("fromEndpoints")
    if selectors is None:
        return None
    ips: list[str] = []
    for selector in selectors:
        labels = {
            k.removeprefix("k8s:").removeprefix("any:"): v
            for k, v in (selector.get("matchLabels") or {}).items()
        }
        ns = labels.pop(NAMESPACE_LABEL, namespace)
        plain = {"matchLabels": labels, "matchExpressions": selector.get("matchExpressions") or []}
        ips += [
            str(pod_ip(p))
            for p in pods
            if namespace_of(p) == ns and pod_ip(p) and selector_matches(plain, labels_of(p))
        ]
    return sorted(set(ips))


def _entries(
    policy: Mapping[str, Any],
) -> Iterable[tuple[Mapping[str, Any], str | None, list[Any]]]:
    """(ingress rule, port, http rules) for each port an ingress rule names; port None for a
    rule without ``toPorts`` (it allows every port)."""
    for rule in (policy.get("spec") or {}).get("ingress") or []:
        if not rule.get("toPorts"):
            yield rule, None, []
        for to_port in rule.get("toPorts") or []:
            http = list((to_port.get("rules") or {}).get("http") or [])
            for port in to_port.get("ports") or []:
                number = str(port.get("port", ""))
                if number.isdigit():  # a named port is left to L3/L4 enforcement
                    yield rule, number, http


def _cnp_grants(
    cnps: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    nets: Mapping[str, PodNet],
    guarded: Guarded,
) -> list[dict[str, Any]]:
    """One grant per CiliumNetworkPolicy rule on each guarded port of the pods it selects."""
    grants: list[dict[str, Any]] = []
    for policy in cnps:
        ref = f"{namespace_of(policy)}/{name_of(policy)}"
        for rule, port, http in _entries(policy):
            peers = _peer_ips(rule, namespace_of(policy), pods)
            for pod in pods:
                net = nets.get(f"{namespace_of(pod)}/{name_of(pod)}")
                if net is None or not selects(policy, pod):
                    continue
                on_pod = sorted(int(p) for ns, name, p in guarded if (ns, name) == _key(pod))
                for number in on_pod if port is None else [int(port)]:
                    if (*_key(pod), str(number)) in guarded:
                        grant = {"netns": net.netns, "port": number, "policy": ref}
                        grants.append({**grant, "peers": peers, "http": http})
    return grants


def _key(pod: Mapping[str, Any]) -> tuple[str, str]:
    return namespace_of(pod), name_of(pod)


def _admitted(
    rule: Rule, namespace: str, peers: Sequence[Endpoint], ns_labels: Mapping[str, Any]
) -> list[str] | None:
    """The pod addresses a NetworkPolicy ingress rule admits (None: every peer)."""
    if not rule.peers:
        return None
    return sorted(
        {
            str(ep.ip)
            for ep in peers
            if ep.ip is not None
            and any(
                peer_matches(p, ep, policy_namespace=namespace, namespace_labels=ns_labels)
                for p in rule.peers
            )
        }
    )


def _netpol_grants(
    netpols: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    nets: Mapping[str, PodNet],
    guarded: Guarded,
    namespaces: Iterable[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """An L7 wildcard per NetworkPolicy ingress rule that covers a guarded port of a pod the
    policy selects: its peers may make any request."""
    ns_labels = namespace_labels(namespaces)
    endpoints = {_key(p): endpoint(p) for p in pods}
    peers = list(endpoints.values())
    grants: list[dict[str, Any]] = []
    for doc in netpols:
        policy = parse_policy(doc)
        for rule in policy.ingress:
            admitted = _admitted(rule, policy.namespace, peers, ns_labels)
            for ns, name, port in sorted(guarded):
                dst, net = endpoints[(ns, name)], nets.get(f"{ns}/{name}")
                if net is None or not policy_selects(policy, dst):
                    continue
                if ports_match(rule.ports, int(port), "TCP", dst):
                    grant = {"netns": net.netns, "port": int(port), "policy": policy.ref}
                    grants.append({**grant, "peers": admitted, "http": []})
    return grants


def l7_grants(
    policies: Iterable[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    nets: Mapping[str, PodNet],
    namespaces: Iterable[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The ``l7_grants`` entries for every pod port some CiliumNetworkPolicy gives HTTP rules:
    one per CiliumNetworkPolicy rule on that port (HTTP rules, or none for an L3/L4-only rule),
    and an L7 wildcard per NetworkPolicy ingress rule covering it, naming its policy and peers."""
    policies = list(policies)
    cnps = [p for p in policies if p.get("kind") == "CiliumNetworkPolicy"]
    netpols = [p for p in policies if p.get("kind") == "NetworkPolicy"]
    guarded: Guarded = set()
    for policy in cnps:
        for _, port, http in _entries(policy):
            if http and port is not None:
                guarded |= {(*_key(p), port) for p in pods if selects(policy, p)}
    if not guarded:
        return []
    grants = _cnp_grants(cnps, pods, nets, guarded)
    return grants + _netpol_grants(netpols, pods, nets, guarded, namespaces)
