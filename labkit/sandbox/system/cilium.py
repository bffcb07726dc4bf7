"""Cilium's objects in a fresh cluster, as its Helm chart installs them on Kind with our values
(``ipam.mode=kubernetes``, ``kubeProxyReplacement=true``): the ``cilium-config`` ConfigMap, the
``cilium`` and ``cilium-envoy`` DaemonSets and the ``cilium-operator`` Deployment,
in kube-system."""

from __future__ import annotations

from typing import Any

from labkit.sandbox.fabric_cilium import CILIUM_VXLAN_PORT
from labkit.sandbox.system.core import service_account

CILIUM_VERSION = "v1.20.0"
"""The Cilium release the Kind backend pins (``labkit.kind.pins.CILIUM_VERSION``)."""
OPERATOR_REPLICAS = 2
"""The chart's ``operator.replicas`` default."""

_NODE_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}
                    ]
                }
            ]
        }
    }
}


def cilium_config(kube_proxy_replacement: bool = True) -> dict[str, str]:
    """The ``cilium-config`` ConfigMap's settings the sandbox models (a subset of the chart's)."""
    return {
        "cluster-name": "default",
        "ipam": "kubernetes",
        "routing-mode": "tunnel",
        "tunnel-protocol": "vxlan",
        "tunnel-port": str(CILIUM_VXLAN_PORT),
        "kube-proxy-replacement": "true" if kube_proxy_replacement else "false",
        "enable-ipv4": "true",
        "enable-ipv6": "false",
        "enable-ipv4-masquerade": "true",
        "enable-bpf-masquerade": "false",
        "enable-policy": "default",
        "enable-hubble": "true",
        "k8s-require-ipv4-pod-cidr": "true",
    }


def _daemonset(name: str, labels: dict[str, str], container: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "kube-system", "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": labels["k8s-app"]}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "affinity": _NODE_AFFINITY,
                    "hostNetwork": True,
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": name,
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [container],
                },
            },
        },
    }


def cilium_manifests() -> list[dict[str, Any]]:
    """Cilium's ServiceAccounts, ConfigMap, agent and Envoy DaemonSets and operator."""
    agent_labels = {"k8s-app": "cilium", "app.kubernetes.io/name": "cilium-agent"}
    envoy_labels = {"k8s-app": "cilium-envoy", "app.kubernetes.io/name": "cilium-envoy"}
    operator_labels = {
        "io.cilium/app": "operator",
        "name": "cilium-operator",
        "app.kubernetes.io/name": "cilium-operator",
    }
    env = [
        {"name": "K8S_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "CILIUM_K8S_NAMESPACE", "value": "kube-system"},
    ]
    return [
        service_account("cilium", "kube-system"),
        service_account("cilium-envoy", "kube-system"),
        service_account("cilium-operator", "kube-system"),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cilium-config", "namespace": "kube-system"},
            "data": cilium_config(),
        },
        _daemonset(
            "cilium",
            agent_labels,
            {
                "name": "cilium-agent",
                "image": f"quay.io/cilium/cilium:{CILIUM_VERSION}",
                "command": ["cilium-agent"],
                "args": ["--config-dir=/tmp/cilium/config-map"],
                "env": env,
                "securityContext": {"privileged": True},
            },
        ),
        _daemonset(
            "cilium-envoy",
            envoy_labels,
            {
                "name": "cilium-envoy",
                "image": "quay.io/cilium/cilium-envoy",
                "command": ["/usr/bin/cilium-envoy-starter"],
            },
        ),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "cilium-operator",
                "namespace": "kube-system",
                "labels": operator_labels,
            },
            "spec": {
                "replicas": OPERATOR_REPLICAS,
                "selector": {
                    "matchLabels": {"io.cilium/app": "operator", "name": "cilium-operator"}
                },
                "template": {
                    "metadata": {"labels": operator_labels},
                    "spec": {
                        "hostNetwork": True,
                        "priorityClassName": "system-cluster-critical",
                        "serviceAccountName": "cilium-operator",
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [
                            {
                                "name": "cilium-operator",
                                "image": f"quay.io/cilium/operator-generic:{CILIUM_VERSION}",
                                "command": ["cilium-operator-generic"],
                                "args": ["--config-dir=/tmp/cilium/config-map"],
                                "env": env,
                            }
                        ],
                    },
                },
            },
        },
    ]
