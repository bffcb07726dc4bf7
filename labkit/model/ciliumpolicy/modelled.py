"""Which CiliumNetworkPolicy fields the sandbox enforces (pure): the schema accepts all of
Cilium's CRD, and a field the sandbox's data plane does not model is named with the fix (a Kind
lab with Cilium) instead of being stored unenforced."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KIND_FIX = "Use a Kind lab with Cilium (make lab CNI=cilium BACKEND=kind) for {field}"
"""The fix for a field only real Cilium enforces."""

SPEC_FIELDS = frozenset({"description", "labels", "endpointSelector", "ingress", "egress"})
RULE_FIELDS = {
    "ingress": frozenset({"fromEndpoints", "fromCIDR", "fromCIDRSet", "fromEntities", "toPorts"}),
    "egress": frozenset({"toEndpoints", "toCIDR", "toCIDRSet", "toEntities", "toPorts"}),
}
CIDR_SET_FIELDS = frozenset({"cidr", "except"})
PORT_RULE_FIELDS = frozenset({"ports", "rules"})
PROTOCOLS = frozenset({"TCP", "UDP", "SCTP", "ANY"})
L7_KINDS = frozenset({"http"})


def _first_extra(obj: Mapping[str, Any], known: frozenset[str]) -> str | None:
    extra = sorted(set(obj) - known)
    return extra[0] if extra else None


def _port_rule(rule: Mapping[str, Any], where: str) -> tuple[str, str] | None:
    if (field := _first_extra(rule, PORT_RULE_FIELDS)) is not None:
        return f"{where}.{field}", field
    for index, port in enumerate(rule.get("ports") or []):
        protocol = str(port.get("protocol", "ANY"))
        if protocol not in PROTOCOLS:
            return f"{where}.ports[{index}].protocol {protocol}", f"protocol {protocol}"
    if (field := _first_extra(rule.get("rules") or {}, L7_KINDS)) is not None:
        return f"{where}.rules.{field}", f"{field} rules"
    return None


def _rule(rule: Mapping[str, Any], direction: str, where: str) -> tuple[str, str] | None:
    if (field := _first_extra(rule, RULE_FIELDS[direction])) is not None:
        return f"{where}.{field}", field
    peer = "from" if direction == "ingress" else "to"
    for index, entry in enumerate(rule.get(f"{peer}CIDRSet") or []):
        if (field := _first_extra(entry, CIDR_SET_FIELDS)) is not None:
            return f"{where}.{peer}CIDRSet[{index}].{field}", f"{peer}CIDRSet.{field}"
    for index, port_rule in enumerate(rule.get("toPorts") or []):
        if (found := _port_rule(port_rule, f"{where}.toPorts[{index}]")) is not None:
            return found
    return None


def unmodelled_field(spec: Mapping[str, Any], where: str) -> tuple[str, str] | None:
    """The first field of one policy spec the sandbox does not enforce, as (its path from
    ``where``, the name the fix gives), or None when the sandbox models the whole spec."""
    if (field := _first_extra(spec, SPEC_FIELDS)) is not None:
        return f"{where}.{field}", field
    for direction in ("ingress", "egress"):
        for index, rule in enumerate(spec.get(direction) or []):
            if (found := _rule(rule, direction, f"{where}.{direction}[{index}]")) is not None:
                return found
    return None
