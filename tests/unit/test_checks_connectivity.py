"""pod_to_pod, pod_to_service and external_to_service judged on a recorded lab double."""

from __future__ import annotations

import dataclasses
import json

import pytest

from labkit.checks.outside_reach import external_to_service
from labkit.checks.pod_reach import pod_to_pod
from labkit.checks.service_reach import pod_to_service
from labkit.commands import POD_DETAIL, Shell
from labkit.errors import LabError
from labkit.lab import OUTSIDE

pytestmark = pytest.mark.usefixtures("fast_clock")

WEB = {"namespace": "default", "selector": "app=web"}
DENY_DB = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "db-deny-all", "namespace": "shop"},
    "spec": {"podSelector": {"matchLabels": {"app": "db"}}},
}


# --------------------------------------------------------------------------- pod to pod


def test_pod_to_pod_passes_and_proves_no_nat(fakes):
    r = pod_to_pod(fakes.web_cluster(), "default/client", WEB, 8080)
    assert r.verdict == "pass", r
    assert r.subject == "default/client -> default/web#1:8080/TCP (connected)"
    text = str(r)
    assert "10.244.1.2 = the client's pod IP 10.244.1.2 (no NAT)" in text
    assert "answered by default/web#1" in text and "converged after 1 attempt" in text
    assert "5d4f8c7b9d" not in text


def test_pod_to_pod_text_is_the_same_whatever_the_hashes(fakes):
    a = str(pod_to_pod(fakes.web_cluster(), "default/client", WEB, 8080))
    lab = fakes.web_cluster()
    lab.objects = json.loads(json.dumps(lab.objects).replace("5d4f8c7b9d", "zz99yy88xx"))
    assert str(pod_to_pod(lab, "default/client", WEB, 8080)) == a


def test_source_nat_is_caught(fakes):
    lab = fakes.web_cluster()
    lab.nat["default/client"] = "172.18.0.3"
    r = pod_to_pod(lab, "default/client", WEB, 8080)
    assert (
        r.verdict == "fail"
        and "masqueraded" in r.hint
        and "172.18.0.3 != the client's pod IP" in str(r)
    )


def test_no_nat_check_can_be_turned_off(fakes):
    lab = fakes.web_cluster()
    lab.nat["default/client"] = "172.18.0.3"
    assert pod_to_pod(lab, "default/client", WEB, 8080, no_nat=False).verdict == "pass"


def test_an_unreported_client_ip_is_context_only(fakes):
    lab = fakes.web_cluster()
    lab.overrides[("default/client", "10.244.1.3", 8080)] = lambda p: dataclasses.replace(
        p, client_ip=None
    )
    r = pod_to_pod(lab, "default/client", WEB, 8080)
    assert r.verdict == "pass" and "the server did not report it" in str(r)


def test_another_pod_answering_is_a_failure(fakes):
    lab = fakes.web_cluster()
    lab.overrides[("default/client", "10.244.1.3", 8080)] = lambda p: dataclasses.replace(
        p, served_by="other"
    )
    r = pod_to_pod(lab, "default/client", WEB, 8080)
    assert r.verdict == "fail" and "re-used" in r.hint


def test_timeout_under_policy_names_the_policy(fakes):
    r = pod_to_pod(fakes.web_cluster(extra=[DENY_DB]), "default/client", "shop/db", 5432)
    assert r.verdict == "fail" and r.failure == "timeout"
    assert "shop/db-deny-all" in r.hint and r.hint.startswith("A NetworkPolicy drops this flow")


def test_timeout_without_policy_points_at_routing(fakes):
    lab = fakes.web_cluster()
    lab.overrides[("default/client", "10.244.2.5", 5432)] = "timeout"
    r = pod_to_pod(lab, "default/client", "shop/db", 5432)
    assert r.failure == "timeout" and "routing between" in r.hint


def test_refused_means_nothing_listens(fakes):
    r = pod_to_pod(fakes.web_cluster(), "default/client", "shop/db", 5433)
    assert r.failure == "refused" and "nothing listens" in r.hint
    assert "is 5433/TCP a containerPort of shop/db: no (declared: 5432/TCP)" in str(r)


def test_unreachable_address(fakes):
    lab = fakes.web_cluster()
    lab.overrides[("default/client", "10.244.2.5", 5432)] = "unreachable"
    assert pod_to_pod(lab, "default/client", "shop/db", 5432).failure == "unreachable"


def test_polling_reports_convergence(fakes):
    lab = fakes.web_cluster()
    lab.scripts[("default/client", "10.244.2.5", 5432)] = ["timeout", "timeout", "auto"]
    r = pod_to_pod(lab, "default/client", "shop/db", 5432)
    assert r.verdict == "pass" and "converged after 3 attempts" in str(r)


def test_expect_blocked_passes_on_a_drop(fakes):
    r = pod_to_pod(
        fakes.web_cluster(extra=[DENY_DB]), "default/client", "shop/db", 5432, expect="blocked"
    )
    assert r.verdict == "pass" and "timeout (converged after 1 attempt)" in str(r)


def test_expect_blocked_fails_when_connected_and_says_why(fakes):
    r = pod_to_pod(fakes.web_cluster(), "default/client", "shop/db", 5432, expect="blocked")
    assert r.verdict == "fail" and "no NetworkPolicy isolates this flow" in r.hint
    assert "still different after" in str(r)


def test_expect_blocked_refused_is_not_a_policy_block(fakes):
    r = pod_to_pod(
        fakes.web_cluster(extra=[DENY_DB]), "default/client", "shop/db", 9, expect="blocked"
    )
    assert r.verdict == "fail" and r.failure == "refused" and "A policy never refuses" in r.hint


def test_expect_blocked_on_a_cni_without_policy_is_partial(fakes):
    lab = fakes.web_cluster(enforce=False, cni="flannel", extra=[DENY_DB])
    r = pod_to_pod(lab, "default/client", "shop/db", 5432, expect="blocked", wait=30)
    assert r.verdict == "partial" and "not enforced" in r.hint and "flannel" in r.hint
    assert len([c for c in lab.calls if c[0] == "probe"]) == 1, (
        "no point polling what cannot change"
    )


def test_blocked_by_data_plane_while_policies_allow_is_noted(fakes):
    lab = fakes.web_cluster()
    lab.overrides[("default/client", "10.244.2.5", 5432)] = "timeout"
    r = pod_to_pod(lab, "default/client", "shop/db", 5432, expect="blocked")
    assert r.verdict == "pass" and "the drop is in the data plane" in str(r)


def test_missing_and_pending_pods(fakes):
    lab = fakes.web_cluster(extra=[fakes.pod("pending", None, phase="Pending", ready=False)])
    r = pod_to_pod(lab, "default/nope", WEB, 8080)
    assert r.verdict == "fail" and "does not exist" in r.hint and r.max_points == 1
    r = pod_to_pod(lab, "default/client", "default/pending", 8080)
    assert "The destination pod is Pending" in r.hint and "no IP" in r.hint
    r = pod_to_pod(lab, "default/client", {"namespace": "default", "selector": "app=ghost"}, 8080)
    assert "no pod matches default/{app=ghost}" in str(r) and "does not exist" in r.hint


UNSCHEDULABLE = (
    "0/3 nodes are available: 1 node(s) had untolerated taint "
    "{node-role.kubernetes.io/control-plane: }, 2 node(s) didn't match Pod's node "
    "affinity/selector."
)


def test_selector_whose_pods_are_all_pending_reports_the_scheduler(fakes):
    """Scenario 01 unschedulable-database: no database pod runs, so the check must say why
    (Pending, no IP, the scheduler's message) instead of "does not exist"."""
    lab = fakes.web_cluster(
        extra=[
            fakes.pod(
                "database-7f9c8d6b5a-aaaaa",
                None,
                labels={"app": "database"},
                owner="database",
                unschedulable=UNSCHEDULABLE,
            ),
            fakes.pod(
                "database-7f9c8d6b5a-bbbbb",
                None,
                labels={"app": "database"},
                owner="database",
                unschedulable=UNSCHEDULABLE,
            ),
        ]
    )
    r = pod_to_pod(
        lab, "default/client", {"namespace": "default", "selector": "app=database"}, 5432
    )
    text = str(r)
    assert r.verdict == "fail" and "does not exist" not in r.hint
    assert "default/database#1 (Pending, not Ready, no IP, not scheduled)" in text
    assert "PodScheduled=False (Unschedulable): 0/3 nodes are available" in text
    assert r.hint.startswith("The destination pod is Pending: the scheduler found no node for it")
    assert "didn't match Pod's node affinity/selector" in r.hint and "nodeSelector" in r.hint
    detail = Shell.of(lab)(POD_DETAIL, pod="database-7f9c8d6b5a-aaaaa", ns="default")
    assert "taints" in r.hint and detail in r.hint
    assert not [c for c in lab.calls if c[0] == "probe"], "a pod without an IP is not probed"


def test_running_pods_are_still_preferred_over_pending_ones(fakes):
    lab = fakes.web_cluster(
        extra=[
            fakes.pod(
                "web-5d4f8c7b9d-00000",
                None,
                labels={"app": "web"},
                owner="web",
                unschedulable=UNSCHEDULABLE,
            )
        ]
    )
    assert pod_to_pod(lab, "default/client", WEB, 8080).verdict == "pass"


def test_pending_source_pod_is_explained_too(fakes):
    lab = fakes.web_cluster(
        extra=[fakes.pod("stuck", None, labels={"app": "stuck"}, unschedulable=UNSCHEDULABLE)]
    )
    r = pod_to_pod(lab, {"namespace": "default", "selector": "app=stuck"}, WEB, 8080)
    assert r.verdict == "fail" and r.hint.startswith("The source pod is Pending")


def test_pending_but_scheduled_pod_is_not_blamed_on_the_scheduler(fakes):
    starting = fakes.pod("starting", None, phase="Pending", ready=False)
    starting["spec"]["nodeName"] = "lab-worker"  # placed, but its containers have not started
    lab = fakes.web_cluster(extra=[starting])
    r = pod_to_pod(lab, "default/client", "default/starting", 8080)
    assert "scheduler" not in r.hint and "Pending without an IP" in r.hint


SIDECAR = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "app-pod", "namespace": "default", "labels": {}},
    "spec": {
        "nodeName": "lab-worker",
        "containers": [
            {
                "name": "app",
                "image": "agnhost",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
            },
            {
                "name": "log-forwarder",
                "image": "agnhost",
                "ports": [{"containerPort": 24224, "protocol": "TCP"}],
            },
        ],
    },
    "status": {
        "phase": "Running",
        "podIP": "10.244.1.50",
        "conditions": [{"type": "Ready", "status": "True"}],
    },
}


@pytest.mark.parametrize("dst", ["127.0.0.1", "localhost"])
def test_localhost_reaches_a_sidecar_in_the_same_pod(fakes, dst):
    """Scenario 05 / 13: containers of one pod share localhost; no pod IP, no NAT judgement."""
    lab = fakes.web_cluster(extra=[SIDECAR])
    r = pod_to_pod(lab, "default/app-pod", dst, 24224)
    text = str(r)
    assert r.verdict == "pass", text
    assert r.subject == "default/app-pod -> 127.0.0.1 (its own localhost):24224/TCP (connected)"
    assert "localhost inside default/app-pod" in text and "answered by default/app-pod" in text
    assert "127.0.0.1 (localhost: the pod talked to itself)" in text and "NAT" not in text
    assert lab.calls[-1] == ("probe", "default/app-pod", "127.0.0.1", 24224, "TCP")


def test_localhost_port_nobody_serves_is_refused_with_a_sidecar_hint(fakes):
    lab = fakes.web_cluster(extra=[SIDECAR])
    r = pod_to_pod(lab, "default/app-pod", "127.0.0.1", 9999)
    assert r.verdict == "fail" and r.failure == "refused"
    assert "Nothing in default/app-pod listens on 127.0.0.1:9999" in r.hint and "share" in r.hint
    assert (
        "is 9999/TCP a containerPort of default/app-pod: no (declared: 8080/TCP, 24224/TCP)"
        in str(r)
    )


def test_localhost_cannot_be_expected_blocked(fakes):
    with pytest.raises(LabError, match="never leaves the source pod"):
        pod_to_pod(fakes.web_cluster(), "default/client", "127.0.0.1", 8080, expect="blocked")


def test_localhost_ignores_policies_even_a_deny_all(fakes):
    deny = fakes.netpol_doc("deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    assert (
        pod_to_pod(fakes.web_cluster(extra=[deny]), "default/client", "127.0.0.1", 8080).verdict
        == "pass"
    )


def test_a_pod_ip_as_destination_is_judged_as_that_pod(fakes):
    lab = fakes.web_cluster()
    lab.nat["default/client"] = "172.18.0.3"
    r = pod_to_pod(lab, "default/client", "10.244.2.5", 5432)
    assert r.verdict == "fail" and "masqueraded" in r.hint, "no_nat is judged: the IP is a pod's"
    assert "the IP of shop/db (Running, Ready, IP 10.244.2.5 on lab-worker)" in str(r)
    assert pod_to_pod(
        fakes.web_cluster(extra=[DENY_DB]), "default/client", "10.244.2.5", 5432
    ).hint.startswith("A NetworkPolicy drops this flow")


def test_an_address_no_pod_owns_is_dialled_without_nat_judgement(fakes):
    lab = fakes.web_cluster()
    r = pod_to_pod(lab, "default/client", "10.244.9.9", 80)
    assert r.verdict == "fail" and r.failure == "unreachable" and "no pod has this IP" in str(r)
    lab.overrides[("default/client", "10.244.9.9", 80)] = "connected"
    r = pod_to_pod(lab, "default/client", "10.244.9.9", 80)
    assert r.verdict == "pass" and "source IP" not in str(r)


def test_connected_although_policies_would_drop_is_partial_on_flannel(fakes):
    lab = fakes.web_cluster(enforce=False, cni="flannel", extra=[DENY_DB])
    r = pod_to_pod(lab, "default/client", "shop/db", 5432)
    assert r.verdict == "partial" and "not enforced" in r.hint and "shop/db-deny-all" in r.hint
    assert (
        pod_to_pod(
            fakes.web_cluster(enforce=False, cni="flannel"), "default/client", "shop/db", 5432
        ).verdict
        == "pass"
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"port": 0}, "not a port number"),
        ({"port": "http"}, "not a port number"),
        ({"port": 80, "protocol": "ICMP"}, "Unknown protocol"),
        ({"port": 80, "expect": "maybe"}, "expect must be"),
    ],
)
def test_pod_to_pod_bad_input(fakes, kwargs, message):
    with pytest.raises(LabError, match=message):
        pod_to_pod(fakes.web_cluster(), "default/client", WEB, **kwargs)


# --------------------------------------------------------------------------- pod to service


def test_pod_to_service_spreads_over_every_endpoint(fakes):
    r = pod_to_service(fakes.web_cluster(), "default/client", "web")
    assert r.verdict == "pass", r
    assert "20 of 20 connected" in str(r)
    assert "3 of 3 ready endpoints answered: default/web#1, default/web#2, default/web#3" in str(r)


def test_pod_to_service_by_ns_ref_and_named_port(fakes):
    r = pod_to_service(fakes.web_cluster(), "default/client", "shop/db", port="pg", requests=3)
    assert r.verdict == "pass" and r.subject == "default/client -> service shop/db:5432/TCP"


def test_wrong_target_port_is_refused_with_the_hint(fakes):
    svc = fakes.service(
        "front",
        "10.96.30.30",
        selector={"app": "web"},
        ports=({"name": "http", "port": 80, "targetPort": 9999},),
    )
    r = pod_to_service(fakes.web_cluster(extra=[svc]), "default/client", "front")
    assert r.verdict == "fail" and r.failure == "refused" and "targetPort" in r.hint
    assert "0 of 20 connected; 20 refused" in str(r)


def test_no_endpoints_sends_to_service_health(fakes):
    svc = fakes.service("lonely", "10.96.30.31", selector={"app": "nobody"})
    r = pod_to_service(fakes.web_cluster(extra=[svc]), "default/client", "lonely")
    assert "has no ready endpoints" in r.hint and "service_health(lab, 'lonely'" in r.hint


def test_service_timeouts_are_explained_by_policy(fakes):
    deny_web = fakes.netpol_doc("web-deny", {"podSelector": {"matchLabels": {"app": "web"}}})
    r = pod_to_service(fakes.web_cluster(extra=[deny_web]), "default/client", "web", requests=3)
    assert r.failure == "timeout" and "default/web-deny" in r.hint


def test_service_reached_only_because_policies_are_not_enforced_is_partial(fakes):
    deny_web = fakes.netpol_doc("web-deny", {"podSelector": {"matchLabels": {"app": "web"}}})
    r = pod_to_service(
        fakes.web_cluster(extra=[deny_web], enforce=False, cni="flannel"),
        "default/client",
        "web",
        requests=6,
    )
    assert r.verdict == "partial" and "not enforced" in r.hint and "default/web-deny" in r.hint
    assert pod_to_service(
        fakes.web_cluster(enforce=False, cni="flannel"), "default/client", "web", requests=6
    ).passed


def test_missing_service_names_where_it_is(fakes):
    r = pod_to_service(fakes.web_cluster(), "default/client", "db")
    assert "exists in: shop" in r.hint


def test_unknown_service_port(fakes):
    r = pod_to_service(fakes.web_cluster(), "default/client", "web", port=81)
    assert "has no port 81" in r.hint and "80/TCP" in r.hint


def test_headless_service_is_refused_as_input(fakes):
    lab = fakes.web_cluster(extra=[fakes.service("hl", "None", selector={"app": "web"})])
    with pytest.raises(LabError, match="headless"):
        pod_to_service(lab, "default/client", "hl")


def test_an_endpoint_that_never_answers_fails_the_spread(fakes):
    lab = fakes.web_cluster()
    lab.overrides[("default/client", "10.96.10.10", 80)] = lambda p: dataclasses.replace(
        p, served_by="web-5d4f8c7b9d-abcde"
    )
    r = pod_to_service(lab, "default/client", "web", wait=2)
    assert (
        r.verdict == "fail"
        and "never: default/web#2, default/web#3" in str(r)
        and "1/(n-1)" in r.hint
    )


def test_spread_is_optional(fakes):
    lab = fakes.web_cluster()
    lab.overrides[("default/client", "10.96.10.10", 80)] = lambda p: dataclasses.replace(
        p, served_by="web-5d4f8c7b9d-abcde"
    )
    assert pod_to_service(lab, "default/client", "web", expect_spread=False).verdict == "pass"


def test_answers_from_non_endpoints_are_stale_rules(fakes):
    lab = fakes.web_cluster()
    lab.overrides[("default/client", "10.96.10.10", 80)] = lambda p: dataclasses.replace(
        p, served_by="client"
    )
    r = pod_to_service(lab, "default/client", "web", expect_spread=False)
    assert r.verdict == "fail" and "stale" in r.hint


def test_requests_must_be_positive(fakes):
    with pytest.raises(LabError, match="at least 1"):
        pod_to_service(fakes.web_cluster(), "default/client", "web", requests=0)


# --------------------------------------------------------------------------- from outside


def nodeport_service(fakes, **kw):
    return fakes.service(
        "web-np",
        "10.96.40.40",
        selector={"app": "web"},
        type_="NodePort",
        ports=({"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080},),
        **kw,
    )


def test_nodeport_answers_on_every_node(fakes):
    r = external_to_service(fakes.web_cluster(extra=[nodeport_service(fakes)]), "web-np")
    assert r.verdict == "pass", r
    text = str(r)
    for ip, name in (
        ("172.18.0.2", "lab-control-plane"),
        ("172.18.0.3", "lab-worker"),
        ("172.18.0.4", "lab-worker2"),
    ):
        assert f"connections from outside to {ip}:30080 ({name})" in text


def test_nodeport_on_a_clusterip_service(fakes):
    r = external_to_service(fakes.web_cluster(), "web")
    assert r.verdict == "fail" and "reachable only inside the cluster" in r.hint


def test_local_traffic_policy_only_asks_nodes_with_endpoints(fakes):
    lab = fakes.web_cluster(extra=[nodeport_service(fakes, external_traffic_policy="Local")])
    r = external_to_service(lab, "web-np")
    assert r.verdict == "pass" and "172.18.0.2" not in str(r) and "Local" in str(r)


def test_nodeport_timeouts_fail_with_external_hint(fakes):
    lab = fakes.web_cluster(extra=[nodeport_service(fakes)])
    lab.overrides["172.18.0.4"] = "timeout"
    r = external_to_service(lab, "web-np")
    assert r.verdict == "fail" and r.failure == "timeout" and "node port" in r.hint
    assert "0 of 4 connected; 4 timeout" in str(r)


def test_load_balancer_pass_and_spread(fakes):
    lb = fakes.service(
        "pub",
        "10.96.50.50",
        selector={"app": "web"},
        type_="LoadBalancer",
        lb_ip="172.18.255.200",
        ports=({"name": "http", "port": 80, "targetPort": 8080, "nodePort": 31000},),
    )
    r = external_to_service(
        fakes.web_cluster(extra=[lb]), "pub", via="loadbalancer", expect_spread=True
    )
    assert r.verdict == "pass" and "3 of 3 answered" in str(r)


def test_pending_load_balancer(fakes, fast_clock):
    lb = fakes.service("pub", "10.96.50.50", selector={"app": "web"}, type_="LoadBalancer")
    r = external_to_service(fakes.web_cluster(extra=[lb]), "pub", via="loadbalancer")
    assert r.verdict == "fail" and "<pending>" in r.hint


def test_load_balancer_without_implementation_is_partial(fakes):
    lab = fakes.web_cluster()
    lab.capabilities = dataclasses.replace(lab.capabilities, load_balancer=False)
    r = external_to_service(lab, "web", via="loadbalancer")
    assert r.verdict == "partial" and "cannot grade here" in r.hint


def test_load_balancer_on_a_nodeport_service(fakes):
    r = external_to_service(
        fakes.web_cluster(extra=[nodeport_service(fakes)]), "web-np", via="loadbalancer"
    )
    assert r.verdict == "fail" and "gets no external address" in r.hint


def test_external_bad_input(fakes):
    with pytest.raises(LabError, match="via must be"):
        external_to_service(fakes.web_cluster(), "web", via="ingress")


def test_outside_source_is_used(fakes):
    lab = fakes.web_cluster(extra=[nodeport_service(fakes)])
    external_to_service(lab, "web-np", requests=3)
    assert {c[1] for c in lab.calls if c[0] == "probe"} == {OUTSIDE}


def _load_balancer(fakes, ingress: list[dict]) -> dict:
    svc = fakes.service(
        "pub",
        "10.96.50.50",
        selector={"app": "web"},
        type_="LoadBalancer",
        ports=({"name": "http", "port": 80, "targetPort": 8080, "nodePort": 31000},),
    )
    svc["status"] = {"loadBalancer": {"ingress": ingress}}
    return svc


@pytest.mark.parametrize(
    "ingress,mode,says",
    [
        ([{"ip": "172.18.0.9", "ipMode": "Proxy"}], "Proxy", "pods see the proxy's address"),
        ([{"ip": "172.18.255.200", "ipMode": "VIP"}], "VIP", "kube-proxy forwards them"),
        ([{"ip": "172.18.255.200"}], "VIP", "kube-proxy forwards them"),
    ],
)
def test_load_balancer_names_how_its_ip_mode_carries_traffic(fakes, ingress, mode, says):
    """KEP-1860 status.loadBalancer.ingress[].ipMode (defaulted to VIP for an IP by the API
    server, pkg/apis/core/v1/defaults.go SetDefaults_Service): cloud-provider-kind reports Proxy
    (pkg/loadbalancer/server.go GetLoadBalancer), its Envoy dialling the nodePorts (proxy.go)."""
    r = external_to_service(fakes.web_cluster(extra=[_load_balancer(fakes, ingress)]), "pub",
                            via="loadbalancer")  # fmt: skip
    assert r.verdict == "pass"
    assert f"{ingress[0]['ip']} (ipMode {mode})" in str(r) and says in str(r)


def test_load_balancer_address_is_awaited_on_kind(fakes, fast_clock):
    """cloud-provider-kind fills the address only once its Envoy container runs
    (pkg/loadbalancer/server.go EnsureLoadBalancer, then GetLoadBalancer), so on a lab that
    converges after apply the check polls for it instead of failing at first sight."""
    lab = fakes.web_cluster(extra=[_load_balancer(fakes, [])])
    [pending] = [o for o in lab.objects if o["metadata"]["name"] == "pub"]
    looks = [0]
    read = lab.get

    def get(kind, name=None, namespace="default", selector=None):
        if kind == "service" and name == "pub":
            looks[0] += 1
            if looks[0] == 2:
                pending["status"] = {
                    "loadBalancer": {"ingress": [{"ip": "172.18.0.9", "ipMode": "Proxy"}]}
                }
        return read(kind, name, namespace, selector)

    lab.get = get
    r = external_to_service(lab, "pub", via="loadbalancer", wait=5.0)
    assert r.verdict == "pass", str(r)
    assert "172.18.0.9 (ipMode Proxy) (converged after 2 attempts)" in str(r)
