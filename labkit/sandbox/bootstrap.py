"""What a fresh Kind cluster holds, for the sandbox: three nodes and the system objects.

Pure data: the nodes follow the team's address plan (172.18.0.2-4, one pod block per node), and
the manifests are those a Kind cluster with Flannel or Calico shows in ``kubectl get -A``
(:mod:`labkit.sandbox.system`, one module per family of objects).
"""

from __future__ import annotations

import json
from typing import Any

from labkit.errors import LabError
from labkit.sandbox import naming
from labkit.sandbox.cluster.world import KUBERNETES_VERSION, object_uid
from labkit.sandbox.fabric import SANDBOX_CNIS
from labkit.sandbox.fabric_cilium import cilium_host_ip
from labkit.sandbox.system.addons import coredns_manifests, ingress_manifests
from labkit.sandbox.system.cilium import cilium_manifests
from labkit.sandbox.system.cni import calico_manifests, flannel_manifests
from labkit.sandbox.system.control_plane import control_plane_pods, kube_proxy_manifests
from labkit.sandbox.system.core import core_manifests

NODE_IPS = ("172.18.0.2", "172.18.0.3", "172.18.0.4")
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def check_cni(cni: str) -> str:
    """Refuse a CNI the sandbox cannot emulate, saying what to use instead."""
    if cni not in SANDBOX_CNIS:
        raise LabError(
            f"The sandbox has no CNI called {cni!r}.",
            f"Choose one of: {', '.join(SANDBOX_CNIS)} (e.g. --cni calico).",
        )
    return cni


def kind_nodes(lab_name: str, cni: str) -> list[dict[str, Any]]:
    """The three Kind-like nodes (control plane, worker, worker2) as NodeSpec fields."""
    check_cni(cni)
    nodes = []
    for index, (suffix, role) in enumerate(
        (("control-plane", "control-plane"), ("worker", "worker"), ("worker2", "worker"))
    ):
        name = f"{lab_name}-{suffix}"
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
        if cni in ("flannel", "cilium"):
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


def node_object(
    lab_name: str, cni: str, index: int, node: dict[str, Any], created: str
) -> dict[str, Any]:
    """A Node as ``kubectl get node -o json`` shows it on Kind (addresses, podCIDR, taints,
    versions); ``created`` is when the lab was made, the RFC 3339 time the node carries."""
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
    elif cni == "cilium":
        annotations["network.cilium.io/ipv4-cilium-host"] = cilium_host_ip(node["pod_cidr"])
        annotations["network.cilium.io/ipv4-pod-cidr"] = node["pod_cidr"]
    spec: dict[str, Any] = {
        "podCIDR": node["pod_cidr"],
        "podCIDRs": [node["pod_cidr"]],
        "providerID": f"kind://docker/{lab_name}/{node['name']}",
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
            "uid": object_uid(lab_name, "Node", None, node["name"]),
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


def system_manifests(lab_name: str, cni: str, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every object a fresh Kind cluster of this CNI holds, in the order they are created."""
    check_cni(cni)
    control_plane_node = next(n for n in nodes if n["role"] == "control-plane")
    return [
        *core_manifests(),
        *control_plane_pods(lab_name, cni, control_plane_node),
        *(kube_proxy_manifests(cni) if cni != "cilium" else []),
        *{"flannel": flannel_manifests, "calico": calico_manifests, "cilium": cilium_manifests}[
            cni
        ](),
        *coredns_manifests(),
        *ingress_manifests(),
    ]
