"""The cluster-critical add-ons (CoreDNS, Calico's controllers) share one scheduling block."""

from __future__ import annotations

from labkit.sandbox.system.addons import coredns_manifests
from labkit.sandbox.system.cni import calico_manifests
from labkit.sandbox.system.core import cluster_critical


def _pod_spec(docs, name):
    deployment = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name
    )
    return deployment["spec"]["template"]["spec"]


def test_cluster_critical_tolerates_the_control_plane_and_runs_as_its_account():
    spec = cluster_critical("coredns")
    assert spec["priorityClassName"] == "system-cluster-critical"
    assert spec["serviceAccountName"] == "coredns"
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert {"key": "CriticalAddonsOnly", "operator": "Exists"} in spec["tolerations"]
    assert {
        "key": "node-role.kubernetes.io/control-plane",
        "effect": "NoSchedule",
    } in spec["tolerations"]


def test_coredns_and_calico_controllers_use_it():
    coredns = _pod_spec(coredns_manifests(), "coredns")
    controllers = _pod_spec(calico_manifests(), "calico-kube-controllers")
    assert coredns.items() >= cluster_critical("coredns").items()
    assert coredns["dnsPolicy"] == "Default"
    assert controllers.items() >= cluster_critical("calico-kube-controllers").items()
