"""Issue 18 on a real sandbox lab: a Deployment scaled to 330 replicas fills both workers to
kubelet's max-pods (Calico claiming further /26 blocks, routed on every node), the rest pend with
the scheduler's message, and the Service reaches only Running pods. Lab ``tfull``, Calico."""

from __future__ import annotations

import collections
import os
import subprocess
import sys

import pytest

from labkit.sandbox import naming

pytestmark = pytest.mark.sandbox
LAB = "tfull"
W1, W2 = f"{LAB}-worker", f"{LAB}-worker2"
REPLICAS = 330
AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
MESSAGE = (
    "0/3 nodes are available: "
    "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
    "2 Too many pods. preemption: 0/3 nodes are available: "
    "1 Preemption is not helpful for scheduling, "
    "2 No preemption victims found for incoming pod."
)


def _web(replicas: int) -> list[dict]:
    labels = {"app": "web"}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": AGNHOST,
                                "args": ["netexec", "--http-port=8080"],
                                "ports": [{"containerPort": 8080}],
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]


@pytest.fixture(scope="module")
def full_lab():
    from labkit.sandbox import backend

    if os.geteuid() != 0:
        pytest.skip("sandbox labs need root")
    backend.down(LAB)
    lab = backend.up(LAB, "calico", quiet=True)
    try:
        lab.apply(_web(REPLICAS))
        yield lab
    finally:
        backend.down(LAB)


def test_workers_fill_to_max_pods_and_the_rest_pend_with_the_schedulers_message(full_lab):
    """kube-scheduler noderesources/fit.go fitsRequest ("Too many pods" once
    ``len(nodeInfo.Pods)+1 > allowedPodNumber``, kubelet's default max-pods 110) and
    framework/types.go FitError.Error() with preemption.go's per-node preemption reasons."""
    pods = full_lab.get("pods", namespace=None)
    per_node = collections.Counter(p["spec"].get("nodeName") for p in pods)
    assert per_node[W1] == per_node[W2] == 110
    web = [p for p in pods if p["metadata"]["name"].startswith("web-")]
    pending = [p for p in web if p["status"]["phase"] == "Pending"]
    running = [p for p in web if p["status"]["phase"] == "Running"]
    assert len(web) == REPLICAS and len(running) + len(pending) == REPLICAS
    assert len(running) > 2 * 64, "Calico took a second block on each worker"
    for pod in pending:
        cond = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
        assert cond["message"] == MESSAGE
    shown = subprocess.run(
        [sys.executable, "-m", "labkit.cli", "kubectl", "--name", LAB, "get", "pods"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert sum(" Pending " in line for line in shown.stdout.splitlines()) == len(pending)


def test_every_running_pod_is_wired_and_reachable_across_blocks(full_lab):
    """Felix programs a blackhole per affine block on its node and a route per block on the
    others (felix/dataplane/linux/route_mgr.go, protocol 80), so a pod of a worker's second
    block answers from the other worker."""
    pods = full_lab.get("pods", namespace="default", selector={"app": "web"})
    on_w1 = [p for p in pods if p["spec"].get("nodeName") == W1]
    client = next(p for p in pods if p["spec"].get("nodeName") == W2)
    target = max(on_w1, key=lambda p: tuple(int(x) for x in p["status"]["podIP"].split(".")))
    assert target["status"]["podIP"].startswith("192.168.20.")
    assert int(target["status"]["podIP"].split(".")[3]) >= 64, "an address of the second block"
    probe = full_lab.probe(
        f"default/{client['metadata']['name']}", target["status"]["podIP"], 8080, timeout=2.0
    )
    assert probe.ok, probe.detail
    routes = full_lab.node_exec(W2, ["ip", "route", "show", "proto", "80"]).stdout
    assert "192.168.20.64/26 via 172.18.0.3" in routes


def test_the_service_reaches_only_running_pods(full_lab):
    """The EndpointSlice controller lists only pods with an address (endpointslice
    reconciler: pods without status.podIP are skipped); kube-proxy balances over them."""
    pods = full_lab.get("pods", namespace="default", selector={"app": "web"})
    running = {p["metadata"]["name"] for p in pods if p["status"]["phase"] == "Running"}
    svc = full_lab.get("services", "web", namespace="default")[0]
    client = next(iter(sorted(running)))
    probes = full_lab.probe_many(
        [(f"default/{client}", svc["spec"]["clusterIP"], 80)] * 40, timeout=2.0
    )
    assert all(p.ok for p in probes), [p.detail for p in probes if not p.ok]
    assert {p.served_by for p in probes} <= running
    assert len({p.served_by for p in probes}) > 1


def test_scaling_back_removes_every_pod_namespace(full_lab):
    """A ReplicaSet scaling down deletes unscheduled pods first (controller.ActivePods order);
    the pods' namespaces go with them."""
    full_lab.apply(_web(3))
    pods = full_lab.get("pods", namespace="default", selector={"app": "web"})
    assert len(pods) == 3 and all(p["status"]["phase"] == "Running" for p in pods)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    present = {line.split()[0] for line in listed.splitlines() if line.strip()}
    pod_namespaces = {
        naming.pod_netns(LAB, p["metadata"]["namespace"], p["metadata"]["name"])
        for p in full_lab.get("pods", namespace=None)
        if not p["spec"].get("hostNetwork")
    }
    assert {n for n in present if n.startswith(naming.lab_prefix(LAB) + "p-")} == pod_namespaces
