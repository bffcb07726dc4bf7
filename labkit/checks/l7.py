"""Cilium's HTTP rules as a check sees them: the CiliumNetworkPolicies whose ``toPorts.rules.http``
put the proxy in front of a pod's port, in words for the hint that tells an L7 denial (the
proxy's 403 "Access denied" on a connection that was made) from an L3/L4 drop (a timeout)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from labkit.errors import LabError
from labkit.lab import Lab
from labkit.model.ciliumdbg import selects
from labkit.model.ciliuml7 import DENIED_STATUS, parse_http_rules
from labkit.model.objects import name_of, namespace_of


def _ports(entry: Mapping[str, Any]) -> set[str]:
    return {str(p.get("port", "")) for p in entry.get("ports") or []}


def http_rules_on(
    policies: Iterable[Mapping[str, Any]], pod: Mapping[str, Any], port: int
) -> list[str]:
    """``ns/name: GET /public, POST /v1/...`` for each policy whose HTTP rules guard ``port`` of
    ``pod`` (its endpointSelector selects the pod, an ingress ``toPorts`` entry names the port
    or none)."""
    found: list[str] = []
    for policy in policies:
        if not selects(policy, pod):
            continue
        ns, spec = namespace_of(policy), policy.get("spec") or {}
        words: list[str] = []
        for rule in spec.get("ingress") or []:
            for entry in rule.get("toPorts") or []:
                ports = _ports(entry)
                http = (entry.get("rules") or {}).get("http")
                if http and (not ports or str(port) in ports):
                    try:
                        words += [r.describe() for r in parse_http_rules(http)]
                    except ValueError:
                        continue
        if words:
            found.append(f"{ns}/{name_of(policy)}: {', '.join(words)}")
    return found


def cilium_policies(lab: Lab, namespace: str) -> list[dict[str, Any]]:
    """The CiliumNetworkPolicies of ``namespace`` ([] where the lab has no such kind)."""
    try:
        return lab.get("CiliumNetworkPolicy", namespace=namespace)
    except LabError:
        return []


def l7_denial_hint(
    lab: Lab, pod: Mapping[str, Any], port: int, request: str = "GET /hostname"
) -> str:
    """The hint for a request Cilium's proxy denied: the connection is allowed, an HTTP rule is
    not; it names the policies and the requests they allow."""
    rules = http_rules_on(cilium_policies(lab, namespace_of(pod)), pod, port)
    named = "; ".join(rules) if rules else "a CiliumNetworkPolicy's toPorts.rules.http"
    return (
        f"Cilium's proxy answered {DENIED_STATUS} Access denied: the connection was allowed (an "
        "L3/L4 drop would time out), but no HTTP rule on this port allows the request "
        f"({request}). Rules in force: {named}. Allow the method and path in the rule, or "
        "send a request it allows."
    )
