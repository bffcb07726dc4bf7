"""service_health: selector vs labels (naming the labels that differ), targetPort vs containerPorts
(named ports per pod), readiness, endpoints; plus its pure helpers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from labkit.checks.proxy_rules import chained_statistics, kube_proxy_rules
from labkit.checks.services import label_differences, resolve_target_port, service_health
from labkit.checks.targets import PodNames
from labkit.errors import LabError
from labkit.lab import ExecResult

pytestmark = pytest.mark.usefixtures("fast_clock")


def postgres_lab(fakes, selector, target="postgres", extra=()):
    objects = [
        fakes.namespace("default"),
        fakes.pod(
            "postgres-6b4f87b5c9-8p7x2",
            "10.244.2.45",
            labels={"app": "postgres"},
            owner="postgres",
            ports=((5432, "TCP", "postgres"),),
        ),
        fakes.service(
            "postgres-db",
            "10.96.145.232",
            selector=selector,
            ports=({"name": "pg", "port": 5432, "targetPort": target},),
        ),
        *extra,
    ]
    return fakes.FakeLab(objects)


def test_healthy_service_passes(fakes):
    r = service_health(fakes.web_cluster(), "web")
    assert r.verdict == "pass" and r.points == r.max_points == 5
    assert (
        "ready endpoints: 3: default/web#1, default/web#2, default/web#3 (converged after 1 "
        "attempt)" in str(r)
    )


def test_the_tutorials_missing_label(fakes):
    r = service_health(postgres_lab(fakes, {"app": "postgres", "tier": "db"}), "postgres-db")
    assert r.verdict == "fail"
    assert "default/postgres#1 lacks tier=db" in r.hint and "matches no pod" in r.hint
    assert "closest: default/postgres#1 lacks tier=db" in str(r)
    assert "6b4f87b5c9" not in str(r)


def test_a_label_with_another_value(fakes):
    r = service_health(postgres_lab(fakes, {"app": "postgresql"}), "postgres-db")
    assert "has app=postgres, not app=postgresql" in r.hint


def test_labels_only_in_another_namespace(fakes):
    other = fakes.pod("pg", "10.244.2.46", ns="data", labels={"app": "pg"})
    r = service_health(
        postgres_lab(fakes, {"app": "pg"}, extra=[fakes.namespace("data"), other]), "postgres-db"
    )
    assert "exist only in data" in r.hint and "own namespace" in r.hint


def test_no_pod_has_any_label(fakes):
    r = service_health(postgres_lab(fakes, {"role": "x"}), "postgres-db")
    assert "No pod carries any of the labels role=x" in r.hint


def test_named_target_port_missing(fakes):
    r = service_health(postgres_lab(fakes, {"app": "postgres"}, target="pgsql"), "postgres-db")
    assert r.verdict == "fail" and "which the selected pods do not serve" in r.hint
    assert "no TCP containerPort named 'pgsql' (postgres=5432)" in str(r)


def test_numeric_target_port_mismatch(fakes):
    r = service_health(postgres_lab(fakes, {"app": "postgres"}, target=5433), "postgres-db")
    assert "5433 is not a containerPort (declared: 5432/TCP)" in str(r)
    assert "5432/TCP (postgres)" in r.hint


def test_named_target_port_resolves_pod_by_pod(fakes):
    a = fakes.pod("a", "10.0.0.1", labels={"app": "x"}, ports=((8080, "TCP", "web"),))
    b = fakes.pod("b", "10.0.0.2", labels={"app": "x"}, ports=((9090, "TCP", "web"),))
    svc = fakes.service(
        "x",
        "10.96.0.77",
        selector={"app": "x"},
        ports=({"name": "h", "port": 80, "targetPort": "web"},),
    )
    r = service_health(fakes.FakeLab([fakes.namespace("default"), a, b, svc]), "x")
    assert r.verdict == "pass" and "default/a: web -> 8080; default/b: web -> 9090" in str(r)


def test_not_ready_pods_are_named(fakes):
    lab = postgres_lab(fakes, {"app": "postgres"})
    lab.objects[1]["status"]["conditions"][0]["status"] = "False"
    lab.objects = [o for o in lab.objects if o["kind"] != "EndpointSlice"]
    r = service_health(lab, "postgres-db")
    assert (
        r.verdict == "fail" and "not Ready: default/postgres#1" in str(r) and "readiness" in r.hint
    )


def test_unschedulable_pods_are_named_with_the_schedulers_message(fakes):
    message = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    lab = postgres_lab(
        fakes,
        {"app": "postgres"},
        extra=[
            fakes.pod(
                "postgres-6b4f87b5c9-zzzzz",
                None,
                labels={"app": "postgres"},
                owner="postgres",
                ports=((5432, "TCP", "postgres"),),
                unschedulable=message,
            )
        ],
    )
    r = service_health(lab, "postgres-db")
    text = str(r)
    assert r.verdict == "fail"
    assert "not Ready: default/postgres#2 (1 Pending, unschedulable)" in text
    assert (
        "default/postgres#2: Pending, not Ready, no IP, PodScheduled=False (Unschedulable): "
        f"{message}" in text
    )
    assert r.hint.startswith(
        "The selected pod (default/postgres#2) is Pending: the scheduler found no node"
    )
    assert "readiness" not in r.hint and "nodeSelector" in r.hint and message[:-1] in r.hint


def test_pods_that_have_not_started_are_not_blamed_on_readiness_probes(fakes):
    starting = fakes.pod(
        "postgres-6b4f87b5c9-yyyyy",
        None,
        labels={"app": "postgres"},
        owner="postgres",
        phase="Pending",
        ready=False,
        ports=((5432, "TCP", "postgres"),),
    )
    starting["spec"]["nodeName"] = "lab-worker"
    r = service_health(postgres_lab(fakes, {"app": "postgres"}, extra=[starting]), "postgres-db")
    assert r.verdict == "fail" and "not Running yet (default/postgres#2 Pending)" in r.hint
    assert "scheduler" not in r.hint


def test_endpoints_lagging_behind_the_pods(fakes):
    lab = postgres_lab(fakes, {"app": "postgres"})
    for o in lab.objects:
        if o["kind"] == "EndpointSlice":
            o["endpoints"] = []
    r = service_health(lab, "postgres-db", wait=1)
    assert (
        r.verdict == "fail"
        and "missing: default/postgres#1" in str(r)
        and "still different after" in str(r)
    )


def test_missing_service_names_other_namespaces(fakes):
    r = service_health(fakes.web_cluster(), "db")
    assert r.verdict == "fail" and "exists in: shop" in r.hint
    assert service_health(fakes.web_cluster(), "shop/db").verdict == "pass"


def test_service_without_selector_needs_manual_endpoints(fakes):
    r = service_health(fakes.web_cluster(extra=[fakes.service("manual", "10.96.0.88")]), "manual")
    assert r.verdict == "fail" and "without a selector" in r.hint


def test_external_name_needs_no_endpoints(fakes):
    svc = fakes.service("ext", None, type_="ExternalName", external_name="db.example.com", ports=())
    r = service_health(fakes.web_cluster(extra=[svc]), "ext")
    assert r.verdict == "pass" and "ExternalName aliases db.example.com" in str(r)


def test_label_differences_prefers_the_closest_pods(fakes):
    pods = [
        fakes.pod("a", "1.1.1.1", labels={"app": "pg"}),
        fakes.pod("b", "1.1.1.2", labels={"app": "pg", "tier": "cache"}),
        fakes.pod("c", "1.1.1.3", labels={"other": "x"}),
    ]
    diffs = label_differences({"app": "pg", "tier": "db"}, pods, PodNames(pods))
    assert diffs == ["default/a lacks tier=db", "default/b has tier=cache, not tier=db"]
    assert label_differences({"zzz": "1"}, pods, PodNames(pods)) == []


@pytest.mark.parametrize(
    "target, protocol, expected",
    [
        ("http", "TCP", 8080),
        (8080, "TCP", 8080),
        ("8080", "TCP", 8080),
        (9090, "TCP", None),
        ("dns", "UDP", 53),
        ("dns", "TCP", None),
        ("nope", "TCP", None),
    ],
)
def test_resolve_target_port(fakes, target, protocol, expected):
    p = fakes.pod("p", "1.1.1.1", ports=((8080, "TCP", "http"), (53, "UDP", "dns")))
    assert resolve_target_port(target, protocol, p)[0] == expected


def test_a_pod_without_declared_ports_cannot_be_verified(fakes):
    number, words = resolve_target_port(80, "TCP", fakes.pod("p", "1.1.1.1", ports=()))
    assert number == 80 and "not verifiable" in words


# --------------------------------------------------------------------------- kube_proxy_rules


# Recorded from a sandbox node (calico mode): `iptables-save` lines of selftest/web, 3 endpoints.
WEB_RULES = (Path(__file__).parent / "data" / "checks" / "selftest-web-calico.iptables").read_text()


def rules_lab(
    fakes,
    web_pods=("192.168.20.3", "192.168.30.3", "192.168.30.4"),
    rules=WEB_RULES,
    pg_selector=None,
):
    pods = [
        fakes.pod(f"web-stncs8nrgp-{s}", ip, ns="selftest", labels={"app": "web"}, owner="web")
        for s, ip in zip(("aaaaa", "bbbbb", "ccccc", "ddddd"), web_pods, strict=False)
    ]
    objects = [
        fakes.namespace("selftest"),
        fakes.node("w1", "172.18.0.3"),
        fakes.node("w2", "172.18.0.4"),
        *pods,
        fakes.service("web", "10.96.17.228", ns="selftest", selector={"app": "web"}),
        fakes.service(
            "postgres-db",
            "10.96.147.155",
            ns="selftest",
            selector=pg_selector or {"app": "postgres", "tier": "db"},
            ports=({"name": "postgres", "port": 5432, "targetPort": "postgres"},),
        ),
    ]
    lab = fakes.FakeLab(objects)
    for n in ("w1", "w2"):
        lab.exec_outputs[(n, ("iptables-save",))] = ExecResult(("iptables-save",), 0, rules)
    return lab


def test_rules_spread_evenly_over_ready_endpoints(fakes):
    r = kube_proxy_rules(rules_lab(fakes), "selftest/web")
    assert r.verdict == "pass" and r.points == 3
    text = str(r)
    assert "w1: rules for selftest/web:http: 3 endpoints, equal chances" in text
    assert "1. selftest/web#1 (192.168.20.3:8080): statistic 0.33333, chance 0.333" in text
    assert "2. selftest/web#2 (192.168.30.3:8080): statistic 0.50000, chance 0.333" in text
    assert "3. selftest/web#3 (192.168.30.4:8080): the rest, chance 0.333" in text


def test_rules_for_a_service_without_endpoints(fakes):
    r = kube_proxy_rules(rules_lab(fakes), "postgres-db", namespace="selftest", wait=0)
    assert r.verdict == "fail" and "has no endpoints" in r.hint and "REJECT" in str(r)


def test_stale_rules_are_named(fakes):
    r = kube_proxy_rules(
        rules_lab(fakes, web_pods=("192.168.20.3", "192.168.30.3", "192.168.30.9")),
        "selftest/web",
        wait=0,
    )
    assert (
        r.verdict == "fail"
        and "stale: 192.168.30.4:8080" in str(r)
        and "missing: 192.168.30.9:8080" in str(r)
    )


def test_rules_missing_on_a_node(fakes):
    lab = rules_lab(fakes)
    lab.exec_outputs[("w2", ("iptables-save",))] = ExecResult(
        ("iptables-save",), 0, "*nat\nCOMMIT\n"
    )
    r = kube_proxy_rules(lab, "selftest/web", wait=0)
    assert "has not programmed selftest/web on w2" in r.hint


def test_rules_on_one_node_and_other_modes(fakes):
    assert kube_proxy_rules(rules_lab(fakes), "selftest/web", node="w1").max_points == 2
    lab = rules_lab(fakes)
    lab.capabilities = dataclasses.replace(lab.capabilities, kube_proxy_mode="ipvs")
    r = kube_proxy_rules(lab, "selftest/web")
    assert r.verdict == "partial" and "ipvs" in r.hint
    with pytest.raises(LabError, match="no cluster IP"):
        kube_proxy_rules(
            fakes.web_cluster(extra=[fakes.service("hl", "None", selector={"app": "web"})]), "hl"
        )
    assert kube_proxy_rules(rules_lab(fakes), "selftest/nope").verdict == "fail"


@pytest.mark.parametrize(
    "chances, stats",
    [
        ([1 / 3, 1 / 3, 1 / 3], [1 / 3, 1 / 2, 1.0]),
        ([0.25] * 4, [0.25, 1 / 3, 0.5, 1.0]),
        ([1.0], [1.0]),
        ([], []),
    ],
)
def test_chained_statistics(chances, stats):
    assert chained_statistics(chances) == pytest.approx(stats)


def test_rules_cannot_be_graded_where_kube_proxy_is_replaced(fakes):
    """Cilium's kube-proxy replacement (kubeProxyReplacement=true) writes no KUBE-* rules: the
    check says why it cannot grade, and reads no node."""
    lab = rules_lab(fakes)
    lab.cni = "cilium"
    lab.capabilities = dataclasses.replace(lab.capabilities, kube_proxy_mode="none")
    lab.exec_outputs.clear()
    r = kube_proxy_rules(lab, "selftest/web")
    assert r.verdict == "partial" and "cilium's kube-proxy replacement" in r.hint
    assert "no node has KUBE-* rules" in r.hint
