"""Which pod ports Cilium's HTTP proxy guards, and for whom (pure): the ``l7_grants`` of the
agent's ``workloads.json``, from the CiliumNetworkPolicies' ingress ``toPorts.rules.http``.

Cilium merges every ingress rule on a port per peer (``pkg/policy/l4.go``): a port any rule gives
HTTP rules is redirected to the proxy, and then a rule without HTTP rules for a peer allows that
peer every request. Peers: ``fromEndpoints`` as the addresses of the pods they select (in the
policy's namespace unless the selector names one); a rule without ``fromEndpoints`` admits any
peer its other selectors (``fromEntities``, ``fromCIDR``) let through at L3/L4.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from labkit.model.ciliumdbg import NAMESPACE_LABEL, selects
from labkit.model.objects import labels_of, name_of, namespace_of, pod_ip
from labkit.model.selectors import selector_matches
from labkit.sandbox.fabric import PodNet


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


def _entries(policy: Mapping[str, Any]) -> Iterable[tuple[Mapping[str, Any], str, list[Any]]]:
    """(ingress rule, port, http rules) for each port an ingress rule names."""
    for rule in (policy.get("spec") or {}).get("ingress") or []:
        for to_port in rule.get("toPorts") or []:
            http = list((to_port.get("rules") or {}).get("http") or [])
            for port in to_port.get("ports") or []:
                number = str(port.get("port", ""))
                if number.isdigit():  # a named port is left to L3/L4 enforcement
                    yield rule, number, http


def l7_grants(
    policies: Iterable[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    nets: Mapping[str, PodNet],
) -> list[dict[str, Any]]:
    """The ``l7_grants`` entries for every pod port some policy gives HTTP rules: one per rule
    on that port (HTTP rules, or none for an L3/L4-only rule), naming its policy and peers."""
    cnps = [p for p in policies if p.get("kind") == "CiliumNetworkPolicy"]
    guarded: set[tuple[str, str, str]] = set()
    for policy in cnps:
        for _, port, http in _entries(policy):
            if http:
                guarded |= {(namespace_of(p), name_of(p), port) for p in pods if selects(policy, p)}
    grants: list[dict[str, Any]] = []
    for policy in cnps:
        ref = f"{namespace_of(policy)}/{name_of(policy)}"
        for rule, port, http in _entries(policy):
            peers = _peer_ips(rule, namespace_of(policy), pods)
            for pod in pods:
                net = nets.get(f"{namespace_of(pod)}/{name_of(pod)}")
                key = (namespace_of(pod), name_of(pod), port)
                if net is None or key not in guarded or not selects(policy, pod):
                    continue
                grant = {"netns": net.netns, "port": int(port), "policy": ref, "peers": peers}
                grants.append({**grant, "http": http})
    return grants
