"""The schema of a CiliumNetworkPolicy (cilium.io/v2), a subset of the openAPIV3Schema in
Cilium's CRD (pkg/k8s/apis/cilium.io/client/crds/v2/ciliumnetworkpolicies.yaml): the fields the
lab knows, every other field refused as unknown, as a structural schema refuses it."""

from __future__ import annotations

from typing import Any

API_VERSION = "cilium.io/v2"
KIND = "CiliumNetworkPolicy"
ENTITIES = (
    "all",
    "world",
    "cluster",
    "host",
    "remote-node",
    "kube-apiserver",
    "health",
    "init",
    "ingress",
    "unmanaged",
    "none",
)
"""The values of ``fromEntities``/``toEntities`` (api.Entity in pkg/policy/api/entity.go)."""
PROTOCOLS = ("TCP", "UDP", "SCTP", "ANY")

_STRINGS = {"type": "array", "items": {"type": "string"}}
_SELECTOR: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "operator"],
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": _STRINGS,
                },
            },
        },
    },
}
_CIDR_SET = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["cidr"],
        "properties": {"cidr": {"type": "string"}, "except": _STRINGS},
    },
}
_PORT_RULE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "ports": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["port"],
                "properties": {
                    "port": {
                        "type": "string",
                        "pattern": r"^(\d{1,5}|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$",
                    },
                    "endPort": {"type": "integer", "minimum": 0, "maximum": 65535},
                    "protocol": {"enum": list(PROTOCOLS)},
                },
            },
        },
        "rules": {"type": "object"},
    },
}


def _rule(direction: str) -> dict[str, Any]:
    peer = "from" if direction == "ingress" else "to"
    return {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                f"{peer}Endpoints": {"type": "array", "items": _SELECTOR},
                f"{peer}CIDR": _STRINGS,
                f"{peer}CIDRSet": _CIDR_SET,
                f"{peer}Entities": {"type": "array", "items": {"enum": list(ENTITIES)}},
                "toPorts": {"type": "array", "items": _PORT_RULE},
            },
        },
    }


_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "required": ["endpointSelector"],
    "properties": {
        "description": {"type": "string"},
        "endpointSelector": _SELECTOR,
        "ingress": _rule("ingress"),
        "egress": _rule("egress"),
    },
}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": KIND},
        "metadata": {"type": "object"},
        "spec": _SPEC,
        "specs": {"type": "array", "items": _SPEC},
        "status": {"type": "object"},
    },
}
