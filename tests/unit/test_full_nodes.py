"""Full nodes: kubelet's max-pods, the scheduler's "Too many pods" message, Calico's further IPAM
blocks and their routes, Flannel's /24."""

from __future__ import annotations

import ipaddress
from collections import Counter

import pytest

from labkit.sandbox import fabric
from labkit.sandbox.cluster.allocation import next_free_block
from labkit.sandbox.cluster.scheduling import MAX_PODS, Unfit, unfit_reason, unschedulable_message
from labkit.sandbox.policyrules import render_policy_rules
from labkit.sandbox.store import ClusterStore

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
_BOOT = {cni: ClusterStore.bootstrap("netlab", cni).to_dict() for cni in ("flannel", "calico")}
CP, W1, W2 = "netlab-control-plane", "netlab-worker", "netlab-worker2"
FULL_MESSAGE = (
    "0/3 nodes are available: "
    "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
    "2 Too many pods. preemption: 0/3 nodes are available: "
    "1 Preemption is not helpful for scheduling, "
    "2 No preemption victims found for incoming pod."
)


def _deployment(replicas: int) -> dict:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": AGNHOST}]},
            },
        },
    }


@pytest.fixture(scope="module", params=["flannel", "calico"])
def scaled(request):
    store = ClusterStore.from_dict(_BOOT[request.param])
    store.apply([_deployment(330)])
    return request.param, store


def test_nodes_fill_to_max_pods_system_pods_included(scaled):
    """kube-scheduler pkg/scheduler/framework/plugins/noderesources/fit.go fitsRequest:
    ``len(nodeInfo.Pods)+1 > allowedPodNumber`` fails with "Too many pods"; kubelet's
    --max-pods defaults to 110 (the node's allocatable pods)."""
    _, store = scaled
    per_node = Counter(p["spec"].get("nodeName") for p in store.pods())
    assert per_node[W1] == per_node[W2] == MAX_PODS == 110
    web = [p for p in store.pods() if p["metadata"]["name"].startswith("web-")]
    assert len(web) == 330
    bound = [p for p in web if p["spec"].get("nodeName")]
    system_on_workers = per_node[W1] + per_node[W2] - len(bound)
    assert system_on_workers > 0 and len(bound) == 2 * MAX_PODS - system_on_workers
    assert {p["spec"]["nodeName"] for p in bound} == {W1, W2}
    assert all(p["status"]["phase"] == "Running" for p in bound)


def test_pods_past_capacity_pend_with_the_schedulers_message(scaled):
    """kube-scheduler pkg/scheduler/framework/types.go FitError.Error() (reasons counted and
    sorted, then "preemption: " and the preemption's own FitError) and
    pkg/scheduler/framework/preemption/preemption.go: "No preemption victims found for incoming
    pod" where a filter said Unschedulable, "Preemption is not helpful for scheduling" where it
    said UnschedulableAndUnresolvable (the control plane's taint)."""
    _, store = scaled
    pending = [p for p in store.pods() if p["status"]["phase"] == "Pending"]
    assert pending
    for pod in pending:
        scheduled = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
        assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
        assert scheduled["message"] == FULL_MESSAGE
    deploy = store.get("Deployment", "web")[0]
    assert deploy["status"]["replicas"] == 330
    assert deploy["status"]["unavailableReplicas"] == len(pending)


def test_pod_ips_are_unique_and_inside_their_nodes_blocks(scaled):
    """Calico libcalico-go lib/ipam ipam.go autoAssign: a host claims a further block
    (claimAffineBlock) when its affine blocks are full; Flannel's host-local IPAM hands out its
    node's /24 (plugins/ipam/host-local)."""
    cni, store = scaled
    blocks = {n.name: [n.ipam_block, *n.more_blocks] for n in store.nodes()}
    seen: set[str] = set()
    for pod in store.pods():
        if pod["spec"].get("hostNetwork") or not pod["status"].get("podIP"):
            continue
        ip = ipaddress.ip_address(pod["status"]["podIP"])
        assert any(ip in ipaddress.ip_network(b) for b in blocks[pod["spec"]["nodeName"]])
        assert str(ip) not in seen
        seen.add(str(ip))
    if cni == "calico":
        assert blocks[W1] == ["192.168.20.0/26", "192.168.20.64/26"]
        assert blocks[W2] == ["192.168.30.0/26", "192.168.30.64/26"]
        assert blocks[CP] == ["192.168.10.0/26"]
    else:
        assert all(not more for more in (n.more_blocks for n in store.nodes()))


def test_scaling_down_leaves_no_pod_pending():
    """A ReplicaSet scaling down deletes unscheduled pods first (pkg/controller/replicaset
    getPodsToDelete, controller.ActivePods ordering: unassigned < assigned)."""
    store = ClusterStore.from_dict(_BOOT["calico"])
    store.apply([_deployment(230)])
    assert sum(p["status"]["phase"] == "Pending" for p in store.pods()) > 0
    store.apply([_deployment(200)])
    assert all(p["status"]["phase"] == "Running" for p in store.pods())


@pytest.mark.parametrize(
    "claimed, after, expected",
    [
        (["192.168.20.0/26"], "192.168.20.0/26", "192.168.20.64/26"),
        (["192.168.20.0/26", "192.168.20.64/26"], "192.168.20.0/26", "192.168.20.128/26"),
        (["192.168.255.192/26"], "192.168.255.192/26", "192.168.0.0/26"),
        (["192.168.0.0/24", "192.168.20.0/26"], "192.168.255.192/26", "192.168.1.0/26"),
    ],
)
def test_next_free_block(claimed, after, expected):
    """Calico's pool is carved into /26 blocks (IPPool blockSize 26); a block claimed by any
    host, or inside a range in use, is never claimed again (libcalico-go lib/ipam
    ipam_block_reader_writer.go findUnclaimedBlock)."""
    assert next_free_block(claimed, after) == expected


def test_unschedulable_message_counts_preemption_per_filter():
    """kube-scheduler FitError.Error() sorts "<count> <reason>" strings; preemption.go counts
    "Preemption is not helpful for scheduling" and "No preemption victims found for incoming
    pod" the same way."""
    unfit = [Unfit("b", True), Unfit("a", False), Unfit("b", True)]
    assert unschedulable_message(unfit, 3) == (
        "0/3 nodes are available: 1 a, 2 b. preemption: 0/3 nodes are available: "
        "1 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod."
    )


def test_too_many_pods_comes_after_the_other_filters():
    """The default plugin order (pkg/scheduler/apis/config/v1/default_plugins.go): NodePorts
    before NodeResourcesFit; a full node that also fails a host port says the port."""
    node = {"name": "n", "labels": {}, "taints": []}
    full = [{"spec": {}} for _ in range(MAX_PODS)]
    assert unfit_reason({}, node, full[:-1]) is None
    assert unfit_reason({}, node, full) == Unfit("Too many pods", True)
    ported = {"containers": [{"ports": [{"containerPort": 80, "hostPort": 80}]}]}
    assert unfit_reason(ported, node, [{"spec": ported}, *full]) == Unfit(
        "node(s) didn't have free ports for the requested pod ports", True
    )


def _net(index: int, blocks: tuple[str, ...]) -> fabric.NodeNet:
    return fabric.NodeNet(f"n{index}", index, f"lk-x-n{index}", f"172.18.0.{index + 2}", "", blocks)


def test_block_routes_plan_routes_only_new_blocks():
    """Felix's route manager (felix/dataplane/linux/route_mgr.go, routetable/route_table.go)
    programs a blackhole route for each block affine to the node and, in a VXLANCrossSubnet pool
    whose nodes share a subnet, one route per block of every other node via that node, all with
    Felix's protocol number 80."""
    before = [_net(0, ("192.168.10.0/26",)), _net(1, ("192.168.20.0/26",))]
    after = [before[0], _net(1, ("192.168.20.0/26", "192.168.20.64/26"))]
    assert fabric.block_routes_plan(before, before) == []
    jobs = {j.netns: j.steps[0].payload for j in fabric.block_routes_plan(before, after)}
    assert jobs == {
        "lk-x-n0": ["route replace 192.168.20.64/26 via 172.18.0.3 dev eth0 proto 80 onlink"],
        "lk-x-n1": ["route replace blackhole 192.168.20.64/26 proto 80"],
    }
    everything = {j.netns: j.steps[0].payload for j in fabric.block_routes_plan(None, after)}
    assert len(everything["lk-x-n0"]) == 3 and len(everything["lk-x-n1"]) == 3


def test_a_pod_without_an_address_yet_is_no_policy_endpoint():
    """Felix programs a workload endpoint only once the CNI plugin created it (with its IPAM
    address): a pod bound to the node but not wired has no interface to police."""
    pod = {
        "metadata": {"name": "p", "namespace": "default", "labels": {}},
        "spec": {"nodeName": W1, "containers": [{"name": "a"}]},
        "status": {"phase": "Pending"},
    }
    namespace = {"metadata": {"name": "default", "labels": {}}}
    assert render_policy_rules(W1, [pod], [namespace], [], {}) == render_policy_rules(
        W1, [], [namespace], [], {}
    )
