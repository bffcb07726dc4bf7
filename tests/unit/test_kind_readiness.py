"""Readiness judgements used by the install waits, and the waits' kubectl equivalents."""

import pytest

from labkit.kind import readiness
from labkit.kind.actions import Run, Wait


def node(name, ready=True, message="kubelet is posting ready status"):
    status = "True" if ready else "False"
    return {
        "metadata": {"name": name},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": status, "message": message},
            ]
        },
    }


def test_nodes_ready():
    nodes = [node("lab-control-plane"), node("lab-worker"), node("lab-worker2")]
    assert readiness.nodes_pending(nodes, 3) == []


def test_nodes_not_ready_names_the_node_and_reason():
    nodes = [
        node("lab-control-plane"),
        node("lab-worker", False, "container runtime network not ready: NetworkPluginNotReady"),
    ]
    pending = readiness.nodes_pending(nodes, 3)
    assert pending[0] == "2 of 3 nodes registered"
    assert "lab-worker NotReady" in pending[1] and "NetworkPluginNotReady" in pending[1]


def test_node_without_conditions():
    assert readiness.nodes_pending([{"metadata": {"name": "n"}}], 1) == [
        "node n NotReady: no Ready condition yet"
    ]


@pytest.mark.parametrize(
    "status,pending",
    [
        ({"desiredNumberScheduled": 3, "numberReady": 3, "updatedNumberScheduled": 3}, False),
        ({"desiredNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3}, True),
        ({"desiredNumberScheduled": 3, "numberReady": 3, "updatedNumberScheduled": 2}, True),
        ({"desiredNumberScheduled": 0, "numberReady": 0}, True),
        ({}, True),
    ],
)
def test_daemonset(status, pending):
    ds = {"metadata": {"name": "calico-node"}, "status": status}
    assert bool(readiness.daemonset_pending(ds, "calico-system", "calico-node")) is pending


def test_daemonset_message_counts_pods():
    ds = {
        "metadata": {"name": "cilium"},
        "status": {"desiredNumberScheduled": 3, "numberReady": 1, "updatedNumberScheduled": 3},
    }
    assert readiness.daemonset_pending(ds, "kube-system", "cilium") == [
        "daemonset kube-system/cilium: 1/3 pods ready"
    ]
    assert readiness.daemonset_pending(None, "kube-flannel", "kube-flannel-ds") == [
        "daemonset kube-flannel/kube-flannel-ds not created yet"
    ]


@pytest.mark.parametrize(
    "spec,status,pending",
    [
        ({"replicas": 2}, {"availableReplicas": 2, "updatedReplicas": 2}, False),
        ({"replicas": 2}, {"availableReplicas": 1, "updatedReplicas": 2}, True),
        ({}, {"availableReplicas": 1, "updatedReplicas": 1}, False),  # replicas defaults to 1
        ({}, {}, True),
        ({"replicas": 0}, {}, False),
    ],
)
def test_deployment(spec, status, pending):
    dep = {"metadata": {"name": "coredns"}, "spec": spec, "status": status}
    assert bool(readiness.deployment_pending(dep, "kube-system", "coredns")) is pending


def test_tigerastatus_reports_degraded_message():
    objs = [
        {
            "metadata": {"name": "calico"},
            "status": {"conditions": [{"type": "Available", "status": "True"}]},
        },
        {
            "metadata": {"name": "apiserver"},
            "status": {
                "conditions": [
                    {"type": "Available", "status": "False"},
                    {
                        "type": "Degraded",
                        "status": "True",
                        "message": "pull of calico/apiserver failed",
                    },
                ]
            },
        },
    ]
    wait = Wait("tigerastatus", "calico", 60, names=("calico", "apiserver", "whisker"))
    assert readiness.pending(wait, objs) == [
        "tigerastatus apiserver not Available: pull of calico/apiserver failed",
        "tigerastatus whisker not reported yet",
    ]


def test_crd_established():
    crd = {
        "metadata": {"name": "installations.operator.tigera.io"},
        "status": {"conditions": [{"type": "Established", "status": "True"}]},
    }
    wait = Wait("crd", "crds", 60, names=("installations.operator.tigera.io",))
    assert readiness.pending(wait, [crd]) == []
    assert readiness.pending(wait, []) == ["crd installations.operator.tigera.io not reported yet"]


def test_pending_dispatch_for_workloads():
    wait = Wait(
        "deployment",
        "operator",
        60,
        namespace="kube-system",
        names=("cilium-operator", "hubble-relay"),
    )
    objs = [
        {
            "metadata": {"name": "cilium-operator"},
            "spec": {"replicas": 1},
            "status": {"availableReplicas": 1, "updatedReplicas": 1},
        }
    ]
    assert readiness.pending(wait, objs) == ["deployment kube-system/hubble-relay not created yet"]


def test_wait_rejects_unknown_kind():
    with pytest.raises(ValueError):
        Wait("pods", "x", 1)


@pytest.mark.parametrize(
    "wait,expected",
    [
        (
            Wait("nodes", "n", 300, count=3),
            ["kubectl --kubeconfig K wait --for=condition=Ready nodes --all --timeout=300s"],
        ),
        (
            Wait("daemonset", "d", 60, namespace="kube-flannel", names=("kube-flannel-ds",)),
            [
                "kubectl --kubeconfig K -n kube-flannel rollout status daemonset/kube-flannel-ds "
                "--timeout=60s"
            ],
        ),
        (
            Wait("tigerastatus", "t", 600, names=("calico", "apiserver")),
            [
                "kubectl --kubeconfig K wait --for=condition=Available tigerastatus/calico "
                "tigerastatus/apiserver --timeout=600s"
            ],
        ),
        (
            Wait("crd", "c", 60, names=("a.b",)),
            ["kubectl --kubeconfig K wait --for=condition=Established crd/a.b --timeout=60s"],
        ),
    ],
)
def test_kubectl_equivalents(wait, expected):
    assert wait.kubectl_equivalent("K") == expected


def test_run_shell_quotes_redirects_and_heredocs():
    assert (
        Run(("kind", "get", "kubeconfig", "--name", "lab"), stdout_to="/a b/k").shell()
        == "kind get kubeconfig --name lab > '/a b/k'"
    )
    assert (
        Run(("kubectl", "create", "-f", "-"), stdin="a: 1\n").shell()
        == "kubectl create -f - <<'EOF'\na: 1\nEOF"
    )
