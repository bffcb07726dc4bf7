"""The CNI's own objects in a fresh cluster: Flannel's DaemonSet and ConfigMap, or Calico as the
Tigera operator installs it (operator, calico-node, calico-kube-controllers)."""

from __future__ import annotations

import json
from typing import Any

from labkit.sandbox.fabric import CLUSTER_CIDRS
from labkit.sandbox.system.core import cluster_critical, namespace, service_account

FLANNEL_IMAGE = "ghcr.io/flannel-io/flannel:v0.28.9"
CALICO_VERSION = "v3.32.1"
TIGERA_OPERATOR_IMAGE = "quay.io/tigera/operator:v1.42.3"


def flannel_manifests() -> list[dict[str, Any]]:
    """Flannel in VXLAN mode: its namespace, ServiceAccount, ConfigMap and DaemonSet."""
    net_conf = json.dumps(
        {
            "Network": CLUSTER_CIDRS["flannel"],
            "EnableNFTables": False,
            "Backend": {"Type": "vxlan"},
        },
        indent=2,
    )
    cni_conf = json.dumps(
        {
            "name": "cbr0",
            "cniVersion": "0.3.1",
            "plugins": [
                {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )
    return [
        namespace(
            "kube-flannel",
            {"k8s-app": "flannel", "pod-security.kubernetes.io/enforce": "privileged"},
        ),
        service_account("flannel", "kube-flannel"),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "kube-flannel-cfg",
                "namespace": "kube-flannel",
                "labels": {"app": "flannel", "k8s-app": "flannel", "tier": "node"},
            },
            "data": {"cni-conf.json": cni_conf, "net-conf.json": net_conf},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {
                "name": "kube-flannel-ds",
                "namespace": "kube-flannel",
                "labels": {"app": "flannel", "k8s-app": "flannel", "tier": "node"},
            },
            "spec": {
                "selector": {"matchLabels": {"app": "flannel"}},
                "template": {
                    "metadata": {"labels": {"app": "flannel", "tier": "node"}},
                    "spec": {
                        "affinity": {
                            "nodeAffinity": {
                                "requiredDuringSchedulingIgnoredDuringExecution": {
                                    "nodeSelectorTerms": [
                                        {
                                            "matchExpressions": [
                                                {
                                                    "key": "kubernetes.io/os",
                                                    "operator": "In",
                                                    "values": ["linux"],
                                                }
                                            ]
                                        }
                                    ]
                                }
                            }
                        },
                        "hostNetwork": True,
                        "priorityClassName": "system-node-critical",
                        "serviceAccountName": "flannel",
                        "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
                        "containers": [
                            {
                                "name": "kube-flannel",
                                "image": FLANNEL_IMAGE,
                                "command": ["/opt/bin/flanneld"],
                                "args": ["--ip-masq", "--kube-subnet-mgr"],
                                "env": [
                                    {
                                        "name": "POD_NAME",
                                        "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                    },
                                    {
                                        "name": "POD_NAMESPACE",
                                        "valueFrom": {
                                            "fieldRef": {"fieldPath": "metadata.namespace"}
                                        },
                                    },
                                    {"name": "EVENT_QUEUE_DEPTH", "value": "5000"},
                                ],
                                "securityContext": {
                                    "privileged": False,
                                    "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]},
                                },
                            }
                        ],
                    },
                },
            },
        },
    ]


def calico_manifests() -> list[dict[str, Any]]:
    """Calico as the Tigera operator installs it: the operator, calico-node and
    calico-kube-controllers, with their namespaces and ServiceAccounts."""
    operator_labels = {"name": "tigera-operator", "k8s-app": "tigera-operator"}
    node_labels = {"k8s-app": "calico-node", "app.kubernetes.io/name": "calico-node"}
    kc_labels = {
        "k8s-app": "calico-kube-controllers",
        "app.kubernetes.io/name": "calico-kube-controllers",
    }
    privileged = {"pod-security.kubernetes.io/enforce": "privileged"}
    datastore = [{"name": "DATASTORE_TYPE", "value": "kubernetes"}]
    return [
        namespace("tigera-operator", {"name": "tigera-operator", **privileged}),
        service_account("tigera-operator", "tigera-operator"),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "tigera-operator",
                "namespace": "tigera-operator",
                "labels": operator_labels,
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"name": "tigera-operator"}},
                "template": {
                    "metadata": {"labels": operator_labels},
                    "spec": {
                        "hostNetwork": True,
                        "dnsPolicy": "ClusterFirstWithHostNet",
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "serviceAccountName": "tigera-operator",
                        "tolerations": [
                            {"operator": "Exists", "effect": "NoExecute"},
                            {"operator": "Exists", "effect": "NoSchedule"},
                        ],
                        "containers": [
                            {
                                "name": "tigera-operator",
                                "image": TIGERA_OPERATOR_IMAGE,
                                "command": ["operator"],
                                "env": [
                                    {"name": "WATCH_NAMESPACE", "value": ""},
                                    {"name": "OPERATOR_NAME", "value": "tigera-operator"},
                                ],
                            }
                        ],
                    },
                },
            },
        },
        namespace("calico-system", {"name": "calico-system", **privileged}),
        service_account("calico-node", "calico-system"),
        service_account("calico-kube-controllers", "calico-system"),
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {
                "name": "calico-node",
                "namespace": "calico-system",
                "labels": {"k8s-app": "calico-node"},
            },
            "spec": {
                "selector": {"matchLabels": {"k8s-app": "calico-node"}},
                "template": {
                    "metadata": {"labels": node_labels},
                    "spec": {
                        "hostNetwork": True,
                        "priorityClassName": "system-node-critical",
                        "serviceAccountName": "calico-node",
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "tolerations": [
                            {"key": "CriticalAddonsOnly", "operator": "Exists"},
                            {"operator": "Exists", "effect": "NoSchedule"},
                            {"operator": "Exists", "effect": "NoExecute"},
                        ],
                        "containers": [
                            {
                                "name": "calico-node",
                                "image": f"quay.io/calico/node:{CALICO_VERSION}",
                                "env": [
                                    *datastore,
                                    {
                                        "name": "NODENAME",
                                        "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                                    },
                                    {"name": "CLUSTER_TYPE", "value": "k8s,operator"},
                                ],
                                "securityContext": {"privileged": True},
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "calico-kube-controllers",
                "namespace": "calico-system",
                "labels": {"k8s-app": "calico-kube-controllers"},
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"k8s-app": "calico-kube-controllers"}},
                "template": {
                    "metadata": {"labels": kc_labels},
                    "spec": {
                        **cluster_critical("calico-kube-controllers"),
                        "containers": [
                            {
                                "name": "calico-kube-controllers",
                                "image": f"quay.io/calico/kube-controllers:{CALICO_VERSION}",
                                "env": [
                                    *datastore,
                                    {"name": "ENABLED_CONTROLLERS", "value": "node,loadbalancer"},
                                ],
                            }
                        ],
                    },
                },
            },
        },
    ]
