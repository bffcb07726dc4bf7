"""The objects every fresh cluster holds (its four namespaces and the ``kubernetes`` Service),
and the small builders the other families share (a Namespace, a ServiceAccount, a
cluster-critical add-on's scheduling)."""

from __future__ import annotations

from typing import Any


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Namespace, with labels when given."""
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def service_account(name: str, namespace: str) -> dict[str, Any]:
    """A ServiceAccount (each system workload runs as its own)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
    }


def cluster_critical(service_account: str) -> dict[str, Any]:
    """The scheduling part of a cluster-critical add-on's pod spec: its priority and service
    account, Linux nodes, and tolerations for the control plane and critical-add-on-only nodes."""
    return {
        "priorityClassName": "system-cluster-critical",
        "serviceAccountName": service_account,
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
        ],
    }


def core_manifests() -> list[dict[str, Any]]:
    """The namespaces kubeadm creates and the ``kubernetes`` Service in front of the API server."""
    docs = [namespace(n) for n in ("default", "kube-node-lease", "kube-public", "kube-system")]
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "clusterIP": "10.96.0.1",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            },
        }
    )
    return docs
