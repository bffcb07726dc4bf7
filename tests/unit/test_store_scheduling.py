"""ClusterStore scheduler and IPAM: nodeName, nodeSelector, affinity, taints, host ports, pod
IPs."""

from __future__ import annotations

import ipaddress

import pytest

from labkit.lab import ObjectRef
from labkit.sandbox.cluster.allocation import pod_ip_range
from labkit.sandbox.cluster.scheduling import (
    Unfit,
    matches_node,
    tolerates,
    unfit_reason,
    unschedulable_message,
)
from labkit.sandbox.store import ClusterStore, NodeSpec

AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.66.1"
_BOOT = {cni: ClusterStore.bootstrap("netlab", cni).to_dict() for cni in ("flannel", "calico")}
CP, W1, W2 = "netlab-control-plane", "netlab-worker", "netlab-worker2"
CP_TOLERATION = {
    "key": "node-role.kubernetes.io/control-plane",
    "operator": "Exists",
    "effect": "NoSchedule",
}


def fresh(cni: str = "flannel") -> ClusterStore:
    return ClusterStore.from_dict(_BOOT[cni])


def pod(name, ports=None, **spec):
    container = {"name": "app", "image": AGNHOST}
    if ports:
        container["ports"] = ports
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [container], **spec},
    }


def get_pod(store, name, ns="default"):
    return store.get("pod", name, ns)[0]


def conditions(p):
    return {c["type"]: c for c in p["status"]["conditions"]}


# --------------------------------------------------------------------------- placement


def test_node_name_is_honoured_even_on_the_tainted_control_plane():
    store = fresh()
    store.apply([pod("pinned", nodeName=CP)])
    p = get_pod(store, "pinned")
    assert p["spec"]["nodeName"] == CP and p["status"]["phase"] == "Running"
    assert ipaddress.ip_address(p["status"]["podIP"]) in ipaddress.ip_network("10.244.0.0/24")


@pytest.mark.parametrize("pool, node", [("apps", W1), ("data", W2)])
def test_node_selector_picks_the_labelled_worker(pool, node):
    store = fresh()
    store.apply([pod(f"p{i}", nodeSelector={"labkit.dev/pool": pool}) for i in range(3)])
    assert {get_pod(store, f"p{i}")["spec"]["nodeName"] for i in range(3)} == {node}


def test_pod_no_node_fits_stays_pending_with_the_schedulers_message():
    store = fresh()
    store.apply(
        [
            pod("lost", nodeSelector={"labkit.dev/pool": "gpu"}),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "lost"},
                "spec": {"selector": {"app": "lost"}, "ports": [{"port": 80}]},
            },
        ]
    )
    p = get_pod(store, "lost")
    assert p["status"]["phase"] == "Pending"
    assert (
        "nodeName" not in p["spec"] and "podIP" not in p["status"] and "hostIP" not in p["status"]
    )
    scheduled = conditions(p)["PodScheduled"]
    assert scheduled["status"] == "False" and scheduled["reason"] == "Unschedulable"
    assert scheduled["message"] == (
        "0/3 nodes are available: "
        "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: "
        "3 Preemption is not helpful for scheduling."
    )
    assert "subsets" not in store.get("ep", "lost")[0]


def test_control_plane_needs_a_toleration():
    store = fresh()
    store.apply(
        [
            pod("no-tol", nodeSelector={"ingress-ready": "true"}),
            pod("tol", nodeSelector={"ingress-ready": "true"}, tolerations=[CP_TOLERATION]),
        ]
    )
    assert get_pod(store, "no-tol")["status"]["phase"] == "Pending"
    assert "untolerated taint" in conditions(get_pod(store, "no-tol"))["PodScheduled"]["message"]
    assert get_pod(store, "tol")["spec"]["nodeName"] == CP


def test_tolerating_pods_still_prefer_the_emptier_workers():
    store = fresh()
    store.apply([pod("t", tolerations=[CP_TOLERATION])])
    assert get_pod(store, "t")["spec"]["nodeName"] in {W1, W2}


def test_fewest_pods_then_name_decides():
    store = fresh()
    # after bootstrap both workers hold the same number of pods, so the first goes to the first
    # worker
    store.apply([pod("a")])
    assert get_pod(store, "a")["spec"]["nodeName"] == W1
    store.apply([pod("b")])
    assert get_pod(store, "b")["spec"]["nodeName"] == W2
    store.apply([pod("c", nodeName=W1), pod("d")])
    assert get_pod(store, "d")["spec"]["nodeName"] == W2


def test_required_node_affinity():
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "labkit.dev/pool", "operator": "NotIn", "values": ["apps"]},
                            {"key": "labkit.dev/pool", "operator": "Exists"},
                        ]
                    }
                ]
            }
        }
    }
    store = fresh()
    store.apply([pod("aff", affinity=affinity)])
    assert get_pod(store, "aff")["spec"]["nodeName"] == W2


def test_host_ports_conflict_on_one_node():
    store = fresh()
    port = [{"containerPort": 8080, "hostPort": 18080}]
    store.apply(
        [
            pod("h1", ports=port, nodeSelector={"labkit.dev/pool": "apps"}),
            pod("h2", ports=port, nodeSelector={"labkit.dev/pool": "apps"}),
            pod("h3", ports=port),
        ]
    )
    assert get_pod(store, "h1")["spec"]["nodeName"] == W1
    assert get_pod(store, "h2")["status"]["phase"] == "Pending"
    assert "didn't have free ports" in conditions(get_pod(store, "h2"))["PodScheduled"]["message"]
    assert get_pod(store, "h3")["spec"]["nodeName"] == W2


def test_pending_pod_schedules_when_room_appears():
    store = fresh()
    port = [{"containerPort": 8080, "hostPort": 18080}]
    store.apply(
        [
            pod("h1", ports=port, nodeName=W1),
            pod("h2", ports=port, nodeSelector={"labkit.dev/pool": "apps"}),
        ]
    )
    assert get_pod(store, "h2")["status"]["phase"] == "Pending"
    store.delete([ObjectRef("Pod", "h1", "default")])
    assert (
        get_pod(store, "h2")["spec"]["nodeName"] == W1
        and get_pod(store, "h2")["status"]["phase"] == "Running"
    )


# --------------------------------------------------------------------------- predicates (pure)


TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    "tolerations, expected",
    [
        (None, False),
        ([], False),
        ([{"operator": "Exists"}], True),
        ([{"operator": "Exists", "effect": "NoSchedule"}], True),
        ([{"operator": "Exists", "effect": "NoExecute"}], False),
        ([{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}], True),
        ([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}], True),
        (
            [{"key": "node-role.kubernetes.io/control-plane", "operator": "Equal", "value": "x"}],
            False,
        ),
        ([{"key": "other", "operator": "Exists"}], False),
    ],
)
def test_tolerates(tolerations, expected):
    assert tolerates(tolerations, TAINT) is expected


NODE = {"name": "n1", "labels": {"zone": "a", "size": "8", "disk": "ssd"}, "taints": []}


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({}, True),
        ({"nodeSelector": {"zone": "a"}}, True),
        ({"nodeSelector": {"zone": "b"}}, False),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "zone", "operator": "In", "values": ["b"]}
                                    ]
                                },
                                {
                                    "matchExpressions": [
                                        {"key": "disk", "operator": "In", "values": ["ssd"]}
                                    ]
                                },
                            ]
                        }
                    }
                }
            },
            True,
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "size", "operator": "Gt", "values": ["4"]}
                                    ]
                                }
                            ]
                        }
                    }
                }
            },
            True,
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "size", "operator": "Lt", "values": ["4"]}
                                    ]
                                }
                            ]
                        }
                    }
                }
            },
            False,
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}
                            ]
                        }
                    }
                }
            },
            True,
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchFields": [
                                        {"key": "metadata.name", "operator": "In", "values": ["n2"]}
                                    ]
                                }
                            ]
                        }
                    }
                }
            },
            False,
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [{}]
                        }
                    }
                }
            },
            False,
        ),
    ],
)
def test_matches_node(spec, expected):
    assert matches_node(spec, NODE) is expected


def test_unfit_reason_order_and_message():
    tainted = {"name": "cp", "labels": {}, "taints": [TAINT]}
    assert unfit_reason({"nodeSelector": {"x": "y"}}, tainted, []).reason.startswith(
        "node(s) had untolerated taint"
    )
    assert unfit_reason({"nodeSelector": {"x": "y"}}, NODE, []) == Unfit(
        "node(s) didn't match Pod's node affinity/selector", False
    )
    assert unfit_reason({}, NODE, []) is None
    assert unschedulable_message([Unfit("b", False), Unfit("a", False), Unfit("b", False)], 3) == (
        "0/3 nodes are available: 1 a, 2 b. preemption: 0/3 nodes are available: "
        "3 Preemption is not helpful for scheduling."
    )


# --------------------------------------------------------------------------- IPAM


@pytest.mark.parametrize(
    "cni, block, first",
    [("flannel", "10.244.1.0/24", "10.244.1.2"), ("calico", "192.168.20.0/26", "192.168.20.1")],
)
def test_pod_ip_range_per_cni(cni, block, first):
    lo, hi = pod_ip_range(block, cni)
    assert str(ipaddress.ip_address(lo)) == first
    assert hi == int(ipaddress.ip_network(block).broadcast_address) - 1


@pytest.mark.parametrize("cni", ["flannel", "calico"])
def test_pod_ips_come_from_their_nodes_block_and_are_unique(cni):
    store = fresh(cni)
    store.apply([pod(f"p{i}") for i in range(20)])
    blocks = {n.name: ipaddress.ip_network(n.ipam_block) for n in store.nodes()}
    lowest = 2 if cni == "flannel" else 1
    seen = set()
    for p in store.pods():
        ip = p["status"]["podIP"]
        if p["spec"].get("hostNetwork"):
            assert ip == p["status"]["hostIP"]
            continue
        address = ipaddress.ip_address(ip)
        block = blocks[p["spec"]["nodeName"]]
        assert address in block and int(address) - int(block.network_address) >= lowest
        assert address != block.broadcast_address
        assert ip not in seen
        seen.add(ip)
    assert len(seen) >= 20


def test_calico_first_pod_on_a_block_gets_dot_one():
    store = fresh("calico")
    store.apply([pod("first", nodeName=CP, tolerations=[CP_TOLERATION])])
    # the ingress controller already holds 192.168.10.1 on the control plane
    assert get_pod(store, "first")["status"]["podIP"] == "192.168.10.2"


def _tiny_store(block: str, cni: str = "flannel") -> ClusterStore:
    node = NodeSpec(
        "solo", "worker", "10.0.0.2", block, block, {"kubernetes.io/hostname": "solo"}, []
    )
    store = ClusterStore("tiny", cni, [node])
    store.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}])
    return store


def test_freed_address_is_not_reused_at_once_but_after_the_block_wraps():
    store = _tiny_store("10.9.0.0/29")  # pods from .2 to .6
    store.apply([pod("a"), pod("b")])
    assert [get_pod(store, n)["status"]["podIP"] for n in "ab"] == ["10.9.0.2", "10.9.0.3"]
    store.delete([ObjectRef("Pod", "a", "default")])
    store.apply([pod("c")])
    assert get_pod(store, "c")["status"]["podIP"] == "10.9.0.4"
    store.apply([pod("d"), pod("e"), pod("f")])
    assert [get_pod(store, n)["status"]["podIP"] for n in "def"] == [
        "10.9.0.5",
        "10.9.0.6",
        "10.9.0.2",
    ]


def test_exhausted_block_leaves_the_pod_creating():
    store = _tiny_store("10.9.0.0/30")  # only 10.9.0.2 is usable with a bridge on .1
    store.apply(
        [
            pod("a"),
            pod("b"),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "b"},
                "spec": {"selector": {"app": "b"}, "ports": [{"port": 80}]},
            },
        ]
    )
    assert get_pod(store, "a")["status"]["podIP"] == "10.9.0.2"
    b = get_pod(store, "b")
    assert (
        b["spec"]["nodeName"] == "solo"
        and b["status"]["phase"] == "Pending"
        and "podIP" not in b["status"]
    )
    sandbox = conditions(b)["PodReadyToStartContainers"]
    assert sandbox["status"] == "False" and "no IP addresses available" in sandbox["message"]
    assert b["status"]["containerStatuses"][0]["state"] == {
        "waiting": {"reason": "ContainerCreating"}
    }
    assert "subsets" not in store.get("ep", "b")[0]
    store.delete([ObjectRef("Pod", "a", "default")])
    assert get_pod(store, "b")["status"]["podIP"] == "10.9.0.2"


def test_host_network_pods_use_the_node_ip_and_no_block_address():
    store = fresh()
    store.apply([pod("h", hostNetwork=True, nodeName=W2), pod("n", nodeName=W2)])
    assert get_pod(store, "h")["status"]["podIP"] == "172.18.0.4"
    before = fresh()
    before.apply([pod("n", nodeName=W2)])
    assert get_pod(store, "n")["status"]["podIP"] == get_pod(before, "n")["status"]["podIP"]
