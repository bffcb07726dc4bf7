"""pod_to_pod, pod_to_service and external_to_service judged on a recorded lab double."""
from __future__ import annotations

import dataclasses
import json

import pytest
from test_checks_fakelab import fast_clock, netpol_doc, pod, service, web_cluster  # noqa: F401

from labkit.checks.connectivity import external_to_service, pod_to_pod, pod_to_service
from labkit.errors import LabError
from labkit.lab import OUTSIDE

pytestmark = pytest.mark.usefixtures("fast_clock")

WEB = {"namespace": "default", "selector": "app=web"}
DENY_DB = netpol_doc("db-deny-all", {"podSelector": {"matchLabels": {"app": "db"}}}, ns="shop")


# --------------------------------------------------------------------------- pod to pod


def test_pod_to_pod_passes_and_proves_no_nat():
    r = pod_to_pod(web_cluster(), "default/client", WEB, 8080)
    assert r.verdict == "pass", r
    assert r.subject == "default/client -> default/web#1:8080/TCP (connected)"
    text = str(r)
    assert "10.244.1.2 = the client's pod IP 10.244.1.2 (no NAT)" in text
    assert "answered by default/web#1" in text and "converged after 1 attempt" in text
    assert "5d4f8c7b9d" not in text


def test_pod_to_pod_text_is_the_same_whatever_the_hashes():
    a = str(pod_to_pod(web_cluster(), "default/client", WEB, 8080))
    lab = web_cluster()
    lab.objects = json.loads(json.dumps(lab.objects).replace("5d4f8c7b9d", "zz99yy88xx"))
    assert str(pod_to_pod(lab, "default/client", WEB, 8080)) == a


def test_source_nat_is_caught():
    lab = web_cluster()
    lab.nat["default/client"] = "172.18.0.3"
    r = pod_to_pod(lab, "default/client", WEB, 8080)
    assert r.verdict == "fail" and "masqueraded" in r.hint and "172.18.0.3 != the client's pod IP" in str(r)


def test_no_nat_check_can_be_turned_off():
    lab = web_cluster()
    lab.nat["default/client"] = "172.18.0.3"
    assert pod_to_pod(lab, "default/client", WEB, 8080, no_nat=False).verdict == "pass"


def test_an_unreported_client_ip_is_context_only():
    lab = web_cluster()
    lab.overrides[("default/client", "10.244.1.3", 8080)] = lambda p: dataclasses.replace(p, client_ip=None)
    r = pod_to_pod(lab, "default/client", WEB, 8080)
    assert r.verdict == "pass" and "the server did not report it" in str(r)


def test_another_pod_answering_is_a_failure():
    lab = web_cluster()
    lab.overrides[("default/client", "10.244.1.3", 8080)] = lambda p: dataclasses.replace(p, served_by="other")
    r = pod_to_pod(lab, "default/client", WEB, 8080)
    assert r.verdict == "fail" and "re-used" in r.hint


def test_timeout_under_policy_names_the_policy():
    r = pod_to_pod(web_cluster(extra=[DENY_DB]), "default/client", "shop/db", 5432)
    assert r.verdict == "fail" and r.failure == "timeout"
    assert "shop/db-deny-all" in r.hint and r.hint.startswith("A NetworkPolicy drops this flow")


def test_timeout_without_policy_points_at_routing():
    lab = web_cluster()
    lab.overrides[("default/client", "10.244.2.5", 5432)] = "timeout"
    r = pod_to_pod(lab, "default/client", "shop/db", 5432)
    assert r.failure == "timeout" and "routing between" in r.hint


def test_refused_means_nothing_listens():
    r = pod_to_pod(web_cluster(), "default/client", "shop/db", 5433)
    assert r.failure == "refused" and "nothing listens" in r.hint
    assert "is 5433/TCP a containerPort of shop/db: no (declared: 5432/TCP)" in str(r)


def test_unreachable_address():
    lab = web_cluster()
    lab.overrides[("default/client", "10.244.2.5", 5432)] = "unreachable"
    assert pod_to_pod(lab, "default/client", "shop/db", 5432).failure == "unreachable"


def test_polling_reports_convergence():
    lab = web_cluster()
    lab.scripts[("default/client", "10.244.2.5", 5432)] = ["timeout", "timeout", "auto"]
    r = pod_to_pod(lab, "default/client", "shop/db", 5432)
    assert r.verdict == "pass" and "converged after 3 attempts" in str(r)


def test_expect_blocked_passes_on_a_drop():
    r = pod_to_pod(web_cluster(extra=[DENY_DB]), "default/client", "shop/db", 5432, expect="blocked")
    assert r.verdict == "pass" and "timeout (converged after 1 attempt)" in str(r)


def test_expect_blocked_fails_when_connected_and_says_why():
    r = pod_to_pod(web_cluster(), "default/client", "shop/db", 5432, expect="blocked")
    assert r.verdict == "fail" and "no NetworkPolicy isolates this flow" in r.hint
    assert "still different after" in str(r)


def test_expect_blocked_refused_is_not_a_policy_block():
    r = pod_to_pod(web_cluster(extra=[DENY_DB]), "default/client", "shop/db", 9, expect="blocked")
    assert r.verdict == "fail" and r.failure == "refused" and "A policy never refuses" in r.hint


def test_expect_blocked_on_a_cni_without_policy_is_partial():
    lab = web_cluster(enforce=False, cni="flannel", extra=[DENY_DB])
    r = pod_to_pod(lab, "default/client", "shop/db", 5432, expect="blocked", wait=30)
    assert r.verdict == "partial" and "not enforced" in r.hint and "flannel" in r.hint
    assert len([c for c in lab.calls if c[0] == "probe"]) == 1, "no point polling what cannot change"


def test_blocked_by_data_plane_while_policies_allow_is_noted():
    lab = web_cluster()
    lab.overrides[("default/client", "10.244.2.5", 5432)] = "timeout"
    r = pod_to_pod(lab, "default/client", "shop/db", 5432, expect="blocked")
    assert r.verdict == "pass" and "the drop is in the data plane" in str(r)


def test_missing_and_pending_pods():
    lab = web_cluster(extra=[pod("pending", None, phase="Pending", ready=False)])
    r = pod_to_pod(lab, "default/nope", WEB, 8080)
    assert r.verdict == "fail" and "does not exist" in r.hint and r.max_points == 1
    r = pod_to_pod(lab, "default/client", "default/pending", 8080)
    assert "Pending without an IP" in r.hint
    r = pod_to_pod(lab, "default/client", {"namespace": "default", "selector": "app=ghost"}, 8080)
    assert "no Running pod matches default/{app=ghost}" in str(r)


@pytest.mark.parametrize("kwargs, message", [
    ({"port": 0}, "not a port number"), ({"port": "http"}, "not a port number"),
    ({"port": 80, "protocol": "ICMP"}, "Unknown protocol"), ({"port": 80, "expect": "maybe"}, "expect must be"),
])
def test_pod_to_pod_bad_input(kwargs, message):
    with pytest.raises(LabError, match=message):
        pod_to_pod(web_cluster(), "default/client", WEB, **kwargs)


# --------------------------------------------------------------------------- pod to service


def test_pod_to_service_spreads_over_every_endpoint():
    r = pod_to_service(web_cluster(), "default/client", "web")
    assert r.verdict == "pass", r
    assert "20 of 20 connected" in str(r)
    assert "3 of 3 ready endpoints answered: default/web#1, default/web#2, default/web#3" in str(r)


def test_pod_to_service_by_ns_ref_and_named_port():
    r = pod_to_service(web_cluster(), "default/client", "shop/db", port="pg", requests=3)
    assert r.verdict == "pass" and r.subject == "default/client -> service shop/db:5432/TCP"


def test_wrong_target_port_is_refused_with_the_hint():
    svc = service("front", "10.96.30.30", selector={"app": "web"}, ports=({"name": "http", "port": 80, "targetPort": 9999},))
    r = pod_to_service(web_cluster(extra=[svc]), "default/client", "front")
    assert r.verdict == "fail" and r.failure == "refused" and "targetPort" in r.hint
    assert "0 of 20 connected; 20 refused" in str(r)


def test_no_endpoints_sends_to_service_health():
    svc = service("lonely", "10.96.30.31", selector={"app": "nobody"})
    r = pod_to_service(web_cluster(extra=[svc]), "default/client", "lonely")
    assert "has no ready endpoints" in r.hint and "service_health(lab, 'lonely'" in r.hint


def test_service_timeouts_are_explained_by_policy():
    deny_web = netpol_doc("web-deny", {"podSelector": {"matchLabels": {"app": "web"}}})
    r = pod_to_service(web_cluster(extra=[deny_web]), "default/client", "web", requests=3)
    assert r.failure == "timeout" and "default/web-deny" in r.hint


def test_missing_service_names_where_it_is():
    r = pod_to_service(web_cluster(), "default/client", "db")
    assert "exists in: shop" in r.hint


def test_unknown_service_port():
    r = pod_to_service(web_cluster(), "default/client", "web", port=81)
    assert "has no port 81" in r.hint and "80/TCP" in r.hint


def test_headless_service_is_refused_as_input():
    lab = web_cluster(extra=[service("hl", "None", selector={"app": "web"})])
    with pytest.raises(LabError, match="headless"):
        pod_to_service(lab, "default/client", "hl")


def test_an_endpoint_that_never_answers_fails_the_spread():
    lab = web_cluster()
    lab.overrides[("default/client", "10.96.10.10", 80)] = lambda p: dataclasses.replace(p, served_by="web-5d4f8c7b9d-abcde")
    r = pod_to_service(lab, "default/client", "web", wait=2)
    assert r.verdict == "fail" and "never: default/web#2, default/web#3" in str(r) and "1/(n-1)" in r.hint


def test_spread_is_optional():
    lab = web_cluster()
    lab.overrides[("default/client", "10.96.10.10", 80)] = lambda p: dataclasses.replace(p, served_by="web-5d4f8c7b9d-abcde")
    assert pod_to_service(lab, "default/client", "web", expect_spread=False).verdict == "pass"


def test_answers_from_non_endpoints_are_stale_rules():
    lab = web_cluster()
    lab.overrides[("default/client", "10.96.10.10", 80)] = lambda p: dataclasses.replace(p, served_by="client")
    r = pod_to_service(lab, "default/client", "web", expect_spread=False)
    assert r.verdict == "fail" and "stale" in r.hint


def test_requests_must_be_positive():
    with pytest.raises(LabError, match="at least 1"):
        pod_to_service(web_cluster(), "default/client", "web", requests=0)


# --------------------------------------------------------------------------- from outside


def nodeport_service(**kw):
    return service("web-np", "10.96.40.40", selector={"app": "web"}, type_="NodePort",
                   ports=({"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080},), **kw)


def test_nodeport_answers_on_every_node():
    r = external_to_service(web_cluster(extra=[nodeport_service()]), "web-np")
    assert r.verdict == "pass", r
    text = str(r)
    for ip, name in (("172.18.0.2", "lab-control-plane"), ("172.18.0.3", "lab-worker"), ("172.18.0.4", "lab-worker2")):
        assert f"connections from outside to {ip}:30080 ({name})" in text


def test_nodeport_on_a_clusterip_service():
    r = external_to_service(web_cluster(), "web")
    assert r.verdict == "fail" and "reachable only inside the cluster" in r.hint


def test_local_traffic_policy_only_asks_nodes_with_endpoints():
    lab = web_cluster(extra=[nodeport_service(external_traffic_policy="Local")])
    r = external_to_service(lab, "web-np")
    assert r.verdict == "pass" and "172.18.0.2" not in str(r) and "Local" in str(r)


def test_nodeport_timeouts_fail_with_external_hint():
    lab = web_cluster(extra=[nodeport_service()])
    lab.overrides["172.18.0.4"] = "timeout"
    r = external_to_service(lab, "web-np")
    assert r.verdict == "fail" and r.failure == "timeout" and "node port" in r.hint
    assert "0 of 4 connected; 4 timeout" in str(r)


def test_load_balancer_pass_and_spread():
    lb = service("pub", "10.96.50.50", selector={"app": "web"}, type_="LoadBalancer", lb_ip="172.18.255.200",
                 ports=({"name": "http", "port": 80, "targetPort": 8080, "nodePort": 31000},))
    r = external_to_service(web_cluster(extra=[lb]), "pub", via="loadbalancer", expect_spread=True)
    assert r.verdict == "pass" and "3 of 3 answered" in str(r)


def test_pending_load_balancer():
    lb = service("pub", "10.96.50.50", selector={"app": "web"}, type_="LoadBalancer")
    r = external_to_service(web_cluster(extra=[lb]), "pub", via="loadbalancer")
    assert r.verdict == "fail" and "<pending>" in r.hint


def test_load_balancer_without_implementation_is_partial():
    lab = web_cluster()
    lab.capabilities = dataclasses.replace(lab.capabilities, load_balancer=False)
    r = external_to_service(lab, "web", via="loadbalancer")
    assert r.verdict == "partial" and "cannot grade here" in r.hint


def test_load_balancer_on_a_nodeport_service():
    r = external_to_service(web_cluster(extra=[nodeport_service()]), "web-np", via="loadbalancer")
    assert r.verdict == "fail" and "gets no external address" in r.hint


def test_external_bad_input():
    with pytest.raises(LabError, match="via must be"):
        external_to_service(web_cluster(), "web", via="ingress")


def test_outside_source_is_used():
    lab = web_cluster(extra=[nodeport_service()])
    external_to_service(lab, "web-np", requests=3)
    assert {c[1] for c in lab.calls if c[0] == "probe"} == {OUTSIDE}
