"""Recognise what runs in an existing Kind cluster (its CNI and kube-proxy mode) from its objects,
so `attach` works for a lab created in an earlier session."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from labkit.kind import hostcontainers, pins
from labkit.values import Capabilities

CNI_DAEMONSETS = {
    ("kube-flannel", "kube-flannel-ds"): "flannel",
    ("calico-system", "calico-node"): "calico",
    ("kube-system", "cilium"): "cilium",
}


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


def detect_cni(daemonsets: Sequence[Mapping[str, Any]]) -> str | None:
    """flannel / calico / cilium from the DaemonSet each installs; None when none is there."""
    for ds in daemonsets:
        cni = CNI_DAEMONSETS.get(_key(ds))
        if cni:
            return cni
    return None


LABKIT_NODE_POOLS = frozenset({"apps", "data"})
"""The `labkit.dev/pool` labels clusters/*.yaml give the two workers: the mark of a labkit lab."""


def made_by_labkit(nodes: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a cluster's nodes carry the worker labels every labkit Kind config sets."""
    pools = {
        ((node.get("metadata") or {}).get("labels") or {}).get("labkit.dev/pool") for node in nodes
    }
    return pools >= LABKIT_NODE_POOLS


def detect_kube_proxy_mode(
    daemonsets: Sequence[Mapping[str, Any]], kube_proxy_config: Mapping[str, Any] | None
) -> str:
    """``none`` without a kube-proxy DaemonSet, else the mode in its ConfigMap (empty means
    iptables)."""
    if ("kube-system", "kube-proxy") not in {_key(ds) for ds in daemonsets}:
        return "none"
    text = ((kube_proxy_config or {}).get("data") or {}).get("config.conf") or ""
    try:
        mode = (yaml.safe_load(text) or {}).get("mode") or ""
    except yaml.YAMLError:
        mode = ""
    return str(mode) or "iptables"


LOAD_BALANCER_MODEL = (
    "LoadBalancer addresses come from cloud-provider-kind: one Envoy proxy container per Service "
    "(status ipMode: Proxy) connects to the nodes' nodePorts, health-checked on the Service's "
    "healthCheckNodePort for externalTrafficPolicy: Local, so pods see the proxy's address, never "
    "the client's. The sandbox instead routes the address to a worker that DNATs it (ipMode: "
    "VIP), which keeps the client address under Local."
)


def cloud_provider_serves(state: str, ingress_classes: Sequence[Mapping[str, Any]]) -> bool:
    """Whether cloud-provider-kind serves this cluster: its container runs (``state`` from
    ``docker inspect``) and it has reached the cluster, creating its IngressClass."""
    names = {_key(c)[1] for c in ingress_classes}
    return state == "running" and pins.CLOUD_PROVIDER_KIND_INGRESS_CLASS in names


def capabilities(cni: str, kube_proxy_mode: str, load_balancer: bool = False) -> Capabilities:
    """What a Kind lab with this CNI really enforces and offers; ``load_balancer``: whether
    cloud-provider-kind serves it (LoadBalancer addresses and Ingress)."""
    if load_balancer:
        notes = [
            f"cloud-provider-kind (container {hostcontainers.CLOUD_PROVIDER}, shared by every "
            "Kind cluster on this host) gives LoadBalancer Services an address on the kind "
            "network and serves Ingresses of class "
            f"{pins.CLOUD_PROVIDER_KIND_INGRESS_CLASS}, the default class.",
            LOAD_BALANCER_MODEL,
        ]
    else:
        start = shlex.join(hostcontainers.cloud_provider_run_argv(hostcontainers.docker_socket()))
        notes = [
            "cloud-provider-kind does not serve this cluster, so LoadBalancer Services stay "
            "<pending> and Ingresses get no address. Start it (it finds the cluster within "
            f"30 s): {start}",
            LOAD_BALANCER_MODEL,
        ]
    if cni == "flannel":
        notes.insert(
            0,
            "Flannel does not enforce NetworkPolicy: the API server stores policies but no "
            "component applies them, so traffic they should block still flows. Use calico or "
            "cilium to see policies enforced.",
        )
    return Capabilities(
        network_policy=cni != "flannel",
        kube_proxy_mode=kube_proxy_mode,
        load_balancer=load_balancer,
        ingress=load_balancer,
        notes=tuple(notes),
        load_balancer_model=LOAD_BALANCER_MODEL,
    )
