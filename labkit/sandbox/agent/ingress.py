"""Ingress routing (pure): which Ingress rule a request's host and path go to.

The rules arrive already resolved to Service ClusterIPs (see ``spec``); the proxy that forwards
to them is ``ingress_proxy``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class IngressRule:
    """One Ingress path, already resolved to its Service's ClusterIP and port."""

    host: str | None
    path: str
    path_type: str
    backend_ip: str
    backend_port: int
    service: str


def host_matches(rule_host: str | None, host: str) -> int:
    """How well a request host matches a rule host: 3 exact, 2 wildcard, 1 any-host rule, 0 not."""
    if rule_host is None:
        return 1
    if rule_host == host:
        return 3
    if rule_host.startswith("*.") and "." in host:
        # A wildcard covers exactly one leading DNS label (Kubernetes Ingress rule semantics).
        return 2 if host.split(".", 1)[1] == rule_host[2:] else 0
    return 0


def path_matches(path_type: str, rule_path: str, path: str) -> bool:
    """Ingress path matching: Exact compares the whole path, Prefix compares whole path elements."""
    if path_type == "Exact":
        return path == rule_path
    prefix = [p for p in rule_path.split("/") if p]
    parts = [p for p in path.split("/") if p]
    return parts[: len(prefix)] == prefix


def _rule_rank(rule: IngressRule) -> tuple[bool, bool, bool, int]:
    exact = rule.path_type == "Exact"
    return (
        rule.host is None,
        rule.host is not None and rule.host.startswith("*."),
        not exact,
        -len(rule.path.rstrip("/") if not exact else rule.path),
    )


def sort_ingress_rules(rules: Iterable[IngressRule]) -> list[IngressRule]:
    """Precedence order: host-specific before wildcard before any-host; Exact before Prefix;
    longer prefixes first (the order a controller tries them)."""
    return sorted(rules, key=_rule_rank)


def match_ingress(rules: Iterable[IngressRule], host: str | None, path: str) -> IngressRule | None:
    """The rule a request for ``host`` + ``path`` goes to, or None (the default backend's 404).

    ``ImplementationSpecific`` is treated as Prefix. When the rules for a matching host have no
    matching path, rules without a host are tried next.
    """
    host = (host or "").lower()
    best: tuple[int, bool, int] | None = None
    chosen: IngressRule | None = None
    for rule in rules:
        score = host_matches(rule.host, host)
        if not score or not path_matches(rule.path_type, rule.path, path):
            continue
        exact = rule.path_type == "Exact"
        rank = (score, exact, len(rule.path.rstrip("/")))
        if best is None or rank > best:
            best, chosen = rank, rule
    return chosen


def request_host(headers: dict[str, str]) -> str:
    """The Host header without a port, lower-cased ('' when absent)."""
    host = headers.get("host", "").strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
