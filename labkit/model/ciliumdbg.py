"""What a Cilium agent knows about its node, derived from the cluster's objects (pure): the load
balancer's frontends and backends (``cilium-dbg service list``, ``bpf lb list``) and the
endpoints with their identities and policy enforcement (``cilium-dbg endpoint list``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labkit.model.hubble import HOST, identity_labels, identity_of
from labkit.model.objects import (
    endpoints_from_slices,
    is_host_network,
    labels_of,
    name_of,
    namespace_of,
    pod_ip,
    pod_node,
)
from labkit.model.selectors import selector_matches

MAX_ENDPOINT_ID = 4095
"""Endpoint IDs are 16-bit and allocated from 1 to 4095 (``pkg/endpointmanager/idallocator``)."""
SERVICE_SLICE_LABEL = "kubernetes.io/service-name"
LABEL_SOURCES = ("k8s:", "any:")
NAMESPACE_LABEL = "io.kubernetes.pod.namespace"


@dataclass(frozen=True)
class Frontend:
    """One load-balancer frontend (``10.96.0.10:53/UDP``), its type and backends (``ip:port/P``)."""

    address: str
    type: str
    backends: tuple[str, ...]


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of the agent's node: a pod (or the host), its identity and labels, address,
    and whether policy is enforced on its ingress and egress."""

    id: int
    ingress: bool
    egress: bool
    identity: int
    labels: tuple[str, ...]
    ipv4: str
    state: str = "ready"


def _backends(
    service: Mapping[str, Any], port: Mapping[str, Any], slices: Sequence[Any]
) -> tuple[str, ...]:
    name = port.get("name") or None
    proto = str(port.get("protocol") or "TCP")
    out = []
    for ep in endpoints_from_slices(slices):
        if not ep.ready:
            continue
        for p in ep.ports:
            if p.name == name and p.protocol == proto:
                out.append(f"{ep.ip}:{p.number}/{proto}")
    return tuple(out)


def frontends(
    services: Iterable[Mapping[str, Any]], slices: Iterable[Mapping[str, Any]], node_ip: str
) -> list[Frontend]:
    """The frontends an agent on the node at ``node_ip`` programs, as the kube-proxy replacement
    does (``Documentation/network/kubernetes/kubeproxy-free.rst``): each ClusterIP port; for a
    node port, ``0.0.0.0:port`` and the node's own address; load-balancer and external IPs."""
    by_service: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for sl in slices:
        owner = labels_of(sl).get(SERVICE_SLICE_LABEL)
        if owner:
            by_service.setdefault((namespace_of(sl), owner), []).append(sl)
    out: list[Frontend] = []
    for svc in services:
        spec = svc.get("spec") or {}
        cluster_ip = spec.get("clusterIP")
        if spec.get("type") == "ExternalName" or not cluster_ip or cluster_ip == "None":
            continue
        mine = by_service.get((namespace_of(svc), name_of(svc)), [])
        ingress = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
        for port in spec.get("ports") or []:
            proto = str(port.get("protocol") or "TCP")
            backends = _backends(svc, port, mine)
            number = port.get("port")
            out.append(Frontend(f"{cluster_ip}:{number}/{proto}", "ClusterIP", backends))
            if port.get("nodePort"):
                for addr in ("0.0.0.0", node_ip):
                    out.append(Frontend(f"{addr}:{port['nodePort']}/{proto}", "NodePort", backends))
            for entry in ingress:
                if entry.get("ip"):
                    out.append(
                        Frontend(f"{entry['ip']}:{number}/{proto}", "LoadBalancer", backends)
                    )
            for ip in spec.get("externalIPs") or []:
                out.append(Frontend(f"{ip}:{number}/{proto}", "ExternalIPs", backends))
    return out


def endpoint_id(namespace: str, name: str) -> int:
    """A pod's endpoint ID, stable for its name (Cilium hands out free IDs; a hash here)."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return 2 + int.from_bytes(digest[:4], "big") % (MAX_ENDPOINT_ID - 1)


def _plain(selector: Mapping[str, Any] | None, namespace: str) -> Mapping[str, Any] | None:
    """An endpointSelector as a pod label selector: label sources stripped, the namespace label
    (only ever matching the policy's own namespace) checked and removed."""
    if selector is None:
        return None
    labels: dict[str, Any] = {}
    for key, value in (selector.get("matchLabels") or {}).items():
        for source in LABEL_SOURCES:
            key = key.removeprefix(source)
        if key == NAMESPACE_LABEL:
            if value != namespace:
                return {"matchLabels": {NAMESPACE_LABEL: "\0"}}
            continue
        labels[key] = value
    expressions = [
        {**e, "key": str(e.get("key", "")).removeprefix("k8s:").removeprefix("any:")}
        for e in selector.get("matchExpressions") or []
    ]
    return {"matchLabels": labels, "matchExpressions": expressions}


def selects(policy: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """Whether a NetworkPolicy (podSelector) or CiliumNetworkPolicy (endpointSelector) selects
    the pod; both only in their own namespace."""
    ns = namespace_of(policy)
    if ns != namespace_of(pod):
        return False
    spec = policy.get("spec") or {}
    if policy.get("kind") == "CiliumNetworkPolicy":
        return selector_matches(_plain(spec.get("endpointSelector"), ns), labels_of(pod))
    return selector_matches(spec.get("podSelector") or {}, labels_of(pod))


def enforced(policy: Mapping[str, Any]) -> tuple[bool, bool]:
    """Which directions a selecting policy enforces: a NetworkPolicy's policyTypes (Ingress by
    default, Egress when it has egress rules), a CiliumNetworkPolicy's ingress and egress
    sections (deny rules included)."""
    spec = policy.get("spec") or {}
    if policy.get("kind") == "CiliumNetworkPolicy":
        return (
            "ingress" in spec or "ingressDeny" in spec,
            "egress" in spec or "egressDeny" in spec,
        )
    types = spec.get("policyTypes") or (
        ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
    )
    return "Ingress" in types, "Egress" in types


def endpoints(
    pods: Iterable[Mapping[str, Any]], policies: Sequence[Mapping[str, Any]], node: str
) -> list[Endpoint]:
    """The endpoints of ``node``'s agent, by ID: the host (``reserved:host``, identity 1) and
    every pod on the node that is not on the host network."""
    out = [Endpoint(1, False, False, HOST, ("reserved:host",), "")]
    for pod in pods:
        if pod_node(pod) != node or is_host_network(pod) or not pod_ip(pod):
            continue
        ingress = egress = False
        for policy in policies:
            if selects(policy, pod):
                i, e = enforced(policy)
                ingress, egress = ingress or i, egress or e
        ns = namespace_of(pod)
        labels = identity_labels(
            ns, labels_of(pod), (pod.get("spec") or {}).get("serviceAccountName", "")
        )
        out.append(
            Endpoint(
                endpoint_id(ns, name_of(pod)),
                ingress,
                egress,
                identity_of(labels),
                tuple(labels),
                str(pod_ip(pod)),
            )
        )
    return sorted(out, key=lambda e: e.id)
