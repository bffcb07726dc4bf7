"""The schema of a CiliumNetworkPolicy (cilium.io/v2): the openAPIV3Schema of Cilium 1.20's CRD
(pkg/k8s/apis/cilium.io/client/crds/v2/ciliumnetworkpolicies.yaml) in structure (every field
the API server stores, deny rules, toFQDNs, DNS rules, TLS contexts included; unknown fields
refused as strict field validation refuses them), without its descriptions and its CIDR formats.
What the sandbox enforces is narrower: :mod:`.modelled` says which of these fields it models."""

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
PROTOCOLS = ("TCP", "UDP", "SCTP", "VRRP", "IGMP", "ANY")
"""``toPorts[].ports[].protocol`` (api.L4Proto in pkg/policy/api/l4.go)."""

_STRINGS = {"type": "array", "items": {"type": "string"}}
_LABEL_VALUE = {
    "type": "string",
    "maxLength": 63,
    "pattern": r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$",
}
_SELECTOR: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": _LABEL_VALUE},
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
_SELECTORS = {"type": "array", "items": _SELECTOR}
_CIDR_SET = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "oneOf": [{"required": [one]} for one in ("cidr", "cidrGroupRef", "cidrGroupSelector")],
        "properties": {
            "cidr": {"type": "string"},
            "cidrGroupRef": {
                "type": "string",
                "maxLength": 253,
                "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
            },
            "cidrGroupSelector": _SELECTOR,
            "except": _STRINGS,
        },
    },
}
_ICMP_TYPE = r"^([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5]|[A-Z][A-Za-z]+)$"
_ICMPS = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "fields": {
                "type": "array",
                "maxItems": 40,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["type"],
                    "properties": {
                        "family": {"enum": ["IPv4", "IPv6"]},
                        "type": {
                            "anyOf": [
                                {"type": "integer", "minimum": 0, "maximum": 255},
                                {"type": "string", "pattern": _ICMP_TYPE},
                            ]
                        },
                    },
                },
            }
        },
    },
}
_AUTHENTICATION = {
    "type": "object",
    "additionalProperties": False,
    "required": ["mode"],
    "properties": {"mode": {"enum": ["disabled", "required", "test-always-fail"]}},
}
_DNS_NAME = {"type": "string", "maxLength": 255, "pattern": r"^([-a-zA-Z0-9_]+[.]?)+$"}
_DNS_PATTERN = {"type": "string", "maxLength": 255, "pattern": r"^([-a-zA-Z0-9_*]+[.]?)+$"}
_DNS_MATCHES = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "oneOf": [{"required": ["matchName"]}, {"required": ["matchPattern"]}],
        "properties": {"matchName": _DNS_NAME, "matchPattern": _DNS_PATTERN},
    },
}
_SECRET_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
}
_TLS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["secret"],
    "properties": {
        "certificate": {"type": "string"},
        "privateKey": {"type": "string"},
        "secret": _SECRET_REF,
        "trustedCA": {"type": "string"},
    },
}
_HTTP_RULE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "headerMatches": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "mismatch": {"enum": ["LOG", "ADD", "DELETE", "REPLACE"]},
                    "name": {"type": "string", "minLength": 1},
                    "secret": _SECRET_REF,
                    "value": {"type": "string"},
                },
            },
        },
        "headers": _STRINGS,
        "host": {"type": "string"},
        "method": {"type": "string"},
        "path": {"type": "string"},
    },
}
_PORTS = {
    "type": "array",
    "maxItems": 40,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "port": {
                "type": "string",
                "pattern": r"^(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}"
                r"|[1-5][0-9]{4}|[0-9]{1,4})|([a-zA-Z0-9]-?)*[a-zA-Z](-?[a-zA-Z0-9])*$",
            },
            "endPort": {"type": "integer", "minimum": 0, "maximum": 65535},
            "protocol": {"enum": list(PROTOCOLS)},
        },
    },
}
_PORT_RULE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "listener": {
            "type": "object",
            "additionalProperties": False,
            "required": ["envoyConfig", "name"],
            "properties": {
                "envoyConfig": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["name"],
                    "properties": {
                        "kind": {"enum": ["CiliumEnvoyConfig", "CiliumClusterwideEnvoyConfig"]},
                        "name": {"type": "string", "minLength": 1},
                    },
                },
                "name": {"type": "string", "minLength": 1},
                "priority": {"type": "integer", "minimum": 1, "maximum": 100},
            },
        },
        "originatingTLS": _TLS,
        "ports": _PORTS,
        "rules": {
            "type": "object",
            "additionalProperties": False,
            "oneOf": [{"required": ["http"]}, {"required": ["dns"]}],
            "properties": {
                "dns": _DNS_MATCHES,
                "http": {"type": "array", "items": _HTTP_RULE},
            },
        },
        "serverNames": {"type": "array", "minItems": 1, "items": _DNS_PATTERN},
        "terminatingTLS": _TLS,
    },
}
_DENY_PORT_RULE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"ports": _PORTS},
}
_SERVICES = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "k8sService": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"namespace": {"type": "string"}, "serviceName": {"type": "string"}},
            },
            "k8sServiceSelector": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector"],
                "properties": {"namespace": {"type": "string"}, "selector": _SELECTOR},
            },
        },
    },
}
_GROUPS = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "aws": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "region": {"type": "string"},
                    "securityGroupsIds": _STRINGS,
                    "securityGroupsNames": _STRINGS,
                },
            }
        },
    },
}
_DEPRECATED = {"type": "array", "maxItems": 0, "items": {"type": "string"}}


def _rule(direction: str, deny: bool) -> dict[str, Any]:
    """``ingress``/``egress`` (and their ``Deny`` forms) of pkg/policy/api/ingress.go and
    egress.go: the peers, ``toPorts`` (only ports in a deny rule), ``icmps``."""
    peer = "from" if direction == "ingress" else "to"
    fields: dict[str, Any] = {
        f"{peer}Endpoints": _SELECTORS,
        f"{peer}Requires": _DEPRECATED,
        f"{peer}CIDR": _STRINGS,
        f"{peer}CIDRSet": _CIDR_SET,
        f"{peer}Entities": {"type": "array", "items": {"enum": list(ENTITIES)}},
        f"{peer}Groups": _GROUPS,
        f"{peer}Nodes": _SELECTORS,
        "icmps": _ICMPS,
        "toPorts": {"type": "array", "items": _DENY_PORT_RULE if deny else _PORT_RULE},
    }
    if direction == "egress":
        fields["toServices"] = _SERVICES
        if not deny:
            fields["toFQDNs"] = _DNS_MATCHES
    if not deny:
        fields["authentication"] = _AUTHENTICATION
    return {
        "type": "array",
        "items": {"type": "object", "additionalProperties": False, "properties": fields},
    }


_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "anyOf": [{"required": [s]} for s in ("ingress", "ingressDeny", "egress", "egressDeny")],
    "oneOf": [{"required": ["endpointSelector"]}, {"required": ["nodeSelector"]}],
    "properties": {
        "description": {"type": "string"},
        "enableDefaultDeny": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"egress": {"type": "boolean"}, "ingress": {"type": "boolean"}},
        },
        "endpointSelector": _SELECTOR,
        "nodeSelector": _SELECTOR,
        "labels": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key"],
                "properties": {
                    "key": {"type": "string"},
                    "source": {"type": "string"},
                    "value": {"type": "string"},
                },
            },
        },
        "log": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"value": {"type": "string"}},
        },
        "ingress": _rule("ingress", deny=False),
        "ingressDeny": _rule("ingress", deny=True),
        "egress": _rule("egress", deny=False),
        "egressDeny": _rule("egress", deny=True),
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
