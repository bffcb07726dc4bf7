"""The control plane of a fresh Kind cluster: the static pods of etcd, the API server, the
controller manager and the scheduler on the control-plane node, and kube-proxy's DaemonSet."""

from __future__ import annotations

from typing import Any

from labkit.sandbox.cluster.world import KUBERNETES_VERSION, object_uid
from labkit.sandbox.fabric import CLUSTER_CIDRS
from labkit.sandbox.system.core import service_account

ETCD_IMAGE = "registry.k8s.io/etcd:3.6.6-0"


def _static_pod(
    lab_name: str,
    component: str,
    node: dict[str, Any],
    image: str,
    command: list[str],
    ports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": component, "image": image, "command": command}
    if ports:
        container["ports"] = ports
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{component}-{node['name']}",
            "namespace": "kube-system",
            "labels": {"component": component, "tier": "control-plane"},
            "annotations": {"kubernetes.io/config.source": "file"},
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "name": node["name"],
                    "uid": object_uid(lab_name, "Node", None, node["name"]),
                    "controller": True,
                }
            ],
        },
        "spec": {
            "nodeName": node["name"],
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "tolerations": [{"operator": "Exists", "effect": "NoExecute"}],
            "containers": [container],
        },
    }


def control_plane_pods(lab_name: str, cni: str, cp: dict[str, Any]) -> list[dict[str, Any]]:
    """The static pods kubeadm runs on the control-plane node ``cp`` (host network, owned by the
    Node)."""
    ip = cp["internal_ip"]
    version = KUBERNETES_VERSION
    return [
        _static_pod(
            lab_name,
            "etcd",
            cp,
            ETCD_IMAGE,
            [
                "etcd",
                f"--advertise-client-urls=https://{ip}:2379",
                f"--listen-client-urls=https://127.0.0.1:2379,https://{ip}:2379",
                "--data-dir=/var/lib/etcd",
            ],
        ),
        _static_pod(
            lab_name,
            "kube-apiserver",
            cp,
            f"registry.k8s.io/kube-apiserver:{version}",
            [
                "kube-apiserver",
                f"--advertise-address={ip}",
                "--secure-port=6443",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--authorization-mode=Node,RBAC",
            ],
            [{"name": "https", "containerPort": 6443, "protocol": "TCP"}],
        ),
        _static_pod(
            lab_name,
            "kube-controller-manager",
            cp,
            f"registry.k8s.io/kube-controller-manager:{version}",
            [
                "kube-controller-manager",
                "--allocate-node-cidrs=true",
                f"--cluster-cidr={CLUSTER_CIDRS[cni]}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--bind-address=127.0.0.1",
            ],
        ),
        _static_pod(
            lab_name,
            "kube-scheduler",
            cp,
            f"registry.k8s.io/kube-scheduler:{version}",
            ["kube-scheduler", "--bind-address=127.0.0.1", "--leader-elect=true"],
        ),
    ]


KUBE_PROXY_IMAGE = "registry.k8s.io/kube-proxy"
"""kube-proxy's image, without its tag (the tag is the cluster's Kubernetes version)."""


def kube_proxy_manifests(cni: str) -> list[dict[str, Any]]:
    """kube-proxy in iptables mode: its ServiceAccount, ConfigMap and host-network DaemonSet."""
    config = "\n".join(
        [
            "apiVersion: kubeproxy.config.k8s.io/v1alpha1",
            "kind: KubeProxyConfiguration",
            f"clusterCIDR: {CLUSTER_CIDRS[cni]}",
            "mode: iptables",
            "iptables:",
            "  masqueradeAll: false",
            "  syncPeriod: 30s",
            "",
        ]
    )
    labels = {"k8s-app": "kube-proxy"}
    return [
        service_account("kube-proxy", "kube-system"),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "kube-proxy",
                "namespace": "kube-system",
                "labels": {"app": "kube-proxy"},
            },
            "data": {"config.conf": config},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": labels},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "hostNetwork": True,
                        "priorityClassName": "system-node-critical",
                        "serviceAccountName": "kube-proxy",
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [
                            {
                                "name": "kube-proxy",
                                "image": f"{KUBE_PROXY_IMAGE}:{KUBERNETES_VERSION}",
                                "command": [
                                    "/usr/local/bin/kube-proxy",
                                    "--config=/var/lib/kube-proxy/config.conf",
                                    "--hostname-override=$(NODE_NAME)",
                                ],
                                "env": [
                                    {
                                        "name": "NODE_NAME",
                                        "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                                    }
                                ],
                                "securityContext": {"privileged": True},
                            }
                        ],
                    },
                },
            },
        },
    ]
