"""The add-ons of a fresh cluster: CoreDNS behind the ``kube-dns`` Service, and the lab's
ingress controller behind a LoadBalancer Service with its IngressClass."""

from __future__ import annotations

from typing import Any

from labkit.sandbox.cluster.statuses import INGRESS_CLASS
from labkit.sandbox.system.core import cluster_critical, namespace, service_account

COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.14.2"
"""The CoreDNS kubeadm installs with Kubernetes 1.36 (1.35 shipped v1.13.1)."""
INGRESS_IMAGE = "labkit/ingress-controller:0.1"

COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
"""


def coredns_manifests() -> list[dict[str, Any]]:
    """CoreDNS as kubeadm installs it: ServiceAccount, Corefile, Deployment, ``kube-dns``."""
    labels = {"k8s-app": "kube-dns"}
    return [
        service_account("coredns", "kube-system"),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {"Corefile": COREFILE},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        **cluster_critical("coredns"),
                        "dnsPolicy": "Default",
                        "containers": [
                            {
                                "name": "coredns",
                                "image": COREDNS_IMAGE,
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                    {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
                                ],
                                "volumeMounts": [
                                    {
                                        "name": "config-volume",
                                        "mountPath": "/etc/coredns",
                                        "readOnly": True,
                                    }
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "config-volume",
                                "configMap": {
                                    "name": "coredns",
                                    "items": [{"key": "Corefile", "path": "Corefile"}],
                                },
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kube-dns",
                "namespace": "kube-system",
                "labels": {
                    "k8s-app": "kube-dns",
                    "kubernetes.io/cluster-service": "true",
                    "kubernetes.io/name": "CoreDNS",
                },
                "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
            },
            "spec": {
                "clusterIP": "10.96.0.10",
                "selector": labels,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
                ],
            },
        },
    ]


def ingress_manifests() -> list[dict[str, Any]]:
    """The lab's ingress controller: namespace, Deployment on the ``ingress-ready`` node,
    LoadBalancer Service and the default IngressClass, named as cloud-provider-kind's on Kind."""
    labels = {"app.kubernetes.io/name": "ingress-controller", "app.kubernetes.io/part-of": "labkit"}
    selector = {"app.kubernetes.io/name": "ingress-controller"}
    return [
        namespace("ingress-system", {"app.kubernetes.io/part-of": "labkit"}),
        service_account("ingress-controller", "ingress-system"),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "ingress-controller",
                "namespace": "ingress-system",
                "labels": labels,
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "ingress-controller",
                        "nodeSelector": {"ingress-ready": "true"},
                        "tolerations": [
                            {
                                "key": "node-role.kubernetes.io/control-plane",
                                "operator": "Exists",
                                "effect": "NoSchedule",
                            }
                        ],
                        "containers": [
                            {
                                "name": "controller",
                                "image": INGRESS_IMAGE,
                                "args": [f"--ingress-class={INGRESS_CLASS}"],
                                "ports": [
                                    {"name": "http", "containerPort": 80, "protocol": "TCP"},
                                    {"name": "https", "containerPort": 443, "protocol": "TCP"},
                                ],
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "ingress-controller",
                "namespace": "ingress-system",
                "labels": labels,
            },
            "spec": {
                "type": "LoadBalancer",
                "selector": selector,
                "ports": [
                    {"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"},
                    {"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"},
                ],
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {
                "name": INGRESS_CLASS,
                "labels": labels,
                "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"},
            },
            "spec": {"controller": "labkit.dev/ingress-controller"},
        },
    ]
