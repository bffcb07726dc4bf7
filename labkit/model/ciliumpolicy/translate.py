"""A CiliumNetworkPolicy (L3/L4) as NetworkPolicy-shaped documents, for :mod:`..netpol`.

Cilium's semantics (docs: "Layer 3 Examples", "Layer 4 Examples"; pkg/policy/api/rules.go):

* ``endpointSelector`` picks pods of the policy's namespace; a rule section (``ingress`` or
  ``egress``) that is present isolates them in that direction, even when it holds only ``{}``,
  which allows nothing (Cilium's way to write default deny);
* within one rule the peers (``fromEndpoints``, ``fromCIDR``, ``fromCIDRSet``,
  ``fromEntities``, and their ``to`` forms) are alternatives and ``toPorts`` limits them all; a
  rule with ports and no peers allows every peer on those ports;
* an endpoint selector matches pods of the policy's namespace unless it names
  ``k8s:io.kubernetes.pod.namespace`` (or namespace labels, ``io.cilium.k8s.namespace.labels.*``);
  label keys may carry a source prefix (``k8s:``, ``any:``);
* ports are strings (a number or a port name), ``protocol`` defaults to ANY (TCP and UDP here),
  ``port: "0"`` means every port;
* entities: ``world`` is everything outside the cluster (not a pod, not a node), ``cluster``
  every pod and node, ``host`` and ``remote-node`` the nodes (here both the whole node network,
  the sandbox does not tell its own node from the others in a policy), ``all`` everything.

What the lab does not model is refused with :class:`~..netpol.policies.PolicyError`, naming the
field (:mod:`.modelled`: deny rules, toFQDNs, toServices, DNS rules, ...) and the other entities.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from labkit.model.ciliuml7 import parse_http_rules
from labkit.model.ciliumpolicy.modelled import KIND_FIX, unmodelled_field
from labkit.model.netpol.policies import CNP_PREFIX, PolicyError

NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."
SOURCES = ("k8s:", "any:")
MODELLED_ENTITIES = ("all", "world", "cluster", "host", "remote-node", "none")


def _key(key: str) -> str:
    for source in SOURCES:
        if key.startswith(source):
            return key[len(source) :]
    return key


def _split_selector(sel: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A Cilium endpoint selector as a podSelector and a namespaceSelector (None: the policy's
    own namespace)."""
    pod: dict[str, Any] = {}
    ns: dict[str, Any] = {}
    for key, value in (sel.get("matchLabels") or {}).items():
        key = _key(str(key))
        if key == NAMESPACE_LABEL:
            ns.setdefault("matchLabels", {})["kubernetes.io/metadata.name"] = value
        elif key.startswith(NAMESPACE_LABELS_PREFIX):
            ns.setdefault("matchLabels", {})[key[len(NAMESPACE_LABELS_PREFIX) :]] = value
        else:
            pod.setdefault("matchLabels", {})[key] = value
    for expr in sel.get("matchExpressions") or []:
        key = _key(str(expr.get("key")))
        if key == NAMESPACE_LABEL:
            target, key = ns, "kubernetes.io/metadata.name"
        elif key.startswith(NAMESPACE_LABELS_PREFIX):
            target, key = ns, key[len(NAMESPACE_LABELS_PREFIX) :]
        else:
            target = pod
        target.setdefault("matchExpressions", []).append({**expr, "key": key})
    return pod, (ns or None)


def _entity_peers(entity: str, pod_cidr: str, node_cidr: str, where: str) -> list[dict[str, Any]]:
    if entity not in MODELLED_ENTITIES:
        raise PolicyError(
            f"{where}: the entity {entity!r} is not modelled on the sandbox.",
            f"Use one of {', '.join(MODELLED_ENTITIES)}, or the Kind backend for {entity}.",
        )
    every_pod: dict[str, Any] = {"namespaceSelector": {}}
    nodes = {"ipBlock": {"cidr": node_cidr}}
    return {
        "all": [{"ipBlock": {"cidr": "0.0.0.0/0"}}, every_pod],
        "world": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [pod_cidr, node_cidr]}}],
        "cluster": [every_pod, nodes],
        "host": [nodes],
        "remote-node": [nodes],
        "none": [],
    }[entity]


def _ports(rules: Iterable[Mapping[str, Any]], where: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index, rule in enumerate(rules):
        l7 = rule.get("rules") or {}
        try:  # the agent's proxy enforces them; L3/L4 here admits the port
            parse_http_rules(l7.get("http") or [], f"{where}.toPorts[{index}].rules.http")
        except ValueError as exc:
            raise PolicyError(str(exc), "Give method and path as regular expressions.") from None
        for port in rule.get("ports") or []:
            text = str(port.get("port", "0"))
            protocols = (
                ["TCP", "UDP"] if port.get("protocol", "ANY") == "ANY" else [str(port["protocol"])]
            )
            for protocol in protocols:
                entry: dict[str, Any] = {"protocol": protocol}
                if text.isdigit():
                    number = int(text)
                    if number:
                        entry["port"] = number
                        if port.get("endPort"):
                            entry["endPort"] = int(port["endPort"])
                else:
                    entry["port"] = text
                out.append(entry)
    return out


def _rule(
    rule: Mapping[str, Any], peer: str, pod_cidr: str, node_cidr: str, where: str
) -> dict[str, Any] | None:
    """One Cilium rule as one NetworkPolicy rule; None for a rule that allows nothing."""
    peers: list[dict[str, Any]] = []
    for sel in rule.get(f"{peer}Endpoints") or []:
        pod, ns = _split_selector(sel)
        peers.append({"podSelector": pod} | ({"namespaceSelector": ns} if ns else {}))
    peers += [{"ipBlock": {"cidr": str(c)}} for c in rule.get(f"{peer}CIDR") or []]
    for entry in rule.get(f"{peer}CIDRSet") or []:
        block: dict[str, Any] = {"cidr": str(entry["cidr"])}
        if entry.get("except"):
            block["except"] = [str(e) for e in entry["except"]]
        peers.append({"ipBlock": block})
    for entity in rule.get(f"{peer}Entities") or []:
        peers += _entity_peers(str(entity), pod_cidr, node_cidr, where)
    ports = _ports(rule.get("toPorts") or [], where)
    if not peers and (rule.get(f"{peer}Entities") or not ports):
        return None  # {} or only the "none" entity: nothing is allowed
    out: dict[str, Any] = {}
    if peers:
        out["from" if peer == "from" else "to"] = peers
    if ports:
        out["ports"] = ports
    return out


def as_network_policies(
    doc: Mapping[str, Any], pod_cidr: str, node_cidr: str
) -> list[dict[str, Any]]:
    """NetworkPolicy-shaped documents with the same allowed set as the CiliumNetworkPolicy
    ``doc`` (one per entry of ``spec`` and ``specs``), named ``cnp:<name>`` (and ``#<n>``)."""
    meta = doc.get("metadata") or {}
    name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "default")
    specs = ([doc["spec"]] if doc.get("spec") else []) + list(doc.get("specs") or [])
    out = []
    for index, spec in enumerate(specs):
        where = f"CiliumNetworkPolicy {namespace}/{name}"
        path = (
            "spec" if index == 0 and doc.get("spec") else f"specs[{index - bool(doc.get('spec'))}]"
        )
        if (found := unmodelled_field(spec, path)) is not None:
            raise PolicyError(
                f"{where}: {found[0]} is not modelled on the sandbox's Cilium.",
                KIND_FIX.format(field=found[1])
                + ", or keep to what the sandbox enforces (labkit status lists it).",
            )
        pod, _ = _split_selector(spec.get("endpointSelector") or {})
        types, body = [], {}
        for direction, peer in (("ingress", "from"), ("egress", "to")):
            if direction not in spec:
                continue
            types.append(direction.capitalize())
            rules = (_rule(r, peer, pod_cidr, node_cidr, where) for r in spec[direction] or [])
            body[direction] = [r for r in rules if r is not None]
        if not types:
            continue  # selects pods but isolates them in no direction
        suffix = f"#{index}" if len(specs) > 1 else ""
        out.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": f"{CNP_PREFIX}{name}{suffix}", "namespace": namespace},
                "spec": {"podSelector": pod, "policyTypes": types, **body},
            }
        )
    return out
