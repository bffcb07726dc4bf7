"""Targets: pod refs and selectors, workload display names (no hashes), endpoints, ports."""

from __future__ import annotations

import pytest

from labkit.checks import targets
from labkit.checks.targets import PodNames, TargetSpec, parse_target, workload_of
from labkit.checks.view import ClusterView
from labkit.commands import NODE_LABELS, POD_DETAIL, Shell
from labkit.errors import LabError
from labkit.model import objects


@pytest.mark.parametrize(
    "target, spec",
    [
        ("web", TargetSpec("default", "web")),
        ("shop/db", TargetSpec("shop", "db")),
        ({"namespace": "shop", "selector": "app=db"}, TargetSpec("shop", selector="app=db")),
        (
            {"selector": {"tier": "api", "app": "x"}},
            TargetSpec("default", selector="app=x,tier=api"),
        ),
        (
            {"namespace": "a", "selector": "app in (x,y)", "all": True},
            TargetSpec("a", selector="app in (x,y)", all=True),
        ),
        ({"namespace": "a", "name": "p"}, TargetSpec("a", "p")),
    ],
)
def test_parse_target(target, spec):
    assert parse_target(target) == spec


@pytest.mark.parametrize(
    "bad, message",
    [
        ("", "not a pod reference"),
        ("a/b/c", "not a pod reference"),
        ("@outside", "not a pod reference"),
        ("/x", "not a pod reference"),
        ({"namespace": "a"}, "has no selector"),
        ({"selector": "app=x", "lbl": 1}, "Unknown target keys"),
        ({"selector": "app in x"}, "cannot be read"),
        (42, "string or a mapping"),
    ],
)
def test_bad_targets_are_refused(bad, message):
    with pytest.raises(LabError, match=message):
        parse_target(bad)


def test_workload_names(fakes):
    assert workload_of(fakes.pod("web-5d4f8c7b9d-abcde", "1.1.1.1", owner="web")) == "web"
    hashed_only = fakes.pod(
        "api-5d4f8c7b9d-abcde", "1.1.1.1", labels={"pod-template-hash": "5d4f8c7b9d"}
    )
    assert workload_of(hashed_only) == "api"
    ds = fakes.pod("kube-proxy-x2k4q", "1.1.1.1")
    ds["metadata"]["ownerReferences"] = [{"kind": "DaemonSet", "name": "kube-proxy"}]
    assert workload_of(ds) == "kube-proxy"
    sts = fakes.pod("db-0", "1.1.1.1")
    sts["metadata"]["ownerReferences"] = [{"kind": "StatefulSet", "name": "db"}]
    assert workload_of(sts) is None
    assert workload_of(fakes.pod("client", "1.1.1.1")) is None


def test_pod_names_hide_hashes_and_number_replicas(fakes):
    lab = fakes.web_cluster()
    names = PodNames(lab.get("pods", namespace=None))
    assert names(lab.get("pods", name="web-5d4f8c7b9d-fghij")[0]) == "default/web#2"
    assert names("default/web-5d4f8c7b9d-abcde") == "default/web#1"
    assert names("default/client") == "default/client"
    assert names.by_name("web-5d4f8c7b9d-klmno") == "default/web#3"
    assert names.by_name("coredns-7c65d6cfc9-xyzab", "default") == "kube-system/coredns#1"
    assert names.by_name(None) == "(nobody)"
    assert names("default/gone-5d4f8c7b9d-zzzzz") == "default/gone-*"


def test_display_names_do_not_depend_on_the_hash(fakes):
    a = PodNames([fakes.pod("web-aaaaaaaaaa-bbbbb", "1.1.1.1", owner="web")])
    b = PodNames([fakes.pod("web-cccccccccc-ddddd", "1.1.1.2", owner="web")])
    assert a("default/web-aaaaaaaaaa-bbbbb") == b("default/web-cccccccccc-ddddd") == "default/web#1"


def test_find_pods_by_selector_takes_running_pods_in_name_order(fakes):
    objects = [
        fakes.namespace("default"),
        fakes.pod("b", "10.0.0.2", labels={"app": "x"}),
        fakes.pod("a", "10.0.0.1", labels={"app": "x"}),
        fakes.pod("0", None, labels={"app": "x"}, phase="Pending"),
    ]
    lab = fakes.FakeLab(objects)
    _, found = ClusterView(lab).find_pods({"selector": "app=x"})
    assert [p["metadata"]["name"] for p in found] == ["a"]
    _, found = ClusterView(lab).find_pods({"selector": "app=x", "all": True})
    assert [p["metadata"]["name"] for p in found] == ["a", "b"]
    _, found = ClusterView(lab).find_pods("0")
    assert found[0]["status"]["phase"] == "Pending"
    assert ClusterView(lab).find_pods("nope")[1] == []


def test_find_pods_falls_back_to_pods_that_do_not_run(fakes):
    """A selector whose pods are all Pending still finds them, so checks can say why."""
    objects = [
        fakes.namespace("default"),
        fakes.pod("b", None, labels={"app": "x"}, unschedulable="0/3 nodes are available"),
        fakes.pod("a", None, labels={"app": "x"}, phase="Failed", ready=False),
        fakes.pod("c", None, labels={"app": "x"}, unschedulable="0/3 nodes are available"),
        fakes.pod("d", "10.0.0.4", labels={"app": "y"}),
    ]
    lab = fakes.FakeLab(objects)
    _, found = ClusterView(lab).find_pods({"selector": "app=x"})
    assert [p["metadata"]["name"] for p in found] == ["b"], "Pending before Failed, then by name"
    _, found = ClusterView(lab).find_pods({"selector": "app=x", "all": True})
    assert [p["metadata"]["name"] for p in found] == ["b", "c", "a"]
    assert ClusterView(lab).find_pods({"selector": "app=z"})[1] == []


def test_scheduling_facts(fakes):
    names = PodNames([])
    waiting = fakes.pod("w", None, unschedulable="0/3 nodes are available: 3 Insufficient cpu.")
    assert targets.scheduling_problem(waiting) == targets.Scheduling(
        "Unschedulable", "0/3 nodes are available: 3 Insufficient cpu."
    )
    assert targets.unschedulable(waiting)
    assert targets.pod_state(waiting, names) == (
        "default/w: Pending, not Ready, no IP, PodScheduled=False "
        "(Unschedulable): 0/3 nodes are available: 3 Insufficient cpu."
    )
    running = fakes.pod("r", "10.0.0.1")
    assert targets.scheduling_problem(running) is None and not targets.unschedulable(running)
    assert (
        targets.pod_state(running, names) == "default/r: Running, Ready, IP 10.0.0.1, on lab-worker"
    )
    bare = fakes.pod("p", None, phase="Pending", ready=False)
    assert targets.unschedulable(bare) and targets.pod_state(bare, names).endswith("not scheduled")
    shell = Shell.of(fakes.FakeLab([]))
    hint = targets.scheduling_hint("The web pod", [waiting], shell)
    assert hint.startswith(
        "The web pod is Pending: the scheduler found no node for it, so it has no IP"
    )
    assert (
        "(status.conditions PodScheduled=False, reason Unschedulable): "
        '"0/3 nodes are available: 3 Insufficient cpu".' in hint
    )
    assert shell(NODE_LABELS) in hint
    assert shell(POD_DETAIL, pod="w", ns="default") in hint
    many = targets.scheduling_hint("The pods", [waiting, bare], shell)
    assert (
        many.startswith("The pods are Pending: the scheduler found no node for them")
        and "their tolerations" in many
    )
    assert "The scheduler says" not in targets.scheduling_hint("The pod", [bare], shell)
    waiting["spec"]["nodeSelector"] = {"disktype": "ssd", "zone": "a"}
    assert (
        "It asks for nodes labelled disktype=ssd,zone=a (nodeSelector)."
        in targets.scheduling_hint("P", [waiting], shell)
    )
    assert "nodes labelled" not in targets.scheduling_hint("P", [bare], shell)


@pytest.mark.parametrize(
    "text, ip",
    [
        ("10.0.0.1:4444", "10.0.0.1"),
        ("10.0.0.1", "10.0.0.1"),
        ("[fd00::1]:80", "fd00::1"),
        ("fd00::1", "fd00::1"),
        (None, None),
    ],
)
def test_strip_port(text, ip):
    assert objects.strip_port(text) == ip


def test_endpoints_from_slices_and_from_legacy_endpoints(fakes):
    lab = fakes.web_cluster()
    eps = ClusterView(lab).endpoints("web", "default")
    assert [e.ip for e in eps] == ["10.244.1.3", "10.244.2.3", "10.244.2.4"]
    assert (
        all(e.ready for e in eps)
        and eps[0].pod == "web-5d4f8c7b9d-abcde"
        and eps[0].ports == (("http", 8080, "TCP"),)
    )
    legacy = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "old", "namespace": "default"},
        "subsets": [
            {
                "addresses": [{"ip": "10.0.0.9", "targetRef": {"name": "p"}}],
                "notReadyAddresses": [{"ip": "10.0.0.8"}],
                "ports": [{"port": 80}],
            }
        ],
    }
    lab2 = fakes.FakeLab([fakes.namespace("default"), fakes.service("old", "10.96.0.50"), legacy])
    eps = ClusterView(lab2).endpoints("old", "default")
    assert [(e.ip, e.ready) for e in eps] == [("10.0.0.8", False), ("10.0.0.9", True)]
    assert ClusterView(lab2).endpoints("none", "default") == []


def test_pick_service_port(fakes):
    svc = fakes.service(
        "s", "10.96.0.9", ports=({"name": "http", "port": 80}, {"name": "admin", "port": 9000})
    )
    assert objects.pick_service_port(svc, None)["port"] == 80
    assert objects.pick_service_port(svc, 9000)["name"] == "admin"
    assert objects.pick_service_port(svc, "admin")["port"] == 9000
    assert objects.pick_service_port(svc, "9000")["port"] == 9000
    assert objects.pick_service_port(svc, 81) is None


def test_node_internal_ips_sorted(fakes):
    lab = fakes.web_cluster()
    assert ClusterView(lab).node_addresses() == [
        ("lab-control-plane", "172.18.0.2"),
        ("lab-worker", "172.18.0.3"),
        ("lab-worker2", "172.18.0.4"),
    ]


def test_pod_summary_says_what_is_missing(fakes):
    names = PodNames([])
    assert (
        targets.pod_summary(fakes.pod("p", None, phase="Pending", ready=False), names)
        == "default/p (Pending, not Ready, no IP, not scheduled)"
    )
    assert (
        targets.pod_summary(fakes.pod("p", "10.0.0.1"), names)
        == "default/p (Running, Ready, IP 10.0.0.1 on lab-worker)"
    )
