"""Rows and cells against upstream's printer tests (kubernetes
``pkg/printers/internalversion/printers_test.go``: TestPrintPod, TestPrintServiceLoadBalancer,
TestPrintIngress, TestPrintIngressClass, TestPrintNodeExternalIP/InternalIP/Role...), with our
objects in the API's JSON shape and ``now`` fixed, so ages read as upstream's do."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from labkit.printers import cells
from labkit.printers.columns import COLUMNS

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
TEN_YEARS_AGO = "2016-06-03T00:00:00Z"  # 10 * 365 days before NOW


def row(kind, obj, wide=False):
    """A whole row as upstream's tests list it: the name, then the kind's cells."""
    return [obj["metadata"]["name"], *COLUMNS[kind].row(obj, NOW, wide)]


def pod(name, statuses, *, containers=2, phase="podPhase", reason=None, conditions=()):
    status = {"phase": phase, "containerStatuses": statuses, "conditions": list(conditions)}
    if reason:
        status["reason"] = reason
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": f"c{i}"} for i in range(containers)]},
        "status": status,
    }


RUNNING_READY = {"ready": True, "restartCount": 3, "state": {"running": {}}}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (pod("test1", [RUNNING_READY, {"restartCount": 3}]), ["test1", "1/2", "podPhase", "6"]),
        (
            pod(
                "test2",
                [
                    RUNNING_READY,
                    {"state": {"waiting": {"reason": "ContainerWaitingReason"}}, "restartCount": 3},
                ],
            ),
            ["test2", "1/2", "ContainerWaitingReason", "6"],
        ),
        (
            pod(
                "test3",
                [
                    {"state": {"waiting": {"reason": "ContainerWaitingReason"}}, "restartCount": 3},
                    {
                        "state": {"terminated": {"reason": "ContainerTerminatedReason"}},
                        "restartCount": 3,
                    },
                ],
            ),
            ["test3", "0/2", "ContainerWaitingReason", "6"],
        ),
        (
            pod("test4", [RUNNING_READY, {"ready": True, "restartCount": 3}]),
            ["test4", "1/2", "podPhase", "6"],
        ),
        (
            pod("test5", [RUNNING_READY, {"ready": True, "restartCount": 3}], reason="podReason"),
            ["test5", "1/2", "podReason", "6"],
        ),
        (
            pod(
                "test6",
                [
                    {
                        "ready": True,
                        "restartCount": 3,
                        "state": {"terminated": {"reason": "Completed"}},
                    },
                    RUNNING_READY,
                ],
                phase="Running",
            ),
            ["test6", "1/2", "NotReady", "6"],
        ),
        (
            pod(
                "test6",
                [
                    {
                        "ready": True,
                        "restartCount": 3,
                        "state": {"terminated": {"reason": "Completed"}},
                    },
                    RUNNING_READY,
                ],
                phase="Running",
                conditions=[{"type": "Ready", "status": "True"}],
            ),
            ["test6", "1/2", "Running", "6"],
        ),
    ],
)
def test_pod_rows_match_upstream_print_pod(obj, expected):
    assert row("Pod", obj)[:4] == expected
    assert row("Pod", obj)[4] == "<unknown>"  # no creationTimestamp


def test_pod_wide_cells_and_the_other_reasons():
    obj = pod("web", [RUNNING_READY], containers=1, phase="Running")
    obj["status"]["podIPs"] = [{"ip": "10.244.1.5"}]
    obj["spec"]["nodeName"] = "kind-worker"
    assert row("Pod", obj, wide=True)[5:] == ["10.244.1.5", "kind-worker", "<none>", "<none>"]
    pending = pod("p", [], containers=1, phase="Pending")
    assert row("Pod", pending, wide=True)[5:7] == ["<none>", "<none>"]
    ended = pod("x", [{"state": {"terminated": {"exitCode": 2}}}], containers=1)
    assert cells.pod_status(ended) == "ExitCode:2"
    killed = pod("x", [{"state": {"terminated": {"exitCode": 0, "signal": 9}}}], containers=1)
    assert cells.pod_status(killed) == "Signal:9"
    going = pod("x", [RUNNING_READY], containers=1, phase="Running")
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert cells.pod_status(going) == "Terminating"
    gated = pod("x", [], containers=1)
    gated["spec"]["readinessGates"] = [{"conditionType": "a"}, {"conditionType": "b"}]
    gated["status"]["conditions"] = [{"type": "a", "status": "True"}]
    assert cells.readiness_gates(gated) == "1/2"


def service(name, ips, kind="LoadBalancer", ports=(), ingress=(), selector=None):
    spec = {"clusterIPs": list(ips), "type": kind, "ports": [dict(p) for p in ports]}
    if selector:
        spec["selector"] = selector
    return {
        "metadata": {"name": name},
        "spec": spec,
        "status": {"loadBalancer": {"ingress": [dict(i) for i in ingress]}},
    }


TCP80 = {"port": 80, "protocol": "TCP"}
THREE = [TCP80, {"port": 8090, "protocol": "UDP"}, {"port": 8000, "protocol": "TCP"}]
THREE_LB = [{"ip": "2.3.4.5"}, {"ip": "3.4.5.6"}, {"ip": "5.6.7.8", "hostname": "host5678"}]


@pytest.mark.parametrize(
    ("obj", "wide", "expected"),
    [
        (
            service(
                "service1",
                ["1.2.3.4"],
                ports=[TCP80],
                ingress=[{"ip": "2.3.4.5"}, {"ip": "3.4.5.6"}],
            ),
            False,
            ["service1", "LoadBalancer", "1.2.3.4", "2.3.4.5,3.4.5.6", "80/TCP", "<unknown>"],
        ),
        (
            service("service2", ["1.3.4.5"], ports=[*THREE, {"port": 7777, "protocol": "SCTP"}]),
            False,
            [
                "service2",
                "LoadBalancer",
                "1.3.4.5",
                "<pending>",
                "80/TCP,8090/UDP,8000/TCP,7777/SCTP",
                "<unknown>",
            ],
        ),
        (
            service("service3", ["1.4.5.6"], ports=THREE, ingress=[{"ip": "2.3.4.5"}]),
            False,
            [
                "service3",
                "LoadBalancer",
                "1.4.5.6",
                "2.3.4.5",
                "80/TCP,8090/UDP,8000/TCP",
                "<unknown>",
            ],
        ),
        (
            service("service4", ["1.5.6.7"], ports=THREE, ingress=THREE_LB),
            False,
            [
                "service4",
                "LoadBalancer",
                "1.5.6.7",
                "2.3.4.5,3.4.5...",
                "80/TCP,8090/UDP,8000/TCP",
                "<unknown>",
            ],
        ),
        (
            service(
                "service4", ["1.5.6.7"], ports=THREE, ingress=THREE_LB, selector={"foo": "bar"}
            ),
            True,
            [
                "service4",
                "LoadBalancer",
                "1.5.6.7",
                "2.3.4.5,3.4.5.6,5.6.7.8",
                "80/TCP,8090/UDP,8000/TCP",
                "<unknown>",
                "foo=bar",
            ],
        ),
    ],
)
def test_service_rows_match_upstream_print_service_load_balancer(obj, wide, expected):
    assert row("Service", obj, wide) == expected


def test_service_cells_for_the_other_types():
    node_port = service("np", ["10.96.0.9"], kind="NodePort", ports=[{**TCP80, "nodePort": 30080}])
    assert row("Service", node_port)[2:5] == ["10.96.0.9", "<none>", "80:30080/TCP"]
    headless = service("db", ["None"], kind="ClusterIP")
    assert row("Service", headless)[2:5] == ["None", "<none>", "<none>"]
    external = service("ext", [], kind="ExternalName")
    external["spec"]["externalName"] = "db.example.com"
    assert row("Service", external)[2:4] == ["<none>", "db.example.com"]
    with_ips = service("web", ["10.96.0.8"], kind="ClusterIP")
    with_ips["spec"]["externalIPs"] = ["198.51.100.7"]
    assert cells.service_external_ip(with_ips, wide=False) == "198.51.100.7"
    assert row("Service", with_ips, wide=True)[-1] == "<none>"  # no selector


def test_ingress_and_ingress_class_rows_match_upstream():
    ingress = {
        "metadata": {"name": "test1", "creationTimestamp": TEN_YEARS_AGO},
        "spec": {
            "ingressClassName": "foo",
            "defaultBackend": {"service": {"name": "default-backend", "port": {"number": 80}}},
        },
        "status": {
            "loadBalancer": {"ingress": [{"ip": "2.3.4.5", "hostname": "localhost.localdomain"}]}
        },
    }
    assert row("Ingress", ingress) == ["test1", "foo", "*", "2.3.4.5", "80", "10y"]
    with_params = {
        "metadata": {"name": "test1", "creationTimestamp": TEN_YEARS_AGO},
        "spec": {
            "controller": "example.com/controller",
            "parameters": {"apiGroup": "example.com", "kind": "customgroup", "name": "example"},
        },
    }
    assert row("IngressClass", with_params) == [
        "test1", "example.com/controller", "customgroup.example.com/example", "10y",
    ]  # fmt: skip
    del with_params["spec"]["parameters"]["apiGroup"]
    assert row("IngressClass", with_params)[2] == "customgroup/example"
    del with_params["spec"]["parameters"]
    assert row("IngressClass", with_params)[2] == "<none>"


def test_ingress_hosts_list_three_then_count_the_rules_left():
    def hosts(*names):
        return cells.ingress_hosts({"spec": {"rules": [{"host": n} if n else {} for n in names]}})

    assert hosts() == "*"
    assert hosts("", "") == "*"
    assert hosts("a.com", "", "b.com") == "a.com,b.com"
    assert hosts("a", "", "b", "c", "d") == "a,b,c + 2 more..."
    assert cells.ingress_ports({"spec": {"tls": [{"hosts": ["a"]}]}}) == "80, 443"


def test_node_rows_match_upstream_print_node():
    unknown = {
        "metadata": {"name": "foo3"},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "2.2.2.2"},
                {"type": "ExternalIP", "address": "3.3.3.3"},
            ]
        },
    }
    assert row("Node", unknown, wide=True) == [
        "foo3", "Unknown", "<none>", "<unknown>", "",
        "2.2.2.2", "3.3.3.3", "<unknown>", "<unknown>", "<unknown>",
    ]  # fmt: skip
    cordoned = {
        "metadata": {
            "name": "foo1",
            "labels": {
                "node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/": "",
                "kubernetes.io/role": "worker",
            },
        },
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "Ready", "status": "False"}]},
    }
    assert row("Node", cordoned)[1:3] == ["NotReady,SchedulingDisabled", "control-plane,worker"]


def endpoints(*subsets):
    return {"metadata": {"name": "svc"}, "subsets": list(subsets)}


def test_endpoints_list_three_then_count_the_rest():
    four = [{"ip": f"10.0.0.{i}"} for i in range(1, 5)]
    assert cells.endpoints_cell(endpoints()) == "<none>"
    assert cells.endpoints_cell(endpoints({"addresses": four[:2], "ports": [{"port": 80}]})) == (
        "10.0.0.1:80,10.0.0.2:80"
    )
    assert (
        cells.endpoints_cell(endpoints({"addresses": four, "ports": [{"port": 80}, {"port": 443}]}))
        == "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 5 more..."
    )
    assert cells.endpoints_cell(endpoints({"addresses": four[:1]})) == "10.0.0.1"  # headless
    assert cells.endpoints_cell(
        endpoints({"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]})
    ) == ("[fd00::1]:80")


def test_endpoint_slice_cells_list_ports_and_addresses():
    endpoint_slice = {
        "addressType": "IPv4",
        "ports": [{"port": 80}, {"name": "metrics"}, {}, {"port": 9}],
        "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(1, 6)],
    }
    assert cells.slice_ports(endpoint_slice) == "80,metrics,* + 1 more..."
    assert cells.slice_endpoints(endpoint_slice) == "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more..."
    assert cells.slice_ports({}) == "<unset>"
    assert cells.slice_endpoints({}) == "<unset>"


def test_selectors_format_like_metav1():
    assert cells.format_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert cells.format_labels({}) == "<none>"
    selector = {
        "matchLabels": {"id2": "app2", "id1": "app1"},
        "matchExpressions": [
            {"key": "foo", "operator": "In", "values": ["bar2", "bar1"]},
            {"key": "foo2", "operator": "NotIn", "values": ["bar1", "bar2"]},
            {"key": "legacy", "operator": "DoesNotExist"},
            {"key": "team", "operator": "Exists"},
        ],
    }
    assert cells.format_label_selector(selector) == (
        "foo in (bar1,bar2),foo2 notin (bar1,bar2),id1=app1,id2=app2,!legacy,team"
    )
    assert cells.format_label_selector({}) == "<none>"
    assert cells.format_label_selector(None) == "<none>"


def test_workload_rows():
    template = {
        "spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}
    }
    deployment = {
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert row("Deployment", deployment, wide=True) == [
        "web", "2/3", "3", "2", "<unknown>", "a,b", "nginx,busybox", "app=web",
    ]  # fmt: skip
    daemon_set = {
        "metadata": {"name": "kube-proxy"},
        "spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2},
    }
    assert row("DaemonSet", daemon_set) == [
        "kube-proxy", "3", "3", "2", "0", "0", "kubernetes.io/os=linux", "<unknown>",
    ]  # fmt: skip
    stateful_set = {"metadata": {"name": "db"}, "spec": {"replicas": 2, "template": template}}
    assert row("StatefulSet", stateful_set, wide=True) == [
        "db",
        "0/2",
        "<unknown>",
        "a,b",
        "nginx,busybox",
    ]
    config_map = {"metadata": {"name": "cm"}, "data": {"a": "1"}, "binaryData": {"b": "AA=="}}
    assert row("ConfigMap", config_map) == ["cm", "2", "<unknown>"]
    secret = {"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"a": "", "b": ""}}
    assert row("Secret", secret) == ["s", "kubernetes.io/tls", "2", "<unknown>"]
    account = {"metadata": {"name": "default"}}
    assert row("ServiceAccount", account) == ["default", "0", "<unknown>"]
