"""What a fresh Kind cluster holds, for the sandbox: three nodes and the system objects.

Pure data: the nodes follow the team's address plan (172.18.0.2-4, one pod block per node), and
the manifests are those a Kind cluster with Flannel or Calico shows in ``kubectl get -A``: static
control-plane pods, kube-proxy, the CNI's own workloads, CoreDNS with the ``kube-dns`` Service,
the ``kubernetes`` Service, and the lab's ingress controller behind a LoadBalancer Service.
"""

from __future__ import annotations

import json
from typing import Any

from labkit.errors import LabError
from labkit.sandbox import naming
from labkit.sandbox.controllers import EPOCH, KUBERNETES_VERSION, object_uid

SANDBOX_CNIS = ("flannel", "calico")
COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.14.2"
"""The CoreDNS kubeadm installs with Kubernetes 1.36 (1.35 shipped v1.13.1)."""
ETCD_IMAGE = "registry.k8s.io/etcd:3.6.6-0"
FLANNEL_IMAGE = "ghcr.io/flannel-io/flannel:v0.28.9"
CALICO_VERSION = "v3.32.1"
TIGERA_OPERATOR_IMAGE = "quay.io/tigera/operator:v1.42.3"
INGRESS_IMAGE = "labkit/ingress-controller:0.1"
NODE_IPS = ("172.18.0.2", "172.18.0.3", "172.18.0.4")
CLUSTER_CIDRS = {"flannel": "10.244.0.0/16", "calico": "192.168.0.0/16"}
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def check_cni(cni: str) -> str:
    """Refuse a CNI the sandbox cannot emulate, saying what to use instead."""
    if cni == "cilium":
        raise LabError(
            "Cilium's eBPF data plane is not modelled by the sandbox.",
            "Use the Kind backend for Cilium (`labkit up --backend kind --cni cilium`), or pick "
            "--cni flannel or --cni calico for the sandbox.",
        )
    if cni not in SANDBOX_CNIS:
        raise LabError(
            f"The sandbox has no CNI called {cni!r}.",
            f"Choose one of: {', '.join(SANDBOX_CNIS)} (e.g. --cni calico).",
        )
    return cni


def kind_nodes(lab: str, cni: str) -> list[dict[str, Any]]:
    """The three Kind-like nodes (control plane, worker, worker2) as NodeSpec fields."""
    check_cni(cni)
    nodes = []
    for index, (suffix, role) in enumerate(
        (("control-plane", "control-plane"), ("worker", "worker"), ("worker2", "worker"))
    ):
        name = f"{lab}-{suffix}"
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
        }
        if role == "control-plane":
            labels.update({"node-role.kubernetes.io/control-plane": "", "ingress-ready": "true"})
        else:
            labels["labkit.dev/pool"] = "apps" if index == 1 else "data"
        if cni == "flannel":
            pod_cidr = block = f"10.244.{index}.0/24"
        else:
            pod_cidr, block = f"192.168.{index}.0/24", f"192.168.{10 * (index + 1)}.0/26"
        nodes.append(
            {
                "name": name,
                "role": role,
                "internal_ip": NODE_IPS[index],
                "pod_cidr": pod_cidr,
                "ipam_block": block,
                "labels": labels,
                "taints": [dict(CONTROL_PLANE_TAINT)] if role == "control-plane" else [],
            }
        )
    return nodes


def node_object(lab: str, cni: str, index: int, node: dict[str, Any]) -> dict[str, Any]:
    """A Node as ``kubectl get node -o json`` shows it on Kind (addresses, podCIDR, taints, versions)."""
    created = EPOCH.strftime("%Y-%m-%dT%H:%M:%SZ")
    annotations = {
        "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///run/containerd/containerd.sock",
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }
    if cni == "flannel":
        annotations.update(
            {
                "flannel.alpha.coreos.com/backend-type": "vxlan",
                "flannel.alpha.coreos.com/backend-data": json.dumps(
                    {"VNI": 1, "VtepMAC": naming.vtep_mac(index)}, separators=(",", ":")
                ),
                "flannel.alpha.coreos.com/kube-subnet-manager": "true",
                "flannel.alpha.coreos.com/public-ip": node["internal_ip"],
            }
        )
    elif cni == "calico":
        annotations["projectcalico.org/IPv4Address"] = f"{node['internal_ip']}/16"
    spec: dict[str, Any] = {
        "podCIDR": node["pod_cidr"],
        "podCIDRs": [node["pod_cidr"]],
        "providerID": f"kind://docker/{lab}/{node['name']}",
    }
    if node.get("taints"):
        spec["taints"] = [dict(t) for t in node["taints"]]

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": created,
            "lastTransitionTime": created,
        }

    resources = {"cpu": "2", "ephemeral-storage": "30Gi", "memory": "4Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node["name"],
            "uid": object_uid(lab, "Node", None, node["name"]),
            "resourceVersion": "1",
            "creationTimestamp": created,
            "labels": dict(node.get("labels") or {}),
            "annotations": annotations,
        },
        "spec": spec,
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": node["internal_ip"]},
                {"type": "Hostname", "address": node["name"]},
            ],
            "allocatable": dict(resources),
            "capacity": dict(resources),
            "conditions": [
                condition(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                condition(
                    "DiskPressure",
                    "False",
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                ),
                condition(
                    "PIDPressure",
                    "False",
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                ),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": KUBERNETES_VERSION,
                "kubeProxyVersion": KUBERNETES_VERSION,
                "containerRuntimeVersion": "labkit-sandbox://0.1",
                "osImage": "labkit sandbox (Linux network namespaces)",
            },
        },
    }


# --------------------------------------------------------------------------- system manifests


def _namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _service_account(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
    }


def _static_pod(
    lab: str,
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
                    "uid": object_uid(lab, "Node", None, node["name"]),
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


def _control_plane(lab: str, cni: str, cp: dict[str, Any]) -> list[dict[str, Any]]:
    ip = cp["internal_ip"]
    version = KUBERNETES_VERSION
    return [
        _static_pod(
            lab,
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
            lab,
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
            lab,
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
            lab,
            "kube-scheduler",
            cp,
            f"registry.k8s.io/kube-scheduler:{version}",
            ["kube-scheduler", "--bind-address=127.0.0.1", "--leader-elect=true"],
        ),
    ]


def _kube_proxy(cni: str) -> list[dict[str, Any]]:
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
        _service_account("kube-proxy", "kube-system"),
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
                                "image": f"registry.k8s.io/kube-proxy:{KUBERNETES_VERSION}",
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


def _flannel() -> list[dict[str, Any]]:
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
        _namespace(
            "kube-flannel",
            {"k8s-app": "flannel", "pod-security.kubernetes.io/enforce": "privileged"},
        ),
        _service_account("flannel", "kube-flannel"),
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


def _calico() -> list[dict[str, Any]]:
    operator_labels = {"name": "tigera-operator", "k8s-app": "tigera-operator"}
    node_labels = {"k8s-app": "calico-node", "app.kubernetes.io/name": "calico-node"}
    kc_labels = {
        "k8s-app": "calico-kube-controllers",
        "app.kubernetes.io/name": "calico-kube-controllers",
    }
    privileged = {"pod-security.kubernetes.io/enforce": "privileged"}
    datastore = [{"name": "DATASTORE_TYPE", "value": "kubernetes"}]
    return [
        _namespace("tigera-operator", {"name": "tigera-operator", **privileged}),
        _service_account("tigera-operator", "tigera-operator"),
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
        _namespace("calico-system", {"name": "calico-system", **privileged}),
        _service_account("calico-node", "calico-system"),
        _service_account("calico-kube-controllers", "calico-system"),
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
                                "env": datastore
                                + [
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
                        "priorityClassName": "system-cluster-critical",
                        "serviceAccountName": "calico-kube-controllers",
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "tolerations": [
                            {"key": "CriticalAddonsOnly", "operator": "Exists"},
                            {
                                "key": "node-role.kubernetes.io/control-plane",
                                "effect": "NoSchedule",
                            },
                        ],
                        "containers": [
                            {
                                "name": "calico-kube-controllers",
                                "image": f"quay.io/calico/kube-controllers:{CALICO_VERSION}",
                                "env": datastore
                                + [{"name": "ENABLED_CONTROLLERS", "value": "node,loadbalancer"}],
                            }
                        ],
                    },
                },
            },
        },
    ]


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
    cache 30
    loop
    reload
    loadbalance
}
"""


def _coredns() -> list[dict[str, Any]]:
    labels = {"k8s-app": "kube-dns"}
    return [
        _service_account("coredns", "kube-system"),
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
                        "priorityClassName": "system-cluster-critical",
                        "serviceAccountName": "coredns",
                        "dnsPolicy": "Default",
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "tolerations": [
                            {"key": "CriticalAddonsOnly", "operator": "Exists"},
                            {
                                "key": "node-role.kubernetes.io/control-plane",
                                "effect": "NoSchedule",
                            },
                        ],
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


def _ingress() -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": "ingress-controller", "app.kubernetes.io/part-of": "labkit"}
    selector = {"app.kubernetes.io/name": "ingress-controller"}
    return [
        _namespace("ingress-system", {"app.kubernetes.io/part-of": "labkit"}),
        _service_account("ingress-controller", "ingress-system"),
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
                                "args": ["--ingress-class=labkit"],
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
                "name": "labkit",
                "labels": labels,
                "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"},
            },
            "spec": {"controller": "labkit.dev/ingress-controller"},
        },
    ]


def system_manifests(lab: str, cni: str, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every object a fresh Kind cluster of this CNI holds, in the order they are created."""
    check_cni(cni)
    control_plane = next(n for n in nodes if n["role"] == "control-plane")
    docs: list[dict[str, Any]] = [
        _namespace(n) for n in ("default", "kube-node-lease", "kube-public", "kube-system")
    ]
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
    docs += _control_plane(lab, cni, control_plane)
    docs += _kube_proxy(cni)
    docs += _flannel() if cni == "flannel" else _calico()
    docs += _coredns()
    docs += _ingress()
    return docs
